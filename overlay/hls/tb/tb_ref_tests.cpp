/* 2. Reference cases: every opcode on random data, checked against the naive
 * loops of tb_reference (docs/numeric.md written out, no HLS code shared).
 * Sparse convolutions are checked as docs/numeric.md defines them: the dense
 * reference with the pruned weights zeroed (WG: at the kept positions). */
#include "tb_helpers.h"
#include "tb_reference.h"
#include "tb_tests.h"

namespace tb {

/* A random keep-mask over the weights wt [co][K]: the pruned ones zeroed,
 * the kept flat positions (CSR order) in `kept`, their index returned. */
static SparseIndex rnd_sparse(const Conv &c, std::vector<int8_t> &wt, std::vector<size_t> &kept) {
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
    return make_index(c.co, K, rows, cols, vals);
}

/* Counts the outputs that differ from `want`: int8 at dst, or (WG) the
 * n_w int32 weight gradients at dst then the bias gradients at dst2. */
static size_t count_wrong(const Image &m, const ctrain_insn_t &f, bool wg, size_t n_w,
                          const std::vector<int64_t> &want, size_t &first) {
    size_t bad = 0;
    for (size_t i = 0; i < want.size(); i++) {
        int64_t got;
        if (wg)
            got = i < n_w ? m.i32(f.dst + 4 * (uint32_t)i) : m.i32(f.dst2 + 4 * (uint32_t)(i - n_w));
        else
            got = m.i8(f.dst + (uint32_t)i);
        if (got != want[i] && bad++ == 0) first = i;
    }
    return bad;
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
    if (sparse) ix = rnd_sparse(c, wt, kept);
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
        ref_store8(ref_conv_fp(c, act, wt, bias, flags, exp, e_bias), (int64_t)e_dst - exp, want, st);
    } else if (op == OP_CONV_EB) {
        std::vector<int8_t> aux = rnd8(act.size());
        f.src = m.put8(err); f.src2 = m.put8(sparse ? ix.vals : wt);
        if (sparse) f.src3 = m.put8(aux);   /* aux holds the index */
        else f.aux = m.put8(aux);
        f.dst = m.alloc((uint32_t)act.size());
        ref_store8(ref_conv_eb(c, err, wt, aux, flags), (int64_t)e_dst - exp, want, st);
    } else {   /* CONV_WG */
        f.src = m.put8(err); f.src2 = m.put8(act);
        f.dst = m.alloc(4 * (uint32_t)(sparse ? kept.size() : wt.size()));
        f.dst2 = m.alloc(4 * (uint32_t)c.co);
        exp = e_dst;
        std::vector<int64_t> grads = ref_conv_wg(c, err, act, (int64_t)e_dst - (e_a + e_b));
        if (sparse) {   /* the kept ones, in CSR order */
            std::vector<int64_t> picked;
            for (size_t i : kept) picked.push_back(grads[i]);
            grads = picked;
        }
        ref_store32(grads, want, st);
        if (flags & FLAG_BIAS)
            ref_store32(ref_bias_grad(c, err, (int64_t)e_dst - e_a), want, st);
    }
    Result r = run(m, {f, halt()}, {e_a, e_b, e_dst, e_bias});
    const uint32_t out_bytes = op == OP_CONV_FP ? (uint32_t)err.size()
                               : op == OP_CONV_EB ? (uint32_t)act.size()
                                                  : 4 * (uint32_t)kept.size();
    if (sparse && refused(r, m, 0, {Span{f.dst, out_bytes}, Span{f.dst2, f.dst2 ? 4 * (uint32_t)c.co : 0}},
                          f.stats, "sparse conv reference"))
        return;
    CHECK(r.status == FAULT_NONE && r.pc == 1, "op %u: status %u pc %u", f.op, r.status, r.pc);
    size_t first = 0;
    const size_t bad = count_wrong(m, f, op == OP_CONV_WG, sparse ? kept.size() : wt.size(), want, first);
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

}  // namespace tb
