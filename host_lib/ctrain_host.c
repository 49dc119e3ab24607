#include <math.h>
#include "ctrain_host.h"

#define Q8_MAX 127
#define Q32_MAX 2147483647LL

#define DEFINE_QUANTIZE(NAME, T)                                     \
    int64_t NAME(const T *x, int8_t *q, int64_t n, int32_t e)        \
    {                                                                \
        const double scale = ldexp(1.0, -e);                         \
        int64_t sat = 0;                                             \
        for (int64_t i = 0; i < n; i++) {                            \
            double v = floor((double)x[i] * scale + 0.5);            \
            if (v > Q8_MAX) { v = Q8_MAX; sat++; }                   \
            else if (v < -Q8_MAX) { v = -Q8_MAX; sat++; }            \
            else if (v != v) { v = 0; sat++; }                       \
            q[i] = (int8_t)v;                                        \
        }                                                            \
        return sat;                                                  \
    }

DEFINE_QUANTIZE(ctrain_quantize_f32, float)
DEFINE_QUANTIZE(ctrain_quantize_f64, double)

void ctrain_dequantize(const int8_t *q, float *x, int64_t n, int32_t e)
{
    const float scale = (float)ldexp(1.0, e);
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)q[i] * scale;
}

int64_t ctrain_to_master(const float *x, int32_t *m, int64_t n, int32_t e)
{
    const double scale = ldexp(1.0, -e);
    int64_t sat = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = floor((double)x[i] * scale + 0.5);
        if (v > (double)Q32_MAX) { v = (double)Q32_MAX; sat++; }
        else if (v < -(double)Q32_MAX) { v = -(double)Q32_MAX; sat++; }
        else if (v != v) { v = 0; sat++; }
        m[i] = (int32_t)v;
    }
    return sat;
}

void ctrain_from_master(const int32_t *m, float *x, int64_t n, int32_t e)
{
    const double scale = ldexp(1.0, e);
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)((double)m[i] * scale);
}

int64_t ctrain_apply_mask(const uint8_t *mask, int32_t *m, int8_t *w8, int64_t n)
{
    int64_t kept = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!mask[i]) { m[i] = 0; w8[i] = 0; }
        else kept += (w8[i] != 0);
    }
    return kept;
}
