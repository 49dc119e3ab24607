/*
 * The reference: docs/numeric.md's arithmetic written out as naive loops
 * (no HLS code shared), and its statistics.
 */
#ifndef CTRAIN_TB_REFERENCE_H
#define CTRAIN_TB_REFERENCE_H

#include <cstdint>
#include <vector>

#include "tb_helpers.h"
#include "tb_shift.h"   /* ref_shift, ref_shift_even */

namespace tb {

inline int64_t clampv(int64_t x, int64_t m) { return x > m ? m : (x < -m ? -m : x); }
inline int64_t absv(int64_t x) { return x < 0 ? -x : x; }

/* Accumulates statistics the way docs/numeric.md defines them. */
struct RefStats {
    int64_t max_abs = 0;
    uint32_t sat = 0, nnz = 0, count = 0;
    void add(int64_t pre, int64_t stored, bool clamped) {
        if (absv(pre) > max_abs) max_abs = absv(pre);
        sat += clamped;
        nnz += stored != 0;
        count++;
    }
};

/* Checks the statistics record at `at` against the reference's. */
void expect_stats(const Image &m, uint32_t at, const RefStats &r, int32_t exp, const char *what);

/* Appends the int8 store of each accumulator (shifted by `shift`, saturated)
 * to `want`, with its statistics. */
void ref_store8(const std::vector<int64_t> &acc, int64_t shift, std::vector<int64_t> &want, RefStats &st);
/* Appends the int32 store of each value (saturated) to `want`, with its statistics. */
void ref_store32(const std::vector<int64_t> &v, std::vector<int64_t> &want, RefStats &st);

/* CONV_FP accumulators [n][co][ho][wo] at e_acc: the products, the bias
 * (FLAG_BIAS, shifted from e_bias) and ReLU (FLAG_RELU). */
std::vector<int64_t> ref_conv_fp(const Conv &c, const std::vector<int8_t> &act,
                                 const std::vector<int8_t> &wt, const std::vector<int32_t> &bias,
                                 uint32_t flags, int32_t e_acc, int32_t e_bias);
/* CONV_EB accumulators [n][ci][h][w]: the transposed convolution of the
 * error, zeroed where FLAG_RELU_MASK's activation is <= 0. */
std::vector<int64_t> ref_conv_eb(const Conv &c, const std::vector<int8_t> &err,
                                 const std::vector<int8_t> &wt, const std::vector<int8_t> &aux,
                                 uint32_t flags);
/* CONV_WG: every weight's gradient [co][ci][kh][kw], shifted by `shift`. */
std::vector<int64_t> ref_conv_wg(const Conv &c, const std::vector<int8_t> &err,
                                 const std::vector<int8_t> &act, int64_t shift);
/* CONV_WG's bias gradients [co], shifted by `shift`. */
std::vector<int64_t> ref_bias_grad(const Conv &c, const std::vector<int8_t> &err, int64_t shift);

}  // namespace tb

#endif
