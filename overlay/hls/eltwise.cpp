/* Residual add and average pooling (see eltwise.h). */
#include "eltwise.h"
#include "agu.h"

#define EW_BEAT CTRAIN_DDR_BEAT
/* Beats of a CTRAIN_CHUNK burst and of a CTRAIN_MAX_DIM row. */
#define EW_CHUNK_BEATS ((CTRAIN_CHUNK + EW_BEAT - 1) / EW_BEAT)
#define EW_ROW_BEATS ((CTRAIN_MAX_DIM + EW_BEAT - 1) / EW_BEAT)

/* ADD's chunk loop: DATAFLOW processes, an item a chunk (as stream.cpp's
 * relu_chunks). */
static void add_load(const ddr_t *ddr, const ddr_t *ddr1, uint32_t count, int k, uint32_t src,
                     bool mask, uint32_t aux, uint32_t src2, q8_t a[CTRAIN_CHUNK],
                     q8_t gate[CTRAIN_CHUNK], q8_t b[CTRAIN_CHUNK]) {
    /* a process of add_chunks' DATAFLOW loop: chunk k in (the second operand on port 1) */
#pragma HLS INLINE off
    CTRAIN_PIPE_STAGE(0);
    const chunk_at ck = chunk_of<CTRAIN_CHUNK>(count, k);
    agu_chunk_rd<CTRAIN_CHUNK>(ddr, ddr1, ck.len, src + ck.i0, a, mask, aux + ck.i0, gate, true,
                               src2 + ck.i0, b);
}

static void add_through(uint32_t count, int k, bool relu, bool mask, const add_align &al,
                        const q8_t a[CTRAIN_CHUNK], const q8_t gate[CTRAIN_CHUNK],
                        const q8_t b[CTRAIN_CHUNK], q8_t out[CTRAIN_CHUNK], q_stats &st) {
    /* a process of add_chunks' DATAFLOW loop: a beat per cycle */
#pragma HLS INLINE off
    CTRAIN_PIPE_STAGE(1);
    const chunk_at ck = chunk_of<CTRAIN_CHUNK>(count, k);
    const uint32_t beats = (ck.len + EW_BEAT - 1) / EW_BEAT;
    add_mag_t top = 0;   /* the chunk's largest magnitude, as add_one forms it */
    CTRAIN_LOOP(ew, 1, beats);
add_beat:
    for (uint32_t w = 0; w < beats; w++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=EW_CHUNK_BEATS
        q_lanes ql = {0, 0, 0, 0};   /* the beat's counts meet the statistics as one update */
        add_mag_t bm = 0;            /* and its lanes' largest magnitude */
    add_lane:
        for (int l = 0; l < EW_BEAT; l++) {
#pragma HLS UNROLL
            const uint32_t i = w * EW_BEAT + l;
            const bool in = i < ck.len;   /* lanes past the chunk read nothing */
            add_mag_t m;
            bool clamped;
            const q8_t o = add_one(in ? a[i] : (q8_t)0, in ? b[i] : (q8_t)0,
                                    mask && in && gate[i] <= 0, relu, al, m, clamped);
            if (in) {
                if (m > bm) bm = m;
                q_lanes_add(ql, 0, o, clamped);
                out[i] = o;
            }
        }
        if (bm > top) top = bm;
        q_stats_merge(st, ql);
    }
    /* one 64-bit magnitude per chunk: add_magnitude is monotone in m */
    const wide_t peak = add_magnitude(top, al);
    if (peak > st.max_abs) st.max_abs = peak;
}

static void add_chunks(ddr_t *ddr, const ddr_t *ddr1, uint32_t count, int chunks, uint32_t src,
                       uint32_t src2, uint32_t aux, uint32_t dst, bool relu, bool mask,
                       const add_align &al, q_stats &st) {
chunk:
    for (int k = 0; k < chunks; k++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CHUNKS_OF(CTRAIN_MAX_COUNT)
        /* load k+1 || add k || store k-1: the channels are ping-pong buffers */
#pragma HLS DATAFLOW
        q8_t a[CTRAIN_CHUNK], gate[CTRAIN_CHUNK], b[CTRAIN_CHUNK], out[CTRAIN_CHUNK];
        /* A beat's EW_BEAT lanes are read and written in one cycle (the adds and
         * the beat-wide bursts). */
#pragma HLS ARRAY_PARTITION variable=a type=cyclic factor=EW_BEAT
#pragma HLS ARRAY_PARTITION variable=gate type=cyclic factor=EW_BEAT
#pragma HLS ARRAY_PARTITION variable=b type=cyclic factor=EW_BEAT
#pragma HLS ARRAY_PARTITION variable=out type=cyclic factor=EW_BEAT
        add_load(ddr, ddr1, count, k, src, mask, aux, src2, a, gate, b);
        add_through(count, k, relu, mask, al, a, gate, b, out, st);
        chunk_store_q8<CTRAIN_CHUNK>(ddr, count, k, dst, out);
    }
}

void eltwise_add(ddr_t *ddr, ddr_t *ddr1, const ctrain_insn_t &f, const insn_exps &e,
                 q_stats &st) {
    const wide_t e_acc = e.src < e.src2 ? (wide_t)e.src : (wide_t)e.src2;
    CTRAIN_PIPE_BEGIN();
    add_chunks(ddr, ddr1, f.count, (int)CHUNKS_OF(f.count), f.src, f.src2, f.aux, f.dst,
               (f.flags & FLAG_RELU) != 0, (f.flags & FLAG_RELU_MASK) != 0,
               add_align_of(q_shift(e_acc - e.src), q_shift(e_acc - e.src2),   /* <= 0: exact */
                            q_shift((wide_t)e.dst - e_acc)),
               st);
    CTRAIN_PIPE_END();
}

typedef ap_int<26> avg_sum_t;     /* a window's sum: < 512*512*128 = 2^25 */
typedef ap_uint<31> avg_recip_t;  /* R <= 2^30 */
typedef ap_int<57> avg_acc_t;

/* Stores one int8 from a window sum: acc = sum * R, mask, statistics. */
static inline q8_t avg_store(avg_sum_t sum, avg_recip_t r, bool drop, int sh_out, q_stats &st) {
#pragma HLS INLINE
    /* DSPs: every board has them to spare beside its arrays (ctrain.tools.resources),
     * where the three copies in fabric cost 2.4K LUTs the sparse window needs */
    const avg_acc_t prod = sum * r;
    const wide_t acc = drop ? (wide_t)0 : (wide_t)prod.to_int64();
    bool clamped;
    const q8_t q = sat8(rshift_round(acc, sh_out), clamped);
    q_stats_add(st, acc, q, clamped);
    return q;
}

/* a * b of two sizes (products of dimensions, < 2^32), computed once per
 * instruction in LUTs. */
static inline uint32_t dim_mul(uint32_t a, uint32_t b) {
#pragma HLS INLINE
    const uint32_t p = a * b;
    /* Once per instruction: LUTs, not a DSP unit of its own. */
#pragma HLS BIND_OP variable=p op=mul impl=fabric
    return p;
}

/* A window's vertical sum, one row: w values at addr read into line[], then
 * col[i] = line[i] (first row) or col[i] + line[i], EW_BEAT lanes per cycle
 * (beats = ceil(w / EW_BEAT)). AVGPOOL_FP sums a window's input rows, BP the
 * error rows covering an input row. */
static void avg_vsum_row(const ddr_t *ddr, uint32_t addr, int w, uint32_t beats, bool first,
                         q8_t line[CTRAIN_MAX_DIM], int32_t col[CTRAIN_MAX_DIM]) {
#pragma HLS INLINE
    agu_rd_q8<CTRAIN_MAX_DIM>(ddr, addr, line, w);
    CTRAIN_LOOP(ew, 1, beats);
vsum:
    for (uint32_t k = 0; k < beats; k++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=EW_ROW_BEATS
    vsum_lane:
        for (int l = 0; l < EW_BEAT; l++) {
#pragma HLS UNROLL
            const uint32_t i = k * EW_BEAT + l;
            if (i < (uint32_t)w)
                col[i] = (first ? 0 : col[i]) + line[i];
        }
    }
}

/* AVGPOOL_FP: per output row, the window's input rows are summed into col[]
 * beat by beat, then each output sums k_w columns (kx outer, as max pooling:
 * within one kx the columns x*s + kx are distinct). */
static void avgpool_fp(ddr_t *ddr, const ctrain_insn_t &f, avg_recip_t r, int sh_out, q_stats &st) {
    const int s = f.stride, k_h = f.k_h, k_w = f.k_w, w_in = f.w_in, w_out = f.w_out;
    const uint32_t in_beats = (f.w_in + EW_BEAT - 1) / EW_BEAT;
    /* Addresses advance by sums: a plane, an output row's stride of input rows. */
    const uint32_t planes = dim_mul(f.n, f.c_in), plane_in = dim_mul(f.h_in, f.w_in);
    const uint32_t row_step = dim_mul(f.stride, f.w_in);
    uint32_t in_plane = f.src, out_row_at = f.dst;
    q8_t line[CTRAIN_MAX_DIM];
    int32_t col[CTRAIN_MAX_DIM];     /* <= CTRAIN_MAX_DIM rows of |x| <= 128 */
    int32_t row[CTRAIN_MAX_DIM];     /* <= CTRAIN_MAX_DIM^2 * 128 < 2^25 */
    q8_t orow[CTRAIN_MAX_DIM];
    /* The vertical sum reads and writes EW_BEAT lanes per cycle. */
#pragma HLS ARRAY_PARTITION variable=line type=cyclic factor=EW_BEAT
#pragma HLS ARRAY_PARTITION variable=col type=cyclic factor=EW_BEAT
    /* Shallow banks (CTRAIN_MAX_DIM / W words) and one 512-word row each: distributed
     * RAM, so the BRAM goes to the PE array (docs/overlay.md "Resource estimate"). */
#pragma HLS BIND_STORAGE variable=col type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=row type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=orow type=ram_2p impl=lutram
plane:
    for (uint32_t nc = 0; nc < planes; nc++, in_plane += plane_in) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=MAX_PLANES
        uint32_t win_at = in_plane;   /* input row y*s of this plane */
    out_row:
        for (uint32_t y = 0; y < f.h_out; y++, win_at += row_step, out_row_at += w_out) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
            uint32_t row_at = win_at;
        tap_y:
            for (int ky = 0; ky < k_h; ky++, row_at += w_in) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
                avg_vsum_row(ddr, row_at, w_in, in_beats, ky == 0, line, col);
            }
        tap_x:
            for (int kx = 0; kx < k_w; kx++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
#pragma HLS LOOP_FLATTEN off
                const bool last = kx == k_w - 1;
                CTRAIN_LOOP(ew, 1, w_out);
                int xs = kx;   /* x * s + kx, counted up by s */
            hsum:
                for (int x = 0; x < w_out; x++, xs += s) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
#pragma HLS DEPENDENCE variable=row type=inter false
                    const int32_t v = (kx == 0 ? 0 : row[x]) + col[xs];
                    row[x] = v;
                    if (last)   /* the final column also stores the output */
                        orow[x] = avg_store(v, r, false, sh_out, st);
                }
            }
            agu_wr_q8<CTRAIN_MAX_DIM>(ddr, out_row_at, orow, w_out);
        }
    }
}

/* AVGPOOL_BP: per input row, the errors of the output rows whose windows
 * cover it are summed into col[] beat by beat, spread over the k_w columns
 * each window covers (kx outer: distinct targets within one kx), then scaled
 * by R and stored. */
static void avgpool_bp(ddr_t *ddr, const ctrain_insn_t &f, avg_recip_t r, int sh_out, q_stats &st) {
    const bool mask = (f.flags & FLAG_RELU_MASK) != 0;
    const int s = f.stride, k_h = f.k_h, k_w = f.k_w;
    const int h_in = f.h_in, w_in = f.w_in, h_out = f.h_out, w_out = f.w_out;
    const uint32_t out_beats = (f.w_out + EW_BEAT - 1) / EW_BEAT;
    /* Addresses advance by sums: planes, rows; the first covering error row
     * moves down by w_out each time oy_lo grows (by at most one per input row). */
    const uint32_t planes = dim_mul(f.n, f.c_in), plane_out = dim_mul(f.h_out, f.w_out);
    uint32_t err_plane = f.src, in_row_at = 0;
    q8_t erow[CTRAIN_MAX_DIM];
    int32_t col[CTRAIN_MAX_DIM];     /* <= CTRAIN_MAX_DIM rows of |err| <= 128 */
    int32_t racc[CTRAIN_MAX_DIM];    /* < 2^25 */
    q8_t gate[CTRAIN_MAX_DIM];
    q8_t orow[CTRAIN_MAX_DIM];
    /* The vertical sum reads and writes EW_BEAT lanes per cycle. */
#pragma HLS ARRAY_PARTITION variable=erow type=cyclic factor=EW_BEAT
#pragma HLS ARRAY_PARTITION variable=col type=cyclic factor=EW_BEAT
    /* As in avgpool_fp: shallow banks and single rows in distributed RAM. */
#pragma HLS BIND_STORAGE variable=col type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=racc type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=gate type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=orow type=ram_2p impl=lutram
    /* racc is cleared once here, then by every row's store as it reads it. */
    CTRAIN_LOOP(ew, 1, w_in);
clear:
    for (int x = 0; x < w_in; x++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
        racc[x] = 0;
    }
plane:
    for (uint32_t nc = 0; nc < planes; nc++, err_plane += plane_out) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=MAX_PLANES
        int lo_prev = 0;
        uint32_t lo_at = err_plane;   /* error row oy_lo of this plane */
    in_row:
        for (int iy = 0; iy < h_in; iy++, in_row_at += w_in) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
            /* Windows covering this row: oy*s <= iy < oy*s + k_h (none past the last). */
            const int oy_hi = (iy / s < h_out - 1) ? iy / s : h_out - 1;
            const int oy_lo = iy < k_h ? 0 : (iy - k_h + s) / s;
            if (oy_lo > lo_prev) {   /* (iy - k_h + s) / s grows by at most one per row */
                lo_prev = oy_lo;
                lo_at += w_out;
            }
            uint32_t err_at = lo_at;
        cover:
            for (int oy = oy_lo; oy <= oy_hi; oy++, err_at += w_out) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
                avg_vsum_row(ddr, err_at, w_out, out_beats, oy == oy_lo, erow, col);
            }
            if (oy_lo <= oy_hi) {
            spread_kx:
                for (int kx = 0; kx < k_w; kx++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
#pragma HLS LOOP_FLATTEN off
                    CTRAIN_LOOP(ew, 1, w_out);
                    int xs = kx;   /* x * s + kx, counted up by s */
                spread:
                    for (int x = 0; x < w_out; x++, xs += s) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
                        /* Within one kx the targets x*s + kx are distinct. */
#pragma HLS DEPENDENCE variable=racc type=inter false
                        racc[xs] += col[x];
                    }
                }
            }
            if (mask)
                agu_rd_q8<CTRAIN_MAX_DIM>(ddr, f.aux + in_row_at, gate, w_in);
            CTRAIN_LOOP(ew, 1, w_in);
        store:
            for (int x = 0; x < w_in; x++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
                const int32_t v = racc[x];
                racc[x] = 0;
                orow[x] = avg_store(v, r, mask && gate[x] <= 0, sh_out, st);
            }
            agu_wr_q8<CTRAIN_MAX_DIM>(ddr, f.dst + in_row_at, orow, w_in);
        }
    }
}

/* Small planes (a band of G >= 1 whole planes fits half of the band
 * buffers; BP: the windows cover every input at most once, s >= k or a
 * single window, as global pooling): bands through ping-pong halves, load
 * k+1 || compute k || store k-1, one burst per operand and band, one
 * pipelined loop per band.  FP: one segment of <= W taps of a window row per
 * cycle (an adder tree), the window's output at its last segment; BP: one
 * input element per cycle, its window's error (or 0) times R. */
#define AVG_HALF CTRAIN_CHUNK

static void avgpool_band(ddr_t *ddr, const ctrain_insn_t &f, avg_recip_t r, int sh_out, q_stats &st,
                         uint32_t G) {
    const bool bp = f.op == OP_AVGPOOL_BP;
    const bool mask = bp && (f.flags & FLAG_RELU_MASK) != 0;
    const uint32_t s = f.stride, k_h = f.k_h, k_w = f.k_w, w_in = f.w_in, h_out = f.h_out;
    const uint32_t w_out = f.w_out, h_in = f.h_in;
    const uint32_t planes = dim_mul(f.n, f.c_in), plane_in = dim_mul(h_in, w_in);
    const uint32_t plane_out = dim_mul(h_out, w_out), row_step = dim_mul(s, w_in);
    const uint32_t grp_in = dim_mul(G, plane_in), grp_out = dim_mul(G, plane_out);
    const uint32_t all_in = dim_mul(planes, plane_in), all_out = dim_mul(planes, plane_out);
    /* BP's strides: one window along a dimension never wraps */
    const uint32_t sy = h_out == 1 ? CTRAIN_MAX_DIM : s, sx = w_out == 1 ? CTRAIN_MAX_DIM : s;
    /* FP: the rows; BP: the gate, then the errors.  A RAM per ping-pong half
     * (a word spare each): per cycle the compute's half sees two word reads
     * (FP the segment's two words, BP the error's and the gate's: the RAM's
     * two ports) and the load's half one write. */
    q8_t ain[2][AVG_HALF + EW_BEAT];
    q8_t aout[2 * AVG_HALF];
    /* a RAM per half: the compute's two reads and the load's write never share one */
#pragma HLS ARRAY_PARTITION variable=ain type=complete dim=1
    /* words of a beat: filled a beat per cycle */
#pragma HLS ARRAY_RESHAPE variable=ain type=cyclic factor=EW_BEAT dim=2
    /* aout written an element per cycle, drained a beat per cycle (one port each) */
#pragma HLS ARRAY_RESHAPE variable=aout type=cyclic factor=EW_BEAT
    /* CTRAIN_CHUNK halves: distributed RAM, the BRAM goes to the PE array */
#pragma HLS BIND_STORAGE variable=ain type=ram_2p impl=lutram
#pragma HLS BIND_STORAGE variable=aout type=ram_2p impl=lutram
    const uint32_t half_words = AVG_HALF / EW_BEAT;
    uint32_t l_in = 0, l_out = 0, c_in = 0, c_out = 0, s_in = 0, s_out = 0;   /* load, compute, store */
    /* The pipeline over bands: load k+1 || compute k || store k-1, until the
     * store has passed the last plane (no band count: no divider). */
band:
    for (int32_t k = -1; s_in < all_in; k++) {
#pragma HLS LOOP_TRIPCOUNT min=2 max=MAX_PLANES+2
        const bool region = k >= 0 && c_in < all_in;
        if (region)
            CTRAIN_REGION_BEGIN();
        if (l_in < all_in) {   /* stage 0: band k + 1 in */
            const uint32_t n_i = all_in - l_in < grp_in ? all_in - l_in : grp_in;
            const uint32_t n_o = all_out - l_out < grp_out ? all_out - l_out : grp_out;
            const int h = (int)((uint32_t)(k + 1) & 1);
            if (!bp)
                agu_rd_q8b<AVG_HALF + EW_BEAT>(ddr, f.src + l_in, ain, n_i, 0, h);
            else {   /* the errors from the word after the gate */
                if (mask)
                    agu_rd_q8b<AVG_HALF + EW_BEAT>(ddr, f.aux + l_in, ain, n_i, 0, h);
                agu_rd_q8b<AVG_HALF + EW_BEAT>(ddr, f.src + l_out, ain, n_o,
                                                mask ? (n_i + EW_BEAT - 1) / EW_BEAT : 0, h);
            }
            l_in += grp_in;
            l_out += grp_out;
        }
        if (region) {           /* stage 1: band k through */
            CTRAIN_STAGE(1);
            const uint32_t hb = (((uint32_t)k & 1) ? AVG_HALF : 0);   /* aout's half */
            const uint32_t ih = (uint32_t)k & 1;                       /* ain's */
            const uint32_t n_i = all_in - c_in < grp_in ? all_in - c_in : grp_in;
            const uint32_t n_o = all_out - c_out < grp_out ? all_out - c_out : grp_out;
            const uint32_t e0 = mask ? (n_i + EW_BEAT - 1) / EW_BEAT * EW_BEAT : 0;
            /* FP: (plane, y, x, ky, segment kx) as running addresses; BP: the
             * element, its row and column phases within the stride and its window */
            pool_taps tc = {0, 0, 0, 0, 0, 0, 0, 0};
            uint32_t o = 0, i = 0, iy = 0, ix = 0, ry = 0, rx = 0, oy = 0, ox = 0, obase = 0, pobase = 0;
            avg_sum_t sum = 0;
            bool more = true;
        win:
            while (more) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=AVG_HALF*EW_BEAT
                CTRAIN_COUNT(ew, 1);
                avg_sum_t val = 0;   /* the value stored this cycle, if any (one avg_store) */
                bool put = false, drop = false;
                uint32_t put_at = 0;
                /* The two words this cycle reads, whatever the mode (two
                 * reads of ain's two ports): FP the segment's, at a's word
                 * and the next; BP the error's (at ea) and the gate's (at i). */
                const uint32_t a = tc.xbase + tc.roff + tc.kx;
                const bool covered = ry < k_h && oy < h_out && rx < k_w && ox < w_out;
                const uint32_t ea = covered ? e0 + obase + ox : e0;
                const uint32_t w0 = (bp ? ea : a) & ~(uint32_t)(EW_BEAT - 1);
                const uint32_t w1 = (bp ? i : a + EW_BEAT) & ~(uint32_t)(EW_BEAT - 1);
                q8_t v0[EW_BEAT], v1[EW_BEAT];
                /* a word's lanes: registers */
#pragma HLS ARRAY_PARTITION variable=v0 type=complete
#pragma HLS ARRAY_PARTITION variable=v1 type=complete
            avg_words:
                for (int j = 0; j < EW_BEAT; j++) {
#pragma HLS UNROLL
                    v0[j] = ain[ih][w0 + j];
                    v1[j] = ain[ih][w1 + j];
                }
                if (!bp) {
                    /* lanes [off, off + live) of the two words */
                    const uint32_t off = a & (EW_BEAT - 1);
                    const uint32_t live = k_w - tc.kx < EW_BEAT ? k_w - tc.kx : EW_BEAT;
                    /* both words' lanes, those in the segment summed: no lane shifter */
                    avg_sum_t seg = 0;
                avg_taps:
                    for (int j = 0; j < 2 * EW_BEAT; j++) {
#pragma HLS UNROLL
                        const q8_t t = j < EW_BEAT ? v0[j] : v1[j - EW_BEAT];
                        if ((uint32_t)j >= off && (uint32_t)j < off + live)
                            seg += t;
                    }
                    const avg_sum_t v = (tc.kx == 0 && tc.ky == 0 ? (avg_sum_t)0 : sum) + seg;
                    sum = v;
                    if (tc.kx + live == k_w && tc.ky + 1 == k_h) {   /* the window's last segment */
                        val = v;
                        put = true;
                        put_at = hb + o;
                        o++;
                        more = o != n_o;
                    }
                    pool_taps_next(tc, live, k_w, k_h, w_in, w_out, h_out, s, row_step, plane_in);
                } else {
                    const q8_t err = v0[ea & (EW_BEAT - 1)];
                    drop = mask && v1[i & (EW_BEAT - 1)] <= 0;
                    val = covered ? (avg_sum_t)err : (avg_sum_t)0;
                    put = true;
                    put_at = hb + i;
                    i++;
                    more = i != n_i;
                    if (ix + 1 < w_in) {
                        ix++;
                        if (++rx == sx) { rx = 0; ox++; }
                    } else {   /* the next row, or the next plane's first */
                        ix = 0; rx = 0; ox = 0;
                        if (iy + 1 < h_in) {
                            iy++;
                            if (++ry == sy) { ry = 0; oy++; obase += w_out; }
                        } else {
                            iy = 0; ry = 0; oy = 0; pobase += plane_out; obase = pobase;
                        }
                    }
                }
                if (put)
                    aout[put_at] = avg_store(val, r, drop, sh_out, st);
            }
            CTRAIN_COUNT(ew_in, 1);
            c_in += grp_in;
            c_out += grp_out;
            CTRAIN_STAGE(2);
        }
        if (k >= 1) {           /* stage 2: band k - 1 out */
            const uint32_t at = bp ? s_in : s_out;
            const uint32_t n = bp ? (all_in - s_in < grp_in ? all_in - s_in : grp_in)
                                  : (all_out - s_out < grp_out ? all_out - s_out : grp_out);
            agu_wr_q8w<2 * AVG_HALF>(ddr, f.dst + at, aout, n, (((uint32_t)(k - 1) & 1) ? half_words : 0));
            s_in += grp_in;
            s_out += grp_out;
        }
        if (region)
            CTRAIN_REGION_END();
    }
}

void eltwise_avgpool(ddr_t *ddr, const ctrain_insn_t &f, const insn_exps &e, q_stats &st) {
    const avg_recip_t r = avg_recip(dim_mul(f.k_h, f.k_w));
    const int sh_out = q_shift((wide_t)e.dst - ((wide_t)e.src - CTRAIN_AVG_SHIFT));
    const bool bp = f.op == OP_AVGPOOL_BP;
    const uint32_t plane_in = dim_mul(f.h_in, f.w_in), plane_out = dim_mul(f.h_out, f.w_out);
    /* a band's planes: FP its rows; BP its gate and errors, a word spare */
    const uint32_t need = bp ? plane_in + plane_out : plane_in;
    const uint32_t g_fit = (AVG_HALF - EW_BEAT) / need;
    const bool once = (f.stride >= f.k_h || f.h_out == 1) && (f.stride >= f.k_w || f.w_out == 1);
    if (g_fit >= 1 && (!bp || once))
        avgpool_band(ddr, f, r, sh_out, st, g_fit);
    else if (!bp)
        avgpool_fp(ddr, f, r, sh_out, st);
    else
        avgpool_bp(ddr, f, r, sh_out, st);
}
