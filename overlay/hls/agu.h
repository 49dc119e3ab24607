/*
 * Address generation unit: every DDR access of the accelerator is one burst
 * issued here.  The m_axi port is 8 bits wide because int8 operands may start
 * at any byte (docs/isa.md), so a burst of n bytes is n beats; the C-sim
 * counts beats and bursts in this one place.  Addresses are byte offsets the
 * validation unit has already checked against the window.
 */
#ifndef CTRAIN_AGU_H
#define CTRAIN_AGU_H

#include "types.h"

/* ddr[addr .. addr+len) -> buf[0 .. len), int8 elements. */
template <int N>
void agu_rd_q8(const uint8_t *ddr, uint32_t addr, q8_t buf[N], uint32_t len) {
#pragma HLS INLINE
    CTRAIN_COUNT(rd, len);
    CTRAIN_COUNT(bursts, 1);
rd_q8:
    for (uint32_t i = 0; i < len; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=N
        buf[i] = (q8_t)ddr[addr + i];
    }
}

/* As agu_rd_q8, also returning the sum of the elements (CONV_WG's bias
 * gradient taps the error stream on its way into the line buffer). */
template <int N>
wide_t agu_rd_q8_sum(const uint8_t *ddr, uint32_t addr, q8_t buf[N], uint32_t len) {
#pragma HLS INLINE
    CTRAIN_COUNT(rd, len);
    CTRAIN_COUNT(bursts, 1);
    wide_t sum = 0;
rd_q8_sum:
    for (uint32_t i = 0; i < len; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=N
        q8_t v = (q8_t)ddr[addr + i];
        buf[i] = v;
        sum += v;
    }
    return sum;
}

/* buf[0 .. len) -> ddr[addr .. addr+len). */
template <int N>
void agu_wr_q8(uint8_t *ddr, uint32_t addr, const q8_t buf[N], uint32_t len) {
#pragma HLS INLINE
    CTRAIN_COUNT(wr, len);
    CTRAIN_COUNT(bursts, 1);
wr_q8:
    for (uint32_t i = 0; i < len; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=N
        ddr[addr + i] = (uint8_t)buf[i];
    }
}

/* count little-endian int32 words from ddr[addr..] -> buf, one byte per beat. */
template <int N, int NB = 4 * N>
void agu_rd_i32(const uint8_t *ddr, uint32_t addr, int32_t buf[N], uint32_t count) {
#pragma HLS INLINE
    CTRAIN_COUNT(rd, 4 * (uint64_t)count);
    CTRAIN_COUNT(bursts, 1);
    uint32_t word = 0;
rd_i32:
    for (uint32_t i = 0; i < 4 * count; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=4 max=NB
        word = (word >> 8) | ((uint32_t)ddr[addr + i] << 24);
        if ((i & 3) == 3)
            buf[i >> 2] = (int32_t)word;
    }
}

/* buf[0 .. count) -> little-endian int32 words at ddr[addr..]. */
template <int N, int NB = 4 * N>
void agu_wr_i32(uint8_t *ddr, uint32_t addr, const int32_t buf[N], uint32_t count) {
#pragma HLS INLINE
    CTRAIN_COUNT(wr, 4 * (uint64_t)count);
    CTRAIN_COUNT(bursts, 1);
wr_i32:
    for (uint32_t i = 0; i < 4 * count; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=4 max=NB
        ddr[addr + i] = (uint8_t)((uint32_t)buf[i >> 2] >> (8 * (i & 3)));
    }
}

/* count little-endian uint32 words (index pointers and positions). */
template <int N, int NB = 4 * N>
void agu_rd_u32(const uint8_t *ddr, uint32_t addr, uint32_t buf[N], uint32_t count) {
#pragma HLS INLINE
    CTRAIN_COUNT(rd, 4 * (uint64_t)count);
    CTRAIN_COUNT(bursts, 1);
    uint32_t word = 0;
rd_u32:
    for (uint32_t i = 0; i < 4 * count; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=4 max=NB
        word = (word >> 8) | ((uint32_t)ddr[addr + i] << 24);
        if ((i & 3) == 3)
            buf[i >> 2] = word;
    }
}

/* count little-endian uint16 entries (sparse column and row numbers). */
template <int N, int NB = 2 * N>
void agu_rd_u16(const uint8_t *ddr, uint32_t addr, uint16_t buf[N], uint32_t count) {
#pragma HLS INLINE
    CTRAIN_COUNT(rd, 2 * (uint64_t)count);
    CTRAIN_COUNT(bursts, 1);
    uint16_t half = 0;
rd_u16:
    for (uint32_t i = 0; i < 2 * count; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=2 max=NB
        half = (uint16_t)((half >> 8) | ((uint16_t)ddr[addr + i] << 8));
        if ((i & 1) == 1)
            buf[i >> 1] = half;
    }
}

/* ddr[addr .. addr+len) -> win[at + i][lane]: one batch lane of a sparse-unit
 * window row (the window interleaves the lanes: one word per position). */
template <int P, int L>
void agu_rd_q8_lane(const uint8_t *ddr, uint32_t addr, q8_t win[P][L], uint32_t at, int lane,
                    uint32_t len) {
#pragma HLS INLINE
    CTRAIN_COUNT(rd, len);
    CTRAIN_COUNT(bursts, 1);
rd_q8_lane:
    for (uint32_t i = 0; i < len; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
        win[at + i][lane] = (q8_t)ddr[addr + i];
    }
}

/* One int8 at a data-dependent address (SCONV_EB gathers its values through
 * the transposed index): a single-beat burst. */
static inline q8_t agu_rd_byte(const uint8_t *ddr, uint32_t addr) {
#pragma HLS INLINE
    CTRAIN_COUNT(rd, 1);
    CTRAIN_COUNT(bursts, 1);
    return (q8_t)ddr[addr];
}

/* One int32 (a table entry or a bias): a 4-byte burst. */
int32_t agu_rd_word(const uint8_t *ddr, uint32_t addr);

/* Raw bytes (instruction fetch, statistics record). */
void agu_rd_bytes(const uint8_t *ddr, uint32_t addr, uint8_t *buf, uint32_t len);
void agu_wr_bytes(uint8_t *ddr, uint32_t addr, const uint8_t *buf, uint32_t len);

#endif
