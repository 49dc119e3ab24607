/*
 * Quantization unit: the primitive operations of docs/numeric.md on int64,
 * and the statistics every instruction reports.  All inline: each unit
 * instantiates them inside its own pipelined loop.
 */
#ifndef CTRAIN_QUANT_H
#define CTRAIN_QUANT_H

#include "types.h"

#define Q_SHIFT_LIMIT 62
#define Q8_MAX 127
#define Q32_MAX 2147483647LL
#define Q_TOP ((wide_t)1 << Q_SHIFT_LIMIT)
/* int64's ends: bounds no value passes */
#define Q_WIDE_MAX ((wide_t)0x7fffffffffffffffLL)
#define Q_WIDE_MIN (-Q_WIDE_MAX - 1)

/* Exponent difference -> shift amount: exact 64-bit sum of table values,
 * then clamped to [-62, 62]. */
static inline int q_shift(wide_t s) {
#pragma HLS INLINE
    if (s > Q_SHIFT_LIMIT) return Q_SHIFT_LIMIT;
    if (s < -Q_SHIFT_LIMIT) return -Q_SHIFT_LIMIT;
    return (int)s;
}

/* x * 2^-s rounded half towards +inf, for s > 0: rshift_round's right
 * shift, shared with the quantizers that handle s <= 0 their own way.  >> on
 * a negative int64 is arithmetic (GCC, Clang and HLS all define it so). */
static inline wide_t round_right(wide_t x, int s) {
#pragma HLS INLINE
    return (x + ((wide_t)1 << (s - 1))) >> s;
}

/* x * 2^k (k >= 0) saturating at +-2^62: rshift_round's left shift written
 * as a shift (a beat's lanes take three each, and a barrel shifter is far
 * cheaper than the 64-bit product `x * 2^k` would bind to). */
static inline wide_t lane_lshift(wide_t x, int k) {
#pragma HLS INLINE
    const wide_t lim = Q_TOP >> k;
    if (x > lim) return Q_TOP;
    if (x < -lim) return -Q_TOP;
    return (wide_t)((uint64_t)x << k);   /* |result| <= 2^62 */
}

/* x * 2^-s rounded half towards +inf (s > 0, round_right); exact left shift
 * saturating at +-2^62 (s < 0, lane_lshift).  s is an already clamped
 * q_shift(). */
static inline wide_t rshift_round(wide_t x, int s) {
#pragma HLS INLINE
    if (s > 0)
        return round_right(x, s);
    if (s == 0)
        return x;
    return lane_lshift(x, -s);
}

/* Symmetric saturation; `clamped` tells the statistics. */
static inline q8_t sat8(wide_t x, bool &clamped) {
#pragma HLS INLINE
    clamped = x > Q8_MAX || x < -Q8_MAX;
    return (q8_t)(x > Q8_MAX ? Q8_MAX : (x < -Q8_MAX ? -Q8_MAX : x));
}

/* sat(rshift_round(x, s)) at Q = 2^B - 1 (B = 7: quant8, 31: quant32), the
 * quantizers of every epilogue and of UPDATE's terms.  Every shift saturates
 * x exactly outside one range [lo, hi] that depends on s alone, so a lane
 * compares x against two lane-invariant bounds (q_bounds_of: made once per
 * unit, whatever its lanes) instead of a pair per shift direction and the
 * saturation's pair besides:
 * - s > 0: round_right(x, s) is ((x >> k) + 1) >> 1, k = s - 1 (a floor of
 *   a floor); it leaves [-Q, Q] exactly when x >= (2Q + 1) * 2^k or
 *   x < -(2Q + 1) * 2^k (bounds no int64 reaches from k = 63 - B: then the
 *   range is all of int64; hi = ~lo, -lo - 1, so one decoder makes both);
 *   inside, x >> k is within [-(2Q + 1), 2Q], so its B + 2 low bits are
 *   all the rest takes (synthesis trims the shifter's other outputs);
 * - s <= 0: x * 2^k (k = -s, capped at B: Q >> B is 0) is within [-Q, Q]
 *   exactly when |x| <= Q >> k (rshift_round's saturation at Q_TOP is past
 *   that too), and then x has at most B bits, so the product is x's B + 1
 *   low bits shifted (k <= B), not a 64-bit shifter; s = 0 is k = 0, the
 *   plain saturation's range.
 * A saturated x is never 0 (lo <= 0 <= hi), so its sign picks the bound.
 * One template for both widths: the twins differed in B only. */
struct q_bounds {
    bool right;      /* s > 0 */
    int k, kl;       /* the right shift's s - 1, the left shift's -s (capped at B) */
    wide_t hi, lo;   /* the range that does not saturate */
};

/* q_narrow<B>'s bounds and shifts of one s: lane- and element-invariant, so
 * a unit computes them once per instruction. */
template <int B>
static inline q_bounds q_bounds_of(int s) {
#pragma HLS INLINE
    const int Q = (int)(((wide_t)1 << B) - 1);
    const wide_t R = ((wide_t)2 << B) - 1;   /* 2Q + 1 */
    q_bounds q;
    q.right = s > 0;
    q.k = s - 1;
    q.kl = q.right ? 0 : (-s < B ? -s : B);
    const bool reach = q.k <= Q_SHIFT_LIMIT - B;
    const int top = Q >> q.kl;
    q.lo = q.right ? (reach ? (wide_t)((uint64_t)(-R) << q.k) : Q_WIDE_MIN) : -top;
    q.hi = q.right ? ~q.lo : top;
    return q;
}

/* x quantized with q = q_bounds_of<B>(s), the same B: B + 1 bits, `clamped`
 * tells the statistics. */
template <int B>
static inline ap_int<B + 1> q_narrow(wide_t x, const q_bounds &q, bool &clamped) {
#pragma HLS INLINE
    const int Q = (int)(((wide_t)1 << B) - 1);
    clamped = x > q.hi || x < q.lo;
    if (clamped)
        return x < 0 ? -Q : Q;
    if (q.right) {
        const ap_int<B + 2> y = x >> q.k;
        const ap_int<B + 3> z = y + 1;
        return z >> 1;
    }
    const ap_int<B + 1> b = x;   /* |x| <= Q */
    return b << q.kl;
}

/* sat8(rshift_round(x, s), clamped), the int8 quantizer of every epilogue. */
static inline q8_t quant8(wide_t x, int s, bool &clamped) {
#pragma HLS INLINE
    return (q8_t)q_narrow<7>(x, q_bounds_of<7>(s), clamped);
}

/* A convolution output's epilogue (docs/numeric.md): plus its bias, then
 * ReLU or the error mask (a mask value m <= 0 zeroes it), quantized to int8
 * (quant8).  v leaves as the value the statistics see; every convolution
 * path (pe_array, the sparse paths) takes its outputs through this one. */
static inline q8_t conv_epilogue(wide_t &v, bool bias, wide_t b, bool relu, bool mask, q8_t m, int sh,
                                 bool &clamped) {
#pragma HLS INLINE
    if (bias)
        v += b;
    if (relu && v < 0) v = 0;
    if (mask && m <= 0) v = 0;
    return quant8(v, sh, clamped);
}

static inline int32_t sat32(wide_t x, bool &clamped) {
#pragma HLS INLINE
    clamped = x > Q32_MAX || x < -Q32_MAX;
    return (int32_t)(x > Q32_MAX ? Q32_MAX : (x < -Q32_MAX ? -Q32_MAX : x));
}

static inline int32_t sat32(wide_t x) {
#pragma HLS INLINE
    bool unused;
    return sat32(x, unused);
}

/* sat32(rshift_round(x, s)) where the shifted value itself is not needed
 * (UPDATE's terms), q_narrow<31>; q = q_bounds_of<31>(s), once per
 * instruction. */
static inline int32_t quant32(wide_t x, const q_bounds &q) {
#pragma HLS INLINE
    bool unused;
    return (int32_t)q_narrow<31>(x, q, unused);
}

static inline int32_t quant32(wide_t x, int s) {
#pragma HLS INLINE
    return quant32(x, q_bounds_of<31>(s));
}

static inline wide_t q_abs(wide_t x) {
#pragma HLS INLINE
    return x < 0 ? -x : x;   /* never INT64_MIN: values stay within +-2^63 - 2^62 */
}

/* Running statistics of one instruction (ctrain_stats_t without exp). */
struct q_stats {
    wide_t max_abs;
    uint32_t sat;
    uint32_t nnz;
    uint32_t count;
};

static inline void q_stats_clear(q_stats &st) {
#pragma HLS INLINE
    st.max_abs = 0;
    st.sat = 0;
    st.nnz = 0;
    st.count = 0;
}

/* One cycle's outputs of a unit's lanes, reduced before they meet the
 * running record (so it takes one compare and three adds whatever the lane
 * count): the largest magnitude before rounding, saturations, nonzeros
 * stored and count, counts of at most 255 lanes (8-bit adders). */
struct q_lanes {
    wide_t max_abs;
    ap_uint<8> sat, nnz, count;
};

static inline void q_lanes_add(q_lanes &c, wide_t pre, wide_t stored, bool clamped) {
#pragma HLS INLINE
    const wide_t v = q_abs(pre);
    if (v > c.max_abs) c.max_abs = v;
    c.sat += clamped ? 1 : 0;
    c.nnz += stored != 0 ? 1 : 0;
    c.count += 1;
}

static inline void q_stats_merge(q_stats &st, const q_lanes &c) {
#pragma HLS INLINE
    if (c.max_abs > st.max_abs) st.max_abs = c.max_abs;
    st.sat += c.sat;
    st.nnz += c.nnz;
    st.count += c.count;
}

/* One stored output: `pre` is the value whose magnitude max_abs tracks,
 * `stored` the value written, `clamped` whether the store saturated (a
 * one-lane q_lanes: the 8-bit counts of constants fold away). */
static inline void q_stats_add(q_stats &st, wide_t pre, wide_t stored, bool clamped) {
#pragma HLS INLINE
    q_lanes c = {0, 0, 0, 0};
    q_lanes_add(c, pre, stored, clamped);
    q_stats_merge(st, c);
}

/* The outputs of lanes a <= j < e of E produced in one cycle (a run of a
 * beat-wide unit's lanes, anywhere in the word). */
template <int E>
static inline void q_stats_add_run(q_stats &st, const wide_t pre[E], const wide_t stored[E],
                                   const bool clamped[E], uint32_t a, uint32_t e) {
#pragma HLS INLINE
    static_assert(E < 256, "q_lanes counts lanes in 8 bits");
    q_lanes c = {0, 0, 0, 0};
    for (int j = 0; j < E; j++) {
#pragma HLS UNROLL
        if ((uint32_t)j >= a && (uint32_t)j < e)
            q_lanes_add(c, pre[j], stored[j], clamped[j]);
    }
    q_stats_merge(st, c);
}

/* The first `live` of E outputs produced in one cycle (a beat-wide unit):
 * the lanes' maximum and counts first, then one update of st, so the
 * loop-carried part is one compare and three adds whatever E is.  Same
 * result as q_stats_add on each lane in order. */
template <int E>
static inline void q_stats_add_lanes(q_stats &st, const wide_t pre[E], const wide_t stored[E],
                                     const bool clamped[E], uint32_t live) {
#pragma HLS INLINE
    q_stats_add_run<E>(st, pre, stored, clamped, 0, live);
}

/* The first `live` of E int8 outputs produced in one cycle whose values
 * before rounding are themselves (RELU, max pooling: the value stored is
 * the value the statistics see): q_stats_add_lanes on 8 bits, a magnitude
 * of at most 128 (ap_uint<8>) instead of a 64-bit negation, maximum and
 * zero test per lane; one widening per cycle. */
template <int E>
static inline void q_stats_add_lanes8(q_stats &st, const q8_t v[E], const bool clamped[E],
                                      uint32_t live) {
#pragma HLS INLINE
    static_assert(E < 256, "the lanes are counted in 8 bits");
    ap_uint<8> top = 0, sat = 0, nnz = 0, count = 0;
    for (int j = 0; j < E; j++) {
#pragma HLS UNROLL
        if ((uint32_t)j < live) {
            const ap_uint<8> m = v[j] < 0 ? (ap_uint<8>)(-v[j]) : (ap_uint<8>)v[j];
            if (m > top) top = m;
            sat += clamped[j] ? 1 : 0;
            nnz += v[j] != 0 ? 1 : 0;
            count += 1;
        }
    }
    if ((wide_t)top > st.max_abs) st.max_abs = (wide_t)top;
    st.sat += sat;
    st.nnz += nnz;
    st.count += count;
}

/* Writes the 32-byte ctrain_stats_t record (little-endian) at addr. */
void q_stats_store(ddr_t *ddr, uint32_t addr, const q_stats &st, int32_t exp);

#endif
