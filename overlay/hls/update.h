/*
 * Update unit: SGD with momentum and weight decay on the int32 master
 * weights (docs/numeric.md UPDATE), CTRAIN_UPDATE_CHUNK elements per burst,
 * CTRAIN_UPDATE_LANES elements per cycle.
 */
#ifndef CTRAIN_UPDATE_H
#define CTRAIN_UPDATE_H

#include "types.h"
#include "fetch.h"
#include "quant.h"
#include "agu.h"

/* Elements per cycle of the SGD step: the port's int32 words per beat (each
 * lane's four 32 x 32-bit products are 16 DSP slices), or 1 on a board
 * that sets it (its chunks' reads take more than a cycle per element
 * anyway: docs/overlay.md "Update unit").  1 or AGU_I32_LANES, so every
 * lane reads its own bank of the int32 buffers. */
#ifndef CTRAIN_UPDATE_LANES
#define CTRAIN_UPDATE_LANES AGU_I32_LANES
#endif
#if CTRAIN_UPDATE_LANES != 1 && CTRAIN_UPDATE_LANES != AGU_I32_LANES
#error "CTRAIN_UPDATE_LANES must be 1 or CTRAIN_DDR_BEAT / 4"
#endif
/* Elements per chunk (burst) of UPDATE: longer chunks pay each burst's
 * latency over more beats; CTRAIN_CHUNK unless the board has the BRAM. */
#ifndef CTRAIN_UPDATE_CHUNK
#define CTRAIN_UPDATE_CHUNK CTRAIN_CHUNK
#endif

/* ddr1: the second data port (types.h CTRAIN_DDR_PORTS; ddr itself with one). */
void update_unit(ddr_t *ddr, ddr_t *ddr1, const ctrain_insn_t &f, const insn_exps &e,
                 q_stats &st);

#endif
