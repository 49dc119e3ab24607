/* Address generation unit: the scalar and raw-byte bursts (see agu.h). */
#include "agu.h"

int32_t agu_rd_word(const uint8_t *ddr, uint32_t addr) {
#pragma HLS INLINE
    int32_t w[1] = {0};
    agu_rd_i32<1>(ddr, addr, w, 1);
    return w[0];
}

void agu_rd_bytes(const uint8_t *ddr, uint32_t addr, uint8_t *buf, uint32_t len) {
#pragma HLS INLINE
    CTRAIN_COUNT(rd, len);
    CTRAIN_COUNT(bursts, 1);
rd_bytes:
    for (uint32_t i = 0; i < len; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=32 max=128
        buf[i] = ddr[addr + i];
    }
}

void agu_wr_bytes(uint8_t *ddr, uint32_t addr, const uint8_t *buf, uint32_t len) {
#pragma HLS INLINE
    CTRAIN_COUNT(wr, len);
    CTRAIN_COUNT(bursts, 1);
wr_bytes:
    for (uint32_t i = 0; i < len; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=32 max=32
        ddr[addr + i] = buf[i];
    }
}
