/* 1. Hand-computed cases: tiny instructions whose outputs and statistics are
 * worked out by hand from docs/numeric.md (the numbers are in comments). */
#include "tb_helpers.h"
#include "tb_reference.h"
#include "tb_tests.h"

namespace tb {

void test_hand_conv_fp() {
    /* FC with two inputs: a = [3, -5], w = [7, 2], e_a = -2, e_w = -3 -> e_acc = -5,
     * acc = 21 - 10 = 11; e_dst = -4 shifts by 1: (11 + 1) >> 1 = 6.
     * With bias 100 at e_b = -7: (100 + 2) >> 2 = 25, acc = 36 -> 18.
     * With ReLU and w = [-7, 2]: acc = -31 -> 0, max_abs 0. */
    struct Case { uint32_t flags; int8_t w0; int8_t out; int64_t max_abs; uint32_t nnz; };
    const Case cases[] = {{0, 7, 6, 11, 1}, {FLAG_BIAS, 7, 18, 36, 1},
                          {FLAG_RELU, -7, 0, 0, 0}, {0, -7, -15, 31, 1}};
    for (const Case &c : cases) {
        Image m(4096);
        ctrain_insn_t f = insn(OP_CONV_FP, c.flags);
        f.n = 1; f.c_in = 2; f.h_in = f.w_in = 1; f.c_out = 1; f.h_out = f.w_out = 1;
        f.k_h = f.k_w = 1; f.stride = 1;
        f.src = m.put8({3, -5});
        f.src2 = m.put8({c.w0, 2});
        f.src3 = m.put32({100});
        f.dst = m.alloc(1);
        f.stats = m.alloc(32);
        f.e_src = 0; f.e_src2 = 1; f.e_dst = 2; f.e_src3 = 3;
        Result r = run(m, {f}, {-2, -3, -4, -7});
        CHECK(r.status == FAULT_NONE && r.pc == 1, "conv_fp hand: status %u pc %u", r.status, r.pc);
        CHECK(m.i8(f.dst) == c.out, "conv_fp hand flags %u: out %d want %d", c.flags, m.i8(f.dst), c.out);
        RefStats want;
        want.max_abs = c.max_abs; want.nnz = c.nnz; want.count = 1;
        expect_stats(m, f.stats, want, -5, "conv_fp hand");
    }
}

void test_hand_rounding_and_saturation() {
    /* RELU-free path through CONV_FP 1x1 with w = 1, e_w = 0 isolates the shift:
     * out = sat8(rshift_round(a, e_dst - e_a)).  Values from docs/numeric.md:
     * 5 >> 1 -> 3, -5 >> 1 -> -2 (half towards +inf), 3 << 6 = 192 -> 127 (sat),
     * 100 >> 70 clamps to >> 62 -> 0. */
    struct Case { int8_t a; int32_t e_dst; int8_t out; uint32_t sat; };
    const Case cases[] = {{5, 1, 3, 0}, {-5, 1, -2, 0}, {-6, 2, -1, 0}, {3, -6, 127, 1},
                          {-3, -6, -127, 1}, {100, 70, 0, 0}, {-1, -80, -127, 1}, {7, 0, 7, 0}};
    for (const Case &c : cases) {
        Image m(4096);
        ctrain_insn_t f = insn(OP_CONV_FP);
        f.n = f.c_in = f.h_in = f.w_in = f.c_out = f.h_out = f.w_out = 1;
        f.k_h = f.k_w = f.stride = 1;
        f.src = m.put8({c.a});
        f.src2 = m.put8({1});
        f.dst = m.alloc(1);
        f.stats = m.alloc(32);
        f.e_src = 0; f.e_src2 = 1; f.e_dst = 2;
        run(m, {f}, {0, 0, c.e_dst});
        Stats s = read_stats(m, f.stats);
        CHECK(m.i8(f.dst) == c.out && s.sat == c.sat, "shift %d by %d: got %d sat %u, want %d sat %u",
              c.a, c.e_dst, m.i8(f.dst), s.sat, c.out, c.sat);
    }
}

void test_hand_pool_bp_first_max() {
    /* Input rows [4 9 9] and [9 1 0], 2x2 windows, stride 1 (two windows).
     * Window 0 reads 4 9 / 9 1: first maximum (row-major) is input (0,1).
     * Window 1 reads 9 9 / 1 0: first maximum is again input (0,1).
     * Errors 50 and 100 both land there: 150 saturates to 127 (one sat). */
    Image m(4096);
    ctrain_insn_t f = insn(OP_POOL_BP);
    f.n = f.c_in = f.c_out = 1; f.h_in = 2; f.w_in = 3; f.h_out = 1; f.w_out = 2;
    f.k_h = f.k_w = 2; f.stride = 1;
    f.src = m.put8({50, 100});
    f.aux = m.put8({4, 9, 9, 9, 1, 0});
    f.dst = m.alloc(6);
    f.stats = m.alloc(32);
    run(m, {f}, {-3});
    const int8_t want[6] = {0, 127, 0, 0, 0, 0};
    for (int i = 0; i < 6; i++)
        CHECK(m.i8(f.dst + i) == want[i], "pool_bp hand [%d]: %d want %d", i, m.i8(f.dst + i), want[i]);
    RefStats s;
    s.max_abs = 127; s.sat = 1; s.nnz = 1; s.count = 6;
    expect_stats(m, f.stats, s, -3, "pool_bp hand");
}

void test_hand_update() {
    /* One weight: g = 1000, w = 5000, v = 200; lr = 16384 * 2^-15 (1/2), mu = 16384 * 2^-15,
     * wd = 0; e_g = e_m = -20, e_q = -12.
     *   t_g = (16384 * 1000 + 2^14) >> 15 = 500,  t_mu = 100,  t_wd = 0
     *   v' = 600, w' = 4400, q = (4400 + 128) >> 8 = 17. */
    Image m(4096);
    ctrain_insn_t f = insn(OP_UPDATE);
    f.count = 1; f.count_w = 1;
    f.src = m.put32({1000});
    f.src2 = m.put32({5000});
    f.src3 = m.put32({200});
    f.aux = m.put8({1});
    f.dst = m.alloc(1);
    f.stats = m.alloc(32);
    f.e_src = 0; f.e_src2 = 1; f.e_dst = 2; f.e_par = 3;
    run(m, {f}, {-20, -20, -12, 16384, 15, 16384, 15, 0, 10});
    CHECK(m.i32(f.src2) == 4400 && m.i32(f.src3) == 600 && m.i8(f.dst) == 17,
          "update hand: w %d v %d q %d", m.i32(f.src2), m.i32(f.src3), m.i8(f.dst));
    RefStats s;
    s.max_abs = 4400; s.nnz = 1; s.count = 1;
    expect_stats(m, f.stats, s, -20, "update hand");
}

/* A 4-input, 2-output fully connected layer keeping three weights:
 * W = [[0, 3, 0, -2], [5, 0, 0, 0]].  CSR: rowptr [0 2 3], col [1 3 0];
 * transposed: tptr [0 1 2 2 3], tpos [2 0 1], trow [1 0 0]. */
SparseIndex hand_index() {
    return make_index(2, 4, {0, 0, 1}, {1, 3, 0}, {3, -2, 5});
}

ctrain_insn_t hand_sparse(uint32_t op, uint32_t flags) {
    ctrain_insn_t f = insn(op, flags);
    f.n = 1; f.c_in = 4; f.h_in = f.w_in = 1; f.c_out = 2; f.h_out = f.w_out = 1;
    f.k_h = f.k_w = 1; f.stride = 1; f.count = 3;
    f.e_src = 0; f.e_src2 = 1; f.e_dst = 2; f.e_src3 = 3;
    return f;
}

void test_hand_sparse() {
    /* FP: a = [10 -1 7 4], e_a = -2, e_w = -3, e_dst = -5 (no shift):
     * row 0: 3*(-1) + (-2)*4 = -11, row 1: 5*10 = 50; ReLU: 0, 50. */
    for (uint32_t flags : {0u, (uint32_t)FLAG_RELU}) {
        Image m(4096);
        ctrain_insn_t f = hand_sparse(OP_SCONV_FP, flags);
        f.src = m.put8({10, -1, 7, 4});
        SparseIndex ix = hand_index();
        f.src2 = m.put8(ix.vals);
        f.aux = put_index(m, ix);
        f.dst = m.alloc(2);
        f.stats = m.alloc(32);
        Result r = run(m, {f}, {-2, -3, -5, 0});
        if (refused(r, m, 0, {Span{f.dst, 2}}, f.stats, "sconv_fp hand"))
            continue;
        const int8_t want0 = flags ? 0 : -11;
        CHECK(r.status == FAULT_NONE && m.i8(f.dst) == want0 && m.i8(f.dst + 1) == 50,
              "sconv_fp hand flags %u: %d %d (status %u)", flags, m.i8(f.dst), m.i8(f.dst + 1),
              r.status);
        RefStats want;
        want.max_abs = 50; want.nnz = flags ? 1 : 2; want.count = 2;
        expect_stats(m, f.stats, want, -5, "sconv_fp hand");
    }
    /* EB through the transposed index: err = [2 -3] ->
     * x0 = 5*(-3) = -15, x1 = 3*2 = 6, x2 = 0, x3 = -2*2 = -4;
     * mask activations [1 0 5 5] zero x1.  Shift 0 again. */
    for (uint32_t flags : {0u, (uint32_t)FLAG_RELU_MASK}) {
        Image m(4096);
        ctrain_insn_t f = hand_sparse(OP_SCONV_EB, flags);
        f.src = m.put8({2, -3});
        SparseIndex ix = hand_index();
        f.src2 = m.put8(ix.vals);
        f.src3 = m.put8({1, 0, 5, 5});
        f.aux = put_index(m, ix);
        f.dst = m.alloc(4);
        f.stats = m.alloc(32);
        if (refused(run(m, {f}, {-2, -3, -5, 0}), m, 0, {Span{f.dst, 4}}, f.stats, "sconv_eb hand"))
            continue;
        const int8_t want[4] = {-15, (int8_t)(flags ? 0 : 6), 0, -4};
        for (int i = 0; i < 4; i++)
            CHECK(m.i8(f.dst + i) == want[i], "sconv_eb hand [%d]: %d want %d", i, m.i8(f.dst + i),
                  want[i]);
        RefStats st;
        st.max_abs = 15; st.nnz = flags ? 2 : 3; st.count = 4;
        expect_stats(m, f.stats, st, -5, "sconv_eb hand");
    }
    /* WG: the kept gradients err[r]*a[c]: (0,1) 2*(-1) = -2, (0,3) 2*4 = 8,
     * (1,0) -3*10 = -30 in CSR order; bias gradients [2 -3] shifted by
     * e_dst - e_err = -3 (left): [16 -24]. */
    {
        Image m(4096);
        ctrain_insn_t f = hand_sparse(OP_SCONV_WG, FLAG_BIAS);
        f.src = m.put8({2, -3});
        f.src2 = m.put8({10, -1, 7, 4});
        f.aux = put_index(m, hand_index());
        f.dst = m.alloc(12);
        f.dst2 = m.alloc(8);
        f.stats = m.alloc(32);
        if (refused(run(m, {f}, {-2, -3, -5, 0}), m, 0, {Span{f.dst, 12}, Span{f.dst2, 8}}, f.stats,
                    "sconv_wg hand"))
            return;
        CHECK(m.i32(f.dst) == -2 && m.i32(f.dst + 4) == 8 && m.i32(f.dst + 8) == -30 &&
                  m.i32(f.dst2) == 16 && m.i32(f.dst2 + 4) == -24,
              "sconv_wg hand: %d %d %d | %d %d", m.i32(f.dst), m.i32(f.dst + 4), m.i32(f.dst + 8),
              m.i32(f.dst2), m.i32(f.dst2 + 4));
        RefStats st;
        st.max_abs = 30; st.nnz = 5; st.count = 5;
        expect_stats(m, f.stats, st, -5, "sconv_wg hand");
    }
}

void test_hand_bn() {
    /* BN_FP: x = [3 -4 | 5 1] (2 channels of 2), A = [2 -3], B = [8 100];
     * e_x = -2, e_A = -1 -> e_acc = -3; e_B = -5: B >> 2 rounds to [2 25];
     * acc = [8 -6 | 10 22]; e_dst = -2 shifts by 1: [4 -3 | 5 11]
     * ((-6 + 1) >> 1 = -3); ReLU: -6 -> 0. */
    for (uint32_t flags : {0u, (uint32_t)FLAG_RELU}) {
        Image m(4096);
        ctrain_insn_t f = insn(OP_BN_FP, flags);
        f.n = 1; f.c_in = f.c_out = 2; f.h_in = f.h_out = 1; f.w_in = f.w_out = 2;
        f.src = m.put8({3, -4, 5, 1});
        f.src2 = m.put32({2, -3});
        f.src3 = m.put32({8, 100});
        f.dst = m.alloc(4);
        f.stats = m.alloc(32);
        f.e_src = 0; f.e_src2 = 1; f.e_src3 = 2; f.e_dst = 3;
        run(m, {f}, {-2, -1, -5, -2});
        const int8_t want[4] = {4, (int8_t)(flags ? 0 : -3), 5, 11};
        for (int i = 0; i < 4; i++)
            CHECK(m.i8(f.dst + i) == want[i], "bn_fp hand flags %u [%d]: %d want %d", flags, i,
                  m.i8(f.dst + i), want[i]);
        RefStats st;
        st.max_abs = 22; st.nnz = flags ? 3 : 4; st.count = 4;
        expect_stats(m, f.stats, st, -3, "bn_fp hand");
    }
    /* BN_BP: err*A = [6 -8 | -15 -3], mask activations [1 0 | 1 -1] ->
     * [6 0 | -15 0]; e_dst - e_acc = 0. */
    {
        Image m(4096);
        ctrain_insn_t f = insn(OP_BN_BP, FLAG_RELU_MASK);
        f.n = 1; f.c_in = f.c_out = 2; f.h_in = f.h_out = 1; f.w_in = f.w_out = 2;
        f.src = m.put8({3, -4, 5, 1});
        f.src2 = m.put32({2, -3});
        f.aux = m.put8({1, 0, 1, -1});
        f.dst = m.alloc(4);
        f.stats = m.alloc(32);
        f.e_src = 0; f.e_src2 = 1; f.e_dst = 2;
        run(m, {f}, {-2, -1, -3});
        const int8_t want[4] = {6, 0, -15, 0};
        for (int i = 0; i < 4; i++)
            CHECK(m.i8(f.dst + i) == want[i], "bn_bp hand [%d]: %d want %d", i, m.i8(f.dst + i),
                  want[i]);
        RefStats st;
        st.max_abs = 15; st.nnz = 2; st.count = 4;
        expect_stats(m, f.stats, st, -3, "bn_bp hand");
    }
}

void test_hand_add() {
    /* ADD: a = [3 -5 100 0] at e_a = -2, b = [1 2 100 -7] at e_b = -3 ->
     * e_acc = -3, acc = 2a + b = [7 -8 300 -7]; e_dst = -2 shifts by 1, ties
     * to even: [3.5 -> 4, -4, 150 -> 127 (clamped), -3.5 -> -4];
     * ReLU: [7 0 300 0] -> [4 0 127 0]; RELU_MASK with aux [1 1 0 -1]:
     * [7 -8 0 0] -> [4 -4 0 0]. */
    for (uint32_t flags : {0u, (uint32_t)FLAG_RELU, (uint32_t)FLAG_RELU_MASK}) {
        Image m(4096);
        ctrain_insn_t f = insn(OP_ADD, flags);
        f.count = 4;
        f.src = m.put8({3, -5, 100, 0});
        f.src2 = m.put8({1, 2, 100, -7});
        if (flags & FLAG_RELU_MASK) f.aux = m.put8({1, 1, 0, -1});
        f.dst = m.alloc(4);
        f.stats = m.alloc(32);
        f.e_src = 0; f.e_src2 = 1; f.e_dst = 2;
        run(m, {f}, {-2, -3, -2});
        const int8_t plain[4] = {4, -4, 127, -4}, relu[4] = {4, 0, 127, 0}, masked[4] = {4, -4, 0, 0};
        const int8_t *want = flags == FLAG_RELU ? relu : flags == FLAG_RELU_MASK ? masked : plain;
        for (int i = 0; i < 4; i++)
            CHECK(m.i8(f.dst + i) == want[i], "add hand flags %u [%d]: %d want %d", flags, i,
                  m.i8(f.dst + i), want[i]);
        RefStats st;
        st.max_abs = flags == FLAG_RELU_MASK ? 8 : 300;
        st.sat = flags == FLAG_RELU_MASK ? 0 : 1;
        st.nnz = flags == 0 ? 4 : 2;
        st.count = 4;
        expect_stats(m, f.stats, st, -3, "add hand");
    }
}

void test_hand_avgpool() {
    /* AVGPOOL_FP, global 2x2: x = [1 2 3 5], sum 11, R = 2^30 / 4 = 2^28,
     * acc = 11 * 2^28 at e_acc = e_x - 30 = -32; e_dst = -2 shifts by 30:
     * (11*2^28 + 2^29) >> 30 = 3 (2.75 rounded). */
    {
        Image m(4096);
        ctrain_insn_t f = insn(OP_AVGPOOL_FP);
        f.n = 1; f.c_in = f.c_out = 1; f.h_in = f.w_in = 2; f.h_out = f.w_out = 1;
        f.k_h = f.k_w = 2; f.stride = 1;
        f.src = m.put8({1, 2, 3, 5});
        f.dst = m.alloc(1);
        f.stats = m.alloc(32);
        f.e_src = 0; f.e_dst = 1;
        run(m, {f}, {-2, -2});
        CHECK(m.i8(f.dst) == 3, "avgpool_fp hand: %d want 3", m.i8(f.dst));
        RefStats st;
        st.max_abs = 11LL << 28; st.nnz = 1; st.count = 1;
        expect_stats(m, f.stats, st, -32, "avgpool_fp hand");
    }
    /* AVGPOOL_BP, 3x3 window of a 1x3 map (global), err 9 at e = 0, e_dst = -3:
     * R = (2^30 + 1) / 3 = 357913941 (2^30/3 rounded), acc = 9R at e_acc = -30,
     * shift 27: (9R + 2^26) >> 27 = 24 (3 * 8 = 24: 9/3 at 2^-3); ReLU mask
     * [1 0 2] drops the middle. */
    {
        Image m(4096);
        ctrain_insn_t f = insn(OP_AVGPOOL_BP, FLAG_RELU_MASK);
        f.n = 1; f.c_in = f.c_out = 1; f.h_in = 1; f.w_in = 3; f.h_out = f.w_out = 1;
        f.k_h = 1; f.k_w = 3; f.stride = 1;
        f.src = m.put8({9});
        f.aux = m.put8({1, 0, 2});
        f.dst = m.alloc(3);
        f.stats = m.alloc(32);
        f.e_src = 0; f.e_dst = 1;
        run(m, {f}, {0, -3});
        const int8_t want[3] = {24, 0, 24};
        for (int i = 0; i < 3; i++)
            CHECK(m.i8(f.dst + i) == want[i], "avgpool_bp hand [%d]: %d want %d", i, m.i8(f.dst + i),
                  want[i]);
        RefStats st;
        st.max_abs = 9LL * 357913941; st.nnz = 2; st.count = 3;
        expect_stats(m, f.stats, st, -30, "avgpool_bp hand");
    }
}

}  // namespace tb
