/*
 * Sparse convolution unit (see sconv.h): sconv_unit takes the
 * position-parallel path below when the instruction fits it, else the
 * row-tile path (sconv_rows.cpp, sp_rows_unit).
 */
#include "sconv_paths.h"
#include "agu.h"
#include "conv.h"
#include "mac_array.h"

/* ===========================================================================
 * Position-parallel path (docs/overlay.md "Sparse unit"): the array's
 * SP_P = PE_LANES x PE_ROWS x PE_COLS multipliers are output positions that
 * share one broadcast kept weight per cycle, so every PE walks the same list
 * (no imbalance) and a kept weight costs ceil(positions / SP_P) cycles.
 *
 * The window holds, for every reduction channel c, the padded source planes
 * of nb images (a band of br swept rows and its k_h - 1 halo rows), row
 * pitch pw = source width + ex (a row's right padding is the next row's
 * left padding), image j at j * qimg, channel c at c * cs; a whole plane's
 * slot shares its bottom padding rows with the next slot's top padding (so
 * EB's positions, padded by k-1-p = k-1, are all outputs).  A swept position is
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
 *           (bias, ReLU or mask), SP_Q per cycle.  A packing board takes two
 *           tiles a step (SP_POS_PAIR), one whose PEs have two DSP slices
 *           two kept weights (SP_POS_KPAIR).
 *   WG      row i (c_out) > its kept weights > tile: PE p multiplies the
 *           error at its position by its window input, an adder tree sums
 *           the SP_P products, the kept weight's accumulator takes the sum.
 *           Where a DSP48E2 makes two products sharing an operand
 *           (SP_WG_PAIR 2, mac2.h), a step takes two consecutive kept weights
 *           of the row: PE p's error times both window inputs (the window's
 *           second read port, a second rotator), two adder trees.
 *
 * Rows are taken in chunks whose lists fit SP_LIST entries and whose
 * outputs (errors) fit SP_OD words per bank; per chunk the items (nb images
 * x band) run as a ping-pong pipeline: load item k+1 || compute k || store
 * k-1, like the dense unit.  Instructions that do not fit (stride > 1, a
 * window of one image row that does not fit, a list longer than SP_LIST)
 * run on the row-tile path (sconv_rows.cpp, sp_rows_unit).
 */
#define SP_P (PE_LANES * PE_ROWS * PE_COLS)
#define SP_WD CTRAIN_SPARSE_WDEPTH
#define SP_OD CTRAIN_SPARSE_ODEPTH
#define SP_LIST CTRAIN_SPARSE_LIST
#define SP_VALS CTRAIN_SPARSE_VALS
#if SP_VALS < SP_LIST
#error "CTRAIN_SPARSE_VALS: the value block buffer also stages a chunk's values (at least CTRAIN_SPARSE_LIST)"
#endif
#define SP_BND 256   /* list pointers per burst of the chunking pass */
/* Kept weights the FP/WG list decode takes a cycle (spp_lists, session 35):
 * the columns arrive AGU_LANES(2) a beat, the decoded lists (eval, eoq,
 * eom) are banked by it, so a cycle writes one entry a bank; the tap
 * offsets a copy per two lanes (each copy's two ports). */
#define SPP_DL CTRAIN_SPARSE_DECODE
#define SPP_DL_COPIES ((SPP_DL + 1) / 2)
static_assert(SPP_DL <= AGU_LANES(2), "the decode's lanes read hbuf's banks, one each");
/* Kept weights per WG step (above): CTRAIN_DSP_INT8, the int8 products of a
 * DSP slice sharing an operand (2 on DSP48E2; 1 on DSP48E1, where mul2 would
 * be two multipliers). */
#define SP_WG_PAIR CTRAIN_DSP_INT8
/* Kept weights per FP/EB step: where a position PE's two products are two
 * DSP slices of its own (CTRAIN_SPARSE_POS_MACC, sconv.h), no operand is
 * shared, so a step takes two consecutive kept weights of the row, each
 * times its own window input (the second read port and rotator WG's pairs
 * use), each slice accumulating its half of the list; the drain adds the
 * halves (exact integers: the same sum).  A row's tile then costs
 * ceil(len / 2) steps whatever T's parity (session 30; a pair of tiles left
 * an odd T's last tile half idle: T = 1 on the ZCU104's 12x12 planes). */
#define SP_POS_KPAIR (1 + (CTRAIN_SPARSE_POS_MACC && SP_WG_PAIR == 2))
/* Tiles per FP/EB step elsewhere: on a packing board a step's shared operand
 * is the kept weight, its two products tiles t and t + 1 (PE p: positions p
 * and SP_P + p), so a kept weight costs ceil(T / SP_POS_PAIR) steps (and a
 * row one more per pair of tiles, sp_steps); 1 where kept weights pair. */
#define SP_POS_PAIR (CTRAIN_DSP_INT8 / SP_POS_KPAIR)
/* One MAC array unit per position PE (mac_array.h). */
static_assert(MAC_UNITS == SP_P, "the MAC array has a unit per position PE");
/* FP/EB quantizers of the position path: a finished tile's SP_P sums wait in
 * a hold register and are quantized SP_Q at a time, SP_QD steps a tile,
 * while the next tile accumulates (sp_steps).  A row's group of tiles (a
 * pair on a packing board) then takes at least SP_QD steps per tile, less
 * the pair's extra step (spp_group_steps), and a sub-chunk SP_QD steps a
 * tile of its last group after its last list. */
#define SP_Q CTRAIN_SPARSE_QUANT
#define SP_QD (SP_P / SP_Q)
static_assert(SP_P % SP_Q == 0, "CTRAIN_SPARSE_QUANT divides the position PEs");
#if CTRAIN_SPARSE_POS_MACC && CTRAIN_SPARSE_POS_MUL_LUT
#error "CTRAIN_SPARSE_POS_MACC: the position PEs' products in DSP slices, not LUTs"
#endif
/* Datapath widths as narrow as their bounds (each PE has its own adders):
 * an FP/EB sum of a row's kept weights (at most SP_LIST int8 x int8
 * products, |p| <= 2^14, restarted per group) and a WG adder tree over the
 * PEs (SP_P products) need log2 of the count + 15 bits and a sign. */
#define SP_ACC_BITS (CTRAIN_CLOG2(SP_LIST) + 16)
#define SP_SUM_BITS (CTRAIN_CLOG2(SP_P) + 16)
typedef ap_int<SP_ACC_BITS> spp_acc_t;
typedef ap_int<SP_SUM_BITS> spp_sum_t;
/* A drain lane's position counters (sp_steps), each as wide as its bound:
 * image j < pj + T (dj + 1) <= 512 + (SP_OD + 1) x 513 < 2^17 (18 bits
 * signed); row and column below twice a slot's rows and pitch (pw, hw <
 * 2^10, so < 2^11: 12 bits signed). */
typedef ap_int<18> spp_img_t;
typedef ap_int<12> spp_rc_t;
static_assert(SP_OD < 254, "spp_img_t holds a PE's image counter");
/* WG accumulators: even and odd kept weights in two banks, so a step's two
 * (entries e and e + 1) are one read-modify-write per bank. */
#define SP_LH ((SP_LIST + 1) / 2)
/* A band's rows are read as one burst of whole planes (the rows outside the
 * band skipped) when a plane skips at most this many beats, about what a
 * burst's latency costs (cycle_model.h RD_LATENCY): else a burst per plane. */
#define SPP_SKIP_BEATS 64
/* What an image costs a chunk beyond its window's beats, in the plan's
 * choice of images per item: a read and a write burst's latency. */
#define SPP_IMG_BEATS (2 * SPP_SKIP_BEATS)

typedef q8_t spp_win_t[SP_P][SP_WD];
typedef q8_t spp_rows_t[SP_P][SP_OD];

struct spp_plan {
    bool eb, wg;
    int n, rows, red, kh, kw, kk;
    int ey, ex;          /* the window's padding above / left of the source */
    int sh, sw, oh, ow;  /* source plane, swept plane */
    int pw;              /* window row pitch: sw + 2 ex */
    int nb, br, bands;   /* images and swept rows per item, bands */
    int tb, nbt;         /* a tail band after the bands: its swept rows (0: none), images per item */
    int hw, qimg, cs, T; /* slot rows per image, image slot, channel slot, tiles */
    int hwt, qimgt;      /* the tail band's slot rows and image slot */
    int tail;            /* padding past the last slot (shared with no next slot) */
    bool span, rspan;    /* bands read as whole planes, rows outside skipped: window, row buffer */
    bool join;           /* banded outputs complete their shared partial beats on chip (spp_wr) */
    int nmax;            /* rows per chunk the output buffer takes: SP_OD / T */
    int lii, sii;        /* cycles per beat of window loads, row-buffer bursts */
    int qj, qu, qx;      /* SP_Q positions as (images, rows, columns): a drain step */
    int qjt, qut, qxt;   /* ... in the tail band's slots */
};

/* A buffer address a as (word a / SP_P, bank a % SP_P): the loads, stores
 * and steps add these, so no lane divides.  As narrow as their values: a
 * word of an address below 2^20 (spp_qm_of; eoq keeps 16 bits), a bank
 * with room for the sum of two (spp_qm_add); the beat lanes step a cursor
 * of these in turn, a chain as long as the beat. */
#define SPP_M_BITS (CTRAIN_CLOG2(SP_P) + 1)
typedef ap_uint<16> spp_q_t;
typedef ap_uint<SPP_M_BITS> spp_m_t;
#define SPP_VI_BITS (SPP_M_BITS + 2)
typedef ap_int<SPP_VI_BITS> spp_vi_t;   /* spp_v_index's terms: (-SP_P, 3 SP_P) */
#define SPP_G_BITS (CTRAIN_CLOG2(SP_P / DDR_BEAT) + 1)
typedef ap_uint<SPP_G_BITS> spp_g_t;   /* a group of DDR_BEAT banks, and one more */
static_assert((1 << SPP_M_BITS) >= 2 * SP_P - 1, "spp_m_t holds the sum of two banks");
static_assert((1 << 20) / SP_P < (1 << 16), "spp_q_t holds the word of an address below 2^20");
static_assert((1 << (SPP_VI_BITS - 1)) >= 3 * SP_P, "spp_vi_t holds spp_v_index's terms");
static_assert((1 << SPP_G_BITS) >= 2 * (SP_P / DDR_BEAT), "spp_g_t holds a group and one more");
struct spp_qm {
    spp_q_t q;
    spp_m_t m;
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
    r.q = q;
    r.m = v - q * SP_P;
    return r;
}

/* Rows of an image slot for bands of br swept rows: the band and its
 * k_h - 1 halo rows; a whole plane (one band) shares its ey bottom padding
 * rows with the next slot's top padding (both zero). */
static int spp_slot_rows(const spp_plan &g, int br) {
#pragma HLS INLINE
    return br + g.kh - 1 - (br == g.oh ? g.ey : 0);
}

/* Whether a plan of channel slots cs apart and t tiles fits the window and
 * the output buffer: at most SP_OD tiles; the last channel read to the
 * last tile's end and the farthest tap (cs < 2^20 in any fitting plan:
 * narrow products). */
static bool spp_window_fits(const spp_plan &g, uint32_t cs, uint32_t t) {
#pragma HLS INLINE
    const uint64_t need = (uint64_t)((ap_uint<12>)(g.red - 1) * (ap_uint<20>)cs) + t * SP_P +
                          (uint32_t)((ap_uint<4>)(g.kh - 1) * (ap_uint<10>)g.pw) + g.kw - 1;
    return t <= SP_OD && need <= (uint64_t)SP_P * SP_WD;
}

/* Whether a band whose slot has `slot` rows reads its image's whole planes,
 * the other rows skipped (it skips at most SPP_SKIP_BEATS a plane): the
 * plan's span, and the band estimate's reads. */
static bool spp_spans(const spp_plan &g, int slot) {
#pragma HLS INLINE
    const int wskip = g.sh - slot;
    return wskip <= 0 || (uint32_t)wskip * g.sw <= SPP_SKIP_BEATS * DDR_BEAT;
}

/* Window capacity an item of nb images and br swept rows needs (its last
 * channel's slot read to the last tile's end plus the farthest tap) and its
 * tiles. */
static bool spp_fits(const spp_plan &g, int nb, int br, int &T) {
#pragma HLS INLINE off
    /* images < 2^11, rows and pitch < 2^10: narrow products */
    const int slot = spp_slot_rows(g, br);
    const uint32_t pos = (uint32_t)((ap_uint<11>)nb * (ap_uint<10>)slot) * (ap_uint<10>)g.pw;
    /* tiles up to the last image's last output position: its slot's junk
     * rows and columns past it are never an output (a tile more where they
     * straddle a tile's end) */
    const uint32_t used = pos - (uint32_t)((ap_uint<10>)(slot - br + 1) * (ap_uint<10>)g.pw) + g.ow;
    const uint32_t t = used / SP_P + (used % SP_P != 0 ? 1u : 0u);
    T = (int)(t < SP_OD + 1 ? t : SP_OD + 1);
    return spp_window_fits(g, pos, t);
}

/* The lane <-> bank path of the banked buffers (spp_rd, spp_wr): a step
 * moves the bytes of one beat that lie in one plane, which the plan keeps
 * within SPP_V = 3 W consecutive buffer addresses from the first bank of
 * their first address's group of W banks (group g0).  They go through V,
 * SPP_V bytes in registers at their offsets from that bank: a W:1 select
 * per V byte (a lane's byte), then bank (g, r) of column r takes V byte
 * ((g - g0) mod NG) W + r, the one of its column that can be its own: no
 * lane-to-bank crossbar, one access per bank and cycle. */
#define SPP_W DDR_BEAT
#define SPP_NG (SP_P / SPP_W)   /* bank groups of W */
#define SPP_V (3 * SPP_W)
static_assert(SP_P % SPP_W == 0 && SPP_NG >= 3, "the banked buffers hold V's three groups of W banks");

/* Steps per plane segment of a beat between DDR and a banked buffer of row
 * pitch `pitch` whose rows hold `len` bytes, `rpp` rows a plane: 1 when V
 * takes it, else 0 (the plan refuses the instruction).  A beat's bytes
 * within one plane touch at most min((W - 2) / len + 2, rpp) rows, their
 * addresses increasing and spanning at most W - 1 + (rows - 1) * (pitch -
 * len); V takes a span of 2 W from any bank of g0. */
static int spp_ii(int len, int pitch, int rpp) {
    /* inline: its two calls share the plan's one divider */
#pragma HLS INLINE
    const int fit = (DDR_BEAT - 2) / len + 2;
    const int rows = fit < rpp ? fit : rpp;
    int span = DDR_BEAT - 1;
    for (int r = 1; r < DDR_BEAT; r++) {
        /* (rows - 1) gaps, added: no multiplier for a plan constant */
#pragma HLS UNROLL
        if (r < rows)
            span += pitch - len;
    }
    return span <= 2 * SPP_W ? 1 : 0;
}

/* C-sim counters of a burst of len bytes at addr between DDR and a banked
 * buffer, `plane` bytes per plane (consecutive planes land far apart in the
 * buffer, so a beat that straddles a plane boundary takes one segment per
 * plane): ii cycles per beat and per plane boundary inside a beat. */
static void spp_count(bool write, uint32_t addr, uint32_t len, int run, int rpp, int ii,
                      int held = 0, int joined = 0) {
#ifndef __SYNTHESIS__
    const uint32_t plane = (uint32_t)run * (uint32_t)rpp;
    const uint64_t beats = len ? ((uint64_t)(addr % DDR_BEAT) + len + DDR_BEAT - 1) / DDR_BEAT : 0;
    uint64_t inner = 0;
    for (uint32_t o = plane; o < len; o += plane)
        inner += (addr + o) % DDR_BEAT != 0 ? 1 : 0;
    agu_count_loop(write, addr, len, (beats + inner) * (uint64_t)ii, 0, (uint64_t)held,
                   (uint64_t)joined);
#else
    (void)write; (void)addr; (void)len; (void)run; (void)rpp; (void)ii; (void)held; (void)joined;
#endif
}

/* Window beats of an image's band whose slot has `slot` rows (< 2^29): a
 * band that spans its planes (g.span's rule: it skips at most
 * SPP_SKIP_BEATS a plane) reads the image's planes in one burst, else its
 * rows a burst per channel; SPP_SKIP_BEATS a burst. */
static uint32_t spp_band_beats(const spp_plan &g, int slot) {
#pragma HLS INLINE
    return spp_spans(g, slot) ? (uint32_t)((ap_uint<12>)g.red * (ap_uint<20>)((ap_uint<10>)g.sh * (ap_uint<10>)g.sw) /
                             DDR_BEAT) + SPP_SKIP_BEATS
                : (uint32_t)((ap_uint<12>)g.red *
                             (ap_uint<17>)((ap_uint<10>)slot * (ap_uint<10>)g.sw / DDR_BEAT +
                                           SPP_SKIP_BEATS));
}

/* The band choices' estimate of a plan of B bands of br swept rows and T
 * tiles (one image an item), and where tb > 0 a tail band of tb rows after
 * them, nbt images an item, in units of 64: its PE steps (FP, EB
 * ceil(T / SP_POS_PAIR) a step group, WG T, per cnt64 kept-weight steps,
 * per item), its window reads (per chunk of rows, image and band:
 * spp_band_beats) and its swept rows' bursts (a row's band a burst: FP, EB
 * outputs written; WG errors, EB masks read).  `bound`: whether the steps
 * are at least either channel's beats, where the estimate is the one to
 * trust (the steps are what a band choice trades for reads). */
static uint64_t spp_band_cost(const spp_plan &g, int B, int br, int T, int tb, int nbt, int Tt,
                              ap_uint<19> cnt64, ap_uint<17> kl, bool mask, bool &bound) {
    /* inline: the plan's one multiplier and divider serve it (its FSM's states) */
#pragma HLS INLINE
    /* step groups of an item: of T tiles, of a tail item's Tt */
    const int tg = g.wg ? T : (T + SP_POS_PAIR - 1) / SP_POS_PAIR;
    const int tgt = g.wg ? Tt : (Tt + SP_POS_PAIR - 1) / SP_POS_PAIR;
    /* items <= 2^20 (batch x bands), tail items < 2^11, T <= SP_OD < 2^9: narrow products */
    const ap_uint<11> groups = tb > 0 ? (g.n + nbt - 1) / nbt : 0;   /* tail items */
    const ap_uint<30> gsteps = (ap_uint<20>)((ap_uint<11>)g.n * (ap_uint<10>)B) * (ap_uint<9>)tg +
                               (ap_uint<20>)(groups * (ap_uint<9>)tgt);
    const uint64_t comp = (uint64_t)gsteps * cnt64;
    const int nmax = SP_OD / (T > Tt ? T : Tt);   /* the output buffer's rows at the plan's T */
    const ap_uint<17> kr = (g.rows + nmax - 1) / nmax;
    const ap_uint<17> chunks = kr > kl ? kr : kl;
    /* the batch's window beats: its n B bands' and its n tails' (< 2^21
     * image bands of < 2^29 beats: narrow products) */
    const ap_uint<21> nbm = (ap_uint<11>)g.n * (ap_uint<10>)B;
    const uint64_t v = (uint64_t)(nbm * (ap_uint<29>)spp_band_beats(g, br + g.kh - 1)) +
                       (tb > 0 ? (uint64_t)((ap_uint<11>)g.n *
                                            (ap_uint<29>)spp_band_beats(g, tb + g.kh - 1))
                               : (uint64_t)0);
    uint64_t rd = (uint64_t)chunks * ((v + 63) >> 6);
    /* the swept rows: a burst per row and band, the plane's beats once */
    const int nbands = B + (tb > 0 ? 1 : 0);
    const uint32_t row = (uint32_t)((ap_uint<10>)g.oh * (ap_uint<10>)g.ow / DDR_BEAT) +
                         (uint32_t)((ap_uint<10>)nbands * (ap_uint<7>)SPP_SKIP_BEATS);
    const uint64_t rio = ((uint64_t)((ap_uint<11>)g.n * (ap_uint<12>)g.rows) * row + 63) >> 6;
    const uint64_t wr = g.wg ? 0 : rio;
    if (g.wg || mask)
        rd += rio;
    bound = comp >= rd && comp >= wr;
    const uint64_t m = rd > wr ? rd : wr;
    return comp > m ? comp : m;
}

/* Tail images whose pieces' partial beats spp_rows_wr joins (session 35):
 * each image of a tail group holds its own beats until the group's tail
 * item (SPP_JOIN_IMGS words a chunk row each, head and tail). */
#define SPP_JOIN_IMGS 2

/* Whether main bands of br rows and a tail of tb rows, nbt images an item,
 * join their pieces' partial beats: every piece a beat at least (two share
 * a beat at most) and the tail's images held apart. */
static bool spp_tail_joins(int ow, int br, int tb, int nbt) {
#pragma HLS INLINE
    /* rows and widths < 2^10: narrow products */
    return nbt <= SPP_JOIN_IMGS && (uint32_t)((ap_uint<10>)br * (ap_uint<10>)ow) >= DDR_BEAT &&
           (uint32_t)((ap_uint<10>)tb * (ap_uint<10>)ow) >= DDR_BEAT;
}

static bool spp_make_plan(const ctrain_insn_t &f, spp_plan &g) {
    /* the fit test, one instance for the four searches */
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
    /* padding of at most k - 1: a slot's positions (ow <= pw, oh <= rows) do
     * not overlap the next */
    if (g.ey < 0 || g.ex < 0 || g.ey > g.kh - 1 || g.ex > g.kw - 1)
        return false;
    /* a row's right padding is the next row's left padding (both zero) */
    g.pw = g.sw + g.ex;
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
    /* kept weights in steps: WG takes SP_WG_PAIR per step, FP and EB SP_POS_KPAIR */
    const uint32_t csteps = g.wg ? (f.count + SP_WG_PAIR - 1) / SP_WG_PAIR
                                 : (f.count + SP_POS_KPAIR - 1) / SP_POS_KPAIR;
    const ap_uint<19> cnt64 = (csteps + 63) >> 6;            /* count <= 2^24 */
    const ap_uint<17> kl = (f.count + SP_LIST - 1) / SP_LIST;
    if (g.bands > 1) {
        /* More bands where they take fewer steps (session 34): a shorter
         * band may need fewer tiles an image in all (CNV's L2 EB on the
         * KV260: 2 bands of 2 tiles -> 3 of 1), at the price of more
         * reads. Up to twice the bands, each balanced band height once,
         * one taken where the estimate (spp_band_cost) is lower and bound
         * by its steps; a tie keeps the fewer bands. */
        const bool mask = g.eb && (f.flags & FLAG_RELU_MASK);
        bool bound;
        int t0 = 0;
        spp_fits(g, 1, g.br, t0);
        uint64_t bcost = spp_band_cost(g, g.bands, g.br, t0, 0, 1, t0, cnt64, kl, mask, bound);
        const int b0 = g.bands, top = 2 * b0 < g.oh ? 2 * b0 : g.oh;
        int bb = b0, bbr = g.br;
    band_counts:
        for (int nbands = b0 + 1; nbands <= top; nbands++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
            const int cbr = (g.oh + nbands - 1) / nbands;
            int tc = 0;
            if ((g.oh + cbr - 1) / cbr != nbands || !spp_fits(g, 1, cbr, tc))
                continue;
            const uint64_t c = spp_band_cost(g, nbands, cbr, tc, 0, 1, tc, cnt64, kl, mask, bound);
            if (bound && c < bcost) {
                bcost = c;
                bb = nbands;
                bbr = cbr;
            }
        }
        g.bands = bb;
        g.br = bbr;
    }
    if (g.bands > 1) {
        /* Band boundaries on beat boundaries where the same bands allow it:
         * the band height rounded up to m rows (m * ow a multiple of the
         * beat; m a power of two, W over ow's largest power-of-two factor),
         * so a band's rows of a plane leave in whole beats, without the
         * read-merge of partial ones; only where an image's tiles stay as
         * many (the items' steps as before). */
        const int low = g.ow & -g.ow;
        const int m = low >= DDR_BEAT ? 1 : DDR_BEAT / low;
        const int bra = (g.br + m - 1) & ~(m - 1);
        int Ta = 0, Tb = 0;
        if (bra != g.br && bra * (g.bands - 1) < g.oh && spp_fits(g, 1, g.br, Tb) &&
            spp_fits(g, 1, bra, Ta) && Ta == Tb)
            g.br = bra;
    }
    /* A tail band of several images an item (session 35), where one image
     * an item is all the bands take: position tiles are SP_P positions, so
     * an image's band wastes its last tile's (on a packing board its last
     * pair's) unused positions, image after image.  CNV's L3 EB on the
     * AUP-ZU3: 144 positions an image, 3 tiles of 64, 2 tile pairs.  Main
     * bands of h rows (one image an item) and a tail band of the tb = oh
     * mod h rows left, nbt images an item in the main bands' channel slot:
     * there 10 rows (2 tiles, a pair) and 2 rows of 2 images (2 tiles, a
     * pair), 3 pairs for 2 images, not 4.  Every main height from the
     * tallest band down to half of it is costed (spp_band_cost) with every
     * count of images a tail item takes within the window (its own tiles,
     * the plan's T the larger: spp_item_of): any count where every piece of
     * a plane is whole beats (h x ow and the plane), else up to
     * SPP_JOIN_IMGS, whose partial beats join (a tail item's pieces come
     * after other images' bands: spp_rows_wr holds each tail image's
     * beats apart); one taken where the estimate is lower and bound by its
     * steps. */
    g.tb = 0;
    g.nbt = 1;
    int t2 = 0, tm = 0;
    const bool whole_beats = ((g.oh * g.ow) & (DDR_BEAT - 1)) == 0;   /* a plane is whole beats */
    if (g.n > 1 && !spp_fits(g, 2, g.br, t2)) {
        const bool mask = g.eb && (f.flags & FLAG_RELU_MASK);
        bool bound;
        int t0 = 0;
        spp_fits(g, 1, g.br, t0);
        uint64_t bcost = spp_band_cost(g, g.bands, g.br, t0, 0, 1, t0, cnt64, kl, mask, bound);
        const int hi = br < g.oh - 1 ? br : g.oh - 1;
        int bh = 0, bt = 0, bn = 0;
    tail_heights:
        for (int h = hi; h >= 1 && 2 * h >= br; h--) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
            const int bm = g.oh / h;
            const int tb = g.oh - bm * h;
            int th = 0;
            /* every piece of a plane whole beats, or at most SPP_JOIN_IMGS
             * tail images whose pieces' partial beats join (spp_tail_joins) */
            const bool whole = whole_beats && ((h * g.ow) & (DDR_BEAT - 1)) == 0;
            if (tb == 0 || (!whole && !spp_tail_joins(g.ow, h, tb, 2)) || !spp_fits(g, 1, h, th))
                continue;
            const int qt = (tb + g.kh - 1) * g.pw;
            const int qm = (h + g.kh - 1) * g.pw;
            const int most = whole || g.n < SPP_JOIN_IMGS ? g.n : SPP_JOIN_IMGS;
        tail_images:
            for (int nbt = 2; nbt <= most; nbt++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_BATCH
                /* its tiles: up to the last image's last output (a slot's
                 * last kh - 1 rows and its row's columns past ow are junk;
                 * < 2^20 in a fitting plan: narrow products) */
                const uint32_t used = (uint32_t)((ap_uint<11>)nbt * (ap_uint<20>)qt) -
                                      (uint32_t)(g.kh * g.pw) + g.ow;
                const int tt = (int)((used + SP_P - 1) / SP_P);
                const int T = th > tt ? th : tt;
                /* the tail's images in the channel slot, where they need more */
                const int cs = (int)((ap_uint<11>)nbt * (ap_uint<20>)qt) > qm
                                   ? (int)((ap_uint<11>)nbt * (ap_uint<20>)qt) : qm;
                /* the window as spp_fits counts it (both grow with nbt) */
                if (!spp_window_fits(g, (uint32_t)cs, (uint32_t)T))
                    break;
                const uint64_t c = spp_band_cost(g, bm, h, th, tb, nbt, tt, cnt64, kl, mask, bound);
                if (bound && c < bcost) {
                    bcost = c;
                    bh = h;
                    bt = T;
                    bn = nbt;
                }
            }
        }
        if (bh > 0) {
            g.bands = g.oh / bh;
            g.br = bh;
            g.tb = g.oh - g.bands * bh;
            g.nbt = bn;
            tm = bt;
        }
    }
    /* Images per item: the fewest estimated cycles, the larger of compute
     * (items x T steps per kept weight; FP, EB ceil(T / SP_POS_PAIR) per
     * SP_POS_KPAIR kept weights, WG per SP_WG_PAIR kept weights) and
     * window loads (every chunk of rows reloads every image's planes,
     * SPP_IMG_BEATS more per image;
     * chunks: the rows SP_OD / T words of output buffer take, or SP_LIST
     * kept weights, whichever more), among those that fit; both in units of
     * 64 (kept weights, beats), so the products stay narrow. */
    const ap_uint<23> nred = (ap_uint<11>)g.n * (ap_uint<12>)g.red;
    const ap_uint<20> plane = (ap_uint<10>)g.sh * (ap_uint<10>)g.sw;
    const ap_uint<43> wall = nred * plane;
    const uint64_t wsum = (uint64_t)(wall / DDR_BEAT) + (uint32_t)((ap_uint<11>)g.n * (ap_uint<9>)SPP_IMG_BEATS);
    const ap_uint<32> wb = (wsum + 63) >> 6;                 /* < 2^31 */
    int best = g.tb > 0 ? 1 : 0, bt = tm;   /* a tail: one image a main item */
    uint64_t bc = 0;
batch_images:
    for (int nb = 1; nb <= g.n && g.tb == 0; nb++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_BATCH
        if (!spp_fits(g, nb, g.br, T))
            break;
        /* items <= 2^20 (batch x bands), T <= SP_OD + 1 < 2^9; FP, EB:
         * SP_POS_PAIR tiles per step */
        const int tp = g.wg ? T : (T + SP_POS_PAIR - 1) / SP_POS_PAIR;
        const ap_uint<29> steps = (ap_uint<20>)((g.n + nb - 1) / nb * g.bands) * (ap_uint<9>)tp;
        const int nmax = SP_OD / T;   /* T <= SP_OD in a fitting plan */
        const ap_uint<17> kr = (g.rows + nmax - 1) / nmax;
        const uint64_t comp = (uint64_t)(steps * cnt64);
        const uint64_t mem = (uint64_t)((kr > kl ? kr : kl) * wb);
        const uint64_t cost = comp > mem ? comp : mem;
        if (best == 0 || cost < bc) {
            best = nb;
            bt = T;
            bc = cost;
        }
    }
    g.nb = best;
    g.T = bt;
    const bool banded = g.bands > 1 || g.tb > 0;
    g.hw = spp_slot_rows(g, g.br);
    g.qimg = g.hw * g.pw;
    g.hwt = g.tb + g.kh - 1;   /* the tail is never the whole plane */
    g.qimgt = g.hwt * g.pw;
    g.tail = (banded ? 0 : g.ey * g.pw) + g.ex;
    g.span = banded && spp_spans(g, g.br + g.kh - 1);   /* the source rows a band skips, at least */
    g.rspan = banded && (uint32_t)(g.oh - g.br) * g.ow <= SPP_SKIP_BEATS * DDR_BEAT;
    /* one image an item and every band's piece of a plane at least a beat
     * (the last band the shortest): a beat is shared by two pieces at most;
     * with a tail band its images' beats held apart (spp_tail_joins) */
    g.join = g.nb == 1 && (g.tb == 0 ? agu_bands_join(g.oh, g.bands, g.br, g.ow)
                                      : spp_tail_joins(g.ow, g.br, g.tb, g.nbt));
    /* the tail's images in the main bands' channel slot, where they need more */
    g.cs = g.tb > 0 && g.nbt * g.qimgt > g.qimg ? g.nbt * g.qimgt : g.nb * g.qimg;
    g.nmax = SP_OD / g.T;
    g.lii = spp_ii(g.sw, g.pw, g.sh);
    g.sii = spp_ii(g.ow, g.pw, g.oh);
    if (g.lii == 0 || g.sii == 0)   /* a beat's plane segment wider than V */
        return false;
    g.qj = SP_Q / g.qimg;
    const int rem = SP_Q - g.qj * g.qimg;
    g.qu = rem / g.pw;
    g.qx = rem - g.qu * g.pw;
    const int qt = g.tb > 0 ? g.qimgt : g.qimg;   /* a tail's slot (kh - 1 rows may be none) */
    g.qjt = SP_Q / qt;
    const int remt = SP_Q - g.qjt * qt;
    g.qut = remt / g.pw;
    g.qxt = remt - g.qut * g.pw;
    return true;
}

/* The chunking pass: every list's length from its pointers (FP, WG: rowptr;
 * EB: tptr, a list per k_h*k_w columns), SP_BND per burst; chunks of rows
 * [cstart[i], cstart[i+1]) of at most SP_OD rows and SP_LIST entries.  False
 * when a single list exceeds SP_LIST.  Pieces of at most nmax rows (what the
 * output buffer takes) are cut first, then merged while the merged chunk's
 * lists fit SP_LIST (and its rows SP_OD, the per-row tables): a chunk's
 * window loads once per item for all its pieces (spp_unit's sub-chunks). */
static bool spp_chunks(const ddr_t *ddr, const ctrain_insn_t &f, const spp_plan &g,
                       const sparse_index_t &ix, uint16_t cstart[CTRAIN_MAX_CH + 1], int &nch) {
    static uint32_t pbuf[SP_BND];
#pragma HLS BIND_STORAGE variable=pbuf type=ram_2p impl=lutram
    const uint32_t step = g.eb ? (uint32_t)g.kk : 1u;
    const uint32_t words = (uint32_t)((ap_uint<12>)g.rows * (ap_uint<7>)step) + 1;   /* narrow */
    const uint32_t at = (uint32_t)(g.eb ? ix.tptr : ix.rowptr);
    uint32_t prev = 0, first = 0, inrow = 0;
    uint32_t mfirst = 0;   /* the merged chunk's first entry */
    int row = 0, nr = 0, mrow = 0;
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
                mfirst = v;
                continue;
            }
            if (v - prev > SP_LIST)
                ok = false;
            if (nr > 0 && (nr == g.nmax || v - first > SP_LIST)) {
                /* a piece ends at row: it joins the merged chunk if both fit */
                if (prev - mfirst > SP_LIST || row - mrow > SP_OD) {
                    cstart[nch++] = (uint16_t)mrow;
                    mrow = row - nr;
                    mfirst = first;
                }
                first = prev;
                nr = 0;
            }
            nr++;
            row++;
            prev = v;
        }
    }
    /* the last piece */
    if (prev - mfirst > SP_LIST || row - mrow > SP_OD) {
        cstart[nch++] = (uint16_t)mrow;
        mrow = row - nr;
    }
    cstart[nch++] = (uint16_t)mrow;
    cstart[nch] = (uint16_t)row;
    return ok;
}

/* EB's values: eval[t] = vals[wbuf[t]] (wbuf: the CSR positions of the
 * chunk's cnt entries).  The values array is scanned in SP_VALS-byte blocks,
 * each a beat per cycle into vbuf, every entry looking its value up in each
 * block: a cycle an entry a block.  A gather (a one-byte read an entry)
 * takes a request slot, AGU_II_REQ cycles an entry at the port's
 * outstanding reads: past SPP_SCAN blocks the gathers are cheaper (8 until
 * session 35: CNV's L3 EB on the AUP-ZU3 scanned 8 blocks of 4096 values,
 * 8 cycles an entry for the gathers' 4), and the list decode issues them
 * (spp_lists), in the cycles its requests take. */
#define SPP_SCAN AGU_II_REQ
static void spp_value_scan(const ddr_t *ddr, const ctrain_insn_t &f, uint32_t cnt,
                           const int32_t wbuf[SP_LIST], q8_t vbuf[SP_VALS], q8_t eval[SP_LIST]) {
spp_value_blocks:
    for (uint32_t v0 = 0; v0 < f.count; v0 += SP_VALS) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SPP_SCAN
        const uint32_t vlen = f.count - v0 < SP_VALS ? f.count - v0 : (uint32_t)SP_VALS;
        agu_rd_wide<q8_t, SP_VALS, 1>(ddr, f.src2 + v0, vbuf, vlen);
        CTRAIN_LOOP(ew, 1, cnt);
    spp_value_find:
        for (uint32_t t = 0; t < cnt; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_LIST
            const uint32_t d = (uint32_t)wbuf[t] - v0;
            if (d < vlen)
                eval[t] = vbuf[d];
        }
    }
}

/* One chunk's lists on chip: per kept weight its value and window offset
 * c * cs + toff[tap]; start[i] the first entry of row i (start[nr]: the
 * chunk's count).  FP, WG: the CSR rows [ra, ra+nr), contiguous (one burst
 * each of rowptr, col and, FP, vals); EB: the transposed index's entries of
 * input channels [ra, ra+nr), contiguous (one burst each of trow and tpos),
 * each channel's k_h*k_w column pointers read to find the taps, the values
 * found through tpos (gathered by the decode, or spp_value_scan).  Staging
 * buffers are partitioned by the beat: the lists arrive a beat per cycle.
 * Returns the chunk's first CSR (or transposed) position. */
/* A channel's column start relative to its first, at most its list
 * (<= SP_LIST entries). */
typedef ap_uint<CTRAIN_CLOG2(SP_LIST) + 1> spp_tap_t;

static uint32_t spp_lists(const ddr_t *ddr, const ctrain_insn_t &f, const spp_plan &g,
                          const sparse_index_t &ix, int ra, int nr,
                          const spp_qm toff[SPP_DL_COPIES][MAX_KK],
                          uint32_t start[SP_OD + 1], q8_t eval[SP_LIST], uint16_t eoq[SP_LIST],
                          uint16_t eom[SP_LIST],
                          uint16_t hbuf[SP_LIST], int32_t wbuf[SP_LIST], q8_t vbuf[SP_VALS]) {
    static uint32_t tpr[MAX_KK + 1];
#pragma HLS BIND_STORAGE variable=tpr type=ram_2p impl=lutram
    const uint32_t kk = (uint32_t)g.kk;
    const ap_uint<20> cs = g.cs;
    if (!g.eb) {
        agu_rd_u32<SP_OD + 1>(ddr, f.aux + (uint32_t)ix.rowptr + 4 * ra, start, nr + 1);
        const uint32_t z0 = start[0], cnt = start[nr] - z0;
        if (!g.wg)
            agu_rd_wide<q8_t, SP_VALS, 1>(ddr, f.src2 + z0, vbuf, cnt);
        agu_rd_wide<uint16_t, SP_LIST, 2>(ddr, f.aux + (uint32_t)ix.col + 2 * z0, hbuf, cnt);
        sp_div16 dkk = sp_div_make(kk);
        CTRAIN_LOOP(ew, 1, (cnt + SPP_DL - 1) / SPP_DL);
    spp_decode_csr:
        for (uint32_t t0 = 0; t0 < cnt; t0 += SPP_DL) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_LIST/SPP_DL
            for (int l = 0; l < SPP_DL; l++) {
#pragma HLS UNROLL
                const uint32_t te = t0 + l;   /* lane l's entry: bank l of each list */
                if (te < cnt) {
                    const uint32_t col = hbuf[te];
                    const uint32_t ch = sp_div(dkk, col);
                    /* ch < 2^16, kk <= MAX_KK: a narrow product, one DSP slice */
                    const uint32_t tap = col - (uint32_t)((sp_idx_t)ch * (ap_uint<8>)kk);
                    eval[te] = g.wg ? (q8_t)0 : vbuf[te];
                    const spp_qm a =
                        spp_qm_add(spp_qm_of((uint32_t)((ap_uint<12>)ch * cs)), toff[l / 2][tap]);
                    eoq[te] = (uint16_t)a.q;
                    eom[te] = (uint16_t)a.m;
                }
            }
        }
    spp_rebase:
        for (int i = 0; i <= nr; i++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_OD+1
            start[i] -= z0;
        }
        return z0;
    }
    /* the chunk's transposed positions [z0, z1): its first and last channel's pointers */
    const uint32_t tp = f.aux + (uint32_t)ix.tptr;
    agu_rd_u32<MAX_KK + 1>(ddr, tp + 4 * (uint32_t)((ap_uint<12>)(ra + nr) * (ap_uint<7>)kk), tpr, 1);
    const uint32_t z1 = tpr[0];
    agu_rd_u32<MAX_KK + 1>(ddr, tp + 4 * (uint32_t)((ap_uint<12>)ra * (ap_uint<7>)kk), tpr, 1);
    const uint32_t z0 = tpr[0], cnt = z1 - z0;
    /* the values gathered by the decode, or scanned after it (spp_value_scan) */
    const bool gather = f.count > (uint32_t)SPP_SCAN * SP_VALS;
    agu_rd_wide<uint16_t, SP_LIST, 2>(ddr, f.aux + (uint32_t)ix.trow + 2 * z0, hbuf, cnt);
    agu_rd_wide<int32_t, SP_LIST, 4>(ddr, f.aux + (uint32_t)ix.tpos + 4 * z0, wbuf, cnt);
    /* The channel's column starts in registers, relative to its first (the
     * index check keeps them non-decreasing): the decode compares every one
     * each step, more reads than tpr's two ports give. */
    spp_tap_t tpk[MAX_KK];
#pragma HLS ARRAY_PARTITION variable=tpk type=complete
spp_rows_eb:
    for (int i = 0; i < nr; i++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_OD
        agu_rd_u32<MAX_KK + 1>(ddr, tp + 4 * (uint32_t)((ap_uint<12>)(ra + i) * (ap_uint<7>)kk), tpr,
                               kk + 1);
        const uint32_t p0 = tpr[0];
        const uint32_t n = p0 - z0, len = tpr[kk] - p0;
        start[i] = n;
        if (len > 0)
            sp_tap_starts<spp_tap_t>(tpr, 0, p0, kk, tpk);
        /* gathering, the loop runs at its gathers' rate (agu.h) */
        if (gather)
            CTRAIN_LOOP_GATHERS(ew, len);
        else
            CTRAIN_LOOP(ew, 1, len);
    spp_decode_csc:
        for (uint32_t t = 0; t < len; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_LIST
            const uint32_t tap = sp_tap_of<spp_tap_t>(tpk, kk, (spp_tap_t)t);
            const spp_qm a =
                spp_qm_add(spp_qm_of((uint32_t)((ap_uint<12>)hbuf[n + t] * cs)), toff[0][tap]);
            eoq[n + t] = (uint16_t)a.q;
            eom[n + t] = (uint16_t)a.m;
            if (gather)
                eval[n + t] = agu_rd_byte(ddr, f.src2 + (uint32_t)wbuf[n + t]);
        }
    }
    start[nr] = cnt;
    if (!gather)
        spp_value_scan(ddr, f, cnt, wbuf, vbuf, eval);
    return z0;
}

/* One item: images [b0, b0 + nbi), swept rows [y0, y0 + bri), its image
 * slot's rows and words (hw, qimg: the plan's, or its tail band's). Without
 * a tail band item k is image group k / bands, band k % bands; with one,
 * per group of nbt images each image's bands, then the group's tail item. */
struct spp_item {
    int b0, nbi, y0, bri;
    bool tl;   /* the tail band's */
    int gj;    /* its first image's place in its tail group (its joins' held beats) */
    int hw, qimg;
    int T;     /* tiles up to its last output position (<= the plan's T) */
};

static spp_item spp_item_of(const spp_plan &g, int k) {
#pragma HLS INLINE off
    spp_item it;
    /* groups < 2^11, bands and rows < 2^10, images < 2^11: narrow products */
    if (g.tb == 0) {
        const int grp = k / g.bands;   /* once per item */
        const int band = k - (dim_t)grp * (dim_t)g.bands;
        it.b0 = (dim_t)grp * (dim_t)g.nb;
        it.nbi = g.n - it.b0 < g.nb ? g.n - it.b0 : g.nb;
        it.y0 = (dim_t)band * (dim_t)g.br;
        it.bri = g.oh - it.y0 < g.br ? g.oh - it.y0 : g.br;
        it.tl = false;
        it.gj = 0;
    } else {
        /* a whole group's items (< 2^21: nbt < 2^11 images, bands < 2^10) */
        const int per = (int)((ap_uint<11>)g.nbt * (ap_uint<10>)g.bands) + 1;
        const int grp = k / per;               /* once per item */
        const int r = k - (int)((ap_uint<11>)grp * (ap_uint<21>)per);
        const int g0 = (dim_t)grp * (dim_t)g.nbt;
        const int ng = g.n - g0 < g.nbt ? g.n - g0 : g.nbt;
        it.tl = r == (int)((ap_uint<11>)ng * (ap_uint<10>)g.bands);
        const int j = it.tl ? 0 : r / g.bands;
        it.gj = j;
        it.b0 = g0 + j;
        it.nbi = it.tl ? ng : 1;
        const int band = it.tl ? g.bands : r - (int)((ap_uint<11>)j * (ap_uint<10>)g.bands);
        it.y0 = (dim_t)band * (dim_t)g.br;
        it.bri = it.tl ? g.tb : g.br;
    }
    it.hw = it.tl ? g.hwt : g.hw;
    it.qimg = it.tl ? g.qimgt : g.qimg;
    /* its last image's last output position, as spp_fits counts (< 2^20 in
     * a fitting plan: narrow products), in tiles */
    const uint32_t used = (uint32_t)((ap_uint<11>)(it.nbi - 1) * (ap_uint<20>)it.qimg) +
                          (uint32_t)((ap_uint<10>)(it.bri - 1) * (ap_uint<10>)g.pw) + g.ow;
    it.T = (int)((used + SP_P - 1) / SP_P);   /* a constant divisor */
    return it;
}

/* One (item, sub-chunk) pair of a chunk's pipeline: item k, sub-chunk s,
 * its rows [i0, i0 + nr) of the chunk (S sub-chunks of q rows, the last
 * fewer), stepped by counters (no division per pair). */
struct spp_pair {
    int k, s, i0, nr;
};

static spp_pair spp_pair_first(int q, int rows) {
#pragma HLS INLINE
    spp_pair p;
    p.k = 0;
    p.s = 0;
    p.i0 = 0;
    p.nr = q < rows ? q : rows;
    return p;
}

static void spp_pair_next(int S, int q, int rows, spp_pair &p) {
#pragma HLS INLINE
    p.i0 += q;
    if (++p.s == S) {
        p.s = 0;
        p.i0 = 0;
        p.k++;
    }
    p.nr = rows - p.i0 < q ? rows - p.i0 : q;
}

/* How a burst's bytes walk a banked buffer: runs of `run` bytes, `rpp` runs
 * per plane, of which runs [r0, r1) are kept, `pitch` apart from dst, planes
 * `pstep` apart (addresses as spp_qm: the lanes only add and compare). */
typedef ap_uint<11> spp_run_t;   /* a run's bytes, a plane's runs: <= CTRAIN_MAX_DIM, and one past */
static_assert(CTRAIN_MAX_DIM < 2047, "spp_run_t holds a cursor's column and run");
struct spp_walk {
    spp_qm dst, pitch, pstep;
    spp_run_t run, rpp, r0, r1;
};

struct spp_cursor {
    spp_qm at, row, plane;
    spp_run_t x, r;
};

static void spp_next(const spp_walk &w, spp_cursor &k) {
#pragma HLS INLINE
    if (++k.x == w.run) {
        k.x = 0;
        if (++k.r == w.rpp) {
            k.r = 0;
            k.plane = spp_qm_add(k.plane, w.pstep);
            k.row = k.plane;
        } else if (k.r > w.r0) {   /* past a kept run */
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

/* One step's lane cursor: the lanes [l0, hi) of the beat up to the end of
 * the plane the first is in (a plane that ends inside the beat ends the
 * step; the next starts at `next`), their buffer addresses by the walk,
 * each kept one's offset from the first kept one (a0, whose bank's column
 * is o0): V index o0 + offset (< SPP_V by the plan). */
struct spp_step {
    spp_qm a0;
    bool have, stop;
    int next;
};

static int spp_v_index(const spp_step &st, const spp_qm &at) {
#pragma HLS INLINE
    /* at is less than 2 W past a0: the same word, or the next one's */
    const spp_q_t q0 = st.a0.q;
    const spp_m_t m0 = st.a0.m, m = at.m;
    const spp_vi_t base = (spp_vi_t)(m0 & (SPP_W - 1)) + (at.q != q0 ? (spp_vi_t)SP_P : (spp_vi_t)0);
    const spp_vi_t t = base + m - m0;
    return t;
}

/* DDR -> banked buffer (len bytes at addr): a step per cycle (spp_count:
 * a beat, and one more per plane boundary inside a beat). */
template <int D>
static void spp_rd(const ddr_t *ddr, uint32_t addr, uint32_t len, q8_t buf[SP_P][D],
                   const spp_walk &w, int ii) {
    spp_count(false, addr, len, w.run, w.rpp, ii);
    if (len == 0)
        return;
    const agu_burst gb = agu_plan(addr, len);
    spp_cursor k = spp_walk_make(w);
    uint32_t b = 0;
    int l0 = agu_lo(gb, 0);
    beat_t v = beat_zero();
spp_rd_steps:
    while (b < gb.beats) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=2*SP_P*D/DDR_BEAT
        const int lo = agu_lo(gb, b), hi = agu_hi(gb, b);
        if (l0 == lo)   /* the beat's first step */
            v = ddr_get(ddr, gb.first + b, lo, hi);
        /* V byte t at [t / W][t % W]: bank column r reads only [.][r] */
        q8_t V[3][SPP_W];
        bool Vk[3][SPP_W];
#pragma HLS ARRAY_PARTITION variable=V type=complete dim=0
#pragma HLS ARRAY_PARTITION variable=Vk type=complete dim=0
        for (int d = 0; d < 3; d++) {
#pragma HLS UNROLL
            for (int r = 0; r < SPP_W; r++) {
#pragma HLS UNROLL
                V[d][r] = 0;
                Vk[d][r] = false;
            }
        }
        spp_step st;
        st.a0 = k.at;
        st.have = false;
        st.stop = false;
        st.next = hi;
        for (int l = 0; l < DDR_BEAT; l++) {
#pragma HLS UNROLL
            if (l >= l0 && l < hi && !st.stop) {
                if (k.r >= w.r0 && k.r < w.r1) {
                    if (!st.have) {
                        st.a0 = k.at;
                        st.have = true;
                    }
                    const int t = spp_v_index(st, k.at);
                    V[t / SPP_W][t % SPP_W] = (q8_t)beat_lane(v, l);
                    Vk[t / SPP_W][t % SPP_W] = true;
                }
                spp_next(w, k);
                if (k.x == 0 && k.r == 0 && l + 1 < hi) {   /* a plane ends inside the beat */
                    st.stop = true;
                    st.next = l + 1;
                }
            }
        }
        /* every bank its column's V byte */
        const spp_g_t g0 = st.a0.m / SPP_W;
        for (int g = 0; g < SPP_NG; g++) {
#pragma HLS UNROLL
            const spp_g_t d = g >= g0 ? (spp_g_t)(g - g0) : (spp_g_t)(g - g0 + SPP_NG);
            const spp_g_t dd = d < 3 ? d : (spp_g_t)0;   /* V's group of this bank group, if any */
            for (int r = 0; r < SPP_W; r++) {
#pragma HLS UNROLL
                if (d < 3 && Vk[dd][r])
                    buf[g * SPP_W + r][st.a0.q + (g < g0 ? 1 : 0)] = V[dd][r];
            }
        }
        if (st.stop) {
            l0 = st.next;
        } else {
            b++;
            l0 = b < gb.beats ? agu_lo(gb, b) : 0;
        }
    }
}

/* Banked buffer -> DDR (len bytes at addr), as spp_rd: every bank reads its
 * word at the step's row (the next one for the groups before g0), V byte
 * d W + r takes column r's of group g0 + d, a lane its V byte.  A partial
 * first beat (sm) or last beat (em) of chunk row r's piece is put, held or
 * joined (agu.h ddr_put_edge). */
template <int D>
static void spp_wr(ddr_t *ddr, uint32_t addr, uint32_t len, const q8_t buf[SP_P][D],
                   const spp_walk &w, int ii, beat_t tail[SP_OD], beat_t head[SP_OD], int r,
                   agu_edge sm, agu_edge em) {
    int held, joined;
    agu_edge_counts(addr, len, sm, em, held, joined);
    spp_count(true, addr, len, w.run, w.rpp, ii, held, joined);
    if (len == 0)
        return;
    const agu_burst gb = agu_plan(addr, len);
    spp_cursor k = spp_walk_make(w);
    uint32_t b = 0;
    int l0 = agu_lo(gb, 0);
    beat_t v = beat_zero();
spp_wr_steps:
    while (b < gb.beats) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=2*SP_P*D/DDR_BEAT
        const int lo = agu_lo(gb, b), hi = agu_hi(gb, b);
        spp_step st;
        st.a0 = k.at;
        st.have = true;
        st.stop = false;
        st.next = hi;
        const spp_g_t g0 = st.a0.m / SPP_W;
        q8_t rd[SPP_NG][SPP_W];
#pragma HLS ARRAY_PARTITION variable=rd type=complete dim=0
        for (int g = 0; g < SPP_NG; g++) {
#pragma HLS UNROLL
            const spp_q_t q = st.a0.q + (g < g0 ? 1u : 0u);
            for (int r = 0; r < SPP_W; r++) {
#pragma HLS UNROLL
                rd[g][r] = q < (uint32_t)D ? buf[g * SPP_W + r][q] : (q8_t)0;
            }
        }
        /* V byte t at [t / W][t % W] */
        q8_t V[3][SPP_W];
#pragma HLS ARRAY_PARTITION variable=V type=complete dim=0
        for (int d = 0; d < 3; d++) {
#pragma HLS UNROLL
            const spp_g_t g = g0 + d < SPP_NG ? (spp_g_t)(g0 + d) : (spp_g_t)(g0 + d - SPP_NG);
            for (int r = 0; r < SPP_W; r++) {
#pragma HLS UNROLL
                V[d][r] = rd[g][r];
            }
        }
        for (int l = 0; l < DDR_BEAT; l++) {
#pragma HLS UNROLL
            if (l >= l0 && l < hi && !st.stop) {
                const int t = spp_v_index(st, k.at);
                set_lane(v, l, (uint8_t)V[t / SPP_W][t % SPP_W]);
                spp_next(w, k);
                if (k.x == 0 && k.r == 0 && l + 1 < hi) {   /* a plane ends inside the beat */
                    st.stop = true;
                    st.next = l + 1;
                }
            }
        }
        if (st.stop) {
            l0 = st.next;
        } else {
            /* a shared partial beat: the first or the last (a join's bursts
             * span two beats at least: spp_plan.join) */
            const bool first = b == 0 && lo != 0, last = b + 1 == gb.beats && hi != DDR_BEAT;
            ddr_put_edge<SP_OD>(ddr, gb.first + b, v, lo, hi, first,
                                first ? sm : last ? em : AGU_PUT, tail, head, r);
            v = beat_zero();
            b++;
            l0 = b < gb.beats ? agu_lo(gb, b) : 0;
        }
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
 * rows [lo, hi) of every channel and image), one burst per image when they
 * are whole planes (contiguous in DDR) or the plan reads whole planes
 * skipping the other rows (g.span), else one per image and channel; the
 * padding zeroed first where a load may have left data there. */
static void spp_load_window(const ddr_t *ddr, const spp_plan &g, uint32_t src, const spp_item &it,
                            spp_win_t win, bool zeroed) {
    const int lo = it.y0 - g.ey > 0 ? it.y0 - g.ey : 0;
    const int top = it.y0 + it.bri + g.kh - 1 - g.ey;
    const int hi = top < g.sh ? top : g.sh;
    /* Loads write the same data positions every item and never the padding
     * columns (nor, with one band, the padding rows: spp_unit zeroes the
     * window once); only a band with padding rows, whose slot rows another
     * band filled with data, is zeroed first (unless the caller has:
     * zeroed). */
    if (!zeroed && (g.bands > 1 || g.tb > 0) && (lo + g.ey > it.y0 || hi < top))
        spp_clear<SP_WD>(win, spp_qm_of((uint32_t)((ap_uint<12>)g.red * (ap_uint<20>)g.cs) + g.tail + SP_P - 1).q);
    if (hi <= lo)
        return;
    const uint32_t plane = (uint32_t)g.sh * g.sw;
    spp_walk w;
    w.run = g.sw;
    w.pitch = spp_qm_of((uint32_t)g.pw);
    w.pstep = spp_qm_of((uint32_t)g.cs);
    /* whole planes: an image's channels are contiguous, one burst (rows
     * outside [lo, hi) skipped) */
    const bool whole = (lo == 0 && hi == g.sh) || g.span;
    w.rpp = whole ? g.sh : hi - lo;
    w.r0 = whole ? lo : 0;
    w.r1 = whole ? hi : hi - lo;
    /* the first source row's place: (lo + ey - y0) rows and ex columns in */
    spp_qm d0 = spp_qm_of((uint32_t)g.ex);
spp_window_pad:
    for (int r = it.y0; r < lo + g.ey; r++) {
#pragma HLS LOOP_TRIPCOUNT min=0 max=CTRAIN_MAX_PAD
        d0 = spp_qm_add(d0, w.pitch);
    }
    const spp_qm qimg = spp_qm_of((uint32_t)it.qimg);
    /* one burst per image (whole planes) or per image and channel, one spp_rd */
    const int per = whole ? 1 : g.red;
spp_window_images:
    for (int j = 0; j < it.nbi; j++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_BATCH
        w.dst = d0;
        uint32_t at = whole ? src + (uint32_t)(it.b0 + j) * g.red * plane
                            : src + (((uint32_t)(it.b0 + j) * g.red) * g.sh + lo) * g.sw;
        const uint32_t n = whole ? (uint32_t)g.red * plane : (uint32_t)(hi - lo) * g.sw;
    spp_window_bursts:
        for (int c = 0; c < per; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_CH
            spp_rd<SP_WD>(ddr, at, n, win, w, g.lii);
            w.dst = spp_qm_add(w.dst, w.pstep);
            at += plane;
        }
        d0 = spp_qm_add(d0, qimg);
    }
}

/* Rows [ra, ra + nr) of a tensor on the swept plane (FP/EB outputs, EB
 * masks, WG errors) between DDR at base and the row buffer (row i of the
 * chunk at word i * T, positions as the window's): one burst per image
 * when the band is the whole plane or a read skips the other rows
 * (g.rspan), else one per image and row.  spp_rows_rd and spp_rows_wr walk
 * the same bursts (spp_rows_burst), each with one spp_rd or spp_wr. */
struct spp_rows_plan {
    spp_walk w;
    spp_qm qimg;
    uint32_t plane;
    bool whole;
    int per;   /* bursts per image */
};

static spp_rows_plan spp_rows_make(const spp_plan &g, const spp_item &it, int nr, bool write) {
#pragma HLS INLINE
    spp_rows_plan p;
    p.plane = (uint32_t)((ap_uint<10>)g.oh * (ap_uint<10>)g.ow);   /* narrow */
    p.w.run = g.ow;
    p.w.pitch = spp_qm_of((uint32_t)g.pw);
    p.w.pstep.q = g.T;
    p.w.pstep.m = 0;
    /* one burst per image: the band is the whole plane, or a read of whole
     * planes skipping the rows outside the band (g.rspan) */
    p.whole = (g.bands == 1 && g.tb == 0) || (!write && g.rspan);
    p.w.rpp = p.whole ? g.oh : it.bri;
    p.w.r0 = p.whole ? it.y0 : 0;
    p.w.r1 = p.w.r0 + it.bri;
    p.qimg = spp_qm_of((uint32_t)it.qimg);
    p.per = p.whole ? 1 : nr;
    return p;
}

/* Burst i of image j: its address and length, and where it lands (dj: the image's slot). */
static void spp_rows_burst(const spp_plan &g, const spp_rows_plan &p, const spp_item &it, uint32_t base,
                           int ra, int nr, int j, int i, spp_qm dj, spp_walk &w, uint32_t &at,
                           uint32_t &n) {
#pragma HLS INLINE
    const uint32_t img = (uint32_t)(it.b0 + j) * g.rows + ra;
    w = p.w;
    w.dst.q = dj.q + (int32_t)((ap_uint<12>)i * (ap_uint<12>)g.T);   /* narrow; i = 0 when whole */
    w.dst.m = dj.m;
    at = p.whole ? base + img * p.plane : base + (img + i) * p.plane + (uint32_t)it.y0 * g.ow;
    n = p.whole ? (uint32_t)nr * p.plane : (uint32_t)it.bri * g.ow;
}

static void spp_rows_rd(const ddr_t *ddr, const spp_plan &g, uint32_t base, const spp_item &it,
                        int ra, int nr, spp_rows_t buf) {
#pragma HLS INLINE off
    const spp_rows_plan p = spp_rows_make(g, it, nr, false);
    spp_qm dj;
    dj.q = 0;
    dj.m = 0;
spp_rows_rd_images:
    for (int j = 0; j < it.nbi; j++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_BATCH
    spp_rows_rd_bursts:
        for (int i = 0; i < p.per; i++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_OD
            spp_walk w;
            uint32_t at, n;
            spp_rows_burst(g, p, it, base, ra, nr, j, i, dj, w, at, n);
            spp_rd<SP_OD>(ddr, at, n, buf, w, g.sii);
        }
        dj = spp_qm_add(dj, p.qimg);
    }
}

/* Rows [ra, ra + nr) out, rows [i0, i0 + nr) of a chunk of cnr.  Where the
 * plan joins (spp_plan.join: bands of one image, pieces of a beat or more),
 * the partial beats its pieces share are joined (agu.h ddr_put_edge): an
 * image's pieces come band by band (spp_item_of), the chunk's rows its set. */
static void spp_rows_wr(ddr_t *ddr, const spp_plan &g, uint32_t base, const spp_item &it, int ra,
                        int nr, int i0, int cnr, const spp_rows_t buf) {
#pragma HLS INLINE off
    /* the held partial beats: one word per chunk row each, per image of a
     * tail group (a tail item's pieces join beats its images' bands held) */
    static beat_t tail[SPP_JOIN_IMGS][SP_OD];
#pragma HLS BIND_STORAGE variable=tail type=ram_2p impl=lutram
    static beat_t head[SPP_JOIN_IMGS][SP_OD];
#pragma HLS BIND_STORAGE variable=head type=ram_2p impl=lutram
    const spp_rows_plan p = spp_rows_make(g, it, nr, true);
    const bool fb = it.y0 == 0, lb = it.y0 + it.bri == g.oh;   /* first, last band */
    spp_qm dj;
    dj.q = 0;
    dj.m = 0;
spp_rows_wr_images:
    for (int j = 0; j < it.nbi; j++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_BATCH
    spp_rows_wr_bursts:
        for (int i = 0; i < p.per; i++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_OD
            spp_walk w;
            uint32_t at, n;
            spp_rows_burst(g, p, it, base, ra, nr, j, i, dj, w, at, n);
            const int r = i0 + i;
            const int jj = g.join ? it.gj + j : 0;   /* < SPP_JOIN_IMGS where the plan joins */
            spp_wr<SP_OD>(ddr, at, n, buf, w, g.sii, tail[jj], head[jj], r,
                          agu_edge_first(g.join, fb, r), agu_edge_last(g.join, lb, r, cnr));
        }
        dj = spp_qm_add(dj, p.qimg);
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

/* The PE loop of the position-parallel path (see above; its products on
 * the MAC array, mac_array.h): `total` steps of SP_P products, one kept
 * weight each (a row without one takes a masked step per tile, so its
 * outputs still get the bias), over the chunk's rows [i0, i0 + nr) (a
 * sub-chunk: its outputs from word 0 of out):
 *   gather (FP, EB): row i > tile t > entry j; PE p: acc[p] += w * x[p];
 *     at the list's end the tile is quantized into out (word i * T + t).
 *     SP_POS_PAIR 2: tiles t and t + 1 together, PE p's one mul2 the weight
 *     times its inputs in both (the window's second port, a second rotator),
 *     acc1[p] the second tile's sum; one extra step after the list
 *     quantizes it, so the SP_P quantizers and each output bank's one write
 *     per cycle serve both (a pair costs len + 1 steps, not 2 len).
 *     SP_POS_KPAIR 2 (two DSP slices a PE): entries j and j + 1 together
 *     instead, acc[p] += w_j * x_j[p], acc1[p] += w_j+1 * x_j+1[p] (the
 *     second rotator at entry j + 1's address); the drain quantizes
 *     acc + acc1 (a tile costs ceil(len / 2) steps).
 *   outer (WG): row i > entries j (and j + 1: SP_WG_PAIR 2) > tile t; an
 *     adder tree per entry sums err * x over the PEs, a register over the
 *     tiles; tacc takes them at the last (entry e at bank e % 2, word e / 2). */
/* Steps of a row's group of tiles (FP, EB: one tile, or a pair of two on a
 * packing board) before the pair's extra step: its `len` kept weights,
 * SP_POS_KPAIR a step (one masked step for an empty row), and at least the steps the quantizers take to drain
 * the previous group: SP_QD a tile, the pair's extra step one of them, so
 * with `pairs` (the instruction pairs tiles: any group may follow a pair)
 * 2 SP_QD - 1.  Also the drain after a sub-chunk's last group (`pairs`: it
 * is a pair). */
static inline bool spp_pairs_tiles(const spp_plan &g) {
#pragma HLS INLINE
    return SP_POS_PAIR == 2 && g.T >= 2;
}

static inline uint32_t spp_group_steps(uint32_t len, bool pairs) {
#pragma HLS INLINE
    const uint32_t runs = len > 0 ? (len + SP_POS_KPAIR - 1) / SP_POS_KPAIR : 1u;
    const uint32_t drain = pairs ? 2u * SP_QD - 1u : (uint32_t)SP_QD;
    return runs > drain ? runs : drain;
}

/* A pair's PE steps (sp_steps' total) for its item's T tiles, from its
 * sub-chunk's steps a tile (spp_unit's stot: WG a row's kept-weight steps
 * and bias step; FP, EB a row's group steps, spp_group_steps): WG T each;
 * FP, EB each per group of tiles (a pair, SP_POS_PAIR, or one), a pair's
 * extra step per row, and after the last row the last group's drain (a
 * pair where T is even). */
static uint32_t spp_pair_steps(const spp_plan &g, int T, uint32_t sg, int nr) {
#pragma HLS INLINE
    /* T <= SP_OD + 1 < 2^9, rows < 2^10: narrow products */
    if (g.wg)
        return (uint32_t)((ap_uint<9>)T * (ap_uint<32>)sg);
    const int tiles = (T + SP_POS_PAIR - 1) / SP_POS_PAIR;
    const int extra = (T / SP_POS_PAIR) * (SP_POS_PAIR - 1);
    return (uint32_t)((ap_uint<9>)tiles * (ap_uint<32>)sg) +
           (uint32_t)((ap_uint<10>)nr * (ap_uint<9>)extra) +
           spp_group_steps(0, spp_pairs_tiles(g) && T % 2 == 0);
}

static void sp_steps(bool outer, const spp_plan &g, int i0, int nr, uint32_t total,
                     const uint32_t start[SP_OD + 1], const q8_t eval[SP_LIST],
                     const uint16_t eoq[SP_LIST], const uint16_t eom[SP_LIST],
                     const spp_win_t win, const spp_rows_t rb,
                     const spp_item &it, const spp_img_t pj[2][SP_Q], const spp_rc_t pu[2][SP_Q],
                     const spp_rc_t px[SP_Q], const sp_out &o, wide_t rbias[SP_OD],
                     spp_rows_t out, acc_t tacc[2][SP_LH], q_stats &st) {
    /* its loop in execute's scope, where the MAC array is shared (mac_array.h) */
#pragma HLS INLINE
    CTRAIN_LOOP(pe, 1, total);
    spp_acc_t acc[SP_P], acc1[SP_P];
#pragma HLS ARRAY_PARTITION variable=acc type=complete
#pragma HLS ARRAY_PARTITION variable=acc1 type=complete
    pe_sum_t tsum = 0, tsum1 = 0;
    int i = i0, t = 0;
    const int iend = i0 + nr;
    int rbase = 0;   /* (i - i0) * T, counted */
    uint32_t j = 0;
    uint32_t len = start[i0 + 1] - start[i0];
    /* FP, EB: the finished tiles' sums (hold[0]: a group's first tile, hold[1]
     * a pair's second), the group's row and its first tile and output word
     * (the second's are the next), drained SP_Q PEs a step: chunk dd of
     * tile dh, dq of dn chunks done */
    spp_acc_t hold[2][SP_P];
#pragma HLS ARRAY_PARTITION variable=hold type=complete dim=0
    int hrow = 0, hword = 0, htile = 0;
    uint32_t dq = 0, dn = 0;
    int dd = 0, dh = 0;
    /* The drain lanes' outputs: lane q drains PE dd * SP_Q + q of tile ht,
     * whose position (image, row, column) its counters keep; a row's tiles
     * drain in order, SP_Q positions a step (tile 0 restarts them), so only
     * SP_Q counters, where the statistics take an output's validity (junk
     * positions are stored nowhere, spp_rows_wr) */
    spp_img_t vj[SP_Q];
    spp_rc_t vu[SP_Q], vx[SP_Q];
#pragma HLS ARRAY_PARTITION variable=vj type=complete
#pragma HLS ARRAY_PARTITION variable=vu type=complete
#pragma HLS ARRAY_PARTITION variable=vx type=complete
    const int tl = it.tl ? 1 : 0;   /* the tail band's positions (spp_item) */
    const int qj = it.tl ? g.qjt : g.qj, qu = it.tl ? g.qut : g.qu, qx = it.tl ? g.qxt : g.qx;
    /* the item's first positions (a main band's slots or the tail's) */
    spp_img_t fj[SP_Q];
    spp_rc_t fu[SP_Q];
#pragma HLS ARRAY_PARTITION variable=fj type=complete
#pragma HLS ARRAY_PARTITION variable=fu type=complete
    for (int q = 0; q < SP_Q; q++) {
#pragma HLS UNROLL
        fj[q] = pj[tl][q];
        fu[q] = pu[tl][q];
        vj[q] = fj[q];
        vu[q] = fu[q];
        vx[q] = px[q];
    }
    const bool pairs = spp_pairs_tiles(g);
    /* the item's tiles (spp_item: a short last band, a last group of fewer
     * images or a tail item may take fewer); rows keep the plan's T words */
    const int T = it.T;
step:
    for (uint32_t s = 0; s < total; s++) {
#pragma HLS PIPELINE II=1
    /* T tiles per kept weight (an empty row one masked step per tile), T <= SP_OD + 1 */
#pragma HLS LOOP_TRIPCOUNT min=1 max=(SP_OD+1)*(SP_LIST+SP_OD)
        /* a kept weight's accumulator is written once, at its last tile */
#pragma HLS DEPENDENCE variable=tacc type=inter false
#pragma HLS DEPENDENCE variable=out type=inter false
        /* a product step (not a pair's extra step, nor an empty row's) */
        const bool live = j < len;
        const uint32_t e = start[i] + j;
        /* rbias, one read a step: WG's row (its bias step adds to it) or the
         * drain's held row (FP, EB): with the bias step's write two of its
         * two ports, whatever arm the step takes */
        const wide_t rb_now = rbias[outer ? (i < iend ? i : i0) : hrow];
        /* window address of PE 0: (word, bank) of the entry, plus the tile */
        const uint32_t r0 = (live ? eoq[e] : 0u) + (uint32_t)t;
        const uint32_t b0 = live ? (uint32_t)eom[e] : 0u;
        const q8_t w = live ? eval[e] : (q8_t)0;
        q8_t x[SP_P];
#pragma HLS ARRAY_PARTITION variable=x type=complete
        spp_rotate(win, b0, r0, x);
        /* WG: a row's kept weights (an empty row without biases one masked
         * step), then with biases its bias step: every PE's input 1, so the
         * adder tree sums the tile's errors (junk positions hold 0) into
         * the row's bias gradient */
        const uint32_t kr = len > 0 ? len : (outer && o.bias ? 0u : 1u);
        const bool bstep = outer && o.bias && j == kr;
        if (bstep) {
            for (int p = 0; p < SP_P; p++) {
#pragma HLS UNROLL
                x[p] = 1;
            }
        }
        /* on a packing board, WG (and FP, EB where kept weights pair,
         * SP_POS_KPAIR): the row's next kept weight too, if any (epair);
         * FP, EB otherwise: the next tile too, if any (tpair) */
        const bool epair = outer ? SP_WG_PAIR == 2 : SP_POS_KPAIR == 2;
        const bool tpair = !outer && SP_POS_PAIR == 2 && t + 1 < T;
        const bool two = epair ? j + 1 < len : tpair;
#if SP_WG_PAIR == 2
        q8_t x1[SP_P];
#pragma HLS ARRAY_PARTITION variable=x1 type=complete
        const uint32_t r1 = epair ? (two ? eoq[e + 1] : 0u) + (uint32_t)t : (two && live ? r0 + 1u : 0u);
        const uint32_t b1 = epair ? (two ? (uint32_t)eom[e + 1] : 0u) : b0;
        spp_rotate(win, b1, r1, x1);
#endif
        const int ro = rbase + t;
        /* j's end: WG its entries and bias step; FP, EB a group's steps, in
         * entries (SP_POS_KPAIR a step) */
        const uint32_t runs = outer ? kr + (o.bias ? 1u : 0u)
                                    : SP_POS_KPAIR * spp_group_steps(len, pairs);
        /* a pair's extra step: no product, the accumulators hold */
        const bool ext = tpair && i < iend && j == runs;
        prod_t m[SP_P], m1[SP_P];
#pragma HLS ARRAY_PARTITION variable=m type=complete
#pragma HLS ARRAY_PARTITION variable=m1 type=complete
#if CTRAIN_SPARSE_POS_MACC
        /* Two DSP slices per PE (sconv.h), each P = (init ? 0 : P) + a * b
         * (UG1399 "Accumulation": the reset in the slice; WG resets every
         * step, so its P is the product) */
        const bool init = outer || j == 0;
        /* the second slice's weight: FP, EB's entry j + 1 where kept weights pair */
        const q8_t w1 = SP_POS_KPAIR == 2 && two ? eval[e + 1] : w;
        for (int p = 0; p < SP_P; p++) {
#pragma HLS UNROLL
            const q8_t a = outer ? rb[p][ro] : w;
            const prod_t mm0 = (prod_t)a * (prod_t)x[p];
            /* a DSP slice whose post-adder accumulates */
#pragma HLS BIND_OP variable=mm0 op=mul impl=dsp
#if SP_WG_PAIR == 2
            const q8_t xp1 = two ? x1[p] : (q8_t)0;   /* not b1: the step's rotation */
            const q8_t a1 = outer ? rb[p][ro] : w1;
            const prod_t mm1 = (prod_t)a1 * (prod_t)xp1;
            /* the second slice */
#pragma HLS BIND_OP variable=mm1 op=mul impl=dsp
#else
            const prod_t mm1 = 0;
#endif
            const spp_acc_t pa0 = (init ? spp_acc_t(0) : acc[p]) + mm0;
            const spp_acc_t pa1 = (init ? spp_acc_t(0) : acc1[p]) + mm1;
            if (!ext) {
                acc[p] = pa0;
                acc1[p] = pa1;
            }
            m[p] = (prod_t)pa0;   /* WG: the product */
            m1[p] = (prod_t)pa1;
        }
#else
        /* One unit of the MAC array per PE (mac_array.h): the weight
         * (gather) or its error (outer) times the PE's input, on a packing
         * board times both entries' (gather: tiles') inputs (the second 0
         * but in a pair).  PEs [0, MAC_DENSE_UNITS) on the units the dense
         * unit shares (mac_array), the rest on the path's own (mac_array_sp). */
        q8_t ma[MAC_DENSE_UNITS], mb0[MAC_DENSE_UNITS], mb1[MAC_DENSE_UNITS];
#pragma HLS ARRAY_PARTITION variable=ma type=complete
#pragma HLS ARRAY_PARTITION variable=mb0 type=complete
#pragma HLS ARRAY_PARTITION variable=mb1 type=complete
        prod_t mp0[MAC_DENSE_UNITS], mp1[MAC_DENSE_UNITS];
#pragma HLS ARRAY_PARTITION variable=mp0 type=complete
#pragma HLS ARRAY_PARTITION variable=mp1 type=complete
#if CTRAIN_DSP_INT8 != 2   /* !PE_POS_PAIRS */
        /* the units the dense unit does not use (with PE_POS_PAIRS it uses every one) */
        q8_t sa[MAC_SP_UNITS], sb0[MAC_SP_UNITS], sb1[MAC_SP_UNITS];
#pragma HLS ARRAY_PARTITION variable=sa type=complete
#pragma HLS ARRAY_PARTITION variable=sb0 type=complete
#pragma HLS ARRAY_PARTITION variable=sb1 type=complete
        prod_t sp0[MAC_SP_UNITS], sp1[MAC_SP_UNITS];
#pragma HLS ARRAY_PARTITION variable=sp0 type=complete
#pragma HLS ARRAY_PARTITION variable=sp1 type=complete
#endif
        for (int p = 0; p < MAC_DENSE_UNITS; p++) {
#pragma HLS UNROLL
            ma[p] = outer ? rb[p][ro] : w;
            mb0[p] = x[p];
#if SP_WG_PAIR == 2
            mb1[p] = two ? x1[p] : (q8_t)0;
#else
            mb1[p] = 0;
#endif
        }
#if CTRAIN_DSP_INT8 != 2   /* !PE_POS_PAIRS */
        for (int q = 0; q < MAC_SP_UNITS; q++) {
#pragma HLS UNROLL
            sa[q] = outer ? rb[MAC_DENSE_UNITS + q][ro] : w;
            sb0[q] = x[MAC_DENSE_UNITS + q];
#if SP_WG_PAIR == 2
            sb1[q] = two ? x1[MAC_DENSE_UNITS + q] : (q8_t)0;
#else
            sb1[q] = 0;
#endif
        }
#endif
#if CTRAIN_SPARSE_POS_MUL_LUT
        mac_array_pos(ma, mb0, mb1, mp0, mp1);
#else
        mac_array(ma, mb0, mb1, mp0, mp1);
#endif
        for (int p = 0; p < MAC_DENSE_UNITS; p++) {
#pragma HLS UNROLL
            m[p] = mp0[p];
            m1[p] = mp1[p];
        }
#if CTRAIN_DSP_INT8 != 2   /* !PE_POS_PAIRS */
        mac_array_sp(sa, sb0, sb1, sp0, sp1);
        for (int q = 0; q < MAC_SP_UNITS; q++) {
#pragma HLS UNROLL
            m[MAC_DENSE_UNITS + q] = sp0[q];
            m1[MAC_DENSE_UNITS + q] = sp1[q];
        }
#endif
#endif
        if (outer) {
            spp_sum_t sum = 0, sum1 = 0;   /* adder trees, |sum| <= SP_P * 2^14 */
#if CTRAIN_TREE_DSP
            /* the trees' adders in DSP slices: the board's LUTs are scarcer */
#pragma HLS BIND_OP variable=sum op=add impl=dsp
#pragma HLS BIND_OP variable=sum1 op=add impl=dsp
#endif
            for (int p = 0; p < SP_P; p++) {
#pragma HLS UNROLL
                sum += m[p];
                sum1 += m1[p];
            }
            tsum = (t == 0 ? pe_sum_t(0) : tsum) + sum;
            tsum1 = (t == 0 ? pe_sum_t(0) : tsum1) + sum1;
            if (live && t == T - 1) {
                /* entries e and (two) e + 1: one in each bank */
                const bool odd = (e & 1u) != 0;
                const uint32_t we = (e + 1) >> 1, wo = e >> 1;
                if (!odd || two)
                    tacc[0][we] = tacc[0][we] + (acc_t)(odd ? tsum1 : tsum);
                if (odd || two)
                    tacc[1][wo] = tacc[1][wo] + (acc_t)(odd ? tsum : tsum1);
            }
            if (bstep && t == T - 1)
                rbias[i] = rb_now + tsum;
            if (++t == T) {
                t = 0;
                j += two ? 2u : 1u;
                if (j == runs) {
                    j = 0;
                    i++;
                    rbase += g.T;
                    len = i < iend ? start[i + 1] - start[i] : 0u;
                }
            }
            continue;
        }
        /* the drain: PEs [dd * SP_Q, dd * SP_Q + SP_Q) of held tile dh
         * quantized (before this step's fin refills a hold: group steps
         * leave the drain done by then, spp_group_steps) */
        if (dq < dn) {
            const int hw = hword + dh;
            const bool restart = dq == 0 && htile == 0;   /* a row's tile 0 */
            q_lanes ql = {0, 0, 0, 0};   /* the step's SP_Q outputs meet the statistics as one update */
            for (int q = 0; q < SP_Q; q++) {
#pragma HLS UNROLL
                const int pq = dd * SP_Q + q;   /* PE */
#if SP_POS_KPAIR == 2
                /* the two slices' halves of the tile's lists: their sum, exact
                 * (a list's whole sum fits spp_acc_t) */
                const spp_acc_t hs = hold[0][pq] + hold[1][pq];
                wide_t v = (wide_t)hs;
#else
                wide_t v = (wide_t)hold[dh][pq];
#endif
                bool clamped;
                const q8_t qv = conv_epilogue(v, o.bias, rb_now, o.relu, o.mask, rb[pq][hw], o.sh_out,
                                              clamped);
                out[pq][hw] = qv;
                const spp_img_t cj = restart ? fj[q] : vj[q];
                const spp_rc_t cu = restart ? fu[q] : vu[q];
                const spp_rc_t cx = restart ? px[q] : vx[q];
                if (cj < it.nbi && cu < it.bri && cx < g.ow)   /* an output, not junk */
                    q_lanes_add(ql, v, qv, clamped);
                /* the lane's next position, SP_Q on */
                spp_rc_t nx = cx + qx;
                spp_rc_t nu = cu + qu;
                spp_img_t nj = cj + qj;
                if (nx >= g.pw) {
                    nx -= g.pw;
                    nu++;
                }
                if (nu >= it.hw) {
                    nu -= it.hw;
                    nj++;
                }
                vj[q] = nj;
                vu[q] = nu;
                vx[q] = nx;
            }
            q_stats_merge(st, ql);
            dq++;
            if (++dd == SP_QD) {
                dd = 0;
                dh = 1;
            }
        }
        /* the list's last product finishes tile t; a pair's extra step
         * (j == runs) its second tile, t + 1; the steps after the last row
         * (the last drain) finish none */
        const bool fin = i < iend && !ext && j + SP_POS_KPAIR == runs;
        /* acc1 held: a pair's second tile at its extra step, or the list's
         * second half with the first where kept weights pair */
        const bool fin1 = SP_POS_KPAIR == 2 ? fin : ext;
        for (int p = 0; p < SP_P; p++) {
#pragma HLS UNROLL
#if !CTRAIN_SPARSE_POS_MACC
            if (!ext) {
                acc[p] = (j == 0 ? spp_acc_t(0) : acc[p]) + m[p];
                acc1[p] = (j == 0 ? spp_acc_t(0) : acc1[p]) + m1[p];
            }
#endif
            if (fin)
                hold[0][p] = acc[p];
            if (fin1)
                hold[1][p] = acc1[p];
        }
        if (fin) {
            hrow = i;
            hword = ro;
            htile = t;
            dq = 0;
            dn = tpair ? 2u * SP_QD : (uint32_t)SP_QD;
            dd = 0;
            dh = 0;
        }
        j += SP_POS_KPAIR;
        if (j == runs + (tpair ? 1u : 0u)) {
            j = 0;
            t += tpair ? 2 : 1;
            if (t == T) {
                t = 0;
                i++;
                rbase += g.T;
                len = i < iend ? start[i + 1] - start[i] : 0u;
            }
        }
    }
}

#if CTRAIN_SPARSE_DATAFLOW
#if CTRAIN_MAC_SHARED
#error "CTRAIN_SPARSE_DATAFLOW: its compute process is a module of its own, so the MAC array cannot be the dense unit's (set CTRAIN_MAC_SHARED 0)"
#endif
/* The DATAFLOW form of a chunk's (item, sub-chunk) loop (CTRAIN_SPARSE_DATAFLOW,
 * sconv.h): three processes, each with its own pair cursor, the window and
 * row buffer (load -> compute) and the outputs (compute -> store) ping-pong
 * channels.  A channel's buffers alternate between pairs, so no pair finds
 * the window or the row buffer as an earlier one left it: every pair zeroes
 * and loads its own (its item's window again for each of its S sub-chunks),
 * and WG's bias sums, which read the errors, are the compute process's
 * (sp_steps' bias steps). */
struct spp_job {
    uint32_t wsrc, rsrc, dst;   /* window source; row buffer source (WG errors, EB masks); outputs */
    int ra, nr, S, q;           /* the chunk's first row and rows; S sub-chunks of q rows */
    bool rows_in;               /* the row buffer is loaded (WG, EB with a mask) */
};

static void spp_load_p(ddr_t *ddr, const spp_plan g, const spp_job j, spp_pair &lp, spp_win_t win,
                       spp_rows_t rb) {
    /* a process of spp_pairs' DATAFLOW loop: pair k in */
#pragma HLS INLINE off
    CTRAIN_PIPE_STAGE(0);
    const spp_item it = spp_item_of(g, lp.k);
    spp_clear<SP_WD>(win, spp_qm_of((uint32_t)((ap_uint<12>)g.red * (ap_uint<20>)g.cs) + g.tail + SP_P - 1).q);
    spp_load_window(ddr, g, j.wsrc, it, win, true);
    if (j.rows_in) {
        /* junk positions hold 0 (WG: they add nothing to a kept weight's sum) */
        spp_clear<SP_OD>(rb, (uint32_t)((ap_uint<12>)lp.nr * (ap_uint<12>)g.T));   /* <= SP_OD */
        spp_rows_rd(ddr, g, j.rsrc, it, j.ra + lp.i0, lp.nr, rb);
    }
    spp_pair_next(j.S, j.q, j.nr, lp);
}

static void spp_compute_p(const spp_plan g, const spp_job j, const sp_out o, spp_pair &cp,
                          const uint32_t start[SP_OD + 1], const q8_t eval[SP_LIST],
                          const uint16_t eoq[SP_LIST], const uint16_t eom[SP_LIST],
                          const uint32_t stot[SP_OD], const spp_img_t pj[2][SP_Q],
                          const spp_rc_t pu[2][SP_Q], const spp_rc_t px[SP_Q],
                          const spp_win_t win, const spp_rows_t rb,
                          spp_rows_t out, wide_t rbias[SP_OD], acc_t tacc[2][SP_LH], q_stats &st) {
    /* a process of spp_pairs' DATAFLOW loop: pair k's steps on the path's MAC array */
#pragma HLS INLINE off
    CTRAIN_PIPE_STAGE(1);
    const spp_item it = spp_item_of(g, cp.k);
    sp_steps(g.wg, g, cp.i0, cp.nr, spp_pair_steps(g, it.T, stot[cp.s], cp.nr), start, eval, eoq,
             eom, win, rb, it, pj, pu, px, o,
             rbias, out, tacc, st);
    spp_pair_next(j.S, j.q, j.nr, cp);
}

static void spp_store_p(ddr_t *ddr, const spp_plan g, const spp_job j, spp_pair &sp,
                        spp_rows_t out) {
    /* a process of spp_pairs' DATAFLOW loop: pair k out (WG: nothing; its
     * gradients leave after the chunk) */
#pragma HLS INLINE off
    CTRAIN_PIPE_STAGE(2);
    if (!g.wg) {
        const spp_item it = spp_item_of(g, sp.k);
        spp_rows_wr(ddr, g, j.dst, it, j.ra + sp.i0, sp.nr, sp.i0, j.nr, out);
    }
    spp_pair_next(j.S, j.q, j.nr, sp);
}

static void spp_pairs(ddr_t *ddr, const spp_plan g, const spp_job j, const sp_out o, int pairs,
                      spp_pair &lp, spp_pair &cp, spp_pair &sp, const uint32_t start[SP_OD + 1],
                      const q8_t eval[SP_LIST], const uint16_t eoq[SP_LIST],
                      const uint16_t eom[SP_LIST], const uint32_t stot[SP_OD],
                      const spp_img_t pj[2][SP_Q], const spp_rc_t pu[2][SP_Q],
                      const spp_rc_t px[SP_Q], wide_t rbias[SP_OD],
                      acc_t tacc[2][SP_LH], q_stats &st) {
spp_pair_loop:
    for (int k = 0; k < pairs; k++) {
    /* pairs: batch groups x output-row bands x sub-chunks */
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_BATCH*CTRAIN_MAX_DIM
        /* load k+1 || compute k || store k-1: the channels are ping-pong buffers */
#pragma HLS DATAFLOW
        spp_win_t win;
        spp_rows_t rb, ob;
        /* a bank per PE, one word per cycle each (two reads: the rotators) */
#pragma HLS ARRAY_PARTITION variable=win type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=rb type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=ob type=complete dim=1
        /* the channels in distributed RAM: the BRAM is the dense unit's */
#pragma HLS BIND_STORAGE variable=win type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=rb type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=ob type=ram_2p impl=lutram
        spp_load_p(ddr, g, j, lp, win, rb);
        spp_compute_p(g, j, o, cp, start, eval, eoq, eom, stot, pj, pu, px, win, rb, ob, rbias,
                      tacc, st);
        spp_store_p(ddr, g, j, sp, ob);
    }
}
#endif

/* The position-parallel path of one instruction (g planned, the chunks
 * found by spp_chunks). */
static void spp_unit(ddr_t *ddr, const ctrain_insn_t &f, const spp_plan &g,
                     const sparse_index_t &ix, const uint16_t cstart[CTRAIN_MAX_CH + 1], int nch,
                     const sp_out &o, int sh_bias, int sh_b, q_stats &st) {
    /* in execute's scope, where sp_steps shares the MAC array (mac_array.h) */
#pragma HLS INLINE
#if CTRAIN_SPARSE_DATAFLOW == 0
    /* Ping-pong buffers (index: item & 1): window, row buffer (WG errors,
     * EB masks), outputs.  Each bank one word per cycle.  (With
     * CTRAIN_SPARSE_DATAFLOW they are spp_pairs' channels.) */
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
#endif
    /* A chunk's lists and WG accumulators. */
    static q8_t eval[SP_LIST];
    static uint16_t eoq[SP_LIST];   /* window word of PE 0 at tile 0 (< SP_WD) */
    static uint16_t eom[SP_LIST];   /* its bank */
    static acc_t tacc[2][SP_LH];
#pragma HLS ARRAY_PARTITION variable=tacc type=complete dim=1
    static uint16_t hbuf[SP_LIST];
    static int32_t wbuf[SP_LIST];   /* EB: tpos; WG: quantized gradients */
    static q8_t vbuf[SP_VALS];      /* FP: values; EB: a block of the values array */
#if CTRAIN_SPARSE_LIST_BRAM
    /* the stepped lists in BRAM: the LUTs go to the window (config) */
#pragma HLS BIND_STORAGE variable=eval type=ram_2p impl=bram
#pragma HLS BIND_STORAGE variable=eoq type=ram_2p impl=bram
#pragma HLS BIND_STORAGE variable=eom type=ram_2p impl=bram
#else
    /* the lists in distributed RAM: the BRAM is the dense unit's */
#pragma HLS BIND_STORAGE variable=eval type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=eoq type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=eom type=ram_2p impl=lutram
#endif
    /* banked by the decode's lanes: an entry a bank a cycle (SPP_DL) */
#pragma HLS ARRAY_PARTITION variable=eval type=cyclic factor=SPP_DL
#pragma HLS ARRAY_PARTITION variable=eoq type=cyclic factor=SPP_DL
#pragma HLS ARRAY_PARTITION variable=eom type=cyclic factor=SPP_DL
#if CTRAIN_SPARSE_ACC_URAM
    /* the WG accumulators in URAM (config): a read and a write a bank a
     * cycle, as in BRAM */
#pragma HLS BIND_STORAGE variable=tacc type=ram_2p impl=uram
#elif CTRAIN_SPARSE_ACC_BRAM
    /* the WG accumulators in BRAM (config) */
#pragma HLS BIND_STORAGE variable=tacc type=ram_2p impl=bram
#else
    /* the WG accumulators in distributed RAM (config) */
#pragma HLS BIND_STORAGE variable=tacc type=ram_2p impl=lutram
#endif
#if CTRAIN_SPARSE_STAGE_BRAM
    /* the staging buffers in BRAM, where the LUTs go to the window (config) */
#pragma HLS BIND_STORAGE variable=hbuf type=ram_2p impl=bram
#pragma HLS BIND_STORAGE variable=wbuf type=ram_2p impl=bram
#else
    /* the staging buffers in distributed RAM: partitioned by the beat */
#pragma HLS BIND_STORAGE variable=hbuf type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=wbuf type=ram_2p impl=lutram
#endif
#if SP_VALS > SP_LIST
    /* a value block larger than the lists: BRAM (config) */
#pragma HLS BIND_STORAGE variable=vbuf type=ram_2p impl=bram
#else
#pragma HLS BIND_STORAGE variable=vbuf type=ram_2p impl=lutram
#endif
    /* staging, partitioned by the beat: a beat per cycle from DDR */
#pragma HLS ARRAY_PARTITION variable=hbuf type=cyclic factor=AGU_LANES(2)
#pragma HLS ARRAY_PARTITION variable=wbuf type=cyclic factor=AGU_LANES(4)
#pragma HLS ARRAY_PARTITION variable=vbuf type=cyclic factor=AGU_LANES(1)
    static uint32_t start[SP_OD + 1];
    static uint32_t stot[SP_OD];    /* steps a tile (group) per sub-chunk */
    static int32_t braw[SP_OD];
    static wide_t rbias[SP_OD];     /* FP: biases at e_acc; WG: bias gradients */
    /* small tables in distributed RAM */
#pragma HLS BIND_STORAGE variable=start type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=stot type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=braw type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=rbias type=ram_2p impl=lutram
    /* a copy per two lanes of the CSR decode (spp_lists: SPP_DL reads a cycle) */
    spp_qm toff[SPP_DL_COPIES][MAX_KK];
#pragma HLS ARRAY_PARTITION variable=toff type=complete dim=1
#pragma HLS BIND_STORAGE variable=toff type=ram_2p impl=lutram
    /* the drain lanes' first positions (sp_steps): a main band's slots, the tail band's */
    spp_img_t pj[2][SP_Q];
    spp_rc_t pu[2][SP_Q], px[SP_Q];
#pragma HLS ARRAY_PARTITION variable=pj type=complete dim=0
#pragma HLS ARRAY_PARTITION variable=pu type=complete dim=0
#pragma HLS ARRAY_PARTITION variable=px type=complete
    /* one instance of each item helper for the three stages: execute's
     * ALLOCATION (this function is inlined there) */
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
        const spp_qm o = spp_qm_of((uint32_t)(g.eb ? last - lin : lin));
        for (int c = 0; c < SPP_DL_COPIES; c++) {
#pragma HLS UNROLL
            toff[c][k] = o;
        }
        if (++kx == g.kw) {
            kx = 0;
            row += g.pw;
        }
    }
    /* PE p's position in tile 0 (p < SP_Q: the drain lanes'), counted in
     * a main band's slots and in the tail band's (the same columns) */
    int cj = 0, cu = 0, cx = 0, tj = 0, tu = 0;
    const int thw = g.tb > 0 ? g.hwt : g.hw;
    CTRAIN_LOOP(ew, 1, SP_Q);
spp_positions:
    for (int p = 0; p < SP_Q; p++) {
#pragma HLS PIPELINE II=1
        pj[0][p] = cj;
        pu[0][p] = cu;
        px[p] = cx;
        pj[1][p] = tj;
        pu[1][p] = tu;
        if (++cx == g.pw) {
            cx = 0;
            if (++cu == g.hw) {
                cu = 0;
                cj++;
            }
            if (++tu == thw) {
                tu = 0;
                tj++;
            }
        }
    }
    /* items: image groups x bands, and a tail item per group of nbt images */
    const int items = g.tb > 0 ? g.n * g.bands + (g.n + g.nbt - 1) / g.nbt
                               : (g.n + g.nb - 1) / g.nb * g.bands;
    /* FP, EB: a row's groups of tiles each at least the previous group's drain */
    const bool pairs = spp_pairs_tiles(g);
#if CTRAIN_SPARSE_DATAFLOW == 0
    /* Both ping-pong copies zeroed once: the window's padding (columns; with
     * one band rows too) and the WG errors' junk positions are never loaded
     * (spp_load_window, below). */
    if (g.ey > 0 || g.ex > 0) {
        const uint32_t words = spp_qm_of((uint32_t)((ap_uint<12>)g.red * (ap_uint<20>)g.cs) + g.tail + SP_P - 1).q;
        spp_clear<SP_WD>(win[0], words);
        spp_clear<SP_WD>(win[1], words);
    }
    if (g.wg) {
        spp_clear<SP_OD>(rbuf[0], SP_OD);
        spp_clear<SP_OD>(rbuf[1], SP_OD);
    }
#endif

spp_chunk:
    for (int ci = 0; ci < nch; ci++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_CH
        const int ra = cstart[ci], nr = cstart[ci + 1] - ra;
        const uint32_t z0 = spp_lists(ddr, f, g, ix, ra, nr, toff, start, eval, eoq, eom, hbuf,
                                      wbuf, vbuf);
        const uint32_t cnt = start[nr];
        /* Sub-chunks: S of q rows (the last fewer), each's outputs (errors)
         * within the output buffer's nmax rows; per item the window loads
         * once for all S (spp_items below). */
        const int S = (nr + g.nmax - 1) / g.nmax;
        const int q = (nr + S - 1) / S;
        int si = 0, in = 0;
        uint32_t total = 0;
        /* a sub-chunk's steps a tile (spp_pair_steps) */
    spp_total:
        for (int i = 0; i < nr; i++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_OD
            const uint32_t len = start[i + 1] - start[i];
            /* WG: SP_WG_PAIR kept weights per step */
            const uint32_t steps = g.wg ? (len + SP_WG_PAIR - 1) / SP_WG_PAIR : len;
            /* WG: an empty row without biases one masked step a tile; with
             * biases each row's bias step a tile (sp_steps) */
            const uint32_t wsteps = (steps > 0 ? steps : (bias ? 0u : 1u)) + (bias ? 1u : 0u);
            total += g.wg ? wsteps : spp_group_steps(len, pairs);
            if (++in == q || i + 1 == nr) {
                stot[si++] = total;
                total = 0;
                in = 0;
            }
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
                tacc[t & 1u][t >> 1] = 0;
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
#if CTRAIN_SPARSE_DATAFLOW
        /* The (item, sub-chunk) pairs, item-major, as a DATAFLOW loop */
        spp_job jb;
        jb.wsrc = wsrc;
        jb.rsrc = g.wg ? f.src : f.src3;
        jb.dst = f.dst;
        jb.ra = ra;
        jb.nr = nr;
        jb.S = S;
        jb.q = q;
        jb.rows_in = g.wg || o.mask;
        spp_pair lp = spp_pair_first(q, nr), cp = lp, sp = lp;
        CTRAIN_PIPE_BEGIN();
        spp_pairs(ddr, g, jb, o, items * S, lp, cp, sp, start, eval, eoq, eom, stot, pj, pu, px,
                  rbias, tacc, st);
        CTRAIN_PIPE_END();
#else
        /* The pipeline over (item, sub-chunk) pairs, item-major: load p+1 ||
         * compute p || store p-1; an item's window is loaded with its first
         * sub-chunk (while the previous item's last one computes) into
         * win[item & 1], the row buffer and outputs ping-pong per pair. */
        const int pairs = items * S;
        spp_pair lp = spp_pair_first(q, nr), cp = lp, sp = lp;
    spp_items:
        for (int k = -1; k <= pairs; k++) {
        /* pairs: batch groups x output-row bands x sub-chunks, and the pipeline's fill and drain */
#pragma HLS LOOP_TRIPCOUNT min=2 max=CTRAIN_MAX_BATCH*CTRAIN_MAX_DIM+2
            const bool region = k >= 0 && k < pairs;
            if (region)
                CTRAIN_REGION_BEGIN();
            if (k + 1 < pairs) {   /* stage 0: load pair k+1 */
                const spp_item it = spp_item_of(g, lp.k);
                const int h = (k + 1) & 1;
                if (lp.s == 0)
                    spp_load_window(ddr, g, wsrc, it, win[lp.k & 1], false);
                if (g.wg) {
                    /* junk positions hold 0: only an item with fewer images
                     * or rows than the plan's has junk where others load
                     * (with a tail band every item: its slots are not the
                     * main bands') */
                    if (it.nbi < g.nb || it.bri < g.br || g.tb > 0)
                        spp_clear<SP_OD>(rbuf[h], (uint32_t)lp.nr * g.T);
                    spp_rows_rd(ddr, g, f.src, it, ra + lp.i0, lp.nr, rbuf[h]);
                } else if (o.mask) {
                    spp_rows_rd(ddr, g, f.src3, it, ra + lp.i0, lp.nr, rbuf[h]);
                }
                spp_pair_next(S, q, nr, lp);
            }
            if (region) {          /* stage 1: compute pair k */
                CTRAIN_STAGE(1);
                const spp_item it = spp_item_of(g, cp.k);
                const int h = k & 1;
                sp_steps(g.wg, g, cp.i0, cp.nr, spp_pair_steps(g, it.T, stot[cp.s], cp.nr), start,
                         eval, eoq, eom, win[cp.k & 1],
                         rbuf[h], it, pj, pu, px, o, rbias, obuf[h], tacc, st);
                spp_pair_next(S, q, nr, cp);
                CTRAIN_STAGE(2);
            }
            if (!g.wg && k >= 1) {   /* stage 2: store pair k-1 */
                const spp_item it = spp_item_of(g, sp.k);
                spp_rows_wr(ddr, g, f.dst, it, ra + sp.i0, sp.nr, sp.i0, nr, obuf[(k - 1) & 1]);
                spp_pair_next(S, q, nr, sp);
            }
            if (region)
                CTRAIN_REGION_END();
        }
#endif
        if (g.wg) {
            CTRAIN_LOOP(ew, 1, cnt);
        spp_quantize_grads:
            for (uint32_t t = 0; t < cnt; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=SP_LIST
                const wide_t v = rshift_round(tacc[t & 1u][t >> 1].to_int64(), o.sh_out);
                bool clamped;
                const int32_t q = sat32(v, clamped);
                q_stats_add(st, v, q, clamped);
                wbuf[t] = q;
            }
            agu_wr_wide<int32_t, SP_LIST, 4>(ddr, f.dst + 4 * z0, wbuf, cnt);
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

/* Whether an instruction goes to the row-tile path without asking the
 * position-parallel one: a fully connected layer (1x1 planes on both sides)
 * has only n output positions per kept weight, too few for SP_P position
 * PEs, while the row-tile path's R rows x C batch lanes run it as a sparse
 * matrix times the batch, its lists on chip for the whole batch. */
static bool sp_rows_first(const ctrain_insn_t &f) {
    return f.h_in == 1 && f.w_in == 1 && f.h_out == 1 && f.w_out == 1;
}

uint32_t sconv_unit(ddr_t *ddr, const ctrain_insn_t &f, const insn_exps &e, q_stats &st) {
    /* in execute's scope, where sp_steps shares the MAC array (mac_array.h) */
#pragma HLS INLINE
    spp_plan pp;
    static uint16_t cstart[CTRAIN_MAX_CH + 1];
#if CTRAIN_SPARSE_CSTART_BRAM
    /* written once per chunk, read twice per chunk: BRAM where the LUTs are short */
#pragma HLS BIND_STORAGE variable=cstart type=ram_2p impl=bram
#else
#pragma HLS BIND_STORAGE variable=cstart type=ram_2p impl=lutram
#endif
    int nch = 0;
    if (!sp_rows_first(f) && spp_make_plan(f, pp) &&
        spp_chunks(ddr, f, pp, index_layout(f), cstart, nch)) {
        sp_out o;
        o.bias = (f.flags & FLAG_BIAS) != 0;
        o.relu = f.op == OP_SCONV_FP && (f.flags & FLAG_RELU);
        o.mask = pp.eb && (f.flags & FLAG_RELU_MASK);
        o.point = false;
        const wide_t e_acc = (wide_t)e.src + e.src2;
        o.sh_out = q_shift((wide_t)e.dst - e_acc);
        spp_unit(ddr, f, pp, index_layout(f), cstart, nch, o, q_shift(e_acc - e.src3),
                 q_shift((wide_t)e.dst - e.src), st);
        return FAULT_NONE;
    }
#if CTRAIN_SPARSE_ROWS
    sp_rows_unit(ddr, f, e, st);
    return FAULT_NONE;
#else
    /* no row-tile path: the chunking pass only read the index */
    return FAULT_TILE;
#endif
}
