/* C-sim wrapper (never synthesised): the extern "C" face of ctrain_top that
 * the cffi engine calls, and the window <-> port copies the testbench shares
 * (csim_port.h).  The trace hook lives with the counters in ctrain_top.cpp.
 *
 * The top takes the DDR port as an array of beats, exactly as synthesis and
 * co-simulation see it (partial beats read and merged, docs/overlay.md); the
 * caller's window is copied into beats before the run and back after it.
 * Only the window's own bytes are read and written, so nothing outside it is
 * ever touched. */
#include <cstring>
#include <vector>

#include "csim_api.h"
#include "agu.h"
#include "csim_port.h"
#include "ctrain_top.h"

void csim_window_to_port(const uint8_t *win, uint64_t size, ddr_t *port, uint64_t beats) {
    for (uint64_t k = 0; k < beats; k++) {
        const uint64_t at = k * DDR_BEAT;
        beat_t b = beat_zero();
        if (at < size)
            std::memcpy(b.lane, win + at, size - at < DDR_BEAT ? size - at : DDR_BEAT);
        port[k] = port_pack(b);
    }
}

void csim_port_to_window(const ddr_t *port, uint8_t *win, uint64_t size) {
    for (uint64_t at = 0, k = 0; at < size; at += DDR_BEAT, k++) {
        const beat_t b = port_unpack(port[k]);
        std::memcpy(win + at, b.lane, size - at < DDR_BEAT ? size - at : DDR_BEAT);
    }
}

extern "C" void ctrain_csim_run(uint8_t *ddr, uint32_t prog, uint32_t n_insn, uint32_t table,
                                uint32_t table_len, uint32_t ddr_size, uint32_t result[3]) {
    /* Kept between runs (the engine runs one at a time per thread): no fresh
     * pages to fault in for every run. */
    static thread_local std::vector<ddr_t> port;
    const uint64_t beats = csim_port_beats(ddr_size);
    if (port.size() < beats)
        port.resize(beats);
    csim_window_to_port(ddr, ddr_size, port.data(), beats);
    ctrain_top(port.data(), prog, n_insn, table, table_len, ddr_size, &result[0], &result[1],
               &result[2]);
    csim_port_to_window(port.data(), ddr, ddr_size);
}

extern "C" void ctrain_csim_config(uint32_t cfg[3]) {
    cfg[0] = PE_ROWS;
    cfg[1] = PE_COLS;
    cfg[2] = CTRAIN_CHUNK;
}
