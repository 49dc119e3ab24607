/* Testbench helpers (see tb_helpers.h). */
#include "tb_helpers.h"

#include "csim_port.h"
#include "sconv.h"

namespace tb {

int failures = 0;
int checks = 0;

Stats read_stats(const Image &m, uint32_t at) {
    Stats s;
    s.max_abs = m.i64(at);
    s.exp = m.i32(at + 8);
    s.sat = (uint32_t)m.i32(at + 12);
    s.nnz = (uint32_t)m.i32(at + 16);
    s.count = (uint32_t)m.i32(at + 20);
    return s;
}

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
               &r.fault_addr CTRAIN_TOP_PASS1(port.data()));   /* every port: the same array */
    csim_port_to_window(port.data(), ddr.data(), ddr.size());
    return r;
}

Result run(Image &m, const std::vector<ctrain_insn_t> &prog, const std::vector<int32_t> &table,
           uint32_t prog_at, uint32_t table_at) {
    if (prog_at == UINT32_MAX)
        prog_at = m.alloc(CTRAIN_INSN_BYTES * (uint32_t)prog.size());
    if (!prog.empty())
        std::memcpy(&m.ddr[prog_at], prog.data(), CTRAIN_INSN_BYTES * prog.size());
    if (table_at == UINT32_MAX)
        table_at = m.put32(table);
    return top(m.ddr, prog_at, (uint32_t)prog.size(), table_at, (uint32_t)table.size(),
               (uint32_t)m.ddr.size());
}

int sparse_ran = 0, sparse_refused = 0;

bool refused(const Result &r, const Image &m, uint32_t pc, const std::vector<Span> &outs,
             uint32_t stats, const char *what) {
    if (r.status != FAULT_TILE) {
        sparse_ran++;
        return false;
    }
    sparse_refused++;
    CHECK(!CTRAIN_SPARSE_ROWS && r.pc == pc && r.fault_addr == 0,
          "%s: FAULT_TILE at pc %u (addr 0x%x) on a build %s the row-tile path", what, r.pc,
          r.fault_addr, CTRAIN_SPARSE_ROWS ? "with" : "without");
    std::vector<Span> all = outs;
    all.push_back(Span{stats, 32});
    for (const Span &o : all) {
        uint32_t written = 0;
        for (uint32_t i = 0; i < o.bytes; i++)
            written += m.ddr[o.at + i] != 0xA5 ? 1u : 0u;
        CHECK(written == 0, "%s: refused, yet %u bytes at 0x%x written", what, written, o.at);
    }
    return true;
}

ctrain_insn_t insn(uint32_t op, uint32_t flags) {
    ctrain_insn_t f;
    std::memset(&f, 0, sizeof f);
    f.op = op;
    f.flags = flags;
    return f;
}

ctrain_insn_t halt() { return insn(OP_HALT); }

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
uint32_t rnd() {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}
int rnd_in(int lo, int hi) { return lo + (int)(rnd() % (uint32_t)(hi - lo + 1)); }
std::vector<int8_t> rnd8(size_t n, int lo, int hi) {
    std::vector<int8_t> v(n);
    for (auto &x : v) x = (int8_t)(rnd() % 4 == 0 ? 0 : rnd_in(lo, hi));
    return v;
}
std::vector<int32_t> rnd32(size_t n, int bits) {
    std::vector<int32_t> v(n);
    for (auto &x : v) x = (int32_t)(rnd_in(-(1 << 15), (1 << 15) - 1) * (1 << (bits - 16)));
    return v;
}
uint64_t rnd_state() { return rng_state; }

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

uint32_t put_index(Image &m, const SparseIndex &ix) {
    const uint32_t z = (uint32_t)ix.col.size();
    const uint32_t R = (uint32_t)ix.rowptr.size() - 1, K = (uint32_t)ix.tptr.size() - 1;
    const uint32_t at = m.alloc((uint32_t)ctrain_index_layout(R, K, z).size);
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

}  // namespace tb
