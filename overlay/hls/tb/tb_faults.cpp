/* 3. Fault cases: every fault code with its pc and fault address, and no
 * write by the faulting instruction. */
#include "tb_helpers.h"
#include "tb_tests.h"
#include "pe_array.h"   /* CONV_WCAP, CONV_OUT: FAULT_TILE cases */

namespace tb {

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
        /* FAULT_TILE, before the slots and bounds (no operand is placed): a
         * group of every column tile of 2048 channels at k = 3 is past
         * CONV_WCAP (WG: CONV_TCAP); a band past CONV_OUT per lane and row; an EB weight
         * block of every row tile past CONV_WCAP; the rule's tiling (0)
         * and clamped sizes pass to the slot check. */
        Image m(4096);
        Conv c = {1, CTRAIN_MAX_CH, 8, 8, 1, 8, 8, 3, 3, 1, 1};
        ctrain_insn_t k = conv_insn(OP_CONV_FP, 0, c);
        k.tile_g = CTRAIN_MAX_CH;
        expect_fault("group past CONV_WCAP", m, {k}, {}, FAULT_TILE, 0, 0);
        ctrain_insn_t gw = conv_insn(OP_CONV_WG, 0, c);   /* its taps: CONV_TCAP */
        gw.tile_g = CTRAIN_MAX_CH;
        expect_fault("WG group past CONV_TCAP", m, {gw}, {}, FAULT_TILE, 0, 0);
        k.tile_g = 0;
        expect_fault("the rule's tiling", m, {k}, {}, FAULT_SLOT, 0, 0);
        k.tile_g = 1;
        k.tile_br = 0xFFFFFFFFu;   /* clamped to the 8 rows */
        expect_fault("a clamped band", m, {k}, {}, FAULT_SLOT, 0, 0);
        Conv w = {1, 1, 1, CTRAIN_MAX_DIM, 1, 1, CTRAIN_MAX_DIM, 1, 1, 1, 0};
        ctrain_insn_t b = conv_insn(OP_CONV_WG, 0, w);
        b.tile_br = 1;
        expect_fault("one row of 512 fits", m, {b}, {}, FAULT_SLOT, 0, 0);
        Conv t = {1, 1, 2, CTRAIN_MAX_DIM, 1, 2, CTRAIN_MAX_DIM, 1, 1, 1, 0};
        b = conv_insn(OP_CONV_WG, 0, t);
        b.tile_br = 2;
        expect_fault(CONV_OUT < 2 * CTRAIN_MAX_DIM ? "band past CONV_OUT" : "band of 2 x 512",
                     m, {b}, {}, CONV_OUT < 2 * CTRAIN_MAX_DIM ? FAULT_TILE : FAULT_SLOT, 0, 0);
        Conv e = {1, CTRAIN_MAX_CH, 1, 1, 64, 1, 1, 1, 1, 1, 0};
        ctrain_insn_t d = conv_insn(OP_CONV_EB, 0, e);
        d.tile_rb = CTRAIN_MAX_CH;
        expect_fault(CONV_WCAP < CTRAIN_MAX_CH / PE_ROWS * ((64 + PE_COLS - 1) / PE_COLS)
                         ? "EB block past CONV_WCAP" : "EB block of every row tile",
                     m, {d}, {},
                     CONV_WCAP < CTRAIN_MAX_CH / PE_ROWS * ((64 + PE_COLS - 1) / PE_COLS)
                         ? FAULT_TILE : FAULT_SLOT, 0, 0);
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
        const ctrain_index_layout_t ix = ctrain_index_layout(R, K, Z);
        const uint32_t col = (uint32_t)ix.col, tptr = (uint32_t)ix.tptr, tpos = (uint32_t)ix.tpos,
                       trow = (uint32_t)ix.trow;
        struct Bad { const char *what; uint32_t at; uint8_t value; };
        const Bad bads[] = {
            {"rowptr[0] = 1", 0, 1},
            {"rowptr[2] = 2 (!= Z)", 8, 2},
            {"col[1] = 4 (>= K)", col + 2, 4},
            {"tptr[4] = 9 (!= Z)", tptr + 16, 9},
            {"tptr[2] = 0 (decreasing)", tptr + 8, 0},
            {"tpos[0] = 3 (>= Z)", tpos, 3},
            {"trow[2] = 2 (>= R)", trow + 4, 2},
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
        m.ddr[f.aux + trow] = 7;
        m.ddr[f.aux + col + 4] = 9;
        expect_fault("col and trow", m, {halt(), f}, {-2, -3, -5}, FAULT_NONE, 0, 0);
        expect_fault("col and trow", m, {f}, {-2, -3, -5}, FAULT_INDEX, 0, f.aux + col + 4);
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

}  // namespace tb
