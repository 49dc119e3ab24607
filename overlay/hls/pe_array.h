/*
 * PE array: PE_ROWS x PE_COLS int8 multipliers, fully unrolled, fed from
 * on-chip line buffers.  One array serves the three convolution phases; each
 * step multiplies a row operand a[r][c] by a column operand x[c]:
 *
 *   PE_GATHER  (CONV_FP)  a = weights,       x = act[c][j*s+kx-p];
 *                         row r adds sum_c a*x to acc[r][j]
 *   PE_SCATTER (CONV_EB)  a = weights,       x = err[c][j];
 *                         row r adds sum_c a*x to acc[r][j*s+kx-p]
 *   PE_OUTER   (CONV_WG)  a = err[r][j],     x = act[c][j*s+kx-p];
 *                         PE (r,c) adds a*x to its tap accumulator (ky,kx)
 *
 * A pass is one kernel row: a pipelined loop of k_w * w_out steps (II=1).
 */
#ifndef CTRAIN_PE_ARRAY_H
#define CTRAIN_PE_ARRAY_H

#include "types.h"

enum pe_mode { PE_GATHER = 0, PE_SCATTER = 1, PE_OUTER = 2 };

/* Line buffer: one tensor row per PE row or column. */
typedef q8_t pe_cols_t[PE_COLS][CTRAIN_MAX_DIM];
typedef q8_t pe_rows_t[PE_ROWS][CTRAIN_MAX_DIM];
/* Weights of one (row tile, column tile): every tap of every PE. */
typedef q8_t pe_weights_t[PE_ROWS][PE_COLS][MAX_KK];
/* Output-row accumulators (GATHER, SCATTER). */
typedef acc_t pe_rowacc_t[PE_ROWS][CTRAIN_MAX_DIM];
/* Per-PE kernel-tap accumulators (OUTER). */
typedef acc_t pe_tapacc_t[PE_ROWS][PE_COLS][MAX_KK];

/* Geometry of one pass along a row. */
struct pe_pass {
    int mode;      /* pe_mode */
    int ky;        /* kernel row of this pass */
    int k_w;
    int steps;     /* positions per kernel column: w_out of the instruction */
    int lim;       /* width of the gathered or scattered row: w_in */
    int stride;
    int pad;
    int cols;      /* valid columns in this tile (the rest read as zero) */
};

void pe_array(const pe_cols_t col, const pe_rows_t row, const pe_weights_t w, const pe_pass &g,
              pe_rowacc_t racc, pe_tapacc_t tacc);

#endif
