/*
 * CONV_FP and CONV_EB on the PE array's row dataflow (see conv.h).
 *
 * In the op's own terms: `rows` are the channels it produces (FP: c_out,
 * EB: c_in), `red` the channels it reduces (FP: c_in, EB: c_out); the output
 * plane is oh x ow (FP: h_out x w_out, EB: h_in x w_in) and the reduced
 * operand's plane ih x iw.  Kernel row ky pairs output row y with reduced row
 *   FP: iy = y*s + ky - p            (gather)
 *   EB: oy = (y + p - ky) / s when exact  (scatter: oy*s + ky - p == y)
 * and a pair outside the reduced plane (padding) is skipped entirely.
 */
#include "conv.h"
#include "agu.h"
#include "pe_array.h"

/* Reduced row paired with output row y by kernel row ky, or -1. */
static int paired_row(bool eb, int y, int ky, int s, int p, int ih) {
#pragma HLS INLINE
    if (!eb) {
        int iy = y * s + ky - p;
        return (iy >= 0 && iy < ih) ? iy : -1;
    }
    int t = y + p - ky;
    if (t < 0 || t % s != 0 || t / s >= ih)
        return -1;
    return t / s;
}

void conv_rows(uint8_t *ddr, const ctrain_insn_t &f, const insn_exps &e, q_stats &st) {
    const bool eb = f.op == OP_CONV_EB;
    const bool bias = !eb && (f.flags & FLAG_BIAS);
    const bool relu = !eb && (f.flags & FLAG_RELU);
    const bool mask = eb && (f.flags & FLAG_RELU_MASK);
    const int n = f.n, s = f.stride, p = f.pad, k_h = f.k_h, k_w = f.k_w;
    const int rows = eb ? f.c_in : f.c_out, red = eb ? f.c_out : f.c_in;
    const int oh = eb ? f.h_in : f.h_out, ow = eb ? f.w_in : f.w_out;
    const int ih = eb ? f.h_out : f.h_in, iw = eb ? f.w_out : f.w_in;
    const uint32_t kk = k_h * k_w;
    const wide_t e_acc = (wide_t)e.src + e.src2;
    const int sh_out = q_shift((wide_t)e.dst - e_acc);
    const int sh_bias = q_shift(e_acc - e.src3);

    pe_line_t line;
#pragma HLS ARRAY_PARTITION variable=line type=complete dim=1
    pe_weights_t wbuf;
#pragma HLS ARRAY_PARTITION variable=wbuf type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=wbuf type=complete dim=2
    pe_rowacc_t acc;
#pragma HLS ARRAY_PARTITION variable=acc type=complete dim=1
    int32_t braw[PE_ROWS];
    wide_t bshift[PE_ROWS];
#pragma HLS ARRAY_PARTITION variable=bshift type=complete
    q8_t orow[CTRAIN_MAX_DIM];   /* output row on its way to DDR */
    q8_t mrow[CTRAIN_MAX_DIM];   /* EB: activation row of the ReLU mask */

tile_rows:
    for (int r0 = 0; r0 < rows; r0 += PE_ROWS) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=256
        const int vr = rows - r0 < PE_ROWS ? rows - r0 : PE_ROWS;
        if (bias) {
            agu_rd_i32<PE_ROWS>(ddr, f.src3 + 4 * r0, braw, vr);
            for (int r = 0; r < vr; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
                bshift[r] = rshift_round(braw[r], sh_bias);
            }
        }
    batch:
        for (int b = 0; b < n; b++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=64
        out_row:
            for (int y = 0; y < oh; y++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
                CTRAIN_COUNT(ew, ow);
            clear:
                for (int x = 0; x < ow; x++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
                    for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                        acc[r][x] = 0;
                    }
                }
            tile_red:
                for (int c0 = 0; c0 < red; c0 += PE_COLS) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=256
                    const int vc = red - c0 < PE_COLS ? red - c0 : PE_COLS;
                    /* Weights of this tile: one k_h*k_w burst per (row, column);
                     * w[co][ci] with (co, ci) = FP (r, c), EB (c, r). */
                load_w:
                    for (int r = 0; r < vr; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
                        for (int c = 0; c < vc; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_COLS
                            uint32_t co = eb ? c0 + c : r0 + r, ci = eb ? r0 + r : c0 + c;
                            agu_rd_q8<MAX_KK>(ddr, f.src2 + (co * f.c_in + ci) * kk,
                                              wbuf[r][c], kk);
                        }
                    }
                tap:
                    for (int ky = 0; ky < k_h; ky++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_KERNEL
                        int row = paired_row(eb, y, ky, s, p, ih);
                        if (row < 0)
                            continue;
                    load_line:
                        for (int c = 0; c < vc; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_COLS
                            uint32_t at = ((uint32_t)(b * red + c0 + c) * ih + row) * iw;
                            agu_rd_q8<CTRAIN_MAX_DIM>(ddr, f.src + at, line[c], iw);
                        }
                        pe_pass g;
                        g.ky = ky;
                        g.k_w = k_w;
                        g.steps = f.w_out;
                        g.lim = f.w_in;
                        g.stride = s;
                        g.pad = p;
                        g.cols = vc;
                        pe_row_pass(line, wbuf, g, eb, acc);
                    }
                }
            epilogue:
                for (int r = 0; r < vr; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
                    uint32_t at = ((uint32_t)(b * rows + r0 + r) * oh + y) * ow;
                    if (mask)
                        agu_rd_q8<CTRAIN_MAX_DIM>(ddr, f.aux + at, mrow, ow);
                    CTRAIN_COUNT(ew, ow);
                quantize:
                    for (int x = 0; x < ow; x++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
                        wide_t v = acc[r][x].to_int64();
                        if (bias) v += bshift[r];
                        if (relu && v < 0) v = 0;
                        if (mask && mrow[x] <= 0) v = 0;
                        bool clamped;
                        q8_t q = sat8(rshift_round(v, sh_out), clamped);
                        q_stats_add(st, v, q, clamped);
                        orow[x] = q;
                    }
                    agu_wr_q8<CTRAIN_MAX_DIM>(ddr, f.dst + at, orow, ow);
                }
            }
        }
    }
}
