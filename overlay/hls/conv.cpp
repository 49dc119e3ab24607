/*
 * Convolution unit: tiling and burst buffers around the PE array (see conv.h).
 *
 * PE rows are the channels an op produces per step (FP, WG: c_out; EB: c_in),
 * PE columns the channels it reduces or pairs (FP, WG: c_in; EB: c_out).  The
 * column operand streams through line buffers one tensor row at a time:
 * activations for FP and WG, output errors for EB.  Output (or error) row y
 * meets column row
 *   FP, WG: iy = y*s + ky - p                   (gather)
 *   EB:     oy = (y + p - ky) / s when exact    (scatter: oy*s + ky - p == y)
 * for each kernel row ky; a pair outside the plane (padding) is skipped.
 *
 * Loop orders (one call site of the PE array, so HLS builds one):
 *   FP, EB: row tile > batch > output row > column tile > ky > (kx, x)
 *   WG:     row tile > column tile > batch > error row > ky > (kx, x)
 */
#include "conv.h"
#include "agu.h"

/* Column-operand row paired with sweep row y by kernel row ky, or -1. */
static int paired_row(bool scatter, int y, int ky, int s, int p, int rows) {
#pragma HLS INLINE
    if (!scatter) {
        int iy = y * s + ky - p;
        return (iy >= 0 && iy < rows) ? iy : -1;
    }
    int t = y + p - ky;
    if (t < 0 || t % s != 0 || t / s >= rows)
        return -1;
    return t / s;
}

void conv_unit(ddr_t *ddr, const ctrain_insn_t &f, const insn_exps &e, q_stats &st) {
    const bool wg = f.op == OP_CONV_WG, eb = f.op == OP_CONV_EB;
    const int n = f.n, s = f.stride, p = f.pad, k_h = f.k_h;
    const int c_in = f.c_in, c_out = f.c_out;
    const int rows = eb ? c_in : c_out, cols = eb ? c_out : c_in;
    /* Rows swept: FP output rows, EB input-error rows, WG output-error rows. */
    const int sweep = eb ? f.h_in : f.h_out;
    /* Column operand: FP act (src), EB err (src), WG act (src2). */
    const uint32_t col_base = wg ? f.src2 : f.src;
    const int col_h = eb ? f.h_out : f.h_in, col_w = eb ? f.w_out : f.w_in;
    const int ow = eb ? f.w_in : f.w_out;   /* FP/EB output row width */
    const uint32_t kk = f.k_h * f.k_w;
    const int col_tiles = (cols + PE_COLS - 1) / PE_COLS;
    const int outer_tiles = wg ? col_tiles : 1, inner_tiles = wg ? 1 : col_tiles;

    const wide_t e_acc = (wide_t)e.src + e.src2;
    conv_row_q q;
    q.bias = f.op == OP_CONV_FP && (f.flags & FLAG_BIAS);
    q.relu = f.op == OP_CONV_FP && (f.flags & FLAG_RELU);
    q.mask = eb && (f.flags & FLAG_RELU_MASK);
    q.sh_out = q_shift((wide_t)e.dst - e_acc);
    const int sh_bias = q_shift(e_acc - e.src3);
    const int sh_w = q_shift((wide_t)e.dst - e_acc);
    const int sh_b = q_shift((wide_t)e.dst - e.src);
    const bool wg_bias = wg && (f.flags & FLAG_BIAS);

    pe_cols_t line;
#pragma HLS ARRAY_PARTITION variable=line type=complete dim=1
    pe_rows_t errl;
#pragma HLS ARRAY_PARTITION variable=errl type=complete dim=1
    pe_weights_t wbuf;
#pragma HLS ARRAY_PARTITION variable=wbuf type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=wbuf type=complete dim=2
    pe_rowacc_t racc;
#pragma HLS ARRAY_PARTITION variable=racc type=complete dim=1
    pe_tapacc_t tacc;
#pragma HLS ARRAY_PARTITION variable=tacc type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=tacc type=complete dim=2
    /* Each bank is MAX_KK (121) x 48 bit and sees one access per cycle at
     * most (a read-modify-write per kx pass, the clear, the store): a RAMB18
     * pair per bank would hold 2% of its bits; single-port distributed RAM
     * (RAM64X1S / RAM128X1S) is the fitting memory. */
#pragma HLS BIND_STORAGE variable=tacc type=ram_1p impl=lutram
    int32_t braw[PE_ROWS];
    wide_t rbias[PE_ROWS];   /* FP: bias per row, shifted to e_acc; WG: bias gradient */
#pragma HLS ARRAY_PARTITION variable=rbias type=complete

tile_rows:
    for (int r0 = 0; r0 < rows; r0 += PE_ROWS) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=256
        const int vr = rows - r0 < PE_ROWS ? rows - r0 : PE_ROWS;
        if (q.bias) {
            agu_rd_i32<PE_ROWS>(ddr, f.src3 + 4 * r0, braw, vr);
            for (int r = 0; r < vr; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
                rbias[r] = rshift_round(braw[r], sh_bias);
            }
        }
    tile_outer:
        for (int to = 0; to < outer_tiles; to++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=256
            if (wg) {
                CTRAIN_LOOP(ew, 1, kk);
            clear_taps:
                for (uint32_t t = 0; t < kk; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=MAX_KK
                    for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                        for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                            tacc[r][c][t] = 0;
                        }
                    }
                }
                for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                    rbias[r] = 0;
                }
            }
        batch:
            for (int b = 0; b < n; b++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=64
            sweep_row:
                for (int y = 0; y < sweep; y++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
                    if (wg) {
                        /* The PE rows' error rows; the bias gradient sums them on
                         * the way in, during the first column tile only. */
                    load_err:
                        for (int r = 0; r < vr; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
                            uint32_t at = ((uint32_t)(b * c_out + r0 + r) * f.h_out + y) * f.w_out;
                            wide_t sum = agu_rd_q8_sum<CTRAIN_MAX_DIM>(ddr, f.src + at, errl[r],
                                                                       f.w_out);
                            if (wg_bias && to == 0)
                                rbias[r] += sum;
                        }
                    } else {
                        CTRAIN_LOOP(ew, 1, ow);
                    clear_row:
                        for (int x = 0; x < ow; x++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
                            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                                racc[r][x] = 0;
                            }
                        }
                    }
                tile_inner:
                    for (int ti = 0; ti < inner_tiles; ti++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=256
                        const int c0 = (to + ti) * PE_COLS;
                        const int vc = cols - c0 < PE_COLS ? cols - c0 : PE_COLS;
                        if (!wg) {
                            /* One k_h*k_w burst per PE: w[co][ci] with (co, ci) =
                             * FP (row, column), EB (column, row). */
                        load_w:
                            for (int r = 0; r < vr; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
                                for (int c = 0; c < vc; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_COLS
                                    uint32_t co = eb ? c0 + c : r0 + r, ci = eb ? r0 + r : c0 + c;
                                    agu_rd_q8<MAX_KK>(ddr, f.src2 + (co * c_in + ci) * kk,
                                                      wbuf[r][c], kk);
                                }
                            }
                        }
                    tap:
                        for (int ky = 0; ky < k_h; ky++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_KERNEL
                            const int crow = paired_row(eb, y, ky, s, p, col_h);
                            if (crow < 0)
                                continue;
                        load_line:
                            for (int c = 0; c < vc; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_COLS
                                uint32_t at = ((uint32_t)(b * cols + c0 + c) * col_h + crow) * col_w;
                                agu_rd_q8<CTRAIN_MAX_DIM>(ddr, col_base + at, line[c], col_w);
                            }
                            pe_pass g;
                            g.mode = wg ? PE_OUTER : (eb ? PE_SCATTER : PE_GATHER);
                            g.ky = ky;
                            g.k_w = f.k_w;
                            g.steps = f.w_out;
                            g.lim = f.w_in;
                            g.stride = s;
                            g.pad = p;
                            g.cols = vc;
                            pe_array(line, errl, wbuf, g, racc, tacc);
                        }
                    }
                    if (!wg) {
                    store_rows:
                        for (int r = 0; r < vr; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
                            uint32_t at = ((uint32_t)(b * rows + r0 + r) * sweep + y) * ow;
                            conv_store_row(ddr, racc, r, q.bias ? rbias[r] : 0, q, f.aux + at,
                                           f.dst + at, ow, st);
                        }
                    }
                }
            }
            if (wg) {
                const int c0 = to * PE_COLS;
                conv_store_kernels(ddr, tacc, vr, cols - c0 < PE_COLS ? cols - c0 : PE_COLS, r0,
                                   c0, f, sh_w, st);
                if (wg_bias && to == 0)
                    conv_store_bias(ddr, rbias, vr, r0, f.dst2, sh_b, st);
            }
        }
    }
}
