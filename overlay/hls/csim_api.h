/*
 * C interface of the C-sim build (not synthesised): the host's cffi engine
 * calls the top through these and reads the per-instruction counters.  The
 * block between the cdef markers is plain C that cffi parses.
 */
#ifndef CTRAIN_CSIM_API_H
#define CTRAIN_CSIM_API_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* @cdef-begin */

/* Pipelined-loop iterations of one instruction (all loops run at II=1). */
typedef struct {
    uint64_t pe;      /* PE-array steps: one PE_ROWS x PE_COLS multiply-accumulate each */
    uint64_t ew;      /* element-wise steps: conv epilogues, RELU/POOL, UPDATE */
    uint64_t rd;      /* DDR bytes read = read beats of the 8-bit m_axi port */
    uint64_t wr;      /* DDR bytes written = write beats */
    uint64_t bursts;  /* DDR bursts issued, reads and writes */
} ctrain_iters_t;

/* Runs ctrain_top on a host buffer standing for the DDR window. */
void ctrain_csim_run(uint8_t *ddr, uint32_t prog, uint32_t n_insn, uint32_t table,
                     uint32_t table_len, uint32_t ddr_size, uint32_t result[3]);

/* Where the next runs record counters: buf[i] for instruction i < cap
 * (zeroed first; NULL disables). */
void ctrain_csim_trace(ctrain_iters_t *buf, uint32_t cap);

/* The compiled configuration: PE_ROWS, PE_COLS, CHUNK. */
void ctrain_csim_config(uint32_t cfg[3]);

/* @cdef-end */

#ifdef __cplusplus
}
#endif

#endif
