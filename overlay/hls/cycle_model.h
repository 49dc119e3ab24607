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
/* Requests in flight per channel (num_read/write_outstanding of the m_axi
 * pragma in ctrain_top.cpp). */
#define CTRAIN_OUTSTANDING 4
/* Pipeline fill per entry of a PE step loop, without the adder tree's
 * log2(PE_COLS) levels: operand reads, multiply, accumulator update. */
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
