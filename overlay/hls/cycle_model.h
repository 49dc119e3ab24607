/*
 * Cycle model constants (docs/overlay.md "Performance model"): defined here
 * once, read by the C-sim's overlap accounting (csim_api.cpp) and parsed by
 * ctrain.perfmodel.  Each is an assumption until measured on a board.
 */
#ifndef CTRAIN_CYCLE_MODEL_H
#define CTRAIN_CYCLE_MODEL_H

/* Cycles from a burst's request to its first data (read) or from its last
 * beat to the write response (write): Vitis HLS's default m_axi latency. */
#define CTRAIN_RD_LATENCY 64
#define CTRAIN_WR_LATENCY 64
/* Read requests in flight per port (num_read_outstanding of the m_axi
 * pragmas in ctrain_top.cpp): 16, with max_read_burst_length 64, so the
 * adapter's read buffer (outstanding x burst length beats, UG1399) is the
 * 1024 beats 4 x 256 took. Only a loop issuing a request per iteration
 * keeps more than one in flight; a longer burst is split into 64-beat
 * ones issued back to back. */
#define CTRAIN_OUTSTANDING 16
/* Pipeline fill per entry of a PE step loop, without the adder tree's
 * levels (a cycle each, the deepest tree's: the position path's over its
 * PE_LANES x PE_ROWS x PE_COLS PEs): operand reads, multiply, accumulator
 * update. */
#define CTRAIN_PE_DEPTH_BASE 12
/* Fill per entry of an element-wise loop (the deepest: UPDATE's). */
#define CTRAIN_EW_DEPTH 20
/* Fill per AGU burst loop: address, read handshake, lane select, write. */
#define CTRAIN_AGU_DEPTH 4
/* Fixed cycles per instruction: validation, exponent load, dispatch. */
#define CTRAIN_INSN_CYCLES 64
/* Stages of one dataflow region (load, compute, store, and one spare). */
#define CTRAIN_REGION_STAGES 4

#endif
