/* PE array (see pe_array.h). */
#include "pe_array.h"

void pe_array(const pe_cols_t col, const pe_rows_t row, const pe_weights_t w, const pe_pass &g,
              pe_rowacc_t racc, pe_tapacc_t tacc) {
#pragma HLS INLINE off
    CTRAIN_LOOP(pe, g.k_w, g.steps);   /* pass_step, entered per kx */
    const bool outer = g.mode == PE_OUTER, scatter = g.mode == PE_SCATTER;
    const int kbase = g.ky * g.k_w;
pass_kx:
    for (int kx = 0; kx < g.k_w; kx++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_KERNEL
        /* Not flattened: with one output position, consecutive kx would hit
         * the same row accumulator before the previous write lands. */
#pragma HLS LOOP_FLATTEN off
        /* OUTER: per-PE partial sums stay in registers for the whole row, so
         * the step loop's only carried dependence is a register add. */
        acc_t part[PE_ROWS][PE_COLS];
#pragma HLS ARRAY_PARTITION variable=part type=complete dim=0
        for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
            for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                part[r][c] = 0;
            }
        }
        int moved = kx - g.pad;   /* j * stride + kx - pad, counted up by stride */
    pass_step:
        for (int j = 0; j < g.steps; j++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
            /* Within one kx every j reaches a distinct row accumulator. */
#pragma HLS DEPENDENCE variable=racc type=inter false
            int li = scatter ? j : moved;   /* column-line position read */
            int ai = scatter ? moved : j;   /* row accumulator position written */
            const bool ok = scatter ? (ai >= 0 && ai < g.lim) : (li >= 0 && li < g.lim);
            if (!ok) {
                li = 0;
                ai = 0;
            }
            q8_t x[PE_COLS];
#pragma HLS ARRAY_PARTITION variable=x type=complete
            for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                x[c] = (ok && c < g.cols) ? col[c][li] : (q8_t)0;
            }
            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                acc_t sum = 0;
                for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                    const q8_t a = outer ? row[r][j] : w[r][c][kbase + kx];
                    const prod_t m = (prod_t)a * (prod_t)x[c];
                    part[r][c] += m;   /* used by OUTER only */
                    sum += m;          /* adder tree, used by GATHER/SCATTER */
                }
                if (!outer && ok)
                    racc[r][ai] += sum;
            }
            moved += g.stride;
        }
        if (outer) {
            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                    tacc[r][c][kbase + kx] += part[r][c];
                }
            }
        }
    }
}
