/* Stream processor: ReLU, max pooling and frozen batch norm, forward and
 * backward (see stream.h). */
#include "stream.h"
#include "agu.h"

/* Max pooling works on bands: G whole planes when a plane fits the band
 * buffer, else ny output rows of one plane.  POOL_ROWS rows of the widest
 * plane hold any window's k_h rows plus the s - 1 rows a plane's last band
 * may own below its last window (POOL_BP), so ny >= 1 for every legal shape. */
#define POOL_ROWS (CTRAIN_MAX_KERNEL + CTRAIN_MAX_STRIDE - 1)
#define POOL_BAND (POOL_ROWS * CTRAIN_MAX_DIM)

/* ReLU's chunk loop: DATAFLOW processes, an item a chunk (chunk k + 1
 * loads while chunk k goes through and chunk k - 1 stores, the channels
 * between them ping-pong buffers; the load and store processes are
 * agu.h's chunk_load_q8 and chunk_store_q8).  In place (dst == src) too: a
 * chunk is read whole before it is written, and no two processes work on
 * one chunk at once. */
static void relu_through(uint32_t count, int k, bool bp, const q8_t in[CTRAIN_CHUNK],
                         const q8_t gate[CTRAIN_CHUNK], q8_t out[CTRAIN_CHUNK], q_stats &st) {
    /* a process of relu_chunks' DATAFLOW loop: W elements per cycle */
#pragma HLS INLINE off
    CTRAIN_PIPE_STAGE(1);
    const chunk_at ck = chunk_of<CTRAIN_CHUNK>(count, k);
    const uint32_t words = (ck.len + AGU_Q8_LANES - 1) / AGU_Q8_LANES;
    CTRAIN_LOOP(ew, 1, words);
relu:
    for (uint32_t w = 0; w < words; w++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_CHUNK/AGU_Q8_LANES
        q8_t o[AGU_Q8_LANES];
        bool none[AGU_Q8_LANES];
        /* one register per lane */
#pragma HLS ARRAY_PARTITION variable=o type=complete
#pragma HLS ARRAY_PARTITION variable=none type=complete
        const uint32_t rest = ck.len - w * AGU_Q8_LANES;
    lanes:
        for (int j = 0; j < AGU_Q8_LANES; j++) {
#pragma HLS UNROLL
            const uint32_t i = w * AGU_Q8_LANES + j;
            const q8_t v = in[i];
            const q8_t q = bp ? (gate[i] > 0 ? v : (q8_t)0) : (v > 0 ? v : (q8_t)0);
            out[i] = q;
            o[j] = q;
            none[j] = false;
        }
        q_stats_add_lanes8<AGU_Q8_LANES>(st, o, none, rest < AGU_Q8_LANES ? rest : AGU_Q8_LANES);
    }
}

static void relu_chunks(ddr_t *ddr, const ddr_t *ddr1, uint32_t count, int chunks, uint32_t src,
                        uint32_t aux, uint32_t dst, bool bp, q_stats &st) {
chunk:
    for (int k = 0; k < chunks; k++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CHUNKS_OF(CTRAIN_MAX_COUNT)
        /* load k+1 || through k || store k-1: the channels are ping-pong buffers */
#pragma HLS DATAFLOW
        q8_t in[CTRAIN_CHUNK], gate[CTRAIN_CHUNK], out[CTRAIN_CHUNK];
        /* a beat per cycle in and out, a word of W lanes per cycle through */
#pragma HLS ARRAY_PARTITION variable=in type=cyclic factor=AGU_Q8_LANES
#pragma HLS ARRAY_PARTITION variable=gate type=cyclic factor=AGU_Q8_LANES
#pragma HLS ARRAY_PARTITION variable=out type=cyclic factor=AGU_Q8_LANES
        chunk_load_q8<CTRAIN_CHUNK>(ddr, ddr1, count, k, src, bp, aux, in, gate);
        relu_through(count, k, bp, in, gate, out, st);
        chunk_store_q8<CTRAIN_CHUNK>(ddr, count, k, dst, out);
    }
}

void stream_relu(ddr_t *ddr, ddr_t *ddr1, const ctrain_insn_t &f, q_stats &st) {
    CTRAIN_PIPE_BEGIN();
    relu_chunks(ddr, ddr1, f.count, (int)CHUNKS_OF(f.count), f.src, f.aux, f.dst,
                f.op == OP_RELU_BP, st);
    CTRAIN_PIPE_END();
}

/* The BP carry's cycles per element (stream_pool's carry_rows: a read and
 * two writes of racc, which may meet in one bank). */
#define POOL_CARRY_II 2

/* The band buffers are two RAMs each, banked by word parity (element i in
 * bank (i / W) & 1, row i / 2W): the two consecutive words a segment reads
 * (pool_get) or writes (pool_put) are one access per RAM, which leaves each
 * RAM's other port to the band pipeline's load or store of the other half.
 * PIN_BANK and POUT_BANK: a bank's elements (pin has one word spare). */
#define PIN_BANK (((POOL_BAND / AGU_Q8_LANES + 2) / 2) * AGU_Q8_LANES)
#define POUT_BANK (((POOL_BAND / AGU_Q8_LANES + 1) / 2) * AGU_Q8_LANES)

/* Element i of a sequence into buf, one whole word of W lanes written when
 * its last lane (or the sequence's last element) arrives: buf is stored as
 * beat-wide words, and a word written whole needs no read-modify-write.
 * Lanes past the sequence's end carry stale values, never drained. */
static inline void pool_pack(q8_t buf[2][POUT_BANK], q8_t pk[AGU_Q8_LANES], uint32_t i, q8_t v,
                             bool end) {
#pragma HLS INLINE
    const uint32_t lane = i % AGU_Q8_LANES;
    pk[lane] = v;
    if (lane == AGU_Q8_LANES - 1 || end) {
        const uint32_t wd = i >> AGU_Q8_LOG2, base = (wd >> 1) << AGU_Q8_LOG2;
        for (int j = 0; j < AGU_Q8_LANES; j++) {
#pragma HLS UNROLL
            const q8_t x = (uint32_t)j == lane ? v : pk[j];
            if (wd & 1)
                buf[1][base + j] = x;
            else
                buf[0][base + j] = x;
        }
    }
}

/* Tiled windows (k_h = k_w = s, s a power of two up to 4, so s divides W):
 * the windows tile the plane, every input position is in at most one window,
 * and a word of W input columns holds P = W / s whole windows.  Bands live in
 * one half of the band buffers each (POOL_HALF), so band k + 1 loads into one
 * half while band k computes from the other and band k - 1 stores from it.
 * Per band one pipelined loop of a segment (W columns of one input row) per
 * cycle:
 *  - FP, per (plane, output row, segment): s steps, one per window row, each
 *    the P windows' row maxima merged into their running maxima; the last
 *    writes the P outputs;
 *  - BP, per (plane, output row, segment): the same s steps keeping each
 *    window's first maximum's tap (the numpy engine's first maximum in
 *    row-major order: strict > across rows and within a row), then one
 *    step reading the segment's errors (one band-buffer read a step: the
 *    buffer's other port is the load's); the segment's s gradient rows (the
 *    window's error at its tap, else 0; RELU_MASK zeroes a window whose
 *    maximum is <= 0) are written in the next segment's first s steps, row
 *    t in step t (session 33; before, s write steps of their own), or in s
 *    steps without reads before a plane's rows below its last window
 *    (h_in - h_out * s < s, zeros) and at the band's end.
 * Every input is read once, every output written once: a beat per cycle but
 * for a plane row's last segment (w_in % W columns). */
#define POOL_HALF (POOL_BAND / 2)
/* A tiled band's room: where the bands are a DATAFLOW loop (their buffers
 * pool_bands' channels of their own) CTRAIN_POOL_TILE elements, else a half
 * of the band buffers. */
#if CTRAIN_POOL_DATAFLOW
#define POOL_TILE CTRAIN_POOL_TILE
#else
#define POOL_TILE POOL_HALF
#endif
static_assert(POOL_TILE >= POOL_HALF, "a tiled band holds at least a half of the band buffers");

/* A band's place: its group's first plane (index, offsets in the input and
 * output tensors) and its first output row (index, offsets in the plane). */
struct pool_cur {
    uint32_t p0, y0, pin, pout, rin, rout;
};

/* The band after c: the next ny output rows, or the next group of G planes. */
static inline void pool_next(pool_cur &c, uint32_t G, uint32_t ny, uint32_t h_out, uint32_t grp_in,
                             uint32_t grp_out, uint32_t band_in, uint32_t band_out) {
#pragma HLS INLINE
    c.y0 += ny;
    c.rin += band_in;
    c.rout += band_out;
    if (c.y0 >= h_out) {
        c.y0 = 0; c.rin = 0; c.rout = 0;
        c.p0 += G; c.pin += grp_in; c.pout += grp_out;
    }
}

/* The two words at element pos's word w0 and w0 + 1, one per bank: bank 0's
 * row (w0 + 1) / 2 and bank 1's row w0 / 2 (element offsets); pool_sw: the
 * lane of a 2W window in word order (w0's first) in bank order (bank 0's
 * first) is the lane XOR pool_sw. */
static inline uint32_t pool_row0(uint32_t pos) {
#pragma HLS INLINE
    return (((pos >> AGU_Q8_LOG2) + 1) >> 1) << AGU_Q8_LOG2;
}
static inline uint32_t pool_row1(uint32_t pos) {
#pragma HLS INLINE
    return (pos >> (AGU_Q8_LOG2 + 1)) << AGU_Q8_LOG2;
}
static inline uint32_t pool_sw(uint32_t pos) {
#pragma HLS INLINE
    return pos & AGU_Q8_LANES;   /* w0 odd: W */
}

/* W lanes v[0 .. n) into buf[pos .. pos + n): the two beat-wide words at
 * pos's word (one per bank), each lane written from the lane pos % W below
 * it (a funnel, the read's mirror), the others left as they are (byte
 * enables). */
template <int NB>
static inline void pool_put(q8_t buf[2][NB], uint32_t pos, const q8_t v[AGU_Q8_LANES], uint32_t n) {
#pragma HLS INLINE
    const uint32_t r0 = pool_row0(pos), r1 = pool_row1(pos), sw = pool_sw(pos);
    const uint32_t off = pos & (AGU_Q8_LANES - 1);
put_lanes:
    for (int i = 0; i < AGU_Q8_LANES; i++) {
#pragma HLS UNROLL
        /* wrap past n below off */
        const uint32_t at0 = ((uint32_t)i ^ sw) - off, at1 = (((uint32_t)i + AGU_Q8_LANES) ^ sw) - off;
        if (at0 < n)
            buf[0][r0 + i] = v[at0];
        if (at1 < n)
            buf[1][r1 + i] = v[at1];
    }
}

/* The W lanes of buf from pos: the two words at pos's word (one per bank),
 * funnelled. */
template <int NB>
static inline void pool_get(const q8_t buf[2][NB], uint32_t pos, q8_t v[AGU_Q8_LANES]) {
#pragma HLS INLINE
    const uint32_t r0 = pool_row0(pos), r1 = pool_row1(pos), sw = pool_sw(pos);
    const uint32_t off = pos & (AGU_Q8_LANES - 1);
    q8_t two[2 * AGU_Q8_LANES];   /* bank 0's word, then bank 1's */
    /* registers: both words at once */
#pragma HLS ARRAY_PARTITION variable=two type=complete
get_words:
    for (int j = 0; j < AGU_Q8_LANES; j++) {
#pragma HLS UNROLL
        two[j] = buf[0][r0 + j];
        two[AGU_Q8_LANES + j] = buf[1][r1 + j];
    }
get_lanes:
    for (int j = 0; j < AGU_Q8_LANES; j++) {
#pragma HLS UNROLL
        v[j] = two[(off + j) ^ sw];
    }
}

/* What every band of one pool_tiled call shares: the shape and its steps,
 * made once (the band loops only add and compare); each process takes it
 * by value and none writes it. */
struct pool_job {
    uint32_t s, w_in, w_out, h_out, planes, plane_in, plane_out, G, ny, row_step, P, tail;
    uint32_t grp_in, grp_out, all_in, all_out, band_in, band_out, span, nq;
    uint32_t in_base, err_base, dst;
    int lsh;
    bool bp, mask, whole;
};

static pool_job pool_job_make(const ctrain_insn_t &f, uint32_t planes, uint32_t plane_in,
                              uint32_t plane_out, uint32_t G, uint32_t ny, int lsh) {
#pragma HLS INLINE
    pool_job j;
    j.bp = f.op == OP_POOL_BP;
    j.mask = j.bp && (f.flags & FLAG_RELU_MASK) != 0;
    j.s = f.stride;
    j.w_in = f.w_in;
    j.w_out = f.w_out;
    j.h_out = f.h_out;
    j.planes = planes;
    j.plane_in = plane_in;
    j.plane_out = plane_out;
    j.G = G;
    j.ny = ny;
    j.lsh = lsh;
    j.row_step = f.w_in << lsh;
    j.P = AGU_Q8_LANES >> lsh;
    j.whole = ny == f.h_out;
    j.tail = f.h_in - (f.h_out << lsh);                    /* rows below the last window */
    j.grp_in = G * plane_in;
    j.grp_out = G * plane_out;
    j.all_in = planes * plane_in;
    j.all_out = planes * plane_out;
    j.band_in = ny * j.row_step;
    j.band_out = ny * f.w_out;
    j.span = f.h_out * j.row_step;                         /* a plane's rows in windows */
    /* segments per input row: FP the windows' (w_out / P), BP every column's */
    j.nq = j.bp ? (f.w_in + AGU_Q8_LANES - 1) >> AGU_Q8_LOG2
                : (f.w_out + j.P - 1) >> (AGU_Q8_LOG2 - lsh);
    j.in_base = j.bp ? f.aux : f.src;
    j.err_base = f.src;
    j.dst = f.dst;
    return j;
}

/* The input elements of the band at c (its rows, or whole planes). */
static inline uint32_t pool_band_in(const pool_job &j, const pool_cur &c) {
#pragma HLS INLINE
    const bool last = c.y0 + j.ny >= j.h_out;
    return j.whole ? (j.all_in - c.pin < j.grp_in ? j.all_in - c.pin : j.grp_in)
                   : (last ? j.span - c.rin : j.band_in);
}

/* Stage 0: the band at lc into buf from word at_words: its input rows and,
 * BP, its errors from the word after them. */
template <int NB>
static void pool_band_load(const ddr_t *ddr, const pool_job j, pool_cur &lc, q8_t buf[2][NB],
                           uint32_t at_words) {
#pragma HLS INLINE
    const bool last = lc.y0 + j.ny >= j.h_out;
    const uint32_t n_x = pool_band_in(j, lc);
    const uint32_t n_o = j.whole ? (j.all_out - lc.pout < j.grp_out ? j.all_out - lc.pout : j.grp_out)
                                 : (last ? j.plane_out - lc.rout : j.band_out);
    agu_rd_q8b<NB>(ddr, j.in_base + lc.pin + lc.rin, buf, n_x, at_words, -1);
    if (j.bp)
        agu_rd_q8b<NB>(ddr, j.err_base + lc.pout + lc.rout, buf, n_o,
                       at_words + ((n_x + AGU_Q8_LANES - 1) >> AGU_Q8_LOG2), -1);
    pool_next(lc, j.G, j.ny, j.h_out, j.grp_in, j.grp_out, j.band_in, j.band_out);
}

/* Stage 1: the band at cc through, from pin's elements at hb into pbuf's
 * at hb: one loop of a segment per cycle (see pool_tiled). */
template <int NI, int NO>
static void pool_band_through(const pool_job j, pool_cur &cc, const q8_t pin[2][NI],
                              q8_t pbuf[2][NO], uint32_t hb, q_stats &st) {
#pragma HLS INLINE
    const uint32_t s = j.s, w_in = j.w_in, w_out = j.w_out, P = j.P, nq = j.nq;
    const uint32_t row_step = j.row_step, tail = j.tail;
    const int lsh = j.lsh;
    const bool bp = j.bp, mask = j.mask;
    const bool last = cc.y0 + j.ny >= j.h_out;
    const uint32_t gb = j.planes - cc.p0 < j.G ? j.planes - cc.p0 : j.G;
    const uint32_t nyb = last ? j.h_out - cc.y0 : j.ny;
    const uint32_t n_x = pool_band_in(j, cc);
    const uint32_t e0 = hb + (((n_x + AGU_Q8_LANES - 1) >> AGU_Q8_LOG2) << AGU_Q8_LOG2);
    const bool tails = bp && (j.whole || last) && tail > 0;   /* BP: zero rows */
    /* (plane, row, segment, step) and their offsets in the band, by sums */
    uint32_t g = 0, y = 0, q = 0, t = 0, r = 0;
    uint32_t pb = 0, pob = 0, rb = 0, ob = 0, ro = 0, qo = 0, qp = 0;
    bool in_tail = false, more = true;
    /* BP: the segment whose s gradient rows are written while the next one
     * reads its s window rows and its errors (row t of each in step t < s),
     * its base, first window and columns; `drain` writes its rows without
     * reads (before a plane's tail rows and at the band's end), then goes on
     * to the tail rows (to_tail) or ends the band. */
    bool pend = false, drain = false, to_tail = false;
    uint32_t pend_at = 0, pend_qp = 0, pend_cols = 0;
    /* the pending segment's registers are read by every step's gradient
     * lanes, before its first errors too (nothing is put then): zeroed */
    q8_t best[AGU_Q8_LANES], ee_p[AGU_Q8_LANES] = {};
    uint8_t code[AGU_Q8_LANES], code_p[AGU_Q8_LANES] = {};   /* BP: the first maximum's tap, ky * s + kx */
    /* registers: every window of a segment at once, the reading one's and the writing one's */
#pragma HLS ARRAY_PARTITION variable=best type=complete
#pragma HLS ARRAY_PARTITION variable=ee_p type=complete
#pragma HLS ARRAY_PARTITION variable=code type=complete
#pragma HLS ARRAY_PARTITION variable=code_p type=complete
seg:
    while (more) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=POOL_TILE
        CTRAIN_COUNT(ew, 1);
        q8_t v[AGU_Q8_LANES], o[AGU_Q8_LANES];
        bool cl[AGU_Q8_LANES];
        /* registers: a segment's lanes */
#pragma HLS ARRAY_PARTITION variable=v type=complete
#pragma HLS ARRAY_PARTITION variable=o type=complete
#pragma HLS ARRAY_PARTITION variable=cl type=complete
        const uint32_t cols = w_in - qo < AGU_Q8_LANES ? w_in - qo : AGU_Q8_LANES;
        const bool live = !in_tail && !drain;
        const bool rd = live && t < s;     /* window row t */
        const bool er = bp && live && t == s;   /* BP: the segment's errors */
        const bool seg_end = !bp && rd && t + 1 == s;
        uint32_t n_put = 0, put_at = 0;
        /* one read per step (the band buffer's other port is the load's):
         * window row t, or BP's errors after the segment's s rows */
        pool_get<NI>(pin, rd ? hb + rb + ro + qo : e0 + ob + qp, v);
        /* BP: gradient row t of the pending segment (the window's error at
         * its tap, else 0; RELU_MASK zeroed the error of a window whose
         * maximum is <= 0), or a zero tail row */
    pool_dx:
        for (int l = 0; l < AGU_Q8_LANES; l++) {
#pragma HLS UNROLL
            /* the lane's window jw = l >> lsh: a select of three fixed lanes */
            const int jw = lsh == 0 ? l : lsh == 1 ? l / 2 : l / 4;
            const q8_t ej = lsh == 0 ? ee_p[l] : lsh == 1 ? ee_p[l / 2] : ee_p[l / 4];
            const uint8_t cj = lsh == 0 ? code_p[l] : lsh == 1 ? code_p[l / 2] : code_p[l / 4];
            const uint32_t d = (uint32_t)l & (s - 1);
            const bool hit = !in_tail && pend_qp + (uint32_t)jw < w_out && cj == (t << lsh) + d;
            bool clamped = false;   /* -128 stores as -127 (sat8) */
            o[l] = hit ? sat8(ej, clamped) : (q8_t)0;
            cl[l] = clamped;
        }
        if (bp && ((pend && t < s) || in_tail)) {
            n_put = in_tail ? cols : pend_cols;
            put_at = in_tail ? hb + rb + ro + qo : pend_at + ro;
        }
        if (rd) {   /* window row t of the segment's P windows */
        pool_win:
            for (int jj = 0; jj < AGU_Q8_LANES; jj++) {
#pragma HLS UNROLL
                /* the row's first maximum over lanes jj*s .. jj*s + s - 1 */
                q8_t m = v[jj];
                uint8_t dd = 0;
                if (lsh >= 1 && 2 * jj + 1 < AGU_Q8_LANES) {
                    m = v[2 * jj];
                    if (v[2 * jj + 1] > m) { m = v[2 * jj + 1]; dd = 1; }
                }
                if (lsh == 2 && 4 * jj + 3 < AGU_Q8_LANES) {
                    m = v[4 * jj];
                    dd = 0;
                pool_tap:
                    for (int e = 1; e < 4; e++) {
#pragma HLS UNROLL
                        if (v[4 * jj + e] > m) { m = v[4 * jj + e]; dd = (uint8_t)e; }
                    }
                }
                if (t == 0 || m > best[jj]) {
                    best[jj] = m;
                    code[jj] = (uint8_t)((t << lsh) + dd);
                }
                if (!bp) {
                    o[jj] = best[jj];
                    cl[jj] = false;
                }
            }
            if (seg_end) {   /* FP: the segment's outputs */
                n_put = w_out - qp < P ? w_out - qp : P;
                put_at = hb + ob + qp;
            }
        }
        if (n_put) {
            pool_put<NO>(pbuf, put_at, o, n_put);
            q_stats_add_lanes8<AGU_Q8_LANES>(st, o, cl, n_put);
        }
        if (er) {   /* BP: this segment's rows are written next */
        pool_err:
            for (int jj = 0; jj < AGU_Q8_LANES; jj++) {
#pragma HLS UNROLL
                code_p[jj] = code[jj];
                ee_p[jj] = (mask && best[jj] <= 0) ? (q8_t)0 : v[jj];
            }
            pend = true;
            pend_at = hb + rb + qo;
            pend_qp = qp;
            pend_cols = cols;
        }
        /* the next step */
        if (drain) {           /* the pending segment's rows, then on */
            if (t + 1 < s) {
                ro += w_in;
                t++;
            } else {
                drain = false;
                pend = false;
                t = 0;
                ro = 0;
                if (to_tail) {
                    in_tail = true; r = 0; q = 0; qo = 0; qp = 0; rb += row_step;
                } else {
                    more = false;
                }
            }
        } else if (!in_tail && t + 1 < (bp ? s + 1 : s)) {   /* BP: s rows, then the errors */
            ro = ro + w_in;
            t++;
        } else if (q + 1 < nq) {
            t = 0; ro = in_tail ? ro : 0; q++; qo += AGU_Q8_LANES; qp += P;
        } else if (!in_tail && y + 1 < nyb) {
            t = 0; ro = 0; q = 0; qo = 0; qp = 0; y++; rb += row_step; ob += w_out;
        } else if (!in_tail && tails) {   /* the rows below the last window, after the pending rows */
            drain = true; to_tail = true; t = 0; ro = 0;
        } else if (in_tail && r + 1 < tail) {
            r++; q = 0; qo = 0; qp = 0; ro += w_in;
        } else if (g + 1 < gb) {          /* the group's next plane */
            in_tail = false; t = 0; ro = 0; q = 0; qo = 0; qp = 0; y = 0; g++;
            pb += j.plane_in; pob += j.plane_out; rb = pb; ob = pob;
        } else if (bp && !in_tail) {      /* the band's last segment's rows */
            drain = true; to_tail = false; t = 0; ro = 0;
        } else {
            more = false;
        }
    }
    CTRAIN_COUNT(ew_in, 1);
    pool_next(cc, j.G, j.ny, j.h_out, j.grp_in, j.grp_out, j.band_in, j.band_out);
}

/* Stage 2: the band at sc out of buf from word at_words (FP its outputs, BP
 * the gradient of every row it owns). */
template <int NB>
static void pool_band_store(ddr_t *ddr, const pool_job j, pool_cur &sc, const q8_t buf[2][NB],
                            uint32_t at_words) {
#pragma HLS INLINE
    const bool last = sc.y0 + j.ny >= j.h_out;
    uint32_t n_w, at;
    if (j.bp) {
        n_w = j.whole ? (j.all_in - sc.pin < j.grp_in ? j.all_in - sc.pin : j.grp_in)
                      : (last ? j.plane_in - sc.rin : j.band_in);
        at = sc.pin + sc.rin;
    } else {
        n_w = j.whole ? (j.all_out - sc.pout < j.grp_out ? j.all_out - sc.pout : j.grp_out)
                      : (last ? j.plane_out - sc.rout : j.band_out);
        at = sc.pout + sc.rout;
    }
    agu_wr_q8b<NB>(ddr, j.dst + at, buf, n_w, at_words, -1);
    pool_next(sc, j.G, j.ny, j.h_out, j.grp_in, j.grp_out, j.band_in, j.band_out);
}

#if CTRAIN_POOL_DATAFLOW
/* The band loop as DATAFLOW processes (CTRAIN_POOL_DATAFLOW): band k + 1
 * loads while band k goes through and band k - 1 stores, the channels
 * between them ping-pong buffers of a half each (the two word-parity banks
 * of pin and pbuf, at element 0); each process carries its own cursor. */
#define PIN_HBANK (((POOL_TILE / AGU_Q8_LANES + 2) / 2) * AGU_Q8_LANES)
#define POUT_HBANK (((POOL_TILE / AGU_Q8_LANES + 1) / 2) * AGU_Q8_LANES)

static void pool_load_p(const ddr_t *ddr, const pool_job j, pool_cur &lc,
                        q8_t pin[2][PIN_HBANK]) {
    /* a process of pool_bands' DATAFLOW loop: band k in */
#pragma HLS INLINE off
    CTRAIN_PIPE_STAGE(0);
    pool_band_load<PIN_HBANK>(ddr, j, lc, pin, 0);
}

static void pool_through_p(const pool_job j, pool_cur &cc, const q8_t pin[2][PIN_HBANK],
                           q8_t pbuf[2][POUT_HBANK], q_stats &st) {
    /* a process of pool_bands' DATAFLOW loop: band k through, a segment per cycle */
#pragma HLS INLINE off
    CTRAIN_PIPE_STAGE(1);
    pool_band_through<PIN_HBANK, POUT_HBANK>(j, cc, pin, pbuf, 0, st);
}

static void pool_store_p(ddr_t *ddr, const pool_job j, pool_cur &sc,
                         const q8_t pbuf[2][POUT_HBANK]) {
    /* a process of pool_bands' DATAFLOW loop: band k out */
#pragma HLS INLINE off
    CTRAIN_PIPE_STAGE(2);
    pool_band_store<POUT_HBANK>(ddr, j, sc, pbuf, 0);
}

static void pool_bands(ddr_t *ddr, const pool_job j, int bands, pool_cur &lc, pool_cur &cc,
                       pool_cur &sc, q_stats &st) {
band:
    for (int k = 0; k < bands; k++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=MAX_PLANES*CTRAIN_MAX_DIM
        /* load k+1 || through k || store k-1: the channels are ping-pong buffers */
#pragma HLS DATAFLOW
        q8_t pin[2][PIN_HBANK], pbuf[2][POUT_HBANK];
        /* a RAM per bank: a segment's two words are one access per bank */
#pragma HLS ARRAY_PARTITION variable=pin type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=pbuf type=complete dim=1
        /* words of a beat: filled and drained a beat per cycle */
#pragma HLS ARRAY_RESHAPE variable=pin type=cyclic factor=AGU_Q8_LANES dim=2
#pragma HLS ARRAY_RESHAPE variable=pbuf type=cyclic factor=AGU_Q8_LANES dim=2
#if CTRAIN_POOL_URAM
        /* URAM where the board is short of BRAM */
#pragma HLS BIND_STORAGE variable=pin type=ram_2p impl=uram
#endif
        pool_load_p(ddr, j, lc, pin);
        pool_through_p(j, cc, pin, pbuf, st);
        pool_store_p(ddr, j, sc, pbuf);
    }
}

/* The bands of a pool_tiled call, counted without a divider: whole planes
 * in groups of G (G = 1: one per plane), or every plane's row bands (G = 1). */
static int pool_band_count(const pool_job &j) {
#pragma HLS INLINE
    uint32_t bands = 0;
    if (j.whole && j.G == 1)
        return (int)j.planes;
    if (j.whole) {
    count_groups:
        for (uint32_t p = 0; p < j.planes; p += j.G) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=MAX_PLANES/2
            CTRAIN_COUNT(ew, 1);
            bands++;
        }
    } else {
    count_rows:
        for (uint32_t y = 0; y < j.h_out; y += j.ny) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
            CTRAIN_COUNT(ew, 1);
            bands += j.planes;
        }
    }
    CTRAIN_COUNT(ew_in, 1);
    return (int)bands;
}
#endif

static void pool_tiled(ddr_t *ddr, const ctrain_insn_t &f, q_stats &st,
                       q8_t pin[2][PIN_BANK], q8_t pbuf[2][POUT_BANK],
                       uint32_t planes, uint32_t plane_in, uint32_t plane_out, uint32_t G,
                       uint32_t ny, int lsh) {
    const pool_job j = pool_job_make(f, planes, plane_in, plane_out, G, ny, lsh);
    pool_cur lc = {0, 0, 0, 0, 0, 0}, cc = lc, sc = lc;      /* load, compute, store */
#if CTRAIN_POOL_DATAFLOW
    /* the band buffers are pool_bands' channels */
    (void)pin;
    (void)pbuf;
    const int bands = pool_band_count(j);
    CTRAIN_PIPE_BEGIN();
    pool_bands(ddr, j, bands, lc, cc, sc, st);
    CTRAIN_PIPE_END();
#else
    const uint32_t half_words = POOL_HALF / AGU_Q8_LANES;
    /* The pipeline over bands (groups of G planes, or row bands of ny output
     * rows) by hand, in the halves of pin and pbuf: load k+1, compute k,
     * store k-1 one after another (planned overlap), until the store has
     * passed the last plane (no band count: no divider). */
band:
    for (int32_t k = -1; sc.p0 < planes; k++) {
#pragma HLS LOOP_TRIPCOUNT min=2 max=MAX_PLANES*CTRAIN_MAX_DIM+2
        const bool region = k >= 0 && cc.p0 < planes;
        if (region)
            CTRAIN_REGION_BEGIN();
        if (lc.p0 < planes)     /* stage 0: band k + 1 in */
            pool_band_load<PIN_BANK>(ddr, j, lc, pin, ((uint32_t)(k + 1) & 1) ? half_words : 0);
        if (region) {           /* stage 1: band k through */
            CTRAIN_STAGE(1);
            pool_band_through<PIN_BANK, POUT_BANK>(j, cc, pin, pbuf,
                                                   ((uint32_t)k & 1) ? POOL_HALF : 0, st);
            CTRAIN_STAGE(2);
        }
        if (k >= 1)             /* stage 2: band k - 1 out */
            pool_band_store<POUT_BANK>(ddr, j, sc, pbuf,
                                       ((uint32_t)(k - 1) & 1) ? half_words : 0);
        if (region)
            CTRAIN_REGION_END();
    }
#endif
}

/* POOL_FP and POOL_BP (one unit: they share the band buffers).  Per band:
 * one read burst of the pool's input rows (and, BP, of the band's errors),
 * one pipelined loop over every (output, window row, segment of <= W taps)
 * at one segment per cycle keeping the first maximum (FP: stores it; BP: adds the error at its position into
 * the band's int16 gradient), BP then one pass quantizing the rows the band
 * owns, and one write burst.  Every band's operands are contiguous: bands are
 * whole planes or consecutive rows of one.  One function on purpose (its
 * branch count is above 40): FP and BP share the band buffers and the one
 * pipelined window loop, whose branches are per-cycle selects between them. */
void stream_pool(ddr_t *ddr, const ctrain_insn_t &f, q_stats &st) {
    const bool bp = f.op == OP_POOL_BP;
    const bool mask = bp && (f.flags & FLAG_RELU_MASK) != 0;
    const uint32_t s = f.stride, k_h = f.k_h, k_w = f.k_w;
    const uint32_t h_in = f.h_in, w_in = f.w_in, h_out = f.h_out, w_out = f.w_out;
    const uint32_t planes = f.n * f.c_in;
    const uint32_t plane_in = h_in * w_in, row_step = s * w_in;
    const bool whole = plane_in <= POOL_BAND;              /* bands of whole planes */
    /* Planes per band, whole planes: as many as fit, rounded down to a
     * multiple of the planes that make the written band whole beats (the
     * written plane's size has tz trailing zero bits: W >> tz planes), so a
     * band's write starts and ends on a beat and needs no merge. */
    const uint32_t wplane = bp ? plane_in : h_out * w_out;
    uint32_t g_align = AGU_Q8_LANES;
    bool low_zero = true;   /* bits 0 .. b of wplane all zero */
pool_align:
    for (int b = 0; b < AGU_Q8_LOG2; b++) {
#pragma HLS UNROLL
        low_zero = low_zero && ((wplane >> b) & 1) == 0;
        if (low_zero)
            g_align >>= 1;
    }
    /* The band's input rows, one word spare (segments); FP: outputs; BP:
     * errors, then the gradient rows.  Both banked by word parity (PIN_BANK):
     * per cycle a bank sees at most one read and one write (simple dual port). */
    q8_t pin[2][PIN_BANK];
    q8_t pbuf[2][POUT_BANK];
    /* a RAM per bank: the segment's two words are one read per bank */
#pragma HLS ARRAY_PARTITION variable=pin type=complete dim=1
    /* words of a beat: filled a beat per cycle */
#pragma HLS ARRAY_RESHAPE variable=pin type=cyclic factor=AGU_Q8_LANES dim=2
#if CTRAIN_POOL_URAM
    /* URAM where the board is short of BRAM: a read (compute) and a write (load) port per bank */
#pragma HLS BIND_STORAGE variable=pin type=ram_2p impl=uram
#endif
    /* a RAM per bank: pool_put's two words are one write per bank */
#pragma HLS ARRAY_PARTITION variable=pbuf type=complete dim=1
    /* words of a beat: drained a beat per cycle, written a word at a time
     * (pool_pack, pool_put: byte enables) */
#pragma HLS ARRAY_RESHAPE variable=pbuf type=cyclic factor=AGU_Q8_LANES dim=2
    /* Tiled windows (pool_tiled) whose band fits a half: its rows, two
     * words spare and BP's errors (whole planes; else ny output rows and
     * the plane's rows below its last window).  FP's outputs, never more
     * than its rows, fit the other buffer's half. */
    const int lsh = s == 4 ? 2 : s == 2 ? 1 : 0;
    if (k_h == s && k_w == s && (s & (s - 1)) == 0) {
        const uint32_t room = POOL_TILE - 2 * AGU_Q8_LANES;
        const uint32_t err_out = bp ? h_out * w_out : 0, err_row = bp ? w_out : 0;
        const uint32_t t_fit = room / (plane_in + err_out);
        const uint32_t tail_in = (h_in - (h_out << lsh)) * w_in;
        const uint32_t t_ny = room > tail_in ? (room - tail_in) / ((w_in << lsh) + err_row) : 0;
        if (t_fit >= 1 || t_ny >= 1) {
            const uint32_t tg = t_fit < 1 ? 1 : t_fit >= g_align ? t_fit & ~(g_align - 1) : t_fit;
            pool_tiled(ddr, f, st, pin, pbuf, planes, plane_in, h_out * w_out, tg,
                       t_fit >= 1 || t_ny >= h_out ? h_out : t_ny, lsh);
            return;
        }
    }
    const uint32_t g_fit = whole ? POOL_BAND / plane_in : 1;
    const uint32_t G = g_fit >= g_align ? g_fit & ~(g_align - 1) : g_fit;
    const uint32_t fit = (POOL_BAND / w_in - k_h + 1) / s; /* >= 1: POOL_ROWS >= k_h + s - 1 */
    const uint32_t ny = whole || fit > h_out ? h_out : fit;   /* output rows per band */
    const uint32_t in_base = bp ? f.aux : f.src;
    ap_int<16> racc[POOL_BAND];    /* BP: <= 121 contributions of |err| <= 128 */
    /* the store and the clear take a word of W per cycle */
#pragma HLS ARRAY_PARTITION variable=racc type=cyclic factor=AGU_Q8_LANES
    q8_t pk[AGU_Q8_LANES];         /* the word being assembled */
    /* registers: one lane written per cycle, all read at once */
#pragma HLS ARRAY_PARTITION variable=pk type=complete
pk_clear:
    for (int j = 0; j < AGU_Q8_LANES; j++) {
#pragma HLS UNROLL
        pk[j] = 0;
    }

    /* Band sizes and steps, once (the loops below only add and compare). */
    const uint32_t plane_out = h_out * w_out;
    const uint32_t span = ((h_out - 1) * s + k_h) * w_in;   /* the rows a plane's windows read */
    const uint32_t grp_in = G * plane_in, grp_out = G * plane_out;
    const uint32_t all_in = planes * plane_in, all_out = planes * plane_out;
    const uint32_t band_in = ny * row_step, band_out = ny * w_out, kh_w = k_h * w_in;

    /* racc is zero outside [0, carry) between bands: cleared once over the
     * largest band, then by the store as it reads and by the carry. */
    if (bp) {
        const uint32_t ext = whole ? (all_in < grp_in ? all_in : grp_in)
                                   : band_in + kh_w - w_in;
        const uint32_t words = (ext + AGU_Q8_LANES - 1) / AGU_Q8_LANES;
        CTRAIN_LOOP(ew, 1, words);
    clear:
        for (uint32_t k = 0; k < words; k++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=POOL_BAND/AGU_Q8_LANES
        clear_lane:
            for (int j = 0; j < AGU_Q8_LANES; j++) {
#pragma HLS UNROLL
                racc[k * AGU_Q8_LANES + j] = 0;
            }
        }
    }
    uint32_t in_p = 0, out_p = 0;   /* the group's first plane */
band_planes:
    for (uint32_t p0 = 0; p0 < planes; p0 += G) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=MAX_PLANES
        const uint32_t gin = all_in - in_p < grp_in ? all_in - in_p : grp_in;
        const uint32_t gout = all_out - out_p < grp_out ? all_out - out_p : grp_out;
        uint32_t in_r = 0, out_r = 0;   /* row bands: the band's offset in the plane */
    band_rows:
        for (uint32_t y0 = 0; y0 < h_out; y0 += ny) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
            const bool last = y0 + ny >= h_out;
            const uint32_t nyb = last ? h_out - y0 : ny;
            const uint32_t in_at = in_p + in_r, out_at = out_p + out_r;
            const uint32_t n_out = whole ? gout : (last ? plane_out - out_r : band_out);
            const uint32_t n_in = whole ? gin - plane_in + span
                                        : (last ? span - in_r : band_in - row_step + kh_w);
            agu_rd_q8b<PIN_BANK>(ddr, in_base + in_at, pin, n_in, 0, -1);
            if (bp)
                agu_rd_q8b<POUT_BANK>(ddr, f.src + out_at, pbuf, n_out, 0, -1);
            /* (plane, row, column, ky, kx) as running addresses: no multiplier */
            pool_taps tc = {0, 0, 0, 0, 0, 0, 0, 0};
            uint32_t o = 0;
            q8_t best = 0;
            uint32_t at_best = 0;
            /* BP: the two latest gradient writes, forwarded to a read of the
             * same position (the read-add-write of racc spans two cycles) */
            uint32_t w1_at = 0, w2_at = 0;
            ap_int<16> w1_v = 0, w2_v = 0;
            bool w1_ok = false, w2_ok = false;
            bool more = true;
        taps:
            while (more) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=POOL_BAND*MAX_KK
#pragma HLS DEPENDENCE variable=racc type=inter false
#pragma HLS DEPENDENCE variable=pbuf type=inter false
                /* The segment of up to W taps of window row ky from kx: lanes
                 * [off, off + W) of the two words at the beat-aligned wb. */
                const uint32_t a = tc.xbase + tc.roff + tc.kx;
                const uint32_t live = k_w - tc.kx < AGU_Q8_LANES ? k_w - tc.kx : AGU_Q8_LANES;
                q8_t seg[AGU_Q8_LANES];   /* lanes a .. a + W - 1 */
                /* registers: every lane at once */
#pragma HLS ARRAY_PARTITION variable=seg type=complete
                pool_get<PIN_BANK>(pin, a, seg);
                q8_t sm = 0;      /* the segment's first maximum and its lane */
                uint32_t sj = 0;
            segment:
                for (int j = 0; j < AGU_Q8_LANES; j++) {
#pragma HLS UNROLL
                    const q8_t v = seg[j];
                    if ((uint32_t)j < live && (j == 0 || v > sm)) {
                        sm = v;
                        sj = j;
                    }
                }
                /* strict: the first maximum in row-major order wins */
                const bool take = (tc.kx == 0 && tc.ky == 0) || sm > best;
                const q8_t m = take ? sm : best;
                const uint32_t am = take ? a + sj : at_best;
                best = m;
                at_best = am;
                if (tc.kx + live == k_w && tc.ky + 1 == k_h) {   /* the window's last segment */
                    if (!bp) {
                        pool_pack(pbuf, pk, o, m, o + 1 == n_out);
                        q_stats_add(st, m, m, false);
                    } else {
                        /* the error: element o, word o / W of bank (o / W) & 1 */
                        const q8_t e = (mask && m <= 0) ? (q8_t)0
                                       : pbuf[(o >> AGU_Q8_LOG2) & 1][(o >> (AGU_Q8_LOG2 + 1)) << AGU_Q8_LOG2
                                                                      | (o & (AGU_Q8_LANES - 1))];
                        ap_int<16> cur = racc[am];
                        if (w1_ok && w1_at == am)
                            cur = w1_v;
                        else if (w2_ok && w2_at == am)
                            cur = w2_v;
                        const ap_int<16> nv = cur + e;
                        racc[am] = nv;
                        w2_at = w1_at; w2_v = w1_v; w2_ok = w1_ok;
                        w1_at = am; w1_v = nv; w1_ok = true;
                    }
                    o++;
                    more = o != n_out;
                }
                CTRAIN_COUNT(ew, 1);   /* one iteration; the entry below */
                pool_taps_next(tc, live, k_w, k_h, w_in, w_out, nyb, s, row_step, plane_in);
            }
            CTRAIN_COUNT(ew_in, 1);   /* every band has an output */
            if (!bp) {
                agu_wr_q8b<POUT_BANK>(ddr, f.dst + out_at, pbuf, n_out, 0, -1);
            } else {
                /* The rows this band owns: whole planes, or up to the next band's
                 * first row (the plane's last band: to its end). */
                const uint32_t own = whole ? gin : (last ? plane_in - in_r : band_in);
                const uint32_t words = (own + AGU_Q8_LANES - 1) / AGU_Q8_LANES;
                CTRAIN_LOOP(ew, 1, words);
            store:
                for (uint32_t k = 0; k < words; k++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=POOL_BAND/AGU_Q8_LANES
                    q8_t qv[AGU_Q8_LANES];
                    bool cl[AGU_Q8_LANES];
                    /* one register per lane */
#pragma HLS ARRAY_PARTITION variable=qv type=complete
#pragma HLS ARRAY_PARTITION variable=cl type=complete
                    const uint32_t rest = own - k * AGU_Q8_LANES;
                    const uint32_t row = (k >> 1) * AGU_Q8_LANES;   /* word k: bank k & 1 */
                store_lane:
                    for (int j = 0; j < AGU_Q8_LANES; j++) {
#pragma HLS UNROLL
                        bool clamped = false;
                        q8_t q = 0;
                        if ((uint32_t)j < rest) {   /* lanes past own: the carried rows */
                            /* element k * W + j: always bank j (no selection) */
                            q = sat8(racc[k * AGU_Q8_LANES + j].to_int64(), clamped);
                            racc[k * AGU_Q8_LANES + j] = 0;
                        }
                        if (k & 1)   /* the whole word at once */
                            pbuf[1][row + j] = q;
                        else
                            pbuf[0][row + j] = q;
                        qv[j] = q;
                        cl[j] = clamped;
                    }
                    q_stats_add_lanes8<AGU_Q8_LANES>(st, qv, cl, rest < AGU_Q8_LANES ? rest : AGU_Q8_LANES);
                }
                agu_wr_q8b<POUT_BANK>(ddr, f.dst + in_at, pbuf, own, 0, -1);
                /* Overlapping windows (k_h > s): rows below the owned ones already
                 * hold this band's contributions; they become the next band's first. */
                const uint32_t carry = (!whole && !last && k_h > s) ? kh_w - row_step : 0;
                CTRAIN_LOOP(ew, 1, POOL_CARRY_II * carry);
            carry_rows:
                for (uint32_t i = 0; i < carry; i++) {
                /* a read and two writes, both writes maybe in one bank (own % W
                 * == 0) of one write port: two cycles an element, as counted */
#pragma HLS PIPELINE II=POOL_CARRY_II
#pragma HLS LOOP_TRIPCOUNT min=1 max=POOL_BAND
                    /* reads at own + i, never written before in this loop */
#pragma HLS DEPENDENCE variable=racc type=inter false
                    racc[i] = racc[own + i];
                    racc[own + i] = 0;
                }
            }
            in_r += band_in;
            out_r += band_out;
        }
        in_p += grp_in;
        out_p += grp_out;
    }
}

/* The channel and position of the next element: the one state bn_through
 * carries from chunk to chunk (only it touches it). */
struct bn_cursor {
    uint32_t ch, pos;
};

static void bn_through(uint32_t total, int k, uint32_t c, uint32_t hw, bool fp, bool relu,
                       bool mask, int sh_out, const int32_t scale[CTRAIN_MAX_CH],
                       const wide_t shift[CTRAIN_MAX_CH], const q8_t in[CTRAIN_BN_CHUNK],
                       const q8_t gate[CTRAIN_BN_CHUNK], q8_t out[CTRAIN_BN_CHUNK], bn_cursor &cur,
                       q_stats &st) {
    /* a process of bn_chunks' DATAFLOW loop: chunk k through */
#pragma HLS INLINE off
    CTRAIN_PIPE_STAGE(1);
    const chunk_at ck = chunk_of<CTRAIN_BN_CHUNK>(total, k);
    /* A step per run of a word's lanes over at most two channels:
     * the rest of channel ch from lane a, then channel ch2.  With
     * h*w >= W that is the whole word (one step per word); smaller
     * planes take ceil(runs / 2) steps for a word's channel runs. */
    uint32_t wd = 0, a = 0;   /* the word; its first lane not done */
    bool more = ck.len > 0;
bn_steps:
    while (more) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_BN_CHUNK
        const uint32_t base = wd << AGU_Q8_LOG2;
        const uint32_t ch2 = cur.ch + 1 == c ? 0 : cur.ch + 1;
        const uint32_t ch3 = ch2 + 1 == c ? 0 : ch2 + 1;
        const uint32_t left = hw - cur.pos;   /* lanes of channel ch from lane a */
        const uint32_t in_word = ck.len - base < AGU_Q8_LANES ? ck.len - base
                                                               : AGU_Q8_LANES;
        const uint32_t two = a + left + hw;   /* past channel ch2's lanes */
        const uint32_t e = two < in_word ? two : in_word;
        const int32_t a0 = scale[cur.ch], a1 = scale[ch2];
        const wide_t b0 = fp ? shift[cur.ch] : 0, b1 = fp ? shift[ch2] : 0;
        wide_t pre[AGU_Q8_LANES], sto[AGU_Q8_LANES];
        bool cl[AGU_Q8_LANES];
        /* one register per lane */
#pragma HLS ARRAY_PARTITION variable=pre type=complete
#pragma HLS ARRAY_PARTITION variable=sto type=complete
#pragma HLS ARRAY_PARTITION variable=cl type=complete
    bn_lane:
        for (int j = 0; j < AGU_Q8_LANES; j++) {
#pragma HLS UNROLL
            const uint32_t i = base + j;
            const bool next = (uint32_t)j >= a + left;
            /* |x*A| < 2^38: two DSP slices (every board has them to spare) */
            const wide_t prod = (wide_t)in[i] * (next ? a1 : a0);
            wide_t acc = prod + (next ? b1 : b0);
            if (relu && acc < 0) acc = 0;
            if (mask && gate[i] <= 0) acc = 0;
            bool clamped;
            const q8_t o = quant8(acc, sh_out, clamped);
            if ((uint32_t)j >= a && (uint32_t)j < e)
                out[i] = o;
            pre[j] = acc;
            sto[j] = o;
            cl[j] = clamped;
        }
        q_stats_add_run<AGU_Q8_LANES>(st, pre, sto, cl, a, e);
        CTRAIN_COUNT(ew, 1);
        /* past lanes [a, e): the channel and position there */
        const uint32_t r = e - a;
        if (r < left) {
            cur.pos += r;
        } else if (r - left < hw) {
            cur.pos = r - left;
            cur.ch = ch2;
        } else {
            cur.pos = 0;
            cur.ch = ch3;
        }
        if (e == in_word) {
            a = 0;
            wd++;
            more = base + AGU_Q8_LANES < ck.len;
        } else {
            a = e;
        }
    }
    CTRAIN_COUNT(ew_in, 1);   /* a chunk has an element */
}

static void bn_chunks(ddr_t *ddr, const ddr_t *ddr1, uint32_t total, int chunks, uint32_t c,
                      uint32_t hw, bool fp, bool relu, bool mask, int sh_out, uint32_t src,
                      uint32_t aux, uint32_t dst, const int32_t scale[CTRAIN_MAX_CH],
                      const wide_t shift[CTRAIN_MAX_CH], bn_cursor &cur, q_stats &st) {
chunk:
    for (int k = 0; k < chunks; k++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CHUNKS_OF_K(CTRAIN_MAX_COUNT, CTRAIN_BN_CHUNK)
        /* load k+1 || through k || store k-1: the channels are ping-pong buffers */
#pragma HLS DATAFLOW
        q8_t in[CTRAIN_BN_CHUNK], gate[CTRAIN_BN_CHUNK], out[CTRAIN_BN_CHUNK];
        /* a beat per cycle in and out, a word of W lanes per cycle through */
#pragma HLS ARRAY_PARTITION variable=in type=cyclic factor=AGU_Q8_LANES
#pragma HLS ARRAY_PARTITION variable=gate type=cyclic factor=AGU_Q8_LANES
#pragma HLS ARRAY_PARTITION variable=out type=cyclic factor=AGU_Q8_LANES
#if CTRAIN_BN_LUTRAM
        /* longer chunks in LUTs where the BRAM is spoken for (CTRAIN_BN_LUTRAM) */
#pragma HLS BIND_STORAGE variable=in type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=gate type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=out type=ram_2p impl=lutram
#endif
        chunk_load_q8<CTRAIN_BN_CHUNK>(ddr, ddr1, total, k, src, mask, aux, in, gate);
        bn_through(total, k, c, hw, fp, relu, mask, sh_out, scale, shift, in, gate, out, cur, st);
        chunk_store_q8<CTRAIN_BN_CHUNK>(ddr, total, k, dst, out);
    }
}

/* BN_FP: out = sat8(rshift_round(x*A[c] + rshift_round(B[c], e_acc - e_B), e_dst - e_acc)),
 * ReLU before the statistics; BN_BP: err*A[c], zeroed where aux <= 0 with
 * RELU_MASK.  A and B (<= CTRAIN_MAX_CH int32 each) are read once; the tensor
 * streams in CTRAIN_BN_CHUNK chunks through bn_chunks' DATAFLOW loop while a
 * (channel, position) cursor tracks which channel each element (W lanes: the
 * word's first) belongs to. */
void stream_bn(ddr_t *ddr, ddr_t *ddr1, const ctrain_insn_t &f, const insn_exps &e,
               q_stats &st) {
    const bool fp = f.op == OP_BN_FP;
    const bool relu = fp && (f.flags & FLAG_RELU);
    const bool mask = !fp && (f.flags & FLAG_RELU_MASK);
    const uint32_t c = f.c_in, hw = f.h_in * f.w_in, total = f.n * c * hw;
    const wide_t e_acc = (wide_t)e.src + e.src2;
    const int sh_out = q_shift((wide_t)e.dst - e_acc);
    const int sh_b = q_shift(e_acc - e.src3);
    int32_t scale[CTRAIN_MAX_CH], braw[CTRAIN_MAX_CH];
    wide_t shift[CTRAIN_MAX_CH];   /* FP: B[c] at e_acc */
    /* filled a beat per cycle; the lanes read two channels per cycle (the
     * RAM's two ports) */
#pragma HLS ARRAY_PARTITION variable=scale type=cyclic factor=AGU_I32_LANES
#pragma HLS ARRAY_PARTITION variable=braw type=cyclic factor=AGU_I32_LANES
    agu_rd_i32w<CTRAIN_MAX_CH>(ddr, f.src2, scale, c);
    if (fp) {
        agu_rd_i32w<CTRAIN_MAX_CH>(ddr, f.src3, braw, c);
        CTRAIN_LOOP(ew, 1, c);
    bn_offset:
        for (uint32_t k = 0; k < c; k++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_CH
            shift[k] = rshift_round(braw[k], sh_b);
        }
    }
    bn_cursor cur = {0, 0};
    CTRAIN_PIPE_BEGIN();
    bn_chunks(ddr, ddr1, total, (int)CHUNKS_OF_K(total, CTRAIN_BN_CHUNK), c, hw, fp, relu, mask,
              sh_out, f.src, f.aux, f.dst, scale, shift, cur, st);
    CTRAIN_PIPE_END();
}
