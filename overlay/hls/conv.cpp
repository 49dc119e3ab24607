/*
 * Convolution unit: tiling, burst buffers and the ping-pong pipeline around
 * the PE array (see conv.h).
 *
 * Geometry.  Swept row y (FP, WG: output row; EB: input-error row) meets
 * source row sy (FP, WG: activation row; EB: error row) through kernel row ky:
 *   FP, WG: sy = y*s + ky - p                 (gather)
 *   EB:     sy = (y + p - ky) / s when exact  (scatter, as a gather)
 * and the same along x.  FP and EB walk only the valid taps of each position
 * (tables built per band); WG walks every (tap, position) and masks the ones
 * outside the plane.
 *
 * Band buffers (act, rowb, obuf) are reshaped cyclic by the port's beat
 * along the index a burst walks: per (lane, channel) a RAM of beat-wide
 * words.  Their bursts (band_rd, band_wr) move a piece per cycle, the part
 * of a channel's run in one word, through a two-beat window and a byte
 * funnel: one word access, at most one beat (docs/overlay.md "Dense
 * unit's bursts").  The weight loaders and the kernel store still address
 * their buffers lane by lane (a lane's bank and word follow counters the
 * other lanes move), so HLS schedules each of a beat's W lane accesses as
 * its own RAM access: the cycle model counts them as the AGU's
 * lane-by-lane bursts (CONV_II_*), not a beat per cycle ("Known limits").
 */
#include "conv.h"
#include "agu.h"
#include "cycle_model.h"

/* Cycles per beat of the weight loaders and the kernel store, as the AGU's
 * lane-by-lane bursts (agu.h "AGU throughput"): a beat's W lane stores
 * take the bank's write port W times (the loaders); the kernel store reads
 * W/4 accumulators a beat.  HLS cannot tell that the lanes of a beat share
 * one or two words: each lane's bank and word follow counters the lanes
 * before it moved. */
#define CONV_II_FILL AGU_II_FILL
#define CONV_II_KERNELS ((DDR_BEAT / 4 + 1) / 2)
/* wr_kernels: a beat's W / 4 words in KERNELS_STEPS cycles of KERNELS_WORDS */
#define KERNELS_STEPS CONV_II_KERNELS
#define KERNELS_WORDS ((DDR_BEAT / 4 + KERNELS_STEPS - 1) / KERNELS_STEPS)
/* WG's kernel store on both data ports where the board has two
 * (wr_kernels' second burst): a tile's rows in two halves, one per port,
 * from the same accumulator reads. */
#define KERNELS_2P (CTRAIN_DDR_PORTS > 1)

#if CTRAIN_CONV_DATAFLOW && CTRAIN_MAC_SHARED
#error "CTRAIN_CONV_DATAFLOW: its compute process is a module of its own, so the MAC array cannot be shared (set CTRAIN_MAC_SHARED 0)"
#endif
/* Weights stage through the column-operand buffer (conv_weights_staged):
 * the hand-pipelined form's act[0], idle before a pass; in the DATAFLOW
 * form a unit at a time through the item loop's act channel, as
 * pseudo-items before the first pass's items (conv_items). */

/* The divisions below inline into their callers: one divider per caller's
 * FSM shared by its sequential divisions, not a module instance per call
 * site. */
static int cdiv_i(int a, int b) {
#pragma HLS INLINE
    return (a + b - 1) / b;
}
/* floor(a / b) for b > 0 (per band or instruction, never in a pipelined loop) */
static int fdiv(int a, int b) {
#pragma HLS INLINE
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}
static int min_i(int a, int b) { return a < b ? a : b; }
static int max_i(int a, int b) { return a > b ? a : b; }

/* Source rows a band of `rows` swept rows can need. */
static int src_rows(const ctrain_insn_t &f, bool eb, int rows, int sh) {
    /* inline: its division shares the plan's one divider */
#pragma HLS INLINE
    const int need = eb ? (rows + f.k_h - 2) / f.stride + 1
                        : (dim_t)(rows - 1) * (dim_t)f.stride + f.k_h;
    return min_i(need, sh);
}

/* The tiling of a shape-checked instruction (docs/isa.md "Dense tiling"):
 * the compiler's tile_g, tile_br and tile_rb, each clamped to its whole
 * extent, or where a field is 0 the unit's own rule: g as many column tiles
 * as the weights (or tap accumulators) and one source row per channel
 * allow, br as many rows as the outputs and the group's source rows allow,
 * rb every row tile when all their EB weights fit, else one.  p.fits says
 * whether the result fits the buffers (validation's FAULT_TILE; the rule's
 * always does).  The clamped fields are at most 2^11, as every size here:
 * each factor fits dim_t, their products are int. */
conv_plan conv_make_plan(const ctrain_insn_t &f) {
    const bool eb = f.op == OP_CONV_EB;
    conv_plan p;
    p.rows = eb ? f.c_in : f.c_out;
    p.cols = eb ? f.c_out : f.c_in;
    p.oh = eb ? f.h_in : f.h_out;
    p.ow = eb ? f.w_in : f.w_out;
    p.sh = eb ? f.h_out : f.h_in;
    p.sw = eb ? f.w_out : f.w_in;
    const int kk = (dim_t)f.k_h * (dim_t)f.k_w;
    p.ct = cdiv_i(p.cols, PE_COLS);
    /* WG with biases keeps a bias tap beside a block's taps: the rule's one
     * group leaves room for it, so the rule always fits */
    const int btap = f.op == OP_CONV_WG && (f.flags & FLAG_BIAS) ? 1 : 0;
    /* entries a PE holds: WG's tap accumulators, FP's and EB's weights */
    const int cap = f.op == OP_CONV_WG ? CONV_TCAP : CONV_WCAP;
    if (f.tile_g == 0)
        p.g = min_i(min_i(p.ct, (cap - btap) / kk),
                    CONV_ACT / ((dim_t)src_rows(f, eb, 1, p.sh) * (dim_t)p.sw));
    else
        p.g = f.tile_g < (uint32_t)p.ct ? (int)f.tile_g : p.ct;
    const int a = CONV_ACT / ((dim_t)p.g * (dim_t)p.sw);   /* source rows per channel that fit */
    if (f.tile_br == 0) {
        int br = min_i(p.oh, CONV_OUT / p.ow);
        if (a < p.sh)
            br = min_i(br, eb ? (dim_t)a * (dim_t)f.stride - f.k_h + 1 : (a - f.k_h) / f.stride + 1);
        p.br = br;   /* < 1 only when tile_g leaves no source row: not fits */
    } else {
        p.br = f.tile_br < (uint32_t)p.oh ? (int)f.tile_br : p.oh;
    }
    p.fits = p.br >= 1 && (dim_t)p.g * (dim_t)kk <= cap &&
             (dim_t)p.br * (dim_t)p.ow <= CONV_OUT && src_rows(f, eb, p.br, p.sh) <= a;
    const int br = p.br >= 1 ? p.br : 1;   /* a plan that does not fit never runs */
    p.bands = cdiv_i(p.oh, br);
    p.groups = cdiv_i(p.ct, p.g);
    p.slot = (dim_t)src_rows(f, eb, br, p.sh) * (dim_t)p.sw;
    /* Row tiles per block, tile_rb or the rule.  Block mode (one band; FP,
     * EB with one group, WG with any): the most whose weights (WG: a
     * group's tap accumulators) fit cap, whose outputs (WG: errors) fit
     * CONV_OUT and (FP with biases) whose biases fit CONV_RB.
     * EB with one group and several bands: every row tile when all their
     * weights fit, else one.  1 for every other case. */
    const int rtiles = cdiv_i(p.rows, PE_ROWS);
    const int npos = (dim_t)p.oh * (dim_t)p.ow;
    const int rbmax = f.op == OP_CONV_FP && (f.flags & FLAG_BIAS) ? CONV_RB : MAX_RTILES;
    /* tap accumulators (WG: a group's) or weights per row tile; WG's bias tap one more */
    const int wtile = (dim_t)p.g * (dim_t)kk + btap;
    p.rb = 1;
    p.bm = p.bands == 1 && (p.groups == 1 || f.op == OP_CONV_WG);
    if (p.bm) {
        if (f.tile_rb == 0)
            p.rb = min_i(min_i(rtiles, rbmax), min_i(cap / wtile, CONV_OUT / npos));
        else
            p.rb = f.tile_rb < (uint32_t)rtiles ? (int)f.tile_rb : rtiles;
        p.fits = p.fits && p.rb >= 1 && p.rb <= rbmax &&
                 (dim_t)p.rb * (dim_t)p.g * (dim_t)kk + (btap ? p.rb : 0) <= cap &&
                 (dim_t)p.rb * (dim_t)npos <= CONV_OUT;
        if (p.rb < 1)
            p.rb = 1;   /* does not fit: never runs */
    } else if (eb && p.groups == 1) {
        if (f.tile_rb == 0)
            p.rb = (dim_t)rtiles * (dim_t)p.ct * (dim_t)kk <= CONV_WCAP ? rtiles : 1;
        else
            p.rb = f.tile_rb < (uint32_t)rtiles ? (int)f.tile_rb : rtiles;
        p.fits = p.fits && (dim_t)p.rb * (dim_t)p.ct * (dim_t)kk <= CONV_WCAP;
    }
    /* FP, EB with several groups: as many units per chunk as racc holds
     * (a unit's band takes br * ow positions, <= CONV_OUT where it fits) */
    p.cu = 1;
    if (f.op != OP_CONV_WG && p.groups > 1) {
        const int units = (dim_t)cdiv_i((int)f.n, PE_LANES) * (dim_t)p.bands;
        p.cu = max_i(1, min_i(units, CONV_OUT / ((dim_t)br * (dim_t)p.ow)));
    }
    return p;
}

/* ---------------------------------------------------------------- bursts */

/* ------------------------------------------- band buffers, word by word
 *
 * A burst between DDR and a band buffer (act, rowb, obuf: per lane and
 * channel a RAM of beat-wide words) walks runs of consecutive positions of
 * one (lane, channel): `run` bytes, then the next channel's.  A step moves
 * one piece: the part of a run that lies in one buffer word, through a
 * two-beat window of the stream and a byte funnel (agu_funnel), so a step
 * is one word written (read) with byte enables, one access of the buffer's
 * port, and at most one beat in (out).  Reads keep the window a beat ahead
 * and spend their first step priming it; a write's beat leaves when the
 * stream passes its end, the last one in a step of its own unless it ends
 * on a beat boundary.  The loops count their steps as they run: the
 * bursts' AGU cycles (perfmodel._conv_runs counts the same pieces). */

static_assert(CONV_ACT % DDR_BEAT == 0 && CONV_OUT % DDR_BEAT == 0,
              "the band buffers hold whole words (a step reads or writes one)");
static_assert(PE_ROWS <= PE_LANES * PE_COLS,
              "a row tile's FP weights stage in the column-operand banks (conv_weights_staged)");

/* The buffer word whose lanes [j0, j0 + n) are stream bytes i0 .. i0 + n
 * of the window (w0, w1) (j0 + n <= W, i0 + n <= 2W). */
static inline beat_t conv_word_in(const beat_t &w0, const beat_t &w1, int i0, int j0) {
#pragma HLS INLINE
    return agu_funnel(w0, i0 >= j0 ? w1 : w0, (i0 - j0) & (DDR_BEAT - 1));
}

/* A buffer word rotated so that its lane j0 sits at window lane i0 (mod
 * W): conv_word_in's mirror, placed into the output window. */
static inline beat_t conv_word_out(const beat_t &v, int i0, int j0) {
#pragma HLS INLINE
    return agu_funnel(v, v, (j0 - i0) & (DDR_BEAT - 1));
}

/* Lanes [j0, j0 + n) of v into the buffer word at element base (a
 * multiple of W): one write, byte enables. */
template <int CAP>
static inline void conv_put_word(q8_t buf[CAP], int base, const beat_t &v, int j0, int n) {
#pragma HLS INLINE
put_word:
    for (int j = 0; j < DDR_BEAT; j++) {
#pragma HLS UNROLL
        if (j >= j0 && j < j0 + n)
            buf[base + j] = (q8_t)beat_lane(v, j);
    }
}

/* The buffer word at element base (a multiple of W): one read. */
template <int CAP>
static inline beat_t conv_get_word(const q8_t buf[CAP], int base) {
#pragma HLS INLINE
    beat_t v = beat_zero();
get_word:
    for (int j = 0; j < DDR_BEAT; j++) {
#pragma HLS UNROLL
        set_lane(v, j, (uint8_t)buf[base + j]);
    }
    return v;
}

/* Lanes [i0, i0 + n) of the output window (w0, w1) from the rotated word
 * r (lane i of either beat: r's lane i): the rest left as they are. */
static inline void conv_merge(beat_t &w0, beat_t &w1, const beat_t &r, int i0, int n) {
#pragma HLS INLINE
merge_lanes:
    for (int i = 0; i < DDR_BEAT; i++) {
#pragma HLS UNROLL
        if (i >= i0 && i < i0 + n)
            set_lane(w0, i, beat_lane(r, i));
        if (i + DDR_BEAT < i0 + n)
            set_lane(w1, i, beat_lane(r, i));
    }
}

/* Where a burst's next element goes (comes from): row `row` (a batch lane,
 * a PE row), bank `bank`, element at + pos; `run` elements per bank, after
 * `banks` banks bank 0 at + step, after `row_len` elements (a multiple of
 * run; 0: one row) the next row from bank 0 at 0.  conv_cursor_add moves
 * it n elements on, n at most the rest of the run: the band bursts a piece
 * at a time, the weight loaders and the kernel store one element. */
struct conv_cursor {
    int row, bank, at, pos, inrow;
};

/* At a lane row's end (row_len elements; 0: one row) the next row, from bank 0 at 0. */
static inline void conv_cursor_row(conv_cursor &p, int row_len) {
#pragma HLS INLINE
    if (p.inrow == row_len) {
        p.inrow = 0;
        p.row++;
        p.bank = 0;
        p.at = 0;
    }
}

static inline void conv_cursor_add(conv_cursor &p, int n, int run, int banks, int step,
                                   int row_len) {
#pragma HLS INLINE
    p.pos += n;
    p.inrow += n;
    if (p.pos == run) {
        p.pos = 0;
        if (++p.bank == banks) {
            p.bank = 0;
            p.at += step;
        }
        conv_cursor_row(p, row_len);
    }
}

/* The piece at cursor p: element d = at + pos, its word's first element
 * and lane j0, and n bytes to the word's end or the run's. */
struct band_piece {
    int base, j0, n;
};

static inline band_piece band_piece_at(const conv_cursor &p, int run) {
#pragma HLS INLINE
    band_piece c;
    const int d = p.at + p.pos;
    c.j0 = d & (DDR_BEAT - 1);
    c.base = d - c.j0;
    const int room = DDR_BEAT - c.j0, left = run - p.pos;
    c.n = room < left ? room : left;
    return c;
}

/* One-byte runs (a band of 1 x 1 planes, or 1-wide bands): run k's byte
 * goes to bank k % NB, so min(NB, W) consecutive runs are as many banks,
 * one word write (read) each: band_rd and band_wr move BAND_ONE of them a
 * step, not one, where NB is a power of two (the bank of each lane a
 * rotation). */
#define BAND_ONE_BANKS(NB) (((NB) & ((NB) - 1)) == 0)
#define BAND_ONE(NB) ((NB) < DDR_BEAT ? (NB) : DDR_BEAT)
/* A bank index modulo NB (a power of two), and a count up to NB: as wide
 * as they are in synthesis; the C-sim keeps ints (masked) for speed. */
#ifdef __SYNTHESIS__
#define BAND_BANK_T(NB) ap_uint<CTRAIN_CLOG2(NB)>
#define BAND_CNT_T(NB) ap_uint<CTRAIN_CLOG2(NB) + 1>
#else
#define BAND_BANK_T(NB) int
#define BAND_CNT_T(NB) int
#endif

/* The runs a one-byte step moves at cursor p: BAND_ONE, or fewer at the
 * burst's end (`left` bytes) or the lane row's (row_len, 0: one row). */
template <int NB>
static inline int band_one_n(const conv_cursor &p, uint32_t left, int row_len) {
#pragma HLS INLINE
    int n = BAND_ONE(NB);
    if (left < (uint32_t)n)
        n = (int)left;
    if (row_len != 0 && row_len - p.inrow < n)
        n = row_len - p.inrow;
    return n;
}

/* Bytes 0 .. n-1 of v into the runs at cursor p: lane d to bank
 * (bank + d) % NB, entry at (at + slot where the banks wrapped). */
template <int L, int NB, int CAP>
static inline void band_one_put(q8_t buf[L][NB][CAP], const conv_cursor &p, const beat_t &v,
                                int n, int slot) {
#pragma HLS INLINE
    const BAND_BANK_T(NB) b0 = p.bank;
    const BAND_CNT_T(NB) nn = n;
band_one_put:
    for (int jb = 0; jb < NB; jb++) {
#pragma HLS UNROLL
        const BAND_BANK_T(NB) d = ((BAND_BANK_T(NB))jb - b0) & (NB - 1);   /* bank jb's lane */
        if (d < nn)
            buf[p.row][jb][p.at + (jb < b0 ? slot : 0)] = (q8_t)beat_lane(v, d);
    }
}

/* The runs at cursor p, n of them, as lanes 0 .. n-1 (band_one_put's mirror). */
template <int L, int NB, int CAP>
static inline beat_t band_one_get(const q8_t buf[L][NB][CAP], const conv_cursor &p, int n,
                                  int slot) {
#pragma HLS INLINE
    beat_t v = beat_zero();
    const BAND_BANK_T(NB) b0 = p.bank;
band_one_get:
    for (int d = 0; d < BAND_ONE(NB); d++) {
#pragma HLS UNROLL
        const BAND_CNT_T(NB) e = b0 + d;   /* bit log2 NB: the banks wrapped */
        if (d < n)
            set_lane(v, d, (uint8_t)buf[p.row][(BAND_BANK_T(NB))e & (NB - 1)][p.at + (e >= NB ? slot : 0)]);
    }
    return v;
}

/* Cursor p n one-byte runs on (n <= NB: the banks wrap at most once). */
template <int NB>
static inline void band_one_add(conv_cursor &p, int n, int slot, int row_len) {
#pragma HLS INLINE
    p.inrow += n;
    p.bank += n;
    if (p.bank >= NB) {
        p.bank -= NB;
        p.at += slot;
    }
    conv_cursor_row(p, row_len);
}

/* len bytes at addr -> buf[row][bank][at + pos] (cursor from row0, bank0,
 * at0: conv_cursor).  With a period > 0 only the first `run` bytes of every
 * period-long stretch of the burst are kept, the rest read and dropped a
 * beat per step: a band of rows of consecutive planes (period: the plane)
 * in one burst through the planes' other rows, where those are fewer bytes
 * than a burst's latency moves (conv_span).  With bursts > 1, `bursts`
 * such runs of len bytes, `stride` apart in DDR, burst k's cursor from
 * at0 + k * ustep: one loop whose beats are each a read request of its own
 * (the runs are not one burst), so they pay one latency between them and
 * a beat costs at least AGU_II_REQ cycles (agu_count_reqs). */
template <int L, int NB, int CAP>
static void band_rd(const ddr_t *ddr, uint32_t addr, uint32_t len, q8_t buf[L][NB][CAP], int row0,
                    int bank0, int at0, int run, int slot, int row_len, int period,
                    int bursts = 1, uint32_t stride = 0, int ustep = 0) {
    uint64_t steps = 0, beats = 0;
    if (len != 0 && bursts > 0) {
        agu_burst gb = agu_plan(addr, len);
        conv_cursor p = {row0, bank0, at0, 0, 0};
        int per = 0;          /* the next byte's place in its period */
        uint32_t q = 0;       /* bytes of the burst moved */
        uint32_t nb = 0;      /* beats read: the window holds beats nb - 2, nb - 1 */
        beat_t w0 = beat_zero(), w1 = beat_zero();
        uint32_t src = addr;  /* the burst's address */
        int k = 0, kat = at0; /* the burst, its cursor's start */
        const bool one = run == 1 && period == 0 && BAND_ONE_BANKS(NB);
#ifndef __SYNTHESIS__
        if (bursts > 1)
            beats = agu_count_run(addr, len);
#endif
    band_rd:
        while (k < bursts) {
        /* a step: one piece, one buffer word, at most one beat read */
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=2 max=L*NB*CAP
            const uint32_t sq = gb.off + q;
            const uint32_t B = sq >> AGU_Q8_LOG2;   /* the beat of byte q */
            if (nb < B + 2) {   /* the window a beat ahead (the first step only primes it) */
                w0 = w1;
                w1 = nb < gb.beats ? ddr_get(ddr, gb.first + nb, agu_lo(gb, nb), agu_hi(gb, nb))
                                   : beat_zero();
                nb++;
            }
            if (nb == B + 2) {
                const int i0 = sq & (DDR_BEAT - 1);
                int n;
                if (one) {   /* one-byte runs: up to BAND_ONE runs a step, a bank each */
                    n = band_one_n<NB>(p, len - q, row_len);
                    band_one_put<L, NB, CAP>(buf, p, conv_word_in(w0, w1, i0, 0), n, slot);
                    band_one_add<NB>(p, n, slot, row_len);
                } else if (period == 0 || per < run) {
                    const band_piece c = band_piece_at(p, run);
                    conv_put_word<CAP>(buf[p.row][p.bank], c.base, conv_word_in(w0, w1, i0, c.j0),
                                       c.j0, c.n);
                    conv_cursor_add(p, c.n, run, NB, slot, row_len);
                    n = c.n;
                } else {   /* dropped, to the period's end or the beat's */
                    const int room = DDR_BEAT - i0, left = period - per;
                    n = room < left ? room : left;
                }
                if (period != 0) {
                    per += n;
                    if (per == period)
                        per = 0;
                }
                q += n;
                if (q == len) {   /* the next burst, its cursor ustep further */
                    k++;
                    agu_run_next(src, gb, beats, stride, len, k, bursts);
                    kat += ustep;
                    p.row = row0;
                    p.bank = bank0;
                    p.at = kat;
                    p.pos = 0;
                    p.inrow = 0;
                    per = 0;
                    q = 0;
                    nb = 0;
                }
            }
#ifndef __SYNTHESIS__
            steps++;
#endif
        }
    }
    if (bursts > 1)
        agu_count_reqs(beats, steps);
    else
        agu_count_loop(false, addr, len, steps);
}

/* Shared partial beats the row bursts hold: one per (lane, row) (rows_wr). */
#define ROWS_HELD (PE_LANES * PE_ROWS)

/* buf[row][bank][at + pos] -> len bytes at addr (cursor from row0, bank0,
 * at 0: conv_cursor); a partial first beat (sm) or last (em) of piece e of
 * a set put, held or joined (agu.h ddr_put_edge; rows_wr). */
template <int L, int NB, int CAP>
static void band_wr(ddr_t *ddr, uint32_t addr, uint32_t len, const q8_t buf[L][NB][CAP], int row0,
                    int bank0, int run, int slot, int row_len, beat_t tail[ROWS_HELD],
                    beat_t head[ROWS_HELD], int e, agu_edge sm, agu_edge em) {
    uint64_t steps = 0;
    if (len != 0) {
        const agu_burst gb = agu_plan(addr, len);
        conv_cursor p = {row0, bank0, 0, 0, 0};
        const bool one = run == 1 && BAND_ONE_BANKS(NB);
        uint32_t q = 0;    /* bytes of the burst placed */
        uint32_t nw = 0;   /* beats written: the window holds beats nw, nw + 1 */
        beat_t w0 = beat_zero(), w1 = beat_zero();
    band_wr:
        while (nw < gb.beats) {
        /* a step: one piece (one buffer word read), at most one beat written */
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=L*NB*CAP
            bool out = true;   /* the last beat: flushed in a step of its own */
            if (q < len) {
                const int i0 = (gb.off + q) & (DDR_BEAT - 1);
                if (one) {   /* one-byte runs: up to BAND_ONE runs a step, a bank each */
                    const int n = band_one_n<NB>(p, len - q, row_len);
                    conv_merge(w0, w1, conv_word_out(band_one_get<L, NB, CAP>(buf, p, n, slot), i0, 0),
                               i0, n);
                    band_one_add<NB>(p, n, slot, row_len);
                    q += n;
                } else {
                    const band_piece c = band_piece_at(p, run);
                    const beat_t v = conv_get_word<CAP>(buf[p.row][p.bank], c.base);
                    conv_merge(w0, w1, conv_word_out(v, i0, c.j0), i0, c.n);
                    conv_cursor_add(p, c.n, run, NB, slot, row_len);
                    q += c.n;
                }
                out = ((gb.off + q) >> AGU_Q8_LOG2) > nw;   /* the stream passed beat nw's end */
            }
            if (out) {
                const int lo = agu_lo(gb, nw), hi = agu_hi(gb, nw);
                const bool first = nw == 0 && lo != 0, last = nw + 1 == gb.beats && hi != DDR_BEAT;
                ddr_put_edge<ROWS_HELD>(ddr, gb.first + nw, w0, lo, hi, first,
                                     first ? sm : last ? em : AGU_PUT, tail, head, e);
                w0 = w1;
                w1 = beat_zero();
                nw++;
            }
#ifndef __SYNTHESIS__
            steps++;
#endif
        }
    }
    int held, joined;
    agu_edge_counts(addr, len, sm, em, held, joined);
    agu_count_loop(true, addr, len, steps, 0, (uint64_t)held, (uint64_t)joined);
}

/* Whether `n` planes' bands of `run` bytes read in one burst through the
 * planes' other rows (band_rd with a period) beat one burst per plane:
 * the other rows of a plane are fewer bytes than the beats one burst's
 * latency and fill would move (cycle_model.h), and a plane is at least a
 * beat. */
static inline bool conv_span(int n, int run, int plane) {
#pragma HLS INLINE
    return n > 1 && plane >= DDR_BEAT &&
           plane - run < (CTRAIN_RD_LATENCY + CTRAIN_AGU_DEPTH) * DDR_BEAT;
}

/* FP weights: rows of w[co][ci][t], `rowlen` = gc*kk bytes each (one burst
 * for the whole tile, or block, when the group holds every channel), into
 * wb[r][gi % C][(gi / C) * kk + t] for the group's channel gi; after
 * PE_ROWS rows the next row tile's, `tstep` entries further (block mode).
 * With runs > 1 (a group of a layer's channels: a row's slice of
 * len = rowlen bytes, the rows `stride` apart) one loop reads every run,
 * a request per beat, the runs paying one latency (agu_count_reqs). */
static void rd_weights_fp(const ddr_t *ddr, uint32_t addr, uint32_t len, pe_weights_t wb,
                          int r0, int kk, int rowlen, int tstep, int runs = 1,
                          uint32_t stride = 0) {
    if (runs == 1)
        agu_count(false, addr, len, CONV_II_FILL);
    if (len == 0 || runs == 0)
        return;
    agu_burst gb = agu_plan(addr, len);
    uint64_t total = runs > 1 ? agu_count_run(addr, len) : 0;   /* C-sim: the beats counted */
    conv_cursor p = {r0, 0, 0, 0, 0};
    int tb = 0;   /* the row tile's first entry */
    uint32_t at = addr, t = 0;   /* the run's byte step */
    int k = 0;    /* the run */
    beat_t w = beat_zero();
rd_weights_fp:
    while (k < runs) {
    /* a lane a cycle (agu_byte), CONV_II_FILL = DDR_BEAT cycles a beat: one
     * RAM write and one cursor step a cycle (unrolled lanes stepped it
     * DDR_BEAT times in a chain) */
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=DDR_BEAT max=PE_ROWS*CONV_WCAP+DDR_BEAT
        q8_t v;
        uint32_t i;
        if (agu_byte(ddr, gb, t, w, v, i)) {
            wb[p.row][p.bank][tb + p.at + p.pos] = v;
            conv_cursor_add(p, 1, kk, PE_COLS, kk, rowlen);
            if (p.row == PE_ROWS) {
                p.row = 0;
                tb += tstep;
            }
        }
        if (++t == gb.beats * DDR_BEAT) {   /* the next run (its row: the cursor's) */
            t = 0;
            k++;
            agu_run_next(at, gb, total, stride, len, k, runs);
        }
    }
    if (runs > 1)
        agu_count_reqs(total, total * CONV_II_FILL);
}

/* EB weights lane by lane, `runs` c_out channels co: w[co][ci][t] for
 * consecutive ci, len = rows * kk bytes at addr + co * stride each, into
 * wb[r][co % C][(co / C) * kk + t], ci = r; after PE_ROWS rows the next
 * row tile's entries, `tile_step` further (all row tiles resident). The
 * runs are `stride` apart, too far for one burst: one pipelined loop issues
 * a single-beat read per beat of every run, so the runs pay one latency
 * between them, not one each (agu_count_reqs). */
static void rd_weights_eb_runs(const ddr_t *ddr, uint32_t addr, uint32_t stride, int runs,
                               uint32_t len, pe_weights_t wb, int kk, int tile_step) {
    if (runs == 0 || len == 0)
        return;
    agu_burst gb = agu_plan(addr, len);
    uint64_t total = agu_count_run(addr, len);   /* C-sim: the beats counted */
    uint32_t at = addr, s = 0;   /* the run's byte step */
    int co = 0, c = 0, r = 0, t = 0;
    int wrun = 0;   /* the run's tap 0 entry (its column's (co / C) * kk) */
    int wsub = 0;   /* the run's current row tile's entry */
    beat_t w = beat_zero();
rd_weights_eb_runs:
    while (co < runs) {
    /* a lane a cycle (agu_byte), CONV_II_FILL = DDR_BEAT cycles a beat (as
     * rd_weights_fp); a request per beat (AGU_II_REQ bounds the rate) */
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=DDR_BEAT max=PE_ROWS*CONV_WCAP+DDR_BEAT
        q8_t v;
        uint32_t i;
        if (agu_byte(ddr, gb, s, w, v, i)) {
            wb[r][c][wsub + t] = v;
            if (++t == kk) {
                t = 0;
                if (++r == PE_ROWS) {
                    r = 0;
                    wsub += tile_step;
                }
            }
        }
        if (++s == gb.beats * DDR_BEAT) {   /* the next c_out channel's run */
            s = 0;
            r = 0;
            t = 0;
            co++;
            if (++c == PE_COLS) {
                c = 0;
                wrun += kk;
            }
            wsub = wrun;
            agu_run_next(at, gb, total, stride, len, co, runs);
        }
    }
    agu_count_reqs(total, total * CONV_II_FILL);
}

/* WG kernels: tap accumulators -> int32 gradients, quantized in the burst
 * (DDR_BEAT / 4 words per beat; dst is 4-aligned), rows of `rowlen` = gc*kk
 * words as rd_weights_fp lays them out (block mode: after PE_ROWS rows the
 * next row tile's, `tstep` entries further; the first tile's from tb0).
 * With words1 > 0 (KERNELS_2P:
 * the ZCU102's second data port) a second burst on ddr1 at addr1 carries
 * the rows `h` further, beat b of both from the same accumulator words
 * (a word holds every row of its column and tap): a beat on each port per
 * iteration, so the two streams share the accumulators' two reads a cycle.
 * The second burst's addr1 has addr's beat alignment and no more beats. */
static void wr_kernels(ddr_t *ddr, uint32_t addr, uint32_t words, const pe_tapacc_t acc, int r0,
                       int kk, int rowlen, int tstep, int sh_w, q_stats &st, int tb0 = 0,
                       ddr_t *ddr1 = 0, uint32_t addr1 = 0, uint32_t words1 = 0, int h = 0) {
    agu_count(true, addr, 4 * (uint64_t)words, CONV_II_KERNELS);
    /* the second stream's beats go out in the first's iterations: its AGU cycles are the first's */
    agu_count_loop(true, addr1, 4 * (uint64_t)words1, 0, 1);
    if (words == 0)
        return;
    const agu_burst gb = agu_plan(addr, 4 * words);
#if KERNELS_2P
    const agu_burst g1 = agu_plan(addr1, 4 * (words1 ? words1 : 1));
#else
    (void)ddr1;
    (void)words1;
    (void)h;
#endif
    conv_cursor p = {r0, 0, 0, 0, 0};
    int tb = tb0;   /* the row tile's first entry */
    uint32_t b = 0;
    int ks = 0;    /* the beat's step: words [ks KERNELS_WORDS, (ks + 1) KERNELS_WORDS) */
    beat_t w = beat_zero();
#if KERNELS_2P
    beat_t w1 = beat_zero();
#endif
wr_kernels:
    for (uint32_t t = 0; t < gb.beats * KERNELS_STEPS; t++) {
    /* KERNELS_WORDS words a cycle, CONV_II_KERNELS = KERNELS_STEPS cycles a
     * beat: the accumulators' two reads a cycle, and KERNELS_WORDS copies of
     * the bank select and quantizer, not a beat's W / 4 */
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=4*PE_ROWS*CONV_TCAP
        const int lo = agu_lo(gb, b), hi = agu_hi(gb, b);
#if KERNELS_2P
        const bool two = words1 != 0 && b < g1.beats;
        const int hi1 = two ? agu_hi(g1, b) : 0;
#endif
        q_lanes ql = {0, 0, 0, 0};   /* the step's words meet the statistics as one update */
        for (int jj = 0; jj < KERNELS_WORDS; jj++) {
#pragma HLS UNROLL
#if KERNELS_STEPS > 1
            const int j = ks * KERNELS_WORDS + jj;
#else
            const int j = jj;   /* a beat a step: the lanes constant */
#endif
            if (4 * j >= lo && 4 * j < hi) {
#if KERNELS_2P
                /* the column's word at the entry: every row's accumulator, one read */
                pe_sum_t word[PE_ROWS];
#pragma HLS ARRAY_PARTITION variable=word type=complete
                for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                    word[r] = acc[r][p.bank][tb + p.at + p.pos];
                }
                const wide_t v = rshift_round((wide_t)word[p.row], sh_w);
#else
                const wide_t v = rshift_round((wide_t)acc[p.row][p.bank][tb + p.at + p.pos], sh_w);
#endif
                bool clamped;
                const int32_t o = sat32(v, clamped);
                q_lanes_add(ql, v, o, clamped);
                for (int k = 0; k < 4; k++) {
#pragma HLS UNROLL
                    set_lane(w, 4 * j + k, (uint8_t)((uint32_t)o >> (8 * k)));
                }
#if KERNELS_2P
                if (4 * j < hi1) {   /* the same word's row p.row + h */
                    const wide_t v1 = rshift_round((wide_t)word[p.row + h], sh_w);
                    bool clamped1;
                    const int32_t o1 = sat32(v1, clamped1);
                    q_lanes_add(ql, v1, o1, clamped1);
                    for (int k = 0; k < 4; k++) {
#pragma HLS UNROLL
                        set_lane(w1, 4 * j + k, (uint8_t)((uint32_t)o1 >> (8 * k)));
                    }
                }
#endif
                conv_cursor_add(p, 1, kk, PE_COLS, kk, rowlen);
                if (p.row == PE_ROWS) {
                    p.row = 0;
                    tb += tstep;
                }
            }
        }
        q_stats_merge(st, ql);
        if (++ks == KERNELS_STEPS) {   /* the beat's last step */
            ks = 0;
            ddr_put(ddr, gb.first + b, w, lo, hi);
            w = beat_zero();
#if KERNELS_2P
            if (two)
                ddr_put(ddr1, g1.first + b, w1, lo, hi1);
            w1 = beat_zero();
#endif
            b++;
        }
    }
}

/* ---------------------------------------------------------------- items */

/* One item of the pipeline: lane tile, band and group. */
struct conv_item {
    int b0, vb;     /* first image, valid lanes */
    int y0, y1;     /* swept rows */
    int lo, hi;     /* source rows loaded */
    int grp;        /* group */
    int u;          /* FP/EB: its unit's place in the chunk (racc at u * br * ow) */
    int wl;         /* FP/EB with several groups: the weight load it uses (chunk * groups + group) */
};

static void source_rows(const ctrain_insn_t &f, bool eb, const conv_plan &p, conv_item &it) {
    const dim_t s = (dim_t)f.stride;
    const int pd = f.pad;
    if (!eb) {
        it.lo = max_i(0, (dim_t)it.y0 * s - pd);
        it.hi = min_i(p.sh, (dim_t)(it.y1 - 1) * s - pd + f.k_h);
    } else {
        it.lo = max_i(0, -fdiv(-(it.y0 + pd - f.k_h + 1), s));
        it.hi = min_i(p.sh, fdiv(it.y1 - 1 + pd, s) + 1);
    }
    if (it.hi < it.lo)
        it.hi = it.lo;
}

/* Column operand of an item: the group's channels of source rows [lo, hi)
 * of each valid lane, one burst per lane when that is the whole plane, else
 * one per channel. */
static void load_cols(const ddr_t *ddr, uint32_t base, const conv_plan &p, const conv_item &it,
                      pe_cols_t act) {
    /* its bursts one at a time: one funnel and word port for the three call sites */
#pragma HLS ALLOCATION function instances=band_rd limit=1
    const int c0 = (dim_t)it.grp * (dim_t)p.g * PE_COLS;
    const int gc = min_i(p.g * PE_COLS, p.cols - c0);
    const int run = (dim_t)(it.hi - it.lo) * (dim_t)p.sw;
    if (it.lo == 0 && it.hi == p.sh && gc == p.cols) {
        /* whole planes of every channel: the lanes' images are contiguous */
        band_rd<PE_LANES, PE_COLS, CONV_ACT>(
            ddr, base + (uint32_t)it.b0 * (dim_t)p.cols * (dim_t)p.sh * (dim_t)p.sw,
            (dim_t)it.vb * (dim_t)gc * (dim_t)run, act, 0, 0, 0, run, p.slot, (dim_t)gc * (dim_t)run, 0);
        return;
    }
    for (int l = 0; l < it.vb; l++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_LANES
        const uint32_t img = (uint32_t)(it.b0 + l) * (dim_t)p.cols;
        if (it.lo == 0 && it.hi == p.sh) {
            band_rd<PE_LANES, PE_COLS, CONV_ACT>(ddr, base + (img + c0) * (dim_t)p.sh * (dim_t)p.sw,
                                                 (dim_t)gc * (dim_t)run, act, l, 0, 0, run, p.slot, 0, 0);
            continue;
        }
        /* one burst per channel, or the band of every channel in one (conv_span) */
        const int plane = (dim_t)p.sh * (dim_t)p.sw;   /* < 2^17: not a dim_t */
        const bool span = conv_span(gc, run, plane);
        const int bursts = span ? 1 : gc;
        const uint32_t len = span ? (dim_t)(gc - 1) * (uint32_t)plane + run : (uint32_t)run;
        int bank = 0, at = 0;
        for (int gi = 0; gi < bursts; gi++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CONV_WCAP
            band_rd<PE_LANES, PE_COLS, CONV_ACT>(
                ddr, base + ((img + c0 + gi) * (dim_t)p.sh + it.lo) * (dim_t)p.sw, len, act, l, bank,
                at, run, p.slot, 0, span ? plane : 0);
            if (++bank == PE_COLS) {
                bank = 0;
                at += p.slot;
            }
        }
    }
}

/* Rows r0 .. r0+vr of swept rows [y0, y1) of each valid lane between DDR at
 * base (a tensor of `rows` channels on the swept plane) and buf[l][r][pos]
 * (block mode: row r0 + t*PE_ROWS + r at buf[l][r][t*run + pos]): one burst
 * per lane when the band is the whole plane (one for every lane when the
 * item has every row), else one per row (reads: every row's band in one,
 * through the other rows, where conv_span).  rows_rd reads (WG errors, EB
 * masks), rows_wr writes (FP/EB outputs); rows_burst is their burst (l, r). */
struct rows_walk {
    int run, plane;
    bool all, span;   /* one burst for every lane; a read of every row's band */
    int lanes, bursts;
};

static rows_walk rows_walk_of(const conv_plan &p, const conv_item &it, int vr, bool write) {
#pragma HLS INLINE
    rows_walk w;
    w.run = (dim_t)(it.y1 - it.y0) * (dim_t)p.ow;
    w.plane = (dim_t)p.oh * (dim_t)p.ow;   /* < 2^17: not a dim_t */
    w.all = p.bands == 1 && vr == p.rows;
    w.span = !write && p.bands > 1 && conv_span(vr, w.run, w.plane);
    w.lanes = w.all ? 1 : it.vb;
    w.bursts = p.bands == 1 || w.span ? 1 : vr;
    return w;
}

/* Burst (l, r): its address and length, its first buffer row and bank, and
 * the buffer's row length (whole lanes) */
static void rows_burst(const conv_plan &p, const conv_item &it, const rows_walk &w, uint32_t base,
                       int r0, int vr, int l, int r, uint32_t &at, uint32_t &len, int &row_len) {
#pragma HLS INLINE
    const uint32_t img = (uint32_t)(it.b0 + l) * (dim_t)p.rows + r0;
    row_len = w.all ? (dim_t)vr * (dim_t)w.run : 0;
    if (w.all) {
        at = base + (uint32_t)it.b0 * (dim_t)p.rows * (dim_t)p.oh * (dim_t)p.ow;
        len = (dim_t)it.vb * (dim_t)vr * (dim_t)w.run;
    } else if (p.bands == 1) {
        at = base + img * (dim_t)p.oh * (dim_t)p.ow;
        len = (dim_t)vr * (dim_t)w.run;
    } else {
        at = base + ((img + r) * (dim_t)p.oh + it.y0) * (dim_t)p.ow;
        len = w.span ? (dim_t)(vr - 1) * (uint32_t)w.plane + w.run : (uint32_t)w.run;
    }
}

static void rows_rd(const ddr_t *ddr, uint32_t base, const conv_plan &p, const conv_item &it,
                    int r0, int vr, pe_rows_t buf) {
    /* its bursts one at a time: one reader for the call sites */
#pragma HLS ALLOCATION function instances=band_rd limit=1
    const rows_walk w = rows_walk_of(p, it, vr, false);
rows_rd_lanes:
    for (int l = 0; l < w.lanes; l++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_LANES
    rows_rd_bursts:
        for (int r = 0; r < w.bursts; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
            uint32_t at, len;
            int row_len;
            rows_burst(p, it, w, base, r0, vr, l, r, at, len, row_len);
            band_rd<PE_LANES, PE_ROWS, CONV_OUT>(ddr, at, len, buf, w.all ? 0 : l, r, 0, w.run,
                                                 p.bands == 1 ? w.run : 0, row_len,
                                                 w.span ? w.plane : 0);
        }
    }
}

/* Where a lane's pieces are bands of its rows, every piece a beat at least
 * (the last band the shortest) and the rows within one bank row of the
 * buffer, the partial beats two pieces share are joined (agu.h
 * ddr_put_edge): a lane tile's items come band by band (item_of), a lane's
 * rows of the row tile are its set, tail and head one word per (lane, row). */
static void rows_wr(ddr_t *ddr, uint32_t base, const conv_plan &p, const conv_item &it, int r0,
                    int vr, const pe_rows_t buf) {
#pragma HLS ALLOCATION function instances=band_wr limit=1
    static beat_t tail[ROWS_HELD];
#pragma HLS BIND_STORAGE variable=tail type=ram_2p impl=lutram
    static beat_t head[ROWS_HELD];
#pragma HLS BIND_STORAGE variable=head type=ram_2p impl=lutram
    const rows_walk w = rows_walk_of(p, it, vr, true);
    const bool join = vr <= PE_ROWS && agu_bands_join(p.oh, p.bands, p.br, p.ow);
    const bool fb = it.y0 == 0, lb = it.y1 == p.oh;
rows_wr_lanes:
    for (int l = 0; l < w.lanes; l++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_LANES
    rows_wr_bursts:
        for (int r = 0; r < w.bursts; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
            uint32_t at, len;
            int row_len;
            rows_burst(p, it, w, base, r0, vr, l, r, at, len, row_len);
            band_wr<PE_LANES, PE_ROWS, CONV_OUT>(ddr, at, len, buf, w.all ? 0 : l, r, w.run, w.run,
                                                 row_len, tail, head, l * PE_ROWS + r,
                                                 agu_edge_first(join, fb, r),
                                                 agu_edge_last(join, lb, r, vr));
        }
    }
}

/* GATHER tables of one swept row or column v (see pe_range): FP taps
 * [max(0, p - v*s), min(k, n_src + p - v*s)); EB the taps of exact pairs,
 * from the largest source index down (tap step s). `scale` = sw for rows
 * (offsets in act), 1 for columns; `lo` the first source row loaded.
 * With `pair` (columns, PE_POS_PAIRS): pdt[v] for v < count - 1 whether
 * v and v + 1 can run as a pair over the union of their valid taps
 * (pe_array.h xpd; a pair starts at an even output index, so at even v in
 * a row that starts at one, odd v in one that does not): both have one,
 * and at each tap the second's source is the first's plus the pair's
 * distance (FP: always, stride s; EB: at stride 1, 1).
 * The entries' PE steps, max(1, n) each, summed in the same loop: rows
 * (!cols) st0 over the even entries, st1 over the odd ones; columns st0
 * in a row that starts at an even output index (with pairs: v, v + 1 from
 * v = 0), st1 in one that starts at an odd one (from v = 1), a pair the
 * union of its taps (pe_array pe_xrun) in place of its two entries' own. */
static void make_ranges(bool eb, int v0, int count, int k, int k_mul, int s, int pd, int n_src,
                        int lo, int scale, pe_range tab[CTRAIN_MAX_DIM], bool cols, bool pair,
                        bool pdt[CTRAIN_MAX_DIM], int &st0, int &st1) {
    /* FP: vs = v*s - p; EB: v + p = q*s + m, v + p - k + 1 = q2*s + m2.  The
     * offsets are kept scaled (x scale, x k_mul) and advanced by adds. */
    int vs = (dim_t)v0 * (dim_t)s - pd;
    int vs_sc = (dim_t)vs * (dim_t)scale, vs_k = (dim_t)vs * (dim_t)k_mul;
    const int s_sc = (dim_t)s * (dim_t)scale, s_k = (dim_t)s * (dim_t)k_mul;
    const int lo_sc = (dim_t)lo * (dim_t)scale;
    int q = fdiv(v0 + pd, s), m = v0 + pd - (dim_t)q * (dim_t)s;
    int q2 = fdiv(v0 + pd - k + 1, s), m2 = v0 + pd - k + 1 - (dim_t)q2 * (dim_t)s;
    int q_sc = (dim_t)q * (dim_t)scale, q_sk = (dim_t)q * (dim_t)s_k;
    int vp_k = (dim_t)(v0 + pd) * (dim_t)k_mul;
    const int top = n_src - 1, top_sc = (dim_t)top * (dim_t)scale, top_sk = (dim_t)top * (dim_t)s_k;
    int n_e = 0, k0_e = 0, own_e = 0;   /* the last entry's count, first tap, steps */
    st0 = 0;
    st1 = 0;
    CTRAIN_LOOP(ew, 1, count);
make_ranges:
    for (int i = 0; i < count; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
        int n, k0, src;
        if (!eb) {
            n = max_i(0, min_i(k, n_src - vs) - max_i(0, -vs));
            k0 = vs < 0 ? -vs_k : 0;          /* first tap max(0, -vs), x k_mul */
            src = (vs < 0 ? 0 : vs_sc) - lo_sc;
        } else {
            const int hi = min_i(top, q), lo_q = max_i(0, q2 + (m2 != 0 ? 1 : 0));
            n = max_i(0, hi - lo_q + 1);
            k0 = vp_k - (q < top ? q_sk : top_sk);   /* (v + p - hi*s) x k_mul */
            src = (q < top ? q_sc : top_sc) - lo_sc;
        }
        if (n == 0) {
            k0 = 0;
            src = 0;
        }
        tab[i].n = n;
        tab[i].k0 = k0;
        tab[i].src0 = src;
        /* entries i - 1 and i: a pair?  Its union in place of their own steps */
        const bool pi = pair && i > 0 && n > 0 && n_e > 0 && (!eb || s == 1);
        if (pair && i > 0)
            pdt[i - 1] = pi;
        const int own = n > 0 ? n : 1;
        const int un = pi ? max_i(k0 + n, k0_e + n_e) - min_i(k0, k0_e) - own_e - own : 0;
        st0 += (cols || !(i & 1) ? own : 0) + ((i & 1) ? un : 0);
        st1 += (cols || (i & 1) ? own : 0) + ((i & 1) ? 0 : un);
        n_e = n;
        k0_e = k0;
        own_e = own;
        vs += s;
        vs_sc += s_sc;
        vs_k += s_k;
        vp_k += k_mul;
        if (++m == s) {
            m = 0;
            q++;
            q_sc += scale;
            q_sk += s_k;
        }
        if (++m2 == s) {
            m2 = 0;
            q2++;
        }
    }
}

/* Item k: chunk k / (groups * cu) of cu units (lane tile, band; the last
 * chunk's fewer), its group, then its unit (conv.h); groups = 1 (WG), or
 * cu = 1: unit > group, the group fastest. */
static conv_item item_of(const ctrain_insn_t &f, bool eb, const conv_plan &p, int k, int groups) {
    /* inline: its divisions share each item process's one divider */
#pragma HLS INLINE
    conv_item it;
    const int units = (dim_t)cdiv_i((int)f.n, PE_LANES) * (dim_t)p.bands;
    const int per = (dim_t)groups * (dim_t)p.cu;   /* items of a whole chunk */
    const int c = k / per, r = k % per;
    const int cu = min_i(p.cu, units - (dim_t)c * (dim_t)p.cu);   /* units of chunk c */
    it.grp = r / cu;
    it.u = r % cu;
    it.wl = (dim_t)c * (dim_t)groups + it.grp;
    const int unit = (dim_t)c * (dim_t)p.cu + it.u;
    const int band = unit % p.bands;
    it.b0 = unit / p.bands * PE_LANES;
    it.vb = min_i(PE_LANES, (int)f.n - it.b0);
    it.y0 = (dim_t)band * (dim_t)p.br;
    it.y1 = min_i(p.oh, it.y0 + p.br);
    source_rows(f, eb, p, it);
    return it;
}

/* ---------------------------------------------------------------- unit
 *
 * The unit's stages, in dataflow order, each a function conv_unit inlines
 * (so synthesis sees the one FSM it saw before the split; the buffers stay
 * conv_unit's, with their partitioning):
 *
 *   conv_job_make, conv_pass_make   the plan, flags and shifts; the PE pass
 *   per row tile (block mode: block of row tiles):
 *     conv_tile_weights             FP, EB with one group: its weights (EB:
 *                                   at a weight block's first tile)
 *     conv_tile_bias                its biases
 *   per pass (row tile, and WG group):
 *     conv_pass_begin               WG: clear the taps
 *     items, a ping-pong pipeline:  conv_load_item (k+1) || conv_compute_item
 *                                   (k) || conv_store_item (k-1)
 *     conv_store_grads              WG: the weight and bias gradients
 */

/* Trip bounds of the unit's outer loops (LOOP_TRIPCOUNT only). */
#define CONV_CTILES ((CTRAIN_MAX_CH + PE_COLS - 1) / PE_COLS)   /* column tiles: WG groups */
/* Items of a pass in the common case (one band, one group): the lane tiles of
 * the largest batch, plus the pipeline's fill and drain. */
#define CONV_ITEMS ((CTRAIN_MAX_BATCH + PE_LANES - 1) / PE_LANES + 2)

/* What every stage reads, fixed per instruction. */
struct conv_job {
    conv_plan p;
    bool wg, eb;
    int kk;             /* taps per channel: k_h * k_w */
    int items;          /* items of a pass: lane tiles x bands (x groups: FP, EB) */
    uint32_t col_base;  /* the column operand: src (FP, EB), src2 (WG) */
    bool mask, fp_bias, wg_bias;
    int sh_out;         /* e_acc -> e.dst: FP/EB outputs, WG weight gradients */
    int sh_bias;        /* FP: raw bias -> e_acc */
    int sh_b;           /* WG: bias gradient -> e.dst */
    bool eb_blk;        /* EB with one group and several bands: weights loaded per block of p.rb row tiles */
    bool bm;            /* block mode (conv.h): block > items > the block's row tiles */
    int step;           /* channels per iteration of the row loop: a row tile, or a block (bm) */
};

static void conv_job_make(const ctrain_insn_t &f, const insn_exps &e, conv_job &j) {
#pragma HLS INLINE
    j.wg = f.op == OP_CONV_WG;
    j.eb = f.op == OP_CONV_EB;
    j.p = conv_make_plan(f);
    const conv_plan &p = j.p;
    j.kk = (dim_t)f.k_h * (dim_t)f.k_w;
    const int per_band = j.wg ? 1 : p.groups;   /* items per lane tile and band */
    j.items = (dim_t)cdiv_i((int)f.n, PE_LANES) * (dim_t)p.bands * (dim_t)per_band;
    j.col_base = j.wg ? f.src2 : f.src;
    const wide_t e_acc = (wide_t)e.src + e.src2;
    j.mask = j.eb && (f.flags & FLAG_RELU_MASK);
    j.fp_bias = f.op == OP_CONV_FP && (f.flags & FLAG_BIAS);
    j.wg_bias = j.wg && (f.flags & FLAG_BIAS);
    j.sh_out = q_shift((wide_t)e.dst - e_acc);
    j.sh_bias = q_shift(e_acc - e.src3);
    j.sh_b = q_shift((wide_t)e.dst - e.src);
    j.bm = p.bm;
    j.eb_blk = j.eb && p.groups == 1 && !p.bm;
    j.step = p.bm ? (dim_t)p.rb * PE_ROWS : PE_ROWS;
}

/* The PE array's pass: what is fixed per instruction (the per-tile and
 * per-item fields are set where they change). */
static void conv_pass_make(const ctrain_insn_t &f, const conv_job &j, pe_pass &g) {
#pragma HLS INLINE
    g.mode = j.wg ? PE_OUTER : PE_GATHER;
    g.k_h = f.k_h;
    g.k_w = f.k_w;
    g.kk = j.kk;
    g.tstep = j.eb ? f.stride : 1;
    g.dsrc = j.eb ? -1 : 1;
    g.stride = f.stride;
    g.pad = f.pad;
    g.ow = j.p.ow;
    g.sh = j.p.sh;
    g.sw = j.p.sw;
    g.slot = j.p.slot;
    g.relu = f.op == OP_CONV_FP && (f.flags & FLAG_RELU);
    g.mask = j.mask;
    g.sh_out = j.sh_out;
    g.wbase = 0;
    g.tiles = 1;
    g.roff = 0;
    g.wstep = (dim_t)j.p.ct * (dim_t)j.kk;
    g.bias = j.fp_bias;
    g.btap = j.wg_bias && j.bm;
    /* FP, EB on a PE_POS_PAIRS board: positions in pairs (from an even
     * output index: one word of the band buffers) where the weights are
     * one group (no partial sums in racc: one read and write of it a
     * cycle, the first position's) */
    g.pairs = PE_POS_PAIRS && !j.wg && j.p.groups == 1;
    g.wpairs = false;   /* WG: per item (conv_compute_item) */
}

/* Biases of the nt row tiles from r0 (nr rows; one tile but in block
 * mode): FP's raw biases shifted to e_acc into btab[t], one burst per tile
 * (the pass adds them only with g.bias); WG's bias gradient registers
 * cleared (it sums into them). */
static void conv_tile_bias(const ddr_t *ddr, const ctrain_insn_t &f, const conv_job &j, int r0,
                           int nr, int nt, int32_t braw[PE_ROWS], pe_bias_t btab,
                           wide_t rbias[PE_ROWS]) {
#pragma HLS INLINE
clear_bias:
    for (int r = 0; r < PE_ROWS; r++) {
        /* one register per PE row */
#pragma HLS UNROLL
        rbias[r] = 0;
    }
    if (!j.fp_bias)
        return;
    int left = nr;
bias_tiles:
    for (int t = 0; t < nt; t++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CONV_RB
        const int vr = min_i(PE_ROWS, left);
        agu_rd_i32<PE_ROWS>(ddr, f.src3 + 4 * (uint32_t)(r0 + (dim_t)t * PE_ROWS), braw, vr);
        CTRAIN_LOOP(ew, 1, vr);
    shift_bias:
        for (int r = 0; r < vr; r++) {
            /* one row a cycle: one shifter, the tile's word written row by row */
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
            btab[t][r] = rshift_round(braw[r], j.sh_bias);
        }
        left -= PE_ROWS;
    }
}

/* Sub-steps of an EB staged entry: its R rows, at most C a step (one read
 * per staging bank). */
#define EB_SUBS ((PE_ROWS + PE_COLS - 1) / PE_COLS)
/* EB's staging puts block row i at bank i % C, entry (i / C) * kk: a row
 * tile's rows are C banks' sub-steps where C divides R, or with R < C R
 * banks from the tile's first, past the last bank on in the next entry
 * (the KV260's 6 x 8); other shapes keep EB's weights lane by lane. */
#define EB_STAGED_SHAPE (PE_ROWS % PE_COLS == 0 || PE_ROWS < PE_COLS)
/* EB with one-byte taps (kk = 1, fully connected) stages a c_out channel's
 * rows as one run: a row tile's R rows are then R bytes of one staging
 * word where R divides the word (else, the KV260's R = 6, lane by lane). */
#define EB_FC_STAGED (DDR_BEAT % PE_ROWS == 0)

/* Weights staged through the column-operand buffer stg, idle before a
 * pass's items: one burst per unit into stg (band_rd, a piece per cycle),
 * then a word per cycle into the column banks (a column bank's word holds
 * one weight of each PE row, which lie a row apart in DDR (FP) or kk
 * apart (EB), never side by side).
 *   FP (vr rows of rowlen = c_in * kk <= CONV_ACT bytes from addr): a unit
 *     per row tile, row r a run at lane r / C, column r % C, then per entry
 *     one word of the tile's rows (rowlen cycles, R weights each); the
 *     tiles' entries tstep apart (block mode).
 *   EB (the block's vr rows = c_in channels of each of the `cols` c_out
 *     channels, kk taps a row, c_out channel co's at addr + co * c_in * kk):
 *     a unit per c_out channel, block row i's kk taps a run at lane 0,
 *     column i % C, entry (i / C) * kk (ceil(vr / C) * kk <= CONV_ACT), then
 *     per row tile and tap EB_SUBS words of up to C rows into column bank
 *     co % C, entry (co / C) * kk + tap (rd_weights_eb_runs' layout); with
 *     kk = 1 the channel's vr bytes one run at lane 0, column 0 (vr <=
 *     CONV_ACT), then per row tile one word: its R rows, R bytes of one
 *     staging word. */
/* A staged weight load (conv_weights_staged), in units: FP a row tile
 * (`tiles` of them: vr rows), EB a chunk of c_out channels (kk = 1: one
 * channel). */
struct conv_stage {
    uint32_t addr;
    bool eb, fc;         /* EB; EB of a fully connected layer (kk = 1) */
    int vr, cols, rowlen, kk, tstep;
    int ent, chunk;      /* EB (kk > 1): a channel's staged entries, channels a unit */
    int units;
    /* products made once per load (not in the processes): EB a channel's
     * burst, FP a whole tile's bytes, FP a lane row's run period, EB a
     * unit's step in DDR */
    uint32_t eb_len, tile, fp_row, ustep;
};

/* A unit's place: u (EB: its first channel), t0 (FP: its row tile's first
 * row), tb (FP: its first entry), at (its first byte in DDR) and left (FP:
 * the bytes to come). */
struct conv_stage_cur {
    int u, t0, tb;
    uint32_t at, left;
};

static conv_stage conv_stage_make(uint32_t addr, bool eb, int vr, int cols, int rowlen, int kk,
                                  int tstep, int tiles) {
#pragma HLS INLINE
    conv_stage s;
    s.addr = addr;
    s.eb = eb;
    s.fc = eb && kk == 1;
    s.vr = vr;
    s.cols = cols;
    s.rowlen = rowlen;
    s.kk = kk;
    s.tstep = tstep;
    /* one division each per load, outside the loops */
    s.ent = (vr + PE_COLS - 1) / PE_COLS * kk;
    s.chunk = eb && !s.fc ? CONV_ACT / s.ent : 1;
    s.units = eb ? (cols + s.chunk - 1) / s.chunk : tiles;   /* FP: a unit per row tile */
    s.eb_len = (uint32_t)vr * (uint32_t)kk;
    s.tile = (uint32_t)PE_ROWS * (uint32_t)rowlen;
    s.fp_row = (uint32_t)PE_COLS * (uint32_t)rowlen;
    s.ustep = (uint32_t)s.chunk * (uint32_t)rowlen;
    return s;
}

static conv_stage_cur conv_stage_first(const conv_stage &s) {
#pragma HLS INLINE
    conv_stage_cur c = {0, 0, 0, s.addr, (uint32_t)s.vr * (uint32_t)s.rowlen};
    return c;
}

/* The unit's bytes: FP its row tile's rows, EB a c_out channel's burst. */
static uint32_t conv_stage_len(const conv_stage &s, const conv_stage_cur &c) {
#pragma HLS INLINE
    return s.eb ? s.eb_len : (c.left < s.tile ? c.left : s.tile);
}

static void conv_stage_next(const conv_stage &s, conv_stage_cur &c) {
#pragma HLS INLINE
    if (!s.eb) {
        const uint32_t len = conv_stage_len(s, c);
        c.at += len;
        c.left -= len;
        c.tb += s.tstep;
    } else {
        c.at += s.ustep;
    }
    c.u += min_i(s.chunk, s.cols - c.u);
    c.t0 += PE_ROWS;
}

/* Unit c's burst into stg: FP row r of the tile a run at lane r / C; EB
 * block row i at column i % C, kk further every C rows, the unit's
 * channels ent entries apart (bursts of their own, one loop); EB with kk
 * = 1: the channel's rows one run in column 0. */
template <int SL>
static void conv_stage_rd(const ddr_t *ddr, const conv_stage &s, const conv_stage_cur &c,
                          q8_t stg[SL][PE_COLS][CONV_ACT]) {
#pragma HLS INLINE
    const int nu = min_i(s.chunk, s.cols - c.u);   /* EB: the unit's channels */
    band_rd<SL, PE_COLS, CONV_ACT>(ddr, c.at, conv_stage_len(s, c), stg, 0, 0, 0,
                                   s.fc ? s.vr : (s.eb ? s.kk : s.rowlen), s.eb && !s.fc ? s.kk : 0,
                                   s.eb ? 0 : (int)s.fp_row, 0, s.eb ? nu : 1,
                                   (uint32_t)s.rowlen, s.ent);
}

/* Unit c's words from stg into wb, a word a cycle. */
template <int SL>
static void conv_stage_put(const conv_stage &s, const conv_stage_cur &uc, pe_weights_t wb,
                           const q8_t stg[SL][PE_COLS][CONV_ACT]) {
#pragma HLS INLINE
    const bool eb = s.eb, fc = s.fc;
    const int vr = s.vr, rowlen = s.rowlen, kk = s.kk, tstep = s.tstep, ent = s.ent;
    const int u = uc.u, t0 = uc.t0, tb = uc.tb;
    const int nu = min_i(s.chunk, s.cols - u);   /* EB: the unit's channels */
    /* (some unused where EB_FC_STAGED or EB_STAGED_SHAPE compiles a branch out) */
    (void)tstep;
    (void)ent;
    (void)nu;
    if (!eb) {
        const int vt = min_i(PE_ROWS, vr - t0);
        CTRAIN_LOOP(ew, 1, rowlen);
        conv_cursor e = {0, 0, 0, 0, 0};   /* weight q's column bank and entry, as rd_weights_fp's */
    stage_words:
        for (int q = 0; q < rowlen; q++) {
        /* a word a cycle: the tile's rows' weight q, one read per staging bank */
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CONV_ACT
            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                if (r < vt)
                    wb[r][e.bank][tb + e.at + e.pos] = stg[r / PE_COLS][r % PE_COLS][q];
            }
            conv_cursor_add(e, 1, kk, PE_COLS, kk, 0);
        }
    } else if (fc) {
#if EB_FC_STAGED
        const int c = u % PE_COLS;
        const int tiles = (vr + PE_ROWS - 1) / PE_ROWS;
        CTRAIN_LOOP(ew, 1, tiles);
        int j = 0;                              /* the tile's first staged byte */
        int eo = u / PE_COLS;                   /* the tile's entry */
        int vt = min_i(PE_ROWS, vr), rest = vr;
    stage_words_fc:
        for (int ti = 0; ti < tiles; ti++) {
        /* a word a cycle: the tile's R rows, R bytes of one staging word */
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CONV_ACT/PE_ROWS
            const beat_t w = conv_get_word<CONV_ACT>(stg[0][0], j & ~(DDR_BEAT - 1));
            const int j0 = j & (DDR_BEAT - 1);
            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                if (r < vt)
                    wb[r][c][eo] = (q8_t)beat_lane(w, j0 + r);
            }
            j += PE_ROWS;
            eo += tstep;
            rest -= PE_ROWS;
            vt = min_i(PE_ROWS, rest);
        }
#endif
    } else {
#if EB_STAGED_SHAPE
        /* the chunk's nu channels, channel j's staged rows from entry j * ent:
         * per channel EB_SUBS words per row tile and tap (the loop ends
         * with the last channel's last tile: no trip count to divide) */
#ifndef __SYNTHESIS__
        CTRAIN_LOOP(ew, 1, (uint32_t)((vr + PE_ROWS - 1) / PE_ROWS) * EB_SUBS * kk * nu);
#endif
        int j = 0;                             /* the unit's channel */
        int c = u % PE_COLS;                   /* the channel's column bank */
        int eo0 = (dim_t)(u / PE_COLS) * (dim_t)kk;   /* the channel's entry of tap 0 */
        int t = 0, s = 0;
        int cb = 0;                            /* the channel's first staging entry */
        int base = 0;                          /* the tile's sub-step's first staging entry */
#if PE_ROWS < PE_COLS
        int rm = 0;                            /* the tile's first staging column */
#endif
        int eo = eo0;                          /* the tile's entry of tap 0 */
        int vt = min_i(PE_ROWS, vr), rest = vr;
    stage_words_eb:
        while (j < nu) {
        /* a word a cycle: up to C rows of the tile's tap t, one read per staging bank */
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CONV_ACT
            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                if (r / PE_COLS == s && r < vt) {
#if PE_ROWS >= PE_COLS
                    /* C divides R: a fixed column per row */
                    wb[r][c][eo + t] = stg[0][r % PE_COLS][cb + base + t];
#else
                    /* R < C: the tile's rows from column rm on, past the last
                     * column on in the next staging entry */
                    wb[r][c][eo + t] = rm + r < PE_COLS
                                           ? stg[0][rm + r][cb + base + t]
                                           : stg[0][rm + r - PE_COLS][cb + base + kk + t];
#endif
                }
            }
            if (++t == kk) {
                t = 0;
#if PE_ROWS >= PE_COLS
                base += kk;
#endif
                if (++s == EB_SUBS) {   /* the tile's rows done: the next tile */
                    s = 0;
                    eo += tstep;
                    rest -= PE_ROWS;
                    vt = min_i(PE_ROWS, rest);
#if PE_ROWS < PE_COLS
                    /* R rows further along the staging columns */
                    rm += PE_ROWS;
                    if (rm >= PE_COLS) {
                        rm -= PE_COLS;
                        base += kk;
                    }
#endif
                    if (rest <= 0) {   /* the channel's tiles done: the next channel */
                        j++;
                        cb += ent;
                        base = 0;
#if PE_ROWS < PE_COLS
                        rm = 0;
#endif
                        rest = vr;
                        vt = min_i(PE_ROWS, vr);
                        if (++c == PE_COLS) {
                            c = 0;
                            eo0 += kk;
                        }
                        eo = eo0;
                    }
                }
            }
        }
#endif
    }
}

/* Weights staged through the buffer stg (conv_stage: per unit its burst,
 * then its words into wb): the hand-pipelined form's, or the DATAFLOW
 * form's outside the item loop (a board whose item loop carries the
 * units as pseudo-items does not call it). */
template <int SL>
static void conv_weights_staged(const ddr_t *ddr, const conv_stage &s, pe_weights_t wb,
                                q8_t stg[SL][PE_COLS][CONV_ACT]) {
#pragma HLS INLINE
    conv_stage_cur c = conv_stage_first(s);
stage_units:
    for (int k = 0; k < s.units; k++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_CH
        conv_stage_rd<SL>(ddr, s, c, stg);
        conv_stage_put<SL>(s, c, wb, stg);
        conv_stage_next(s, c);
    }
}

/* A row tile's (block's) weights before its passes, into wb once for the
 * whole batch (several groups: per chunk, conv_group_weights):
 *   FP with one group: the tile's vr rows, staged through the column-
 *     operand buffer (conv_weights_staged) where a row fits it, else lane
 *     by lane;
 *   EB with one group, at the first row tile r0 of a block of p.rb
 *     (eb_block): the block's, one burst per c_out channel (its kk entries
 *     of the block's c_in rows, contiguous), each row tile's ct*kk entries
 *     after the previous one's; staged where the board's shape allows
 *     (EB_STAGED_SHAPE; kk = 1: EB_FC_STAGED), the block's rows fit a
 *     staging bank and staging costs fewer cycles than a byte a cycle,
 *     else lane by lane.
 * conv_tile_stage says whether they stage (and makes the load: its units
 * one band_rd and one set of transfer loops each, conv_weights_staged or,
 * in the DATAFLOW form, the first pass's pseudo-items); conv_tile_lanes
 * loads them where they do not. */
struct conv_tile_load {
    bool fp;        /* FP with one group: the tile's rows */
    int nr;         /* rows loaded (EB: the weight block's) */
    int rowlen;     /* FP: a row's bytes; EB: a c_out channel's */
    int tstep;      /* entries from one row tile's weights to the next's */
    uint32_t at;    /* FP: row r0; EB: c_out channel 0's c_in row r0 */
};

/* What the row tile r0 (vr rows; a block in block mode) loads. */
static conv_tile_load conv_tile_load_of(const ctrain_insn_t &f, const conv_job &j, int r0, int vr) {
#pragma HLS INLINE
    const conv_plan &p = j.p;
    conv_tile_load w;
    w.fp = !j.eb && !j.wg && p.groups == 1;
    w.nr = j.eb ? min_i((dim_t)p.rb * PE_ROWS, p.rows - r0) : vr;
    w.rowlen = (dim_t)f.c_in * (dim_t)j.kk;
    w.tstep = (dim_t)p.ct * (dim_t)j.kk;
    w.at = f.src2 + (uint32_t)r0 * (uint32_t)(j.eb ? j.kk : w.rowlen);
    return w;
}

static bool conv_tile_stage(const conv_job &j, const conv_tile_load &w, int nt, bool eb_block,
                            conv_stage &st) {
#pragma HLS INLINE
    const conv_plan &p = j.p;
    const int kk = j.kk, nr = w.nr;
    const bool fp = w.fp;
    /* EB: a c_out channel's burst staged (at most, cycle_model.h: the
     * priming step, a piece per word a run touches, the words out, the
     * transfer loop's fill) against lane by lane (a byte a cycle) */
    const int tiles = cdiv_i(nr, PE_ROWS);
    const int eb_lanes = (dim_t)nr * (dim_t)kk;
    const int eb_fc = 1 + (nr + DDR_BEAT - 1) / DDR_BEAT + tiles + CTRAIN_EW_DEPTH;
    const int words_run = (kk + 2 * DDR_BEAT - 2) / DDR_BEAT;   /* at most, a run of kk bytes */
    const int eb_taps = 1 + (dim_t)nr * (dim_t)words_run + (dim_t)tiles * (dim_t)(EB_SUBS * kk) +
                        CTRAIN_EW_DEPTH;
    const bool staged =
        fp        ? (dim_t)p.cols * (dim_t)kk <= CONV_ACT
        : kk == 1 ? EB_FC_STAGED && nr <= CONV_ACT && eb_fc < eb_lanes
                  : EB_STAGED_SHAPE && (dim_t)((nr + PE_COLS - 1) / PE_COLS) * (dim_t)kk <= CONV_ACT &&
                        eb_taps < eb_lanes;
    if (!(fp || eb_block) || !staged)
        return false;
    st = conv_stage_make(w.at, j.eb, nr, p.cols, w.rowlen, kk, w.tstep, nt);
    return true;
}

/* The row tile's (block's) weights lane by lane, where they do not stage. */
static void conv_tile_lanes(const ddr_t *ddr, const conv_job &j, const conv_tile_load &w, bool eb_block,
                            pe_weights_t wb) {
#pragma HLS INLINE
    const int kk = j.kk;
    if (w.fp) {
        rd_weights_fp(ddr, w.at, (uint32_t)w.nr * (dim_t)w.rowlen, wb, 0, kk, w.rowlen, w.tstep);
    } else if (eb_block) {
        rd_weights_eb_runs(ddr, w.at, (uint32_t)w.rowlen, j.p.cols, (dim_t)w.nr * (dim_t)kk, wb, kk,
                           w.tstep);
    }
}

/* Start of a WG pass (row tile r0, or block mode's block of nt tiles;
 * group gsel): the group's tap accumulators cleared. */
static void conv_pass_begin(const conv_job &j, int nt, int gsel, pe_tapacc_t tacc) {
#pragma HLS INLINE
    const conv_plan &p = j.p;
    const int kk = j.kk;
    if (j.wg) {
        const int gct = min_i(p.g, p.ct - (dim_t)gsel * (dim_t)p.g);
        /* block mode: every tile's taps and bias tap */
        const int taps = (dim_t)((dim_t)gct * (dim_t)kk + (j.bm && j.wg_bias ? 1 : 0)) * (dim_t)nt;
        CTRAIN_LOOP(ew, 1, taps);
    clear_taps:
        for (int t = 0; t < taps; t++) {
            /* every PE's accumulator of tap t in one cycle */
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CONV_TCAP
        clear_taps_rows:
            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
            clear_taps_cols:
                for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                    tacc[r][c][t] = 0;
                }
            }
        }
    }
}

/* Item k of the pass, with its group (WG: the pass's gsel). */
static conv_item conv_item_at(const ctrain_insn_t &f, const conv_job &j, int gsel, int k) {
#pragma HLS INLINE
    conv_item it = item_of(f, j.eb, j.p, k, j.wg ? 1 : j.p.groups);
    if (j.wg)
        it.grp = gsel;
    return it;
}

/* FP, EB with several groups: at a chunk's first unit its group's weights
 * (rows r0 .. r0+vr, the group's columns) into wb, lane by lane. */
static void conv_group_weights(const ddr_t *ddr, const ctrain_insn_t &f, const conv_job &j, int r0,
                               int vr, const conv_item &it, pe_weights_t wb) {
#pragma HLS INLINE
    const conv_plan &p = j.p;
    const int kk = j.kk;
    const int w0 = (dim_t)it.grp * (dim_t)p.g * PE_COLS;
    const int gc = min_i(p.g * PE_COLS, p.cols - w0);
    if (!j.eb) {
        rd_weights_fp(ddr, f.src2 + ((uint32_t)r0 * (dim_t)f.c_in + w0) * (dim_t)kk,
                      (dim_t)gc * (dim_t)kk, wb, 0, kk, (dim_t)gc * (dim_t)kk, 0, vr,
                      (dim_t)f.c_in * (dim_t)kk);
    } else {
        rd_weights_eb_runs(ddr, f.src2 + ((uint32_t)w0 * (dim_t)f.c_in + r0) * (dim_t)kk,
                           (dim_t)f.c_in * (dim_t)kk, gc, (dim_t)vr * (dim_t)kk, wb, kk, 0);
    }
}

/* Stage 0: item k's operands: the column operand into act and the row
 * operand into rowb (WG errors; EB masks, on the last group). */
static void conv_load_item(ddr_t *ddr, const ctrain_insn_t &f, const conv_job &j, int r0,
                           int vr, int gsel, int k, pe_cols_t act, pe_rows_t rowb) {
#pragma HLS INLINE
    const conv_plan &p = j.p;
    const conv_item it = conv_item_at(f, j, gsel, k);
    load_cols(ddr, j.col_base, p, it, act);
    if (j.wg)
        rows_rd(ddr, f.src, p, it, r0, vr, rowb);
    else if (j.mask && it.grp == p.groups - 1)
        rows_rd(ddr, f.aux, p, it, r0, vr, rowb);
}

/* Stage 1: item k on the PE array, weights wb, operands act and rowb,
 * outputs into obuf (the row tables built per band; sum_xe, sum_xo the
 * column tables' steps, make_ranges). */
static void conv_compute_item(const ctrain_insn_t &f, const conv_job &j, int gsel, int k,
                              int sum_xe, int sum_xo, pe_pass &g, const pe_weights_t wb,
                              const pe_cols_t act, const pe_rows_t rowb, pe_range yr[CTRAIN_MAX_DIM],
                              const pe_range xr[CTRAIN_MAX_DIM], bool xpd[CTRAIN_MAX_DIM],
                              const pe_bias_t btab,
                              wide_t rbias[PE_ROWS], pe_rowacc_t racc, pe_rows_t obuf,
                              pe_tapacc_t tacc, q_stats &st) {
#pragma HLS INLINE
    const conv_plan &p = j.p;
    const conv_item it = conv_item_at(f, j, gsel, k);
    const int gct = min_i(p.g, p.ct - (dim_t)it.grp * (dim_t)p.g);
    g.gct = gct;
    g.vc_last = min_i(PE_COLS, p.cols - ((dim_t)it.grp * (dim_t)p.g + gct - 1) * PE_COLS);
    g.y0 = it.y0;
    g.rows = it.y1 - it.y0;
    g.sy_lo = it.lo;
    g.vb = it.vb;
    g.first = it.grp == 0;
    g.last = it.grp == p.groups - 1;
    g.bias_sum = j.wg_bias && !j.bm && gsel == 0;
    if (j.wg) {
        /* a run per tap, or per pair of taps (wpairs), and the bias tap's;
         * with pairs one more step, the last pair's tap B (pe_array) */
        const int taps = (dim_t)gct * (dim_t)j.kk;
        g.wpairs = PE_POS_PAIRS && taps >= 2 && (dim_t)g.rows * (dim_t)p.ow >= 2;
        const int runs = g.wpairs ? (taps + 1) >> 1 : taps;
        g.total = (uint32_t)(runs + (g.btap ? 1 : 0)) * (dim_t)g.rows *
                  (dim_t)p.ow * (uint32_t)g.tiles + (g.wpairs ? 1u : 0u);
    } else {
        int ye, yo;   /* the band's even and odd rows' steps */
        make_ranges(j.eb, it.y0, g.rows, f.k_h, f.k_w, f.stride, f.pad, p.sh, it.lo, p.sw, yr, false,
                    false, xpd, ye, yo);
        /* a row's column steps by its first output index's parity (pairs
         * start at even ones): with an odd width, row oy of tile t starts
         * at (t * rows + oy) * ow, odd where t * rows + oy is */
        const bool odd = p.ow & 1;
        const uint32_t se = odd ? (uint32_t)ye * sum_xe + (uint32_t)yo * sum_xo
                                : (uint32_t)(ye + yo) * sum_xe;   /* a tile from an even index */
        const uint32_t so = (uint32_t)ye * sum_xo + (uint32_t)yo * sum_xe;   /* from an odd one */
        const int t_odd = odd && (g.rows & 1) ? g.tiles >> 1 : 0;
        g.total = (uint32_t)gct * ((uint32_t)(g.tiles - t_odd) * se + (uint32_t)t_odd * so);
    }
    g.roff = (dim_t)it.u * (dim_t)p.br * (dim_t)p.ow;
    pe_array(wb, act, rowb, yr, xr, xpd, rowb, g, btab, rbias, racc, obuf, tacc, st);
}

/* Stage 2 (FP, EB): item k's outputs from obuf, once its last group has
 * summed them. */
static void conv_store_item(ddr_t *ddr, const ctrain_insn_t &f, const conv_job &j, int r0, int vr,
                            int k, pe_rows_t obuf) {
#pragma HLS INLINE
    const conv_item it = item_of(f, j.eb, j.p, k, j.p.groups);
    if (it.grp == j.p.groups - 1)
        rows_wr(ddr, f.dst, j.p, it, r0, vr, obuf);
}

/* End of a WG pass: the group's weight gradients (row tile r0, vr rows) and,
 * after the first group, the tile's bias gradients. */
static void conv_store_grads(ddr_t *ddr, ddr_t *ddr1, const ctrain_insn_t &f, const conv_job &j,
                             int r0, int vr, int nt, int gsel, const pe_tapacc_t tacc,
                             const wide_t rbias[PE_ROWS], q_stats &st) {
#pragma HLS INLINE
    const conv_plan &p = j.p;
    const int kk = j.kk;
    const int c0 = (dim_t)gsel * (dim_t)p.g * PE_COLS;
    const int gc = min_i(p.g * PE_COLS, p.cols - c0);
    const int gct = min_i(p.g, p.ct - (dim_t)gsel * (dim_t)p.g);
    const int taps = (dim_t)gct * (dim_t)kk;                /* a tile's kernel entries of the group */
    const int tstep = taps + (j.bm && j.wg_bias ? 1 : 0);   /* ... and its bias tap */
    const int rowlen = (dim_t)f.c_in * (dim_t)kk;
    const uint32_t at = f.dst + 4 * (uint32_t)r0 * (uint32_t)rowlen;
    if (p.groups == 1 && KERNELS_2P && (rowlen & (DDR_BEAT / 4 - 1)) == 0 && vr > 1) {
        /* per row tile its first ceil(vt / 2) rows on port 0, the others on
         * port 1 in the same loop (rows a whole number of beats long: the
         * two bursts share their beats' alignment) */
        int left = vr;
        uint32_t a = at;
    store_grad_tiles:
        for (int t = 0; t < nt; t++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=MAX_RTILES
            const int vt = min_i(PE_ROWS, left), h = (vt + 1) >> 1;
            const uint32_t a1 = a + 4 * (uint32_t)h * (uint32_t)rowlen;
            wr_kernels(ddr, a, (uint32_t)h * (uint32_t)rowlen, tacc, 0, kk, rowlen, 0, j.sh_out, st,
                       (dim_t)t * (dim_t)tstep, ddr1, a1, (uint32_t)(vt - h) * (uint32_t)rowlen, h);
            a += 4 * (uint32_t)vt * (uint32_t)rowlen;
            left -= PE_ROWS;
        }
    } else if (p.groups == 1) {
        wr_kernels(ddr, at, (uint32_t)vr * (uint32_t)rowlen, tacc, 0, kk, (dim_t)gc * (dim_t)kk,
                   tstep, j.sh_out, st);
    } else {
        /* a burst per row: the group's columns of it (block mode: row tile
         * t's rows from entry t * tstep) */
        int r = 0, tb = 0;
    store_grad_rows:
        for (int rr = 0; rr < vr; rr++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS*MAX_RTILES
            wr_kernels(ddr, f.dst + 4 * (((uint32_t)(r0 + rr) * (dim_t)f.c_in + c0) * (dim_t)kk),
                       (dim_t)gc * (dim_t)kk, tacc, r, kk, (dim_t)gc * (dim_t)kk, 0, j.sh_out, st, tb);
            if (++r == PE_ROWS) {
                r = 0;
                tb += tstep;
            }
        }
    }
    if (j.wg_bias && gsel == 0) {
        /* per row tile (one, but in block mode) its bias gradients: the
         * registers the pass summed, or in block mode column 0 of the
         * tile's bias tap */
        wide_t gb[PE_ROWS];
#pragma HLS ARRAY_PARTITION variable=gb type=complete
        int left = vr, at = taps;
    store_bias_tiles:
        for (int t = 0; t < nt; t++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=MAX_RTILES
        read_bias_tap:
            for (int r = 0; r < PE_ROWS; r++) {
                /* the tap's R rows: one word of column 0's bank */
#pragma HLS UNROLL
                gb[r] = j.bm ? (wide_t)tacc[r][0][at] : rbias[r];
            }
            conv_store_bias(ddr, gb, min_i(PE_ROWS, left), r0 + (dim_t)t * PE_ROWS, f.dst2, j.sh_b,
                            st);
            left -= PE_ROWS;
            at += tstep;
        }
    }
}

#if CTRAIN_CONV_DATAFLOW
/* The DATAFLOW form of a pass's item loop (CTRAIN_CONV_DATAFLOW, conv.h):
 * three processes, each with its own cursor; the column operand and row
 * operand (load -> compute) and the outputs (compute -> store) are
 * ping-pong channels.  Inside the loop only the compute process touches
 * the weights: a row tile's (block's) staged weights are the first pass's
 * first iterations, pseudo-items (the load process bursts a unit into its
 * act channel half, the compute process moves its words into wbuf); the
 * others load before the loop (lane by lane, or with several groups a
 * chunk's group's, a loop per chunk and group).  The PE pass, its tables
 * and accumulators are the compute process's alone; the load process
 * only reads the port, the store process only writes it. */
struct conv_pos {
    int r0, vr, gsel;   /* the pass's row tile (block) and WG group */
};

/* A process's place in the loop: `wleft` pseudo-items to come (a staged
 * weight load's units, at w) before items k, k + 1, ... */
struct conv_cur {
    int k, wleft;
    conv_stage_cur w;
};

static void conv_load_p(ddr_t *ddr, const ctrain_insn_t f, const conv_job j, const conv_pos c,
                        const conv_stage s, conv_cur &cur, pe_cols_t act, pe_rows_t rowb) {
    /* a process of conv_items' DATAFLOW loop: a weight unit's burst into
     * the act channel, or item k in */
#pragma HLS INLINE off
    /* the row operand's two call sites (WG's errors, EB's masks: one or the other) one instance */
#pragma HLS ALLOCATION function instances=rows_rd limit=1
    CTRAIN_PIPE_STAGE(0);
    if (cur.wleft > 0) {
        conv_stage_rd<PE_LANES>(ddr, s, cur.w, act);
        conv_stage_next(s, cur.w);
        cur.wleft--;
    } else {
        conv_load_item(ddr, f, j, c.r0, c.vr, c.gsel, cur.k, act, rowb);
        cur.k++;
    }
}

static void conv_compute_p(const ctrain_insn_t f, const conv_job j, const conv_pos c,
                           const conv_stage s, int sum_xe, int sum_xo, const pe_pass g0, conv_cur &cur,
                           pe_weights_t wb, const pe_cols_t act, const pe_rows_t rowb,
                           pe_range yr[CTRAIN_MAX_DIM], const pe_range xr[CTRAIN_MAX_DIM],
                           bool xpd[CTRAIN_MAX_DIM], const pe_bias_t btab, wide_t rbias[PE_ROWS],
                           pe_rowacc_t racc, pe_rows_t obuf, pe_tapacc_t tacc, q_stats &st) {
    /* a process of conv_items' DATAFLOW loop: a weight unit's words from
     * the act channel into wb, or item k on the PE array (its pass fields
     * set per item on a copy of the pass's) */
#pragma HLS INLINE off
    CTRAIN_PIPE_STAGE(1);
    if (cur.wleft > 0) {
        conv_stage_put<PE_LANES>(s, cur.w, wb, act);
        conv_stage_next(s, cur.w);
        cur.wleft--;
    } else {
        pe_pass g = g0;
        conv_compute_item(f, j, c.gsel, cur.k, sum_xe, sum_xo, g, wb, act, rowb, yr, xr, xpd, btab,
                          rbias, racc, obuf, tacc, st);
        cur.k++;
    }
}

static void conv_store_p(ddr_t *ddr, const ctrain_insn_t f, const conv_job j, const conv_pos c,
                         conv_cur &cur, pe_rows_t obuf) {
    /* a process of conv_items' DATAFLOW loop: item k out (a weight unit,
     * WG: nothing; WG's gradients leave after the pass) */
#pragma HLS INLINE off
    CTRAIN_PIPE_STAGE(2);
    if (cur.wleft > 0) {
        cur.wleft--;
    } else {
        if (!j.wg)
            conv_store_item(ddr, f, j, c.r0, c.vr, cur.k, obuf);
        cur.k++;
    }
}

/* n iterations of a pass as a DATAFLOW loop (a staged weight load's
 * units, then items), the processes' cursors lk, ck, sk at its first. */
static void conv_items(ddr_t *ddr, const ctrain_insn_t &f, const conv_job &j, const conv_pos c,
                       const conv_stage &s, int n, conv_cur &lk, conv_cur &ck, conv_cur &sk,
                       int sum_xe, int sum_xo, const pe_pass &g, pe_weights_t wb,
                       pe_range yr[CTRAIN_MAX_DIM],
                       const pe_range xr[CTRAIN_MAX_DIM], bool xpd[CTRAIN_MAX_DIM],
                       const pe_bias_t btab, wide_t rbias[PE_ROWS], pe_rowacc_t racc,
                       pe_tapacc_t tacc, q_stats &st) {
conv_item_loop:
    for (int i = 0; i < n; i++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CONV_ITEMS
        /* load k+1 || compute k || store k-1: the channels are ping-pong buffers */
#pragma HLS DATAFLOW
        pe_cols_t act;
        /* a bank per (lane, column): a step reads every PE's operand */
#pragma HLS ARRAY_PARTITION variable=act type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=act type=complete dim=2
        /* beat-wide words: a step writes a word's lanes with byte enables */
#pragma HLS ARRAY_RESHAPE variable=act type=cyclic factor=CTRAIN_DDR_BEAT dim=3
#if CTRAIN_CONV_URAM
        /* The largest dense buffer in URAM where the board has it: a read (PE) and a write (loader) port */
#pragma HLS BIND_STORAGE variable=act type=ram_2p impl=uram
#endif
        pe_rows_t rowb, obuf;   /* WG errors, EB masks; FP/EB quantized outputs */
#pragma HLS ARRAY_PARTITION variable=rowb type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=rowb type=complete dim=2
#pragma HLS ARRAY_PARTITION variable=obuf type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=obuf type=complete dim=2
        /* beat-wide words: a step writes (reads) a word's lanes */
#pragma HLS ARRAY_RESHAPE variable=rowb type=cyclic factor=CTRAIN_DDR_BEAT dim=3
#pragma HLS ARRAY_RESHAPE variable=obuf type=cyclic factor=CTRAIN_DDR_BEAT dim=3
#if CTRAIN_CONV_BANDS_BRAM
        /* block RAM where the board's LUTs are the shorter (config) */
#pragma HLS BIND_STORAGE variable=rowb type=ram_2p impl=bram
#pragma HLS BIND_STORAGE variable=obuf type=ram_2p impl=bram
#else
        /* OUT / DDR_BEAT words deep per (lane, row): distributed RAM, not a mostly empty RAMB18 */
#pragma HLS BIND_STORAGE variable=rowb type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=obuf type=ram_2p impl=lutram
#endif
        conv_load_p(ddr, f, j, c, s, lk, act, rowb);
        conv_compute_p(f, j, c, s, sum_xe, sum_xo, g, ck, wb, act, rowb, yr, xr, xpd, btab, rbias,
                       racc, obuf, tacc, st);
        conv_store_p(ddr, f, j, c, sk, obuf);
    }
}
#endif

void conv_unit(ddr_t *ddr, ddr_t *ddr1, const ctrain_insn_t &f, const insn_exps &e, q_stats &st) {
    /* in execute's scope, where its PE loop shares the MAC array (mac_array.h) */
#pragma HLS INLINE
    conv_job j;
    conv_job_make(f, e, j);
    const conv_plan &p = j.p;
    const bool wg = j.wg;

#if CTRAIN_CONV_DATAFLOW
    /* The weights: loaded between item loops, read by their compute
     * process; static: one copy, kept between calls. */
    static pe_weights_t wbuf;
    /* A column's rows in one word: every PE reads its weight at the same
     * address each step (one bank per column, not per PE) */
#pragma HLS ARRAY_RESHAPE variable=wbuf type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=wbuf type=complete dim=2
#else
    /* Ping-pong buffers (index: item & 1); static: one copy, kept between calls. */
    static pe_weights_t wbuf[2];
    /* A column's rows in one word: every PE reads its weight at the same
     * address each step (one bank per column, not per PE) */
#pragma HLS ARRAY_RESHAPE variable=wbuf type=complete dim=2
#pragma HLS ARRAY_PARTITION variable=wbuf type=complete dim=3
    static pe_cols_t act[2];
#pragma HLS ARRAY_PARTITION variable=act type=complete dim=2
#pragma HLS ARRAY_PARTITION variable=act type=complete dim=3
    /* beat-wide words: a step writes a word's lanes with byte enables */
#pragma HLS ARRAY_RESHAPE variable=act type=cyclic factor=CTRAIN_DDR_BEAT dim=4
#if CTRAIN_CONV_URAM
    /* The largest dense buffer in URAM where the board has it: a read (PE) and a write (loader) port */
#pragma HLS BIND_STORAGE variable=act type=ram_2p impl=uram
#endif
    static pe_rows_t rowb[2];   /* WG errors, EB masks */
#pragma HLS ARRAY_PARTITION variable=rowb type=complete dim=2
#pragma HLS ARRAY_PARTITION variable=rowb type=complete dim=3
    /* beat-wide words: a step writes (reads) a word's lanes */
#pragma HLS ARRAY_RESHAPE variable=rowb type=cyclic factor=CTRAIN_DDR_BEAT dim=4
    static pe_rows_t obuf[2];   /* FP/EB quantized outputs */
#pragma HLS ARRAY_PARTITION variable=obuf type=complete dim=2
#pragma HLS ARRAY_PARTITION variable=obuf type=complete dim=3
    /* beat-wide words: a step writes (reads) a word's lanes */
#pragma HLS ARRAY_RESHAPE variable=obuf type=cyclic factor=CTRAIN_DDR_BEAT dim=4
#if CTRAIN_CONV_BANDS_BRAM
    /* block RAM where the board's LUTs are the shorter (config) */
#pragma HLS BIND_STORAGE variable=rowb type=ram_2p impl=bram
#pragma HLS BIND_STORAGE variable=obuf type=ram_2p impl=bram
#else
    /* 2 x OUT / DDR_BEAT words deep per (lane, row): distributed RAM, not a mostly empty RAMB18 */
#pragma HLS BIND_STORAGE variable=rowb type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=obuf type=ram_2p impl=lutram
#endif
#endif
    static pe_rowacc_t racc;    /* FP/EB partial sums between groups */
#pragma HLS ARRAY_PARTITION variable=racc type=complete dim=1
    /* a lane's rows in one word: a run's end reads and writes them together */
#pragma HLS ARRAY_RESHAPE variable=racc type=complete dim=2
    static pe_tapacc_t tacc;    /* WG tap accumulators of the tile */
    /* a column's rows in one word: a run's end adds to all of them at one address */
#pragma HLS ARRAY_RESHAPE variable=tacc type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=tacc type=complete dim=2
    static pe_range yr[CTRAIN_MAX_DIM], xr[CTRAIN_MAX_DIM];
    static bool xpd[CTRAIN_MAX_DIM];   /* PE_POS_PAIRS: the columns' pairs */
    static pe_bias_t btab;      /* FP biases of the pass's row tiles */
    /* a tile's rows in one word: the epilogue adds all of them in one cycle */
#pragma HLS ARRAY_RESHAPE variable=btab type=complete dim=2
    /* written (per block) and read (by the passes) at different times: one port */
#pragma HLS BIND_STORAGE variable=btab type=ram_1p impl=lutram
    int32_t braw[PE_ROWS];
    wide_t rbias[PE_ROWS];
#pragma HLS ARRAY_PARTITION variable=rbias type=complete

    pe_pass g;
    conv_pass_make(f, j, g);
    int sum_xe = 0, sum_xo = 0;
    if (!wg) {   /* column tables: the same for every band */
        make_ranges(j.eb, 0, p.ow, f.k_w, 1, f.stride, f.pad, p.sw, 0, 1, xr, true, g.pairs, xpd,
                    sum_xe, sum_xo);
    }

    int blk = 0;   /* the row tile's place in its EB weight block */
    int ti = 0;    /* the first row tile of the iteration */
    const int rtiles = cdiv_i(p.rows, PE_ROWS);
tile_rows:
    for (int r0 = 0; r0 < p.rows; r0 += j.step) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=MAX_RTILES
        /* vr rows: a row tile, or in block mode a block of nt row tiles */
        const int vr = min_i(j.step, p.rows - r0);
        const int nt = j.bm ? min_i(p.rb, rtiles - ti) : 1;
        g.tiles = nt;
        g.vr = vr - (nt - 1) * PE_ROWS;   /* the last tile's rows */
        const bool eb_block = j.eb && (j.bm || (j.eb_blk && blk == 0));
        if (eb_block)
            g.wbase = 0;
        const conv_tile_load tl = conv_tile_load_of(f, j, r0, vr);
        conv_stage ws = conv_stage();   /* the tile's staged weight load */
        const bool staged = conv_tile_stage(j, tl, nt, eb_block, ws);
#if CTRAIN_CONV_DATAFLOW
        /* staged: the first pass's first pseudo-items (conv_items) */
        if (!staged)
            conv_tile_lanes(ddr, j, tl, eb_block, wbuf);
#else
        /* staged through act[0], idle before the pass */
        if (staged)
            conv_weights_staged<PE_LANES>(ddr, ws, wbuf[0], act[0]);
        else
            conv_tile_lanes(ddr, j, tl, eb_block, wbuf[0]);
#endif
        conv_tile_bias(ddr, f, j, r0, vr, nt, braw, btab, rbias);
        const int ngroups = wg ? p.groups : 1;
    tile_groups:
        for (int wgrp = 0; wgrp < ngroups; wgrp++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CONV_CTILES
            const int gsel = wg ? wgrp : 0;
            conv_pass_begin(j, nt, gsel, tacc);
#if CTRAIN_CONV_DATAFLOW
            conv_pos cp;
            cp.r0 = r0;
            cp.vr = vr;
            cp.gsel = gsel;
            /* the pass's items as one DATAFLOW loop; FP, EB with several
             * groups: per chunk and group its weights, then its units'
             * items (item_of: chunk > group > unit), a loop each (one call
             * site: one instance of the loop and its PE array) */
            const bool split = !wg && p.groups > 1;
            /* the tile's staged weights: pseudo-items before its first pass's items */
            const int nw = staged && wgrp == 0 ? ws.units : 0;
            int left = cdiv_i((int)f.n, PE_LANES) * p.bands;   /* units to come */
            int k0 = 0, grp = 0;
        item_loops:
            while (k0 < j.items) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CONV_ITEMS
                const int n = split ? min_i(p.cu, left) : j.items;
                if (split)
                    conv_group_weights(ddr, f, j, r0, vr, conv_item_at(f, j, gsel, k0), wbuf);
                const int w = k0 == 0 ? nw : 0;
                conv_cur lk;
                lk.k = k0;
                lk.wleft = w;
                lk.w = conv_stage_first(ws);
                conv_cur ck = lk, sk = lk;
                CTRAIN_PIPE_BEGIN();
                conv_items(ddr, f, j, cp, ws, n + w, lk, ck, sk, sum_xe, sum_xo, g, wbuf, yr, xr, xpd,
                           btab, rbias, racc, tacc, st);
                CTRAIN_PIPE_END();
                k0 += n;
                if (split && ++grp == p.groups) {
                    grp = 0;
                    left -= n;
                }
            }
#else
            /* The pipeline over items: load k+1 || compute k || store k-1. */
        items_loop:
            for (int k = -1; k <= j.items; k++) {
#pragma HLS LOOP_TRIPCOUNT min=2 max=CONV_ITEMS
                const bool region = k >= 0 && k < j.items;
                if (region)
                    CTRAIN_REGION_BEGIN();
                if (k + 1 < j.items) {   /* stage 0 */
                    const int h = (k + 1) & 1;
                    if (!wg && p.groups > 1) {
                        /* the chunk's first unit: its group's weights */
                        const conv_item it = conv_item_at(f, j, gsel, k + 1);
                        if (it.u == 0)
                            conv_group_weights(ddr, f, j, r0, vr, it, wbuf[it.wl & 1]);
                    }
                    conv_load_item(ddr, f, j, r0, vr, gsel, k + 1, act[h], rowb[h]);
                }
                if (region) {          /* stage 1 */
                    const int h = k & 1;
                    const int wh = !wg && p.groups > 1 ? conv_item_at(f, j, gsel, k).wl & 1 : 0;
                    CTRAIN_STAGE(1);
                    conv_compute_item(f, j, gsel, k, sum_xe, sum_xo, g, wbuf[wh], act[h], rowb[h], yr,
                                      xr, xpd, btab, rbias, racc, obuf[h], tacc, st);
                    CTRAIN_STAGE(2);
                }
                if (!wg && k >= 1)     /* stage 2 */
                    conv_store_item(ddr, f, j, r0, vr, k - 1, obuf[(k - 1) & 1]);
                if (region)
                    CTRAIN_REGION_END();
            }
#endif
            if (wg)
                conv_store_grads(ddr, ddr1, f, j, r0, vr, nt, gsel, tacc, rbias, st);
        }
        if (j.eb_blk)
            g.wbase += (dim_t)p.ct * (dim_t)j.kk;
        if (++blk == p.rb)
            blk = 0;
        ti += nt;
    }
}
