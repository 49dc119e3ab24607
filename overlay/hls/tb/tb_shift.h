/*
 * The reference's shifts (docs/numeric.md rshift_round and rshift_even),
 * written out with no HLS code shared: header-only, so a primitive's
 * testbench built alone (add_tb.cpp) checks against the same definition as
 * the whole-overlay testbench (tb_reference.h).
 */
#ifndef CTRAIN_TB_SHIFT_H
#define CTRAIN_TB_SHIFT_H

#include <cstdint>

namespace tb {

/* rshift_round with the +-62 clamp and saturating left shifts. */
inline int64_t ref_shift(int64_t x, int64_t s) {
    if (s > 62) s = 62;
    if (s < -62) s = -62;
    if (s > 0) return (x + ((int64_t)1 << (s - 1))) >> s;
    if (s == 0) return x;
    int64_t lim = ((int64_t)1 << 62) >> -s;
    if (x > lim) return (int64_t)1 << 62;
    if (x < -lim) return -((int64_t)1 << 62);
    return x * ((int64_t)1 << -s);
}

/* ref_shift with ties to even for s > 0 (ADD's store, docs/numeric.md rshift_even). */
inline int64_t ref_shift_even(int64_t x, int64_t s) {
    if (s > 62) s = 62;
    if (s <= 0) return ref_shift(x, s);
    const int64_t q = x >> s, r = x - (q << s), half = (int64_t)1 << (s - 1);
    return q + ((r > half || (r == half && (q & 1))) ? 1 : 0);
}

}  // namespace tb

#endif
