/* host_lib GEMMs for the numpy engine's small convolutions: float32 on
 * int8-valued operands, exact wherever the engine uses them (at most 2^10
 * products per float32 sum, each at most 2^14: every partial sum is an integer
 * below 2^24, so any summation order gives the exact result, docs/numeric.md
 * "Exactness"). Register-blocked with GCC/Clang vector extensions (8 floats),
 * which compile to AVX2 in the x86-64 clone and to SSE/NEON pairs elsewhere. */
#if defined(__GNUC__) && !defined(__clang__)
/* a*b + c as one FMA where the target has it: exact either way (integers below 2^24) */
#pragma GCC optimize("fp-contract=fast")
#endif
#include <stdlib.h>
#include <string.h>
#include "ctrain_kernels.h"


#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi" /* vector helpers are static inline: no ABI crosses */
#endif
typedef float v8f __attribute__((vector_size(32)));
typedef float v8fu __attribute__((vector_size(32), aligned(4)));

#define MR 6
#define NR 16
/* most terms one float32 sum of the gram kernel takes (exact below 2^24) */
#define TERMS 1024

static inline v8f ld(const float *p) { return *(const v8fu *)p; }
static inline void st(float *p, v8f v) { *(v8fu *)p = v; }

/* C[MR][NR] (row stride ldc) = Ap (packed [K][MR]) times B panel ([K] rows of NR, stride ldb) */
CT_CLONES
static void kernel_6x16(const float *Ap, const float *B, int64_t K, int64_t ldb, float *C, int64_t ldc)
{
    v8f c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};
    v8f c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};
    for (int64_t k = 0; k < K; k++) {
        v8f b0 = ld(B + k * ldb), b1 = ld(B + k * ldb + 8);
        const float *a = Ap + k * MR;
        c00 += a[0] * b0; c01 += a[0] * b1;
        c10 += a[1] * b0; c11 += a[1] * b1;
        c20 += a[2] * b0; c21 += a[2] * b1;
        c30 += a[3] * b0; c31 += a[3] * b1;
        c40 += a[4] * b0; c41 += a[4] * b1;
        c50 += a[5] * b0; c51 += a[5] * b1;
    }
    st(C, c00); st(C + 8, c01);
    st(C + ldc, c10); st(C + ldc + 8, c11);
    st(C + 2 * ldc, c20); st(C + 2 * ldc + 8, c21);
    st(C + 3 * ldc, c30); st(C + 3 * ldc + 8, c31);
    st(C + 4 * ldc, c40); st(C + 4 * ldc + 8, c41);
    st(C + 5 * ldc, c50); st(C + 5 * ldc + 8, c51);
}

/* C[n] = A times B[n] for B of element type TB (float, or int8 columns
 * converted while packed: a quarter of the bytes to write and read). */
#define DEFINE_GEMM(NAME, TB)                                                                       \
    void NAME(const float *A, int64_t M, int64_t K, const TB *B, int64_t N, int64_t batch,          \
              int64_t sb, int64_t sc, float *C)                                                     \
    {                                                                                               \
        int64_t mb = (M + MR - 1) / MR;                                                             \
        int convert = sizeof(TB) != sizeof(float);                                                  \
        float *Ap = calloc((size_t)(mb * K * MR), sizeof(float));                                   \
        float *tb = malloc(sizeof(float) * (size_t)(K * NR)); /* a packed panel of B */             \
        float tc[MR * NR], *tcp = tc;                                                               \
        if (!Ap || !tb)                                                                             \
            abort();                                                                                \
        for (int64_t i = 0; i < M; i++) /* A in blocks of MR rows, [K][MR] each, zero rows past M */ \
            for (int64_t k = 0; k < K; k++)                                                         \
                Ap[(i / MR) * K * MR + k * MR + i % MR] = A[i * K + k];                             \
        /* panel by panel of B, every block of rows of A against it; the panel is                   \
         * packed ([K][NR] contiguous, in L1 for every block; B's rows may be far                   \
         * apart and alias in the cache) when several blocks share it, when it is                   \
         * partial, or to convert it */                                                             \
        for (int64_t n = 0; n < batch; n++) {                                                       \
            const TB *Bn = B + n * sb;                                                              \
            float *Cn = C + n * sc;                                                                 \
            for (int64_t j = 0; j < N; j += NR) {                                                   \
                int64_t w = N - j < NR ? N - j : NR;                                                \
                const float *panel = (const float *)(const void *)(Bn + j);                         \
                int64_t ldp = N;                                                                    \
                if (w < NR || mb > 1 || convert) {                                                  \
                    pack_panel_##NAME(Bn + j, N, K, w, tb);                                         \
                    panel = tb;                                                                     \
                    ldp = NR;                                                                       \
                }                                                                                   \
                for (int64_t ib = 0; ib < mb; ib++) {                                               \
                    int64_t rows = M - ib * MR < MR ? M - ib * MR : MR;                             \
                    float *crow = Cn + ib * MR * N + j;                                             \
                    if (rows == MR && w == NR) {                                                    \
                        kernel_6x16(Ap + ib * K * MR, panel, K, ldp, crow, N);                      \
                    } else {                                                                        \
                        kernel_6x16(Ap + ib * K * MR, panel, K, ldp, tcp, NR);                      \
                        for (int64_t r = 0; r < rows; r++)                                          \
                            memcpy(crow + r * N, tc + r * NR, sizeof(float) * w);                   \
                    }                                                                               \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
        free(Ap);                                                                                   \
        free(tb);                                                                                   \
    }

/* tb[k][0..NR) = B[k * ldb + 0..w) as float, zeros past w */
CT_CLONES
static void pack_panel_ctrain_gemm_f32(const float *B, int64_t ldb, int64_t K, int64_t w, float *tb)
{
    for (int64_t k = 0; k < K; k++) {
        memcpy(tb + k * NR, B + k * ldb, sizeof(float) * w);
        if (w < NR)
            memset(tb + k * NR + w, 0, sizeof(float) * (NR - w));
    }
}

typedef signed char v8c __attribute__((vector_size(8)));
typedef int v8i __attribute__((vector_size(32)));

CT_CLONES
static void pack_panel_ctrain_gemm_b8(const int8_t *B, int64_t ldb, int64_t K, int64_t w, float *tb)
{
    for (int64_t k = 0; k < K; k++) {
        const int8_t *src = B + k * ldb;
        float *dst = tb + k * NR;
        if (w == NR) { /* two vectors of 8: sign-extend and convert (exact) */
            v8c lo, hi;
            memcpy(&lo, src, 8);
            memcpy(&hi, src + 8, 8);
            st(dst, __builtin_convertvector(__builtin_convertvector(lo, v8i), v8f));
            st(dst + 8, __builtin_convertvector(__builtin_convertvector(hi, v8i), v8f));
        } else {
            for (int64_t l = 0; l < NR; l++)
                dst[l] = l < w ? (float)src[l] : 0.0f;
        }
    }
}
DEFINE_GEMM(ctrain_gemm_f32, float)
DEFINE_GEMM(ctrain_gemm_b8, int8_t)

/* acc[3][4] partial sums of rows a0..a2 of A times rows b0..b3 of B over t in [0, T) */
CT_CLONES
static void gram_3x4(const float *A, int64_t lda, const float *B, int64_t ldb, int64_t T, double *out,
                     int64_t ldo, int rows, int cols)
{
    for (int64_t t0 = 0; t0 < T; t0 += TERMS) {
        int64_t t1 = t0 + TERMS < T ? t0 + TERMS : T, tv = t0 + (t1 - t0) / 8 * 8;
        v8f c[3][4] = {{{0}}};
        const float *a0 = A, *a1 = A + (rows > 1 ? lda : 0), *a2 = A + (rows > 2 ? 2 * lda : 0);
        const float *b0 = B, *b1 = B + (cols > 1 ? ldb : 0), *b2 = B + (cols > 2 ? 2 * ldb : 0),
                    *b3 = B + (cols > 3 ? 3 * ldb : 0);
        for (int64_t t = t0; t < tv; t += 8) {
            v8f x0 = ld(a0 + t), x1 = ld(a1 + t), x2 = ld(a2 + t);
            v8f y0 = ld(b0 + t), y1 = ld(b1 + t), y2 = ld(b2 + t), y3 = ld(b3 + t);
            c[0][0] += x0 * y0; c[0][1] += x0 * y1; c[0][2] += x0 * y2; c[0][3] += x0 * y3;
            c[1][0] += x1 * y0; c[1][1] += x1 * y1; c[1][2] += x1 * y2; c[1][3] += x1 * y3;
            c[2][0] += x2 * y0; c[2][1] += x2 * y1; c[2][2] += x2 * y2; c[2][3] += x2 * y3;
        }
        const float *ar[3] = {a0, a1, a2}, *br[4] = {b0, b1, b2, b3};
        for (int r = 0; r < rows; r++)
            for (int q = 0; q < cols; q++) {
                float s = 0;
                for (int l = 0; l < 8; l++)
                    s += c[r][q][l];
                for (int64_t t = tv; t < t1; t++)
                    s += ar[r][t] * br[q][t];
                out[r * ldo + q] += (double)s;
            }
    }
}

void ctrain_gram_f32(const float *A, int64_t M, const float *B, int64_t N, int64_t T, int64_t batch,
                     int64_t sa, int64_t sb, int64_t lda, int64_t ldb, double *out, int64_t ldo)
{
    /* span by span of terms (each one exact float32 sum), every block of A's
     * rows against each block of B's: a span of A stays in L2, a block of B's
     * rows in L1 */
    for (int64_t n = 0; n < batch; n++)
        for (int64_t t0 = 0; t0 < T; t0 += TERMS) {
            int64_t tn = T - t0 < TERMS ? T - t0 : TERMS;
            for (int64_t j = 0; j < N; j += 4)
                for (int64_t i = 0; i < M; i += 3)
                    gram_3x4(A + n * sa + i * lda + t0, lda, B + n * sb + j * ldb + t0, ldb, tn,
                             out + i * ldo + j, ldo, M - i < 3 ? (int)(M - i) : 3, N - j < 4 ? (int)(N - j) : 4);
        }
}

/* rows [r0, r1) of an int8 matrix (row stride ld), terms [t0, t0 + tn), as float rows tn apart */
CT_CLONES
static void rows_to_float(const int8_t *X, int64_t ld, int64_t r0, int64_t r1, int64_t t0, int64_t tn, float *dst)
{
    for (int64_t r = r0; r < r1; r++)
        for (int64_t t = 0; t < tn; t++)
            dst[(r - r0) * tn + t] = (float)X[r * ld + t0 + t];
}

void ctrain_gram_i8(const int8_t *A, int64_t M, const int8_t *B, int64_t N, int64_t T, int64_t batch,
                    int64_t sa, int64_t sb, int64_t lda, int64_t ldb, double *out, int64_t ldo)
{
    /* as ctrain_gram_f32, each span of A and each block of B's rows converted
     * to float first (exact), then the same float32 sums */
    int64_t span = T < TERMS ? T : TERMS;
    float *fa = malloc(sizeof(float) * (size_t)(M * span + 4 * span));
    if (!fa)
        abort();
    float *fb = fa + M * span;
    for (int64_t n = 0; n < batch; n++)
        for (int64_t t0 = 0; t0 < T; t0 += TERMS) {
            int64_t tn = T - t0 < TERMS ? T - t0 : TERMS;
            rows_to_float(A + n * sa, lda, 0, M, t0, tn, fa);
            for (int64_t j = 0; j < N; j += 4) {
                int64_t cols = N - j < 4 ? N - j : 4;
                rows_to_float(B + n * sb, ldb, j, j + cols, t0, tn, fb);
                for (int64_t i = 0; i < M; i += 3)
                    gram_3x4(fa + i * tn, tn, fb, tn, tn, out + i * ldo + j, ldo, M - i < 3 ? (int)(M - i) : 3,
                             (int)cols);
            }
        }
    free(fa);
}
