/*
 * Sparse convolution unit (see sconv.h).
 *
 * Loop orders (R = PE_ROWS rows, C = PE_COLS batch lanes):
 *
 *   FP, EB (gather, output-stationary):
 *     row tile > [lists of the tile] > batch tile > swept row y > x tile >
 *     channel group > [window] > chunk > (x, t) steps
 *   WG (weight-stationary over the kept weights):
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
 * Lists of up to SP_ENTRIES stay on chip for the whole row tile; longer ones
 * are streamed in chunks of SP_ENTRIES.  The window holds, for every batch
 * lane, the input rows (channel, ky) of the current swept row and x tile; when
 * c_in*k_h*k_w exceeds SP_WIN the channels are split into groups and each
 * group pass walks the lists again (entries of other groups multiply zero).
 *
 * The (x, t) loops are flattened by hand into one pipelined loop, so a short
 * list (a fully connected layer's few kept inputs) pays no pipeline fill per
 * output position.
 */
#include "sconv.h"
#include "agu.h"
#include "conv.h"

/* One kept weight as a PE row uses it: value and tap.  For FP and WG `ch` is
 * the input channel, for EB the output channel (trow). */
struct sp_entry {
    q8_t val;
    uint16_t ch;
    uint8_t ky;
    uint8_t kx;
};

/* Exact n / d for 0 <= n < 2^16 as (n * m) >> sh with sh = 16 + ceil(log2 d),
 * m = ceil(2^sh / d) (Granlund & Montgomery 1994, theorem 4.2): the one
 * division happens per instruction, the loops multiply by a constant. */
struct sp_div16 {
    ap_uint<18> m;   /* <= 2^17: d > 2^(sh-17) */
    int sh;
};

/* Window rows and positions (< SP_WIN) and the factors that make them: a
 * 16 x 16-bit product is one DSP slice (the 32-bit one three). */
typedef ap_uint<16> sp_idx_t;

static sp_div16 sp_div_make(uint32_t d) {
    int l = 0;
div_log2:
    for (int i = 0; i < 16; i++) {
        /* 16 small compares: ceil(log2 d) in one step */
#pragma HLS UNROLL
        if ((1u << l) < d) l++;
    }
    sp_div16 r;
    r.sh = 16 + l;
    r.m = (((uint64_t)1 << r.sh) + d - 1) / d;
    return r;
}

static uint32_t sp_div(const sp_div16 &d, uint32_t n) {
#pragma HLS INLINE
    const ap_uint<34> q = (ap_uint<16>)n * d.m;   /* n < 2^16: one DSP slice */
    return (uint32_t)(q >> d.sh).to_uint();
}

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
#pragma HLS LOOP_TRIPCOUNT min=1 max=256
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
#pragma HLS LOOP_TRIPCOUNT min=1 max=256
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
    q8_t vbuf[SP_ENTRIES];
    uint16_t hbuf[SP_ENTRIES];
    uint32_t wbuf[SP_ENTRIES];
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
                agu_rd_q8<SP_ENTRIES>(ddr, f.src2 + first, vbuf, lr);
            agu_rd_u16<SP_ENTRIES>(ddr, f.aux + (uint32_t)ix.col + 2 * first, hbuf, lr);
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
            agu_rd_u16<SP_ENTRIES>(ddr, f.aux + (uint32_t)ix.trow + 2 * first, hbuf, lr);
            agu_rd_u32<SP_ENTRIES>(ddr, f.aux + (uint32_t)ix.tpos + 4 * first, wbuf, lr);
            CTRAIN_LOOP(ew, 1, lr);
        decode_csc:
            for (uint32_t t = 0; t < lr; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_ENTRIES
                const uint32_t q = first + t;
                uint32_t tap = 0;   /* columns of this channel that start at or before q */
                for (uint32_t k = 1; k < MAX_KK; k++) {
#pragma HLS UNROLL
                    if (k < kk && tp[rk + k] <= q)
                        tap++;
                }
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

/* The sparse PE array, one R x C multiplier array for all three phases
 * (sconv_unit limits the function to one instance).  Each step PE (r, c)
 * multiplies a row operand by lane c's window input at the tap of row r's
 * list entry t:
 *   gather (FP, EB): operand = entry t's value, xc * lenj steps (t fastest);
 *     acc[r][c] sums over the list, then goes to racc[r][c][x] (first pass:
 *     set, later chunks and groups: add).
 *   outer (WG): operand = lane c's error at x, lenj * xc steps (x fastest);
 *     an adder tree sums the lanes, a register per row sums over the row,
 *     added to entry t's accumulator tacc[r][t] at the row's end. */
static void sp_row_steps(bool outer, const sp_plan &g, const sp_entry ent[PE_ROWS][SP_ENTRIES],
                     const uint32_t base[PE_ROWS], const uint32_t clen[PE_ROWS], uint32_t lenj,
                     int x0, int xc,
                     const sp_view &v, int ch0, int chn, const bool rowok[CTRAIN_MAX_KERNEL],
                     const q8_t win[SP_COPIES][SP_WIN][PE_COLS],
                     const q8_t errb[PE_ROWS][PE_COLS][SP_XT], int nb, bool first,
                     acc_t racc[PE_ROWS][PE_COLS][SP_XT], acc_t tacc[PE_ROWS][SP_ENTRIES]) {
#pragma HLS INLINE off
    const uint32_t steps = (uint32_t)xc * lenj;
    CTRAIN_LOOP(pe, 1, steps);
    acc_t acc[PE_ROWS][PE_COLS];
#pragma HLS ARRAY_PARTITION variable=acc type=complete dim=0
    acc_t part[PE_ROWS];
#pragma HLS ARRAY_PARTITION variable=part type=complete
    int x = 0;
    const sp_qr ax0 = sp_qr_of(g, x0);
    sp_qr ax = ax0;   /* of x0 + x */
    uint32_t t = 0;
row_step:
    for (uint32_t i = 0; i < steps; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=65536
#pragma HLS DEPENDENCE variable=tacc type=inter false
        for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
            const sp_entry e = ent[r][base[r] + t];
            const int pos = t < clen[r] ? sp_window_pos(g, e, x0, x, ax, v, ch0, chn, rowok) : -1;
            acc_t sum = 0;
            for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                const q8_t a = (pos >= 0 && c < nb) ? win[r / 2][pos][c] : (q8_t)0;
                const q8_t d = c < nb ? errb[r][c][x] : (q8_t)0;
                const prod_t m = (prod_t)(outer ? d : e.val) * (prod_t)a;
#if CTRAIN_SPARSE_MUL_LUT
                /* The board's DSP slices go to the dense array: these int8
                 * products are LUT multipliers (config: CTRAIN_SPARSE_MUL_LUT). */
#pragma HLS BIND_OP variable=m op=mul impl=fabric
#endif
                if (!outer)
                    acc[r][c] = (t == 0 ? acc_t(0) : acc[r][c]) + m;
                sum += m;   /* adder tree, used by outer */
            }
            if (outer) {
                part[r] = (x == 0 ? acc_t(0) : part[r]) + sum;
                if (x == xc - 1)
                    tacc[r][base[r] + t] += part[r];
            }
        }
        if (!outer && t == lenj - 1) {
            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                    racc[r][c][x] = (first ? acc_t(0) : racc[r][c][x]) + acc[r][c];
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

/* Per-instruction constants of the epilogues. */
struct sp_out {
    bool bias, relu, mask, point;
    int sh_out;
};

/* FP, EB epilogue of row tile r0 (vr rows) at batch tile b0 (nb lanes), swept
 * row y and x tile [x0, x0 + xc): bias, ReLU or mask, quantize, store.
 * `kept`: the tile has kept weights (racc holds its sums; else they are 0). */
static void sp_epilogue(ddr_t *ddr, const ctrain_insn_t &f, const sp_plan &g, const sp_out &o,
                        int r0, int vr, int b0, int nb, int y, int x0, int xc, bool kept,
                        const wide_t rbias[PE_ROWS], const acc_t racc[PE_ROWS][PE_COLS][SP_XT],
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
            for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                if (c >= nb)
                    continue;
                wide_t v = kept ? racc[r][c][x].to_int64() : 0;
                if (o.bias)
                    v += rbias[r];
                if (o.relu && v < 0) v = 0;
                if (o.mask && mbuf[r][c][x] <= 0) v = 0;
                bool clamped;
                const q8_t q = sat8(rshift_round(v, o.sh_out), clamped);
                q_stats_add(st, v, q, clamped);
                lanes[r][c][x] = q;
            }
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
        agu_wr_i32<SP_ENTRIES>(ddr, f.dst + 4 * (start[r] + off), obuf, lr);
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
 * Position-parallel path (docs/overlay.md "Sparse unit"): the array's
 * SP_P = PE_LANES x PE_ROWS x PE_COLS multipliers are output positions that
 * share one broadcast kept weight per cycle, so every PE walks the same list
 * (no imbalance) and a kept weight costs ceil(positions / SP_P) cycles.
 *
 * The window holds, for every reduction channel c, the padded source planes
 * of nb images (a band of br swept rows and its k_h - 1 halo rows), row
 * pitch pw, image j at j * qimg, channel c at c * cs.  A swept position is
 * the window address q of its first tap (image j, row u, column x: j * qimg +
 * u * pw + x; x >= ow or u >= the band's rows are junk positions), and tap
 * (ky, kx) of kept weight (c, ky, kx) reads q + c * cs + toff[tap], toff =
 * ky * pw + kx (FP, WG: gather over the activations, padded by p) or, for
 * EB, the flipped (k_h-1-ky) * pw + (k_w-1-kx) over the output errors padded
 * by k-1-p (the transposed convolution as a gather; stride 1 only).  Tile t
 * is positions [t * SP_P, (t+1) * SP_P): PE p reads window address base + p,
 * base = off + t * SP_P, i.e. bank (base + p) mod SP_P at row (base + p) /
 * SP_P: each bank one read, the words rotated by base mod SP_P (a barrel
 * shifter) to the PEs.
 *
 *   FP, EB  row i (FP: c_out, EB: c_in) > tile > its kept weights: every PE
 *           accumulates; at the list's end the tile's outputs are quantized
 *           (bias, ReLU or mask), SP_P per cycle.
 *   WG      row i (c_out) > its kept weights > tile: PE p multiplies the
 *           error at its position by its window input, an adder tree sums
 *           the SP_P products, the kept weight's accumulator takes the sum.
 *
 * Rows are taken in chunks whose lists fit SP_LIST entries and whose
 * outputs (errors) fit SP_OD words per bank; per chunk the items (nb images
 * x band) run as a ping-pong pipeline: load item k+1 || compute k || store
 * k-1, like the dense unit.  Instructions that do not fit (stride > 1, a
 * window of one image row that does not fit, a list longer than SP_LIST)
 * run on the row-tile path below (sp_rows_unit).
 */
#define SP_P (PE_LANES * PE_ROWS * PE_COLS)
#define SP_WD CTRAIN_SPARSE_WDEPTH
#define SP_OD CTRAIN_SPARSE_ODEPTH
#define SP_LIST CTRAIN_SPARSE_LIST
#define SP_BND 256   /* list pointers per burst of the chunking pass */

typedef q8_t spp_win_t[SP_P][SP_WD];
typedef q8_t spp_rows_t[SP_P][SP_OD];

struct spp_plan {
    bool eb, wg;
    int n, rows, red, kh, kw, kk;
    int ey, ex;          /* the window's padding above / left of the source */
    int sh, sw, oh, ow;  /* source plane, swept plane */
    int pw;              /* window row pitch: sw + 2 ex */
    int nb, br, bands;   /* images and swept rows per item, bands */
    int hw, qimg, cs, T; /* window rows per image, image slot, channel slot, tiles */
    int nmax;            /* rows per chunk the output buffer takes: SP_OD / T */
    int lii, sii;        /* cycles per beat of window loads, row-buffer bursts */
    int dj, du, dx;      /* SP_P positions as (images, rows, columns) */
};

/* A buffer address a as (word a / SP_P, bank a % SP_P): the loads, stores
 * and steps add these, so no lane divides. */
struct spp_qm {
    int32_t q;
    int m;
};

static spp_qm spp_qm_add(spp_qm a, spp_qm b) {
#pragma HLS INLINE
    a.q += b.q;
    a.m += b.m;
    if (a.m >= SP_P) {
        a.m -= SP_P;
        a.q++;
    }
    return a;
}

/* (a / SP_P, a % SP_P) of a < 2^20 (per instruction or tap, never per lane). */
static spp_qm spp_qm_of(uint32_t a) {
#pragma HLS INLINE
    const ap_uint<20> v = a;
    const ap_uint<20> q = v / SP_P;   /* a constant: a narrow reciprocal product */
    spp_qm r;
    r.q = (int32_t)q.to_uint();
    r.m = (int)(v - q * SP_P).to_uint();
    return r;
}

/* Window capacity an item of nb images and br swept rows needs (its last
 * channel's slot read to the last tile's end plus the farthest tap) and its
 * tiles. */
static bool spp_fits(const spp_plan &g, int nb, int br, int &T) {
#pragma HLS INLINE off
    /* images < 2^11, rows and pitch < 2^10: narrow products */
    const uint32_t pos = (uint32_t)((ap_uint<11>)nb * (ap_uint<10>)(br + g.kh - 1)) * (ap_uint<10>)g.pw;
    const uint32_t t = pos / SP_P + (pos % SP_P != 0 ? 1u : 0u);
    T = (int)(t < SP_OD + 1 ? t : SP_OD + 1);
    if (t > SP_OD)
        return false;
    /* channels pos apart; the last one read to the last tile's end and the
     * farthest tap (pos < 2^20 in any fitting plan: narrow products) */
    const uint64_t need = (uint64_t)((ap_uint<12>)(g.red - 1) * (ap_uint<20>)pos) + t * SP_P +
                          (uint32_t)((ap_uint<4>)(g.kh - 1) * (ap_uint<10>)g.pw) + g.kw - 1;
    return need <= (uint64_t)SP_P * SP_WD;
}

/* Cycles per beat of a burst between DDR and a banked buffer of row pitch
 * pitch whose rows hold `len` bytes: a beat's bytes form at most
 * (len + W - 2) / len + 1 runs of consecutive addresses, each run one cycle
 * (SP_P >= W banks) or ceil(W / SP_P). */
static int spp_ii(int len) {
    return ((len + DDR_BEAT - 2) / len + 1) * ((DDR_BEAT + SP_P - 1) / SP_P);
}

static bool spp_make_plan(const ctrain_insn_t &f, spp_plan &g) {
    /* the fit test, one instance for the three searches */
#pragma HLS ALLOCATION function instances=spp_fits limit=1
    g.eb = f.op == OP_SCONV_EB;
    g.wg = f.op == OP_SCONV_WG;
    if (f.stride != 1)
        return false;
    g.n = f.n;
    g.kh = f.k_h;
    g.kw = f.k_w;
    g.kk = f.k_h * f.k_w;
    g.rows = g.eb ? f.c_in : f.c_out;
    g.red = g.eb ? f.c_out : f.c_in;
    g.sh = g.eb ? f.h_out : f.h_in;
    g.sw = g.eb ? f.w_out : f.w_in;
    g.oh = g.eb ? f.h_in : f.h_out;
    g.ow = g.eb ? f.w_in : f.w_out;
    g.ey = g.eb ? f.k_h - 1 - f.pad : f.pad;
    g.ex = g.eb ? f.k_w - 1 - f.pad : f.pad;
    if (g.ey < 0 || g.ex < 0)
        return false;
    g.pw = g.sw + 2 * g.ex;
    int T = 0, br = g.oh;
band_rows:
    for (; br >= 1; br--) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
        if (spp_fits(g, 1, br, T))
            break;
    }
    if (br < 1)
        return false;
    g.bands = (g.oh + br - 1) / br;
    g.br = (g.oh + g.bands - 1) / g.bands;   /* balanced bands */
    /* Images per item: the fewest tiles per image among those that fit. */
    int best = 1, bt = 0;
    spp_fits(g, 1, g.br, bt);
batch_images:
    for (int nb = 2; nb <= g.n; nb++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_BATCH
        if (!spp_fits(g, nb, g.br, T))
            break;
        if ((uint32_t)T * best < (uint32_t)bt * nb) {
            best = nb;
            bt = T;
        }
    }
    g.nb = best;
    g.T = bt;
    g.hw = g.br + g.kh - 1;
    g.qimg = g.hw * g.pw;
    g.cs = g.nb * g.qimg;
    g.nmax = SP_OD / g.T;
    g.lii = spp_ii(g.sw);
    g.sii = spp_ii(g.ow);
    g.dj = SP_P / g.qimg;
    const int rem = SP_P - g.dj * g.qimg;
    g.du = rem / g.pw;
    g.dx = rem - g.du * g.pw;
    return true;
}

/* The chunking pass: every list's length from its pointers (FP, WG: rowptr;
 * EB: tptr, a list per k_h*k_w columns), SP_BND per burst; chunks of rows
 * [cstart[i], cstart[i+1]) of at most nmax rows and SP_LIST entries.  False
 * when a single list exceeds SP_LIST. */
static bool spp_chunks(const ddr_t *ddr, const ctrain_insn_t &f, const spp_plan &g,
                       const sparse_index_t &ix, uint16_t cstart[CTRAIN_MAX_CH + 1], int &nch) {
    static uint32_t pbuf[SP_BND];
#pragma HLS BIND_STORAGE variable=pbuf type=ram_2p impl=lutram
    const uint32_t step = g.eb ? (uint32_t)g.kk : 1u;
    const uint32_t words = (uint32_t)((ap_uint<12>)g.rows * (ap_uint<7>)step) + 1;   /* narrow */
    const uint32_t at = (uint32_t)(g.eb ? ix.tptr : ix.rowptr);
    uint32_t prev = 0, first = 0, inrow = 0;
    int row = 0, nr = 0;
    bool ok = true;
    nch = 0;
chunk_bursts:
    for (uint32_t w0 = 0; w0 < words; w0 += SP_BND) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_SPARSE_COLS/SP_BND
        const uint32_t cnt = words - w0 < SP_BND ? words - w0 : SP_BND;
        agu_rd_u32<SP_BND>(ddr, f.aux + at + 4 * w0, pbuf, cnt);
        CTRAIN_LOOP(ew, 1, cnt);
    chunk_words:
        for (uint32_t k = 0; k < cnt; k++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_BND
            const uint32_t v = pbuf[k];
            const bool bound = inrow == 0;
            if (++inrow == step)
                inrow = 0;
            if (!bound)
                continue;
            if (w0 + k == 0) {
                prev = v;
                first = v;
                continue;
            }
            if (v - prev > SP_LIST)
                ok = false;
            if (nr > 0 && (nr == g.nmax || v - first > SP_LIST)) {
                cstart[nch++] = (uint16_t)(row - nr);
                first = prev;
                nr = 0;
            }
            nr++;
            row++;
            prev = v;
        }
    }
    cstart[nch++] = (uint16_t)(row - nr);
    cstart[nch] = (uint16_t)row;
    return ok;
}

/* One chunk's lists on chip: per kept weight its value and window offset
 * c * cs + toff[tap]; start[i] the first entry of row i (start[nr]: the
 * chunk's count).  FP, WG: the CSR rows [ra, ra+nr), contiguous (one burst
 * each of rowptr, col and, FP, vals); EB: the transposed index's entries of
 * input channels [ra, ra+nr), contiguous (one burst each of trow and tpos),
 * each channel's k_h*k_w column pointers read to find the taps, the values
 * gathered through tpos.  Returns the chunk's first CSR (or transposed)
 * position. */
static uint32_t spp_lists(const ddr_t *ddr, const ctrain_insn_t &f, const spp_plan &g,
                          const sparse_index_t &ix, int ra, int nr, const spp_qm toff[MAX_KK],
                          uint32_t start[SP_OD + 1], q8_t eval[SP_LIST], uint32_t eoq[SP_LIST],
                          uint16_t eom[SP_LIST],
                          uint16_t hbuf[SP_LIST], int32_t wbuf[SP_LIST], q8_t vbuf[SP_LIST]) {
    static uint32_t tpr[MAX_KK + 1];
#pragma HLS BIND_STORAGE variable=tpr type=ram_2p impl=lutram
    const uint32_t kk = (uint32_t)g.kk;
    const ap_uint<20> cs = g.cs;
    if (!g.eb) {
        agu_rd_u32<SP_OD + 1>(ddr, f.aux + (uint32_t)ix.rowptr + 4 * ra, start, nr + 1);
        const uint32_t z0 = start[0], cnt = start[nr] - z0;
        if (!g.wg)
            agu_rd_q8<SP_LIST>(ddr, f.src2 + z0, vbuf, cnt);
        agu_rd_u16<SP_LIST>(ddr, f.aux + (uint32_t)ix.col + 2 * z0, hbuf, cnt);
        sp_div16 dkk = sp_div_make(kk);
        CTRAIN_LOOP(ew, 1, cnt);
    spp_decode_csr:
        for (uint32_t t = 0; t < cnt; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_LIST
            const uint32_t col = hbuf[t];
            const uint32_t ch = sp_div(dkk, col);
            /* ch < 2^16, kk <= MAX_KK: a narrow product, one DSP slice */
            const uint32_t tap = col - (uint32_t)((sp_idx_t)ch * (ap_uint<8>)kk);
            eval[t] = g.wg ? (q8_t)0 : vbuf[t];
            const spp_qm a = spp_qm_add(spp_qm_of((uint32_t)((ap_uint<12>)ch * cs)), toff[tap]);
            eoq[t] = (uint32_t)a.q;
            eom[t] = (uint16_t)a.m;
        }
    spp_rebase:
        for (int i = 0; i <= nr; i++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_OD+1
            start[i] -= z0;
        }
        return z0;
    }
    uint32_t z0 = 0, n = 0;
spp_rows_eb:
    for (int i = 0; i < nr; i++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_OD
        agu_rd_u32<MAX_KK + 1>(ddr, f.aux + (uint32_t)ix.tptr + 4 * (uint32_t)((ap_uint<12>)(ra + i) * (ap_uint<7>)kk), tpr,
                               kk + 1);
        if (i == 0)
            z0 = tpr[0];
        start[i] = n;
        const uint32_t len = tpr[kk] - tpr[0];
        agu_rd_u16<SP_LIST>(ddr, f.aux + (uint32_t)ix.trow + 2 * tpr[0], hbuf, len);
        agu_rd_i32<SP_LIST>(ddr, f.aux + (uint32_t)ix.tpos + 4 * tpr[0], wbuf, len);
        CTRAIN_LOOP(ew, 1, len);
    spp_decode_csc:
        for (uint32_t t = 0; t < len; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_LIST
            const uint32_t q = tpr[0] + t;
            uint32_t tap = 0;   /* columns of this channel that start at or before q */
            for (uint32_t k = 1; k < MAX_KK; k++) {
#pragma HLS UNROLL
                if (k < kk && tpr[k] <= q)
                    tap++;
            }
            eval[n + t] = agu_rd_byte(ddr, f.src2 + (uint32_t)wbuf[t]);
            const spp_qm a =
                spp_qm_add(spp_qm_of((uint32_t)((ap_uint<12>)hbuf[t] * cs)), toff[tap]);
            eoq[n + t] = (uint32_t)a.q;
            eom[n + t] = (uint16_t)a.m;
        }
        n += len;
    }
    start[nr] = n;
    return z0;
}

/* One item: images [b0, b0 + nbi), swept rows [y0, y0 + bri); item k is
 * image group k / bands, band k % bands. */
struct spp_item {
    int b0, nbi, y0, bri;
};

static spp_item spp_item_of(const spp_plan &g, int k) {
#pragma HLS INLINE off
    spp_item it;
    const int grp = k / g.bands;   /* once per item */
    const int band = k - grp * g.bands;
    it.b0 = grp * g.nb;
    it.nbi = g.n - it.b0 < g.nb ? g.n - it.b0 : g.nb;
    it.y0 = band * g.br;
    it.bri = g.oh - it.y0 < g.br ? g.oh - it.y0 : g.br;
    return it;
}

/* How a burst's bytes walk a banked buffer: runs of `run` bytes `pitch`
 * apart from dst, `rpp` runs per plane, planes `pstep` apart (addresses as
 * spp_qm: the lanes only add and compare). */
struct spp_walk {
    spp_qm dst, pitch, pstep;
    int run, rpp;
};

struct spp_cursor {
    spp_qm at, row, plane;
    int x, r;
};

static void spp_next(const spp_walk &w, spp_cursor &k) {
#pragma HLS INLINE
    if (++k.x == w.run) {
        k.x = 0;
        if (++k.r == w.rpp) {
            k.r = 0;
            k.plane = spp_qm_add(k.plane, w.pstep);
            k.row = k.plane;
        } else {
            k.row = spp_qm_add(k.row, w.pitch);
        }
        k.at = k.row;
        return;
    }
    spp_qm one;
    one.q = 0;
    one.m = 1;
    k.at = spp_qm_add(k.at, one);
}

static spp_cursor spp_walk_make(const spp_walk &w) {
#pragma HLS INLINE
    spp_cursor k;
    k.at = k.row = k.plane = w.dst;
    k.x = k.r = 0;
    return k;
}

/* DDR -> banked buffer (len bytes at addr), `ii` cycles per beat. */
template <int D>
static void spp_rd(const ddr_t *ddr, uint32_t addr, uint32_t len, q8_t buf[SP_P][D],
                   const spp_walk &w, int ii) {
    agu_count(false, addr, len, ii);
    if (len == 0)
        return;
    const agu_burst gb = agu_plan(addr, len);
    spp_cursor k = spp_walk_make(w);
spp_rd_beats:
    for (uint32_t b = 0; b < gb.beats; b++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_P*D/DDR_BEAT
        const int lo = agu_lo(gb, b), hi = agu_hi(gb, b);
        const beat_t v = ddr_get(ddr, gb.first + b, lo, hi);
        for (int l = 0; l < DDR_BEAT; l++) {
#pragma HLS UNROLL
            if (l >= lo && l < hi) {
                buf[k.at.m][k.at.q] = (q8_t)beat_lane(v, l);
                spp_next(w, k);
            }
        }
    }
}

/* Banked buffer -> DDR (len bytes at addr), `ii` cycles per beat. */
template <int D>
static void spp_wr(ddr_t *ddr, uint32_t addr, uint32_t len, const q8_t buf[SP_P][D],
                   const spp_walk &w, int ii) {
    agu_count(true, addr, len, ii);
    if (len == 0)
        return;
    const agu_burst gb = agu_plan(addr, len);
    spp_cursor k = spp_walk_make(w);
spp_wr_beats:
    for (uint32_t b = 0; b < gb.beats; b++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_P*D/DDR_BEAT
        const int lo = agu_lo(gb, b), hi = agu_hi(gb, b);
        beat_t v = beat_zero();
        for (int l = 0; l < DDR_BEAT; l++) {
#pragma HLS UNROLL
            if (l >= lo && l < hi) {
                set_lane(v, l, (uint8_t)buf[k.at.m][k.at.q]);
                spp_next(w, k);
            }
        }
        ddr_put(ddr, gb.first + b, v, lo, hi);
    }
}

/* Zeroes words [0, words) of every bank (the window's padding, the WG
 * errors' junk positions). */
template <int D>
static void spp_clear(q8_t buf[SP_P][D], uint32_t words) {
    CTRAIN_LOOP(ew, 1, words);
spp_clear_words:
    for (uint32_t k = 0; k < words; k++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=D
        for (int p = 0; p < SP_P; p++) {
#pragma HLS UNROLL
            buf[p][k] = 0;
        }
    }
}

/* The window of an item: the source planes' rows its band reads (source
 * rows [lo, hi) of every channel and image), one burst for the item when
 * they are whole planes (contiguous in DDR), else one per image and
 * channel; the padding zeroed first. */
static void spp_load_window(const ddr_t *ddr, const spp_plan &g, uint32_t src, const spp_item &it,
                            spp_win_t win) {
    if (g.ey > 0 || g.ex > 0)
        spp_clear<SP_WD>(win, spp_qm_of((uint32_t)(g.red * g.cs + SP_P - 1)).q);
    const int lo = it.y0 - g.ey > 0 ? it.y0 - g.ey : 0;
    const int top = it.y0 + it.bri + g.kh - 1 - g.ey;
    const int hi = top < g.sh ? top : g.sh;
    if (hi <= lo)
        return;
    const uint32_t plane = (uint32_t)g.sh * g.sw;
    spp_walk w;
    w.run = g.sw;
    w.pitch = spp_qm_of((uint32_t)g.pw);
    w.rpp = hi - lo;
    w.pstep = spp_qm_of((uint32_t)g.cs);
    /* the first source row's place: (lo + ey - y0) rows and ex columns in */
    spp_qm d0 = spp_qm_of((uint32_t)g.ex);
spp_window_pad:
    for (int r = it.y0; r < lo + g.ey; r++) {
#pragma HLS LOOP_TRIPCOUNT min=0 max=CTRAIN_MAX_PAD
        d0 = spp_qm_add(d0, w.pitch);
    }
    const spp_qm qimg = spp_qm_of((uint32_t)g.qimg);
    const bool whole = lo == 0 && hi == g.sh;
spp_window_images:
    for (int j = 0; j < it.nbi; j++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_BATCH
        if (whole) {
            /* whole planes: an image's channels are contiguous, one burst */
            w.dst = d0;
            spp_rd<SP_WD>(ddr, src + (uint32_t)(it.b0 + j) * g.red * plane,
                          (uint32_t)g.red * plane, win, w, g.lii);
        } else {
            w.dst = d0;
        spp_window_channels:
            for (int c = 0; c < g.red; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_CH
                spp_rd<SP_WD>(ddr, src + (((uint32_t)(it.b0 + j) * g.red + c) * g.sh + lo) * g.sw,
                              (uint32_t)(hi - lo) * g.sw, win, w, g.lii);
                w.dst = spp_qm_add(w.dst, w.pstep);
            }
        }
        d0 = spp_qm_add(d0, qimg);
    }
}

/* Rows [ra, ra + nr) of a tensor on the swept plane (FP/EB outputs, EB
 * masks, WG errors) between DDR at base and the row buffer (row i of the
 * chunk at word i * T, positions as the window's): one burst per image
 * when the band is the whole plane, else one per image and row. */
static void spp_rows_io(ddr_t *ddr, const spp_plan &g, uint32_t base, const spp_item &it, int ra,
                        int nr, spp_rows_t buf, bool write) {
#pragma HLS INLINE off
    const uint32_t plane = (uint32_t)((ap_uint<10>)g.oh * (ap_uint<10>)g.ow);   /* narrow */
    spp_walk w;
    w.run = g.ow;
    w.pitch = spp_qm_of((uint32_t)g.pw);
    w.rpp = it.bri;
    w.pstep.q = g.T;
    w.pstep.m = 0;
    const spp_qm qimg = spp_qm_of((uint32_t)g.qimg);
    spp_qm dj;
    dj.q = 0;
    dj.m = 0;
spp_rows_images:
    for (int j = 0; j < it.nbi; j++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_BATCH
        const uint32_t img = (uint32_t)(it.b0 + j) * g.rows + ra;
        if (g.bands == 1) {
            w.dst = dj;
            if (write)
                spp_wr<SP_OD>(ddr, base + img * plane, (uint32_t)nr * plane, buf, w, g.sii);
            else
                spp_rd<SP_OD>(ddr, base + img * plane, (uint32_t)nr * plane, buf, w, g.sii);
        } else {
        spp_rows_rows:
            for (int i = 0; i < nr; i++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_OD
                w.dst.q = dj.q + (int32_t)((ap_uint<12>)i * (ap_uint<12>)g.T);   /* narrow */
                w.dst.m = dj.m;
                const uint32_t at = base + (img + i) * plane + (uint32_t)it.y0 * g.ow;
                if (write)
                    spp_wr<SP_OD>(ddr, at, (uint32_t)it.bri * g.ow, buf, w, g.sii);
                else
                    spp_rd<SP_OD>(ddr, at, (uint32_t)it.bri * g.ow, buf, w, g.sii);
            }
        }
        dj = spp_qm_add(dj, qimg);
    }
}

/* Which positions of each tile are outputs of the item (not junk): PE p's
 * position (image, row, column) kept by counters, SP_P = (dj, du, dx) per
 * tile. */
static void spp_valid(const spp_plan &g, const spp_item &it, const int pj[SP_P],
                      const int pu[SP_P], const int px[SP_P], bool vt[SP_OD][SP_P]) {
    int j[SP_P], u[SP_P], x[SP_P];
#pragma HLS ARRAY_PARTITION variable=j type=complete
#pragma HLS ARRAY_PARTITION variable=u type=complete
#pragma HLS ARRAY_PARTITION variable=x type=complete
    for (int p = 0; p < SP_P; p++) {
#pragma HLS UNROLL
        j[p] = pj[p];
        u[p] = pu[p];
        x[p] = px[p];
    }
    CTRAIN_LOOP(ew, 1, g.T);
spp_valid_tiles:
    for (int t = 0; t < g.T; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_OD
        for (int p = 0; p < SP_P; p++) {
#pragma HLS UNROLL
            vt[t][p] = j[p] < it.nbi && u[p] < it.bri && x[p] < g.ow;
            x[p] += g.dx;
            if (x[p] >= g.pw) {
                x[p] -= g.pw;
                u[p]++;
            }
            u[p] += g.du;
            if (u[p] >= g.hw) {
                u[p] -= g.hw;
                j[p]++;
            }
            j[p] += g.dj;
        }
    }
}

/* WG bias gradients: each chunk row's errors summed (junk positions hold
 * 0), a tile of SP_P per cycle through an adder tree. */
static void spp_bias_sum(const spp_plan &g, int nr, const spp_rows_t rb, wide_t gb[SP_OD]) {
    const uint32_t words = (uint32_t)((ap_uint<12>)nr * (ap_uint<12>)g.T);   /* <= SP_OD */
    CTRAIN_LOOP(ew, 1, words);
    int i = 0, t = 0;
spp_bias_words:
    for (uint32_t k = 0; k < words; k++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_OD
        int sum = 0;   /* |sum| <= SP_P * 128 */
        for (int p = 0; p < SP_P; p++) {
#pragma HLS UNROLL
            sum += rb[p][k];
        }
        gb[i] += sum;
        if (++t == g.T) {
            t = 0;
            i++;
        }
    }
}

/* Window words base .. base + SP_P - 1 to PEs 0 .. SP_P - 1 (b0 = base %
 * SP_P, r0 = base / SP_P): bank k reads its word (row r0, or r0 + 1 for
 * banks below b0), a barrel shifter rotates them by b0 (log2 SP_P stages of
 * 2:1 selects at fixed distances). */
static void spp_rotate(const spp_win_t win, uint32_t b0, uint32_t r0, q8_t x[SP_P]) {
#pragma HLS INLINE
    for (int k = 0; k < SP_P; k++) {
#pragma HLS UNROLL
        x[k] = win[k][r0 + ((uint32_t)k < b0 ? 1u : 0u)];
    }
    for (int s = 0; (1 << s) < SP_P; s++) {
#pragma HLS UNROLL
        if ((b0 >> s) & 1) {
            q8_t y[SP_P];
            for (int p = 0; p < SP_P; p++) {
#pragma HLS UNROLL
                y[p] = p + (1 << s) < SP_P ? x[p + (1 << s)] : x[p + (1 << s) - SP_P];
            }
            for (int p = 0; p < SP_P; p++) {
#pragma HLS UNROLL
                x[p] = y[p];
            }
        }
    }
}

/* The MAC array on the position-parallel path (see above): `total` steps of
 * SP_P products, one kept weight each (a row without one takes a masked
 * step per tile, so its outputs still get the bias):
 *   gather (FP, EB): row i > tile t > entry j; PE p: acc[p] += w * x[p];
 *     at the list's end the tile is quantized into out (word i * T + t).
 *   outer (WG): row i > entry j > tile t; the adder tree sums err * x over
 *     the PEs, a register over the tiles; tacc[e] takes it at the last. */
static void sp_steps(bool outer, const spp_plan &g, int nr, uint32_t total,
                     const uint32_t start[SP_OD + 1], const q8_t eval[SP_LIST],
                     const uint32_t eoq[SP_LIST], const uint16_t eom[SP_LIST],
                     const spp_win_t win, const spp_rows_t rb,
                     const bool vt[SP_OD][SP_P], const sp_out &o, const wide_t rbias[SP_OD],
                     spp_rows_t out, acc_t tacc[SP_LIST], q_stats &st) {
#pragma HLS INLINE off
    CTRAIN_LOOP(pe, 1, total);
    pe_sum_t acc[SP_P];
#pragma HLS ARRAY_PARTITION variable=acc type=complete
    pe_sum_t tsum = 0;
    int i = 0, t = 0;
    int rbase = 0;   /* i * T, counted */
    uint32_t j = 0;
    uint32_t len = start[1] - start[0];
step:
    for (uint32_t s = 0; s < total; s++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=65536
        /* a kept weight's accumulator is written once, at its last tile */
#pragma HLS DEPENDENCE variable=tacc type=inter false
#pragma HLS DEPENDENCE variable=out type=inter false
        const bool live = len > 0;
        const uint32_t e = start[i] + j;
        /* window address of PE 0: (word, bank) of the entry, plus the tile */
        const uint32_t r0 = (live ? eoq[e] : 0u) + (uint32_t)t;
        const uint32_t b0 = live ? (uint32_t)eom[e] : 0u;
        const q8_t w = live ? eval[e] : (q8_t)0;
        q8_t x[SP_P];
#pragma HLS ARRAY_PARTITION variable=x type=complete
        spp_rotate(win, b0, r0, x);
        const int ro = rbase + t;
        const uint32_t runs = live ? len : 1u;
        /* One multiplier per PE: the weight (gather) or its error (outer). */
        prod_t m[SP_P];
#pragma HLS ARRAY_PARTITION variable=m type=complete
        for (int p = 0; p < SP_P; p++) {
#pragma HLS UNROLL
            const q8_t a = outer ? rb[p][ro] : w;
            const q8_t xv = x[p];
            const prod_t mp = (prod_t)a * (prod_t)xv;
#if CTRAIN_SPARSE_POS_MUL_LUT
            /* the board's DSP slices go to the dense array (config) */
#pragma HLS BIND_OP variable=mp op=mul impl=fabric
#endif
            m[p] = mp;
        }
        if (outer) {
            int sum = 0;   /* adder tree, |sum| <= SP_P * 2^14 */
            for (int p = 0; p < SP_P; p++) {
#pragma HLS UNROLL
                sum += m[p];
            }
            tsum = (t == 0 ? pe_sum_t(0) : tsum) + sum;
            if (live && t == g.T - 1)
                tacc[e] = tacc[e] + (acc_t)tsum;
            if (++t == g.T) {
                t = 0;
                if (++j == runs) {
                    j = 0;
                    i++;
                    rbase += g.T;
                    len = i < nr ? start[i + 1] - start[i] : 0u;
                }
            }
            continue;
        }
        const bool last = j + 1 == runs;
        for (int p = 0; p < SP_P; p++) {
#pragma HLS UNROLL
            acc[p] = (j == 0 ? pe_sum_t(0) : acc[p]) + m[p];
            if (last) {
                wide_t v = (wide_t)acc[p];
                if (o.bias)
                    v += rbias[i];
                if (o.relu && v < 0) v = 0;
                if (o.mask && rb[p][ro] <= 0) v = 0;
                bool clamped;
                const q8_t q = sat8(rshift_round(v, o.sh_out), clamped);
                if (vt[t][p])
                    q_stats_add(st, v, q, clamped);
                out[p][ro] = q;
            }
        }
        if (++j == runs) {
            j = 0;
            if (++t == g.T) {
                t = 0;
                i++;
                rbase += g.T;
                len = i < nr ? start[i + 1] - start[i] : 0u;
            }
        }
    }
}

/* The position-parallel path of one instruction (g planned, the chunks
 * found by spp_chunks). */
static void spp_unit(ddr_t *ddr, const ctrain_insn_t &f, const spp_plan &g,
                     const sparse_index_t &ix, const uint16_t cstart[CTRAIN_MAX_CH + 1], int nch,
                     const sp_out &o, int sh_bias, int sh_b, q_stats &st) {
    /* Ping-pong buffers (index: item & 1): window, row buffer (WG errors,
     * EB masks), outputs.  Each bank one word per cycle. */
    static spp_win_t win[2];
#pragma HLS ARRAY_PARTITION variable=win type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=win type=complete dim=2
    /* the window banks in distributed RAM: the BRAM is the dense unit's */
#pragma HLS BIND_STORAGE variable=win type=ram_2p impl=lutram
    static spp_rows_t rbuf[2];
#pragma HLS ARRAY_PARTITION variable=rbuf type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=rbuf type=complete dim=2
    static spp_rows_t obuf[2];
#pragma HLS ARRAY_PARTITION variable=obuf type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=obuf type=complete dim=2
    static bool vt[SP_OD][SP_P];
#pragma HLS ARRAY_PARTITION variable=vt type=complete dim=2
    /* A chunk's lists and WG accumulators. */
    static q8_t eval[SP_LIST];
    static uint32_t eoq[SP_LIST];   /* window word of PE 0 at tile 0 */
    static uint16_t eom[SP_LIST];   /* its bank */
    static acc_t tacc[SP_LIST];
    static uint16_t hbuf[SP_LIST];
    static int32_t wbuf[SP_LIST];   /* EB: tpos; WG: quantized gradients */
    static q8_t vbuf[SP_LIST];
    /* the lists in distributed RAM: the BRAM is the dense unit's */
#pragma HLS BIND_STORAGE variable=eval type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=eoq type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=eom type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=tacc type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=hbuf type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=wbuf type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=vbuf type=ram_2p impl=lutram
    static uint32_t start[SP_OD + 1];
    static int32_t braw[SP_OD];
    static wide_t rbias[SP_OD];     /* FP: biases at e_acc; WG: bias gradients */
    /* small tables in distributed RAM */
#pragma HLS BIND_STORAGE variable=start type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=braw type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=rbias type=ram_2p impl=lutram
    spp_qm toff[MAX_KK];
#pragma HLS BIND_STORAGE variable=toff type=ram_2p impl=lutram
    int pj[SP_P], pu[SP_P], px[SP_P];
#pragma HLS ARRAY_PARTITION variable=pj type=complete
#pragma HLS ARRAY_PARTITION variable=pu type=complete
#pragma HLS ARRAY_PARTITION variable=px type=complete
    /* one instance of each item helper for the three stages */
#pragma HLS ALLOCATION function instances=spp_item_of limit=1
#pragma HLS ALLOCATION function instances=spp_rows_io limit=1
    const bool bias = o.bias;
    const uint32_t wsrc = g.wg ? f.src2 : f.src;

    /* tap -> window offset (EB: the flipped kernel) */
    int kx = 0;
    int row = 0;   /* ky * pw, counted */
    const int last = (g.kh - 1) * g.pw + g.kw - 1;
    CTRAIN_LOOP(ew, 1, g.kk);
spp_taps:
    for (int k = 0; k < g.kk; k++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=MAX_KK
        const int lin = row + kx;
        toff[k] = spp_qm_of((uint32_t)(g.eb ? last - lin : lin));
        if (++kx == g.kw) {
            kx = 0;
            row += g.pw;
        }
    }
    /* PE p's position in tile 0, counted */
    int cj = 0, cu = 0, cx = 0;
    CTRAIN_LOOP(ew, 1, SP_P);
spp_positions:
    for (int p = 0; p < SP_P; p++) {
#pragma HLS PIPELINE II=1
        pj[p] = cj;
        pu[p] = cu;
        px[p] = cx;
        if (++cx == g.pw) {
            cx = 0;
            if (++cu == g.hw) {
                cu = 0;
                cj++;
            }
        }
    }
    const int items = (g.n + g.nb - 1) / g.nb * g.bands;

spp_chunk:
    for (int ci = 0; ci < nch; ci++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_CH
        const int ra = cstart[ci], nr = cstart[ci + 1] - ra;
        const uint32_t z0 = spp_lists(ddr, f, g, ix, ra, nr, toff, start, eval, eoq, eom, hbuf,
                                      wbuf, vbuf);
        const uint32_t cnt = start[nr];
        uint32_t total = 0;
    spp_total:
        for (int i = 0; i < nr; i++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_OD
            const uint32_t len = start[i + 1] - start[i];
            total += (uint32_t)g.T * (len > 0 ? len : 1u);
        }
        if (!g.wg && bias) {
            agu_rd_i32<SP_OD>(ddr, f.src3 + 4 * ra, braw, nr);
            CTRAIN_LOOP(ew, 1, nr);
        spp_bias_shift:
            for (int i = 0; i < nr; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_OD
                rbias[i] = rshift_round(braw[i], sh_bias);
            }
        }
        if (g.wg) {
            CTRAIN_LOOP(ew, 1, cnt);
        spp_clear_taps:
            for (uint32_t t = 0; t < cnt; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_LIST
                tacc[t] = 0;
            }
            if (bias) {
                CTRAIN_LOOP(ew, 1, nr);
            spp_clear_bias:
                for (int i = 0; i < nr; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_OD
                    rbias[i] = 0;
                }
            }
        }
        /* The pipeline over items: load k+1 || compute k || store k-1. */
    spp_items:
        for (int k = -1; k <= items; k++) {
#pragma HLS LOOP_TRIPCOUNT min=2 max=4096
            const bool region = k >= 0 && k < items;
            if (region)
                CTRAIN_REGION_BEGIN();
            if (k + 1 < items) {   /* stage 0: load item k+1 */
                const spp_item it = spp_item_of(g, k + 1);
                const int h = (k + 1) & 1;
                spp_load_window(ddr, g, wsrc, it, win[h]);
                if (g.wg) {
                    spp_clear<SP_OD>(rbuf[h], (uint32_t)nr * g.T);
                    spp_rows_io(ddr, g, f.src, it, ra, nr, rbuf[h], false);
                    if (bias)
                        spp_bias_sum(g, nr, rbuf[h], rbias);
                } else if (o.mask) {
                    spp_rows_io(ddr, g, f.src3, it, ra, nr, rbuf[h], false);
                }
            }
            if (region) {          /* stage 1: compute item k */
                CTRAIN_STAGE(1);
                const spp_item it = spp_item_of(g, k);
                const int h = k & 1;
                if (!g.wg)
                    spp_valid(g, it, pj, pu, px, vt);
                sp_steps(g.wg, g, nr, total, start, eval, eoq, eom, win[h], rbuf[h], vt, o, rbias,
                         obuf[h], tacc, st);
                CTRAIN_STAGE(2);
            }
            if (!g.wg && k >= 1) {   /* stage 2: store item k-1 */
                const spp_item it = spp_item_of(g, k - 1);
                spp_rows_io(ddr, g, f.dst, it, ra, nr, obuf[(k - 1) & 1], true);
            }
            if (region)
                CTRAIN_REGION_END();
        }
        if (g.wg) {
            CTRAIN_LOOP(ew, 1, cnt);
        spp_quantize_grads:
            for (uint32_t t = 0; t < cnt; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_LIST
                const wide_t v = rshift_round(tacc[t].to_int64(), o.sh_out);
                bool clamped;
                const int32_t q = sat32(v, clamped);
                q_stats_add(st, v, q, clamped);
                wbuf[t] = q;
            }
            agu_wr_i32<SP_LIST>(ddr, f.dst + 4 * z0, wbuf, cnt);
            if (bias) {
                CTRAIN_LOOP(ew, 1, nr);
            spp_quantize_bias:
                for (int i = 0; i < nr; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_OD
                    const wide_t v = rshift_round(rbias[i], sh_b);
                    bool clamped;
                    const int32_t q = sat32(v, clamped);
                    q_stats_add(st, v, q, clamped);
                    braw[i] = q;
                }
                agu_wr_i32<SP_OD>(ddr, f.dst2 + 4 * ra, braw, nr);
            }
        }
    }
}

/* ===========================================================================
 * Row-tile path: every instruction the position-parallel path does not take
 * (stride > 1, windows or lists that do not fit).  Its stages, in dataflow
 * order, each a function below that sp_rows_unit inlines (so synthesis sees
 * the one FSM it saw before the split, and sp_rows_unit's ALLOCATION limits
 * cover the calls in them):
 *
 *   sp_rows_job_make   the plan, the epilogue's flags and the shifts
 *   sp_rows_survey     every row tile's list lengths: resident or streamed
 *   resident mode (all lists on chip, one channel group):
 *     sp_res_load      every tile's lists (and FP biases) on chip
 *     sp_res_sweep     per (batch tile, row, x tile) one window for all
 *                      tiles; sp_res_tile runs one tile against it
 *     sp_res_store     WG: the gradients and bias gradients of every tile
 *   streamed mode (row tile by row tile, lists in chunks, channel groups):
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

/* Every tile's list lengths (into tlen while they fit), each PE row's total
 * over the tiles in `most` and the tile count; returns whether all lists fit
 * on chip at once (each PE row holds its lists of every tile back to back, at
 * most SP_RTILES tiles) with every channel in one window: then the window of
 * a (batch tile, row, x tile) is loaded once for all row tiles (resident
 * mode), not once per tile. */
static bool sp_rows_survey(const ddr_t *ddr, const ctrain_insn_t &f, const sp_rows_job &j,
                           uint32_t tp[PE_ROWS * MAX_KK + 1], uint32_t start[PE_ROWS],
                           uint32_t len[PE_ROWS], uint32_t total[PE_ROWS],
                           uint16_t tlen[SP_RTILES][PE_ROWS], uint32_t &most, int &tiles) {
#pragma HLS INLINE
    const sp_plan &g = j.g;
    most = 0;
    tiles = 0;
clear_totals:
    for (int r = 0; r < PE_ROWS; r++) {
        /* one register per PE row */
#pragma HLS UNROLL
        total[r] = 0;
    }
bounds_tiles:
    for (int r0 = 0; r0 < g.rows; r0 += PE_ROWS) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_TILES
        const int vr = sp_tile_rows(g, r0);
        sp_read_bounds(ddr, f, g, j.ix, r0, vr, tp);
        sp_bounds(g, tp, vr, start, len);
    bounds_rows:
        for (int r = 0; r < PE_ROWS; r++) {
            /* one register per PE row */
#pragma HLS UNROLL
            if (tiles < SP_RTILES)   /* used only when resident: len <= SP_ENTRIES */
                tlen[tiles][r] = (uint16_t)len[r];
            total[r] += len[r];
            if (total[r] > most)
                most = total[r];
        }
        tiles++;
    }
    return g.groups == 1 && most <= SP_ENTRIES && tiles <= SP_RTILES;
}

/* Resident mode, load: every tile's lists (and FP biases, into tbias) on
 * chip, each PE row's back to back; WG also clears the accumulators of the
 * longest row's `most` entries. */
static void sp_res_load(const ddr_t *ddr, const ctrain_insn_t &f, const sp_rows_job &j, int tiles,
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
    for (int t = 0, r0 = 0; t < tiles; t++, r0 += PE_ROWS) {
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
                        acc_t racc[PE_ROWS][PE_COLS][SP_XT], acc_t tacc[PE_ROWS][SP_ENTRIES],
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
        if (longest > 0 || j.o.bias)
            sp_load_errors(ddr, f, j.o.point, r0, vr, b0, nb, y, x0, xc, lanes, rbias, j.o.bias);
        if (longest > 0)
            sp_row_steps(true, g, ent, base, clen, longest, x0, xc, v, 0, g.red, rowok, win, lanes,
                         nb, false, racc, tacc);
    } else {
        if (longest > 0)
            sp_row_steps(false, g, ent, base, clen, longest, x0, xc, v, 0, g.red, rowok, win, lanes,
                         nb, true, racc, tacc);
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
static void sp_res_sweep(ddr_t *ddr, const ctrain_insn_t &f, const sp_rows_job &j, int tiles,
                         uint32_t most, q8_t win[SP_COPIES][SP_WIN][PE_COLS],
                         bool rowok[CTRAIN_MAX_KERNEL], const sp_entry ent[PE_ROWS][SP_ENTRIES],
                         const uint16_t tlen[SP_RTILES][PE_ROWS], acc_t tbias[SP_RTILES][PE_ROWS],
                         uint32_t base[PE_ROWS], uint32_t clen[PE_ROWS], wide_t rbias[PE_ROWS],
                         acc_t racc[PE_ROWS][PE_COLS][SP_XT], acc_t tacc[PE_ROWS][SP_ENTRIES],
                         q8_t mbuf[PE_ROWS][PE_COLS][SP_XT], q8_t lanes[PE_ROWS][PE_COLS][SP_XT],
                         q_stats &st) {
#pragma HLS INLINE
    const sp_plan &g = j.g;
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
            res_tile:
                for (int t = 0, r0 = 0; t < tiles; t++, r0 += PE_ROWS) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_TILES
                    sp_res_tile(ddr, f, j, t, r0, b0, nb, y, x0, xc, v, rowok, win, ent, tlen,
                                tbias, base, clen, rbias, racc, tacc, mbuf, lanes, st);
                }
            }
        }
    }
}

/* Resident mode, WG store: every tile's kept-weight gradients in CSR order
 * and its bias gradients. */
static void sp_res_store(ddr_t *ddr, const ctrain_insn_t &f, const sp_rows_job &j, int tiles,
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
    for (int t = 0, r0 = 0; t < tiles; t++, r0 += PE_ROWS) {
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
                             acc_t racc[PE_ROWS][PE_COLS][SP_XT], acc_t tacc[PE_ROWS][SP_ENTRIES],
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
                                     win, lanes, nb, grp == 0 && c == 0, racc, tacc);
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
                         bool rowok[CTRAIN_MAX_KERNEL], acc_t racc[PE_ROWS][PE_COLS][SP_XT],
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
                                     win, lanes, nb, false, racc, tacc);
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

/* The row-tile path's top: its buffers, the survey, then resident or
 * streamed mode. */
static void sp_rows_unit(ddr_t *ddr, const ctrain_insn_t &f, const insn_exps &e, q_stats &st) {
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
    static acc_t racc[PE_ROWS][PE_COLS][SP_XT];
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
    int32_t braw[PE_ROWS];
    wide_t rbias[PE_ROWS];   /* FP: bias shifted to e_acc; WG: bias gradient */
#pragma HLS ARRAY_PARTITION variable=rbias type=complete
    uint32_t start[PE_ROWS], len[PE_ROWS], clen[PE_ROWS], base[PE_ROWS], total[PE_ROWS];
#pragma HLS ARRAY_PARTITION variable=base type=complete
#pragma HLS ARRAY_PARTITION variable=total type=complete

    uint32_t most;
    int tiles;
    if (sp_rows_survey(ddr, f, j, tp, start, len, total, tlen, most, tiles)) {
        sp_res_load(ddr, f, j, tiles, most, tp, start, len, base, clen, braw, ent, tbias, tacc);
        sp_res_sweep(ddr, f, j, tiles, most, win, rowok, ent, tlen, tbias, base, clen, rbias, racc,
                     tacc, mbuf, lanes, st);
        if (g.wg)
            sp_res_store(ddr, f, j, tiles, tp, start, len, base, rbias, tbias, tacc, obuf, st);
        return;
    }

    /* Streamed mode: row tile by row tile, lists longer than SP_ENTRIES in
     * chunks, channel groups; the window is loaded per row tile. */
clear_base:
    for (int r = 0; r < PE_ROWS; r++) {
        /* one register per PE row */
#pragma HLS UNROLL
        base[r] = 0;
    }
tile_rows:
    for (int r0 = 0; r0 < g.rows; r0 += PE_ROWS) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_TILES
        const int vr = sp_tile_rows(g, r0);
        sp_read_bounds(ddr, f, g, j.ix, r0, vr, tp);
        const uint32_t longest = sp_bounds(g, tp, vr, start, len);
    clear_clen:
        for (int r = 0; r < PE_ROWS; r++) {
            /* one register per PE row */
#pragma HLS UNROLL
            clen[r] = 0;
        }
        const uint32_t chunks = longest == 0 ? 1 : (longest + SP_ENTRIES - 1) / SP_ENTRIES;
        if (g.wg)
            sp_stream_wg(ddr, f, j, r0, vr, longest, chunks, tp, start, len, base, clen, rbias,
                         ent, win, rowok, racc, tacc, lanes, obuf, st);
        else
            sp_stream_gather(ddr, f, j, r0, vr, longest, chunks, tp, start, len, base, clen,
                             braw, rbias, ent, win, rowok, racc, tacc, mbuf, lanes, st);
    }
}

void sconv_unit(ddr_t *ddr, const ctrain_insn_t &f, const insn_exps &e, q_stats &st) {
    spp_plan pp;
    static uint16_t cstart[CTRAIN_MAX_CH + 1];
#pragma HLS BIND_STORAGE variable=cstart type=ram_2p impl=lutram
    int nch = 0;
    if (spp_make_plan(f, pp) && spp_chunks(ddr, f, pp, index_layout(f), cstart, nch)) {
        sp_out o;
        o.bias = (f.flags & FLAG_BIAS) != 0;
        o.relu = f.op == OP_SCONV_FP && (f.flags & FLAG_RELU);
        o.mask = pp.eb && (f.flags & FLAG_RELU_MASK);
        o.point = false;
        const wide_t e_acc = (wide_t)e.src + e.src2;
        o.sh_out = q_shift((wide_t)e.dst - e_acc);
        spp_unit(ddr, f, pp, index_layout(f), cstart, nch, o, q_shift(e_acc - e.src3),
                 q_shift((wide_t)e.dst - e.src), st);
        return;
    }
    sp_rows_unit(ddr, f, e, st);
}
