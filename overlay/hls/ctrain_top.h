/*
 * Top function of the accelerator: one signature for C-sim, synthesis and
 * C/RTL co-simulation (the DDR port is an array of beats in every build).
 * The AXI-lite offsets are pinned to REG_* of ctrain_isa.h (docs/isa.md).
 */
#ifndef CTRAIN_TOP_H
#define CTRAIN_TOP_H

#include "types.h"

/* m_axi `depth` in beats: what co-simulation maps of the testbench's port
 * array, 2 MB (the testbench's largest image is 1 MB).  Synthesis ignores it;
 * a literal per beat width, as the pragma takes it. */
#define CTRAIN_PORT_BYTES (1u << 21)
#if CTRAIN_DDR_BEAT == 8
#define CTRAIN_PORT_DEPTH 262144
#elif CTRAIN_DDR_BEAT == 16
#define CTRAIN_PORT_DEPTH 131072
#else
#error "CTRAIN_DDR_BEAT must be 8 or 16 bytes"
#endif
static_assert(CTRAIN_PORT_DEPTH * CTRAIN_DDR_BEAT == CTRAIN_PORT_BYTES, "port depth");

/* With two data ports (types.h CTRAIN_DDR_PORTS) the top takes a last
 * argument, ddr1: the second m_axi bundle (gmem1), over the same DDR (its
 * offset is written with the same base; C-sim callers pass the same beat
 * array).  CTRAIN_TOP_PORT1 is that parameter, CTRAIN_TOP_PASS1(p) the
 * argument a caller passes for it (both empty with one port). */
#if CTRAIN_DDR_PORTS > 1
#define CTRAIN_TOP_PORT1 , ddr_t *ddr1
#define CTRAIN_TOP_PASS1(p) , (p)
#else
#define CTRAIN_TOP_PORT1
#define CTRAIN_TOP_PASS1(p)
#endif

void ctrain_top(ddr_t *ddr, uint32_t prog, uint32_t n_insn, uint32_t table,
                uint32_t table_len, uint32_t ddr_size, uint32_t *status, uint32_t *pc,
                uint32_t *fault_addr CTRAIN_TOP_PORT1);

#endif
