/*
 * Convolution units: tiling, burst buffers and epilogues around the PE array.
 *
 *  CONV_FP / CONV_EB  output-stationary: one output row of PE_ROWS channels is
 *                     accumulated over all reduced channels (PE_COLS per tile)
 *                     and kernel rows, then shifted and stored.
 *  CONV_WG            weight-stationary: a PE_ROWS x PE_COLS block of kernels
 *                     accumulates over the whole batch, then is stored.
 */
#ifndef CTRAIN_CONV_H
#define CTRAIN_CONV_H

#include "types.h"
#include "fetch.h"
#include "quant.h"

void conv_rows(uint8_t *ddr, const ctrain_insn_t &f, const insn_exps &e, q_stats &st);
void conv_wg(uint8_t *ddr, const ctrain_insn_t &f, const insn_exps &e, q_stats &st);

#endif
