/*
 * Convolution unit: CONV_FP, CONV_EB and CONV_WG on the one PE array, each
 * with its own loop order (docs/overlay.md, "PE array mapping"):
 *
 *   FP, EB  output-stationary: one output row of PE_ROWS channels is
 *           accumulated over every reduced-channel tile (PE_COLS) and kernel
 *           row, then quantized and stored.
 *   WG      weight-stationary: a PE_ROWS x PE_COLS block of kernels
 *           accumulates over the whole batch, then is stored as int32.
 */
#ifndef CTRAIN_CONV_H
#define CTRAIN_CONV_H

#include "types.h"
#include "fetch.h"
#include "pe_array.h"
#include "quant.h"

void conv_unit(ddr_t *ddr, const ctrain_insn_t &f, const insn_exps &e, q_stats &st);

/* Epilogues (conv_store.cpp). */

/* Shifts, saturates and stores PE row r's output row (FP: bias, ReLU; EB:
 * ReLU mask read from `mask_at`).  ow outputs to dst_at. */
struct conv_row_q {
    bool bias, relu, mask;
    int sh_out;
};
void conv_store_row(ddr_t *ddr, const pe_rowacc_t acc, int r, wide_t bias, const conv_row_q &q,
                    uint32_t mask_at, uint32_t dst_at, int ow, q_stats &st);

/* Stores the vr x vc kernels of a WG tile as int32 at dst (row-major weights). */
void conv_store_kernels(ddr_t *ddr, const pe_tapacc_t acc, int vr, int vc, int r0, int c0,
                        const ctrain_insn_t &f, int sh_w, q_stats &st);

/* Stores the WG bias gradients of vr output channels from r0 at dst2. */
void conv_store_bias(ddr_t *ddr, const wide_t gb[PE_ROWS], int vr, int r0, uint32_t dst2,
                     int sh_b, q_stats &st);

#endif
