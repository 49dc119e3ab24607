/*
 * Stream processor: the element-wise and window operations that need no PE
 * array.  RELU and batch norm run over CTRAIN_CHUNK-element bursts, a beat
 * per cycle in and out (RELU also W elements per cycle through); max pooling
 * over bands of whole planes or consecutive rows, one burst per operand.
 */
#ifndef CTRAIN_STREAM_H
#define CTRAIN_STREAM_H

#include "types.h"
#include "fetch.h"
#include "quant.h"

void stream_relu(ddr_t *ddr, const ctrain_insn_t &f, q_stats &st);
void stream_pool(ddr_t *ddr, const ctrain_insn_t &f, q_stats &st);
void stream_bn(ddr_t *ddr, const ctrain_insn_t &f, const insn_exps &e, q_stats &st);

#endif
