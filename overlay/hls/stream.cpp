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

/* W elements per cycle: a beat in, through the ReLU and out. */
void stream_relu(ddr_t *ddr, const ctrain_insn_t &f, q_stats &st) {
    const bool bp = f.op == OP_RELU_BP;
    /* Ping-pong halves (index: chunk & 1): chunk k + 1 loads into one while
     * chunk k goes through from the other and chunk k - 1 stores */
    q8_t in[2][CTRAIN_CHUNK], gate[2][CTRAIN_CHUNK], out[2][CTRAIN_CHUNK];
    /* a beat per cycle in and out, a word of W lanes per cycle through */
#pragma HLS ARRAY_PARTITION variable=in type=cyclic factor=AGU_Q8_LANES dim=2
#pragma HLS ARRAY_PARTITION variable=gate type=cyclic factor=AGU_Q8_LANES dim=2
#pragma HLS ARRAY_PARTITION variable=out type=cyclic factor=AGU_Q8_LANES dim=2
    const uint32_t count = f.count;
    const int32_t chunks = (int32_t)CHUNKS_OF(count);
    /* The pipeline over chunks: load k+1 || compute k || store k-1.  In
     * place (dst == src) too: a chunk is read whole before it is written,
     * and the stages never touch one chunk. */
chunk:
    for (int32_t k = -1; k <= chunks; k++) {
#pragma HLS LOOP_TRIPCOUNT min=2 max=CHUNKS_OF(CTRAIN_MAX_COUNT)+2
        const bool region = k >= 0 && k < chunks;
        if (region)
            CTRAIN_REGION_BEGIN();
        if (k + 1 < chunks) {   /* stage 0: chunk k + 1 in */
            const uint32_t l0 = (uint32_t)(k + 1) * CTRAIN_CHUNK;
            const uint32_t ll = CHUNK_LEN(count, l0);
            agu_rd_q8w<CTRAIN_CHUNK>(ddr, f.src + l0, in[(k + 1) & 1], ll);
            if (bp)
                agu_rd_q8w<CTRAIN_CHUNK>(ddr, f.aux + l0, gate[(k + 1) & 1], ll);
        }
        if (region) {           /* stage 1: chunk k through */
            CTRAIN_STAGE(1);
            const int h = k & 1;
            const uint32_t i0 = (uint32_t)k * CTRAIN_CHUNK;
            const uint32_t len = CHUNK_LEN(count, i0);
            const uint32_t words = (len + AGU_Q8_LANES - 1) / AGU_Q8_LANES;
            CTRAIN_LOOP(ew, 1, words);
        relu:
            for (uint32_t w = 0; w < words; w++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_CHUNK/AGU_Q8_LANES
                wide_t o[AGU_Q8_LANES];
                bool none[AGU_Q8_LANES];
                /* one register per lane */
#pragma HLS ARRAY_PARTITION variable=o type=complete
#pragma HLS ARRAY_PARTITION variable=none type=complete
                const uint32_t rest = len - w * AGU_Q8_LANES;
            lanes:
                for (int j = 0; j < AGU_Q8_LANES; j++) {
#pragma HLS UNROLL
                    const uint32_t i = w * AGU_Q8_LANES + j;
                    const q8_t v = in[h][i];
                    const q8_t q = bp ? (gate[h][i] > 0 ? v : (q8_t)0) : (v > 0 ? v : (q8_t)0);
                    out[h][i] = q;
                    o[j] = q;
                    none[j] = false;
                }
                q_stats_add_lanes<AGU_Q8_LANES>(st, o, o, none,
                                                rest < AGU_Q8_LANES ? rest : AGU_Q8_LANES);
            }
            CTRAIN_STAGE(2);
        }
        if (k >= 1) {           /* stage 2: chunk k - 1 out */
            const uint32_t s0 = (uint32_t)(k - 1) * CTRAIN_CHUNK;
            const uint32_t sl = CHUNK_LEN(count, s0);
            agu_wr_q8w<CTRAIN_CHUNK>(ddr, f.dst + s0, out[(k - 1) & 1], sl);
        }
        if (region)
            CTRAIN_REGION_END();
    }
}

/* Element i of a sequence into buf, one whole word of W lanes written when
 * its last lane (or the sequence's last element) arrives: buf is stored as
 * beat-wide words, and a word written whole needs no read-modify-write.
 * Lanes past the sequence's end carry stale values, never drained. */
static inline void pool_pack(q8_t buf[POOL_BAND], q8_t pk[AGU_Q8_LANES], uint32_t i, q8_t v,
                             bool end) {
#pragma HLS INLINE
    const uint32_t lane = i % AGU_Q8_LANES;
    pk[lane] = v;
    if (lane == AGU_Q8_LANES - 1 || end) {
        const uint32_t base = i - lane;
        for (int j = 0; j < AGU_Q8_LANES; j++) {
#pragma HLS UNROLL
            buf[base + j] = (uint32_t)j == lane ? v : pk[j];
        }
    }
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
    const uint32_t g_fit = whole ? POOL_BAND / plane_in : 1;
    const uint32_t G = g_fit >= g_align ? g_fit & ~(g_align - 1) : g_fit;
    const uint32_t fit = (POOL_BAND / w_in - k_h + 1) / s; /* >= 1: POOL_ROWS >= k_h + s - 1 */
    const uint32_t ny = whole || fit > h_out ? h_out : fit;   /* output rows per band */
    const uint32_t in_base = bp ? f.aux : f.src;
    q8_t pin[POOL_BAND + AGU_Q8_LANES];   /* the band's input rows, one word spare (segments) */
    q8_t pbuf[POOL_BAND];          /* FP: outputs; BP: errors, then the gradient rows */
    ap_int<16> racc[POOL_BAND];    /* BP: <= 121 contributions of |err| <= 128 */
    /* the store and the clear take a word of W per cycle */
#pragma HLS ARRAY_PARTITION variable=racc type=cyclic factor=AGU_Q8_LANES
    /* filled a beat per cycle, read two words per cycle (the RAM's two ports) */
#pragma HLS ARRAY_RESHAPE variable=pin type=cyclic factor=AGU_Q8_LANES
    /* filled and drained a beat per cycle; written a word at a time (pool_pack) */
#pragma HLS ARRAY_RESHAPE variable=pbuf type=cyclic factor=AGU_Q8_LANES
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
            agu_rd_q8w<POOL_BAND + AGU_Q8_LANES>(ddr, in_base + in_at, pin, n_in);
            if (bp)
                agu_rd_q8w<POOL_BAND>(ddr, f.src + out_at, pbuf, n_out);
            /* (plane, row, column, ky, kx) as running addresses: no multiplier */
            uint32_t gbase = 0, ybase = 0, xbase = 0, roff = 0;
            uint32_t y = 0, x = 0, ky = 0, kx = 0, o = 0;
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
                const uint32_t a = xbase + roff + kx;
                const uint32_t wb = a & ~(uint32_t)(AGU_Q8_LANES - 1);
                const uint32_t off = a & (AGU_Q8_LANES - 1);
                const uint32_t live = k_w - kx < AGU_Q8_LANES ? k_w - kx : AGU_Q8_LANES;
                q8_t two[2 * AGU_Q8_LANES];
                /* registers: both words at once */
#pragma HLS ARRAY_PARTITION variable=two type=complete
            words:
                for (int j = 0; j < 2 * AGU_Q8_LANES; j++) {
#pragma HLS UNROLL
                    two[j] = pin[wb + j];
                }
                q8_t sm = 0;      /* the segment's first maximum and its lane */
                uint32_t sj = 0;
            segment:
                for (int j = 0; j < AGU_Q8_LANES; j++) {
#pragma HLS UNROLL
                    const q8_t v = two[off + j];
                    if ((uint32_t)j < live && (j == 0 || v > sm)) {
                        sm = v;
                        sj = j;
                    }
                }
                /* strict: the first maximum in row-major order wins */
                const bool take = (kx == 0 && ky == 0) || sm > best;
                const q8_t m = take ? sm : best;
                const uint32_t am = take ? a + sj : at_best;
                best = m;
                at_best = am;
                if (kx + live == k_w && ky + 1 == k_h) {   /* the window's last segment */
                    if (!bp) {
                        pool_pack(pbuf, pk, o, m, o + 1 == n_out);
                        q_stats_add(st, m, m, false);
                    } else {
                        const q8_t e = (mask && m <= 0) ? (q8_t)0 : pbuf[o];
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
                if (kx + live < k_w) {
                    kx += AGU_Q8_LANES;
                } else if (ky + 1 < k_h) {
                    kx = 0; ky++; roff += w_in;
                } else if (x + 1 < w_out) {
                    kx = 0; ky = 0; roff = 0; x++; xbase += s;
                } else if (y + 1 < nyb) {
                    kx = 0; ky = 0; roff = 0; x = 0; y++; ybase += row_step; xbase = ybase;
                } else {   /* the next plane of the group */
                    kx = 0; ky = 0; roff = 0; x = 0; y = 0;
                    gbase += plane_in; ybase = gbase; xbase = gbase;
                }
            }
            CTRAIN_COUNT(ew_in, 1);   /* every band has an output */
            if (!bp) {
                agu_wr_q8w<POOL_BAND>(ddr, f.dst + out_at, pbuf, n_out);
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
                    wide_t qv[AGU_Q8_LANES];
                    bool cl[AGU_Q8_LANES];
                    /* one register per lane */
#pragma HLS ARRAY_PARTITION variable=qv type=complete
#pragma HLS ARRAY_PARTITION variable=cl type=complete
                    const uint32_t rest = own - k * AGU_Q8_LANES;
                store_lane:
                    for (int j = 0; j < AGU_Q8_LANES; j++) {
#pragma HLS UNROLL
                        const uint32_t i = k * AGU_Q8_LANES + j;
                        bool clamped = false;
                        q8_t q = 0;
                        if ((uint32_t)j < rest) {   /* lanes past own: the carried rows */
                            q = sat8(racc[i].to_int64(), clamped);
                            racc[i] = 0;
                        }
                        pbuf[i] = q;   /* the whole word at once */
                        qv[j] = q;
                        cl[j] = clamped;
                    }
                    q_stats_add_lanes<AGU_Q8_LANES>(st, qv, qv, cl,
                                                    rest < AGU_Q8_LANES ? rest : AGU_Q8_LANES);
                }
                agu_wr_q8w<POOL_BAND>(ddr, f.dst + in_at, pbuf, own);
                /* Overlapping windows (k_h > s): rows below the owned ones already
                 * hold this band's contributions; they become the next band's first. */
                const uint32_t carry = (!whole && !last && k_h > s) ? kh_w - row_step : 0;
                CTRAIN_LOOP(ew, 1, carry);
            carry_rows:
                for (uint32_t i = 0; i < carry; i++) {
#pragma HLS PIPELINE II=1
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

/* BN_FP: out = sat8(rshift_round(x*A[c] + rshift_round(B[c], e_acc - e_B), e_dst - e_acc)),
 * ReLU before the statistics; BN_BP: err*A[c], zeroed where aux <= 0 with
 * RELU_MASK.  A and B (<= CTRAIN_MAX_CH int32 each) are read once; the tensor
 * streams in CTRAIN_CHUNK bursts while a (channel, position) counter pair
 * tracks which channel each element (W lanes: the word's first) belongs to. */
void stream_bn(ddr_t *ddr, const ctrain_insn_t &f, const insn_exps &e, q_stats &st) {
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
    /* Ping-pong halves (index: chunk & 1): chunk k + 1 loads into one while
     * chunk k computes from the other and chunk k - 1 stores */
    q8_t in[2][CTRAIN_CHUNK], gate[2][CTRAIN_CHUNK], out[2][CTRAIN_CHUNK];
    /* a beat per cycle in and out, a word of W lanes per cycle through */
#pragma HLS ARRAY_PARTITION variable=in type=cyclic factor=AGU_Q8_LANES dim=2
#pragma HLS ARRAY_PARTITION variable=gate type=cyclic factor=AGU_Q8_LANES dim=2
#pragma HLS ARRAY_PARTITION variable=out type=cyclic factor=AGU_Q8_LANES dim=2
    /* W lanes when a word spans at most two channels (h*w >= W); smaller
     * planes (the fully connected end of a network) one element per cycle */
    const bool lanes = hw >= AGU_Q8_LANES;
    uint32_t ch = 0, pos = 0;   /* channel and position of the next element */
    const int32_t chunks = (int32_t)CHUNKS_OF(total);
    /* The pipeline over chunks: load k+1 || compute k || store k-1. */
chunk:
    for (int32_t k = -1; k <= chunks; k++) {
#pragma HLS LOOP_TRIPCOUNT min=2 max=CHUNKS_OF(CTRAIN_MAX_COUNT)+2
        const bool region = k >= 0 && k < chunks;
        if (region)
            CTRAIN_REGION_BEGIN();
        if (k + 1 < chunks) {   /* stage 0: chunk k + 1 in */
            const uint32_t l0 = (uint32_t)(k + 1) * CTRAIN_CHUNK;
            const uint32_t ll = CHUNK_LEN(total, l0);
            agu_rd_q8w<CTRAIN_CHUNK>(ddr, f.src + l0, in[(k + 1) & 1], ll);
            if (mask)
                agu_rd_q8w<CTRAIN_CHUNK>(ddr, f.aux + l0, gate[(k + 1) & 1], ll);
        }
        if (region) {           /* stage 1: chunk k through */
            CTRAIN_STAGE(1);
            const int h = k & 1;
            const uint32_t i0 = (uint32_t)k * CTRAIN_CHUNK;
            const uint32_t len = CHUNK_LEN(total, i0);
            if (lanes) {
                const uint32_t words = (len + AGU_Q8_LANES - 1) / AGU_Q8_LANES;
                CTRAIN_LOOP(ew, 1, words);
            bn_lanes:
                for (uint32_t w = 0; w < words; w++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_CHUNK/AGU_Q8_LANES
                    /* lane j is in channel ch, or ch + 1 once pos + j reaches h*w */
                    const uint32_t ch2 = ch + 1 == c ? 0 : ch + 1;
                    const int32_t a0 = scale[ch], a1 = scale[ch2];
                    const wide_t b0 = fp ? shift[ch] : 0, b1 = fp ? shift[ch2] : 0;
                    wide_t pre[AGU_Q8_LANES], sto[AGU_Q8_LANES];
                    bool cl[AGU_Q8_LANES];
                    /* one register per lane */
#pragma HLS ARRAY_PARTITION variable=pre type=complete
#pragma HLS ARRAY_PARTITION variable=sto type=complete
#pragma HLS ARRAY_PARTITION variable=cl type=complete
                    const uint32_t rest = len - w * AGU_Q8_LANES;
                bn_lane:
                    for (int j = 0; j < AGU_Q8_LANES; j++) {
#pragma HLS UNROLL
                        const uint32_t i = w * AGU_Q8_LANES + j;
                        const bool next = pos + j >= hw;
                        /* |x*A| < 2^38: two DSP slices (every board has them to spare) */
                        const wide_t prod = (wide_t)in[h][i] * (next ? a1 : a0);
                        wide_t acc = prod + (next ? b1 : b0);
                        if (relu && acc < 0) acc = 0;
                        if (mask && gate[h][i] <= 0) acc = 0;
                        bool clamped;
                        const q8_t o = sat8(rshift_round(acc, sh_out), clamped);
                        out[h][i] = o;
                        pre[j] = acc;
                        sto[j] = o;
                        cl[j] = clamped;
                    }
                    q_stats_add_lanes<AGU_Q8_LANES>(st, pre, sto, cl,
                                                    rest < AGU_Q8_LANES ? rest : AGU_Q8_LANES);
                    pos += AGU_Q8_LANES;
                    if (pos >= hw) {
                        pos -= hw;
                        ch = ch2;
                    }
                }
            } else {
                CTRAIN_LOOP(ew, 1, len);
            bn:
                for (uint32_t i = 0; i < len; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_CHUNK
                    wide_t acc = (wide_t)in[h][i] * scale[ch];   /* |x*A| < 2^38 */
                    if (fp)
                        acc += shift[ch];
                    if (relu && acc < 0) acc = 0;
                    if (mask && gate[h][i] <= 0) acc = 0;
                    bool clamped;
                    const q8_t o = sat8(rshift_round(acc, sh_out), clamped);
                    q_stats_add(st, acc, o, clamped);
                    out[h][i] = o;
                    if (++pos == hw) {
                        pos = 0;
                        ch = ch + 1 == c ? 0 : ch + 1;
                    }
                }
            }
            CTRAIN_STAGE(2);
        }
        if (k >= 1) {           /* stage 2: chunk k - 1 out */
            const uint32_t s0 = (uint32_t)(k - 1) * CTRAIN_CHUNK;
            const uint32_t sl = CHUNK_LEN(total, s0);
            agu_wr_q8w<CTRAIN_CHUNK>(ddr, f.dst + s0, out[(k - 1) & 1], sl);
        }
        if (region)
            CTRAIN_REGION_END();
    }
}
