/*
 * mul2 (mac2.h) against two plain products for every int8 triple (a, b0, b1):
 * 2^24 cases.  Built per board (-DCTRAIN_BOARD_<NAME>) by tests/test_tb_exhaustive.py;
 * prints the number of cases and mismatches, exits 1 on any mismatch.
 */
#include <cstdio>

#include "mac2.h"

int main() {
    long cases = 0, bad = 0;
    for (int a = -128; a < 128; a++) {
        for (int b0 = -128; b0 < 128; b0++) {
            for (int b1 = -128; b1 < 128; b1++) {
                prod_t p0, p1;
                mul2((q8_t)a, (q8_t)b0, (q8_t)b1, p0, p1);
                cases++;
                if ((int)p0 != a * b0 || (int)p1 != a * b1) {
                    if (bad++ < 5)
                        std::printf("mul2(%d, %d, %d) = (%d, %d)\n", a, b0, b1, (int)p0, (int)p1);
                }
            }
        }
    }
    std::printf("dsp_int8=%d cases=%ld mismatches=%ld\n", CTRAIN_DSP_INT8, cases, bad);
    return bad != 0;
}
