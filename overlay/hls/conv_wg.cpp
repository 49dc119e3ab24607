/*
 * CONV_WG on the PE array's outer-product dataflow (see conv.h): for each
 * block of PE_ROWS output channels x PE_COLS input channels, every PE keeps
 * k_h*k_w tap accumulators while the whole batch streams past; error row oy
 * meets activation row iy = oy*s + ky - p for every kernel row ky inside the
 * input.  The bias gradient sums the error rows as they are loaded, in the
 * first column tile only.
 */
#include "conv.h"
#include "agu.h"
#include "pe_array.h"

void conv_wg(uint8_t *ddr, const ctrain_insn_t &f, const insn_exps &e, q_stats &st) {
    const bool bias = (f.flags & FLAG_BIAS) != 0;
    const int n = f.n, s = f.stride, p = f.pad, k_h = f.k_h, k_w = f.k_w;
    const int c_out = f.c_out, c_in = f.c_in;
    const uint32_t kk = k_h * k_w;
    const int sh_w = q_shift((wide_t)e.dst - ((wide_t)e.src + e.src2));
    const int sh_b = q_shift((wide_t)e.dst - e.src);

    q8_t errl[PE_ROWS][CTRAIN_MAX_DIM];
#pragma HLS ARRAY_PARTITION variable=errl type=complete dim=1
    pe_line_t actl;
#pragma HLS ARRAY_PARTITION variable=actl type=complete dim=1
    pe_tapacc_t acc;
#pragma HLS ARRAY_PARTITION variable=acc type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=acc type=complete dim=2
    wide_t gb[PE_ROWS];
#pragma HLS ARRAY_PARTITION variable=gb type=complete
    int32_t obuf[MAX_KK];        /* one kernel's int32 gradients on their way out */
    int32_t bbuf[PE_ROWS];

tile_co:
    for (int r0 = 0; r0 < c_out; r0 += PE_ROWS) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=256
        const int vr = c_out - r0 < PE_ROWS ? c_out - r0 : PE_ROWS;
    tile_ci:
        for (int c0 = 0; c0 < c_in; c0 += PE_COLS) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=256
            const int vc = c_in - c0 < PE_COLS ? c_in - c0 : PE_COLS;
            const bool with_bias = bias && c0 == 0;
            CTRAIN_COUNT(ew, kk);
        clear:
            for (uint32_t t = 0; t < kk; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=MAX_KK
                for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                    for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                        acc[r][c][t] = 0;
                    }
                }
            }
            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                gb[r] = 0;
            }
        batch:
            for (int b = 0; b < n; b++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=64
            err_row:
                for (int oy = 0; oy < (int)f.h_out; oy++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
                load_err:
                    for (int r = 0; r < vr; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
                        uint32_t at = ((uint32_t)(b * c_out + r0 + r) * f.h_out + oy) * f.w_out;
                        wide_t sum = agu_rd_q8_sum<CTRAIN_MAX_DIM>(ddr, f.src + at, errl[r], f.w_out);
                        if (with_bias)
                            gb[r] += sum;
                    }
                tap:
                    for (int ky = 0; ky < k_h; ky++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_KERNEL
                        int iy = oy * s + ky - p;
                        if (iy < 0 || iy >= (int)f.h_in)
                            continue;
                    load_act:
                        for (int c = 0; c < vc; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_COLS
                            uint32_t at = ((uint32_t)(b * c_in + c0 + c) * f.h_in + iy) * f.w_in;
                            agu_rd_q8<CTRAIN_MAX_DIM>(ddr, f.src2 + at, actl[c], f.w_in);
                        }
                        pe_pass g;
                        g.ky = ky;
                        g.k_w = k_w;
                        g.steps = f.w_out;
                        g.lim = f.w_in;
                        g.stride = s;
                        g.pad = p;
                        g.cols = vc;
                        pe_outer_pass(errl, actl, g, acc);
                    }
                }
            }
        store_w:
            for (int r = 0; r < vr; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
                for (int c = 0; c < vc; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_COLS
                    CTRAIN_COUNT(ew, kk);
                quantize:
                    for (uint32_t t = 0; t < kk; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=MAX_KK
                        wide_t v = rshift_round(acc[r][c][t].to_int64(), sh_w);
                        bool clamped;
                        int32_t o = sat32(v, clamped);
                        q_stats_add(st, v, o, clamped);
                        obuf[t] = o;
                    }
                    uint32_t at = ((uint32_t)(r0 + r) * c_in + c0 + c) * kk;
                    agu_wr_i32<MAX_KK>(ddr, f.dst + 4 * at, obuf, kk);
                }
            }
            if (with_bias) {
                CTRAIN_COUNT(ew, vr);
            store_b:
                for (int r = 0; r < vr; r++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
                    wide_t v = rshift_round(gb[r], sh_b);
                    bool clamped;
                    int32_t o = sat32(v, clamped);
                    q_stats_add(st, v, o, clamped);
                    bbuf[r] = o;
                }
                agu_wr_i32<PE_ROWS>(ddr, f.dst2 + 4 * r0, bbuf, vr);
            }
        }
    }
}
