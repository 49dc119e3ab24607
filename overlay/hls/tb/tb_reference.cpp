/* The reference (see tb_reference.h). */
#include "tb_reference.h"

namespace tb {

void expect_stats(const Image &m, uint32_t at, const RefStats &r, int32_t exp, const char *what) {
    Stats s = read_stats(m, at);
    CHECK(s.max_abs == r.max_abs && s.exp == exp && s.sat == r.sat && s.nnz == r.nnz &&
              s.count == r.count,
          "%s stats: got max_abs %lld exp %d sat %u nnz %u count %u, want %lld %d %u %u %u", what,
          (long long)s.max_abs, s.exp, s.sat, s.nnz, s.count, (long long)r.max_abs, exp, r.sat,
          r.nnz, r.count);
}

void ref_store8(const std::vector<int64_t> &acc, int64_t shift, std::vector<int64_t> &want, RefStats &st) {
    for (int64_t a : acc) {
        int64_t q = ref_shift(a, shift);
        st.add(a, clampv(q, 127), clampv(q, 127) != q);
        want.push_back(clampv(q, 127));
    }
}

void ref_store32(const std::vector<int64_t> &v, std::vector<int64_t> &want, RefStats &st) {
    for (int64_t x : v) {
        int64_t o32 = clampv(x, 2147483647LL);
        st.add(x, o32, o32 != x);
        want.push_back(o32);
    }
}

std::vector<int64_t> ref_conv_fp(const Conv &c, const std::vector<int8_t> &act,
                                 const std::vector<int8_t> &wt, const std::vector<int32_t> &bias,
                                 uint32_t flags, int32_t e_acc, int32_t e_bias) {
    std::vector<int64_t> out;
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
                    if (flags & FLAG_BIAS) acc += ref_shift(bias[o], (int64_t)e_acc - e_bias);
                    if ((flags & FLAG_RELU) && acc < 0) acc = 0;
                    out.push_back(acc);
                }
    return out;
}

std::vector<int64_t> ref_conv_eb(const Conv &c, const std::vector<int8_t> &err,
                                 const std::vector<int8_t> &wt, const std::vector<int8_t> &aux,
                                 uint32_t flags) {
    std::vector<int64_t> out;
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
                    out.push_back(acc);
                }
    return out;
}

std::vector<int64_t> ref_conv_wg(const Conv &c, const std::vector<int8_t> &err,
                                 const std::vector<int8_t> &act, int64_t shift) {
    std::vector<int64_t> out;
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
                    out.push_back(ref_shift(g, shift));
                }
    return out;
}

std::vector<int64_t> ref_bias_grad(const Conv &c, const std::vector<int8_t> &err, int64_t shift) {
    std::vector<int64_t> out;
    for (int o = 0; o < c.co; o++) {
        int64_t g = 0;
        for (int n = 0; n < c.n; n++)
            for (int oy = 0; oy < c.ho; oy++)
                for (int ox = 0; ox < c.wo; ox++)
                    g += err[at4(n, o, oy, ox, c.co, c.ho, c.wo)];
        out.push_back(ref_shift(g, shift));
    }
    return out;
}

}  // namespace tb
