/* host_lib kernels: the numpy engine's fused integer passes (docs/numeric.md),
 * bit-identical to its numpy forms. Each adds its statistics into st:
 * st[0] = max(st[0], peak), st[1] += saturated stores, st[2] += nonzero stores.
 * Shifts arrive clamped to [-62, 62]. */
#ifndef CTRAIN_KERNELS_H
#define CTRAIN_KERNELS_H
#include <stdint.h>
#include <stdlib.h>

/* Hot loops get an x86-64-v3 (AVX2 + FMA) clone beside the baseline one,
 * picked at load time (an ifunc: GCC with glibc); elsewhere plain C. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__) && __GNUC__ >= 12
#define CT_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#elif defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
#define CT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CT_CLONES
#endif

/* @cdef-begin */
/* dst = sat8(rshift_round(relu(mask ? acc : 0) + bias[c]), s)) for acc
 * [A][C][B][D] (contiguous, exact integers), dst/mask element (a,c,b,d) at
 * a*sa + c*sc + b*sb + d*sd; bias (one per c) and mask may be NULL. */
void ctrain_requant_f32(const float *acc, const int64_t *bias, const int8_t *mask, int relu, int s,
                        int64_t A, int64_t C, int64_t B, int64_t D, int8_t *dst,
                        int64_t sa, int64_t sc, int64_t sb, int64_t sd, int64_t *st);
void ctrain_requant_f64(const double *acc, const int64_t *bias, const int8_t *mask, int relu, int s,
                        int64_t A, int64_t C, int64_t B, int64_t D, int8_t *dst,
                        int64_t sa, int64_t sc, int64_t sb, int64_t sd, int64_t *st);
/* CONV_EB's tail: x[o][c][h][w][d] = sum of the columns [O][C][KH][KW][HO][WO][D]
 * at the input positions they came from, then the masked int8 store of
 * ctrain_requant (no bias, no ReLU); dst/mask element at o*so + c*sc + h*W + w + d*sd. */
void ctrain_col2im_requant_f32(const float *cols, int64_t O, int64_t C, int64_t KH, int64_t KW,
                               int64_t HO, int64_t WO, int64_t D, int64_t H, int64_t W,
                               int64_t stride, int64_t pad, const int8_t *mask, int s,
                               int8_t *dst, int64_t so, int64_t sc, int64_t sd, int64_t *st);
void ctrain_col2im_requant_f64(const double *cols, int64_t O, int64_t C, int64_t KH, int64_t KW,
                               int64_t HO, int64_t WO, int64_t D, int64_t H, int64_t W,
                               int64_t stride, int64_t pad, const int8_t *mask, int s,
                               int8_t *dst, int64_t so, int64_t sc, int64_t sd, int64_t *st);
/* BN_FP / BN_BP on x [N][C][HW]: acc = x * a[c], masked, + bias[c], ReLU, store. */
void ctrain_bn(const int8_t *x, const int32_t *a, const int64_t *bias, const int8_t *mask, int relu, int s,
               int64_t N, int64_t C, int64_t HW, int8_t *dst, int64_t *st);
/* ADD: acc = a * 2^la + b * 2^lb (0 <= la, lb <= 40), masked, ReLU, store
 * with ties (s > 0) to the even neighbour (docs/numeric.md rshift_even). */
void ctrain_add(const int8_t *a, const int8_t *b, int la, int lb, const int8_t *mask, int relu, int s,
                int64_t count, int8_t *dst, int64_t *st);
/* POOL_FP over [NC][H][W]; st: peak and nonzeros of the stored output. */
void ctrain_maxpool(const int8_t *x, int64_t NC, int64_t H, int64_t W, int64_t KH, int64_t KW,
                    int64_t stride, int64_t HO, int64_t WO, int8_t *y, int64_t *st);
/* POOL_BP with disjoint windows (stride >= KH, KW): each window's error
 * (0 when relu_mask and its maximum <= 0) to its first maximum, sat8; every
 * other input position 0. */
void ctrain_maxpool_bp(const int8_t *err, const int8_t *x, int64_t NC, int64_t H, int64_t W,
                       int64_t KH, int64_t KW, int64_t stride, int64_t HO, int64_t WO, int relu_mask,
                       int8_t *dst, int64_t *st);
/* UPDATE on elements [lo, hi) (count_w: the weights' end); shifts clamped;
 * st: peak of w' and the int8 copy's saturations and nonzeros (weights only). */
void ctrain_update(const int32_t *g, int32_t *w, int32_t *v, const int8_t *mask, int8_t *q,
                   int64_t lo, int64_t hi, int64_t count_w, int64_t lr_m, int s_g, int lr_s,
                   int64_t mu_m, int mu_s, int64_t wd_m, int wd_s, int s_q, int64_t *st);
/* im2col of int8 NCHW x into cols, every entry written (padding 0):
 * image-major [N][C][KH][KW][HO][WO] for images [lo, hi), batch-last
 * [C][KH][KW][HO][WO][N] for channels [lo, hi). */
void ctrain_im2col_f32(const int8_t *x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW,
                       int64_t stride, int64_t pad, int64_t HO, int64_t WO, int batch_last, int64_t lo,
                       int64_t hi, float *cols);
void ctrain_im2col_f64(const int8_t *x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW,
                       int64_t stride, int64_t pad, int64_t HO, int64_t WO, int batch_last, int64_t lo,
                       int64_t hi, double *cols);
void ctrain_im2col_i8(const int8_t *x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW,
                      int64_t stride, int64_t pad, int64_t HO, int64_t WO, int batch_last, int64_t lo,
                      int64_t hi, int8_t *cols);
/* C[n] = A [M][K] times B[n] ([K][N] row-major) for n < batch, B[n] at
 * B + n * sb, C[n] ([M][N]) at C + n * sc. Exact for int8-valued operands
 * when K <= 1024 (host_lib/ctrain_gemm.c). */
void ctrain_gemm_f32(const float *A, int64_t M, int64_t K, const float *B, int64_t N, int64_t batch,
                     int64_t sb, int64_t sc, float *C);
/* The same with int8 columns B (converted to float as they are packed). */
void ctrain_gemm_b8(const float *A, int64_t M, int64_t K, const int8_t *B, int64_t N, int64_t batch,
                    int64_t sb, int64_t sc, float *C);
/* out[i * ldo + j] += sum over n < batch, t < T of A[n][i][t] * B[n][j][t]
 * (rows lda, ldb apart, images sa, sb apart), exactly for int8-valued
 * operands: float32 sums of at most 1024 terms added in double. */
void ctrain_gram_f32(const float *A, int64_t M, const float *B, int64_t N, int64_t T, int64_t batch,
                     int64_t sa, int64_t sb, int64_t lda, int64_t ldb, double *out, int64_t ldo);
/* The same on int8 operands (converted to float span by span): the weight
 * gradient straight from the int8 errors and columns. */
void ctrain_gram_i8(const int8_t *A, int64_t M, const int8_t *B, int64_t N, int64_t T, int64_t batch,
                    int64_t sa, int64_t sb, int64_t lda, int64_t ldb, double *out, int64_t ldo);
/* CONV_WG's int32 store of exact integer sums g[0..n): dst = sat32(rshift_round(g, s));
 * st: peak before the clamp, clamps, nonzeros. */
void ctrain_store_grads_f32(const float *g, int64_t n, int s, int32_t *dst, int64_t *st);
void ctrain_store_grads_f64(const double *g, int64_t n, int s, int32_t *dst, int64_t *st);
/* out[c] = sum of x[n][c][p] over n < N, p < P (int8 x, exact): CONV_WG's bias sums. */
void ctrain_channel_sums_i8(const int8_t *x, int64_t N, int64_t C, int64_t P, int64_t *out);
/* out[d][n] = x[n][d] for int8 x [N][D] (an NCHW tensor into the batch-last layout), as int8 or float. */
void ctrain_to_batch_last_i8(const int8_t *x, int64_t N, int64_t D, int8_t *out);
void ctrain_to_batch_last_f32(const int8_t *x, int64_t N, int64_t D, float *out);
/* The host float32 model's passes (host_lib/ctrain_float.c), for images
 * [lo, hi) of NCHW tensors and image-major columns [N][C][KH][KW][HO][WO]:
 * im2col (every entry written, padding 0); col2im (each dx plane zeroed, then
 * the kernel offsets added in (ky, kx) order, as conv_ops.ConvGeometry.col2im
 * does); the 2x2 stride-2 max pool's backward (each window's g to its first
 * maximum, g * 0 to the others, 0 outside every window). */
void ctrain_im2col_nchw_f32(const float *x, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW,
                            int64_t stride, int64_t pad, int64_t HO, int64_t WO, int64_t lo, int64_t hi,
                            float *cols);
void ctrain_col2im_nchw_f32(const float *cols, int64_t C, int64_t KH, int64_t KW, int64_t HO, int64_t WO,
                            int64_t H, int64_t W, int64_t stride, int64_t pad, int64_t lo, int64_t hi,
                            float *dx);
void ctrain_maxpool_bp_2x2_f32(const float *g, const float *x, int64_t NC, int64_t H, int64_t W, int64_t HO,
                               int64_t WO, float *dx);
/* @cdef-end */

#endif
