/* PE array dataflows (see pe_array.h). */
#include "pe_array.h"

void pe_row_pass(const pe_line_t line, const pe_weights_t w, const pe_pass &g, bool scatter,
                 pe_rowacc_t acc) {
#pragma HLS INLINE off
    CTRAIN_COUNT(pe, (uint64_t)g.k_w * g.steps);
    const int kbase = g.ky * g.k_w;
row_kx:
    for (int kx = 0; kx < g.k_w; kx++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_KERNEL
        /* Not flattened: with one output position, consecutive kx would hit
         * the same accumulator before the previous write lands. */
#pragma HLS LOOP_FLATTEN off
    row_step:
        for (int j = 0; j < g.steps; j++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
            /* Within one kx every j reaches a distinct accumulator, in both modes. */
#pragma HLS DEPENDENCE variable=acc type=inter false
            int moved = j * g.stride + kx - g.pad;
            int li = scatter ? j : moved;   /* line position read */
            int ai = scatter ? moved : j;   /* accumulator position written */
            bool ok = scatter ? (ai >= 0 && ai < g.lim) : (li >= 0 && li < g.lim);
            if (!ok) {
                li = 0;
                ai = 0;
            }
            q8_t x[PE_COLS];
#pragma HLS ARRAY_PARTITION variable=x type=complete
            for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                x[c] = (ok && c < g.cols) ? line[c][li] : (q8_t)0;
            }
            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                acc_t sum = 0;
                for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                    sum += (prod_t)w[r][c][kbase + kx] * (prod_t)x[c];
                }
                if (ok)
                    acc[r][ai] += sum;
            }
        }
    }
}

void pe_outer_pass(const q8_t err[PE_ROWS][CTRAIN_MAX_DIM], const pe_line_t act,
                   const pe_pass &g, pe_tapacc_t acc) {
#pragma HLS INLINE off
    CTRAIN_COUNT(pe, (uint64_t)g.k_w * g.steps);
    const int kbase = g.ky * g.k_w;
outer_kx:
    for (int kx = 0; kx < g.k_w; kx++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_KERNEL
        /* Per-PE partial sums live in registers for the whole row, so the
         * pipelined loop's only carried dependence is a register add. */
        acc_t part[PE_ROWS][PE_COLS];
#pragma HLS ARRAY_PARTITION variable=part type=complete dim=0
        for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
            for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                part[r][c] = 0;
            }
        }
    outer_step:
        for (int j = 0; j < g.steps; j++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
            int ix = j * g.stride + kx - g.pad;
            bool ok = ix >= 0 && ix < g.lim;
            if (!ok)
                ix = 0;
            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                    q8_t a = (ok && c < g.cols) ? act[c][ix] : (q8_t)0;
                    part[r][c] += (prod_t)err[r][j] * (prod_t)a;
                }
            }
        }
        for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
            for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                acc[r][c][kbase + kx] += part[r][c];
            }
        }
    }
}
