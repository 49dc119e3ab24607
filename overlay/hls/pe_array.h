/*
 * PE array: PE_ROWS x PE_COLS int8 multipliers, fully unrolled, fed from
 * on-chip line buffers.  Two dataflows share it:
 *
 *  - pe_row_pass (CONV_FP, CONV_EB): each step broadcasts one column vector
 *    (PE_COLS reduced channels at one position) to all rows; row r adds its
 *    dot product to the output-row accumulator acc[r][x].  FP gathers its
 *    input position from the output position, EB scatters (transposed conv).
 *  - pe_outer_pass (CONV_WG): each step is an outer product of PE_ROWS errors
 *    and PE_COLS activations, accumulated per PE into one kernel tap.
 *
 * Each pass is one pipelined loop of k_w * w_out steps (II=1).
 */
#ifndef CTRAIN_PE_ARRAY_H
#define CTRAIN_PE_ARRAY_H

#include "types.h"

/* Reduced-channel line buffer: PE_COLS rows of one tensor row each. */
typedef q8_t pe_line_t[PE_COLS][CTRAIN_MAX_DIM];
/* Output-row accumulators of the row dataflow. */
typedef acc_t pe_rowacc_t[PE_ROWS][CTRAIN_MAX_DIM];
/* Weights of one (row tile, column tile): every tap of every PE. */
typedef q8_t pe_weights_t[PE_ROWS][PE_COLS][MAX_KK];
/* Per-PE kernel-tap accumulators of the outer-product dataflow. */
typedef acc_t pe_tapacc_t[PE_ROWS][PE_COLS][MAX_KK];

/* Geometry of one pass along a row. */
struct pe_pass {
    int ky;        /* kernel row of this pass */
    int k_w;
    int steps;     /* positions per kernel column: w_out of the instruction */
    int lim;       /* width of the gathered (FP, WG) or scattered (EB) row */
    int stride;
    int pad;
    int cols;      /* valid columns in this tile (the rest read as zero) */
};

/* FP (scatter=false): acc[r][j] += sum_c w[r][c][ky,kx] * line[c][j*s+kx-p].
 * EB (scatter=true):  acc[r][j*s+kx-p] += sum_c w[r][c][ky,kx] * line[c][j]. */
void pe_row_pass(const pe_line_t line, const pe_weights_t w, const pe_pass &g, bool scatter,
                 pe_rowacc_t acc);

/* WG: acc[r][c][ky,kx] += sum_j err[r][j] * act[c][j*s+kx-p]. */
void pe_outer_pass(const q8_t err[PE_ROWS][CTRAIN_MAX_DIM], const pe_line_t act,
                   const pe_pass &g, pe_tapacc_t acc);

#endif
