/* hybrik-lite: the analytical IK's joint chain as one fused loop (opt-in: ik.solve(..., compiled=True)).
 *
 * The same formulas as hybrik_lite/ik.py and twist_swing.py (the plain-torch solver stays the
 * default and the teaching version; tests/test_ik.py checks the two agree), in double precision,
 * one sample at a time. The root rotation comes in solved (Procrustes, by torch).
 *
 * Shapes (contiguous, row-major, float64): targets (B, 29, 3) root-relative; rest (B, 29, 3);
 * phi (B, 23, 2) as (cos, sin); root (B, 3, 3); out (B, 24, 3, 3) local rotations.
 * parents[24], children[24]: the kinematic tree (children[j] = the joint j aims its bone at).
 */
#include <float.h>
#include <math.h>
#include <string.h>

typedef double mat3[3][3];

static void matmul(const mat3 a, const mat3 b, mat3 out) {
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) out[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
}

/* unit vector, safely for tiny and huge input; returns 0 for a zero vector (out untouched) */
static int unit(const double *v, double *out) {
    double scale = fmax(fabs(v[0]), fmax(fabs(v[1]), fabs(v[2])));
    if (scale == 0) return 0;
    double x = v[0] / scale, y = v[1] / scale, z = v[2] / scale;
    double n = sqrt(x * x + y * y + z * z);
    out[0] = x / n; out[1] = y / n; out[2] = z / n;
    return 1;
}

static void cross(const double *a, const double *b, double *out) {
    out[0] = a[1] * b[2] - a[2] * b[1];
    out[1] = a[2] * b[0] - a[0] * b[2];
    out[2] = a[0] * b[1] - a[1] * b[0];
}

static double dot(const double *a, const double *b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

/* twist_swing.perpendicular: normalise(u x e), e the axis least aligned with u (first on ties) */
static void perpendicular(const double *u, double *out) {
    int k = 0;
    if (fabs(u[1]) < fabs(u[k])) k = 1;
    if (fabs(u[2]) < fabs(u[k])) k = 2;
    double e[3] = {0, 0, 0}, c[3];
    e[k] = 1;
    cross(u, e, c);
    if (!unit(c, out)) { out[0] = out[1] = out[2] = 0; }
}

/* twist_swing._swing_units: c I + [k]x + w k k^T (u, v unit) */
static void swing(const double *u, const double *v, double eps, mat3 out) {
    double c = dot(u, v), k[3];
    cross(u, v, k);
    double ku = dot(k, u);
    for (int i = 0; i < 3; i++) k[i] -= ku * u[i];
    double s2 = dot(k, k);
    double r = sqrt(c * c + s2);
    c /= r; for (int i = 0; i < 3; i++) k[i] /= r;
    s2 /= r * r;
    double w, axis[3] = {k[0], k[1], k[2]};
    if (c > 0) {
        w = 1 / (1 + c);
    } else if (s2 <= (4 * eps) * (4 * eps)) {        /* a flip: turn about perpendicular(u) */
        perpendicular(u, axis);
        k[0] = k[1] = k[2] = 0;
        w = 1 - c;
    } else {
        w = (1 - c) / s2;
    }
    out[0][0] = c + w * axis[0] * axis[0]; out[0][1] = -k[2] + w * axis[0] * axis[1]; out[0][2] = k[1] + w * axis[0] * axis[2];
    out[1][0] = k[2] + w * axis[1] * axis[0]; out[1][1] = c + w * axis[1] * axis[1]; out[1][2] = -k[0] + w * axis[1] * axis[2];
    out[2][0] = -k[1] + w * axis[2] * axis[0]; out[2][1] = k[0] + w * axis[2] * axis[1]; out[2][2] = c + w * axis[2] * axis[2];
}

/* twist_swing._twist_units with unit_cos_sin: rotation about unit u by the angle of (cos, sin) */
static void twist(const double *u, double cs, double sn, mat3 out) {
    double scale = fmax(fabs(cs), fabs(sn));
    if (scale == 0) { cs = 1; sn = 0; }
    else {
        double x = cs / scale, y = sn / scale, n = sqrt(x * x + y * y);
        cs = x / n; sn = y / n;
    }
    double omc = cs > 0 ? sn * sn / (1 + cs) : 1 - cs;
    double sk[3][3] = {{0, -u[2], u[1]}, {u[2], 0, -u[0]}, {-u[1], u[0], 0}};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) out[i][j] = (i == j ? cs : 0) + sn * sk[i][j] + omc * u[i] * u[j];
}

/* twist_swing.orthonormalize: R + R (I - R^T R) / 2 */
static void orthonormalize(const mat3 r, mat3 out) {
    mat3 gram, fix;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) gram[i][j] = (i == j) - (r[0][i] * r[0][j] + r[1][i] * r[1][j] + r[2][i] * r[2][j]);
    matmul(r, gram, fix);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) out[i][j] = r[i][j] + 0.5 * fix[i][j];
}

void ik_chain(long batch, const double *targets, const double *rest, const double *phi, const double *root,
              const long *parents, const long *children, int adaptive, double eps, double *out) {
    for (long b = 0; b < batch; b++) {
        const double *t = targets + b * 29 * 3, *s = rest + b * 29 * 3, *ph = phi + b * 23 * 2;
        double *loc = out + b * 24 * 9;
        mat3 g[24];
        double q[24][3];
        memcpy(g[0], root + b * 9, sizeof(mat3));
        memcpy(loc, root + b * 9, sizeof(mat3));
        q[0][0] = q[0][1] = q[0][2] = 0;
        for (int j = 1; j < 24; j++) {
            int p = (int)parents[j], c = (int)children[j];
            double from[3], aim[3], local_aim[3], u[3], v[3], bone[3];
            if (adaptive) {
                double off[3] = {s[3 * j] - s[3 * p], s[3 * j + 1] - s[3 * p + 1], s[3 * j + 2] - s[3 * p + 2]};
                for (int i = 0; i < 3; i++) from[i] = q[p][i] + g[p][i][0] * off[0] + g[p][i][1] * off[1] + g[p][i][2] * off[2];
            } else {
                for (int i = 0; i < 3; i++) from[i] = t[3 * j + i];
            }
            for (int i = 0; i < 3; i++) aim[i] = t[3 * c + i] - from[i];
            for (int i = 0; i < 3; i++) local_aim[i] = g[p][0][i] * aim[0] + g[p][1][i] * aim[1] + g[p][2][i] * aim[2];
            for (int i = 0; i < 3; i++) bone[i] = s[3 * c + i] - s[3 * j + i];
            if (!unit(bone, u)) { u[0] = 0; u[1] = 1; u[2] = 0; }
            if (!unit(local_aim, v)) memcpy(v, u, sizeof(v));
            mat3 sw, tw, r, rot;
            swing(u, v, eps, sw);
            twist(u, ph[2 * (j - 1)], ph[2 * (j - 1) + 1], tw);
            matmul(sw, tw, r);
            orthonormalize(r, rot);
            memcpy(loc + 9 * j, rot, sizeof(mat3));
            matmul(g[p], rot, g[j]);
            memcpy(q[j], from, sizeof(from));
        }
    }
}
