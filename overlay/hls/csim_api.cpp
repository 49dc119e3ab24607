/* C-sim wrapper (never synthesised): the extern "C" face of ctrain_top that
 * the cffi engine and the testbench call.  The trace hook lives with the
 * counters in ctrain_top.cpp. */
#include "csim_api.h"
#include "ctrain_top.h"

extern "C" void ctrain_csim_run(uint8_t *ddr, uint32_t prog, uint32_t n_insn, uint32_t table,
                                uint32_t table_len, uint32_t ddr_size, uint32_t result[3]) {
    ctrain_top(ddr, prog, n_insn, table, table_len, ddr_size, &result[0], &result[1], &result[2]);
}

extern "C" void ctrain_csim_config(uint32_t cfg[3]) {
    cfg[0] = PE_ROWS;
    cfg[1] = PE_COLS;
    cfg[2] = CTRAIN_CHUNK;
}
