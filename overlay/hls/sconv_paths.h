/*
 * What the sparse unit's two paths share (sconv.cpp: the position-parallel
 * path and sconv_unit, which picks the path; sconv_rows.cpp: the row-tile
 * path): the exact division by a per-instruction constant, the window index
 * type and the epilogue's constants.  Internal to the unit.
 */
#ifndef CTRAIN_SCONV_PATHS_H
#define CTRAIN_SCONV_PATHS_H

#include "sconv.h"

/* Exact n / d for 0 <= n < 2^16 as (n * m) >> sh with sh = 16 + ceil(log2 d),
 * m = ceil(2^sh / d) (Granlund & Montgomery 1994, theorem 4.2): the one
 * division happens per instruction, the loops multiply by a constant. */
struct sp_div16 {
    ap_uint<18> m;   /* <= 2^17: d > 2^(sh-17) */
    int sh;
};

/* Window rows and positions (< SP_WIN) and the factors that make them: a
 * 16 x 16-bit product is one DSP slice (the 32-bit one three). */
typedef ap_uint<16> sp_idx_t;

static sp_div16 sp_div_make(uint32_t d) {
    int l = 0;
div_log2:
    for (int i = 0; i < 16; i++) {
        /* 16 small compares: ceil(log2 d) in one step */
#pragma HLS UNROLL
        if ((1u << l) < d) l++;
    }
    sp_div16 r;
    r.sh = 16 + l;
    r.m = (((uint64_t)1 << r.sh) + d - 1) / d;
    return r;
}

static uint32_t sp_div(const sp_div16 &d, uint32_t n) {
#pragma HLS INLINE
    const ap_uint<34> q = (ap_uint<16>)n * d.m;   /* n < 2^16: one DSP slice */
    return (uint32_t)(q >> d.sh).to_uint();
}

/* Per-instruction constants of the epilogues. */
struct sp_out {
    bool bias, relu, mask, point;
    int sh_out;
};

/* EB's tap finder, both paths: a channel row's column starts src[at + k],
 * k = 1 .. kk - 1, less its first p0, into registers tpk (the index check
 * keeps them non-decreasing, so the difference is exact in T: the position
 * path keeps a list's bits): kk - 1 cycles, a RAM read each, because the
 * decode after compares every one of them each step (sp_tap_of), more
 * reads than a RAM's two ports give. */
template <typename T>
static void sp_tap_starts(const uint32_t *src, uint32_t at, uint32_t p0, uint32_t kk, T tpk[MAX_KK]) {
#pragma HLS INLINE
    CTRAIN_LOOP(ew, 1, kk - 1);
tap_starts:
    for (uint32_t k = 1; k < kk; k++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=0 max=MAX_KK-1
        tpk[k] = (T)(src[at + k] - p0);
    }
}

/* The tap of entry q of a channel row (relative to the row's first): how
 * many of its columns after the first start at or before it, against
 * sp_tap_starts' registers. */
template <typename T>
static inline uint32_t sp_tap_of(const T tpk[MAX_KK], uint32_t kk, T q) {
#pragma HLS INLINE
    uint32_t tap = 0;
tap_count:
    for (uint32_t k = 1; k < MAX_KK; k++) {
#pragma HLS UNROLL
        if (k < kk && tpk[k] <= q)
            tap++;
    }
    return tap;
}

/* The row-tile path (sconv_rows.cpp): every instruction the position-parallel
 * path does not take. */
void sp_rows_unit(ddr_t *ddr, const ctrain_insn_t &f, const insn_exps &e, q_stats &st);

#endif
