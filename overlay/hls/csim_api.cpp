/* C-sim wrapper (never synthesised): the extern "C" face of ctrain_top that
 * the cffi engine calls, and the window <-> port copies the testbench shares
 * (csim_port.h).  The trace hook lives with the counters in ctrain_top.cpp.
 *
 * The top takes the DDR port as an array of beats, exactly as synthesis and
 * co-simulation see it (partial beats read and merged, docs/overlay.md); the
 * caller's window is copied into beats before the run and back after it.
 * Only the window's own bytes are read and written, so nothing outside it is
 * ever touched. */
#include <cmath>
#include <cstring>
#include <vector>

#include "csim_api.h"
#include "agu.h"
#include "csim_port.h"
#include "ctrain_top.h"
#include "cycle_model.h"

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

/* ---- overlap accounting (types.h CTRAIN_REGION_*) ----
 * The cycle formula of ctrain.perfmodel.breakdown, per stage; the two must
 * stay term for term alike (tests/test_perfmodel.py compares the counters). */
namespace {

struct stage_cost {
    uint64_t total, rd, wr;   /* all cycles; read channel; write channel */
};

uint64_t bit_length(uint64_t v) {
    uint64_t b = 0;
    for (; v; v >>= 1)
        b++;
    return b;
}

uint64_t channel(uint64_t beats, uint64_t bursts, uint64_t agu, uint64_t latency) {
    const double per_cycle = CTRAIN_DDR_GBPS * 1e3 / CTRAIN_CLOCK_MHZ;
    const double bpc = per_cycle < (double)DDR_BEAT ? per_cycle : (double)DDR_BEAT;
    const uint64_t ddr = beats ? (uint64_t)std::ceil((double)(beats * DDR_BEAT) / bpc) : 0;
    return bursts * (latency + CTRAIN_AGU_DEPTH) + (agu > ddr ? agu : ddr);
}

stage_cost cost(const ctrain_iters_t &it) {
    const uint64_t pe_depth = CTRAIN_PE_DEPTH_BASE + bit_length(PE_COLS > 2 ? PE_COLS - 1 : 1);
    const uint64_t outstanding_lat =
        (CTRAIN_RD_LATENCY + CTRAIN_OUTSTANDING - 1) / CTRAIN_OUTSTANDING;
    stage_cost c;
    const uint64_t compute = it.pe + it.pe_in * pe_depth + it.ew + it.ew_in * CTRAIN_EW_DEPTH;
    c.rd = channel(it.rd_beats - it.gathers, it.rd_bursts, it.rd_agu, CTRAIN_RD_LATENCY) +
           it.gathers * outstanding_lat + it.wr_merges * (CTRAIN_RD_LATENCY + CTRAIN_AGU_DEPTH);
    c.wr = channel(it.wr_beats, it.wr_bursts, it.wr_agu, CTRAIN_WR_LATENCY);
    c.total = compute + c.rd + c.wr;
    return c;
}

void sub_into(ctrain_iters_t &acc, const ctrain_iters_t &now, const ctrain_iters_t &mark) {
#define CTRAIN_DELTA(f) acc.f += now.f - mark.f
    CTRAIN_DELTA(pe); CTRAIN_DELTA(pe_in); CTRAIN_DELTA(ew); CTRAIN_DELTA(ew_in);
    CTRAIN_DELTA(rd); CTRAIN_DELTA(wr); CTRAIN_DELTA(rd_beats); CTRAIN_DELTA(wr_beats);
    CTRAIN_DELTA(rd_bursts); CTRAIN_DELTA(wr_bursts); CTRAIN_DELTA(rd_agu);
    CTRAIN_DELTA(wr_agu); CTRAIN_DELTA(gathers); CTRAIN_DELTA(wr_merges);
#undef CTRAIN_DELTA
}

struct region_state {
    bool open;
    int stage;
    ctrain_iters_t mark;
    ctrain_iters_t part[CTRAIN_REGION_STAGES];
};
thread_local region_state region = {};

}  // namespace

void ctrain_region_begin(void) {
    region = region_state();
    region.open = true;
    region.mark = ctrain_iters_now;
}

void ctrain_region_stage(int k) {
    sub_into(region.part[region.stage], ctrain_iters_now, region.mark);
    region.mark = ctrain_iters_now;
    region.stage = k;
}

void ctrain_region_end(void) {
    ctrain_region_stage(0);
    uint64_t sum = 0, longest = 0, rd = 0, wr = 0;
    for (int k = 0; k < CTRAIN_REGION_STAGES; k++) {
        const stage_cost c = cost(region.part[k]);
        sum += c.total;
        longest = c.total > longest ? c.total : longest;
        rd += c.rd;
        wr += c.wr;
    }
    uint64_t span = longest > rd ? longest : rd;
    span = span > wr ? span : wr;
    ctrain_iters_now.hidden += sum - span;
    region.open = false;
}
