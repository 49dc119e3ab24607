/*
 * The narrow quantizer of quant.h against rshift_round, the definition
 * (docs/numeric.md), exhaustively where the domain is small:
 *   quant8(x, s)       == sat8(rshift_round(x, s))    s in [-62, 62], x: every value
 *                         in [-2^16, 2^16], +-2^k and its saturation thresholds
 *                         +-255 * 2^k, each +-{0, 1}, and 2^14 random 64-bit
 *                         values within +-2^62 per shift
 *   quant32(x, s)      == sat32(rshift_round(x, s))   the same values, and its own
 *                         thresholds +-(2^32 - 1) * 2^k and +-Q32_MAX >> k,
 *                         each +-{0, 1}
 * Prints "cases=N mismatches=M"; exits 1 on a mismatch.
 */
#include <cstdio>
#include <cstdint>

#include "quant.h"

static uint64_t mismatches = 0, cases = 0;

static void check_q8(wide_t x, int s) {
    bool c0, c1;
    const q8_t want = sat8(rshift_round(x, s), c0);
    const q8_t got = quant8(x, s, c1);
    cases++;
    if (want != got || c0 != c1) {
        if (mismatches++ < 10)
            std::printf("quant8(%lld, %d): %d/%d, want %d/%d\n", (long long)x, s, got, c1, want, c0);
    }
}

static void check_q32(wide_t x, int s) {
    const int32_t want = sat32(rshift_round(x, s));
    const int32_t got = quant32(x, s);
    cases++;
    if (want != got) {
        if (mismatches++ < 10)
            std::printf("quant32(%lld, %d): %d, want %d\n", (long long)x, s, got, want);
    }
}

static void check_both(wide_t x, int s) {
    check_q8(x, s);
    check_q32(x, s);
}

int main() {
    for (int s = -Q_SHIFT_LIMIT; s <= Q_SHIFT_LIMIT; s++) {
        for (wide_t x = -(1 << 16); x <= (1 << 16); x++)
            check_both(x, s);
        for (int k = 0; k <= Q_SHIFT_LIMIT; k++) {
            for (int d = -1; d <= 1; d++) {
                check_both(((wide_t)1 << k) + d, s);
                check_both(-((wide_t)1 << k) + d, s);
                if (k <= 54) {   /* quant8's saturation thresholds, +-255 * 2^k */
                    check_both(((wide_t)255 << k) + d, s);
                    check_both(-((wide_t)255 << k) + d, s);
                }
                if (k <= 30) {   /* quant32's, +-(2^32 - 1) * 2^k (within +-2^62) */
                    check_both((((wide_t)1 << 32) - 1) * ((wide_t)1 << k) + d, s);
                    check_both(-(((wide_t)1 << 32) - 1) * ((wide_t)1 << k) + d, s);
                }
                if (k <= 31) {   /* and the left shift's, Q32_MAX >> k */
                    check_both((Q32_MAX >> k) + d, s);
                    check_both(-(Q32_MAX >> k) + d, s);
                }
            }
        }
        uint64_t r = 0x9e3779b97f4a7c15ull + (uint64_t)(s + 100);
        for (int i = 0; i < (1 << 14); i++) {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            check_both((wide_t)(r >> 1) - Q_TOP, s);
        }
    }
    std::printf("cases=%llu mismatches=%llu\n", (unsigned long long)cases, (unsigned long long)mismatches);
    return mismatches ? 1 : 0;
}
