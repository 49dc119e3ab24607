/* C-sim wrapper (never synthesised): the extern "C" face of ctrain_top that
 * the cffi engine calls, and the window <-> port copies the testbench shares
 * (csim_port.h).  The trace hook lives with the counters in ctrain_top.cpp.
 *
 * The top takes the DDR port as an array of beats, exactly as synthesis and
 * co-simulation see it (partial beats read and merged, docs/overlay.md); the
 * caller's window is copied into beats before the run and back after it.
 * Only the window's own bytes are read and written, so nothing outside it is
 * ever touched. */
#include <array>
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
               &result[2] CTRAIN_TOP_PASS1(port.data()));   /* every port: the same DDR */
    csim_port_to_window(port.data(), ddr, ddr_size);
}

extern "C" void ctrain_csim_config(uint32_t cfg[3]) {
    cfg[0] = PE_ROWS;
    cfg[1] = PE_COLS;
    cfg[2] = CTRAIN_CHUNK;
}

/* ---- overlap accounting (types.h CTRAIN_REGION_*) ----
 * The cycle formula of ctrain.perfmodel.breakdown, per stage; the two must
 * stay term for term alike (tests/test_perfmodel.py compares the counters).
 * Per data port (CTRAIN_DDR_PORTS) a read and a write channel: port 1's
 * counts are the rd1_* / wr1_* fields, port 0's the totals less them. */
namespace {

struct stage_cost {
    uint64_t serial;   /* every part one after another (what the counters sum) */
    uint64_t time;     /* the stage run as the code runs it: its ports concurrent */
    uint64_t rd[2], wr[2];   /* per port: read channel (reads, gathers, merge reads), write channel */
    uint64_t beats;    /* DDR beats of both ports, both directions (gathers not) */
};

uint64_t bit_length(uint64_t v) {
    uint64_t b = 0;
    for (; v; v >>= 1)
        b++;
    return b;
}

/* DDR bytes per cycle: one port's channel at most its beat (B of the model);
 * all ports together at most the DDR's own rate. */
double ddr_bpc() { return CTRAIN_DDR_GBPS * 1e3 / CTRAIN_CLOCK_MHZ; }

uint64_t channel(uint64_t beats, uint64_t bursts, uint64_t agu, uint64_t latency) {
    const double per_cycle = ddr_bpc();
    const double bpc = per_cycle < (double)DDR_BEAT ? per_cycle : (double)DDR_BEAT;
    const uint64_t ddr = beats ? (uint64_t)std::ceil((double)(beats * DDR_BEAT) / bpc) : 0;
    return bursts * (latency + CTRAIN_AGU_DEPTH) + (agu > ddr ? agu : ddr);
}

/* Cycles the DDR itself needs for `beats` beats of all ports together. */
uint64_t ddr_total(uint64_t beats) {
    return beats ? (uint64_t)std::ceil((double)(beats * DDR_BEAT) / ddr_bpc()) : 0;
}

uint64_t max3(uint64_t a, uint64_t b, uint64_t c) {
    const uint64_t m = a > b ? a : b;
    return m > c ? m : c;
}

stage_cost cost(const ctrain_iters_t &it) {
    /* a cycle per level of the deepest adder tree, the position path's
     * over its L x R x C PEs (sp_steps, WG), for every PE step loop */
    const uint64_t leaves = PE_LANES * PE_ROWS * PE_COLS;
    const uint64_t pe_depth = CTRAIN_PE_DEPTH_BASE + bit_length(leaves > 2 ? leaves - 1 : 1);
    const uint64_t outstanding_lat =
        (CTRAIN_RD_LATENCY + CTRAIN_OUTSTANDING - 1) / CTRAIN_OUTSTANDING;
    const uint64_t merge = CTRAIN_RD_LATENCY + CTRAIN_AGU_DEPTH;
    stage_cost c;
    const uint64_t compute = it.pe + it.pe_in * pe_depth + it.ew + it.ew_in * CTRAIN_EW_DEPTH;
    const uint64_t rb0 = it.rd_beats - it.gathers - it.rd1_beats;
    c.rd[0] = channel(rb0, it.rd_bursts - it.rd1_bursts, it.rd_agu - it.rd1_agu,
                      CTRAIN_RD_LATENCY) +
              it.gathers * outstanding_lat + (it.wr_merges - it.wr1_merges) * merge;
    c.rd[1] = channel(it.rd1_beats, it.rd1_bursts, it.rd1_agu, CTRAIN_RD_LATENCY) +
              it.wr1_merges * merge;
    c.wr[0] = channel(it.wr_beats - it.wr1_beats, it.wr_bursts - it.wr1_bursts,
                      it.wr_agu - it.wr1_agu, CTRAIN_WR_LATENCY);
    c.wr[1] = channel(it.wr1_beats, it.wr1_bursts, it.wr1_agu, CTRAIN_WR_LATENCY);
    c.beats = it.rd_beats - it.gathers + it.wr_beats;
    c.serial = compute + c.rd[0] + c.rd[1] + c.wr[0] + c.wr[1];
    c.time = compute + max3(c.rd[0], c.rd[1], ddr_total(it.rd_beats - it.gathers)) +
             max3(c.wr[0], c.wr[1], ddr_total(it.wr_beats));
    return c;
}

void sub_into(ctrain_iters_t &acc, const ctrain_iters_t &now, const ctrain_iters_t &mark) {
#define CTRAIN_DELTA(f) acc.f += now.f - mark.f
    CTRAIN_DELTA(pe); CTRAIN_DELTA(pe_in); CTRAIN_DELTA(ew); CTRAIN_DELTA(ew_in);
    CTRAIN_DELTA(rd); CTRAIN_DELTA(wr); CTRAIN_DELTA(rd_beats); CTRAIN_DELTA(wr_beats);
    CTRAIN_DELTA(rd_bursts); CTRAIN_DELTA(wr_bursts); CTRAIN_DELTA(rd_agu);
    CTRAIN_DELTA(wr_agu); CTRAIN_DELTA(gathers); CTRAIN_DELTA(wr_merges);
    CTRAIN_DELTA(rd1_beats); CTRAIN_DELTA(rd1_bursts); CTRAIN_DELTA(rd1_agu);
    CTRAIN_DELTA(wr1_beats); CTRAIN_DELTA(wr1_bursts); CTRAIN_DELTA(wr1_agu);
    CTRAIN_DELTA(wr1_merges);
#undef CTRAIN_DELTA
}

struct region_state {
    int stage;
    ctrain_iters_t mark;
    ctrain_iters_t part[CTRAIN_REGION_STAGES];
};
thread_local region_state region = {};

/* One lockstep step's stages: its serial sum, its stages' times summed, and
 * its span (longest stage, each port's read and write channel over the
 * stages, the DDR's own rate for every beat of the step). */
struct step_cost {
    uint64_t serial, times, span;
};

step_cost step_of(const ctrain_iters_t *const parts[], int n) {
    step_cost s = {0, 0, 0};
    uint64_t rd[2] = {0, 0}, wr[2] = {0, 0}, beats = 0;
    for (int k = 0; k < n; k++) {
        if (!parts[k])
            continue;
        const stage_cost c = cost(*parts[k]);
        s.serial += c.serial;
        s.times += c.time;
        s.span = c.time > s.span ? c.time : s.span;
        for (int p = 0; p < 2; p++) {
            rd[p] += c.rd[p];
            wr[p] += c.wr[p];
        }
        beats += c.beats;
    }
    s.span = max3(s.span, rd[0] > rd[1] ? rd[0] : rd[1], wr[0] > wr[1] ? wr[0] : wr[1]);
    s.span = s.span > ddr_total(beats) ? s.span : ddr_total(beats);
    return s;
}

/* A DATAFLOW loop's items: per item its three processes' counts. */
struct pipe_state {
    int stage;   /* -1 before the first process */
    ctrain_iters_t mark;
    std::vector<std::array<ctrain_iters_t, 3>> items;
};
thread_local pipe_state dpipe = {};

void pipe_close() {
    if (dpipe.stage >= 0)   /* an item's process (ctrain_pipe_stage) */
        sub_into(dpipe.items.back()[dpipe.stage], ctrain_iters_now, dpipe.mark);
    dpipe.mark = ctrain_iters_now;
}

}  // namespace

void ctrain_region_begin(void) {
    region = region_state();
    region.mark = ctrain_iters_now;
}

void ctrain_region_stage(int k) {
    sub_into(region.part[region.stage], ctrain_iters_now, region.mark);
    region.mark = ctrain_iters_now;
    region.stage = k;
}

void ctrain_region_end(void) {
    /* the stages run one after another: only each stage's own ports overlap
     * (hidden); running the stages concurrently is planned */
    ctrain_region_stage(0);
    const ctrain_iters_t *parts[CTRAIN_REGION_STAGES];
    for (int k = 0; k < CTRAIN_REGION_STAGES; k++)
        parts[k] = &region.part[k];
    const step_cost s = step_of(parts, CTRAIN_REGION_STAGES);
    ctrain_iters_now.hidden += s.serial - s.times;
    ctrain_iters_now.planned += s.times - s.span;
}

void ctrain_pipe_begin(void) {
    dpipe = pipe_state();
    dpipe.stage = -1;
    dpipe.mark = ctrain_iters_now;
}

void ctrain_pipe_stage(int s) {
    /* process 0 starts the next item; a process before any item's first
     * is none of a DATAFLOW loop's (the macros' contract) */
    pipe_close();
    if (s == 0)
        dpipe.items.emplace_back();
    dpipe.stage = dpipe.items.empty() ? -1 : s;
}

void ctrain_pipe_end(void) {
    /* lockstep steps k: load k+1 || compute k || store k-1; load 0 and the
     * last store run alone, overlapping only their own ports */
    pipe_close();
    const size_t n = dpipe.items.size();
    for (size_t k = 0; k < n; k++) {
        const ctrain_iters_t *parts[3] = {k + 1 < n ? &dpipe.items[k + 1][0] : nullptr,
                                          &dpipe.items[k][1], k >= 1 ? &dpipe.items[k - 1][2] : nullptr};
        const step_cost s = step_of(parts, 3);
        ctrain_iters_now.hidden += s.serial - s.span;
    }
    if (n) {
        const ctrain_iters_t *first[1] = {&dpipe.items[0][0]}, *last[1] = {&dpipe.items[n - 1][2]};
        const step_cost a = step_of(first, 1), b = step_of(last, 1);
        ctrain_iters_now.hidden += a.serial - a.times + b.serial - b.times;
    }
}
