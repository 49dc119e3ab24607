/* Address generation unit: the raw-byte bursts (see agu.h). */
#include "agu.h"

static_assert(CTRAIN_INSN_BYTES <= AGU_INDEX_SPAN && CTRAIN_STATS_BYTES <= AGU_INDEX_SPAN,
              "agu_index spans the raw-byte buffers");

void agu_rd_bytes(const ddr_t *ddr, uint32_t addr, uint8_t *buf, uint32_t len) {
#pragma HLS INLINE
    agu_count(false, addr, len, AGU_II_REGS);
    if (len == 0)
        return;
    const agu_burst g = agu_plan(addr, len);
rd_bytes:
    for (uint32_t b = 0; b < g.beats; b++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=BURST_BEATS(CTRAIN_INSN_BYTES)
        const int lo = agu_lo(g, b), hi = agu_hi(g, b);
        const beat_t w = ddr_get(ddr, g.first + b, lo, hi);
        for (int l = 0; l < DDR_BEAT; l++) {
#pragma HLS UNROLL
            if (l >= lo && l < hi)
                buf[agu_index(g, b, l)] = beat_lane(w, l);
        }
    }
}

void agu_wr_bytes(ddr_t *ddr, uint32_t addr, const uint8_t *buf, uint32_t len) {
#pragma HLS INLINE
    agu_count(true, addr, len, AGU_II_REGS);
    if (len == 0)
        return;
    const agu_burst g = agu_plan(addr, len);
wr_bytes:
    for (uint32_t b = 0; b < g.beats; b++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=BURST_BEATS(CTRAIN_STATS_BYTES)
        const int lo = agu_lo(g, b), hi = agu_hi(g, b);
        beat_t w = beat_zero();
        for (int l = 0; l < DDR_BEAT; l++) {
#pragma HLS UNROLL
            if (l >= lo && l < hi)
                set_lane(w, l, buf[agu_index(g, b, l)]);
        }
        ddr_put(ddr, g.first + b, w, lo, hi);
    }
}
