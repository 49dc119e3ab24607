/*
 * The narrow quantizer of quant.h against rshift_round, the definition
 * (docs/numeric.md), exhaustively where the domain is small:
 *   quant8(x, s)       == sat8(rshift_round(x, s))    s in [-62, 62], x: every value
 *                         in [-2^16, 2^16], +-2^k and its saturation thresholds
 *                         +-255 * 2^k, each +-{0, 1}, and 2^14 random 64-bit
 *                         values within +-2^62 per shift
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

int main() {
    for (int s = -Q_SHIFT_LIMIT; s <= Q_SHIFT_LIMIT; s++) {
        for (wide_t x = -(1 << 16); x <= (1 << 16); x++)
            check_q8(x, s);
        for (int k = 0; k <= Q_SHIFT_LIMIT; k++) {
            for (int d = -1; d <= 1; d++) {
                check_q8(((wide_t)1 << k) + d, s);
                check_q8(-((wide_t)1 << k) + d, s);
                if (k <= 54) {   /* quant8's saturation thresholds, +-255 * 2^k */
                    check_q8(((wide_t)255 << k) + d, s);
                    check_q8(-((wide_t)255 << k) + d, s);
                }
            }
        }
        uint64_t r = 0x9e3779b97f4a7c15ull + (uint64_t)(s + 100);
        for (int i = 0; i < (1 << 14); i++) {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            check_q8((wide_t)(r >> 1) - Q_TOP, s);
        }
    }
    std::printf("cases=%llu mismatches=%llu\n", (unsigned long long)cases, (unsigned long long)mismatches);
    return mismatches ? 1 : 0;
}
