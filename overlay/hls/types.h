/*
 * Shared types of the accelerator: arbitrary-precision integers where the
 * width matters, and the C-sim-only iteration counters.
 */
#ifndef CTRAIN_TYPES_H
#define CTRAIN_TYPES_H

#include <stdint.h>

/* The ap_types headers trip GCC's -Wuninitialized after inlining even when
 * included with -isystem; silence that for them only, not for our code. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <ap_int.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include "ctrain_isa.h"
#include "board.h"

/* The DDR port (agu.h): an array of CTRAIN_DDR_BEAT-byte beats in every build,
 * so the top has one signature for C-sim, synthesis and C/RTL co-simulation.
 * Inside a burst a beat is worked on as beat_t: the port word itself in
 * synthesis, its byte lanes in C-sim (no wide-integer arithmetic per lane in
 * the hot loops; agu.h converts at the port). */
typedef ap_uint<8 * CTRAIN_DDR_BEAT> ddr_t;
/* Data ports of the top: m_axi bundles gmem (argument ddr) and, with two,
 * gmem1 (ddr1), each into its own PS HP port, both over the one DDR window
 * (the driver writes the same base into every port's offset).  1 unless the
 * board sets it: the design of one port exactly.  Port 1 carries UPDATE's
 * master weights and velocities in and its master weights out (update.cpp),
 * and the second input array of the chunk pipelines of RELU_BP, BN_BP with
 * RELU_MASK and ADD (agu_chunk_rd), each concurrently with port 0's bursts;
 * DDR_P1 is the port id those bursts are counted on (port 0 itself with one
 * port). */
#ifndef CTRAIN_DDR_PORTS
#define CTRAIN_DDR_PORTS 1
#endif
#if CTRAIN_DDR_PORTS != 1 && CTRAIN_DDR_PORTS != 2
#error "CTRAIN_DDR_PORTS must be 1 or 2"
#endif
#define DDR_P1 (CTRAIN_DDR_PORTS > 1 ? 1 : 0)
#ifdef __SYNTHESIS__
typedef ddr_t beat_t;
#else
struct beat_t {
    uint8_t lane[CTRAIN_DDR_BEAT];
};
#endif

#define PE_ROWS CTRAIN_PE_ROWS
#define PE_COLS CTRAIN_PE_COLS
/* Batch lanes of the PE array: images that share each weight (1 unless the
 * board's header sets CTRAIN_PE_LANES). */
#ifndef CTRAIN_PE_LANES
#define CTRAIN_PE_LANES 1
#endif
#define PE_LANES CTRAIN_PE_LANES
#define MAX_KK (CTRAIN_MAX_KERNEL * CTRAIN_MAX_KERNEL)
/* ceil(log2(n)) for n <= 2^16, as a constant expression the preprocessor and
 * a template argument both take */
#define CTRAIN_CLOG2(n) (((n) > 1) + ((n) > 2) + ((n) > 4) + ((n) > 8) + ((n) > 16) + ((n) > 32) + ((n) > 64) + ((n) > 128) + ((n) > 256) + ((n) > 512) + ((n) > 1024) + ((n) > 2048) + ((n) > 4096) + ((n) > 8192) + ((n) > 16384) + ((n) > 32768))
#define MAX_RTILES ((CTRAIN_MAX_CH + PE_ROWS - 1) / PE_ROWS)   /* row tiles of the widest layer */
/* Loop bounds that only the ISA's limits set (tripcounts): the planes
 * (image x channel) of a tensor; the instructions a program can hold in the
 * 32-bit DDR window (check_program bounds n_insn by ddr_size); the beats of
 * a LEN-byte burst at any alignment; CTRAIN_CHUNK-sized chunks of N items. */
#define MAX_PLANES (CTRAIN_MAX_BATCH * CTRAIN_MAX_CH)
#define MAX_PROGRAM (0xFFFFFFFFu / CTRAIN_INSN_BYTES)
#define BURST_BEATS(LEN) (((LEN) + CTRAIN_DDR_BEAT - 1) / CTRAIN_DDR_BEAT + 1)
#define CHUNKS_OF(N) CHUNKS_OF_K(N, CTRAIN_CHUNK)
/* The same for a unit with chunks of its own size K (UPDATE's, BN's). */
#define CHUNKS_OF_K(N, K) (((N) + (K) - 1) / (K))
/* Items of the chunk at item i0 of an N-item operand in chunks of K: K, the
 * last chunk what is left (i0 < N). */
#define CHUNK_LEN(N, I0, K) ((N) - (I0) < (K) ? (N) - (I0) : (K))

/* Chunk k (0 <= k < CHUNKS_OF_K(n, K)) of an n-item operand in the
 * element-wise units' chunk pipelines (chunks of K, a constant:
 * CTRAIN_CHUNK unless the unit has its own): its ping-pong half, first item
 * and items. */
struct chunk_at {
    int h;
    uint32_t i0, len;
};

template <uint32_t K>
static inline chunk_at chunk_of(uint32_t n, int32_t k) {
#pragma HLS INLINE
    chunk_at c;
    c.h = k & 1;
    c.i0 = (uint32_t)k * K;
    c.len = CHUNK_LEN(n, c.i0, K);
    return c;
}

typedef int8_t q8_t;         /* tensor element */
/* int8 x int8 product, |p| <= 128^2 = 2^14: ap_int<16> in synthesis; C-sim
 * holds the same value in int16_t, for speed (g++ keeps ap_int temporaries
 * in memory: 10x on the PE array's steps).  No value differs: the only
 * values ever assigned to a prod_t are such products, which int16_t holds,
 * and every operation on them is a sign-extending widening to int or to the
 * accumulator, the same value in both. */
#ifdef __SYNTHESIS__
typedef ap_int<16> prod_t;
#else
typedef int16_t prod_t;
#endif
typedef ap_int<48> acc_t;    /* PE accumulator; validation keeps sums < 2^47 */
typedef int64_t wide_t;      /* every rounding/saturation step (docs/numeric.md) */
/* A control-path factor that validate_insn bounds below 2^15 before any unit
 * runs: sizes (<= CTRAIN_MAX_DIM), channels (<= CTRAIN_MAX_CH), batch, kernel,
 * stride, pad, and the tile, band and run counts and lengths made from them
 * (each at most a buffer's size, < 2^15 on every board).  Cast to it where
 * such a factor is multiplied, so the product is as narrow as its values:
 * one DSP slice for two of them, two for an address (32 x 16 bits) instead of
 * three for 32 x 32 (docs/overlay.md "Resource estimate").  Every value it
 * holds fits, so C arithmetic (promoted to int) is unchanged. */
typedef int16_t dim_t;

#include "csim_api.h"

/* Counting (C-sim only; hardware has none, synthesis sees no-ops):
 * CTRAIN_COUNT adds to one counter; CTRAIN_LOOP(cls, entries, trip) records
 * `entries` entries of a pipelined loop of class cls (pe or ew) running `trip`
 * iterations each, an entry only when the loop runs at least once. */
#ifndef __SYNTHESIS__
extern ctrain_iters_t ctrain_iters_now;
#define CTRAIN_COUNT(field, n) (ctrain_iters_now.field += (uint64_t)(n))
#define CTRAIN_LOOP(cls, entries, trip)                                              \
    do {                                                                             \
        const uint64_t ctrain_trip_ = (uint64_t)(trip);                              \
        ctrain_iters_now.cls += (uint64_t)(entries) * ctrain_trip_;                  \
        ctrain_iters_now.cls##_in += ctrain_trip_ ? (uint64_t)(entries) : 0;         \
    } while (0)
/* Overlap accounting (docs/overlay.md "Overlap: built and planned").
 * A built DATAFLOW loop (its body `#pragma HLS DATAFLOW` and one call per
 * process, an item per iteration) is bracketed by CTRAIN_PIPE_BEGIN() /
 * CTRAIN_PIPE_END(), and each process starts with CTRAIN_PIPE_STAGE(s)
 * (s = 0 starts the next item): the end costs the items' stages as the
 * lockstep pipeline load k+1 || compute k || store k-1 (a schedule the
 * processes' ping-pong channels allow; their handshakes may only start a
 * stage earlier) and adds to `hidden` what it saves over the stages one
 * after another.  A hand-pipelined region, whose stages the code calls one
 * after another in one loop body with no DATAFLOW (so they run serially),
 * is bracketed by CTRAIN_REGION_BEGIN() / CTRAIN_REGION_END() with
 * CTRAIN_STAGE(k) before stage k's counts: its end adds to `hidden` only
 * what each stage's own data ports overlap (their DATAFLOW processes, agu.h
 * and update.cpp), and to `planned` what running the stages concurrently
 * would save: the stages' times summed minus the region's, max(longest
 * stage, each AXI channel's total over the stages).  Neither nests. */
void ctrain_region_begin(void);
void ctrain_region_stage(int k);
void ctrain_region_end(void);
void ctrain_pipe_begin(void);
void ctrain_pipe_stage(int s);
void ctrain_pipe_end(void);
#define CTRAIN_REGION_BEGIN() ctrain_region_begin()
#define CTRAIN_STAGE(k) ctrain_region_stage(k)
#define CTRAIN_REGION_END() ctrain_region_end()
#define CTRAIN_PIPE_BEGIN() ctrain_pipe_begin()
#define CTRAIN_PIPE_STAGE(s) ctrain_pipe_stage(s)
#define CTRAIN_PIPE_END() ctrain_pipe_end()
#else
#define CTRAIN_COUNT(field, n) ((void)0)
#define CTRAIN_LOOP(cls, entries, trip) ((void)0)
#define CTRAIN_REGION_BEGIN() ((void)0)
#define CTRAIN_STAGE(k) ((void)0)
#define CTRAIN_REGION_END() ((void)0)
#define CTRAIN_PIPE_BEGIN() ((void)0)
#define CTRAIN_PIPE_STAGE(s) ((void)0)
#define CTRAIN_PIPE_END() ((void)0)
#endif

#endif
