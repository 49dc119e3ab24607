/*
 * Convolution epilogue of the WG bias gradients (the outputs of FP/EB are
 * quantized in the PE array's pass, WG's kernels in their store burst).
 */
#include "conv.h"
#include "agu.h"

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
