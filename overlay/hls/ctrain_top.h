/*
 * Top function of the accelerator.  Argument order fixes the AXI-lite
 * register map (docs/isa.md, REG_* in ctrain_isa.h).
 */
#ifndef CTRAIN_TOP_H
#define CTRAIN_TOP_H

#include "types.h"

void ctrain_top(ddr_t *ddr, uint32_t prog, uint32_t n_insn, uint32_t table,
                uint32_t table_len, uint32_t ddr_size, uint32_t *status, uint32_t *pc,
                uint32_t *fault_addr);

#endif
