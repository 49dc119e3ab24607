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

int64_t ctrain_index_bytes(int64_t rows, int64_t cols, int64_t nnz)
{
    return (int64_t)ctrain_index_layout((uint64_t)rows, (uint64_t)cols, (uint64_t)nnz).size;
}

ctrain_index_layout_t ctrain_host_index_layout(int64_t rows, int64_t cols, int64_t nnz)
{
    return ctrain_index_layout((uint64_t)rows, (uint64_t)cols, (uint64_t)nnz);
}

int64_t ctrain_build_index(const uint8_t *mask, int64_t rows, int64_t cols, uint8_t *block)
{
    if (rows > 65536 || cols > 65536 || rows < 1 || cols < 1)
        return -1;
    int64_t nnz = 0;
    for (int64_t i = 0; i < rows * cols; i++)
        nnz += mask[i] != 0;
    const ctrain_index_layout_t lay = ctrain_index_layout((uint64_t)rows, (uint64_t)cols, (uint64_t)nnz);
    uint32_t *rowptr = (uint32_t *)(block + lay.rowptr);
    uint16_t *col = (uint16_t *)(block + lay.col);
    uint32_t *tptr = (uint32_t *)(block + lay.tptr);
    uint32_t *tpos = (uint32_t *)(block + lay.tpos);
    uint16_t *trow = (uint16_t *)(block + lay.trow);
    if (nnz & 1)
        col[nnz] = 0; /* padding */
    /* CSR, and a column histogram for the transposed index */
    for (int64_t c = 0; c <= cols; c++)
        tptr[c] = 0;
    int64_t p = 0;
    for (int64_t r = 0; r < rows; r++) {
        rowptr[r] = (uint32_t)p;
        for (int64_t c = 0; c < cols; c++) {
            if (mask[r * cols + c]) {
                col[p++] = (uint16_t)c;
                tptr[c + 1]++;
            }
        }
    }
    rowptr[rows] = (uint32_t)p;
    for (int64_t c = 0; c < cols; c++)
        tptr[c + 1] += tptr[c];
    /* transposed: walk the CSR in order, so each column lists rows ascending */
    for (int64_t r = 0; r < rows; r++) {
        for (uint32_t q = rowptr[r]; q < rowptr[r + 1]; q++) {
            uint32_t c = col[q];
            uint32_t slot = tptr[c]++;
            tpos[slot] = q;
            trow[slot] = (uint16_t)r;
        }
    }
    for (int64_t c = cols; c > 0; c--) /* undo the running offsets */
        tptr[c] = tptr[c - 1];
    tptr[0] = 0;
    return nnz;
}
