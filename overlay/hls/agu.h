/*
 * Address generation unit: every DDR access of the accelerator is one burst
 * issued here.  Addresses are byte offsets the validation unit has already
 * checked against the window.
 *
 * The m_axi data port is CTRAIN_DDR_BEAT bytes wide (64 bits on the Pynq-Z2's
 * S_AXI_HP, 128 on the Zynq UltraScale+ boards' S_AXI_HP*_FPD).  int8 operands
 * may start at any byte (docs/isa.md), so a burst of n bytes from addr is
 * ceil((addr % W + n) / W) beats; each beat moves its W byte lanes at once
 * (the lane loops are unrolled) and the burst loop runs at II=1, one beat per
 * cycle.  The first and last beat of a burst may be partial: reads ignore
 * the lanes outside [addr, addr + n), writes leave them unchanged.
 *
 * Throughput of a burst loop (docs/overlay.md, "Performance model"): HLS
 * cannot tell which of a beat's W lane accesses are live (the lane range and
 * the buffer index depend on the address), so it schedules all W every beat.
 * No buffer the AGU fills or drains is partitioned along the index the lanes
 * walk, and none is bound to a true-dual-port RAM, so the default dual-port
 * RAM (RAM_2P: one read/write port, one read port, UG1448) serves
 *   AGU_II_FILL  = W          cycles per beat written into the buffer (reads)
 *   AGU_II_DRAIN = ceil(W/2)  cycles per beat read out of it (writes)
 *   AGU_II_REGS  = 1          for a buffer partitioned into registers
 * The HLS source keeps II=1 on the loops (the schedule target); the counters
 * record what the ports allow.
 *
 * Counters (C-sim, agu_count): per channel the bytes, and for a burst of one
 * or more bytes its beats, one burst and beats x II; a write's partial beats
 * (each a read-merge in synthesis, see ddr_put); agu_rd_byte is a gather
 * (one beat issued inside a pipelined loop, counted apart).
 *
 * The port itself is reached through ddr_get/ddr_put only, an array of beats
 * in every build (types.h); a partial beat is written by reading it first and
 * merging the lanes (the accelerator is the only master writing the window
 * while it runs, docs/overlay.md).  The C-sim engine entry (csim_api.cpp)
 * copies the caller's byte window into beats and back, touching no byte
 * outside the window.
 */
#ifndef CTRAIN_AGU_H
#define CTRAIN_AGU_H

#include "types.h"
#include "cycle_model.h"

#define DDR_BEAT CTRAIN_DDR_BEAT

#ifdef __SYNTHESIS__
static inline beat_t beat_zero() { return beat_t(0); }

/* Lane l of beat w (shifts: the ap_types range() with a variable index trips
 * GCC's loop analysis). */
static inline uint8_t beat_lane(const beat_t &w, int l) {
#pragma HLS INLINE
    return (uint8_t)(w >> (8 * l)).to_uint();
}

static inline void set_lane(beat_t &w, int l, uint8_t v) {
#pragma HLS INLINE
    w = (w & ~(beat_t(0xFF) << (8 * l))) | (beat_t(v) << (8 * l));
}

static inline beat_t port_unpack(const ddr_t &w) { return w; }
static inline ddr_t port_pack(const beat_t &b) { return b; }
#else
static inline beat_t beat_zero() {
    beat_t w;
    for (int l = 0; l < DDR_BEAT; l++)
        w.lane[l] = 0;
    return w;
}

static inline uint8_t beat_lane(const beat_t &w, int l) { return w.lane[l]; }
static inline void set_lane(beat_t &w, int l, uint8_t v) { w.lane[l] = v; }

/* C-sim: a port word <-> its byte lanes through 64-bit halves (lane l is
 * bits 8l+7..8l, little-endian as on the AXI bus); few wide-integer steps
 * per beat, since every burst beat passes here. */
static inline void lanes_from_u64(beat_t &b, int at, uint64_t v) {
    for (int l = 0; l < 8; l++)
        b.lane[at + l] = (uint8_t)(v >> (8 * l));
}

static inline uint64_t u64_from_lanes(const beat_t &b, int at) {
    uint64_t v = 0;
    for (int l = 7; l >= 0; l--)
        v = (v << 8) | b.lane[at + l];
    return v;
}

static inline beat_t port_unpack(const ddr_t &w) {
    beat_t b;
    lanes_from_u64(b, 0, w.to_uint64());
#if CTRAIN_DDR_BEAT == 16
    lanes_from_u64(b, 8, w.range(127, 64).to_uint64());
#endif
    return b;
}

static inline ddr_t port_pack(const beat_t &b) {
#if CTRAIN_DDR_BEAT == 16
    ddr_t w = u64_from_lanes(b, 8);
    w <<= 64;
    w |= ddr_t(u64_from_lanes(b, 0));
    return w;
#else
    return ddr_t(u64_from_lanes(b, 0));
#endif
}
#endif

/* Beat k of the port; lanes outside [lo, hi) are not needed. */
static inline beat_t ddr_get(const ddr_t *ddr, uint32_t k, int lo, int hi) {
#pragma HLS INLINE
    (void)lo;
    (void)hi;
    return port_unpack(ddr[k]);
}

/* Writes lanes [lo, hi) of beat k; a partial beat is read and merged (no
 * write strobes), so the other lanes keep what is there. */
static inline void ddr_put(ddr_t *ddr, uint32_t k, const beat_t &data, int lo, int hi) {
#pragma HLS INLINE
    if (lo == 0 && hi == DDR_BEAT) {
        ddr[k] = port_pack(data);
        return;
    }
    beat_t w = port_unpack(ddr[k]);
    for (int l = 0; l < DDR_BEAT; l++) {
#pragma HLS UNROLL
        if (l >= lo && l < hi)
            set_lane(w, l, beat_lane(data, l));
    }
    ddr[k] = port_pack(w);
}

/* Joined partial beats (session 23).  A unit that writes a tensor in
 * pieces (a row's band of a plane) has pairs of pieces that share a partial
 * beat: where every piece is a beat long at least, two at most share one.
 * The first of the two writes holds the beat on chip instead of reading and
 * merging it, the second joins it and writes the beat whole.  Pieces come
 * band by band for a row (r) of a set of rows: row r's band b + 1 joins
 * the tail its band b held (tail[r]); row r - 1's last band joins the head
 * row r's band 0 held (head[r]); the set's first row's first beat and last
 * row's last beat are put (read and merged, ddr_put). */
enum agu_edge { AGU_PUT = 0, AGU_HOLD = 1, AGU_JOIN = 2 };

/* Whether bands of br rows (the last of oh - (bands - 1) br) of a plane
 * ow wide make pieces a beat long at least, as joins need. */
static inline bool agu_bands_join(int oh, int bands, int br, int ow) {
#pragma HLS INLINE
    /* rows, bands and widths < 2^10: narrow products */
    const int last = oh - (int)((ap_uint<10>)(bands - 1) * (ap_uint<10>)br);
    return bands > 1 && (uint32_t)((ap_uint<10>)last * (ap_uint<10>)ow) >= DDR_BEAT;
}

/* What piece (row r of n, first / last band fb, lb) does with a partial
 * first beat, and with a partial last beat, where the unit joins. */
static inline agu_edge agu_edge_first(bool join, bool fb, int r) {
#pragma HLS INLINE
    return !join ? AGU_PUT : !fb ? AGU_JOIN : r > 0 ? AGU_HOLD : AGU_PUT;
}
static inline agu_edge agu_edge_last(bool join, bool lb, int r, int n) {
#pragma HLS INLINE
    return !join ? AGU_PUT : !lb ? AGU_HOLD : r + 1 < n ? AGU_JOIN : AGU_PUT;
}

/* Beat k (lanes [lo, hi) of v) of a piece of row r: its first beat
 * (`first`) or last with edge e (AGU_PUT for the others), put, held or
 * joined (tail[r], head[r + 1]) as above. */
template <int N>
static inline void ddr_put_edge(ddr_t *ddr, uint32_t k, beat_t v, int lo, int hi, bool first,
                                agu_edge e, beat_t tail[N], beat_t head[N], int r) {
#pragma HLS INLINE
    if (e == AGU_HOLD) {
        if (first)
            head[r] = v;
        else
            tail[r] = v;
        return;
    }
    if (e == AGU_JOIN) {
        const beat_t o = first ? tail[r] : head[r + 1];
        for (int l = 0; l < DDR_BEAT; l++) {
#pragma HLS UNROLL
            if (first ? l < lo : l >= hi)
                set_lane(v, l, beat_lane(o, l));
        }
        lo = 0;
        hi = DDR_BEAT;
    }
    ddr_put(ddr, k, v, lo, hi);
}

/* The counters' held and joined partial beats of a piece of len bytes at
 * addr with edges sm (first beat) and em (last); none for an empty one. */
static inline void agu_edge_counts(uint32_t addr, uint32_t len, agu_edge sm, agu_edge em,
                                   int &held, int &joined) {
#pragma HLS INLINE
    const bool sp = len != 0 && addr % DDR_BEAT != 0, ep = len != 0 && (addr + len) % DDR_BEAT != 0;
    held = (sp && sm == AGU_HOLD ? 1 : 0) + (ep && em == AGU_HOLD ? 1 : 0);
    joined = (sp && sm == AGU_JOIN ? 1 : 0) + (ep && em == AGU_JOIN ? 1 : 0);
}

/* Geometry of one burst of len > 0 bytes at addr: its beats, and the lanes
 * beat b carries, [lo, hi); byte i of the burst is lane (addr + i) % W. */
#define AGU_LANE_BITS (CTRAIN_CLOG2(DDR_BEAT) + 1)
typedef ap_uint<AGU_LANE_BITS> agu_lane_t;   /* a beat's lane, and one past: lo, hi */
struct agu_burst {
    uint32_t first, beats;
    uint32_t last;                /* beats - 1: agu_hi's test without an adder */
    agu_lane_t off, last_hi;
};

static inline agu_burst agu_plan(uint32_t addr, uint32_t len) {
#pragma HLS INLINE
    const uint64_t off = addr % DDR_BEAT;
    agu_burst g;
    g.first = addr / DDR_BEAT;
    g.off = off;
    g.beats = (uint32_t)((off + len + DDR_BEAT - 1) / DDR_BEAT);
    g.last = g.beats - 1;
    g.last_hi = (uint32_t)((off + len - 1) % DDR_BEAT) + 1;
    return g;
}

/* The lanes beat b carries, [agu_lo, agu_hi), on AGU_LANE_BITS: every AGU
 * call site has its pair (their selects and compares as narrow as a lane) */
static inline int agu_lo(const agu_burst &g, uint32_t b) {
    const agu_lane_t lo = b == 0 ? g.off : (agu_lane_t)0;
    return lo;
}
static inline int agu_hi(const agu_burst &g, uint32_t b) {
    const agu_lane_t hi = b == g.last ? g.last_hi : (agu_lane_t)DDR_BEAT;
    return hi;
}

/* Byte index within the burst of lane l of beat b (valid for lanes in
 * range), on AGU_INDEX_BITS: the bursts that index by it fill or drain an
 * on-chip buffer of at most AGU_INDEX_SPAN bytes (each template asserts
 * it), so every lane's subtractor is that wide, not 32 bits. */
#define AGU_INDEX_BITS 20
#define AGU_INDEX_SPAN (1 << AGU_INDEX_BITS)
typedef ap_uint<AGU_INDEX_BITS> agu_index_t;
static inline uint32_t agu_index(const agu_burst &g, uint32_t b, int l) {
#pragma HLS INLINE
    const agu_index_t i = b * DDR_BEAT + (uint32_t)l - g.off;
    return i;
}

#define AGU_II_FILL DDR_BEAT
#define AGU_II_DRAIN ((DDR_BEAT + 1) / 2)
#define AGU_II_REGS 1

/* C-sim counters of one burst of len bytes at addr whose AGU loop runs `agu`
 * cycles (write: a DDR write), on data port `port` (0: gmem; 1: gmem1, also
 * counted in the rd1_* / wr1_* fields, types.h DDR_P1). */
static inline void agu_count_loop(bool write, uint32_t addr, uint64_t len, uint64_t agu,
                                  int port = 0, uint64_t held = 0, uint64_t joined = 0) {
#pragma HLS INLINE
#ifndef __SYNTHESIS__
    const uint64_t beats = len ? ((uint64_t)(addr % DDR_BEAT) + len + DDR_BEAT - 1) / DDR_BEAT : 0;
    if (write) {
        /* partial first / last beat (one beat: partial unless it is whole) */
        const uint64_t end = ((uint64_t)addr + len) % DDR_BEAT;
        /* held: partial beats kept on chip for a later burst to complete
         * (not written now); joined: partial beats completed from one held
         * (written whole): neither is read and merged (ddr_put_edge) */
        const uint64_t merges = (!len ? 0
                                 : beats == 1 ? (addr % DDR_BEAT != 0 || end != 0)
                                              : (uint64_t)(addr % DDR_BEAT != 0) + (end != 0)) -
                                held - joined;
        CTRAIN_COUNT(wr_merges, merges);
        CTRAIN_COUNT(wr, len);
        CTRAIN_COUNT(wr_beats, beats - held);
        CTRAIN_COUNT(wr_bursts, len ? 1 : 0);
        CTRAIN_COUNT(wr_agu, agu);
        if (port == 1) {
            CTRAIN_COUNT(wr1_merges, merges);
            CTRAIN_COUNT(wr1_beats, beats - held);
            CTRAIN_COUNT(wr1_bursts, len ? 1 : 0);
            CTRAIN_COUNT(wr1_agu, agu);
        }
    } else {
        CTRAIN_COUNT(rd, len);
        CTRAIN_COUNT(rd_beats, beats);
        CTRAIN_COUNT(rd_bursts, len ? 1 : 0);
        CTRAIN_COUNT(rd_agu, agu);
        if (port == 1) {
            CTRAIN_COUNT(rd1_beats, beats);
            CTRAIN_COUNT(rd1_bursts, len ? 1 : 0);
            CTRAIN_COUNT(rd1_agu, agu);
        }
    }
#else
    (void)write; (void)addr; (void)len; (void)agu; (void)port; (void)held; (void)joined;
#endif
}

/* As agu_count_loop for a burst through a buffer served at `ii` cycles per beat. */
static inline void agu_count(bool write, uint32_t addr, uint64_t len, int ii, int port = 0) {
#pragma HLS INLINE
#ifndef __SYNTHESIS__
    const uint64_t beats = len ? ((uint64_t)(addr % DDR_BEAT) + len + DDR_BEAT - 1) / DDR_BEAT : 0;
    agu_count_loop(write, addr, len, beats * (uint64_t)ii, port);
#else
    (void)write; (void)addr; (void)len; (void)ii; (void)port;
#endif
}

/* A loop that issues a read request per iteration (runs too far apart for
 * one burst): a request takes one of the port's CTRAIN_OUTSTANDING slots,
 * freed a latency later, so such a loop runs at most a request per
 * AGU_II_REQ cycles whatever its pipeline's II. */
#define AGU_II_REQ ((CTRAIN_RD_LATENCY + CTRAIN_OUTSTANDING - 1) / CTRAIN_OUTSTANDING)

/* C-sim counters of one run of such a loop, len bytes at addr, a request per
 * beat: its bytes and beats; returns the beats (agu_count_reqs counts the
 * loop). */
static inline uint64_t agu_count_run(uint32_t addr, uint32_t len) {
#pragma HLS INLINE
#ifndef __SYNTHESIS__
    const uint64_t beats = len ? ((uint64_t)(addr % DDR_BEAT) + len + DDR_BEAT - 1) / DDR_BEAT : 0;
    CTRAIN_COUNT(rd, len);
    CTRAIN_COUNT(rd_beats, beats);
    return beats;
#else
    (void)addr;
    (void)len;
    return 0;
#endif
}

/* Run k of such a loop's `runs`, `stride` bytes after the last (at): its
 * burst geometry; C-sim: while k < runs, its bytes and beats counted and
 * its beats added to `beats` (the first run is counted where the loop
 * starts, and only where it has more than one). */
static inline void agu_run_next(uint32_t &at, agu_burst &gb, uint64_t &beats, uint32_t stride,
                                uint32_t len, int k, int runs) {
#pragma HLS INLINE
    at += stride;
    gb = agu_plan(at, len);
#ifndef __SYNTHESIS__
    if (k < runs)
        beats += agu_count_run(at, len);
#else
    (void)beats;
    (void)k;
    (void)runs;
#endif
}

/* C-sim counters of a loop issuing a read request per beat, `beats` beats
 * (agu_count_run counted their bytes) in `cycles` of its own: one latency
 * (the first request's; the others are in flight behind it), and its
 * cycles or the requests' rate, beats x AGU_II_REQ, whichever is slower
 * (the port's outstanding requests absorb an uneven spacing of the
 * requests among the loop's steps). */
static inline void agu_count_reqs(uint64_t beats, uint64_t cycles) {
#pragma HLS INLINE
#ifndef __SYNTHESIS__
    const uint64_t req = beats * AGU_II_REQ;
    CTRAIN_COUNT(rd_bursts, beats ? 1 : 0);
    CTRAIN_COUNT(rd_agu, cycles > req ? cycles : req);
#endif
    (void)beats;
    (void)cycles;
}

/* Step t of a byte-per-cycle burst loop (AGU_II_FILL: t < beats x W, the
 * beat read at its lane 0 into w): whether lane t % W is one of the
 * burst's, its byte v and its index i within the burst. */
static inline bool agu_byte(const ddr_t *ddr, const agu_burst &g, uint32_t t, beat_t &w, q8_t &v,
                            uint32_t &i) {
#pragma HLS INLINE
    const uint32_t b = t / DDR_BEAT;
    const int l = (int)(t % DDR_BEAT);
    if (l == 0)
        w = ddr_get(ddr, g.first + b, agu_lo(g, b), agu_hi(g, b));
    v = (q8_t)beat_lane(w, l);
    i = agu_index(g, b, l);
    return l >= agu_lo(g, b) && l < agu_hi(g, b);
}

/* ddr[addr .. addr+len) -> buf[0 .. len), int8 elements, a byte per cycle
 * (AGU_II_FILL): one write per cycle, no lane crossbar into the banks. */
template <int N>
void agu_rd_q8(const ddr_t *ddr, uint32_t addr, q8_t buf[N], uint32_t len) {
#pragma HLS INLINE
    static_assert(N <= AGU_INDEX_SPAN, "agu_index spans the buffer");
    agu_count(false, addr, len, AGU_II_FILL);
    if (len == 0)
        return;
    const agu_burst g = agu_plan(addr, len);
    beat_t w = beat_zero();
rd_q8:
    for (uint32_t t = 0; t < g.beats * DDR_BEAT; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=N+DDR_BEAT
        q8_t v;
        uint32_t i;
        if (agu_byte(ddr, g, t, w, v, i))
            buf[i] = v;
    }
}

/* As agu_rd_q8, also returning the sum of the elements (the WG bias gradients
 * tap the error stream on its way into the line buffer). */
template <int N>
wide_t agu_rd_q8_sum(const ddr_t *ddr, uint32_t addr, q8_t buf[N], uint32_t len) {
#pragma HLS INLINE
    static_assert(N <= AGU_INDEX_SPAN, "agu_index spans the buffer");
    agu_count(false, addr, len, AGU_II_FILL);
    wide_t sum = 0;
    if (len == 0)
        return sum;
    const agu_burst g = agu_plan(addr, len);
    beat_t w = beat_zero();
rd_q8_sum:
    for (uint32_t t = 0; t < g.beats * DDR_BEAT; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=N+DDR_BEAT
        q8_t v;
        uint32_t i;
        if (agu_byte(ddr, g, t, w, v, i)) {
            buf[i] = v;
            sum += v;
        }
    }
    return sum;
}

/* ddr[addr .. addr+len) -> win[k][at + i][lane] for every copy k: one batch
 * lane of a sparse-unit window row (the window interleaves the lanes, one
 * word per position, and is replicated for read ports). */
template <int K, int P, int L>
void agu_rd_q8_lane(const ddr_t *ddr, uint32_t addr, q8_t win[K][P][L], uint32_t at, int lane,
                    uint32_t len) {
#pragma HLS INLINE
    static_assert(P <= AGU_INDEX_SPAN, "agu_index spans the buffer");
    agu_count(false, addr, len, AGU_II_FILL);   /* W writes into each copy */
    if (len == 0)
        return;
    const agu_burst g = agu_plan(addr, len);
    beat_t w = beat_zero();
    /* a byte per cycle (AGU_II_FILL): each copy one write, no lane crossbar */
rd_q8_lane:
    for (uint32_t t = 0; t < g.beats * DDR_BEAT; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_DIM*DDR_BEAT
        q8_t v;
        uint32_t i;
        if (agu_byte(ddr, g, t, w, v, i)) {
            for (int k = 0; k < K; k++) {
#pragma HLS UNROLL
                win[k][at + i][lane] = v;
            }
        }
    }
}

/* As agu_rd_q8_lane for a run of 1x1 planes: element i goes to window
 * position at + i * stride (a fully connected layer's inputs, one per channel).
 * No multiplier: a byte per cycle, its position stepped by stride. */
template <int K, int P, int L>
void agu_rd_q8_lane_strided(const ddr_t *ddr, uint32_t addr, q8_t win[K][P][L], uint32_t at,
                            uint32_t stride, int lane, uint32_t len) {
#pragma HLS INLINE
    static_assert(P <= AGU_INDEX_SPAN, "agu_index spans the buffer");
    agu_count(false, addr, len, AGU_II_FILL);
    if (len == 0)
        return;
    const agu_burst g = agu_plan(addr, len);
    beat_t w = beat_zero();
    uint32_t pos = at;   /* the next element's window position */
rd_q8_strided:
    for (uint32_t t = 0; t < g.beats * DDR_BEAT; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_CH*DDR_BEAT
        q8_t v;
        uint32_t i;
        if (agu_byte(ddr, g, t, w, v, i)) {
            for (int k = 0; k < K; k++) {
#pragma HLS UNROLL
                win[k][pos][lane] = v;
            }
            pos += stride;
        }
    }
}

/* ddr[addr .. addr+len) -> buf[i][lane][0]: one lane's values of len PE rows
 * (a 1x1 plane's consecutive channels); with `add`, sums[i] += element i.  A
 * flag, not a null pointer: HLS resolves pointers at compile time
 * (docs/overlay.md, "HLS rules").  A byte per cycle (AGU_II_FILL): one
 * write, no lane crossbar. */
template <int X>
void agu_rd_q8_rows(const ddr_t *ddr, uint32_t addr, q8_t buf[PE_ROWS][PE_COLS][X], int lane,
                    uint32_t len, wide_t sums[PE_ROWS], bool add) {
#pragma HLS INLINE
    static_assert(PE_ROWS * X <= AGU_INDEX_SPAN, "agu_index spans the buffer");
    agu_count(false, addr, len, AGU_II_FILL);   /* any of W lanes may hit one bank */
    if (len == 0)
        return;
    const agu_burst g = agu_plan(addr, len);
    beat_t w = beat_zero();
rd_q8_rows:
    for (uint32_t t = 0; t < g.beats * DDR_BEAT; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS*DDR_BEAT
        q8_t v;
        uint32_t i;
        if (agu_byte(ddr, g, t, w, v, i)) {
            buf[i][lane][0] = v;
            if (add)
                sums[i] += v;
        }
    }
}

/* As above without sums. */
template <int X>
void agu_rd_q8_rows(const ddr_t *ddr, uint32_t addr, q8_t buf[PE_ROWS][PE_COLS][X], int lane,
                    uint32_t len) {
#pragma HLS INLINE
    wide_t unused[PE_ROWS];
    agu_rd_q8_rows<X>(ddr, addr, buf, lane, len, unused, false);
}

/* buf[i][lane][0] for i < len -> ddr[addr .. addr+len). */
template <int X>
void agu_wr_q8_rows(ddr_t *ddr, uint32_t addr, const q8_t buf[PE_ROWS][PE_COLS][X], int lane,
                    uint32_t len) {
#pragma HLS INLINE
    static_assert(PE_ROWS * X <= AGU_INDEX_SPAN, "agu_index spans the buffer");
    agu_count(true, addr, len, AGU_II_DRAIN);
    if (len == 0)
        return;
    const agu_burst g = agu_plan(addr, len);
wr_q8_rows:
    for (uint32_t b = 0; b < g.beats; b++) {
        /* W reads of a 2-port bank a beat: II=AGU_II_DRAIN, as counted */
#pragma HLS PIPELINE II=AGU_II_DRAIN
#pragma HLS LOOP_TRIPCOUNT min=1 max=PE_ROWS
        const int lo = agu_lo(g, b), hi = agu_hi(g, b);
        beat_t w = beat_zero();
        for (int l = 0; l < DDR_BEAT; l++) {
#pragma HLS UNROLL
            if (l >= lo && l < hi)
                set_lane(w, l, (uint8_t)buf[agu_index(g, b, l)][lane][0]);
        }
        ddr_put(ddr, g.first + b, w, lo, hi);
    }
}

/* Little-endian words of `size` bytes (2 or 4) from ddr[addr..] -> buf,
 * assembled lane by lane (words may straddle beats). */
template <typename T, int N, int SIZE>
void agu_rd_words(const ddr_t *ddr, uint32_t addr, T buf[N], uint32_t count) {
#pragma HLS INLINE
    static_assert(N * SIZE <= AGU_INDEX_SPAN, "agu_index spans the buffer");
    agu_count(false, addr, SIZE * (uint64_t)count, AGU_II_FILL);
    if (count == 0)
        return;
    const agu_burst g = agu_plan(addr, SIZE * count);
    uint32_t word = 0;
rd_words:
    for (uint32_t b = 0; b < g.beats; b++) {
        /* up to W / SIZE writes of a 1-write-port bank a beat: II=AGU_II_FILL, as counted */
#pragma HLS PIPELINE II=AGU_II_FILL
#pragma HLS LOOP_TRIPCOUNT min=1 max=N
        const int lo = agu_lo(g, b), hi = agu_hi(g, b);
        const beat_t w = ddr_get(ddr, g.first + b, lo, hi);
        for (int l = 0; l < DDR_BEAT; l++) {
#pragma HLS UNROLL
            if (l >= lo && l < hi) {
                const uint32_t i = agu_index(g, b, l);
                word = (word >> 8) | ((uint32_t)beat_lane(w, l) << (8 * SIZE - 8));
                if (i % SIZE == SIZE - 1)
                    buf[i / SIZE] = (T)word;
            }
        }
    }
}

/* count little-endian int32 words from ddr[addr..] -> buf. */
template <int N>
void agu_rd_i32(const ddr_t *ddr, uint32_t addr, int32_t buf[N], uint32_t count) {
#pragma HLS INLINE
    agu_rd_words<int32_t, N, 4>(ddr, addr, buf, count);
}

/* count little-endian uint32 words (index pointers and positions). */
template <int N>
void agu_rd_u32(const ddr_t *ddr, uint32_t addr, uint32_t buf[N], uint32_t count) {
#pragma HLS INLINE
    agu_rd_words<uint32_t, N, 4>(ddr, addr, buf, count);
}

/* count little-endian uint16 entries (sparse column and row numbers). */
template <int N>
void agu_rd_u16(const ddr_t *ddr, uint32_t addr, uint16_t buf[N], uint32_t count) {
#pragma HLS INLINE
    agu_rd_words<uint16_t, N, 2>(ddr, addr, buf, count);
}

/* buf[0 .. len) -> ddr[addr .. addr+len). */
template <int N>
void agu_wr_q8(ddr_t *ddr, uint32_t addr, const q8_t buf[N], uint32_t len) {
#pragma HLS INLINE
    static_assert(N <= AGU_INDEX_SPAN, "agu_index spans the buffer");
    agu_count(true, addr, len, AGU_II_DRAIN);
    if (len == 0)
        return;
    const agu_burst g = agu_plan(addr, len);
wr_q8:
    for (uint32_t b = 0; b < g.beats; b++) {
        /* W reads of a 2-port bank a beat: II=AGU_II_DRAIN, as counted */
#pragma HLS PIPELINE II=AGU_II_DRAIN
#pragma HLS LOOP_TRIPCOUNT min=1 max=N
        const int lo = agu_lo(g, b), hi = agu_hi(g, b);
        beat_t w = beat_zero();
        for (int l = 0; l < DDR_BEAT; l++) {
#pragma HLS UNROLL
            if (l >= lo && l < hi)
                set_lane(w, l, (uint8_t)buf[agu_index(g, b, l)]);
        }
        ddr_put(ddr, g.first + b, w, lo, hi);
    }
}

/* buf[0 .. count) -> little-endian int32 words at ddr[addr..]. */
template <int N>
void agu_wr_i32(ddr_t *ddr, uint32_t addr, const int32_t buf[N], uint32_t count) {
#pragma HLS INLINE
    static_assert(4 * N <= AGU_INDEX_SPAN, "agu_index spans the buffer");
    agu_count(true, addr, 4 * (uint64_t)count, AGU_II_DRAIN);
    if (count == 0)
        return;
    const agu_burst g = agu_plan(addr, 4 * count);
wr_i32:
    for (uint32_t b = 0; b < g.beats; b++) {
        /* W reads of a 2-port bank a beat: II=AGU_II_DRAIN, as counted */
#pragma HLS PIPELINE II=AGU_II_DRAIN
#pragma HLS LOOP_TRIPCOUNT min=1 max=4*N
        const int lo = agu_lo(g, b), hi = agu_hi(g, b);
        beat_t w = beat_zero();
        for (int l = 0; l < DDR_BEAT; l++) {
#pragma HLS UNROLL
            if (l >= lo && l < hi) {
                const uint32_t i = agu_index(g, b, l);
                set_lane(w, l, (uint8_t)((uint32_t)buf[i >> 2] >> (8 * (i & 3))));
            }
        }
        ddr_put(ddr, g.first + b, w, lo, hi);
    }
}

/* ---- Beat-wide bursts: one beat per cycle --------------------------------
 * For buffers stored so that a whole beat goes in or out in one cycle: the
 * buffer of elements of SIZE bytes is partitioned (or reshaped) cyclically by
 * AGU_LANES(SIZE) = W / SIZE, the elements of one beat, so word k of a burst
 * (its elements k*E .. k*E + E - 1) is one element per bank, all at row k.
 * The caller's pragma next to the buffer says which (docs/overlay.md, "AGU
 * throughput").  A burst at byte offset off = addr % W is realigned by a
 * funnel shifter (agu_funnel: the W lanes from lane s of the previous and the
 * current beat, s fixed per burst), so lanes never change bank:
 *   read:  word k is lanes [off, W) of beat k and [0, off) of beat k + 1; the
 *          loop runs ceil(len / W) + (off != 0) iterations at II 1 (an
 *          unaligned burst spends its first one priming the shifter);
 *   write: beat t is lanes [W - off, W) of word t - 1 and [0, W - off) of
 *          word t; one iteration per beat at II 1.
 * A write's partial first or last beat is still read and merged (ddr_put):
 * the memory plan makes every tensor start on a beat and the element-wise
 * units write whole tensors in order, so inside a compiled program only a
 * tensor whose size is not a multiple of W pays one, at its end. */
#define AGU_LANES(SIZE) (DDR_BEAT / (SIZE))
#define AGU_Q8_LANES CTRAIN_DDR_BEAT          /* int8 elements per beat */
/* log2 of it, 8 or 16 bytes (static_assert below): arithmetic, not a
 * conditional, so the resource estimate sees a constant shift */
#define AGU_Q8_LOG2 (CTRAIN_DDR_BEAT / 8 + 2)
static_assert(CTRAIN_DDR_BEAT == 8 || CTRAIN_DDR_BEAT == 16, "AGU_Q8_LOG2: a beat of 8 or 16 bytes");
#define AGU_I32_LANES (CTRAIN_DDR_BEAT / 4)   /* int32 elements per beat */

/* Lanes [s, s + W) of the 2W lanes (hi:lo), 0 < s <= W. */
static inline beat_t agu_funnel(const beat_t &lo, const beat_t &hi, int s) {
#pragma HLS INLINE
#ifdef __SYNTHESIS__
    const ap_uint<16 * DDR_BEAT> both = (ap_uint<16 * DDR_BEAT>(hi) << (8 * DDR_BEAT)) | lo;
    return beat_t(both >> (8 * s));
#else
    beat_t w;
    for (int j = 0; j < DDR_BEAT; j++)
        w.lane[j] = s + j < DDR_BEAT ? lo.lane[s + j] : hi.lane[s + j - DDR_BEAT];
    return w;
#endif
}

/* Iterations of a beat-wide read burst (see above). */
static inline uint32_t agu_wide_trips(uint32_t addr, uint32_t len) {
#pragma HLS INLINE
    return (len + DDR_BEAT - 1) / DDR_BEAT + (addr % DDR_BEAT != 0 ? 1 : 0);
}

/* Element j (SIZE bytes, little-endian) of a word, and back. */
template <typename T, int SIZE>
static inline T word_elem(const beat_t &w, int j) {
#pragma HLS INLINE
    uint32_t v = 0;
    for (int b = SIZE - 1; b >= 0; b--) {
#pragma HLS UNROLL
        v = (v << 8) | beat_lane(w, SIZE * j + b);
    }
    return (T)v;
}

template <typename T, int SIZE>
static inline void set_word_elem(beat_t &w, int j, T v) {
#pragma HLS INLINE
    for (int b = 0; b < SIZE; b++) {
#pragma HLS UNROLL
        set_lane(w, SIZE * j + b, (uint8_t)((uint32_t)v >> (8 * b)));
    }
}

/* A beat-wide burst of len bytes at addr (see above): its beats, iterations
 * and the funnel's shift s; for a read, lag: iteration t completes word
 * t - lag (word k from beats k, k + 1; aligned: k). */
struct agu_wide {
    agu_burst g;
    uint32_t trips, lag;
    int s;
};

/* A read's plan, its traffic counted (on data port `port`). */
static inline agu_wide agu_wide_rd(uint32_t addr, uint32_t len, int port = 0) {
#pragma HLS INLINE
    agu_count_loop(false, addr, len, len ? agu_wide_trips(addr, len) : 0, port);
    agu_wide p;
    p.g = agu_plan(addr, len);
    p.trips = agu_wide_trips(addr, len);
    p.s = p.g.off ? (int)p.g.off : DDR_BEAT;
    p.lag = p.g.off ? 1 : 0;
    return p;
}

/* Iteration t of a read: beat t in, the word it completes -> w; false while
 * no word is complete yet (t < lag). prev carries beat t - 1. */
static inline bool agu_wide_word(const ddr_t *ddr, const agu_wide &p, uint32_t t, beat_t &prev,
                                 beat_t &w) {
#pragma HLS INLINE
    const beat_t cur = t < p.g.beats ? ddr_get(ddr, p.g.first + t, 0, DDR_BEAT) : beat_zero();
    w = agu_funnel(prev, cur, p.s);
    prev = cur;
    return t >= p.lag;
}

/* A write's plan, its traffic counted (on data port `port`): beat t from
 * words t - 1, t. */
static inline agu_wide agu_wide_wr(uint32_t addr, uint32_t len, int port = 0) {
#pragma HLS INLINE
    agu_count(true, addr, len, 1, port);
    agu_wide p;
    p.g = agu_plan(addr, len);
    p.trips = p.g.beats;
    p.s = DDR_BEAT - (int)p.g.off;
    p.lag = 0;
    return p;
}

/* Iteration t of a write: word t (cur) with word t - 1 (prev) -> beat t. */
static inline void agu_wide_put(ddr_t *ddr, const agu_wide &p, uint32_t t, beat_t &prev,
                                const beat_t &cur) {
#pragma HLS INLINE
    ddr_put(ddr, p.g.first + t, agu_funnel(prev, cur, p.s), agu_lo(p.g, t), agu_hi(p.g, t));
    prev = cur;
}

/* count elements of SIZE bytes at ddr[addr..] -> buf[at .. at + count), a
 * beat per cycle; at = at_words x DDR_BEAT, a ping-pong half's start in an
 * int8 buffer (only agu_rd_q8w passes it: SIZE 1, a word is DDR_BEAT elements).
 * PORT: the data port ddr is (0: gmem, 1: gmem1), for the C-sim counters only. */
template <typename T, int N, int SIZE, int PORT = 0>
void agu_rd_wide(const ddr_t *ddr, uint32_t addr, T buf[N], uint32_t count, uint32_t at_words = 0) {
#pragma HLS INLINE
    const uint32_t len = SIZE * count;
    const agu_wide p = agu_wide_rd(addr, len, PORT);
    if (len == 0)
        return;
    beat_t prev = beat_zero(), w;
    uint32_t k = 0;   /* first element of the next word */
rd_wide:
    for (uint32_t t = 0; t < p.trips; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=N/AGU_LANES(SIZE)+1
        if (agu_wide_word(ddr, p, t, prev, w)) {
            for (int j = 0; j < AGU_LANES(SIZE); j++) {
#pragma HLS UNROLL
                if (k + j < count)
                    buf[at_words * DDR_BEAT + k + j] = word_elem<T, SIZE>(w, j);
            }
            k += AGU_LANES(SIZE);
        }
    }
}

/* buf[at .. at + count) -> elements of SIZE bytes at ddr[addr..], a beat per
 * cycle (at as agu_rd_wide's: int8 buffers only; PORT as its). */
template <typename T, int N, int SIZE, int PORT = 0>
void agu_wr_wide(ddr_t *ddr, uint32_t addr, const T buf[N], uint32_t count, uint32_t at_words = 0) {
#pragma HLS INLINE
    const uint32_t len = SIZE * count;
    const agu_wide p = agu_wide_wr(addr, len, PORT);
    if (len == 0)
        return;
    beat_t prev = beat_zero();
    uint32_t k = 0;   /* first element of word t */
wr_wide:
    for (uint32_t t = 0; t < p.trips; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=N/AGU_LANES(SIZE)+1
        beat_t cur = beat_zero();
        for (int j = 0; j < AGU_LANES(SIZE); j++) {
#pragma HLS UNROLL
            if (k + j < count)
                set_word_elem<T, SIZE>(cur, j, buf[at_words * DDR_BEAT + k + j]);
        }
        agu_wide_put(ddr, p, t, prev, cur);
        k += AGU_LANES(SIZE);
    }
}

/* The int8 and int32 forms (PORT: agu_rd_wide's). */
template <int N, int PORT = 0>
void agu_rd_q8w(const ddr_t *ddr, uint32_t addr, q8_t buf[N], uint32_t len, uint32_t at_words = 0) {
#pragma HLS INLINE
    agu_rd_wide<q8_t, N, 1, PORT>(ddr, addr, buf, len, at_words);
}

template <int N, int PORT = 0>
void agu_wr_q8w(ddr_t *ddr, uint32_t addr, const q8_t buf[N], uint32_t len, uint32_t at_words = 0) {
#pragma HLS INLINE
    agu_wr_wide<q8_t, N, 1, PORT>(ddr, addr, buf, len, at_words);
}

/* The same bursts into and out of an int8 buffer held as two RAMs of
 * beat-wide words, buf[2][NB]: word wd of the sequence at_words.. is bank
 * HALF's row wd (HALF 0 or 1: a ping-pong half per RAM), or with HALF < 0
 * bank wd & 1's row wd >> 1 (banked by word parity: any two consecutive
 * words are in different RAMs).  Each iteration writes (reads) one word of
 * one bank: a bank sees at most one access of the burst per cycle. */
static inline uint32_t agu_bank_row(uint32_t wd, int half) {
#pragma HLS INLINE
    return (half < 0 ? wd >> 1 : wd) * DDR_BEAT;
}

template <int NB>
void agu_rd_q8b(const ddr_t *ddr, uint32_t addr, q8_t buf[2][NB], uint32_t len, uint32_t at_words,
                int half) {
#pragma HLS INLINE
    const agu_wide p = agu_wide_rd(addr, len);
    if (len == 0)
        return;
    beat_t prev = beat_zero(), w;
    uint32_t k = 0, wd = at_words;   /* first element of the next word, its word */
rd_banked:
    for (uint32_t t = 0; t < p.trips; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=2*NB/DDR_BEAT+1
        if (agu_wide_word(ddr, p, t, prev, w)) {
            const bool odd = half < 0 ? (wd & 1) != 0 : half != 0;
            const uint32_t row = agu_bank_row(wd, half);
            for (int j = 0; j < DDR_BEAT; j++) {
#pragma HLS UNROLL
                if (k + j < len) {
                    if (odd)
                        buf[1][row + j] = (q8_t)beat_lane(w, j);
                    else
                        buf[0][row + j] = (q8_t)beat_lane(w, j);
                }
            }
            k += DDR_BEAT;
            wd++;
        }
    }
}

template <int NB>
void agu_wr_q8b(ddr_t *ddr, uint32_t addr, const q8_t buf[2][NB], uint32_t len, uint32_t at_words,
                int half) {
#pragma HLS INLINE
    const agu_wide p = agu_wide_wr(addr, len);
    if (len == 0)
        return;
    beat_t prev = beat_zero();
    uint32_t k = 0, wd = at_words;   /* first element of word t, its word */
wr_banked:
    for (uint32_t t = 0; t < p.trips; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=2*NB/DDR_BEAT+1
        beat_t cur = beat_zero();
        const uint32_t bank = half < 0 ? (wd & 1) : (uint32_t)half;
        const uint32_t row = agu_bank_row(wd, half);
        for (int j = 0; j < DDR_BEAT; j++) {
#pragma HLS UNROLL
            if (k + j < len)
                set_lane(cur, j, (uint8_t)buf[bank][row + j]);
        }
        agu_wide_put(ddr, p, t, prev, cur);
        k += DDR_BEAT;
        wd++;
    }
}

template <int N, int PORT = 0>
void agu_rd_i32w(const ddr_t *ddr, uint32_t addr, int32_t buf[N], uint32_t count) {
#pragma HLS INLINE
    agu_rd_wide<int32_t, N, 4, PORT>(ddr, addr, buf, count);
}

template <int N, int PORT = 0>
void agu_wr_i32w(ddr_t *ddr, uint32_t addr, const int32_t buf[N], uint32_t count) {
#pragma HLS INLINE
    agu_wr_wide<int32_t, N, 4, PORT>(ddr, addr, buf, count);
}

/* The pooling units' tap cursor (max pooling in stream.cpp, average pooling
 * in eltwise.cpp): segment kx (up to W taps) of row ky of the window of
 * output (x, y) of the group's plane, as running addresses, no multiplier:
 * gbase the plane's first element, ybase the window row's, xbase the
 * window's, roff row ky's offset in it. */
struct pool_taps {
    uint32_t gbase, ybase, xbase, roff, y, x, ky, kx;
};

/* Past the segment of `live` taps just read: the next segment of the row,
 * the window's next row, the next window, row of windows (rows of them) or
 * plane; s the stride, row_step its input rows, plane_in a plane. */
static inline void pool_taps_next(pool_taps &tc, uint32_t live, uint32_t k_w, uint32_t k_h,
                                  uint32_t w_in, uint32_t w_out, uint32_t rows, uint32_t s,
                                  uint32_t row_step, uint32_t plane_in) {
#pragma HLS INLINE
    if (tc.kx + live < k_w) {
        tc.kx += DDR_BEAT;
    } else if (tc.ky + 1 < k_h) {
        tc.kx = 0; tc.ky++; tc.roff += w_in;
    } else if (tc.x + 1 < w_out) {
        tc.kx = 0; tc.ky = 0; tc.roff = 0; tc.x++; tc.xbase += s;
    } else if (tc.y + 1 < rows) {
        tc.kx = 0; tc.ky = 0; tc.roff = 0; tc.x = 0; tc.y++; tc.ybase += row_step;
        tc.xbase = tc.ybase;
    } else {
        tc.kx = 0; tc.ky = 0; tc.roff = 0; tc.x = 0; tc.y = 0;
        tc.gbase += plane_in; tc.ybase = tc.gbase; tc.xbase = tc.gbase;
    }
}

/* One int8 at a data-dependent address (SCONV_EB gathers its values through
 * the transposed index): a single-beat burst.  A pipelined loop issuing one
 * an iteration runs at the gathers' rate (AGU_II_REQ cycles each, what the
 * cycle model charges a gather), its own iterations hidden under them: it
 * counts only its fill (CTRAIN_LOOP_GATHERS). */
#define CTRAIN_LOOP_GATHERS(cls, trip) CTRAIN_COUNT(cls##_in, (trip) ? 1 : 0)
static inline q8_t agu_rd_byte(const ddr_t *ddr, uint32_t addr) {
#pragma HLS INLINE
    CTRAIN_COUNT(rd, 1);
    CTRAIN_COUNT(rd_beats, 1);
    CTRAIN_COUNT(gathers, 1);
    const int l = (int)(addr % DDR_BEAT);
    return (q8_t)beat_lane(ddr_get(ddr, addr / DDR_BEAT, l, l + 1), l);
}

/* Raw bytes to or from a buffer partitioned into registers (instruction
 * fetch, statistics record): II 1. */
void agu_rd_bytes(const ddr_t *ddr, uint32_t addr, uint8_t *buf, uint32_t len);
void agu_wr_bytes(ddr_t *ddr, uint32_t addr, const uint8_t *buf, uint32_t len);

/* ---- A chunk's int8 loads over the data ports (types.h CTRAIN_DDR_PORTS):
 * the load process of the stream processor's and ADD's chunk loops.  Each
 * port's loads are one process of a DATAFLOW region (two ports: their
 * bursts run concurrently, each process writing its own buffers); with one
 * port both are inlined and run one after another on it.  A load whose
 * flag is false is skipped (its buffer is still a real one: "HLS rules"). */
template <int N, int PORT>
void agu_chunk_rd_port(const ddr_t *ddr, uint32_t ax, q8_t x[N], bool use_y, uint32_t ay,
                       q8_t y[N], uint32_t len) {
#if CTRAIN_DDR_PORTS > 1
    /* a process of agu_chunk_rd's DATAFLOW region */
#pragma HLS INLINE off
#else
#pragma HLS INLINE
#endif
    agu_rd_q8w<N, PORT>(ddr, ax, x, len);
    if (use_y)
        agu_rd_q8w<N, PORT>(ddr, ay, y, len);
}

template <int N, int PORT>
void agu_chunk_rd_one(const ddr_t *ddr, bool use_x, uint32_t ax, q8_t x[N], uint32_t len) {
#if CTRAIN_DDR_PORTS > 1
    /* a process of agu_chunk_rd's DATAFLOW region */
#pragma HLS INLINE off
#else
#pragma HLS INLINE
#endif
    if (use_x)
        agu_rd_q8w<N, PORT>(ddr, ax, x, len);
}

/* Port 0: x0 from a0; port 1: x1 from a1 when use_x1 (ReLU, BN: the gate). */
template <int N>
void agu_chunk_rd2(const ddr_t *ddr, const ddr_t *ddr1, uint32_t len, uint32_t a0, q8_t x0[N],
                   bool use_x1, uint32_t a1, q8_t x1[N]) {
#if CTRAIN_DDR_PORTS > 1
    /* the two ports' processes run concurrently (disjoint outputs, no channel between them) */
#pragma HLS DATAFLOW
#else
#pragma HLS INLINE
#endif
    agu_chunk_rd_one<N, 0>(ddr, true, a0, x0, len);
    agu_chunk_rd_one<N, DDR_P1>(ddr1, use_x1, a1, x1, len);
}

/* Port 0: x0 (and y0 when use_y0) from a0 (ay0); port 1: x1 from a1 when use_x1 (ADD). */
template <int N>
void agu_chunk_rd(const ddr_t *ddr, const ddr_t *ddr1, uint32_t len, uint32_t a0, q8_t x0[N],
                  bool use_y0, uint32_t ay0, q8_t y0[N], bool use_x1, uint32_t a1, q8_t x1[N]) {
#if CTRAIN_DDR_PORTS > 1
    /* the two ports' processes run concurrently (disjoint outputs, no channel between them) */
#pragma HLS DATAFLOW
#else
#pragma HLS INLINE
#endif
    agu_chunk_rd_port<N, 0>(ddr, a0, x0, use_y0, ay0, y0, len);
    agu_chunk_rd_one<N, DDR_P1>(ddr1, use_x1, a1, x1, len);
}

/* The load and store processes of the chunk loops (stream.cpp relu_chunks,
 * bn_chunks, eltwise.cpp add_chunks): chunk k (K-item chunks) of an n-item
 * int8 operand in, with a second one on port 1 when use_x1, or out.  Each call site is a process
 * of its own loop. */
template <int K>
void chunk_load_q8(const ddr_t *ddr, const ddr_t *ddr1, uint32_t n, int k, uint32_t a0,
                   bool use_x1, uint32_t a1, q8_t x0[K], q8_t x1[K]) {
    /* a process of a DATAFLOW chunk loop: chunk k in */
#pragma HLS INLINE off
    CTRAIN_PIPE_STAGE(0);
    const chunk_at ck = chunk_of<K>(n, k);
    agu_chunk_rd2<K>(ddr, ddr1, ck.len, a0 + ck.i0, x0, use_x1, a1 + ck.i0, x1);
}

template <int K>
void chunk_store_q8(ddr_t *ddr, uint32_t n, int k, uint32_t dst, const q8_t out[K]) {
    /* a process of a DATAFLOW chunk loop: chunk k out */
#pragma HLS INLINE off
    CTRAIN_PIPE_STAGE(2);
    const chunk_at ck = chunk_of<K>(n, k);
    agu_wr_q8w<K>(ddr, dst + ck.i0, out, ck.len);
}

#endif
