/*
 * ADD's narrow lane (eltwise.h add_one, add_magnitude) against the 64-bit
 * definition (docs/numeric.md, the reference's tb_shift.h): acc =
 * rshift_round(a, sh_a) + rshift_round(b, sh_b) (each a saturating left
 * shift, one of them by 0),
 * zeroed by the mask or ReLU, stored as sat8(rshift_even(acc, sh_out)), its
 * magnitude |acc| the statistics' maximum.  Every int8 pair, every gap
 * k in [0, 62] with either operand shifted, every store shift in [-62, 62],
 * with and without ReLU; the mask's drop for every gap and shift.
 * ADD_TB_B_STEP > 1 takes every ADD_TB_B_STEP-th b from -128 to 127 (a
 * divisor of 255): the build with -D__SYNTHESIS__, whose ap_int words are
 * the widths synthesis gets (C-sim holds them in native integers), runs
 * the pairs ten times slower.
 * Prints "cases=N mismatches=M"; exits 1 on a mismatch.
 */
#include <cstdio>
#include <cstdint>

#include "eltwise.h"
#include "tb/tb_shift.h"

#ifndef ADD_TB_B_STEP
#define ADD_TB_B_STEP 1
#endif

static uint64_t mismatches = 0, cases = 0;

static void check(int a, int b, int sh_a, int sh_b, int sh_out, bool drop, bool relu,
                  const add_align &al) {
    wide_t acc = tb::ref_shift(a, sh_a) + tb::ref_shift(b, sh_b);
    if (drop || (relu && acc < 0)) acc = 0;
    bool c0, c1;
    const q8_t want = sat8(tb::ref_shift_even(acc, sh_out), c0);
    add_mag_t m;
    const q8_t got = add_one((q8_t)a, (q8_t)b, drop, relu, al, m, c1);
    const wide_t mag = add_magnitude(m, al);
    const wide_t want_mag = acc < 0 ? -acc : acc;
    cases++;
    if (want != got || c0 != c1 || mag != want_mag) {
        if (mismatches++ < 10)
            std::printf("add(%d, %d; %d, %d; %d%s%s): %d/%d |%lld|, want %d/%d |%lld|\n", a, b,
                        sh_a, sh_b, sh_out, drop ? " drop" : "", relu ? " relu" : "", got, c1,
                        (long long)mag, want, c0, (long long)want_mag);
    }
}

int main() {
    for (int k = 0; k <= Q_SHIFT_LIMIT; k++) {
        for (int side = 0; side < 2; side++) {
            const int sh_a = side ? 0 : -k, sh_b = side ? -k : 0;
            for (int s = -Q_SHIFT_LIMIT; s <= Q_SHIFT_LIMIT; s++) {
                const add_align al = add_align_of(sh_a, sh_b, s);
                for (int relu = 0; relu < 2; relu++)
                    for (int a = -128; a <= 127; a++)
                        for (int b = -128; b <= 127; b += ADD_TB_B_STEP)
                            check(a, b, sh_a, sh_b, s, false, relu != 0, al);
                for (int a = -128; a <= 127; a += 51)
                    check(a, 127 - a, sh_a, sh_b, s, true, false, al);
            }
        }
    }
    std::printf("cases=%llu mismatches=%llu\n", (unsigned long long)cases, (unsigned long long)mismatches);
    return mismatches ? 1 : 0;
}
