/* Stream processor: ReLU, max pooling and frozen batch norm, forward and
 * backward (see stream.h). */
#include "stream.h"
#include "agu.h"

/* POOL_BP keeps the window selections of the last output rows in a ring: an
 * input row is covered by at most ceil(k_h / stride) <= CTRAIN_MAX_KERNEL of
 * them, so 16 rows (a power of two) always hold every live one. */
#define POOL_RING 16

/* W elements per cycle: a beat in, through the ReLU and out. */
void stream_relu(ddr_t *ddr, const ctrain_insn_t &f, q_stats &st) {
    const bool bp = f.op == OP_RELU_BP;
    q8_t in[CTRAIN_CHUNK], gate[CTRAIN_CHUNK], out[CTRAIN_CHUNK];
    /* a beat per cycle in and out, a word of W lanes per cycle through */
#pragma HLS ARRAY_PARTITION variable=in type=cyclic factor=AGU_Q8_LANES
#pragma HLS ARRAY_PARTITION variable=gate type=cyclic factor=AGU_Q8_LANES
#pragma HLS ARRAY_PARTITION variable=out type=cyclic factor=AGU_Q8_LANES
chunk:
    for (uint32_t i0 = 0; i0 < f.count; i0 += CTRAIN_CHUNK) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=65536
        uint32_t len = f.count - i0 < CTRAIN_CHUNK ? f.count - i0 : CTRAIN_CHUNK;
        /* Whole chunk in before any of it goes out: dst == src is allowed. */
        agu_rd_q8w<CTRAIN_CHUNK>(ddr, f.src + i0, in, len);
        if (bp)
            agu_rd_q8w<CTRAIN_CHUNK>(ddr, f.aux + i0, gate, len);
        const uint32_t words = (len + AGU_Q8_LANES - 1) / AGU_Q8_LANES;
        CTRAIN_LOOP(ew, 1, words);
    relu:
        for (uint32_t k = 0; k < words; k++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_CHUNK/AGU_Q8_LANES
            wide_t o[AGU_Q8_LANES];
            bool none[AGU_Q8_LANES];
            /* one register per lane */
#pragma HLS ARRAY_PARTITION variable=o type=complete
#pragma HLS ARRAY_PARTITION variable=none type=complete
            const uint32_t rest = len - k * AGU_Q8_LANES;
        lanes:
            for (int j = 0; j < AGU_Q8_LANES; j++) {
#pragma HLS UNROLL
                const uint32_t i = k * AGU_Q8_LANES + j;
                const q8_t v = in[i];
                const q8_t q = bp ? (gate[i] > 0 ? v : (q8_t)0) : (v > 0 ? v : (q8_t)0);
                out[i] = q;
                o[j] = q;
                none[j] = false;
            }
            q_stats_add_lanes<AGU_Q8_LANES>(st, o, o, none,
                                            rest < AGU_Q8_LANES ? rest : AGU_Q8_LANES);
        }
        agu_wr_q8w<CTRAIN_CHUNK>(ddr, f.dst + i0, out, len);
    }
}

void stream_pool_fp(ddr_t *ddr, const ctrain_insn_t &f, q_stats &st) {
    const int s = f.stride, k_h = f.k_h, k_w = f.k_w, w_out = f.w_out;
    q8_t line[CTRAIN_MAX_DIM];
    q8_t best[CTRAIN_MAX_DIM];
plane:
    for (uint32_t nc = 0; nc < f.n * f.c_in; nc++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=4096
    out_row:
        for (uint32_t y = 0; y < f.h_out; y++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
        tap_y:
            for (int ky = 0; ky < k_h; ky++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_KERNEL
                uint32_t iy = y * s + ky;
                agu_rd_q8<CTRAIN_MAX_DIM>(ddr, f.src + (nc * f.h_in + iy) * f.w_in, line, f.w_in);
            tap_x:
                for (int kx = 0; kx < k_w; kx++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_KERNEL
#pragma HLS LOOP_FLATTEN off
                    const bool first = ky == 0 && kx == 0;
                    const bool last = ky == k_h - 1 && kx == k_w - 1;
                    CTRAIN_LOOP(ew, 1, w_out);
                    int xs = kx;   /* x * s + kx, counted up by s */
                window:
                    for (int x = 0; x < w_out; x++, xs += s) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
#pragma HLS DEPENDENCE variable=best type=inter false
                        q8_t v = line[xs];
                        q8_t m = (first || v > best[x]) ? v : best[x];
                        best[x] = m;
                        if (last)   /* the final tap also stores the row */
                            q_stats_add(st, m, m, false);
                    }
                }
            }
            agu_wr_q8<CTRAIN_MAX_DIM>(ddr, f.dst + (nc * f.h_out + y) * w_out, best, w_out);
        }
    }
}

/* One window's first maximum: kernel position and the error it routes. */
struct pool_sel {
    ap_uint<4> ky;
    ap_uint<4> kx;
    q8_t g;   /* err, or 0 when RELU_MASK drops the window */
};

void stream_pool_bp(ddr_t *ddr, const ctrain_insn_t &f, q_stats &st) {
    const bool mask = (f.flags & FLAG_RELU_MASK) != 0;
    const int s = f.stride, k_h = f.k_h, k_w = f.k_w;
    const int h_in = f.h_in, w_in = f.w_in, h_out = f.h_out, w_out = f.w_out;
    q8_t line[CTRAIN_MAX_DIM];           /* aux (the pool's input) row */
    q8_t err[CTRAIN_MAX_DIM];
    q8_t best[CTRAIN_MAX_DIM];
    pool_sel sel[POOL_RING][CTRAIN_MAX_DIM];
    ap_int<16> racc[CTRAIN_MAX_DIM];     /* <= 121 contributions of |err| <= 128 */
    q8_t orow[CTRAIN_MAX_DIM];

    /* racc is cleared once here, then by every row's store as it reads it. */
    CTRAIN_LOOP(ew, 1, w_in);
clear:
    for (int x = 0; x < w_in; x++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
        racc[x] = 0;
    }
plane:
    for (uint32_t nc = 0; nc < f.n * f.c_in; nc++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=4096
    in_row:
        for (int iy = 0; iy < h_in; iy++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
            /* Output row oy's windows start at input row oy*s: select their
             * first maxima once, when the sweep reaches that row. */
            if (iy % s == 0 && iy / s < h_out) {
                const int oy = iy / s;
                const int slot = oy % POOL_RING;
            select_ky:
                for (int ky = 0; ky < k_h; ky++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_KERNEL
                    agu_rd_q8<CTRAIN_MAX_DIM>(ddr, f.aux + (nc * h_in + iy + ky) * w_in, line, w_in);
                select_kx:
                    for (int kx = 0; kx < k_w; kx++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_KERNEL
#pragma HLS LOOP_FLATTEN off
                        const bool first = ky == 0 && kx == 0;
                        CTRAIN_LOOP(ew, 1, w_out);
                        int xs = kx;   /* x * s + kx, counted up by s */
                    select:
                        for (int x = 0; x < w_out; x++, xs += s) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
#pragma HLS DEPENDENCE variable=best type=inter false
#pragma HLS DEPENDENCE variable=sel type=inter false
                            q8_t v = line[xs];
                            if (first || v > best[x]) {   /* strict: the first maximum wins */
                                best[x] = v;
                                sel[slot][x].ky = ky;
                                sel[slot][x].kx = kx;
                            }
                        }
                    }
                }
                agu_rd_q8<CTRAIN_MAX_DIM>(ddr, f.src + (nc * h_out + oy) * w_out, err, w_out);
                CTRAIN_LOOP(ew, 1, w_out);
            route:
                for (int x = 0; x < w_out; x++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
                    sel[slot][x].g = (mask && best[x] <= 0) ? (q8_t)0 : err[x];
                }
            }
            /* Scatter every window covering this row: oy*s <= iy < oy*s + k_h. */
            const int oy_hi = (iy / s < h_out - 1) ? iy / s : h_out - 1;
            const int oy_lo = iy < k_h ? 0 : (iy - k_h + s) / s;
        cover:
            for (int oy = oy_lo; oy <= oy_hi; oy++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_KERNEL
                const int ky = iy - oy * s;
                const int slot = oy % POOL_RING;
            scatter_kx:
                for (int kx = 0; kx < k_w; kx++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_KERNEL
#pragma HLS LOOP_FLATTEN off
                    CTRAIN_LOOP(ew, 1, w_out);
                    int xs = kx;   /* x * s + kx, counted up by s */
                scatter:
                    for (int x = 0; x < w_out; x++, xs += s) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
                        /* Within one kx the targets x*s + kx are distinct. */
#pragma HLS DEPENDENCE variable=racc type=inter false
                        pool_sel e = sel[slot][x];
                        if (e.ky == ky && e.kx == kx)
                            racc[xs] += e.g;
                    }
                }
            }
            CTRAIN_LOOP(ew, 1, w_in);
        store:
            for (int x = 0; x < w_in; x++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
                wide_t v = racc[x].to_int64();
                racc[x] = 0;
                bool clamped;
                q8_t q = sat8(v, clamped);
                q_stats_add(st, q, q, clamped);
                orow[x] = q;
            }
            agu_wr_q8<CTRAIN_MAX_DIM>(ddr, f.dst + (nc * h_in + iy) * w_in, orow, w_in);
        }
    }
}

/* BN_FP: out = sat8(rshift_round(x*A[c] + rshift_round(B[c], e_acc - e_B), e_dst - e_acc)),
 * ReLU before the statistics; BN_BP: err*A[c], zeroed where aux <= 0 with
 * RELU_MASK.  A and B (<= CTRAIN_MAX_CH int32 each) are read once; the tensor
 * streams in CTRAIN_CHUNK bursts while a (channel, position) counter pair
 * tracks which channel each element belongs to. */
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
    agu_rd_i32<CTRAIN_MAX_CH>(ddr, f.src2, scale, c);
    if (fp) {
        agu_rd_i32<CTRAIN_MAX_CH>(ddr, f.src3, braw, c);
        CTRAIN_LOOP(ew, 1, c);
    bn_offset:
        for (uint32_t k = 0; k < c; k++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_CH
            shift[k] = rshift_round(braw[k], sh_b);
        }
    }
    q8_t in[CTRAIN_CHUNK], gate[CTRAIN_CHUNK], out[CTRAIN_CHUNK];
    /* a beat per cycle in and out (the multiply runs one element per cycle) */
#pragma HLS ARRAY_PARTITION variable=in type=cyclic factor=AGU_Q8_LANES
#pragma HLS ARRAY_PARTITION variable=gate type=cyclic factor=AGU_Q8_LANES
#pragma HLS ARRAY_PARTITION variable=out type=cyclic factor=AGU_Q8_LANES
    uint32_t ch = 0, pos = 0;
chunk:
    for (uint32_t i0 = 0; i0 < total; i0 += CTRAIN_CHUNK) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=65536
        const uint32_t len = total - i0 < CTRAIN_CHUNK ? total - i0 : CTRAIN_CHUNK;
        agu_rd_q8w<CTRAIN_CHUNK>(ddr, f.src + i0, in, len);
        if (mask)
            agu_rd_q8w<CTRAIN_CHUNK>(ddr, f.aux + i0, gate, len);
        CTRAIN_LOOP(ew, 1, len);
    bn:
        for (uint32_t i = 0; i < len; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_CHUNK
            wide_t acc = (wide_t)in[i] * scale[ch];   /* |x*A| < 2^38 */
            if (fp)
                acc += shift[ch];
            if (relu && acc < 0) acc = 0;
            if (mask && gate[i] <= 0) acc = 0;
            bool clamped;
            const q8_t o = sat8(rshift_round(acc, sh_out), clamped);
            q_stats_add(st, acc, o, clamped);
            out[i] = o;
            if (++pos == hw) {
                pos = 0;
                ch = ch + 1 == c ? 0 : ch + 1;
            }
        }
        agu_wr_q8w<CTRAIN_CHUNK>(ddr, f.dst + i0, out, len);
    }
}
