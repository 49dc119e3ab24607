/*
 * Sparse convolution unit, row-tile path (sconv_paths.h, sp_rows_unit; the
 * position-parallel path and the entry are sconv.cpp; see sconv.h).
 *
 * Loop orders (R = PE_ROWS rows, C = PE_COLS batch lanes):
 *
 *   resident pass (runs of row tiles whose lists fit on chip together):
 *     pass > [lists of its tiles] > batch tile > swept row y > x tile >
 *     [window] > row tile > steps > epilogue (WG: error rows > steps)
 *   streamed tile, FP, EB (gather, output-stationary):
 *     row tile > [lists of the tile] > batch tile > swept row y > x tile >
 *     channel group > [window] > chunk > (x, t) steps
 *   streamed tile, WG (weight-stationary over the kept weights):
 *     row tile > chunk > [lists] > batch tile > error row > x tile >
 *     [error rows] > channel group > [window] > (t, x) steps
 *
 * The swept rows and the window source:
 *   FP  output rows (h_out x w_out),       window = activations (src), gather
 *   EB  input-error rows (h_in x w_in),    window = output errors (src), the
 *       tap (ky, kx) pairs input position y with error row oy = (y+p-ky)/s
 *       when exact (likewise along x)
 *   WG  output-error positions,            window = activations (src2)
 *
 * A list is the kept weights of one PE row: its CSR row (FP, WG) or, for EB,
 * the entries of the transposed index in its input channel's k_h*k_w columns
 * (one contiguous range of tpos/trow), each value gathered through tpos.
 * Lists of up to SP_ENTRIES per PE row stay on chip for a resident pass; longer ones
 * are streamed in chunks of SP_ENTRIES.  The window holds, for every batch
 * lane, the input rows (channel, ky) of the current swept row and x tile; when
 * c_in*k_h*k_w exceeds SP_WIN the channels are split into groups and each
 * group pass walks the lists again (entries of other groups multiply zero).
 *
 * The (x, t) loops are flattened by hand into one pipelined loop, so a short
 * list (a fully connected layer's few kept inputs) pays no pipeline fill per
 * output position.
 */
#include "sconv_paths.h"
#include "agu.h"
#include "conv.h"


/* uint16 list words per DDR beat (the list buffers' reshape factor). */
#define SP_U16_LANES (CTRAIN_DDR_BEAT / 2)

/* One kept weight as a PE row uses it: value and tap.  For FP and WG `ch` is
 * the input channel, for EB the output channel (trow). */
struct sp_entry {
    q8_t val;
    uint16_t ch;
    uint8_t ky;
    uint8_t kx;
};

/* Tiling of one instruction. */
struct sp_plan {
    bool eb, wg;
    int n, rows, red, kh, kw, s, p;
    int oh, ow;      /* swept plane: FP/WG (h_out, w_out), EB (h_in, w_in) */
    int wh, ww;      /* window source plane: FP/WG (h_in, w_in), EB (h_out, w_out) */
    int xn;          /* positions per x tile */
    int cg, groups;  /* channels per group, groups */
    int seg;         /* window positions per (channel, ky) row: (xn - 1) * s + k_w */
    bool plane;      /* the window holds whole source planes (see sp_make_plan) */
    int pl;          /* positions of a source plane: wh * ww */
    int kk;          /* taps per channel: k_h * k_w */
    /* Per-instruction tables that keep dividers out of the loops: */
    sp_div16 ds, dkk;                    /* v / s, column / (k_h * k_w) */
    int kq[CTRAIN_MAX_KERNEL];           /* k / s */
    int kr[CTRAIN_MAX_KERNEL];           /* k % s */
    uint8_t tky[MAX_KK], tkx[MAX_KK];    /* tap -> (ky, kx) */
};

static void sp_make_plan(const ctrain_insn_t &f, sp_plan &g) {
    g.eb = f.op == OP_SCONV_EB;
    g.wg = f.op == OP_SCONV_WG;
    g.n = f.n;
    g.kh = f.k_h;
    g.kw = f.k_w;
    g.s = f.stride;
    g.p = f.pad;
    g.rows = g.eb ? f.c_in : f.c_out;
    g.red = g.eb ? f.c_out : f.c_in;
    g.oh = g.eb ? f.h_in : f.h_out;
    g.ow = g.eb ? f.w_in : f.w_out;
    g.wh = g.eb ? f.h_out : f.h_in;
    g.ww = g.eb ? f.w_out : f.w_in;
    const int per_ch = g.kh * g.kw;   /* window positions of one channel at xn = 1 */
    g.kk = per_ch;
    if ((int64_t)g.red * per_ch <= SP_WIN) {
        /* Every channel fits: the widest x tile whose rows still fit. */
        g.cg = g.red;
        const int q = SP_WIN / (g.red * g.kh);   /* >= k_w */
        int xn = (q - g.kw) / g.s + 1;
        if (xn > SP_XT) xn = SP_XT;
        if (xn > g.ow) xn = g.ow;
        g.xn = xn;
    } else {
        g.cg = SP_WIN / per_ch;
        g.xn = 1;
    }
    g.groups = (g.red + g.cg - 1) / g.cg;
    g.seg = (g.xn - 1) * g.s + g.kw;
    /* Plane mode: when whole source planes (all rows and columns of a channel)
     * need no more channel groups than rows do, the window holds planes: one
     * burst per lane and group, reused by every swept row and x tile when
     * one group holds all channels, and x tiles as wide as SP_XT. */
    g.pl = g.wh * g.ww;
    g.plane = false;
    if (g.pl <= SP_WIN) {
        const int cgp = SP_WIN / g.pl;
        const int gp = (g.red + cgp - 1) / cgp;
        if (gp <= g.groups) {
            g.plane = true;
            g.cg = cgp < g.red ? cgp : g.red;
            g.groups = gp;
            g.xn = g.ow < SP_XT ? g.ow : SP_XT;
        }
    }
    g.ds = sp_div_make(g.s);
    g.dkk = sp_div_make(per_ch);
    int q = 0, r = 0;   /* counted, not divided */
    CTRAIN_LOOP(ew, 1, CTRAIN_MAX_KERNEL);
tab_k:
    for (int k = 0; k < CTRAIN_MAX_KERNEL; k++) {
        /* one table entry per cycle, once per instruction */
#pragma HLS PIPELINE II=1
        g.kq[k] = q;
        g.kr[k] = r;
        if (++r == g.s) {
            r = 0;
            q++;
        }
    }
    int ky = 0, kx = 0;
    CTRAIN_LOOP(ew, 1, MAX_KK);
tab_tap:
    for (int t = 0; t < MAX_KK; t++) {
        /* one table entry per cycle, once per instruction */
#pragma HLS PIPELINE II=1
        g.tky[t] = (uint8_t)ky;
        g.tkx[t] = (uint8_t)kx;
        if (++kx == g.kw) {
            kx = 0;
            ky++;
        }
    }
}

/* A swept position v as v + p = q*s + r (0 <= r < s): EB pairs v with source
 * (v + p - k) / s when exact, i.e. when r == k % s, as q - k / s.  Kept by
 * counting (sp_qr_next) inside the loops, no divider. */
struct sp_qr {
    int q, r;
};

static sp_qr sp_qr_of(const sp_plan &g, int v) {
#pragma HLS INLINE
    sp_qr a;
    a.q = (int)sp_div(g.ds, (uint32_t)(v + g.p));
    a.r = v + g.p - a.q * g.s;
    return a;
}

static void sp_qr_next(const sp_plan &g, sp_qr &a) {
#pragma HLS INLINE
    if (++a.r == g.s) {
        a.r = 0;
        a.q++;
    }
}

/* Window-source row (or column) paired with swept position v (a: its sp_qr)
 * by tap k, or -1: gather v*s + k - p; EB (v + p - k) / s when exact. */
static int sp_pair(const sp_plan &g, int v, const sp_qr &a, int k, int lim) {
#pragma HLS INLINE
    if (!g.eb) {
        const int u = (int)((sp_idx_t)v * (ap_uint<8>)g.s) + k - g.p;   /* v <= MAX_DIM */
        return (u >= 0 && u < lim) ? u : -1;
    }
    if (a.r != g.kr[k])
        return -1;
    const int u = a.q - g.kq[k];
    return (u >= 0 && u < lim) ? u : -1;
}

/* First window-source column of x tile [x0, x0 + xc) (window column 0), and
 * the clipped range [lo, hi) of columns its taps reach. */
static void sp_columns(const sp_plan &g, int x0, int xc, int &base, int &lo, int &hi) {
    if (!g.eb) {
        base = x0 * g.s - g.p;
        hi = (x0 + xc - 1) * g.s - g.p + g.kw;
    } else {
        /* ceil((x0 + p - k_w + 1) / s), shifted by MAX_KERNEL strides to stay >= 0 */
        const int a = x0 + g.p - g.kw + 1 + CTRAIN_MAX_KERNEL * g.s;
        base = (int)sp_div(g.ds, (uint32_t)(a + g.s - 1)) - CTRAIN_MAX_KERNEL;
        hi = (int)sp_div(g.ds, (uint32_t)(x0 + xc - 1 + g.p)) + 1;
    }
    lo = base > 0 ? base : 0;
    if (hi > g.ww) hi = g.ww;
}

/* Where the window holds a tap: position (ch - ch0) * chs + rowoff[ky] +
 * source column - base.  Row mode: rows (channel, ky) `stride` positions
 * apart (stride <= seg), chs = k_h * stride, rowoff[ky] = ky * stride; plane
 * mode: whole planes, chs = h * w, rowoff[ky] = paired source row * w. */
struct sp_view {
    int base;
    int stride;
    int chs;
    int rowoff[CTRAIN_MAX_KERNEL];
};

/* Loads the window for swept row y, x tile [x0, x0 + xc), channels [ch0,
 * ch0 + chn) and lanes [0, nb), one burst per lane and
 *   1x1 planes (fully connected): all its channels (contiguous in DDR);
 *   rows loaded whole (FP/WG, or a one-row plane): channel (its paired rows
 *   are consecutive in DDR);
 *   otherwise: channel and paired ky. */
static sp_view sp_load_rows(const ddr_t *ddr, const sp_plan &g, uint32_t src, int b0, int nb,
                            int y, int x0, int xc, int ch0, int chn,
                            q8_t win[SP_COPIES][SP_WIN][PE_COLS], bool rowok[CTRAIN_MAX_KERNEL],
                            int crow[CTRAIN_MAX_KERNEL]) {
#pragma HLS INLINE
    int ky_first = -1, ky_last = -1;
    const sp_qr ay = sp_qr_of(g, y);
pair_rows:
    for (int ky = 0; ky < CTRAIN_MAX_KERNEL; ky++) {
#pragma HLS UNROLL
        crow[ky] = ky < g.kh ? sp_pair(g, y, ay, ky, g.wh) : -1;
        rowok[ky] = crow[ky] >= 0;
        if (rowok[ky]) {
            if (ky_first < 0) ky_first = ky;
            ky_last = ky;
        }
    }
    sp_view v;
    int lo, hi;
    sp_columns(g, x0, xc, v.base, lo, hi);
    v.stride = g.seg;
    if (hi <= lo || ky_first < 0)
        return v;
    if (lo == 0 && hi == g.ww && (!g.eb || g.wh == 1)) {
        /* Whole rows (FP/WG, whose paired rows are consecutive and ascending;
         * EB only on one-row planes): re-base the window on column 0, rows
         * w apart, so consecutive source rows land consecutively. */
        v.base = 0;
        v.stride = g.ww;
        if (g.wh == 1 && g.ww == 1) {   /* 1x1 planes: one row, channels contiguous */
        load_lane_1x1:
            for (int c = 0; c < nb; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_COLS
                agu_rd_q8_lane_strided<SP_COPIES, SP_WIN, PE_COLS>(ddr, src + (uint32_t)(b0 + c) * g.red + ch0,
                                                        win, ky_first, g.kh, c, chn);
            }
            return v;
        }
    load_lane_rows:
        for (int c = 0; c < nb; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_COLS
        load_ch_rows:
            for (int ch = 0; ch < chn; ch++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_CH
                const uint32_t at =
                    (((uint32_t)(b0 + c) * g.red + ch0 + ch) * g.wh + crow[ky_first]) * g.ww;
                agu_rd_q8_lane<SP_COPIES, SP_WIN, PE_COLS>(ddr, src + at, win,
                                                (ch * g.kh + ky_first) * g.ww, c,
                                                (ky_last - ky_first + 1) * g.ww);
            }
        }
        return v;
    }
load_lane:
    for (int c = 0; c < nb; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_COLS
    load_ch:
        for (int ch = 0; ch < chn; ch++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_CH
        load_ky:
            for (int ky = 0; ky < g.kh; ky++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_KERNEL
                if (!rowok[ky])
                    continue;
                const uint32_t at =
                    (((uint32_t)(b0 + c) * g.red + ch0 + ch) * g.wh + crow[ky]) * g.ww + lo;
                agu_rd_q8_lane<SP_COPIES, SP_WIN, PE_COLS>(ddr, src + at, win,
                                                (ch * g.kh + ky) * g.seg + (lo - v.base), c,
                                                hi - lo);
            }
        }
    }
    return v;
}

/* The window for swept row y, x tile [x0, x0 + xc), channels [ch0, ch0 + chn)
 * and lanes [0, nb): rows (sp_load_rows) or, in plane mode, the channels'
 * whole planes, one burst per lane, fetched only when `fetch` (plane mode
 * with one group: once per batch tile); rowok[ky]: tap row ky pairs a source
 * row. */
static sp_view sp_load_window(const ddr_t *ddr, const sp_plan &g, uint32_t src, int b0, int nb,
                              int y, int x0, int xc, int ch0, int chn, bool fetch,
                              q8_t win[SP_COPIES][SP_WIN][PE_COLS], bool rowok[CTRAIN_MAX_KERNEL]) {
    int crow[CTRAIN_MAX_KERNEL];
    sp_view v;
    if (!g.plane) {
        v = sp_load_rows(ddr, g, src, b0, nb, y, x0, xc, ch0, chn, win, rowok, crow);
        v.chs = g.kh * v.stride;
        int ro = 0;   /* ky * stride, counted */
    row_offsets:
        for (int ky = 0; ky < CTRAIN_MAX_KERNEL; ky++) {
#pragma HLS UNROLL
            v.rowoff[ky] = ro;
            ro += v.stride;
        }
        return v;
    }
    const sp_qr ay = sp_qr_of(g, y);
    v.base = 0;
    v.stride = g.ww;
    v.chs = g.pl;
plane_rows:
    for (int ky = 0; ky < CTRAIN_MAX_KERNEL; ky++) {
#pragma HLS UNROLL
        crow[ky] = ky < g.kh ? sp_pair(g, y, ay, ky, g.wh) : -1;
        rowok[ky] = crow[ky] >= 0;
        /* source row (< 2^9) x plane width (< 2^10): a small LUT product */
        const int ro = (int)((ap_uint<10>)(rowok[ky] ? crow[ky] : 0) * (ap_uint<10>)g.ww);
#pragma HLS BIND_OP variable=ro op=mul impl=fabric
        v.rowoff[ky] = ro;
    }
    if (!fetch)
        return v;
load_planes:
    for (int c = 0; c < nb; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_COLS
        const uint32_t at = ((uint32_t)(b0 + c) * g.red + ch0) * (uint32_t)g.pl;
        agu_rd_q8_lane<SP_COPIES, SP_WIN, PE_COLS>(ddr, src + at, win, 0, c, (uint32_t)chn * g.pl);
    }
    return v;
}

/* Loads chunk `off` (a multiple of SP_ENTRIES) of the tile's lists: clen[r]
 * entries of row r from start[r] + off to ent[r][dst[r]..], decoded to (value, channel, ky, kx).
 * FP, WG: values (FP only) and columns from the CSR; EB: rows and positions
 * from the transposed index, each value gathered from vals[tpos], the tap
 * found among the channel's column starts tp[r*kk .. r*kk + kk). */
static void sp_load_entries(const ddr_t *ddr, const ctrain_insn_t &f, const sp_plan &g,
                            const sparse_index_t &ix, const uint32_t *tp, const uint32_t start[PE_ROWS],
                            const uint32_t len[PE_ROWS], int vr, uint32_t off,
                            const uint32_t dst[PE_ROWS], uint32_t clen[PE_ROWS],
                            sp_entry ent[PE_ROWS][SP_ENTRIES]) {
    const uint32_t kk = (uint32_t)g.kk;
    /* The list's values, columns (EB: rows) and positions arrive a beat per
     * cycle (agu_rd_wide): each buffer reshaped by the elements of a beat. */
    q8_t vbuf[SP_ENTRIES];
#pragma HLS ARRAY_RESHAPE variable=vbuf type=cyclic factor=AGU_Q8_LANES
    uint16_t hbuf[SP_ENTRIES];
#pragma HLS ARRAY_RESHAPE variable=hbuf type=cyclic factor=SP_U16_LANES
    uint32_t wbuf[SP_ENTRIES];
#pragma HLS ARRAY_RESHAPE variable=wbuf type=cyclic factor=AGU_I32_LANES
    /* EB: the row's column starts in registers, relative to its first (the
     * index check keeps them non-decreasing): the decode compares every one
     * each step, more reads than tp's ports give. */
    uint32_t tpk[MAX_KK];
#pragma HLS ARRAY_PARTITION variable=tpk type=complete
    uint32_t rk_next = 0;   /* r * kk, counted */
list_rows:
    for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
        const uint32_t rk = rk_next;   /* EB: the row's first column start */
        rk_next += kk;
        const uint32_t rest = r < vr && len[r] > off ? len[r] - off : 0;
        const uint32_t lr = rest < SP_ENTRIES ? rest : SP_ENTRIES;
        clen[r] = lr;
        if (lr == 0)
            continue;
        const uint32_t first = start[r] + off;
        if (!g.eb) {
            if (!g.wg)
                agu_rd_q8w<SP_ENTRIES>(ddr, f.src2 + first, vbuf, lr);
            agu_rd_wide<uint16_t, SP_ENTRIES, 2>(ddr, f.aux + (uint32_t)ix.col + 2 * first, hbuf, lr);
            CTRAIN_LOOP(ew, 1, lr);
        decode_csr:
            for (uint32_t t = 0; t < lr; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_ENTRIES
                const uint32_t col = hbuf[t];
                const uint32_t ch = sp_div(g.dkk, col);
                /* ch < 2^16, kk <= MAX_KK: a narrow product, one DSP slice */
                const uint32_t tap = col - (uint32_t)((sp_idx_t)ch * (ap_uint<8>)kk);
                sp_entry e;
                e.val = g.wg ? (q8_t)0 : vbuf[t];
                e.ch = (uint16_t)ch;
                e.ky = g.tky[tap];
                e.kx = g.tkx[tap];
                ent[r][dst[r] + t] = e;
            }
        } else {
            agu_rd_wide<uint16_t, SP_ENTRIES, 2>(ddr, f.aux + (uint32_t)ix.trow + 2 * first, hbuf, lr);
            agu_rd_wide<uint32_t, SP_ENTRIES, 4>(ddr, f.aux + (uint32_t)ix.tpos + 4 * first, wbuf, lr);
            sp_tap_starts<uint32_t>(tp, rk, tp[rk], kk, tpk);
            CTRAIN_LOOP(ew, 1, lr);
        decode_csc:
            for (uint32_t t = 0; t < lr; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_ENTRIES
                /* off + t: the entry's place in the row's list */
                const uint32_t tap = sp_tap_of<uint32_t>(tpk, kk, off + t);
                sp_entry e;
                e.val = agu_rd_byte(ddr, f.src2 + wbuf[t]);
                e.ch = hbuf[t];
                e.ky = g.tky[tap];
                e.kx = g.tkx[tap];
                ent[r][dst[r] + t] = e;
            }
        }
    }
}

/* Window position of entry e at position x0 + x of the tile, or -1 when the
 * tap falls outside the channel group, the plane or the padding. */
static int sp_window_pos(const sp_plan &g, const sp_entry &e, int x0, int x, const sp_qr &ax,
                         const sp_view &v, int ch0, int chn, const bool rowok[CTRAIN_MAX_KERNEL]) {
#pragma HLS INLINE
    const int col = sp_pair(g, x0 + x, ax, e.kx, g.ww);
    if (col < 0 || !rowok[e.ky] || e.ch < ch0 || e.ch >= ch0 + chn)
        return -1;
    /* In range the position is < SP_WIN: a narrow product. */
    const sp_idx_t at = (sp_idx_t)(e.ch - ch0) * (sp_idx_t)v.chs;
    return (int)at + v.rowoff[e.ky] + (col - v.base);
}

/* sp_row_steps' sums, as narrow as their bounds: the adder tree's over the
 * columns, a row's over an x tile (a list's sum continues a reduction,
 * sp_red_t) */
#define SPR_SUM_BITS (CTRAIN_CLOG2(PE_COLS) + 16)
#define SPR_PART_BITS (CTRAIN_CLOG2(SP_XT * PE_COLS) + 16)
typedef ap_int<SPR_SUM_BITS> spr_sum_t;
typedef ap_int<SPR_PART_BITS> spr_part_t;

/* The sparse PE array, one R x C multiplier array for all three phases
 * (sp_rows_unit limits the function to one instance).  Each step PE (r, c)
 * multiplies a row operand by lane c's window input at the tap of row r's
 * list entry t:
 *   gather (FP, EB): operand = entry t's value, xc * lenj steps (t fastest);
 *     acc[r][c] sums over the list, then goes to racc[r][c][x] (first pass:
 *     set, later chunks and groups: add).
 *   outer (WG): operand = lane c's error at x (errb x slot xe + x: a point
 *     layer's resident pass keeps tile t's errors in slot t), lenj * xc
 *     steps (x fastest);
 *     an adder tree sums the lanes, a register per row sums over the row,
 *     added to entry t's accumulator tacc[r][t] at the row's end. */
static void sp_row_steps(bool outer, const sp_plan &g, const sp_entry ent[PE_ROWS][SP_ENTRIES],
                     const uint32_t base[PE_ROWS], const uint32_t clen[PE_ROWS], uint32_t lenj,
                     int x0, int xc,
                     const sp_view &v, int ch0, int chn, const bool rowok[CTRAIN_MAX_KERNEL],
                     const q8_t win[SP_COPIES][SP_WIN][PE_COLS],
                     const q8_t errb[PE_ROWS][PE_COLS][SP_XT], int xe, int nb, bool first,
                     sp_red_t racc[PE_ROWS][PE_COLS][SP_XT], acc_t tacc[PE_ROWS][SP_ENTRIES]) {
#pragma HLS INLINE off
    const uint32_t steps = (uint32_t)xc * lenj;
    CTRAIN_LOOP(pe, 1, steps);
    sp_red_t acc[PE_ROWS][PE_COLS];   /* a position's reduction so far (gather) */
#pragma HLS ARRAY_PARTITION variable=acc type=complete dim=0
    spr_part_t part[PE_ROWS];
#pragma HLS ARRAY_PARTITION variable=part type=complete
    int x = 0;
    const sp_qr ax0 = sp_qr_of(g, x0);
    sp_qr ax = ax0;   /* of x0 + x */
    uint32_t t = 0;
row_step:
    for (uint32_t i = 0; i < steps; i++) {
#pragma HLS PIPELINE II=1
    /* xc <= SP_XT positions by lenj <= SP_ENTRIES entries */
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_XT*SP_ENTRIES
#pragma HLS DEPENDENCE variable=tacc type=inter false
    /* a position's reduction is read at its list's first step and written at
     * its last; the steps between read other positions' */
#pragma HLS DEPENDENCE variable=racc type=inter false
        for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
            const sp_entry e = ent[r][base[r] + t];
            const int pos = t < clen[r] ? sp_window_pos(g, e, x0, x, ax, v, ch0, chn, rowok) : -1;
            spr_sum_t sum = 0;
            for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                const q8_t a = (pos >= 0 && c < nb) ? win[r / 2][pos][c] : (q8_t)0;
                const q8_t d = c < nb ? errb[r][c][xe + x] : (q8_t)0;
                const prod_t m = (prod_t)(outer ? d : e.val) * (prod_t)a;
#if CTRAIN_SPARSE_MUL_LUT
                /* The board's DSP slices go to the dense array: these int8
                 * products are LUT multipliers (config: CTRAIN_SPARSE_MUL_LUT). */
#pragma HLS BIND_OP variable=m op=mul impl=fabric
#endif
                /* a multiply-accumulate (in the product's DSP slice where it
                 * has one): gather starts a list from the position's
                 * reduction so far (racc; the first pass from 0), so the
                 * list's last step leaves the whole sum; outer restarts from
                 * 0 every step, pa the product the adder tree takes */
                const sp_red_t from = outer || first ? sp_red_t(0) : racc[r][c][x];
                const sp_red_t pa = (outer || t == 0 ? from : acc[r][c]) + m;
                if (!outer)
                    acc[r][c] = pa;
                sum += (prod_t)pa;   /* adder tree, used by outer */
            }
            if (outer) {
                part[r] = (x == 0 ? spr_part_t(0) : part[r]) + sum;
                if (x == xc - 1)
                    tacc[r][base[r] + t] += part[r];
            }
        }
        if (!outer && t == lenj - 1) {
            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                    racc[r][c][x] = acc[r][c];
                }
            }
        }
        if (outer) {
            sp_qr_next(g, ax);
            if (++x == xc) {
                x = 0;
                ax = ax0;
                t++;
            }
        } else if (++t == lenj) {
            t = 0;
            x++;
            sp_qr_next(g, ax);
        }
    }
}


/* PE row r's nb lanes of one cycle (a call in a pipelined loop): the sums in
 * racc slot a (0 where the tile kept no weight) through the convolution
 * epilogue into lanes slot t (the mask from mbuf slot t), the lanes meeting
 * the statistics as one update. */
static inline void sp_quantize_lanes(const sp_out &o, int r, int nb, bool kept, const wide_t rbias[PE_ROWS],
                                     const sp_red_t racc[PE_ROWS][PE_COLS][SP_XT], int a,
                                     const q8_t mbuf[PE_ROWS][PE_COLS][SP_XT],
                                     q8_t lanes[PE_ROWS][PE_COLS][SP_XT], int t, q_stats &st) {
#pragma HLS INLINE
    q_lanes ql = {0, 0, 0, 0};
lane:
    for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
        if (c >= nb)
            continue;
        wide_t v = kept ? racc[r][c][a].to_int64() : 0;
        bool clamped;
        const q8_t q = conv_epilogue(v, o.bias, rbias[r], o.relu, o.mask, mbuf[r][c][t], o.sh_out, clamped);
        q_lanes_add(ql, v, q, clamped);
        lanes[r][c][t] = q;
    }
    q_stats_merge(st, ql);
}

/* FP, EB epilogue of row tile r0 (vr rows) at batch tile b0 (nb lanes), swept
 * row y and x tile [x0, x0 + xc): bias, ReLU or mask, quantize, store.
 * `kept`: the tile has kept weights (racc holds its sums; else they are 0). */
static void sp_epilogue(ddr_t *ddr, const ctrain_insn_t &f, const sp_plan &g, const sp_out &o,
                        int r0, int vr, int b0, int nb, int y, int x0, int xc, bool kept,
                        const wide_t rbias[PE_ROWS], const sp_red_t racc[PE_ROWS][PE_COLS][SP_XT],
                        q8_t mbuf[PE_ROWS][PE_COLS][SP_XT], q8_t lanes[PE_ROWS][PE_COLS][SP_XT],
                        q_stats &st) {
    if (o.mask && o.point) {   /* 1x1 plane: a lane's channels are contiguous */
    load_mask_1x1:
        for (int c = 0; c < nb; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_COLS
            agu_rd_q8_rows<SP_XT>(ddr, f.src3 + (uint32_t)(b0 + c) * g.rows + r0, mbuf, c, vr);
        }
    } else if (o.mask) {
    load_mask:
        for (int r = 0; r < vr; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
            for (int c = 0; c < nb; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_COLS
                const uint32_t at = (((uint32_t)(b0 + c) * g.rows + r0 + r) * g.oh + y) * g.ow + x0;
                agu_rd_q8<SP_XT>(ddr, f.src3 + at, mbuf[r][c], xc);
            }
        }
    }
quantize_rows:
    for (int r = 0; r < vr; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
        CTRAIN_LOOP(ew, 1, xc);
    quantize:
        for (int x = 0; x < xc; x++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_XT
            sp_quantize_lanes(o, r, nb, kept, rbias, racc, x, mbuf, lanes, x, st);
        }
    }
    if (o.point) {
    store_1x1:
        for (int c = 0; c < nb; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_COLS
            agu_wr_q8_rows<SP_XT>(ddr, f.dst + (uint32_t)(b0 + c) * g.rows + r0, lanes, c, vr);
        }
        return;
    }
store_rows:
    for (int r = 0; r < vr; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
        for (int c = 0; c < nb; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_COLS
            const uint32_t at = (((uint32_t)(b0 + c) * g.rows + r0 + r) * g.oh + y) * g.ow + x0;
            agu_wr_q8<SP_XT>(ddr, f.dst + at, lanes[r][c], xc);
        }
    }
}

/* Point layers (a 1x1 swept plane) in a resident pass: tile t's outputs
 * (EB: its masks) wait in x slot t of lanes (mbuf), buf[r][c][t], so a
 * lane's values of the whole pass, consecutive channels p0 .. p0 + len in
 * DDR, move in one burst: element i is buf[i % PE_ROWS][lane][i / PE_ROWS]
 * (constant divisors), one element per cycle, W cycles per beat (one read
 * or write of the banked buffer per cycle).  WG's errors come in the same
 * way, with `add` summing each row's bias gradient into sums[t][r]. */
#define SP_PROWS (SP_RTILES * PE_ROWS)   /* rows of a resident pass */
static_assert(SP_RTILES <= SP_XT, "a resident pass's tiles take x slots of lanes and mbuf");

static_assert(PE_ROWS * SP_XT <= AGU_INDEX_SPAN, "agu_index spans a point buffer");

static void sp_point_rd(const ddr_t *ddr, uint32_t addr, q8_t buf[PE_ROWS][PE_COLS][SP_XT],
                        int lane, uint32_t len, acc_t sums[SP_RTILES][PE_ROWS], bool add) {
    agu_count(false, addr, len, AGU_II_FILL);
    if (len == 0)
        return;
    const agu_burst g = agu_plan(addr, len);
    const uint32_t steps = g.beats * DDR_BEAT;
    beat_t w = beat_zero();
    uint32_t b = 0;
    int l = 0;
point_rd:
    for (uint32_t k = 0; k < steps; k++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_PROWS+AGU_Q8_LANES
        if (l == 0)
            w = ddr_get(ddr, g.first + b, agu_lo(g, b), agu_hi(g, b));
        if (l >= agu_lo(g, b) && l < agu_hi(g, b)) {
            const uint32_t i = agu_index(g, b, l);
            const q8_t v = (q8_t)beat_lane(w, l);
            buf[i % PE_ROWS][lane][i / PE_ROWS] = v;
            if (add)   /* WG: the bias gradient of row i taps the errors */
                sums[i / PE_ROWS][i % PE_ROWS] += v;
        }
        if (++l == DDR_BEAT) {
            l = 0;
            b++;
        }
    }
}

static void sp_point_wr(ddr_t *ddr, uint32_t addr, const q8_t buf[PE_ROWS][PE_COLS][SP_XT],
                        int lane, uint32_t len) {
    agu_count(true, addr, len, AGU_II_FILL);
    if (len == 0)
        return;
    const agu_burst g = agu_plan(addr, len);
    const uint32_t steps = g.beats * DDR_BEAT;
    beat_t w = beat_zero();
    uint32_t b = 0;
    int l = 0;
point_wr:
    for (uint32_t k = 0; k < steps; k++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_PROWS+AGU_Q8_LANES
        if (l >= agu_lo(g, b) && l < agu_hi(g, b)) {
            const uint32_t i = agu_index(g, b, l);
            set_lane(w, l, (uint8_t)buf[i % PE_ROWS][lane][i / PE_ROWS]);
        }
        if (++l == DDR_BEAT) {
            ddr_put(ddr, g.first + b, w, agu_lo(g, b), agu_hi(g, b));
            w = beat_zero();
            l = 0;
            b++;
        }
    }
}

/* Point layer, resident pass: tile t's sums (racc x 0) quantized into x
 * slot t of lanes, a PE row per cycle (C lanes at once); the pass is stored
 * by sp_point_wr after its last tile. */
static void sp_point_quantize(const sp_out &o, int t, int vr, int nb, bool kept,
                              const wide_t rbias[PE_ROWS],
                              const sp_red_t racc[PE_ROWS][PE_COLS][SP_XT],
                              const q8_t mbuf[PE_ROWS][PE_COLS][SP_XT],
                              q8_t lanes[PE_ROWS][PE_COLS][SP_XT], q_stats &st) {
    CTRAIN_LOOP(ew, 1, vr);
point_quantize:
    for (int r = 0; r < vr; r++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
        sp_quantize_lanes(o, r, nb, kept, rbias, racc, 0, mbuf, lanes, t, st);
    }
}

/* WG: the error rows of row tile r0 at (b0, y, x0) into lanes; with `sum`,
 * each row's errors also added to gb[r] (the bias gradient taps the stream). */
static void sp_load_errors(const ddr_t *ddr, const ctrain_insn_t &f, bool point, int r0, int vr,
                           int b0, int nb, int y, int x0, int xc,
                           q8_t lanes[PE_ROWS][PE_COLS][SP_XT], wide_t gb[PE_ROWS], bool sum) {
    if (point) {   /* 1x1 plane: a lane's errors are contiguous */
    load_err_1x1:
        for (int c = 0; c < nb; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_COLS
            agu_rd_q8_rows<SP_XT>(ddr, f.src + (uint32_t)(b0 + c) * f.c_out + r0, lanes, c, vr,
                                  gb, sum);
        }
        return;
    }
load_err:
    for (int r = 0; r < vr; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
        for (int c = 0; c < nb; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_COLS
            const uint32_t at =
                (((uint32_t)(b0 + c) * f.c_out + r0 + r) * f.h_out + y) * f.w_out + x0;
            const wide_t s = agu_rd_q8_sum<SP_XT>(ddr, f.src + at, lanes[r][c], xc);
            if (sum)
                gb[r] += s;
        }
    }
}

/* WG: the kept weights' gradients of a tile's rows, in CSR order:
 * tacc[r][base[r] + t] -> dst[start[r] + off + t] for t < clen[r]. */
static void sp_store_grads(ddr_t *ddr, const ctrain_insn_t &f, int vr, int sh_out,
                           const uint32_t base[PE_ROWS], const uint32_t start[PE_ROWS],
                           uint32_t off, const uint32_t clen[PE_ROWS],
                           const acc_t tacc[PE_ROWS][SP_ENTRIES], int32_t obuf[SP_ENTRIES],
                           q_stats &st) {
store_grads:
    for (int r = 0; r < vr; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
        const uint32_t lr = clen[r];
        if (lr == 0)
            continue;
        CTRAIN_LOOP(ew, 1, lr);
    quantize_grads:
        for (uint32_t t = 0; t < lr; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_ENTRIES
            const wide_t v = rshift_round(tacc[r][base[r] + t].to_int64(), sh_out);
            bool clamped;
            const int32_t o = sat32(v, clamped);
            q_stats_add(st, v, o, clamped);
            obuf[t] = o;
        }
        agu_wr_i32w<SP_ENTRIES>(ddr, f.dst + 4 * (start[r] + off), obuf, lr);
    }
}

/* A row tile's lists (its CSR rows or transposed-index channel ranges) into
 * tp: row r's list is tp[r * step] .. tp[(r + 1) * step). */
static void sp_read_bounds(const ddr_t *ddr, const ctrain_insn_t &f, const sp_plan &g,
                           const sparse_index_t &ix, int r0, int vr, uint32_t tp[PE_ROWS * MAX_KK + 1]) {
#pragma HLS INLINE
    /* r0 < 2^12 rows, kk <= MAX_KK < 2^7: narrow products, one DSP slice */
    const uint32_t kk = (uint32_t)g.kk;
    const uint32_t r0kk = (uint32_t)((ap_uint<12>)r0 * (ap_uint<7>)kk);
    const uint32_t vrkk = (uint32_t)((ap_uint<12>)vr * (ap_uint<7>)kk);
    if (g.eb)
        agu_rd_u32<PE_ROWS * MAX_KK + 1>(ddr, f.aux + (uint32_t)ix.tptr + 4 * r0kk, tp, vrkk + 1);
    else
        agu_rd_u32<PE_ROWS * MAX_KK + 1>(ddr, f.aux + (uint32_t)ix.rowptr + 4 * r0, tp, vr + 1);
}

/* (start, length) of each PE row's list from tp (sp_read_bounds); returns the
 * longest. */
static uint32_t sp_bounds(const sp_plan &g, const uint32_t tp[PE_ROWS * MAX_KK + 1], int vr,
                          uint32_t start[PE_ROWS], uint32_t len[PE_ROWS]) {
#pragma HLS INLINE
    const uint32_t step = g.eb ? (uint32_t)g.kk : 1u;
    uint32_t longest = 0;
    uint32_t at = 0;   /* r * step, counted */
list_bounds:
    for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
        const uint32_t a = r < vr ? tp[at] : 0;
        at += step;
        const uint32_t b = r < vr ? tp[at] : 0;
        start[r] = a;
        len[r] = b - a;
        if (len[r] > longest)
            longest = len[r];
    }
    return longest;
}

/* ===========================================================================
 * Row-tile path: every instruction the position-parallel path does not take
 * (fully connected ones, stride > 1, windows or lists that do not fit).  Its
 * stages, in dataflow
 * order, each a function below that sp_rows_unit inlines (so synthesis sees
 * the one FSM it saw before the split, and sp_rows_unit's ALLOCATION limits
 * cover the calls in them):
 *
 *   sp_rows_job_make   the plan, the epilogue's flags and the shifts
 *   sp_rows_survey     the next resident pass: the run of row tiles whose
 *                      lists fit on chip together (one channel group)
 *   resident pass (its lists on chip, reused over the whole batch):
 *     sp_res_load      the pass's lists (and FP biases) on chip
 *     sp_res_sweep     per (batch tile, row, x tile) one window for all the
 *                      pass's tiles; sp_res_tile runs one tile against it;
 *                      point layers move a lane's pass in one burst
 *     sp_res_store     WG: the gradients and bias gradients of the pass
 *   streamed tile (sp_stream_tile: a tile whose lists alone overflow, or
 *   every tile with channel groups; lists in chunks):
 *     sp_stream_gather FP, EB: windows, chunks, steps and the epilogue
 *     sp_stream_wg     WG: per chunk the batch sweep, then its gradients
 * ======================================================================== */

/* Trip bounds of the row-tile path's outer loops (LOOP_TRIPCOUNT only). */
#define SP_BTILES ((CTRAIN_MAX_BATCH + PE_COLS - 1) / PE_COLS)     /* batch tiles */
#define SP_GROUPS ((CTRAIN_MAX_CH * MAX_KK + SP_WIN - 1) / SP_WIN) /* channel groups */
#define SP_CHUNKS ((CTRAIN_MAX_CH * MAX_KK + SP_ENTRIES - 1) / SP_ENTRIES)  /* list chunks */

/* What every stage of the row-tile path reads, fixed per instruction. */
struct sp_rows_job {
    sp_plan g;
    sparse_index_t ix;
    sp_out o;
    int sh_bias;     /* FP: raw bias -> e_acc */
    int sh_b;        /* WG: bias gradient -> e.dst */
    uint32_t wsrc;   /* the window's tensor: src (FP, EB), src2 (WG) */
};

static void sp_rows_job_make(const ctrain_insn_t &f, const insn_exps &e, sp_rows_job &j) {
#pragma HLS INLINE
    sp_make_plan(f, j.g);
    j.ix = index_layout(f);
    j.o.bias = (f.flags & FLAG_BIAS) != 0;
    j.o.relu = f.op == OP_SCONV_FP && (f.flags & FLAG_RELU);
    j.o.mask = j.g.eb && (f.flags & FLAG_RELU_MASK);
    j.o.point = j.g.oh == 1 && j.g.ow == 1;      /* 1x1 swept plane */
    const wide_t e_acc = (wide_t)e.src + e.src2;
    j.o.sh_out = q_shift((wide_t)e.dst - e_acc);
    j.sh_bias = q_shift(e_acc - e.src3);
    j.sh_b = q_shift((wide_t)e.dst - e.src);
    j.wsrc = j.g.wg ? f.src2 : f.src;
}

/* Rows of row tile r0: PE_ROWS but in the last tile. */
static int sp_tile_rows(const sp_plan &g, int r0) {
#pragma HLS INLINE
    return g.rows - r0 < PE_ROWS ? g.rows - r0 : PE_ROWS;
}

/* The resident pass that starts at row r0s: the consecutive row tiles from
 * r0s whose lists fit on chip together (each PE row holds its lists of every
 * tile back to back, at most SP_ENTRIES entries, at most SP_RTILES tiles),
 * their list lengths into tlen and the fullest PE row's total in `most`.
 * Returns the pass's tile count, 0 when the first tile's lists alone do not
 * fit (that tile is streamed).  Reads the bounds of each tile it takes and
 * of the first it refuses. */
static int sp_rows_survey(const ddr_t *ddr, const ctrain_insn_t &f, const sp_rows_job &j, int r0s,
                          uint32_t tp[PE_ROWS * MAX_KK + 1], uint32_t start[PE_ROWS],
                          uint32_t len[PE_ROWS], uint32_t total[PE_ROWS],
                          uint16_t tlen[SP_RTILES][PE_ROWS], uint32_t &most) {
#pragma HLS INLINE
    const sp_plan &g = j.g;
    most = 0;
    int tiles = 0;
    bool fits = true;
clear_totals:
    for (int r = 0; r < PE_ROWS; r++) {
        /* one register per PE row */
#pragma HLS UNROLL
        total[r] = 0;
    }
bounds_tiles:
    for (int r0 = r0s; r0 < g.rows && fits && tiles < SP_RTILES; r0 += PE_ROWS) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_RTILES
        const int vr = sp_tile_rows(g, r0);
        sp_read_bounds(ddr, f, g, j.ix, r0, vr, tp);
        sp_bounds(g, tp, vr, start, len);
    bounds_fit:
        for (int r = 0; r < PE_ROWS; r++) {
            /* one comparator per PE row */
#pragma HLS UNROLL
            if (total[r] + len[r] > SP_ENTRIES)
                fits = false;
        }
        if (fits) {
        bounds_rows:
            for (int r = 0; r < PE_ROWS; r++) {
                /* one register per PE row */
#pragma HLS UNROLL
                tlen[tiles][r] = (uint16_t)len[r];
                total[r] += len[r];
                if (total[r] > most)
                    most = total[r];
            }
            tiles++;
        }
    }
    return tiles;
}

/* Resident mode, load: every tile's lists (and FP biases, into tbias) on
 * chip, each PE row's back to back; WG also clears the accumulators of the
 * longest row's `most` entries. */
static void sp_res_load(const ddr_t *ddr, const ctrain_insn_t &f, const sp_rows_job &j, int p0,
                        int tiles,
                        uint32_t most, uint32_t tp[PE_ROWS * MAX_KK + 1], uint32_t start[PE_ROWS],
                        uint32_t len[PE_ROWS], uint32_t base[PE_ROWS], uint32_t clen[PE_ROWS],
                        int32_t braw[PE_ROWS], sp_entry ent[PE_ROWS][SP_ENTRIES],
                        acc_t tbias[SP_RTILES][PE_ROWS], acc_t tacc[PE_ROWS][SP_ENTRIES]) {
#pragma HLS INLINE
    const sp_plan &g = j.g;
    const bool bias = j.o.bias;
res_load_clear:
    for (int r = 0; r < PE_ROWS; r++) {
        /* one register per PE row */
#pragma HLS UNROLL
        base[r] = 0;
    }
resident_tiles:
    for (int t = 0, r0 = p0; t < tiles; t++, r0 += PE_ROWS) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_TILES
        const int vr = sp_tile_rows(g, r0);
        /* starts, and for EB the column starts the decode finds taps among */
        sp_read_bounds(ddr, f, g, j.ix, r0, vr, tp);
        sp_bounds(g, tp, vr, start, len);
        sp_load_entries(ddr, f, g, j.ix, tp, start, len, vr, 0, base, clen, ent);
        if (!g.wg && bias)
            agu_rd_i32<PE_ROWS>(ddr, f.src3 + 4 * r0, braw, vr);
    tile_bias:
        for (int r = 0; r < PE_ROWS; r++) {
            /* one word per PE row per tile: tbias is partitioned by row */
#pragma HLS UNROLL
            tbias[t][r] = !g.wg && bias && r < vr ? (acc_t)braw[r] : (acc_t)0;
            base[r] += len[r];
        }
    }
    if (g.wg) {
        CTRAIN_LOOP(ew, 1, most);
    clear_all_taps:
        for (uint32_t t = 0; t < most; t++) {
            /* one accumulator per PE row per cycle */
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_ENTRIES
        clear_all_taps_rows:
            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                tacc[r][t] = 0;
            }
        }
    }
}

/* Resident mode, one row tile t (rows r0..) against the window v of (b0, y,
 * x0): WG loads its error rows (summing the bias gradient) and steps the
 * outer products; FP, EB step the gather and run the epilogue.  base[r]
 * advances past the tile's lists; WG keeps its bias gradient in tbias. */
static void sp_res_tile(ddr_t *ddr, const ctrain_insn_t &f, const sp_rows_job &j, int t, int r0,
                        int b0, int nb, int y, int x0, int xc, const sp_view &v,
                        const bool rowok[CTRAIN_MAX_KERNEL],
                        const q8_t win[SP_COPIES][SP_WIN][PE_COLS],
                        const sp_entry ent[PE_ROWS][SP_ENTRIES],
                        const uint16_t tlen[SP_RTILES][PE_ROWS], acc_t tbias[SP_RTILES][PE_ROWS],
                        uint32_t base[PE_ROWS], uint32_t clen[PE_ROWS], wide_t rbias[PE_ROWS],
                        sp_red_t racc[PE_ROWS][PE_COLS][SP_XT], acc_t tacc[PE_ROWS][SP_ENTRIES],
                        q8_t mbuf[PE_ROWS][PE_COLS][SP_XT], q8_t lanes[PE_ROWS][PE_COLS][SP_XT],
                        q_stats &st) {
#pragma HLS INLINE
    const sp_plan &g = j.g;
    const int vr = sp_tile_rows(g, r0);
    uint32_t longest = 0;
res_bounds:
    for (int r = 0; r < PE_ROWS; r++) {
        /* one register per PE row */
#pragma HLS UNROLL
        clen[r] = tlen[t][r];
        /* FP: the raw bias, shifted to e_acc; WG: the gradient so far */
        rbias[r] = g.wg ? (wide_t)tbias[t][r].to_int64()
                        : rshift_round(tbias[t][r].to_int64(), j.sh_bias);
        if (clen[r] > longest)
            longest = clen[r];
    }
    if (g.wg) {
        if (!j.o.point && (longest > 0 || j.o.bias))
            sp_load_errors(ddr, f, j.o.point, r0, vr, b0, nb, y, x0, xc, lanes, rbias, j.o.bias);
        if (longest > 0)
            sp_row_steps(true, g, ent, base, clen, longest, x0, xc, v, 0, g.red, rowok, win, lanes,
                         j.o.point ? t : 0, nb, false, racc, tacc);
    } else {
        if (longest > 0)
            sp_row_steps(false, g, ent, base, clen, longest, x0, xc, v, 0, g.red, rowok, win, lanes,
                         0, nb, true, racc, tacc);
        if (j.o.point)
            sp_point_quantize(j.o, t, vr, nb, longest > 0, rbias, racc, mbuf, lanes, st);
        else
            sp_epilogue(ddr, f, g, j.o, r0, vr, b0, nb, y, x0, xc, longest > 0, rbias, racc, mbuf,
                        lanes, st);
    }
res_advance:
    for (int r = 0; r < PE_ROWS; r++) {
        /* one register per PE row */
#pragma HLS UNROLL
        if (g.wg)
            tbias[t][r] = (acc_t)rbias[r];
        base[r] += clen[r];
    }
}

/* Resident mode, sweep: per batch tile, swept row and x tile one window (when
 * any list is not empty) for every row tile. */
static void sp_res_sweep(ddr_t *ddr, const ctrain_insn_t &f, const sp_rows_job &j, int p0,
                         int tiles,
                         uint32_t most, q8_t win[SP_COPIES][SP_WIN][PE_COLS],
                         bool rowok[CTRAIN_MAX_KERNEL], const sp_entry ent[PE_ROWS][SP_ENTRIES],
                         const uint16_t tlen[SP_RTILES][PE_ROWS], acc_t tbias[SP_RTILES][PE_ROWS],
                         uint32_t base[PE_ROWS], uint32_t clen[PE_ROWS], wide_t rbias[PE_ROWS],
                         sp_red_t racc[PE_ROWS][PE_COLS][SP_XT], acc_t tacc[PE_ROWS][SP_ENTRIES],
                         q8_t mbuf[PE_ROWS][PE_COLS][SP_XT], q8_t lanes[PE_ROWS][PE_COLS][SP_XT],
                         q_stats &st) {
#pragma HLS INLINE
    const sp_plan &g = j.g;
    /* Point FP, EB: the pass's rows go out (masks come in) once per batch tile. */
    const bool pass_io = j.o.point && !g.wg;
    /* Point WG: the pass's errors come in once per batch tile. */
    const bool pass_err = j.o.point && g.wg && (most > 0 || j.o.bias);
    const int prow = g.rows - p0 < tiles * PE_ROWS ? g.rows - p0 : tiles * PE_ROWS;
res_batch:
    for (int b0 = 0; b0 < g.n; b0 += PE_COLS) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_BTILES
        const int nb = g.n - b0 < PE_COLS ? g.n - b0 : PE_COLS;
    res_row:
        for (int y = 0; y < g.oh; y++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
        res_x_tile:
            for (int x0 = 0; x0 < g.ow; x0 += g.xn) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
                const int xc = g.ow - x0 < g.xn ? g.ow - x0 : g.xn;
                sp_view v = sp_view();
                if (most > 0)   /* one window for every row tile */
                    v = sp_load_window(ddr, g, j.wsrc, b0, nb, y, x0, xc, 0, g.red,
                                       !g.plane || (y == 0 && x0 == 0), win, rowok);
            res_clear:
                for (int r = 0; r < PE_ROWS; r++) {
                    /* one register per PE row */
#pragma HLS UNROLL
                    base[r] = 0;
                }
                if (pass_err) {   /* WG: the pass's errors and bias sums, a burst per lane */
                res_point_err:
                    for (int c = 0; c < nb; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_COLS
                        sp_point_rd(ddr, f.src + (uint32_t)(b0 + c) * g.rows + p0, lanes, c, prow,
                                    tbias, j.o.bias);
                    }
                }
                if (pass_io && j.o.mask) {   /* the pass's masks, a burst per lane */
                res_point_mask:
                    for (int c = 0; c < nb; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_COLS
                        sp_point_rd(ddr, f.src3 + (uint32_t)(b0 + c) * g.rows + p0, mbuf, c, prow,
                                    tbias, false);
                    }
                }
            res_tile:
                for (int t = 0, r0 = p0; t < tiles; t++, r0 += PE_ROWS) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_TILES
                    sp_res_tile(ddr, f, j, t, r0, b0, nb, y, x0, xc, v, rowok, win, ent, tlen,
                                tbias, base, clen, rbias, racc, tacc, mbuf, lanes, st);
                }
                if (pass_io) {   /* the pass's outputs, a burst per lane */
                res_point_store:
                    for (int c = 0; c < nb; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_COLS
                        sp_point_wr(ddr, f.dst + (uint32_t)(b0 + c) * g.rows + p0, lanes, c, prow);
                    }
                }
            }
        }
    }
}

/* Resident mode, WG store: every tile's kept-weight gradients in CSR order
 * and its bias gradients. */
static void sp_res_store(ddr_t *ddr, const ctrain_insn_t &f, const sp_rows_job &j, int p0,
                         int tiles,
                         uint32_t tp[PE_ROWS * MAX_KK + 1], uint32_t start[PE_ROWS],
                         uint32_t len[PE_ROWS], uint32_t base[PE_ROWS], wide_t rbias[PE_ROWS],
                         const acc_t tbias[SP_RTILES][PE_ROWS],
                         const acc_t tacc[PE_ROWS][SP_ENTRIES], int32_t obuf[SP_ENTRIES],
                         q_stats &st) {
#pragma HLS INLINE
    const sp_plan &g = j.g;
res_clear_store:
    for (int r = 0; r < PE_ROWS; r++) {
        /* one register per PE row */
#pragma HLS UNROLL
        base[r] = 0;
    }
res_store:
    for (int t = 0, r0 = p0; t < tiles; t++, r0 += PE_ROWS) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_TILES
        const int vr = sp_tile_rows(g, r0);
        sp_read_bounds(ddr, f, g, j.ix, r0, vr, tp);   /* the rows' CSR starts */
        sp_bounds(g, tp, vr, start, len);
        sp_store_grads(ddr, f, vr, j.o.sh_out, base, start, 0, len, tacc, obuf, st);
    res_store_advance:
        for (int r = 0; r < PE_ROWS; r++) {
            /* one register per PE row */
#pragma HLS UNROLL
            rbias[r] = tbias[t][r].to_int64();
            base[r] += len[r];
        }
        if (j.o.bias)
            conv_store_bias(ddr, rbias, vr, r0, f.dst2, j.sh_b, st);
    }
}

/* Streamed mode, FP and EB, row tile r0 (vr rows, lists start/len, the
 * longest `longest` in `chunks` chunks): output-stationary gather.  Per
 * (batch tile, swept row, x tile): per channel group a window, per chunk the
 * steps (a single chunk stays on chip for the whole tile), then the
 * epilogue. */
static void sp_stream_gather(ddr_t *ddr, const ctrain_insn_t &f, const sp_rows_job &j, int r0,
                             int vr, uint32_t longest, uint32_t chunks,
                             const uint32_t tp[PE_ROWS * MAX_KK + 1],
                             const uint32_t start[PE_ROWS], const uint32_t len[PE_ROWS],
                             const uint32_t base[PE_ROWS], uint32_t clen[PE_ROWS],
                             int32_t braw[PE_ROWS], wide_t rbias[PE_ROWS],
                             sp_entry ent[PE_ROWS][SP_ENTRIES],
                             q8_t win[SP_COPIES][SP_WIN][PE_COLS], bool rowok[CTRAIN_MAX_KERNEL],
                             sp_red_t racc[PE_ROWS][PE_COLS][SP_XT], acc_t tacc[PE_ROWS][SP_ENTRIES],
                             q8_t mbuf[PE_ROWS][PE_COLS][SP_XT],
                             q8_t lanes[PE_ROWS][PE_COLS][SP_XT], q_stats &st) {
#pragma HLS INLINE
    const sp_plan &g = j.g;
    if (j.o.bias) {
        agu_rd_i32<PE_ROWS>(ddr, f.src3 + 4 * r0, braw, vr);
    gather_bias:
        for (int r = 0; r < vr; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
            rbias[r] = rshift_round(braw[r], j.sh_bias);
        }
    }
    if (chunks == 1)   /* resident for the whole tile */
        sp_load_entries(ddr, f, g, j.ix, tp, start, len, vr, 0, base, clen, ent);
batch_tile:
    for (int b0 = 0; b0 < g.n; b0 += PE_COLS) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_BTILES
        const int nb = g.n - b0 < PE_COLS ? g.n - b0 : PE_COLS;
    sweep_row:
        for (int y = 0; y < g.oh; y++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
        x_tile:
            for (int x0 = 0; x0 < g.ow; x0 += g.xn) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
                const int xc = g.ow - x0 < g.xn ? g.ow - x0 : g.xn;
            group:
                for (int grp = 0; grp < g.groups && longest > 0; grp++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_GROUPS
                    const int ch0 = grp * g.cg;
                    const int chn = g.red - ch0 < g.cg ? g.red - ch0 : g.cg;
                    const sp_view v = sp_load_window(
                        ddr, g, j.wsrc, b0, nb, y, x0, xc, ch0, chn,
                        !g.plane || g.groups > 1 || (y == 0 && x0 == 0), win, rowok);
                chunk:
                    for (uint32_t c = 0; c < chunks; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_CHUNKS
                        const uint32_t off = c * SP_ENTRIES;
                        if (chunks > 1)
                            sp_load_entries(ddr, f, g, j.ix, tp, start, len, vr, off, base, clen,
                                            ent);
                        const uint32_t lenj =
                            longest - off < SP_ENTRIES ? longest - off : SP_ENTRIES;
                        sp_row_steps(false, g, ent, base, clen, lenj, x0, xc, v, ch0, chn, rowok,
                                     win, lanes, 0, nb, grp == 0 && c == 0, racc, tacc);
                    }
                }
                sp_epilogue(ddr, f, g, j.o, r0, vr, b0, nb, y, x0, xc, longest > 0, rbias, racc,
                            mbuf, lanes, st);
            }
        }
    }
}

/* Streamed mode, WG, row tile r0: an accumulator per kept weight of a chunk,
 * summed over the batch (weight-stationary), then stored; the bias gradient
 * sums the error rows during the first chunk and is stored after the last. */
static void sp_stream_wg(ddr_t *ddr, const ctrain_insn_t &f, const sp_rows_job &j, int r0, int vr,
                         uint32_t longest, uint32_t chunks,
                         const uint32_t tp[PE_ROWS * MAX_KK + 1], const uint32_t start[PE_ROWS],
                         const uint32_t len[PE_ROWS], const uint32_t base[PE_ROWS],
                         uint32_t clen[PE_ROWS], wide_t rbias[PE_ROWS],
                         sp_entry ent[PE_ROWS][SP_ENTRIES], q8_t win[SP_COPIES][SP_WIN][PE_COLS],
                         bool rowok[CTRAIN_MAX_KERNEL], sp_red_t racc[PE_ROWS][PE_COLS][SP_XT],
                         acc_t tacc[PE_ROWS][SP_ENTRIES], q8_t lanes[PE_ROWS][PE_COLS][SP_XT],
                         int32_t obuf[SP_ENTRIES], q_stats &st) {
#pragma HLS INLINE
    const sp_plan &g = j.g;
    const bool bias = j.o.bias;
wg_chunk:
    for (uint32_t c = 0; c < chunks; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_CHUNKS
        const uint32_t off = c * SP_ENTRIES;
        const uint32_t lenj =
            longest <= off ? 0 : (longest - off < SP_ENTRIES ? longest - off : SP_ENTRIES);
        const bool sum_bias = bias && c == 0;
        if (lenj == 0 && !sum_bias)
            continue;
        if (lenj > 0) {
            sp_load_entries(ddr, f, g, j.ix, tp, start, len, vr, off, base, clen, ent);
            CTRAIN_LOOP(ew, 1, lenj);
        clear_taps:
            for (uint32_t t = 0; t < lenj; t++) {
                /* one accumulator per PE row per cycle */
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_ENTRIES
            clear_taps_rows:
                for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                    tacc[r][t] = 0;
                }
            }
        }
        if (sum_bias) {
        clear_bias:
            for (int r = 0; r < PE_ROWS; r++) {
                /* one register per PE row */
#pragma HLS UNROLL
                rbias[r] = 0;
            }
        }
    wg_batch:
        for (int b0 = 0; b0 < g.n; b0 += PE_COLS) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_BTILES
            const int nb = g.n - b0 < PE_COLS ? g.n - b0 : PE_COLS;
        wg_row:
            for (int y = 0; y < g.oh; y++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
            wg_x_tile:
                for (int x0 = 0; x0 < g.ow; x0 += g.xn) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
                    const int xc = g.ow - x0 < g.xn ? g.ow - x0 : g.xn;
                    /* The PE rows' error rows; the bias gradient sums them on
                     * the way in, during the first chunk only. */
                    sp_load_errors(ddr, f, j.o.point, r0, vr, b0, nb, y, x0, xc, lanes, rbias,
                                   sum_bias);
                wg_group:
                    for (int grp = 0; grp < g.groups && lenj > 0; grp++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_GROUPS
                        const int ch0 = grp * g.cg;
                        const int chn = g.red - ch0 < g.cg ? g.red - ch0 : g.cg;
                        const sp_view v = sp_load_window(
                            ddr, g, j.wsrc, b0, nb, y, x0, xc, ch0, chn,
                            !g.plane || g.groups > 1 || (y == 0 && x0 == 0), win, rowok);
                        sp_row_steps(true, g, ent, base, clen, lenj, x0, xc, v, ch0, chn, rowok,
                                     win, lanes, 0, nb, false, racc, tacc);
                    }
                }
            }
        }
        if (lenj > 0)
            sp_store_grads(ddr, f, vr, j.o.sh_out, base, start, off, clen, tacc, obuf, st);
    }
    if (bias)
        conv_store_bias(ddr, rbias, vr, r0, f.dst2, j.sh_b, st);
}

/* Streamed mode, row tile r0: its bounds, then its lists in chunks of
 * SP_ENTRIES (one chunk stays on chip for the whole tile), the window per
 * (batch tile, row, x tile) and channel group. */
static void sp_stream_tile(ddr_t *ddr, const ctrain_insn_t &f, const sp_rows_job &j, int r0,
                           uint32_t tp[PE_ROWS * MAX_KK + 1], uint32_t start[PE_ROWS],
                           uint32_t len[PE_ROWS], uint32_t base[PE_ROWS], uint32_t clen[PE_ROWS],
                           int32_t braw[PE_ROWS], wide_t rbias[PE_ROWS],
                           sp_entry ent[PE_ROWS][SP_ENTRIES],
                           q8_t win[SP_COPIES][SP_WIN][PE_COLS], bool rowok[CTRAIN_MAX_KERNEL],
                           sp_red_t racc[PE_ROWS][PE_COLS][SP_XT], acc_t tacc[PE_ROWS][SP_ENTRIES],
                           q8_t mbuf[PE_ROWS][PE_COLS][SP_XT],
                           q8_t lanes[PE_ROWS][PE_COLS][SP_XT], int32_t obuf[SP_ENTRIES],
                           q_stats &st) {
#pragma HLS INLINE
    const sp_plan &g = j.g;
    const int vr = sp_tile_rows(g, r0);
    sp_read_bounds(ddr, f, g, j.ix, r0, vr, tp);
    const uint32_t longest = sp_bounds(g, tp, vr, start, len);
stream_clear:
    for (int r = 0; r < PE_ROWS; r++) {
        /* one register per PE row */
#pragma HLS UNROLL
        base[r] = 0;
        clen[r] = 0;
    }
    const uint32_t chunks = longest == 0 ? 1 : (longest + SP_ENTRIES - 1) / SP_ENTRIES;
    if (g.wg)
        sp_stream_wg(ddr, f, j, r0, vr, longest, chunks, tp, start, len, base, clen, rbias, ent,
                     win, rowok, racc, tacc, lanes, obuf, st);
    else
        sp_stream_gather(ddr, f, j, r0, vr, longest, chunks, tp, start, len, base, clen, braw,
                         rbias, ent, win, rowok, racc, tacc, mbuf, lanes, st);
}

/* The row-tile path's top: its buffers, then resident passes or streamed
 * tiles. */
void sp_rows_unit(ddr_t *ddr, const ctrain_insn_t &f, const insn_exps &e, q_stats &st) {
    /* One multiplier array for gather and outer product (every call site),
     * and one instance of each loader and epilogue for both modes. */
#pragma HLS ALLOCATION function instances=sp_row_steps limit=1
#pragma HLS ALLOCATION function instances=sp_load_entries limit=1
#pragma HLS ALLOCATION function instances=sp_load_window limit=1
#pragma HLS ALLOCATION function instances=sp_epilogue limit=1
#pragma HLS ALLOCATION function instances=sp_load_errors limit=1
#pragma HLS ALLOCATION function instances=sp_store_grads limit=1
    sp_rows_job j;
    sp_rows_job_make(f, e, j);
    const sp_plan &g = j.g;

    /* Large on-chip buffers (BRAM/URAM); static so the C-sim keeps them off the
     * stack.  Every element is written before it is read. */
    static sp_entry ent[PE_ROWS][SP_ENTRIES];
#pragma HLS ARRAY_PARTITION variable=ent type=complete dim=1
#if CTRAIN_SPARSE_URAM
    /* Deep per-row lists (one read per step, the decode writes): on boards
     * with UltraRAM they leave the BRAM to the window (config choice). */
#pragma HLS BIND_STORAGE variable=ent type=ram_2p impl=uram
#endif
    /* Each step reads one C-lane word per PE row at a data-dependent position:
     * R reads per cycle, from SP_COPIES true-dual-port copies the loads write
     * together (PE rows 2k and 2k+1 read copy k). */
    static q8_t win[SP_COPIES][SP_WIN][PE_COLS];
#pragma HLS ARRAY_PARTITION variable=win type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=win type=complete dim=3
    static sp_red_t racc[PE_ROWS][PE_COLS][SP_XT];
#pragma HLS ARRAY_PARTITION variable=racc type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=racc type=complete dim=2
    /* Each bank is SP_XT x 48 bit with one read and one write (same x) per
     * step: a simple-dual-port distributed RAM, not a mostly empty RAMB18 pair. */
#pragma HLS BIND_STORAGE variable=racc type=ram_2p impl=lutram
    static acc_t tacc[PE_ROWS][SP_ENTRIES];
#pragma HLS ARRAY_PARTITION variable=tacc type=complete dim=1
#if CTRAIN_SPARSE_URAM
    /* One read-modify-write per step and row: URAM's two ports serve it. */
#pragma HLS BIND_STORAGE variable=tacc type=ram_2p impl=uram
#endif
    static q8_t lanes[PE_ROWS][PE_COLS][SP_XT];   /* WG: error rows; FP/EB: outputs */
#pragma HLS ARRAY_PARTITION variable=lanes type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=lanes type=complete dim=2
    static q8_t mbuf[PE_ROWS][PE_COLS][SP_XT];    /* EB: ReLU mask rows */
#pragma HLS ARRAY_PARTITION variable=mbuf type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=mbuf type=complete dim=2
    static uint32_t tp[PE_ROWS * MAX_KK + 1];      /* the tile's rowptr or tptr slice */
    static int32_t obuf[SP_ENTRIES];
    /* WG's gradients leave a beat per cycle (agu_wr_i32w): reshaped by the beat. */
#pragma HLS ARRAY_RESHAPE variable=obuf type=cyclic factor=AGU_I32_LANES
    /* Resident mode: every row tile's list lengths (each <= SP_ENTRIES) and
     * biases (FP: raw int32 biases, WG: bias gradients, < 2^47 in magnitude),
     * a word per PE row per tile read at once; SP_RTILES deep: LUTRAM. */
    static uint16_t tlen[SP_RTILES][PE_ROWS];
#pragma HLS ARRAY_PARTITION variable=tlen type=complete dim=2
#pragma HLS BIND_STORAGE variable=tlen type=ram_2p impl=lutram
    static acc_t tbias[SP_RTILES][PE_ROWS];
#pragma HLS ARRAY_PARTITION variable=tbias type=complete dim=2
#pragma HLS BIND_STORAGE variable=tbias type=ram_2p impl=lutram
    bool rowok[CTRAIN_MAX_KERNEL];
    /* sp_row_steps reads every PE row's rowok[e.ky] and clen[r] each step: registers */
#pragma HLS ARRAY_PARTITION variable=rowok type=complete
    int32_t braw[PE_ROWS];
    wide_t rbias[PE_ROWS];   /* FP: bias shifted to e_acc; WG: bias gradient */
#pragma HLS ARRAY_PARTITION variable=rbias type=complete
    uint32_t start[PE_ROWS], len[PE_ROWS], clen[PE_ROWS], base[PE_ROWS], total[PE_ROWS];
#pragma HLS ARRAY_PARTITION variable=clen type=complete
#pragma HLS ARRAY_PARTITION variable=base type=complete
#pragma HLS ARRAY_PARTITION variable=total type=complete

    /* Resident passes (one channel group): the row tiles in runs whose lists
     * fit on chip together, each run's lists loaded once and its windows
     * loaded once per (batch tile, row, x tile) for all its tiles; a tile
     * whose lists alone do not fit is streamed.  With channel groups every
     * tile is streamed. */
row_pass:
    for (int p0 = 0; p0 < g.rows;) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_TILES
        uint32_t most = 0;
        const int tiles = g.groups == 1
                              ? sp_rows_survey(ddr, f, j, p0, tp, start, len, total, tlen, most)
                              : 0;
        if (tiles == 0) {
            sp_stream_tile(ddr, f, j, p0, tp, start, len, base, clen, braw, rbias, ent, win,
                           rowok, racc, tacc, mbuf, lanes, obuf, st);
            p0 += PE_ROWS;
        } else {
            sp_res_load(ddr, f, j, p0, tiles, most, tp, start, len, base, clen, braw, ent, tbias,
                        tacc);
            sp_res_sweep(ddr, f, j, p0, tiles, most, win, rowok, ent, tlen, tbias, base, clen,
                         rbias, racc, tacc, mbuf, lanes, st);
            if (g.wg)
                sp_res_store(ddr, f, j, p0, tiles, tp, start, len, base, rbias, tbias, tacc, obuf,
                             st);
            p0 += tiles * PE_ROWS;
        }
    }
}
