/*
 * Stream processor: the element-wise and window operations that need no PE
 * array.  RELU and batch norm run over CTRAIN_CHUNK-element (BN:
 * CTRAIN_BN_CHUNK) bursts, a beat
 * per cycle in and out (RELU also W elements per cycle through); max pooling
 * over bands of whole planes or consecutive rows, one burst per operand.
 */
#ifndef CTRAIN_STREAM_H
#define CTRAIN_STREAM_H

#include "types.h"
#include "fetch.h"
#include "quant.h"

/* Elements per chunk (burst) of BN: longer chunks pay each burst's latency
 * over more beats (a 1024-element chunk of a 16-byte port is 64 beats after
 * a 64-cycle latency); CTRAIN_CHUNK unless the board has the BRAM. */
#ifndef CTRAIN_BN_CHUNK
#define CTRAIN_BN_CHUNK CTRAIN_CHUNK
#endif
/* A tiled max pooling band's elements where the bands are a DATAFLOW loop
 * (stream.cpp POOL_TILE): the whole POOL_BAND (stream.cpp, the band
 * buffers' size), so each band's read bursts (BP: rows and errors) and
 * write pay their latencies over as many planes as fit (session 33; half
 * of it before). The loop's channels are their own memories: with W = 16
 * a bank, both buffers together, is 450 words of 128 bits, within the 512
 * of the RAMB18s it took at half the band (226), so no BRAM or LUT more; a
 * board whose banks would outgrow them sets the half (the Pynq-Z2). CNV
 * at batch 64: POOL_FP + POOL_BP 0.93M -> 0.81M cycles. */
#ifndef CTRAIN_POOL_TILE
#define CTRAIN_POOL_TILE POOL_BAND
#endif
/* 1: BN's chunk buffers are distributed RAM whatever their size (a board
 * with LUTs to spare and no BRAM); 0: the tools' choice (BRAM when large). */
#ifndef CTRAIN_BN_LUTRAM
#define CTRAIN_BN_LUTRAM 0
#endif

/* 1: max pooling's tiled band loop (stream.cpp pool_bands) is a DATAFLOW
 * loop, its band buffers ping-pong channels of their own, so a band's load,
 * windows and store overlap; 0: the loop calls them one after another in
 * the halves of the band buffers the overlapping-window path also uses (no
 * second copy: boards without the BRAM for it). */
#ifndef CTRAIN_POOL_DATAFLOW
#define CTRAIN_POOL_DATAFLOW 0
#endif

/* ddr1: the second data port (types.h CTRAIN_DDR_PORTS; ddr itself with one). */
void stream_relu(ddr_t *ddr, ddr_t *ddr1, const ctrain_insn_t &f, q_stats &st);
void stream_pool(ddr_t *ddr, const ctrain_insn_t &f, q_stats &st);
void stream_bn(ddr_t *ddr, ddr_t *ddr1, const ctrain_insn_t &f, const insn_exps &e,
               q_stats &st);

#endif
