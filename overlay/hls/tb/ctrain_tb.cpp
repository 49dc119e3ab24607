/*
 * C-sim testbench of ctrain_top (plain C++, no Xilinx tools needed).
 *
 * 1. Hand-computed cases: tiny instructions whose outputs and statistics are
 *    worked out by hand from docs/numeric.md (the numbers are in comments).
 * 2. Reference cases: every opcode on random data, checked against naive
 *    loops written here straight from docs/numeric.md (no HLS code shared).
 * 3. Fault cases: every fault code with its pc and fault address, and no
 *    write by the faulting instruction.
 *
 * Sparse convolutions are checked as docs/numeric.md defines them: the dense
 * reference with the pruned weights zeroed (WG: at the kept positions).
 *
 * Exit status 0 when everything matches, 1 otherwise.
 */
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "csim_port.h"
#include "ctrain_top.h"

namespace {

int failures = 0;
int checks = 0;

#define CHECK(cond, ...)                                       \
    do {                                                       \
        checks++;                                              \
        if (!(cond)) {                                         \
            failures++;                                        \
            std::printf("FAIL %s:%d: ", __FILE__, __LINE__);   \
            std::printf(__VA_ARGS__);                          \
            std::printf("\n");                                 \
        }                                                      \
    } while (0)

/* ---------------------------------------------------------------- DDR image */

struct Image {
    std::vector<uint8_t> ddr;
    uint32_t top = 0;

    explicit Image(uint32_t size) : ddr(size, 0xA5) {}   /* garbage everywhere */

    /* Reserves n bytes at a 64-byte boundary. */
    uint32_t alloc(uint32_t n) {
        uint32_t at = (top + 63) & ~63u;
        top = at + n;
        return at;
    }
    uint32_t put8(const std::vector<int8_t> &v) {
        uint32_t at = alloc((uint32_t)v.size());
        std::memcpy(&ddr[at], v.data(), v.size());
        return at;
    }
    uint32_t put32(const std::vector<int32_t> &v) {
        uint32_t at = alloc(4 * (uint32_t)v.size());
        for (size_t i = 0; i < v.size(); i++)
            for (int b = 0; b < 4; b++)
                ddr[at + 4 * i + b] = (uint8_t)((uint32_t)v[i] >> (8 * b));
        return at;
    }
    int8_t i8(uint32_t at) const { return (int8_t)ddr[at]; }
    int32_t i32(uint32_t at) const {
        uint32_t v = 0;
        for (int b = 0; b < 4; b++)
            v |= (uint32_t)ddr[at + b] << (8 * b);
        return (int32_t)v;
    }
    int64_t i64(uint32_t at) const {
        return (int64_t)((uint64_t)(uint32_t)i32(at) | ((uint64_t)(uint32_t)i32(at + 4) << 32));
    }
};

struct Stats {
    int64_t max_abs;
    int32_t exp;
    uint32_t sat, nnz, count;
};

Stats read_stats(const Image &m, uint32_t at) {
    Stats s;
    s.max_abs = m.i64(at);
    s.exp = m.i32(at + 8);
    s.sat = (uint32_t)m.i32(at + 12);
    s.nnz = (uint32_t)m.i32(at + 16);
    s.count = (uint32_t)m.i32(at + 20);
    return s;
}

struct Result {
    uint32_t status, pc, fault_addr;
};

/* Runs the top itself, with the signature synthesis and co-simulation see:
 * the image goes into an array of CTRAIN_PORT_DEPTH beats (co-simulation maps
 * `depth` beats of it), and comes back after the run. */
Result top(std::vector<uint8_t> &ddr, uint32_t prog, uint32_t n_insn, uint32_t table,
           uint32_t table_len, uint32_t ddr_size) {
    static std::vector<ddr_t> port(CTRAIN_PORT_DEPTH);
    Result r = {FAULT_PROGRAM, 0, 0};
    if (csim_port_beats(ddr.size()) > port.size() || ddr_size > ddr.size()) {
        std::printf("FAIL: a %zu-byte image does not fit the %u-byte port (and a spare beat)\n",
                    ddr.size(), (unsigned)CTRAIN_PORT_BYTES);
        failures++;
        return r;
    }
    /* Beats past the image stay zero: the top never reaches them. */
    csim_window_to_port(ddr.data(), ddr.size(), port.data(), csim_port_beats(ddr.size()));
    ctrain_top(port.data(), prog, n_insn, table, table_len, ddr_size, &r.status, &r.pc,
               &r.fault_addr);
    csim_port_to_window(port.data(), ddr.data(), ddr.size());
    return r;
}

/* Writes the program and table into the image and runs the top on it. */
Result run(Image &m, const std::vector<ctrain_insn_t> &prog, const std::vector<int32_t> &table,
           uint32_t prog_at = UINT32_MAX, uint32_t table_at = UINT32_MAX) {
    if (prog_at == UINT32_MAX)
        prog_at = m.alloc(CTRAIN_INSN_BYTES * (uint32_t)prog.size());
    if (!prog.empty())
        std::memcpy(&m.ddr[prog_at], prog.data(), CTRAIN_INSN_BYTES * prog.size());
    if (table_at == UINT32_MAX)
        table_at = m.put32(table);
    return top(m.ddr, prog_at, (uint32_t)prog.size(), table_at, (uint32_t)table.size(),
               (uint32_t)m.ddr.size());
}

ctrain_insn_t insn(uint32_t op, uint32_t flags = 0) {
    ctrain_insn_t f;
    std::memset(&f, 0, sizeof f);
    f.op = op;
    f.flags = flags;
    return f;
}

ctrain_insn_t halt() { return insn(OP_HALT); }

/* ---------------------------------------------------------------- reference arithmetic */

int64_t ref_shift(int64_t x, int64_t s) {
    if (s > 62) s = 62;
    if (s < -62) s = -62;
    if (s > 0) return (x + ((int64_t)1 << (s - 1))) >> s;
    if (s == 0) return x;
    int64_t lim = ((int64_t)1 << 62) >> -s;
    if (x > lim) return (int64_t)1 << 62;
    if (x < -lim) return -((int64_t)1 << 62);
    return x * ((int64_t)1 << -s);
}

/* ref_shift with ties to even for s > 0 (ADD's store). */
int64_t ref_shift_even(int64_t x, int64_t s) {
    if (s > 62) s = 62;
    if (s <= 0) return ref_shift(x, s);
    const int64_t q = x >> s, r = x - (q << s), half = (int64_t)1 << (s - 1);
    return q + ((r > half || (r == half && (q & 1))) ? 1 : 0);
}

int64_t clampv(int64_t x, int64_t m) { return x > m ? m : (x < -m ? -m : x); }
int64_t absv(int64_t x) { return x < 0 ? -x : x; }

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

void expect_stats(const Image &m, uint32_t at, const RefStats &r, int32_t exp, const char *what) {
    Stats s = read_stats(m, at);
    CHECK(s.max_abs == r.max_abs && s.exp == exp && s.sat == r.sat && s.nnz == r.nnz &&
              s.count == r.count,
          "%s stats: got max_abs %lld exp %d sat %u nnz %u count %u, want %lld %d %u %u %u", what,
          (long long)s.max_abs, s.exp, s.sat, s.nnz, s.count, (long long)r.max_abs, exp, r.sat,
          r.nnz, r.count);
}

/* A deterministic generator (xorshift) so the testbench needs no seed file. */
uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
uint32_t rnd() {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}
int rnd_in(int lo, int hi) { return lo + (int)(rnd() % (uint32_t)(hi - lo + 1)); }
std::vector<int8_t> rnd8(size_t n, int lo = -128, int hi = 127) {
    std::vector<int8_t> v(n);
    for (auto &x : v) x = (int8_t)(rnd() % 4 == 0 ? 0 : rnd_in(lo, hi));
    return v;
}
std::vector<int32_t> rnd32(size_t n, int bits) {
    std::vector<int32_t> v(n);
    for (auto &x : v) x = (int32_t)(rnd_in(-(1 << 15), (1 << 15) - 1) * (1 << (bits - 16)));
    return v;
}

/* The index block of docs/isa.md: CSR and transposed index of the kept
 * weights, and their values in CSR order. */
struct SparseIndex {
    std::vector<uint32_t> rowptr, tptr, tpos;
    std::vector<uint16_t> col, trow;
    std::vector<int8_t> vals;
};

/* Index of the entries (rows[p], cols[p]) given in CSR order, with values. */
SparseIndex make_index(int R, int K, const std::vector<int> &rows, const std::vector<int> &cols,
                       const std::vector<int8_t> &vals) {
    SparseIndex ix;
    const size_t z = rows.size();
    ix.rowptr.assign(R + 1, 0);
    ix.tptr.assign(K + 1, 0);
    for (size_t p = 0; p < z; p++) {
        ix.rowptr[rows[p] + 1]++;
        ix.tptr[cols[p] + 1]++;
        ix.col.push_back((uint16_t)cols[p]);
    }
    for (int r = 0; r < R; r++) ix.rowptr[r + 1] += ix.rowptr[r];
    for (int c = 0; c < K; c++) ix.tptr[c + 1] += ix.tptr[c];
    ix.tpos.assign(z, 0);
    ix.trow.assign(z, 0);
    std::vector<uint32_t> fill(ix.tptr.begin(), ix.tptr.end() - 1);
    for (size_t p = 0; p < z; p++) {   /* CSR order: each column lists rows ascending */
        const uint32_t q = fill[cols[p]]++;
        ix.tpos[q] = (uint32_t)p;
        ix.trow[q] = (uint16_t)rows[p];
    }
    ix.vals = vals;
    return ix;
}

/* Writes the block (odd Z: a garbage padding halfword); returns its address. */
uint32_t put_index(Image &m, const SparseIndex &ix) {
    const uint32_t z = (uint32_t)ix.col.size();
    const uint32_t R = (uint32_t)ix.rowptr.size() - 1, K = (uint32_t)ix.tptr.size() - 1;
    const uint32_t bytes = 4 * (R + 1) + 2 * z + 2 * (z & 1) + 4 * (K + 1) + 6 * z;
    const uint32_t at = m.alloc(bytes);
    uint32_t o = at;
    auto w16 = [&](uint16_t v) { m.ddr[o] = (uint8_t)v; m.ddr[o + 1] = (uint8_t)(v >> 8); o += 2; };
    auto w32 = [&](uint32_t v) { for (int b = 0; b < 4; b++) m.ddr[o + b] = (uint8_t)(v >> (8 * b)); o += 4; };
    for (uint32_t v : ix.rowptr) w32(v);
    for (uint16_t v : ix.col) w16(v);
    if (z & 1) w16(0xBEEF);
    for (uint32_t v : ix.tptr) w32(v);
    for (uint32_t v : ix.tpos) w32(v);
    for (uint16_t v : ix.trow) w16(v);
    return at;
}

/* Byte offsets of the parts inside a block of R rows, K columns, z entries. */
uint32_t col_off(uint32_t R) { return 4 * (R + 1); }
uint32_t tptr_off(uint32_t R, uint32_t z) { return 4 * (R + 1) + 2 * z + 2 * (z & 1); }
uint32_t trow_off(uint32_t R, uint32_t K, uint32_t z) { return tptr_off(R, z) + 4 * (K + 1) + 4 * z; }

/* ---------------------------------------------------------------- 1. hand-computed */

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
        run(m, {f}, {-2, -3, -5, 0});
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
        run(m, {f}, {-2, -3, -5, 0});
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

/* ---------------------------------------------------------------- 2. reference cases */

struct Conv {
    int n, ci, h, w, co, ho, wo, kh, kw, s, p;
};

Conv rnd_conv(int max_ch) {
    Conv c;
    c.n = rnd_in(1, 3); c.ci = rnd_in(1, max_ch); c.co = rnd_in(1, max_ch);
    c.kh = rnd_in(1, 5); c.kw = rnd_in(1, 5); c.s = rnd_in(1, 3);
    c.p = rnd_in(0, (c.kh < c.kw ? c.kh : c.kw) - 1);
    c.h = rnd_in(c.kh - 2 * c.p > 1 ? c.kh - 2 * c.p : 1, 14);
    c.w = rnd_in(c.kw - 2 * c.p > 1 ? c.kw - 2 * c.p : 1, 40);
    c.ho = (c.h + 2 * c.p - c.kh) / c.s + 1;
    c.wo = (c.w + 2 * c.p - c.kw) / c.s + 1;
    return c;
}

ctrain_insn_t conv_insn(uint32_t op, uint32_t flags, const Conv &c) {
    ctrain_insn_t f = insn(op, flags);
    f.n = c.n; f.c_in = c.ci; f.h_in = c.h; f.w_in = c.w; f.c_out = c.co; f.h_out = c.ho;
    f.w_out = c.wo; f.k_h = c.kh; f.k_w = c.kw; f.stride = c.s; f.pad = c.p;
    return f;
}

size_t at4(int n, int ch, int y, int x, int C, int H, int W) {
    return (((size_t)n * C + ch) * H + y) * W + x;
}

/* Dense (op CONV_*) or sparse (SCONV_*: a random keep-mask, the dense
 * reference with the pruned weights zeroed). */
void test_ref_conv(uint32_t op, uint32_t flags, int max_ch) {
    const bool sparse = op == OP_SCONV_FP || op == OP_SCONV_EB || op == OP_SCONV_WG;
    if (sparse) op = op - OP_SCONV_FP + OP_CONV_FP;
    Conv c = rnd_conv(max_ch);
    Image m(1 << 20);
    std::vector<int8_t> act = rnd8((size_t)c.n * c.ci * c.h * c.w);
    std::vector<int8_t> err = rnd8((size_t)c.n * c.co * c.ho * c.wo);
    std::vector<int8_t> wt = rnd8((size_t)c.co * c.ci * c.kh * c.kw, -127, 127);
    SparseIndex ix;
    std::vector<size_t> kept;   /* flat weight positions in CSR order */
    if (sparse) {
        const int K = c.ci * c.kh * c.kw, keep = rnd_in(1, 100);
        std::vector<int> rows, cols;
        for (int r = 0; r < c.co; r++)
            for (int k = 0; k < K; k++) {
                const size_t i = (size_t)r * K + k;
                if ((int)(rnd() % 100) < keep || (r == 0 && k == 0 && kept.empty())) {
                    rows.push_back(r);
                    cols.push_back(k);
                    kept.push_back(i);
                } else {
                    wt[i] = 0;
                }
            }
        std::vector<int8_t> vals;
        for (size_t i : kept) vals.push_back(wt[i]);
        ix = make_index(c.co, K, rows, cols, vals);
    }
    std::vector<int32_t> bias = rnd32(c.co, 24);
    const int32_t e_a = -(int32_t)rnd_in(2, 9), e_b = -(int32_t)rnd_in(3, 12);
    const int32_t e_dst = e_a + e_b + rnd_in(-2, 12), e_bias = e_a + e_b - rnd_in(-3, 3);
    ctrain_insn_t f = conv_insn(sparse ? op - OP_CONV_FP + OP_SCONV_FP : op, flags, c);
    f.e_src = 0; f.e_src2 = 1; f.e_dst = 2; f.e_src3 = 3;
    f.stats = m.alloc(32);
    if (sparse) {
        f.count = (uint32_t)kept.size();
        f.aux = put_index(m, ix);
    }
    RefStats st;
    std::vector<int64_t> want;   /* int8 or int32 outputs */
    int32_t exp = e_a + e_b;
    if (op == OP_CONV_FP) {
        f.src = m.put8(act); f.src2 = m.put8(sparse ? ix.vals : wt); f.src3 = m.put32(bias);
        f.dst = m.alloc((uint32_t)err.size());
        for (int n = 0; n < c.n; n++)
            for (int o = 0; o < c.co; o++)
                for (int y = 0; y < c.ho; y++)
                    for (int x = 0; x < c.wo; x++) {
                        int64_t acc = 0;
                        for (int i = 0; i < c.ci; i++)
                            for (int ky = 0; ky < c.kh; ky++)
                                for (int kx = 0; kx < c.kw; kx++) {
                                    int iy = y * c.s + ky - c.p, ix = x * c.s + kx - c.p;
                                    if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) continue;
                                    acc += (int64_t)wt[at4(o, i, ky, kx, c.ci, c.kh, c.kw)] *
                                           act[at4(n, i, iy, ix, c.ci, c.h, c.w)];
                                }
                        if (flags & FLAG_BIAS) acc += ref_shift(bias[o], (int64_t)exp - e_bias);
                        if ((flags & FLAG_RELU) && acc < 0) acc = 0;
                        int64_t q = ref_shift(acc, (int64_t)e_dst - exp);
                        st.add(acc, clampv(q, 127), clampv(q, 127) != q);
                        want.push_back(clampv(q, 127));
                    }
    } else if (op == OP_CONV_EB) {
        std::vector<int8_t> aux = rnd8(act.size());
        f.src = m.put8(err); f.src2 = m.put8(sparse ? ix.vals : wt);
        if (sparse) f.src3 = m.put8(aux);   /* aux holds the index */
        else f.aux = m.put8(aux);
        f.dst = m.alloc((uint32_t)act.size());
        for (int n = 0; n < c.n; n++)
            for (int i = 0; i < c.ci; i++)
                for (int y = 0; y < c.h; y++)
                    for (int x = 0; x < c.w; x++) {
                        int64_t acc = 0;
                        for (int o = 0; o < c.co; o++)
                            for (int ky = 0; ky < c.kh; ky++)
                                for (int kx = 0; kx < c.kw; kx++)
                                    for (int oy = 0; oy < c.ho; oy++)
                                        for (int ox = 0; ox < c.wo; ox++) {
                                            if (oy * c.s + ky - c.p != y || ox * c.s + kx - c.p != x) continue;
                                            acc += (int64_t)err[at4(n, o, oy, ox, c.co, c.ho, c.wo)] *
                                                   wt[at4(o, i, ky, kx, c.ci, c.kh, c.kw)];
                                        }
                        if ((flags & FLAG_RELU_MASK) && aux[at4(n, i, y, x, c.ci, c.h, c.w)] <= 0) acc = 0;
                        int64_t q = ref_shift(acc, (int64_t)e_dst - exp);
                        st.add(acc, clampv(q, 127), clampv(q, 127) != q);
                        want.push_back(clampv(q, 127));
                    }
    } else {   /* CONV_WG */
        f.src = m.put8(err); f.src2 = m.put8(act);
        f.dst = m.alloc(4 * (uint32_t)(sparse ? kept.size() : wt.size()));
        f.dst2 = m.alloc(4 * (uint32_t)c.co);
        exp = e_dst;
        std::vector<int64_t> dense;   /* every weight's gradient, then the kept ones */
        for (int o = 0; o < c.co; o++)
            for (int i = 0; i < c.ci; i++)
                for (int ky = 0; ky < c.kh; ky++)
                    for (int kx = 0; kx < c.kw; kx++) {
                        int64_t g = 0;
                        for (int n = 0; n < c.n; n++)
                            for (int oy = 0; oy < c.ho; oy++)
                                for (int ox = 0; ox < c.wo; ox++) {
                                    int iy = oy * c.s + ky - c.p, ix = ox * c.s + kx - c.p;
                                    if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) continue;
                                    g += (int64_t)err[at4(n, o, oy, ox, c.co, c.ho, c.wo)] *
                                         act[at4(n, i, iy, ix, c.ci, c.h, c.w)];
                                }
                        int64_t v = ref_shift(g, (int64_t)e_dst - (e_a + e_b));
                        dense.push_back(v);
                    }
        if (sparse) {
            std::vector<int64_t> picked;
            for (size_t i : kept) picked.push_back(dense[i]);
            dense = picked;
        }
        for (int64_t v : dense) {
            int64_t o32 = clampv(v, 2147483647LL);
            st.add(v, o32, o32 != v);
            want.push_back(o32);
        }
        if (flags & FLAG_BIAS)
            for (int o = 0; o < c.co; o++) {
                int64_t g = 0;
                for (int n = 0; n < c.n; n++)
                    for (int oy = 0; oy < c.ho; oy++)
                        for (int ox = 0; ox < c.wo; ox++)
                            g += err[at4(n, o, oy, ox, c.co, c.ho, c.wo)];
                int64_t v = ref_shift(g, (int64_t)e_dst - e_a);
                int64_t o32 = clampv(v, 2147483647LL);
                st.add(v, o32, o32 != v);
                want.push_back(o32);
            }
    }
    Result r = run(m, {f, halt()}, {e_a, e_b, e_dst, e_bias});
    CHECK(r.status == FAULT_NONE && r.pc == 1, "op %u: status %u pc %u", f.op, r.status, r.pc);
    const size_t n_w_out = sparse ? kept.size() : wt.size();
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < want.size(); i++) {
        int64_t got;
        if (op == OP_CONV_WG)
            got = i < n_w_out ? m.i32(f.dst + 4 * (uint32_t)i)
                              : m.i32(f.dst2 + 4 * (uint32_t)(i - n_w_out));
        else
            got = m.i8(f.dst + (uint32_t)i);
        if (got != want[i] && bad++ == 0) first = i;
    }
    CHECK(bad == 0, "op %u flags %u (n%d ci%d %dx%d co%d k%dx%d s%d p%d): %zu wrong, first [%zu]",
          f.op, flags, c.n, c.ci, c.h, c.w, c.co, c.kh, c.kw, c.s, c.p, bad, first);
    expect_stats(m, f.stats, st, exp, "conv reference");
}

void test_ref_pool(uint32_t op, uint32_t flags) {
    Conv c;
    c.n = rnd_in(1, 3); c.ci = c.co = rnd_in(1, 4); c.kh = rnd_in(1, 4); c.kw = rnd_in(1, 4);
    c.s = rnd_in(1, 3); c.p = 0; c.h = rnd_in(c.kh, 13); c.w = rnd_in(c.kw, 30);
    c.ho = (c.h - c.kh) / c.s + 1; c.wo = (c.w - c.kw) / c.s + 1;
    Image m(1 << 18);
    std::vector<int8_t> act = rnd8((size_t)c.n * c.ci * c.h * c.w, rnd() % 2 ? -128 : -2, rnd() % 2 ? 127 : 2);
    std::vector<int8_t> err = rnd8((size_t)c.n * c.co * c.ho * c.wo);
    ctrain_insn_t f = conv_insn(op, flags, c);
    f.stats = m.alloc(32);
    RefStats st;
    std::vector<int64_t> want;
    if (op == OP_POOL_FP) {
        f.src = m.put8(act);
        f.dst = m.alloc((uint32_t)err.size());
        for (int n = 0; n < c.n; n++)
            for (int ch = 0; ch < c.ci; ch++)
                for (int y = 0; y < c.ho; y++)
                    for (int x = 0; x < c.wo; x++) {
                        int best = -1000;
                        for (int ky = 0; ky < c.kh; ky++)
                            for (int kx = 0; kx < c.kw; kx++) {
                                int v = act[at4(n, ch, y * c.s + ky, x * c.s + kx, c.ci, c.h, c.w)];
                                if (v > best) best = v;
                            }
                        st.add(best, best, false);
                        want.push_back(best);
                    }
    } else {
        f.src = m.put8(err);
        f.aux = m.put8(act);
        f.dst = m.alloc((uint32_t)act.size());
        std::vector<int64_t> sum(act.size(), 0);
        for (int n = 0; n < c.n; n++)
            for (int ch = 0; ch < c.ci; ch++)
                for (int y = 0; y < c.ho; y++)
                    for (int x = 0; x < c.wo; x++) {
                        int best = -1000;
                        size_t where = 0;
                        for (int ky = 0; ky < c.kh; ky++)
                            for (int kx = 0; kx < c.kw; kx++) {
                                size_t i = at4(n, ch, y * c.s + ky, x * c.s + kx, c.ci, c.h, c.w);
                                if (act[i] > best) { best = act[i]; where = i; }
                            }
                        if ((flags & FLAG_RELU_MASK) && best <= 0) continue;
                        sum[where] += err[at4(n, ch, y, x, c.co, c.ho, c.wo)];
                    }
        for (int64_t v : sum) {
            st.add(clampv(v, 127), clampv(v, 127), clampv(v, 127) != v);
            want.push_back(clampv(v, 127));
        }
    }
    Result r = run(m, {f}, {-4});
    CHECK(r.status == FAULT_NONE && r.pc == 1, "pool %u: status %u", op, r.status);
    size_t bad = 0;
    for (size_t i = 0; i < want.size(); i++)
        bad += m.i8(f.dst + (uint32_t)i) != want[i];
    CHECK(bad == 0, "pool op %u flags %u (n%d c%d %dx%d k%dx%d s%d): %zu wrong", op, flags, c.n,
          c.ci, c.h, c.w, c.kh, c.kw, c.s, bad);
    expect_stats(m, f.stats, st, -4, "pool reference");
}

void test_ref_add(uint32_t flags) {
    Image m(1 << 16);
    const uint32_t count = (uint32_t)rnd_in(1, 1500);
    std::vector<int8_t> a = rnd8(count), b = rnd8(count), aux = rnd8(count);
    ctrain_insn_t f = insn(OP_ADD, flags);
    f.count = count;
    f.src = m.put8(a);
    f.src2 = m.put8(b);
    if (flags & FLAG_RELU_MASK) f.aux = m.put8(aux);
    f.dst = m.alloc(count);
    f.stats = m.alloc(32);
    f.e_src = 0; f.e_src2 = 1; f.e_dst = 2;
    const int32_t e_a = rnd_in(-12, 4), e_b = rnd() % 8 == 0 ? e_a + 70 : rnd_in(-12, 4);
    const int32_t e_d = rnd_in(-12, 6);
    run(m, {f}, {e_a, e_b, e_d});
    const int64_t e_acc = e_a < e_b ? e_a : e_b;
    RefStats st;
    size_t bad = 0;
    for (uint32_t i = 0; i < count; i++) {
        int64_t acc = ref_shift(a[i], e_acc - e_a) + ref_shift(b[i], e_acc - e_b);
        if ((flags & FLAG_RELU_MASK) && aux[i] <= 0) acc = 0;
        if ((flags & FLAG_RELU) && acc < 0) acc = 0;
        const int64_t v = ref_shift_even(acc, e_d - e_acc), q = clampv(v, 127);
        st.add(acc, q, q != v);
        bad += m.i8(f.dst + i) != q;
    }
    CHECK(bad == 0, "add flags %u (count %u, e %d %d %d): %zu wrong", flags, count, e_a, e_b, e_d, bad);
    expect_stats(m, f.stats, st, (int32_t)e_acc, "add reference");
}

void test_ref_avgpool(uint32_t op, uint32_t flags, bool global) {
    Conv c;
    c.n = rnd_in(1, 3); c.ci = c.co = rnd_in(1, 4); c.p = 0;
    if (global) {
        c.h = c.kh = rnd_in(1, 12); c.w = c.kw = rnd_in(1, 20); c.s = rnd_in(1, 4);
    } else {
        c.kh = rnd_in(1, 4); c.kw = rnd_in(1, 4); c.s = rnd_in(1, 3);
        c.h = rnd_in(c.kh, 13); c.w = rnd_in(c.kw, 30);
    }
    c.ho = (c.h - c.kh) / c.s + 1; c.wo = (c.w - c.kw) / c.s + 1;
    Image m(1 << 18);
    std::vector<int8_t> act = rnd8((size_t)c.n * c.ci * c.h * c.w);
    std::vector<int8_t> err = rnd8((size_t)c.n * c.co * c.ho * c.wo);
    ctrain_insn_t f = conv_insn(op, flags, c);
    f.stats = m.alloc(32);
    const int64_t kk = (int64_t)c.kh * c.kw, r = (((int64_t)1 << 30) + kk / 2) / kk;
    const int32_t e_s = rnd_in(-10, 2), e_d = rnd_in(-12, 2);
    f.e_src = 0; f.e_dst = 1;
    const int64_t sh = e_d - ((int64_t)e_s - 30);
    std::vector<int64_t> acc;
    if (op == OP_AVGPOOL_FP) {
        f.src = m.put8(act);
        f.dst = m.alloc((uint32_t)err.size());
        for (int n = 0; n < c.n; n++)
            for (int ch = 0; ch < c.ci; ch++)
                for (int y = 0; y < c.ho; y++)
                    for (int x = 0; x < c.wo; x++) {
                        int64_t sum = 0;
                        for (int ky = 0; ky < c.kh; ky++)
                            for (int kx = 0; kx < c.kw; kx++)
                                sum += act[at4(n, ch, y * c.s + ky, x * c.s + kx, c.ci, c.h, c.w)];
                        acc.push_back(sum * r);
                    }
    } else {
        f.src = m.put8(err);
        if (flags & FLAG_RELU_MASK) f.aux = m.put8(act);
        f.dst = m.alloc((uint32_t)act.size());
        std::vector<int64_t> sum(act.size(), 0);
        for (int n = 0; n < c.n; n++)
            for (int ch = 0; ch < c.ci; ch++)
                for (int y = 0; y < c.ho; y++)
                    for (int x = 0; x < c.wo; x++)
                        for (int ky = 0; ky < c.kh; ky++)
                            for (int kx = 0; kx < c.kw; kx++)
                                sum[at4(n, ch, y * c.s + ky, x * c.s + kx, c.ci, c.h, c.w)] +=
                                    err[at4(n, ch, y, x, c.co, c.ho, c.wo)];
        for (size_t i = 0; i < sum.size(); i++)
            acc.push_back((flags & FLAG_RELU_MASK) && act[i] <= 0 ? 0 : sum[i] * r);
    }
    Result res = run(m, {f}, {e_s, e_d});
    CHECK(res.status == FAULT_NONE && res.pc == 1, "avgpool %u: status %u", op, res.status);
    RefStats st;
    size_t bad = 0;
    for (size_t i = 0; i < acc.size(); i++) {
        const int64_t v = ref_shift(acc[i], sh), q = clampv(v, 127);
        st.add(acc[i], q, q != v);
        bad += m.i8(f.dst + (uint32_t)i) != q;
    }
    CHECK(bad == 0, "avgpool op %u flags %u (n%d c%d %dx%d k%dx%d s%d): %zu wrong", op, flags, c.n,
          c.ci, c.h, c.w, c.kh, c.kw, c.s, bad);
    expect_stats(m, f.stats, st, e_s - 30, "avgpool reference");
}

void test_ref_relu(uint32_t op, bool in_place) {
    Image m(1 << 16);
    const uint32_t count = (uint32_t)rnd_in(1, 1500);
    std::vector<int8_t> in = rnd8(count), aux = rnd8(count);
    ctrain_insn_t f = insn(op);
    f.count = count;
    f.src = m.put8(in);
    f.aux = m.put8(aux);
    f.dst = in_place ? f.src : m.alloc(count);
    f.stats = m.alloc(32);
    RefStats st;
    size_t bad = 0;
    run(m, {f}, {7});
    for (uint32_t i = 0; i < count; i++) {
        int8_t want = op == OP_RELU_FP ? (in[i] > 0 ? in[i] : 0) : (aux[i] > 0 ? in[i] : 0);
        st.add(want, want, false);
        bad += m.i8(f.dst + i) != want;
    }
    CHECK(bad == 0, "relu op %u in_place %d: %zu wrong", op, in_place, bad);
    expect_stats(m, f.stats, st, 7, "relu reference");
}

void test_ref_update() {
    Image m(1 << 18);
    const uint32_t count = (uint32_t)rnd_in(1, 1200), count_w = (uint32_t)rnd_in(0, (int)count);
    std::vector<int32_t> g = rnd32(count, 20), w = rnd32(count, 22), v = rnd32(count, 18);
    w[0] = 2147483647;   /* saturating corners */
    g[count - 1] = -2147483647;
    std::vector<int8_t> mask(count_w);
    for (auto &x : mask) x = (int8_t)(rnd() % 4 == 0 ? 0 : 1);
    const int32_t lr_m = rnd_in(1 << 14, (1 << 15) - 1), lr_s = rnd_in(14, 24);
    const int32_t mu_m = rnd_in(1 << 14, (1 << 15) - 1), mu_s = 15;
    const int32_t wd_m = rnd_in(1 << 14, (1 << 15) - 1), wd_s = rnd_in(20, 30);
    const int32_t e_q = -6, e_m = -22, e_g = e_m + lr_s - 15 + rnd_in(-3, 3);
    ctrain_insn_t f = insn(OP_UPDATE);
    f.count = count; f.count_w = count_w;
    f.src = m.put32(g); f.src2 = m.put32(w); f.src3 = m.put32(v); f.aux = m.put8(mask);
    f.dst = m.alloc(count_w);
    f.stats = m.alloc(32);
    f.e_src = 0; f.e_src2 = 1; f.e_dst = 2; f.e_par = 3;
    run(m, {f}, {e_g, e_m, e_q, lr_m, lr_s, mu_m, mu_s, wd_m, wd_s});
    RefStats st;
    size_t bad = 0;
    for (uint32_t i = 0; i < count; i++) {
        const int64_t M = 2147483647LL;
        int64_t t_g = clampv(ref_shift((int64_t)lr_m * g[i], (int64_t)lr_s + e_m - e_g), M);
        int64_t decay = clampv(ref_shift((int64_t)wd_m * w[i], wd_s), M);
        int64_t t_wd = clampv(ref_shift(lr_m * decay, lr_s), M);
        int64_t t_mu = clampv(ref_shift((int64_t)mu_m * v[i], mu_s), M);
        int64_t vn = clampv(t_mu + t_g + t_wd, M);
        int64_t wn = clampv(w[i] - vn, M);
        if (i < count_w && mask[i] == 0) wn = vn = 0;
        bad += m.i32(f.src2 + 4 * i) != wn || m.i32(f.src3 + 4 * i) != vn;
        if (i < count_w) {
            int64_t q = ref_shift(wn, e_q - e_m);
            st.add(wn, clampv(q, 127), clampv(q, 127) != q);
            bad += m.i8(f.dst + i) != clampv(q, 127);
        }
    }
    CHECK(bad == 0, "update (count %u count_w %u): %zu wrong", count, count_w, bad);
    expect_stats(m, f.stats, st, e_m, "update reference");
}

/* ---------------------------------------------------------------- 3. faults */

/* A valid 8-element RELU_FP to mutate. */
ctrain_insn_t valid_relu(Image &m) {
    ctrain_insn_t f = insn(OP_RELU_FP);
    f.count = 8;
    f.src = m.put8(rnd8(8));
    f.dst = m.alloc(8);
    f.stats = m.alloc(32);
    return f;
}

void expect_fault(const char *what, Image &m, const std::vector<ctrain_insn_t> &prog,
                  const std::vector<int32_t> &table, uint32_t status, uint32_t pc, uint32_t addr) {
    std::vector<uint8_t> before = m.ddr;
    uint32_t prog_at = m.alloc(CTRAIN_INSN_BYTES * (uint32_t)prog.size());
    uint32_t table_at = m.put32(table);
    std::memcpy(&m.ddr[prog_at], prog.data(), CTRAIN_INSN_BYTES * prog.size());
    before = m.ddr;
    Result r = run(m, prog, table, prog_at, table_at);
    CHECK(r.status == status && r.pc == pc && r.fault_addr == addr,
          "%s: got status %u pc %u addr %u, want %u %u %u", what, r.status, r.pc, r.fault_addr,
          status, pc, addr);
    if (pc == 0)
        CHECK(m.ddr == before, "%s: the faulting instruction wrote to DDR", what);
}

/* The new opcodes' validation: flags, shape (a global window past
 * CTRAIN_MAX_DIM, a max-pool window past CTRAIN_MAX_KERNEL that an average
 * pool accepts), slot (e_dst), overlap (no in-place add). */
void test_graph_faults() {
    Image m(1 << 16);
    ctrain_insn_t a = insn(OP_ADD, FLAG_RELU);
    a.count = 64;
    a.src = m.alloc(64); a.src2 = m.alloc(64); a.dst = m.alloc(64); a.stats = m.alloc(32);
    a.e_src = 0; a.e_src2 = 1; a.e_dst = 2;
    expect_fault("add valid", m, {a}, {0, 0, 0}, FAULT_NONE, 1, 0);
    ctrain_insn_t b = a;
    b.flags = FLAG_BIAS;
    expect_fault("add with BIAS", m, {b}, {0, 0, 0}, FAULT_OPCODE, 0, 0);
    b = a;
    b.e_dst = 3;
    expect_fault("add e_dst past the table", m, {b}, {0, 0, 0}, FAULT_SLOT, 0, 3);
    b = a;
    b.dst = a.src;
    expect_fault("add in place", m, {b}, {0, 0, 0}, FAULT_OVERLAP, 0, a.src);
    ctrain_insn_t p = insn(OP_AVGPOOL_FP);
    p.n = 1; p.c_in = p.c_out = 1; p.h_in = p.w_in = 16; p.k_h = p.k_w = 16; p.h_out = p.w_out = 1;
    p.stride = 1; p.src = m.alloc(256); p.dst = m.alloc(1); p.stats = m.alloc(32);
    p.e_src = 0; p.e_dst = 1;
    expect_fault("global 16x16 average pool", m, {p}, {0, 0}, FAULT_NONE, 1, 0);
    ctrain_insn_t q = p;
    q.op = OP_POOL_FP;
    expect_fault("16x16 max pool", m, {q}, {0, 0}, FAULT_SHAPE, 0, 0);
    q = p;
    q.k_h = CTRAIN_MAX_DIM + 1;
    expect_fault("average pool window past CTRAIN_MAX_DIM", m, {q}, {0, 0}, FAULT_SHAPE, 0, 0);
    q = p;
    q.e_dst = 2;
    expect_fault("average pool e_dst past the table", m, {q}, {0, 0}, FAULT_SLOT, 0, 2);
}

void test_faults() {
    {
        Image m(4096);
        ctrain_insn_t f = valid_relu(m);
        f.op = OP_INVALID;
        expect_fault("OP_INVALID", m, {f}, {0}, FAULT_OPCODE, 0, 0);
    }
    {
        Image m(4096);
        ctrain_insn_t f = valid_relu(m);
        f.flags = FLAG_BIAS;
        expect_fault("flag on RELU_FP", m, {halt(), f}, {0}, FAULT_NONE, 0, 0);
        expect_fault("flag on RELU_FP", m, {f}, {0}, FAULT_OPCODE, 0, 0);
        ctrain_insn_t h = halt();
        h.flags = 1;
        expect_fault("flag on HALT", m, {h}, {}, FAULT_OPCODE, 0, 0);
    }
    {
        Image m(4096);
        ctrain_insn_t f = valid_relu(m);
        ctrain_insn_t g = f;
        g.count = 0;
        expect_fault("count 0 after a valid insn", m, {f, g}, {0}, FAULT_SHAPE, 1, 0);
        Conv c = {1, 1, 4, 4, 1, 3, 2, 3, 3, 1, 0};   /* h_out should be 2 */
        ctrain_insn_t k = conv_insn(OP_CONV_FP, 0, c);
        expect_fault("h_out off by one", m, {k}, {0, 0, 0}, FAULT_SHAPE, 0, 0);
        c.ho = 2;
        c.p = 3;   /* pad must stay below the kernel */
        expect_fault("pad >= k", m, {conv_insn(OP_CONV_FP, 0, c)}, {0, 0, 0}, FAULT_SHAPE, 0, 0);
    }
    {
        Image m(4096);
        ctrain_insn_t f = valid_relu(m);
        f.e_src = 3;
        expect_fault("slot beyond table", m, {f}, {0, 1, 2}, FAULT_SLOT, 0, 3);
        ctrain_insn_t u = insn(OP_UPDATE);
        u.count = 1; u.e_par = 2;
        expect_fault("UPDATE e_par block", m, {u}, {0, 0, 0, 0, 0, 0, 0}, FAULT_SLOT, 0, 2);
    }
    {
        Image m(4096);
        ctrain_insn_t u = insn(OP_UPDATE);
        u.count = 4; u.count_w = 4;
        u.src = m.alloc(16); u.src2 = m.alloc(16) + 2; u.src3 = m.alloc(16); u.stats = m.alloc(32) + 4;
        const std::vector<int32_t> table(CTRAIN_PAR_COUNT, 0);
        expect_fault("misaligned src2", m, {u}, table, FAULT_ALIGN, 0, u.src2);
        u.src2 -= 2;
        expect_fault("misaligned stats", m, {u}, table, FAULT_ALIGN, 0, u.stats);
    }
    {
        Image m(4096);
        ctrain_insn_t f = valid_relu(m);
        f.dst = 4096 - 4;
        expect_fault("dst past window", m, {f}, {0}, FAULT_BOUNDS, 0, 4096 - 4);
        f.dst = 0xFFFFFFF8u;
        expect_fault("dst wraps 32 bits", m, {f}, {0}, FAULT_BOUNDS, 0, 0xFFFFFFF8u);
    }
    {
        Image m(4096);
        ctrain_insn_t f = valid_relu(m);
        f.dst = f.src + 1;
        expect_fault("RELU dst one byte past src", m, {f}, {0}, FAULT_OVERLAP, 0, f.dst);
        ctrain_insn_t g = valid_relu(m);
        g.op = OP_RELU_BP;
        g.aux = m.alloc(8);
        g.dst = g.aux;   /* in place is only dst == src */
        expect_fault("RELU_BP dst == aux", m, {g}, {0}, FAULT_OVERLAP, 0, g.dst);
        ctrain_insn_t h = valid_relu(m);
        h.stats = h.src & ~7u;   /* the statistics record on top of the input */
        expect_fault("stats over src", m, {h}, {0}, FAULT_OVERLAP, 0, h.stats);
        ctrain_insn_t u = insn(OP_UPDATE);
        u.count = 4;
        u.src = m.alloc(16); u.src2 = u.src + 8; u.src3 = m.alloc(16); u.stats = m.alloc(32);
        expect_fault("gradient under master", m, {u}, std::vector<int32_t>(CTRAIN_PAR_COUNT, 0),
                     FAULT_OVERLAP, 0, u.src2);
    }
    {
        /* FAULT_INDEX: the hand case's index with one bad entry; the address is
         * the entry's, checked in memory order, nothing written. */
        const uint32_t R = 2, K = 4, Z = 3;
        struct Bad { const char *what; uint32_t at; uint8_t value; };
        const Bad bads[] = {
            {"rowptr[0] = 1", 0, 1},
            {"rowptr[2] = 2 (!= Z)", 8, 2},
            {"col[1] = 4 (>= K)", col_off(R) + 2, 4},
            {"tptr[4] = 9 (!= Z)", tptr_off(R, Z) + 16, 9},
            {"tptr[2] = 0 (decreasing)", tptr_off(R, Z) + 8, 0},
            {"tpos[0] = 3 (>= Z)", tptr_off(R, Z) + 4 * (K + 1), 3},
            {"trow[2] = 2 (>= R)", trow_off(R, K, Z) + 4, 2},
        };
        for (const Bad &b : bads) {
            Image m(4096);
            ctrain_insn_t f = hand_sparse(OP_SCONV_WG, 0);
            f.src = m.put8({2, -3});
            f.src2 = m.put8({10, -1, 7, 4});
            f.aux = put_index(m, hand_index());
            f.dst = m.alloc(12);
            f.stats = m.alloc(32);
            m.ddr[f.aux + b.at] = b.value;
            expect_fault(b.what, m, {f}, {-2, -3, -5}, FAULT_INDEX, 0, f.aux + b.at);
        }
        /* Two bad entries: the lower address wins (col before trow). */
        Image m(4096);
        ctrain_insn_t f = hand_sparse(OP_SCONV_FP, 0);
        f.src = m.put8({10, -1, 7, 4});
        f.src2 = m.put8({3, -2, 5});
        f.aux = put_index(m, hand_index());
        f.dst = m.alloc(2);
        f.stats = m.alloc(32);
        m.ddr[f.aux + trow_off(R, K, Z)] = 7;
        m.ddr[f.aux + col_off(R) + 4] = 9;
        expect_fault("col and trow", m, {halt(), f}, {-2, -3, -5}, FAULT_NONE, 0, 0);
        expect_fault("col and trow", m, {f}, {-2, -3, -5}, FAULT_INDEX, 0, f.aux + col_off(R) + 4);
        /* A shape fault comes first: count 0. */
        f.count = 0;
        expect_fault("sparse count 0", m, {f}, {-2, -3, -5}, FAULT_SHAPE, 0, 0);
        /* BN: c_out must equal c_in. */
        ctrain_insn_t g = insn(OP_BN_BP);
        g.n = 1; g.c_in = 2; g.c_out = 3; g.h_in = g.h_out = g.w_in = g.w_out = 1;
        expect_fault("bn c_out != c_in", m, {g}, {0, 0, 0}, FAULT_SHAPE, 0, 0);
    }
    {
        Image m(1 << 20);
        Result r = top(m.ddr, 4096 - 64, 1, 0, 0, 4096);
        CHECK(r.status == FAULT_PROGRAM && r.pc == 0 && r.fault_addr == 4096 - 64,
              "program past window: %u %u %u", r.status, r.pc, r.fault_addr);
        r = top(m.ddr, 0, 1, 130, 2, 4096);
        CHECK(r.status == FAULT_PROGRAM && r.fault_addr == 130, "table misaligned: %u %u", r.status,
              r.fault_addr);
        r = top(m.ddr, 0, 0, 0, CTRAIN_MAX_TABLE + 1, 1 << 20);
        CHECK(r.status == FAULT_PROGRAM, "table_len beyond CTRAIN_MAX_TABLE: %u", r.status);
        r = top(m.ddr, 0, 0, 0, 0, 4096);
        CHECK(r.status == FAULT_NONE && r.pc == 0, "empty program: %u %u", r.status, r.pc);
    }
}

}  // namespace

int main() {
    test_hand_conv_fp();
    test_hand_rounding_and_saturation();
    test_hand_pool_bp_first_max();
    test_hand_update();
    test_hand_sparse();
    test_hand_bn();
    test_hand_add();
    test_hand_avgpool();
    for (int i = 0; i < 12; i++) {
        const int max_ch = i % 3 == 0 ? 2 * (PE_ROWS > PE_COLS ? PE_ROWS : PE_COLS) + 3 : 6;
        test_ref_conv(OP_CONV_FP, (uint32_t)(i % 4) & (FLAG_RELU | FLAG_BIAS), max_ch);
        test_ref_conv(OP_CONV_EB, i % 2 ? FLAG_RELU_MASK : 0, max_ch);
        test_ref_conv(OP_CONV_WG, i % 2 ? FLAG_BIAS : 0, max_ch);
        test_ref_pool(OP_POOL_FP, 0);
        test_ref_pool(OP_POOL_BP, i % 2 ? FLAG_RELU_MASK : 0);
        test_ref_relu(OP_RELU_FP, i % 2);
        test_ref_relu(OP_RELU_BP, i % 3 == 0);
        test_ref_update();
        test_ref_conv(OP_SCONV_FP, (uint32_t)(i % 4) & (FLAG_RELU | FLAG_BIAS), max_ch);
        test_ref_conv(OP_SCONV_EB, i % 2 ? FLAG_RELU_MASK : 0, max_ch);
        test_ref_conv(OP_SCONV_WG, i % 2 ? FLAG_BIAS : 0, max_ch);
        test_ref_add((uint32_t)((i % 2) * FLAG_RELU + ((i / 2) % 2) * FLAG_RELU_MASK));
        test_ref_avgpool(OP_AVGPOOL_FP, 0, i % 3 == 0);
        test_ref_avgpool(OP_AVGPOOL_BP, i % 2 ? FLAG_RELU_MASK : 0, i % 3 == 0);
    }
    test_faults();
    test_graph_faults();
    std::printf("ctrain_tb (%s, PE %dx%d): %d checks, %d failures\n", CTRAIN_BOARD_NAME, PE_ROWS,
                PE_COLS, checks, failures);
    std::printf(failures ? "FAIL\n" : "PASS\n");
    return failures ? 1 : 0;
}
