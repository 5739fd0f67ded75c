"""hybrik-lite: learn HybrIK (image -> 3D human mesh) step by step."""
__version__ = "0.1.0"
