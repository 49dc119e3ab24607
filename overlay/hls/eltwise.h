/*
 * Element-wise unit of the layer graph: the residual add (forward, and the
 * sum of two errors at a fork in backward) and average pooling, forward and
 * backward (docs/numeric.md).  Beat-wide where the data stream: the add and
 * the pool's vertical sums take CTRAIN_DDR_BEAT elements per cycle.
 */
#ifndef CTRAIN_ELTWISE_H
#define CTRAIN_ELTWISE_H

#include "types.h"
#include "fetch.h"
#include "quant.h"

/* OP_ADD: out = sat8(rshift_round(relu/mask(a*2^(e_a-e_acc) + b*2^(e_b-e_acc)), e_dst - e_acc)),
 * e_acc = min(e_a, e_b). */
/* ddr1: the second data port (types.h CTRAIN_DDR_PORTS; ddr itself with one). */
void eltwise_add(ddr_t *ddr, ddr_t *ddr1, const ctrain_insn_t &f, const insn_exps &e,
                 q_stats &st);

/* OP_AVGPOOL_FP / OP_AVGPOOL_BP: window sums (or their transpose) times
 * R = round(2^CTRAIN_AVG_SHIFT / (k_h*k_w)), stored at e_dst. */
void eltwise_avgpool(ddr_t *ddr, const ctrain_insn_t &f, const insn_exps &e, q_stats &st);

/* ADD's lane on narrow words (docs/numeric.md "ADD on narrow words").  One
 * operand is unshifted (e_acc is the smaller exponent), the other, `hi`,
 * shifted left by the gap k: acc = sat62(hi * 2^k) + lo, stored at the shift
 * s.  The lane forms x = hc * 2^kk + lo exactly, hc the shifted operand
 * clamped where its shift saturates and kk = min(k, ADD_KK): x is acc where
 * k <= ADD_KK.  Past it the store shift drops by k - kk with the gap where s
 * >= 9 (hc's weight relative to 2^s is kept, and lo stays below half a step
 * of it, so the rounded int8 and the clamp are acc's), except that a lane
 * whose hc is 0 stores 0 there (lo / 2^s is within +-1/4); where s <= 8 every
 * lane with hc != 0 saturates at either shift and x is stored at s.  |x| <=
 * 128 * 2^16 + 128 < 2^24 orders the lanes as |acc| does, and add_magnitude
 * recovers |acc| from it once per chunk.  hls/tb/add_tb.cpp checks every int8
 * pair, gap and shift against the 64-bit definition. */
#define ADD_KK 16
#ifdef __SYNTHESIS__
typedef ap_int<9> add_hi_t;     /* the shifted operand, clamped: |hc| <= 128 */
typedef ap_int<25> add_acc_t;   /* x */
typedef ap_uint<24> add_mag_t;  /* |x| */
typedef ap_uint<25> add_rem_t;  /* x's low s bits, s <= 25, and 2^(s-1) */
#else
/* C-sim holds the same values in native integers, for speed (as prod_t). */
typedef int16_t add_hi_t;
typedef int32_t add_acc_t;
typedef uint32_t add_mag_t;
typedef uint32_t add_rem_t;
#endif
#define ADD_SH_MIN (-8)   /* a left shift by 8 saturates every nonzero x */
#define ADD_SH_MAX 25     /* a right shift by 25 rounds every x to 0 */

/* The lane-invariant part, set once per instruction: the shifts and the
 * store's masks, so the lanes share them. */
struct add_align {
    bool swap;         /* b is the shifted operand */
    int k;             /* the exponent gap, [0, 62] */
    int kk;            /* min(k, ADD_KK) */
    add_hi_t lim;      /* hc = clamp(hi, -lim, lim): 2^(62-k), 255 where no int8 reaches it */
    bool lo_off;       /* the gap was cut at s >= 9: a lane with hc == 0 stores 0 */
    int s;             /* x's store shift, [ADD_SH_MIN, ADD_SH_MAX] */
    add_acc_t top;     /* s <= 0: |x| <= top stores unclamped (127 >> -s) */
    add_rem_t mask;    /* s > 0: the remainder's bits, 2^s - 1 */
    add_rem_t half;    /* s > 0: 2^(s-1) */
};

/* sh_a, sh_b: the operands' alignments (<= 0, one of them 0); sh_out the
 * store's shift, all q_shift()ed. */
static inline add_align add_align_of(int sh_a, int sh_b, int sh_out) {
#pragma HLS INLINE
    add_align p;
    p.swap = sh_b < 0;
    p.k = p.swap ? -sh_b : -sh_a;
    p.kk = p.k < ADD_KK ? p.k : ADD_KK;
    p.lim = (add_hi_t)(p.k >= 55 ? (1 << (Q_SHIFT_LIMIT - p.k)) : 255);
    p.lo_off = p.k > ADD_KK && sh_out >= 9;
    const int s = p.lo_off ? sh_out - (p.k - p.kk) : sh_out;
    p.s = s < ADD_SH_MIN ? ADD_SH_MIN : (s > ADD_SH_MAX ? ADD_SH_MAX : s);
    p.top = (add_acc_t)(p.s <= 0 ? Q8_MAX >> -p.s : 0);
    p.mask = p.s > 0 ? (add_rem_t)(((uint32_t)1 << p.s) - 1) : (add_rem_t)0;
    p.half = p.s > 0 ? (add_rem_t)((uint32_t)1 << (p.s - 1)) : (add_rem_t)0;
    return p;
}

/* sat8(rshift_even(x, p.s)) of a narrow x. */
static inline q8_t add_store(add_acc_t x, const add_align &p, bool &clamped) {
#pragma HLS INLINE
    if (p.s <= 0) {
        /* x * 2^k is within [-127, 127] exactly when |x| <= 127 >> k (quant8) */
        clamped = x > p.top || x < -p.top;
        if (clamped)
            return (q8_t)(x > 0 ? Q8_MAX : -Q8_MAX);
        const ap_int<8> b = (ap_int<8>)x;   /* |x| <= 127 */
        return (q8_t)(b << -p.s);
    }
    const add_acc_t q = x >> p.s;
    const add_rem_t r = (add_rem_t)x & p.mask;
    const add_acc_t v = q + ((r > p.half || (r == p.half && (q & 1) != 0)) ? 1 : 0);
    clamped = v > Q8_MAX || v < -Q8_MAX;
    if (clamped)
        return (q8_t)(v > 0 ? Q8_MAX : -Q8_MAX);
    return (q8_t)v;
}

/* One ADD output: a + b aligned, zeroed by the mask (`drop`) or ReLU, stored
 * at the store shift; `mag` the magnitude the statistics order by. */
static inline q8_t add_one(q8_t a, q8_t b, bool drop, bool relu, const add_align &p,
                           add_mag_t &mag, bool &clamped) {
#pragma HLS INLINE
    const q8_t hi = p.swap ? b : a;
    const q8_t lo = p.swap ? a : b;
    const add_hi_t hc = hi > p.lim ? p.lim : (hi < -p.lim ? (add_hi_t)-p.lim : (add_hi_t)hi);
    add_acc_t x = (add_acc_t)hc * ((add_acc_t)1 << p.kk) + lo;
    if (drop || (relu && x < 0)) x = 0;
    mag = x < 0 ? (add_mag_t)-x : (add_mag_t)x;
    return add_store(p.lo_off && hc == 0 ? (add_acc_t)0 : x, p, clamped);
}

/* |acc| of the lane whose x had magnitude m: m = |hc| * 2^kk + d, d in
 * [-128, 128], and |acc| = |hc| * 2^k + d; the map is monotone, so the
 * largest m gives the largest |acc|. */
static inline wide_t add_magnitude(add_mag_t m, const add_align &p) {
#pragma HLS INLINE
    const wide_t h = (wide_t)((m + 128) >> ADD_KK);   /* |hc| where kk = ADD_KK */
    return (wide_t)m + (h << p.k) - (h << p.kk);
}

/* R of a window of kk elements; one divider per instruction, outside every loop. */
static inline wide_t avg_recip(uint32_t kk) {
#pragma HLS INLINE
    return (((wide_t)1 << CTRAIN_AVG_SHIFT) + kk / 2) / kk;
}

#endif
