/* Quantization unit: the statistics record store (see quant.h). */
#include "quant.h"
#include "agu.h"

static void put32(uint8_t *rec, int at, uint32_t v) {
#pragma HLS INLINE
    for (int b = 0; b < 4; b++) {
#pragma HLS UNROLL
        rec[at + b] = (uint8_t)(v >> (8 * b));
    }
}

void q_stats_store(ddr_t *ddr, uint32_t addr, const q_stats &st, int32_t exp) {
    uint8_t rec[CTRAIN_STATS_BYTES];
#pragma HLS ARRAY_PARTITION variable=rec type=complete
    uint64_t m = (uint64_t)st.max_abs;
    put32(rec, 0, (uint32_t)m);
    put32(rec, 4, (uint32_t)(m >> 32));
    put32(rec, 8, (uint32_t)exp);
    put32(rec, 12, st.sat);
    put32(rec, 16, st.nnz);
    put32(rec, 20, st.count);
    put32(rec, 24, 0);   /* reserved[2] */
    put32(rec, 28, 0);
    agu_wr_bytes(ddr, addr, rec, CTRAIN_STATS_BYTES);
}
