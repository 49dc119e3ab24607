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

/* What one instruction spends, as the C-sim counts it (docs/overlay.md,
 * "Performance model"): pipelined-loop iterations and entries per loop class,
 * and per AXI channel the bytes, beats, bursts and AGU loop cycles. */
typedef struct {
    uint64_t pe;         /* PE-array steps: dense pass_step, sparse step (sp_steps) */
    uint64_t pe_in;      /* entries of those loops (each pays the PE pipeline's fill) */
    uint64_t ew;         /* element-wise pipelined-loop iterations (epilogues, streams, decode) */
    uint64_t ew_in;      /* entries of those loops */
    uint64_t rd;         /* DDR bytes read */
    uint64_t wr;         /* DDR bytes written */
    uint64_t rd_beats;   /* read beats of the CTRAIN_DDR_BEAT-byte port (partial beats count) */
    uint64_t wr_beats;   /* write beats */
    uint64_t rd_bursts;  /* read bursts of one or more bytes = entries of AGU read loops */
    uint64_t wr_bursts;  /* write bursts = entries of AGU write loops */
    uint64_t rd_agu;     /* cycles of the AGU read loops: beats x II of the buffer they fill */
    uint64_t wr_agu;     /* cycles of the AGU write loops: beats x II of the buffer they drain */
    uint64_t gathers;    /* one-byte reads issued inside a pipelined loop (SCONV_EB values) */
    uint64_t wr_merges;  /* partial write beats: synthesis reads the beat first to merge lanes */
    uint64_t hidden;     /* cycles the built overlap hides: DATAFLOW loops' stages (CTRAIN_PIPE_*),
                            and within any stage its data ports' concurrent processes (types.h) */
    uint64_t planned;    /* cycles the hand-pipelined regions (CTRAIN_REGION_*) would hide once
                            DATAFLOW: the code runs their stages one after another */
    uint64_t rd1_beats;  /* of rd_beats, rd_bursts, rd_agu: port 1's (gmem1; 0 with one port) */
    uint64_t rd1_bursts;
    uint64_t rd1_agu;
    uint64_t wr1_beats;  /* of wr_beats, wr_bursts, wr_agu, wr_merges: port 1's */
    uint64_t wr1_bursts;
    uint64_t wr1_agu;
    uint64_t wr1_merges;
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
