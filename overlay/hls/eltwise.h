/*
 * Element-wise unit of the layer graph: the residual add (forward, and the
 * sum of two errors at a fork in backward) and average pooling, forward and
 * backward (docs/numeric.md).  Beat-wide where the data stream: the add and
 * the pool's vertical sums take CTRAIN_DDR_BEAT elements per cycle.
 */
#ifndef CTRAIN_ELTWISE_H
#define CTRAIN_ELTWISE_H

#include "types.h"
#include "fetch.h"
#include "quant.h"

/* OP_ADD: out = sat8(rshift_round(relu/mask(a*2^(e_a-e_acc) + b*2^(e_b-e_acc)), e_dst - e_acc)),
 * e_acc = min(e_a, e_b). */
/* ddr1: the second data port (types.h CTRAIN_DDR_PORTS; ddr itself with one). */
void eltwise_add(ddr_t *ddr, ddr_t *ddr1, const ctrain_insn_t &f, const insn_exps &e,
                 q_stats &st);

/* OP_AVGPOOL_FP / OP_AVGPOOL_BP: window sums (or their transpose) times
 * R = round(2^CTRAIN_AVG_SHIFT / (k_h*k_w)), stored at e_dst. */
void eltwise_avgpool(ddr_t *ddr, const ctrain_insn_t &f, const insn_exps &e, q_stats &st);

/* R of a window of kk elements; one divider per instruction, outside every loop. */
static inline wide_t avg_recip(uint32_t kk) {
#pragma HLS INLINE
    return (((wide_t)1 << CTRAIN_AVG_SHIFT) + kk / 2) / kk;
}

#endif
