/* host_lib: the host's hot paths (quantize, dequantize, master packing). */
#ifndef CTRAIN_HOST_H
#define CTRAIN_HOST_H
#include <stdint.h>

/* @cdef-begin */
/* q = sat8(floor(x * 2^-e + 0.5)); returns the number of saturated values. */
int64_t ctrain_quantize_f32(const float *x, int8_t *q, int64_t n, int32_t e);
int64_t ctrain_quantize_f64(const double *x, int8_t *q, int64_t n, int32_t e);
/* x = q * 2^e */
void ctrain_dequantize(const int8_t *q, float *x, int64_t n, int32_t e);
/* m = sat32(floor(x * 2^-e + 0.5)); returns the number of saturated values. */
int64_t ctrain_to_master(const float *x, int32_t *m, int64_t n, int32_t e);
void ctrain_from_master(const int32_t *m, float *x, int64_t n, int32_t e);
/* m = 0, w8 = 0 where mask == 0; returns the number of nonzero weights left. */
int64_t ctrain_apply_mask(const uint8_t *mask, int32_t *m, int8_t *w8, int64_t n);
/* @cdef-end */

#endif
