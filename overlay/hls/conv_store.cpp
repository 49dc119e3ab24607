/*
 * Convolution epilogues: accumulators -> quantization unit -> DDR.  Each is a
 * pipelined loop over one row (FP/EB) or one kernel (WG) followed by a burst.
 */
#include "conv.h"
#include "agu.h"

void conv_store_row(ddr_t *ddr, const pe_rowacc_t acc, int r, wide_t bias, const conv_row_q &q,
                    uint32_t mask_at, uint32_t dst_at, int ow, q_stats &st) {
    q8_t mrow[CTRAIN_MAX_DIM];   /* EB: the activations of the ReLU mask */
    q8_t orow[CTRAIN_MAX_DIM];
    if (q.mask)
        agu_rd_q8<CTRAIN_MAX_DIM>(ddr, mask_at, mrow, ow);
    CTRAIN_LOOP(ew, 1, ow);
quantize_row:
    for (int x = 0; x < ow; x++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM
        wide_t v = acc[r][x].to_int64() + bias;   /* |acc| < 2^47, |bias| <= 2^62 */
        if (q.relu && v < 0) v = 0;
        if (q.mask && mrow[x] <= 0) v = 0;
        bool clamped;
        q8_t o = sat8(rshift_round(v, q.sh_out), clamped);
        q_stats_add(st, v, o, clamped);
        orow[x] = o;
    }
    agu_wr_q8<CTRAIN_MAX_DIM>(ddr, dst_at, orow, ow);
}

void conv_store_kernels(ddr_t *ddr, const pe_tapacc_t acc, int vr, int vc, int r0, int c0,
                        const ctrain_insn_t &f, int sh_w, q_stats &st) {
    const uint32_t kk = f.k_h * f.k_w;
    int32_t obuf[MAX_KK];
store_r:
    for (int r = 0; r < vr; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
    store_c:
        for (int c = 0; c < vc; c++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_COLS
            CTRAIN_LOOP(ew, 1, kk);
        quantize_taps:
            for (uint32_t t = 0; t < kk; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=MAX_KK
                wide_t v = rshift_round(acc[r][c][t].to_int64(), sh_w);
                bool clamped;
                int32_t o = sat32(v, clamped);
                q_stats_add(st, v, o, clamped);
                obuf[t] = o;
            }
            uint32_t at = ((uint32_t)(r0 + r) * f.c_in + c0 + c) * kk;
            agu_wr_i32<MAX_KK>(ddr, f.dst + 4 * at, obuf, kk);
        }
    }
}

void conv_store_bias(ddr_t *ddr, const wide_t gb[PE_ROWS], int vr, int r0, uint32_t dst2,
                     int sh_b, q_stats &st) {
    int32_t bbuf[PE_ROWS];
    CTRAIN_LOOP(ew, 1, vr);
quantize_bias:
    for (int r = 0; r < vr; r++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
        wide_t v = rshift_round(gb[r], sh_b);
        bool clamped;
        int32_t o = sat32(v, clamped);
        q_stats_add(st, v, o, clamped);
        bbuf[r] = o;
    }
    agu_wr_i32<PE_ROWS>(ddr, dst2 + 4 * r0, bbuf, vr);
}
