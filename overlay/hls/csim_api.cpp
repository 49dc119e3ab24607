/* C-sim wrapper (never synthesised): the extern "C" face of ctrain_top that
 * the cffi engine and the testbench call.  The trace hook lives with the
 * counters in ctrain_top.cpp.
 *
 * The default build hands the caller's byte buffer to the top as is.  The
 * CTRAIN_WORD_PORT build runs the top on an array of CTRAIN_DDR_BEAT-byte
 * beats, exactly as synthesis sees the m_axi port (partial beats read and
 * merged, docs/overlay.md): the window is copied into beats and back. */
#include "csim_api.h"
#include "agu.h"
#include "ctrain_top.h"

#ifdef CTRAIN_WORD_PORT
#include <vector>
#endif

extern "C" void ctrain_csim_run(uint8_t *ddr, uint32_t prog, uint32_t n_insn, uint32_t table,
                                uint32_t table_len, uint32_t ddr_size, uint32_t result[3]) {
#ifdef CTRAIN_WORD_PORT
    /* One spare beat: a burst's last beat may reach past the window's end. */
    std::vector<beat_t> port((size_t)ddr_size / DDR_BEAT + 2, beat_zero());
    for (uint64_t i = 0; i < ddr_size; i++)
        set_lane(port[i / DDR_BEAT], (int)(i % DDR_BEAT), ddr[i]);
    ctrain_top(port.data(), prog, n_insn, table, table_len, ddr_size, &result[0], &result[1],
               &result[2]);
    for (uint64_t i = 0; i < ddr_size; i++)
        ddr[i] = beat_lane(port[i / DDR_BEAT], (int)(i % DDR_BEAT));
#else
    ctrain_top(ddr, prog, n_insn, table, table_len, ddr_size, &result[0], &result[1], &result[2]);
#endif
}

extern "C" void ctrain_csim_config(uint32_t cfg[3]) {
    cfg[0] = PE_ROWS;
    cfg[1] = PE_COLS;
    cfg[2] = CTRAIN_CHUNK;
}
