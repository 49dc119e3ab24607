/* host_lib kernels: the numpy engine's requantisation, col2im, batch norm,
 * residual add, max pool and SGD update as single fused passes in C, each
 * computing in int64 exactly what docs/numeric.md specifies (the numpy forms
 * in ctrain.engine compute the same; tests/test_host_kernels.py compares).
 * Portable: plain C99 at -O3; with GCC and glibc on x86-64 the hot loops are also
 * compiled for AVX2 + FMA and picked at load time (CT_CLONES), so one wheel
 * runs everywhere. */
#include <stdlib.h>
#include <string.h>
#include "ctrain_kernels.h"


#define Q8 127
#define Q32 2147483647LL
#define TOP (1LL << 62)
/* elements per stack buffer */
#define RUN 1024

/* rshift_round (docs/numeric.md): half up for s > 0, saturating left shift for s < 0 */
static inline int64_t rshr(int64_t v, int s)
{
    if (s > 0)
        return (v + (1LL << (s - 1))) >> s;
    if (s < 0) {
        int64_t lim = TOP >> -s;
        v = v > lim ? lim : v < -lim ? -lim : v;
        return v * (1LL << -s);
    }
    return v;
}

static inline int64_t sat32(int64_t v) { return v > Q32 ? Q32 : v < -Q32 ? -Q32 : v; }

/* The int8 store of n values v (bias, mask and ReLU applied) at out[i * os]. */
CT_CLONES
static void store8(const int64_t *v, int64_t n, int s, int8_t *out, int64_t os, int64_t *st)
{
    int64_t peak = st[0], sat = 0, nnz = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t m = v[i] < 0 ? -v[i] : v[i];
        peak = m > peak ? m : peak;
    }
    if (s > 0) {
        const int64_t half = 1LL << (s - 1);
        if (os == 1) {
            for (int64_t i = 0; i < n; i++) {
                int64_t r = (v[i] + half) >> s;
                sat += (r > Q8) | (r < -Q8);
                r = r > Q8 ? Q8 : r < -Q8 ? -Q8 : r;
                nnz += r != 0;
                out[i] = (int8_t)r;
            }
        } else {
            for (int64_t i = 0; i < n; i++) {
                int64_t r = (v[i] + half) >> s;
                sat += (r > Q8) | (r < -Q8);
                r = r > Q8 ? Q8 : r < -Q8 ? -Q8 : r;
                nnz += r != 0;
                out[i * os] = (int8_t)r;
            }
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            int64_t r = rshr(v[i], s);
            sat += (r > Q8) | (r < -Q8);
            r = r > Q8 ? Q8 : r < -Q8 ? -Q8 : r;
            nnz += r != 0;
            out[i * os] = (int8_t)r;
        }
    }
    st[0] = peak;
    st[1] += sat;
    st[2] += nnz;
}

/* store8 on int32 values |v| <= 2^30 with 0 <= s <= 30: the same results in
 * 32-bit lanes (v + 2^(s-1) stays below 2^31), which the compiler vectorises. */
CT_CLONES
static void store8_32(const int32_t *v, int64_t n, int s, int8_t *out, int64_t os, int64_t *st)
{
    int32_t peak = 0, sat = 0, nnz = 0;
    const int32_t half = s > 0 ? 1 << (s - 1) : 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t m = v[i] < 0 ? -v[i] : v[i];
        peak = m > peak ? m : peak;
    }
    if (os == 1) {
        for (int64_t i = 0; i < n; i++) {
            int32_t r = (v[i] + half) >> s;
            sat += (r > Q8) | (r < -Q8);
            r = r > Q8 ? Q8 : r < -Q8 ? -Q8 : r;
            nnz += r != 0;
            out[i] = (int8_t)r;
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            int32_t r = (v[i] + half) >> s;
            sat += (r > Q8) | (r < -Q8);
            r = r > Q8 ? Q8 : r < -Q8 ? -Q8 : r;
            nnz += r != 0;
            out[i * os] = (int8_t)r;
        }
    }
    st[0] = peak > st[0] ? peak : st[0];
    st[1] += sat;
    st[2] += nnz;
}

/* |x| <= 2^29 for every element (then the 32-bit path is exact) */
#define LIM32 (1 << 29)
/* v[i] = relu((mask[i * os] > 0 ? src[i] : 0) + bias) over a run of n <= RUN,
 * in int64, or in int32 when it fits (returns 1 then). */
#define DEFINE_LOAD(NAME, T)                                                                  \
    CT_CLONES static int NAME(const T *src, int64_t n, const int8_t *mask, int64_t os,      \
                              int64_t bias, int relu, int fast, int64_t *v, int32_t *v32)   \
    {                                                                                         \
        if (fast) {                                                                           \
            int bad = 0;                                                                      \
            for (int64_t i = 0; i < n; i++)                                                   \
                bad |= (src[i] > (T)LIM32) | (src[i] < -(T)LIM32);                             \
            fast = !bad;                                                                      \
        }                                                                                     \
        if (fast) {                                                                           \
            const int32_t b = (int32_t)bias;                                                  \
            for (int64_t i = 0; i < n; i++)                                                   \
                v32[i] = (int32_t)src[i];                                                     \
            if (mask)                                                                         \
                for (int64_t i = 0; i < n; i++)                                               \
                    v32[i] = mask[i * os] > 0 ? v32[i] : 0;                                   \
            for (int64_t i = 0; i < n; i++)                                                   \
                v32[i] += b;                                                                  \
            if (relu)                                                                         \
                for (int64_t i = 0; i < n; i++)                                               \
                    v32[i] = v32[i] < 0 ? 0 : v32[i];                                         \
            return 1;                                                                         \
        }                                                                                     \
        for (int64_t i = 0; i < n; i++)                                                       \
            v[i] = (int64_t)src[i] + bias;                                                    \
        if (mask)                                                                             \
            for (int64_t i = 0; i < n; i++)                                                   \
                v[i] = mask[i * os] > 0 ? v[i] : bias;                                        \
        if (relu)                                                                             \
            for (int64_t i = 0; i < n; i++)                                                   \
                v[i] = v[i] < 0 ? 0 : v[i];                                                   \
        return 0;                                                                             \
    }
DEFINE_LOAD(load_f32, float)
DEFINE_LOAD(load_f64, double)

/* One contiguous run of acc with its output stride, in RUN pieces. */
#define DEFINE_RUN(NAME, LOAD, T)                                                              \
    static void NAME(const T *src, int64_t n, const int8_t *mask, int64_t bias, int relu, int s, \
                     int8_t *out, int64_t os, int64_t *st)                                        \
    {                                                                                            \
        int64_t v[RUN];                                                                          \
        int32_t v32[RUN];                                                                        \
        int fast = s >= 0 && s <= 30 && bias >= -LIM32 && bias <= LIM32;                         \
        for (int64_t i = 0; i < n; i += RUN) {                                                   \
            int64_t m = n - i < RUN ? n - i : RUN;                                               \
            if (LOAD(src + i, m, mask ? mask + i * os : NULL, os, bias, relu, fast, v, v32))     \
                store8_32(v32, m, s, out + i * os, os, st);                                      \
            else                                                                                 \
                store8(v, m, s, out + i * os, os, st);                                           \
        }                                                                                        \
    }
DEFINE_RUN(run_f32, load_f32, float)
DEFINE_RUN(run_f64, load_f64, double)

/* Batch-last blocks: t[b * D + d] <-> x[b + d * sd] (writes run along b), in
 * tiles of TB values of b so a tile's rows of t stay in cache. */
#define TB 32
static void gather_t(const int8_t *x, int64_t B, int64_t D, int64_t sd, int8_t *t)
{
    for (int64_t b0 = 0; b0 < B; b0 += TB) {
        int64_t b1 = b0 + TB < B ? b0 + TB : B;
        for (int64_t d = 0; d < D; d++)
            for (int64_t b = b0; b < b1; b++)
                t[b * D + d] = x[b + d * sd];
    }
}

static void scatter_t(const int8_t *t, int64_t B, int64_t D, int8_t *x, int64_t sd)
{
    for (int64_t b0 = 0; b0 < B; b0 += TB) {
        int64_t b1 = b0 + TB < B ? b0 + TB : B;
        for (int64_t d = 0; d < D; d++)
            for (int64_t b = b0; b < b1; b++)
                x[b + d * sd] = t[b * D + d];
    }
}

#define DEFINE_REQUANT(NAME, RUNF, T)                                                            \
    void NAME(const T *acc, const int64_t *bias, const int8_t *mask, int relu, int s,            \
              int64_t A, int64_t C, int64_t B, int64_t D, int8_t *dst,                            \
              int64_t sa, int64_t sc, int64_t sb, int64_t sd, int64_t *st)                        \
    {                                                                                            \
        if (B == 1 && D == 1 && sc == 1 && C <= RUN) { /* [A][C] rows, the bias along a row */   \
            int64_t v[RUN];                                                                      \
            for (int64_t a = 0; a < A; a++) {                                                    \
                const T *p = acc + a * C;                                                        \
                const int8_t *mk = mask ? mask + a * sa : NULL;                                  \
                for (int64_t c = 0; c < C; c++)                                                  \
                    v[c] = (mk && mk[c] <= 0 ? 0 : (int64_t)p[c]) + (bias ? bias[c] : 0);        \
                if (relu)                                                                        \
                    for (int64_t c = 0; c < C; c++)                                              \
                        v[c] = v[c] < 0 ? 0 : v[c];                                              \
                store8(v, C, s, dst + a * sa, 1, st);                                            \
            }                                                                                    \
            return;                                                                              \
        }                                                                                        \
        int8_t *t8 = D > 1 ? malloc((size_t)(2 * B * D)) : NULL, *m8 = t8 ? t8 + B * D : NULL;  \
        if (D > 1 && !t8)                                                                        \
            abort();                                                                             \
        for (int64_t a = 0; a < A; a++)                                                          \
            for (int64_t c = 0; c < C; c++) {                                                    \
                const T *p = acc + (a * C + c) * B * D;                                          \
                int64_t off = a * sa + c * sc, bc = bias ? bias[c] : 0;                          \
                if (D == 1) {                                                                    \
                    RUNF(p, B, mask ? mask + off : NULL, bc, relu, s, dst + off, sb, st);        \
                } else if (sb == 1 && t8) { /* contiguous run into t8, then transposed */        \
                    if (mask)                                                                    \
                        gather_t(mask + off, B, D, sd, m8);                                      \
                    RUNF(p, B * D, mask ? m8 : NULL, bc, relu, s, t8, 1, st);                    \
                    scatter_t(t8, B, D, dst + off, sd);                                          \
                } else {                                                                         \
                    for (int64_t b = 0; b < B; b++)                                              \
                        RUNF(p + b * D, D, mask ? mask + off + b * sb : NULL, bc, relu, s,       \
                             dst + off + b * sb, sd, st);                                        \
                }                                                                                \
            }                                                                                    \
        free(t8);                                                                                \
    }
DEFINE_REQUANT(ctrain_requant_f32, run_f32, float)
DEFINE_REQUANT(ctrain_requant_f64, run_f64, double)

/* acc[(h * W + w) * D + d] += the kernel offset (ky, kx)'s plane of columns */
#define DEFINE_SCATTER(NAME, T)                                                                    \
    CT_CLONES static void NAME(const T *plane, int64_t HO, int64_t WO, int64_t D, int64_t H,        \
                               int64_t W, int64_t stride, int64_t pad, int64_t ky, int64_t kx,     \
                               double *acc)                                                        \
    {                                                                                              \
        /* output columns ox whose input column ox * stride + kx - pad lies in [0, W) */            \
        int64_t ox0 = pad > kx ? (pad - kx + stride - 1) / stride : 0;                             \
        int64_t ox1 = W - 1 + pad - kx < 0 ? 0 : (W - 1 + pad - kx) / stride + 1;                  \
        ox1 = ox1 < WO ? ox1 : WO;                                                                 \
        for (int64_t oy = 0; oy < HO; oy++) {                                                      \
            int64_t iy = oy * stride + ky - pad;                                                   \
            if (iy < 0 || iy >= H || ox0 >= ox1)                                                   \
                continue;                                                                          \
            const T *src = plane + oy * WO * D;                                                    \
            double *row = acc + iy * W * D;                                                        \
            if (stride == 1) {                                                                     \
                double *r = row + (ox0 + kx - pad) * D;                                            \
                const T *q = src + ox0 * D;                                                        \
                for (int64_t i = 0; i < (ox1 - ox0) * D; i++)                                      \
                    r[i] += (double)q[i];                                                          \
            } else {                                                                               \
                for (int64_t ox = ox0; ox < ox1; ox++) {                                           \
                    double *r = row + (ox * stride + kx - pad) * D;                                \
                    const T *q = src + ox * D;                                                     \
                    for (int64_t d = 0; d < D; d++)                                                \
                        r[d] += (double)q[d];                                                      \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }
DEFINE_SCATTER(scatter_f32, float)
DEFINE_SCATTER(scatter_f64, double)

#define DEFINE_COL2IM(NAME, SCATTER, T)                                                             \
    void NAME(const T *cols, int64_t O, int64_t C, int64_t KH, int64_t KW, int64_t HO, int64_t WO,  \
              int64_t D, int64_t H, int64_t W, int64_t stride, int64_t pad, const int8_t *mask,     \
              int s, int8_t *dst, int64_t so, int64_t sc, int64_t sd, int64_t *st)                  \
    {                                                                                               \
        int64_t hw = H * W, plane = HO * WO * D;                                                    \
        double *acc = malloc(sizeof(double) * hw * D);                                              \
        int8_t *t8 = malloc((size_t)(2 * hw * D)), *m8 = t8 + hw * D;                               \
        if (!acc || !t8)                                                                            \
            abort();                                                                                \
        for (int64_t o = 0; o < O; o++)                                                             \
            for (int64_t c = 0; c < C; c++) {                                                       \
                const T *base = cols + (o * C + c) * KH * KW * plane;                               \
                memset(acc, 0, sizeof(double) * hw * D);                                            \
                for (int64_t ky = 0; ky < KH; ky++)                                                 \
                    for (int64_t kx = 0; kx < KW; kx++)                                             \
                        SCATTER(base + (ky * KW + kx) * plane, HO, WO, D, H, W, stride, pad, ky,    \
                                kx, acc);                                                           \
                int64_t off = o * so + c * sc;                                                      \
                if (D == 1) {                                                                       \
                    run_f64(acc, hw, mask ? mask + off : NULL, 0, 0, s, dst + off, 1, st);          \
                } else { /* contiguous run into t8, then transposed */                              \
                    if (mask)                                                                       \
                        gather_t(mask + off, hw, D, sd, m8);                                        \
                    run_f64(acc, hw * D, mask ? m8 : NULL, 0, 0, s, t8, 1, st);                     \
                    scatter_t(t8, hw, D, dst + off, sd);                                            \
                }                                                                                   \
            }                                                                                       \
        free(acc);                                                                                  \
        free(t8);                                                                                   \
    }
DEFINE_COL2IM(ctrain_col2im_requant_f32, scatter_f32, float)
DEFINE_COL2IM(ctrain_col2im_requant_f64, scatter_f64, double)

CT_CLONES
void ctrain_bn(const int8_t *x, const int32_t *a, const int64_t *bias, const int8_t *mask, int relu, int s,
               int64_t N, int64_t C, int64_t HW, int8_t *dst, int64_t *st)
{
    int64_t v[RUN];
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            int64_t off = (n * C + c) * HW, ac = a[c], bc = bias ? bias[c] : 0;
            for (int64_t i = 0; i < HW; i += RUN) {
                int64_t m = HW - i < RUN ? HW - i : RUN;
                const int8_t *xs = x + off + i;
                for (int64_t j = 0; j < m; j++)
                    v[j] = (int64_t)xs[j] * ac;
                if (mask)
                    for (int64_t j = 0; j < m; j++)
                        v[j] = mask[off + i + j] > 0 ? v[j] : 0;
                for (int64_t j = 0; j < m; j++)
                    v[j] += bc;
                if (relu)
                    for (int64_t j = 0; j < m; j++)
                        v[j] = v[j] < 0 ? 0 : v[j];
                store8(v, m, s, dst + off + i, 1, st);
            }
        }
}

/* store8 with rshift_round's ties going to the even neighbour for s > 0
 * (docs/numeric.md rshift_even: ADD's store) */
CT_CLONES
static void store8_even(const int64_t *v, int64_t n, int s, int8_t *out, int64_t *st)
{
    if (s <= 0) {
        store8(v, n, s, out, 1, st);
        return;
    }
    int64_t peak = st[0], sat = 0, nnz = 0;
    const int64_t half = 1LL << (s - 1), low = (1LL << s) - 1;
    for (int64_t i = 0; i < n; i++) {
        int64_t m = v[i] < 0 ? -v[i] : v[i];
        peak = m > peak ? m : peak;
        int64_t q = v[i] >> s, r = v[i] & low;
        q += (r > half) | ((r == half) & (q & 1));
        sat += (q > Q8) | (q < -Q8);
        q = q > Q8 ? Q8 : q < -Q8 ? -Q8 : q;
        nnz += q != 0;
        out[i] = (int8_t)q;
    }
    st[0] = peak;
    st[1] += sat;
    st[2] += nnz;
}

CT_CLONES
void ctrain_add(const int8_t *a, const int8_t *b, int la, int lb, const int8_t *mask, int relu, int s,
                int64_t count, int8_t *dst, int64_t *st)
{
    int64_t v[RUN];
    const int64_t ma = 1LL << la, mb = 1LL << lb;
    for (int64_t i = 0; i < count; i += RUN) {
        int64_t m = count - i < RUN ? count - i : RUN;
        for (int64_t j = 0; j < m; j++)
            v[j] = (int64_t)a[i + j] * ma + (int64_t)b[i + j] * mb;
        if (mask)
            for (int64_t j = 0; j < m; j++)
                v[j] = mask[i + j] > 0 ? v[j] : 0;
        if (relu)
            for (int64_t j = 0; j < m; j++)
                v[j] = v[j] < 0 ? 0 : v[j];
        store8_even(v, m, s, dst + i, st);
    }
}

CT_CLONES
void ctrain_maxpool(const int8_t *x, int64_t NC, int64_t H, int64_t W, int64_t KH, int64_t KW,
                    int64_t stride, int64_t HO, int64_t WO, int8_t *y, int64_t *st)
{
    int64_t peak = st[0], nnz = 0;
    if (KH == 2 && KW == 2 && stride == 2) { /* the common window, branch-free */
        int32_t pk = 0, nz = 0;
        for (int64_t p = 0; p < NC; p++)
            for (int64_t oy = 0; oy < HO; oy++) {
                const int8_t *r0 = x + p * H * W + 2 * oy * W, *r1 = r0 + W;
                int8_t *row = y + (p * HO + oy) * WO;
                for (int64_t ox = 0; ox < WO; ox++) {
                    int32_t a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
                    int32_t ab = a > b ? a : b, cd = c > d ? c : d, m = ab > cd ? ab : cd;
                    int32_t am = m < 0 ? -m : m;
                    pk = am > pk ? am : pk;
                    nz += m != 0;
                    row[ox] = (int8_t)m;
                }
            }
        st[0] = pk > peak ? pk : peak;
        st[2] += nz;
        return;
    }
    for (int64_t p = 0; p < NC; p++) {
        const int8_t *xp = x + p * H * W;
        int8_t *yp = y + p * HO * WO;
        for (int64_t oy = 0; oy < HO; oy++) {
            int8_t *row = yp + oy * WO;
            for (int64_t ox = 0; ox < WO; ox++)
                row[ox] = xp[oy * stride * W + ox * stride];
            for (int64_t ky = 0; ky < KH; ky++)
                for (int64_t kx = 0; kx < KW; kx++) {
                    const int8_t *in = xp + (oy * stride + ky) * W + kx;
                    for (int64_t ox = 0; ox < WO; ox++) {
                        int8_t t = in[ox * stride];
                        row[ox] = t > row[ox] ? t : row[ox];
                    }
                }
            for (int64_t ox = 0; ox < WO; ox++) {
                int64_t m = row[ox] < 0 ? -(int64_t)row[ox] : row[ox];
                peak = m > peak ? m : peak;
                nnz += row[ox] != 0;
            }
        }
    }
    st[0] = peak;
    st[2] += nnz;
}

CT_CLONES
static void maxpool_bp_2x2(const int8_t *err, const int8_t *x, int64_t NC, int64_t H, int64_t W, int64_t HO,
                           int64_t WO, int relu_mask, int8_t *dst, int64_t *st)
{
    int32_t peak = 0, sat = 0, nnz = 0;
    for (int64_t p = 0; p < NC; p++)
        for (int64_t oy = 0; oy < HO; oy++) {
            const int8_t *r0 = x + p * H * W + 2 * oy * W, *r1 = r0 + W, *e = err + (p * HO + oy) * WO;
            int8_t *d0 = dst + p * H * W + 2 * oy * W, *d1 = d0 + W;
            for (int64_t ox = 0; ox < WO; ox++) { /* arithmetic selects only: vectorisable */
                int32_t a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
                int32_t ab = a > b ? a : b, cd = c > d ? c : d, m = ab > cd ? ab : cd;
                int32_t keep = (relu_mask == 0) | (m > 0);
                int32_t g = e[ox] * keep;
                int32_t low = g < -Q8;
                sat += low;
                g += low; /* -128 -> -127 */
                int32_t ag = g < 0 ? -g : g;
                peak = ag > peak ? ag : peak;
                nnz += g != 0;
                /* the first maximum in row-major order takes g */
                int32_t sa = a == m, sb = (b == m) & (sa ^ 1), sc = (c == m) & ((sa | sb) ^ 1);
                int32_t sd = (sa | sb | sc) ^ 1;
                d0[2 * ox] = (int8_t)(g * sa);
                d0[2 * ox + 1] = (int8_t)(g * sb);
                d1[2 * ox] = (int8_t)(g * sc);
                d1[2 * ox + 1] = (int8_t)(g * sd);
            }
        }
    st[0] = peak > st[0] ? peak : st[0];
    st[1] += sat;
    st[2] += nnz;
}

void ctrain_maxpool_bp(const int8_t *err, const int8_t *x, int64_t NC, int64_t H, int64_t W,
                       int64_t KH, int64_t KW, int64_t stride, int64_t HO, int64_t WO, int relu_mask,
                       int8_t *dst, int64_t *st)
{
    int64_t peak = st[0], sat = 0, nnz = 0;
    memset(dst, 0, (size_t)(NC * H * W));
    if (KH == 2 && KW == 2 && stride == 2) { /* the common window, branch-free */
        maxpool_bp_2x2(err, x, NC, H, W, HO, WO, relu_mask, dst, st);
        return;
    }
    for (int64_t p = 0; p < NC; p++) {
        const int8_t *xp = x + p * H * W, *ep = err + p * HO * WO;
        int8_t *dp = dst + p * H * W;
        for (int64_t oy = 0; oy < HO; oy++)
            for (int64_t ox = 0; ox < WO; ox++) {
                int64_t at = oy * stride * W + ox * stride, best = at;
                int8_t mx = xp[at];
                for (int64_t ky = 0; ky < KH; ky++)
                    for (int64_t kx = 0; kx < KW; kx++) {
                        int64_t q = at + ky * W + kx;
                        if (xp[q] > mx) {  /* strictly greater: the first maximum wins */
                            mx = xp[q];
                            best = q;
                        }
                    }
                int64_t g = (relu_mask && mx <= 0) ? 0 : ep[oy * WO + ox];
                if (g < -Q8) {
                    g = -Q8;
                    sat++;
                }
                int64_t m = g < 0 ? -g : g;
                peak = m > peak ? m : peak;
                nnz += g != 0;
                dp[best] = (int8_t)g;
            }
    }
    st[0] = peak;
    st[1] += sat;
    st[2] += nnz;
}

/* rshift_round for s > 0 (the common case of every UPDATE shift) */
static inline int64_t rshr_pos(int64_t v, int s) { return (v + (1LL << (s - 1))) >> s; }
static inline int64_t sat32_pos(int64_t v) { return v > Q32 ? Q32 : v < -Q32 ? -Q32 : v; }

/* The update with every shift > 0: 32 x 32 -> 64-bit products (the table's
 * multipliers are int32), so the compiler can use widening vector multiplies. */
CT_CLONES
static void update_pos(const int32_t *g, int32_t *w, int32_t *v, int64_t lo, int64_t hi, int32_t lr_m, int s_g,
                       int lr_s, int32_t mu_m, int mu_s, int32_t wd_m, int wd_s, int64_t *wn_out, int64_t *vn_out)
{
    for (int64_t i = lo; i < hi; i++) {
        int64_t t_g = sat32_pos(rshr_pos((int64_t)lr_m * g[i], s_g));
        int32_t d = (int32_t)sat32_pos(rshr_pos((int64_t)wd_m * w[i], wd_s));
        int64_t t_wd = sat32_pos(rshr_pos((int64_t)lr_m * d, lr_s));
        int64_t t_mu = sat32_pos(rshr_pos((int64_t)mu_m * v[i], mu_s));
        int64_t vn = sat32_pos(t_mu + t_g + t_wd);
        wn_out[i - lo] = sat32_pos(w[i] - vn);
        vn_out[i - lo] = vn;
    }
}

void ctrain_update(const int32_t *g, int32_t *w, int32_t *v, const int8_t *mask, int8_t *q,
                   int64_t lo, int64_t hi, int64_t count_w, int64_t lr_m, int s_g, int lr_s,
                   int64_t mu_m, int mu_s, int64_t wd_m, int wd_s, int s_q, int64_t *st)
{
    int64_t peak = st[0], sat = 0, nnz = 0;
    int64_t wn_buf[RUN], vn_buf[RUN];
    const int fast = s_g > 0 && lr_s > 0 && mu_s > 0 && wd_s > 0;
    for (int64_t i0 = lo; i0 < hi; i0 += RUN) {
        int64_t i1 = i0 + RUN < hi ? i0 + RUN : hi;
        if (fast) {
            update_pos(g, w, v, i0, i1, (int32_t)lr_m, s_g, lr_s, (int32_t)mu_m, mu_s, (int32_t)wd_m, wd_s,
                       wn_buf, vn_buf);
        } else {
            for (int64_t i = i0; i < i1; i++) {
                int64_t t_g = sat32(rshr(lr_m * g[i], s_g));
                int64_t t_wd = sat32(rshr(lr_m * sat32(rshr(wd_m * w[i], wd_s)), lr_s));
                int64_t t_mu = sat32(rshr(mu_m * v[i], mu_s));
                int64_t vn = sat32(t_mu + t_g + t_wd);
                wn_buf[i - i0] = sat32(w[i] - vn);
                vn_buf[i - i0] = vn;
            }
        }
        for (int64_t i = i0; i < i1; i++) {
            int64_t wn = wn_buf[i - i0], vn = vn_buf[i - i0];
            if (i < count_w) {
                if (mask[i] == 0)
                    wn = vn = 0;
                int64_t m = wn < 0 ? -wn : wn;
                peak = m > peak ? m : peak;
                int64_t r = rshr(wn, s_q);
                sat += (r > Q8) | (r < -Q8);
                r = r > Q8 ? Q8 : r < -Q8 ? -Q8 : r;
                nnz += r != 0;
                q[i] = (int8_t)r;
            }
            w[i] = (int32_t)wn;
            v[i] = (int32_t)vn;
        }
    }
    st[0] = peak;
    st[1] += sat;
    st[2] += nnz;
}

/* Image-major im2col: each (image, channel) plane converted once into a
 * zero-bordered buffer, then every column row is a plain (or strided) copy. */
#define DEFINE_IM2COL_IM(NAME, T)                                                                   \
    CT_CLONES static void NAME(const int8_t *x, int64_t C, int64_t H, int64_t W, int64_t KH,        \
                               int64_t KW, int64_t stride, int64_t pad, int64_t HO, int64_t WO,     \
                               int64_t lo, int64_t hi, T *cols)                                     \
    {                                                                                               \
        /* rows the windows reach: pad above, enough below for the last window */                  \
        int64_t hp = (HO - 1) * stride + KH, wp = (WO - 1) * stride + KW;                           \
        hp = hp > H + pad ? hp : H + pad;                                                           \
        wp = wp > W + pad ? wp : W + pad;                                                           \
        T *buf = calloc((size_t)(hp * wp), sizeof(T));                                              \
        if (!buf)                                                                                   \
            abort();                                                                                \
        for (int64_t n = lo; n < hi; n++)                                                           \
            for (int64_t c = 0; c < C; c++) {                                                       \
                const int8_t *src = x + (n * C + c) * H * W;                                        \
                for (int64_t y = 0; y < H; y++)                                                     \
                    for (int64_t i = 0; i < W; i++)                                                 \
                        buf[(y + pad) * wp + i + pad] = (T)src[y * W + i];                          \
                T *out = cols + (n * C + c) * KH * KW * HO * WO;                                    \
                for (int64_t ky = 0; ky < KH; ky++)                                                 \
                    for (int64_t kx = 0; kx < KW; kx++)                                             \
                        for (int64_t oy = 0; oy < HO; oy++) {                                       \
                            const T *in = buf + (oy * stride + ky) * wp + kx;                       \
                            T *row = out + ((ky * KW + kx) * HO + oy) * WO;                         \
                            if (stride == 1)                                                        \
                                memcpy(row, in, sizeof(T) * WO);                                    \
                            else                                                                    \
                                for (int64_t ox = 0; ox < WO; ox++)                                 \
                                    row[ox] = in[ox * stride];                                      \
                        }                                                                           \
            }                                                                                       \
        free(buf);                                                                                  \
    }
DEFINE_IM2COL_IM(im2col_im_f32, float)
DEFINE_IM2COL_IM(im2col_im_f64, double)
DEFINE_IM2COL_IM(im2col_im_i8, int8_t)

/* im2col of int8 NCHW activations, every entry written (padding 0):
 * image-major cols [N][C][KH][KW][HO][WO] for images [lo, hi), batch-last
 * [C][KH][KW][HO][WO][N] for channels [lo, hi). */
#define DEFINE_IM2COL(NAME, IM, T)                                                                    \
    CT_CLONES void NAME(const int8_t *x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t KH,    \
                        int64_t KW, int64_t stride, int64_t pad, int64_t HO, int64_t WO,            \
                        int batch_last, int64_t lo, int64_t hi, T *cols)                            \
    {                                                                                               \
        if (!batch_last) {                                                                          \
            IM(x, C, H, W, KH, KW, stride, pad, HO, WO, lo, hi, cols);                              \
            return;                                                                                 \
        }                                                                                           \
        int64_t D = batch_last ? N : 1, plane = HO * WO * D;                                        \
        int8_t *xt = batch_last ? malloc((size_t)(H * W * N)) : NULL;                               \
        if (batch_last && !xt)                                                                      \
            abort();                                                                                \
        for (int64_t u = lo; u < hi; u++) {                                                         \
            int64_t n0 = batch_last ? 0 : u, n1 = n0 + 1; /* batch-last: all images at once */      \
            int64_t c0 = batch_last ? u : 0, c1 = batch_last ? u + 1 : C;                           \
            for (int64_t n = n0; n < n1; n++)                                                       \
                for (int64_t c = c0; c < c1; c++) {                                                 \
                    const int8_t *src = x + (n * C + c) * H * W; /* rows of W (D = 1) */            \
                    if (batch_last) { /* [H][W][N] of this channel: rows of W * N */               \
                        for (int64_t m = 0; m < N; m++)                                             \
                            for (int64_t p = 0; p < H * W; p++)                                     \
                                xt[p * N + m] = x[(m * C + c) * H * W + p];                         \
                        src = xt;                                                                   \
                    }                                                                               \
                    T *out = cols + (batch_last ? c * KH * KW * plane : (n * C + c) * KH * KW * plane); \
                    for (int64_t ky = 0; ky < KH; ky++)                                             \
                        for (int64_t kx = 0; kx < KW; kx++) {                                       \
                            int64_t ox0 = pad > kx ? (pad - kx + stride - 1) / stride : 0;          \
                            int64_t ox1 = W - 1 + pad - kx < 0 ? 0 : (W - 1 + pad - kx) / stride + 1; \
                            ox1 = ox1 < WO ? ox1 : WO;                                              \
                            ox0 = ox0 < ox1 ? ox0 : ox1;                                            \
                            for (int64_t oy = 0; oy < HO; oy++) {                                   \
                                T *row = out + ((ky * KW + kx) * HO + oy) * WO * D;                 \
                                int64_t iy = oy * stride + ky - pad;                                \
                                if (iy < 0 || iy >= H) {                                            \
                                    memset(row, 0, sizeof(T) * WO * D);                             \
                                    continue;                                                       \
                                }                                                                   \
                                memset(row, 0, sizeof(T) * ox0 * D);                                \
                                memset(row + ox1 * D, 0, sizeof(T) * (WO - ox1) * D);               \
                                const int8_t *in = src + iy * W * D;                                \
                                if (stride == 1) {                                                  \
                                    const int8_t *q = in + (ox0 + kx - pad) * D;                    \
                                    T *r = row + ox0 * D;                                           \
                                    for (int64_t i = 0; i < (ox1 - ox0) * D; i++)                   \
                                        r[i] = (T)q[i];                                             \
                                } else {                                                            \
                                    for (int64_t ox = ox0; ox < ox1; ox++)                          \
                                        for (int64_t d = 0; d < D; d++)                             \
                                            row[ox * D + d] = (T)in[(ox * stride + kx - pad) * D + d]; \
                                }                                                                   \
                            }                                                                       \
                        }                                                                           \
                }                                                                                   \
        }                                                                                           \
        free(xt);                                                                                   \
    }
DEFINE_IM2COL(ctrain_im2col_f32, im2col_im_f32, float)
DEFINE_IM2COL(ctrain_im2col_f64, im2col_im_f64, double)
DEFINE_IM2COL(ctrain_im2col_i8, im2col_im_i8, int8_t)

/* CONV_WG's stores: dst = sat32(rshift_round(g, s)) for exact integer sums g
 * (|g| < 2^53); st: peak of the rounded values before the clamp, clamps,
 * nonzeros stored. */
#define DEFINE_STORE_GRADS(NAME, T)                                                                 \
    void NAME(const T *g, int64_t n, int s, int32_t *dst, int64_t *st)                             \
    {                                                                                               \
        int64_t peak = st[0], sat = 0, nnz = 0;                                                     \
        for (int64_t i = 0; i < n; i++) {                                                           \
            int64_t v = rshr((int64_t)g[i], s), m = v < 0 ? -v : v;                                 \
            peak = m > peak ? m : peak;                                                             \
            int64_t c = sat32(v);                                                                   \
            sat += c != v;                                                                          \
            nnz += c != 0;                                                                          \
            dst[i] = (int32_t)c;                                                                    \
        }                                                                                           \
        st[0] = peak;                                                                               \
        st[1] += sat;                                                                               \
        st[2] += nnz;                                                                               \
    }
DEFINE_STORE_GRADS(ctrain_store_grads_f32, float)
DEFINE_STORE_GRADS(ctrain_store_grads_f64, double)

/* out[c] = sum over n < N, p < P of x[n][c][p] (int8, exact in int64):
 * CONV_WG's bias gradient from the int8 errors */
CT_CLONES
void ctrain_channel_sums_i8(const int8_t *x, int64_t N, int64_t C, int64_t P, int64_t *out)
{
    for (int64_t c = 0; c < C; c++)
        out[c] = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            const int8_t *row = x + (n * C + c) * P;
            int32_t s = 0; /* |s| <= 128 * P: P < 2^24 keeps it in range */
            int64_t p = 0;
            for (; p + (1 << 20) <= P; p += 1 << 20) { /* long rows: int64 every 2^20 terms */
                for (int64_t q = p; q < p + (1 << 20); q++)
                    s += row[q];
                out[c] += s;
                s = 0;
            }
            for (; p < P; p++)
                s += row[p];
            out[c] += s;
        }
}

/* rows r[0..8) of 8 bytes -> their transpose (byte j of r[i] <-> byte i of r[j]) */
static inline void transpose8x8(uint64_t r[8])
{
    for (int i = 0; i < 8; i += 2) {
        uint64_t t = ((r[i] >> 8) ^ r[i + 1]) & 0x00FF00FF00FF00FFULL;
        r[i + 1] ^= t;
        r[i] ^= t << 8;
    }
    for (int i = 0; i < 8; i += 4)
        for (int k = i; k < i + 2; k++) {
            uint64_t t = ((r[k] >> 16) ^ r[k + 2]) & 0x0000FFFF0000FFFFULL;
            r[k + 2] ^= t;
            r[k] ^= t << 16;
        }
    for (int k = 0; k < 4; k++) {
        uint64_t t = ((r[k] >> 32) ^ r[k + 4]) & 0x00000000FFFFFFFFULL;
        r[k + 4] ^= t;
        r[k] ^= t << 32;
    }
}

/* out[d][n] = x[n][d] for int8 x [N][D]: an NCHW tensor into the batch-last
 * layout [C*H*W][N], as int8 or converted (exactly) to float; 8x8 blocks
 * transposed in registers (a strided byte copy costs ten times as much) */
#define DEFINE_TO_BATCH_LAST(NAME, T)                                                               \
    CT_CLONES void NAME(const int8_t *x, int64_t N, int64_t D, T *out)                              \
    {                                                                                               \
        int64_t n8 = N / 8 * 8, d8 = D / 8 * 8;                                                     \
        for (int64_t n0 = 0; n0 < n8; n0 += 8)                                                      \
            for (int64_t d0 = 0; d0 < d8; d0 += 8) {                                                \
                uint64_t r[8];                                                                      \
                for (int i = 0; i < 8; i++)                                                         \
                    memcpy(&r[i], x + (n0 + i) * D + d0, 8);                                        \
                transpose8x8(r);                                                                    \
                for (int j = 0; j < 8; j++) {                                                       \
                    int8_t b[8];                                                                    \
                    memcpy(b, &r[j], 8);                                                            \
                    for (int i = 0; i < 8; i++)                                                     \
                        out[(d0 + j) * N + n0 + i] = (T)b[i];                                       \
                }                                                                                   \
            }                                                                                       \
        for (int64_t n = 0; n < N; n++) /* the edges */                                             \
            for (int64_t d = (n < n8 ? d8 : 0); d < D; d++)                                         \
                out[d * N + n] = (T)x[n * D + d];                                                   \
    }
DEFINE_TO_BATCH_LAST(ctrain_to_batch_last_i8, int8_t)
DEFINE_TO_BATCH_LAST(ctrain_to_batch_last_f32, float)
