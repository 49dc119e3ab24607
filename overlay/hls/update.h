/*
 * Update unit: SGD with momentum and weight decay on the int32 master
 * weights (docs/numeric.md UPDATE), CTRAIN_CHUNK elements per burst.
 */
#ifndef CTRAIN_UPDATE_H
#define CTRAIN_UPDATE_H

#include "types.h"
#include "fetch.h"
#include "quant.h"

void update_unit(ddr_t *ddr, const ctrain_insn_t &f, const insn_exps &e, q_stats &st);

#endif
