/* host_lib kernels for the host float32 model (ctrain.floatnet, the warm-up):
 * im2col, col2im and the 2x2 max pool's backward, each one pass over a plane
 * in cache instead of numpy's one strided pass per kernel offset. Each gives
 * the bits of its numpy form in ctrain.conv_ops: copies are exact, col2im
 * adds the kernel offsets in the same (ky, kx) order into a zeroed float32
 * plane, and the pool routes with the same comparisons. No FMA contraction
 * can arise (only additions and copies). */
#include <string.h>
#include "ctrain_kernels.h"

/* first output column ox whose input column ox * stride + k - pad is >= 0, and
 * one past the last whose input column is < n_in (clamped to [0, n_out]) */
static void valid_range(int64_t k, int64_t pad, int64_t stride, int64_t n_in, int64_t n_out, int64_t *lo,
                        int64_t *hi)
{
    int64_t a = pad > k ? (pad - k + stride - 1) / stride : 0;
    int64_t b = n_in - 1 + pad - k < 0 ? 0 : (n_in - 1 + pad - k) / stride + 1;
    b = b < n_out ? b : n_out;
    *lo = a < b ? a : b;
    *hi = b;
}

CT_CLONES
void ctrain_im2col_nchw_f32(const float *x, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW,
                            int64_t stride, int64_t pad, int64_t HO, int64_t WO, int64_t lo, int64_t hi,
                            float *cols)
{
    for (int64_t n = lo; n < hi; n++)
        for (int64_t c = 0; c < C; c++) {
            const float *src = x + (n * C + c) * H * W;
            float *out = cols + (n * C + c) * KH * KW * HO * WO;
            for (int64_t ky = 0; ky < KH; ky++)
                for (int64_t kx = 0; kx < KW; kx++) {
                    int64_t ox0, ox1;
                    valid_range(kx, pad, stride, W, WO, &ox0, &ox1);
                    for (int64_t oy = 0; oy < HO; oy++) {
                        float *row = out + ((ky * KW + kx) * HO + oy) * WO;
                        int64_t iy = oy * stride + ky - pad;
                        if (iy < 0 || iy >= H) {
                            memset(row, 0, sizeof(float) * WO);
                            continue;
                        }
                        memset(row, 0, sizeof(float) * ox0);
                        memset(row + ox1, 0, sizeof(float) * (WO - ox1));
                        const float *in = src + iy * W + kx - pad;
                        if (stride == 1)
                            memcpy(row + ox0, in + ox0, sizeof(float) * (ox1 - ox0));
                        else
                            for (int64_t ox = ox0; ox < ox1; ox++)
                                row[ox] = in[ox * stride];
                    }
                }
        }
}

CT_CLONES
void ctrain_col2im_nchw_f32(const float *cols, int64_t C, int64_t KH, int64_t KW, int64_t HO, int64_t WO,
                            int64_t H, int64_t W, int64_t stride, int64_t pad, int64_t lo, int64_t hi,
                            float *dx)
{
    for (int64_t n = lo; n < hi; n++)
        for (int64_t c = 0; c < C; c++) {
            const float *base = cols + (n * C + c) * KH * KW * HO * WO;
            float *plane = dx + (n * C + c) * H * W;
            memset(plane, 0, sizeof(float) * H * W);
            for (int64_t ky = 0; ky < KH; ky++)
                for (int64_t kx = 0; kx < KW; kx++) {
                    int64_t ox0, ox1;
                    valid_range(kx, pad, stride, W, WO, &ox0, &ox1);
                    for (int64_t oy = 0; oy < HO; oy++) {
                        int64_t iy = oy * stride + ky - pad;
                        if (iy < 0 || iy >= H)
                            continue;
                        const float *q = base + ((ky * KW + kx) * HO + oy) * WO;
                        float *r = plane + iy * W + kx - pad;
                        if (stride == 1)
                            for (int64_t ox = ox0; ox < ox1; ox++)
                                r[ox] += q[ox];
                        else
                            for (int64_t ox = ox0; ox < ox1; ox++)
                                r[ox * stride] += q[ox];
                    }
                }
        }
}

/* numpy's maximum: the first operand when it is >= the second or NaN */
static inline float npmax(float a, float b) { return (a >= b || a != a) ? a : b; }

CT_CLONES
void ctrain_maxpool_bp_2x2_f32(const float *g, const float *x, int64_t NC, int64_t H, int64_t W, int64_t HO,
                               int64_t WO, float *dx)
{
    for (int64_t p = 0; p < NC; p++) {
        float *d = dx + p * H * W;
        memset(d, 0, sizeof(float) * H * W);
        for (int64_t oy = 0; oy < HO; oy++) {
            const float *r0 = x + p * H * W + 2 * oy * W, *r1 = r0 + W, *e = g + (p * HO + oy) * WO;
            float *d0 = d + 2 * oy * W, *d1 = d0 + W;
            for (int64_t ox = 0; ox < WO; ox++) {
                float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], dd = r1[2 * ox + 1];
                float m = npmax(npmax(npmax(a, b), c), dd), v = e[ox];
                /* the first maximum in row-major order takes g; the others g * 0 (signed zeros kept) */
                int sa = a == m, sb = (b == m) & !sa, sc = (c == m) & !(sa | sb), sd = (dd == m) & !(sa | sb | sc);
                d0[2 * ox] = v * (float)sa;
                d0[2 * ox + 1] = v * (float)sb;
                d1[2 * ox] = v * (float)sc;
                d1[2 * ox + 1] = v * (float)sd;
            }
        }
    }
}
