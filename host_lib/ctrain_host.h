/* host_lib: the host's hot paths (quantize, dequantize, master packing). */
#ifndef CTRAIN_HOST_H
#define CTRAIN_HOST_H
#include <stdint.h>
#include "ctrain_isa.h"   /* ctrain_index_layout_t */

/* @cdef-begin */
/* q = sat8(floor(x * 2^-e + 0.5)); returns the number of saturated values. */
int64_t ctrain_quantize_f32(const float *x, int8_t *q, int64_t n, int32_t e);
int64_t ctrain_quantize_f64(const double *x, int8_t *q, int64_t n, int32_t e);
/* x = q * 2^e */
void ctrain_dequantize(const int8_t *q, float *x, int64_t n, int32_t e);
/* m = sat32(floor(x * 2^-e + 0.5)); returns the number of saturated values. */
int64_t ctrain_to_master(const float *x, int32_t *m, int64_t n, int32_t e);
void ctrain_from_master(const int32_t *m, float *x, int64_t n, int32_t e);
/* Bytes of the sparse index block (docs/isa.md) for rows x cols with nnz kept. */
int64_t ctrain_index_bytes(int64_t rows, int64_t cols, int64_t nnz);
/* Its layout: ctrain_isa.h's ctrain_index_layout, for Python. */
ctrain_index_layout_t ctrain_host_index_layout(int64_t rows, int64_t cols, int64_t nnz);
/* Builds the index block of a rows x cols mask (row-major, nonzero = kept):
 * CSR (rowptr, col) and the transposed index (tptr, tpos, trow) EB reads.
 * `block` must hold ctrain_index_bytes() bytes; returns nnz, or -1 when
 * cols > 65536 or rows > 65536 (16-bit indices). */
int64_t ctrain_build_index(const uint8_t *mask, int64_t rows, int64_t cols, uint8_t *block);
/* @cdef-end */

#endif
