"""Performance model of the accelerator (docs/overlay.md "Performance model").

Two levels:

- `iterations(insn, board)` reproduces, exactly, the per-instruction counters
  the C-sim build of the HLS sources keeps (`CsimEngine.last_iters()`): per
  loop class the pipelined iterations and loop entries, and per AXI channel
  the bytes, beats, bursts and AGU loop cycles (beats times the II the ports
  of the buffer allow). The formulas walk the loop nests of overlay/hls with
  the same addresses (beats depend on alignment); tests/test_perfmodel.py
  checks every field against the C-sim on every opcode and board. Sparse
  instructions depend on how the kept weights spread over the rows of a PE
  tile, so they take the index arrays (or a DDR image holding them); without
  them the kept weights are assumed spread evenly.
- `cycles_of(it, board)` turns the counters into clock cycles as the code
  runs: the units' phases one after another (nothing overlaps: no dataflow,
  one burst at a time), each pipelined loop paying its fill per entry, each
  burst the channel's latency, each beat the AGU's II. `ctrain.tools.perfreport`
  sums it per instruction, phase and iteration (the `ctrain perf` report).

Board parameters of the PE array and buffers come from the same config headers
the HLS build uses (overlay/hls/config/<board>.h); the DDR figures are the
boards' data sheets; every cycle constant is documented with its assumption in
docs/overlay.md.
"""
import os
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np

from . import boards, overlay_src, tiling, validate
from . import sparse_tiling
from .sparse_tiling import list_pointers, pos_plan, rows_first
from .counters import Iters
from .isa import INSN_BYTES, STATS_BYTES, Flag, Op

def _cycle_constants():
    """The CTRAIN_* #defines of overlay/hls/cycle_model.h, the one place the
    cycle constants live (the C-sim's overlap accounting reads the same)."""
    with open(os.path.join(overlay_src.hls_dir(), "cycle_model.h")) as fh:
        return {k: int(v) for k, v in boards._DEFINE.findall(fh.read())}


_CONST = _cycle_constants()
#: Cycles from a burst's request to its first data (read) or from its last
#: beat to the write response (write): the latency Vitis HLS assumes for an
#: m_axi port by default (64), above the ~100-250 ns PS DDR reads take through
#: an HP port at these clocks. Pessimistic; to calibrate on a board.
RD_LATENCY = _CONST["RD_LATENCY"]
WR_LATENCY = _CONST["WR_LATENCY"]
#: Requests in flight per channel (num_read_outstanding / num_write_outstanding
#: of the m_axi pragma in ctrain_top.cpp). Only a pipelined loop issuing a read
#: per iteration (SCONV_EB's value gathers) keeps more than one outstanding.
OUTSTANDING = _CONST["OUTSTANDING"]
#: Pipeline depth (fill) paid per loop entry, per loop class, pessimistic:
#: PE steps: operand reads (2) + DSP multiply (3) + adder tree (log2 C) +
#: accumulator read-add-write (4) + the sparse window position (3).
PE_DEPTH_BASE = _CONST["PE_DEPTH_BASE"]
#: element-wise loops: the deepest, UPDATE's two chained 32x32 multiplies with
#: rounding and saturation, taken for all of them.
EW_DEPTH = _CONST["EW_DEPTH"]
#: AGU burst loops: address, read data handshake, lane select, buffer write.
AGU_DEPTH = _CONST["AGU_DEPTH"]
#: Fixed cycles per instruction not in the counters: validation's scalar
#: checks (64-bit products and compares), loading the exponents, dispatch.
INSN_CYCLES = _CONST["INSN_CYCLES"]
#: Stages a dataflow region may have (CTRAIN_STAGE(k), k below this).
REGION_STAGES = _CONST["REGION_STAGES"]


BOARDS = boards.BOARDS


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    clock_mhz: float
    pe_rows: int
    pe_cols: int
    chunk: int            # elements per burst of the element-wise units
    sparse_entries: int   # kept weights per PE row on chip
    sparse_win: int       # window positions per batch lane
    sparse_xt: int        # output positions per x tile of the sparse unit
    sparse_rtiles: int    # row tiles a sparse layer may have and run resident
    ddr_beat: int         # bytes per beat of the accelerator's m_axi port
    ddr_gbps: float       # the board's DDR peak bandwidth
    pe_lanes: int = 1     # batch images sharing each weight (CTRAIN_PE_LANES)
    conv_wcap: int = 256  # dense weights per PE (CTRAIN_CONV_WCAP)
    conv_tcap: int = 256  # dense WG tap accumulators per PE (CTRAIN_CONV_TCAP)
    conv_act: int = 6144  # dense column operand bytes per lane and bank (CTRAIN_CONV_ACT)
    conv_out: int = 1024  # dense outputs per lane and row of a band (CTRAIN_CONV_OUT)
    conv_rb: int = 64     # row tiles per block of the dense block mode (CTRAIN_CONV_RB)
    sparse_wdepth: int = 128   # position-parallel window words per bank (SP_WD, sconv.h)
    sparse_odepth: int = 64    # ... output / error words per bank (SP_OD)
    sparse_list: int = 4096    # ... kept weights of a chunk on chip (SP_LIST)
    update_lanes: int = 1      # UPDATE's elements per cycle (CTRAIN_UPDATE_LANES, update.h)
    update_chunk: int = 0      # UPDATE's elements per burst (CTRAIN_UPDATE_CHUNK; 0: chunk)
    bn_chunk: int = 0          # BN's elements per burst (CTRAIN_BN_CHUNK, stream.h; 0: chunk)
    pool_dataflow: int = 0     # max pooling's tiled bands a DATAFLOW loop (CTRAIN_POOL_DATAFLOW, stream.h)
    pool_carry_ii: int = 1     # cycles per carried element of max pooling's BP (POOL_CARRY_II, stream.cpp)
    pool_tile: int = 0         # a tiled pooling band's elements where the bands are a DATAFLOW loop (CTRAIN_POOL_TILE, stream.h; 0: POOL_BAND / 2)
    sparse_dataflow: int = 0   # the sparse position path's pair loop a DATAFLOW loop (CTRAIN_SPARSE_DATAFLOW, sconv.h)
    conv_dataflow: int = 0     # the dense unit's item loop a DATAFLOW loop (CTRAIN_CONV_DATAFLOW, conv.h)
    ddr_ports: int = 1         # m_axi data ports (CTRAIN_DDR_PORTS, types.h): 1 or 2
    pe_pos_pairs: int = 0      # dense FP/EB two positions, WG two taps a step (PE_POS_PAIRS, mac_array.h)
    rd_latency: int = RD_LATENCY
    wr_latency: int = WR_LATENCY
    outstanding: int = OUTSTANDING
    insn_cycles: int = INSN_CYCLES

    @property
    def bytes_per_cycle(self):
        """DDR bytes per accelerator cycle per channel: the port's beat, unless
        the DDR itself delivers less at this clock."""
        return min(float(self.ddr_beat), self.ddr_gbps * 1e3 / self.clock_mhz)

    @property
    def pool_band(self):
        """A tiled pooling band's elements (stream.cpp POOL_TILE): the
        board's CTRAIN_POOL_TILE where the bands are a DATAFLOW loop, else a
        half of the band buffers."""
        return (self.pool_tile or POOL_BAND // 2) if self.pool_dataflow else POOL_BAND // 2

    @property
    def ddr_bytes_per_cycle(self):
        """The DDR's own bytes per accelerator cycle: every port together at most this."""
        return self.ddr_gbps * 1e3 / self.clock_mhz

    @property
    def port1(self):
        """The data port UPDATE's second streams use (types.h DDR_P1): 1 with
        two ports, else port 0 itself."""
        return 1 if self.ddr_ports > 1 else 0

    @property
    def macs(self):
        """Multipliers of the dense PE array: lanes x rows x columns."""
        return self.pe_lanes * self.pe_rows * self.pe_cols

    @property
    def peak_products(self):
        """int8 products per cycle of the design's largest multiplier array,
        the peak every efficiency and GOP/s roof is against: the position-
        parallel sparse path's SP_P PEs (sconv.cpp, L x R x C) times
        SP_POS_PAIR x SP_POS_KPAIR products each (two on DSP48E2 boards: a
        pair of tiles in FP/EB, or of kept weights where a PE has two DSP
        slices, CTRAIN_SPARSE_POS_MACC; of kept weights in WG), or the dense
        array's L x R x C where
        that is more. One instruction runs at a time, so no two arrays'
        products add (the row-tile path's R x C is never the larger)."""
        pos = _hls_macro(self.name, "SP_P") * _hls_macro(self.name, "SP_POS_PAIR") * \
            _hls_macro(self.name, "SP_POS_KPAIR")
        return max(self.macs, pos)

    # II of an AGU burst loop per beat (agu.h): W lane writes into a buffer
    # with one write port, W lane reads from one with two read ports.
    @property
    def ii_fill(self):
        return self.ddr_beat

    @property
    def ii_drain(self):
        return _cdiv(self.ddr_beat, 2)

    @property
    def pe_depth(self):
        """Fill of a PE step loop: PE_DEPTH_BASE and a cycle per level of the
        deepest adder tree, the position path's over its L x R x C PEs (WG:
        sp_steps), charged to every PE step loop (one class for dense and
        sparse, the deeper one)."""
        return PE_DEPTH_BASE + max(1, self.macs - 1).bit_length()

    @property
    def epi_slices(self):
        """Cycles a GATHER run's outputs take through the dense unit's
        epilogue, a PE row wide (pe_array.h PE_EPI_SLICES)."""
        return _hls_macro(self.name, "PE_EPI_SLICES")


@lru_cache(maxsize=None)
def board(name):
    """The Board of a configuration header overlay/hls/config/<name>.h (ctrain.boards)."""
    c = boards.get(name)

    def dense(key):
        return tiling.dense_macro(c, key)
    return Board(name=c.name, part=c.part, clock_mhz=float(c.clock_mhz),
                 pe_rows=c.pe_rows, pe_cols=c.pe_cols, chunk=c.chunk,
                 sparse_entries=c.sparse_entries, sparse_win=c.sparse_win,
                 sparse_xt=c.sparse_xt, sparse_rtiles=_hls_macro(c.name, "SP_RTILES"),
                 ddr_beat=c.ddr_beat, ddr_gbps=c.ddr_gbps,
                 pe_lanes=dense("PE_LANES"), conv_wcap=dense("CONV_WCAP"),
                 conv_tcap=dense("CONV_TCAP"),
                 conv_act=dense("CONV_ACT"), conv_out=dense("CONV_OUT"),
                 conv_rb=dense("CONV_RB"),
                 sparse_wdepth=_hls_macro(c.name, "SP_WD"),
                 sparse_odepth=_hls_macro(c.name, "SP_OD"),
                 sparse_list=_hls_macro(c.name, "SP_LIST"),
                 update_lanes=_hls_macro(c.name, "CTRAIN_UPDATE_LANES"),
                 update_chunk=_hls_macro(c.name, "CTRAIN_UPDATE_CHUNK"),
                 bn_chunk=_hls_macro(c.name, "CTRAIN_BN_CHUNK"),
                 pool_dataflow=_hls_macro(c.name, "CTRAIN_POOL_DATAFLOW"),
                 pool_carry_ii=_hls_macro(c.name, "POOL_CARRY_II"),
                 pool_tile=_hls_macro(c.name, "CTRAIN_POOL_TILE"),
                 sparse_dataflow=_hls_macro(c.name, "CTRAIN_SPARSE_DATAFLOW"),
                 conv_dataflow=_hls_macro(c.name, "CTRAIN_CONV_DATAFLOW"),
                 ddr_ports=_hls_macro(c.name, "CTRAIN_DDR_PORTS"),
                 pe_pos_pairs=_hls_macro(c.name, "PE_POS_PAIRS"))


@lru_cache(maxsize=None)
def _hls_macro(board_name, name):
    """An integer macro of the HLS sources (not the config header) as a
    board's build sees it."""
    import os

    from . import hls_source
    from .overlay_src import config_dir
    macros = hls_source.Macros(os.path.join(config_dir(), board_name + ".h"),
                               hls_source.source_files())
    return macros.value(name)


def _board(b):
    return board(b) if isinstance(b, str) else b


def _cdiv(a, b):
    return -(-a // b)


def _arr(v):
    return np.asarray(v, dtype=np.int64)


class _Count:
    """Counters while a formula walks the loop nest (fields of Iters)."""

    def __init__(self, b):
        self.b = b
        self.v = dict.fromkeys(Iters._fields, 0)

    def loop(self, cls, trip, times=1):
        """`times` entries of a pipelined loop of class cls (pe, ew) per trip
        count in `trip` (scalar or array); a loop of 0 trips is not entered."""
        t = _arr(trip)
        self.v[cls] += int(times * t.sum())
        self.v[cls + "_in"] += int(times * np.count_nonzero(t))

    def fill(self, cls, trip):
        """Entries of a loop that runs at its gathers' rate (agu.h
        CTRAIN_LOOP_GATHERS): only their fills, per nonzero trip count."""
        self.v[cls + "_in"] += int(np.count_nonzero(_arr(trip)))

    def _burst(self, ch, addr, n, ii, times, wide=False, port=0):
        a, n = np.broadcast_arrays(_arr(addr), _arr(n))
        W = self.b.ddr_beat
        live = n > 0
        beats = np.where(live, (a % W + n + W - 1) // W, 0)
        if wide and ch == "rd":   # the realigning read primes its shifter once
            agu = np.where(live, (n + W - 1) // W + (a % W != 0), 0)
        else:
            agu = ii * beats
        self.v[ch] += int(times * n.sum())
        # port 1's traffic also in its own fields (agu.h agu_count_loop)
        for f in (ch, ch + "1")[:1 + (port == 1)]:
            self.v[f + "_beats"] += int(times * beats.sum())
            self.v[f + "_bursts"] += int(times * np.count_nonzero(live))
            self.v[f + "_agu"] += int(times * agu.sum())
        if ch == "wr":   # partial beats, merged by a read in synthesis (agu.h)
            end = (a + n) % W
            part = np.where(beats == 1, (a % W != 0) | (end != 0),
                            (a % W != 0).astype(np.int64) + (end != 0))
            m = int(times * np.where(live, part, 0).sum())
            self.v["wr_merges"] += m
            if port == 1:
                self.v["wr1_merges"] += m

    def rd(self, addr, n, ii=None, times=1):
        """Read bursts of n bytes at each addr (arrays broadcast) into a buffer
        served at ii cycles per beat (default: one write port, II = W)."""
        self._burst("rd", addr, n, self.b.ii_fill if ii is None else ii, times)

    def rd_runs(self, addr, n, ii):
        """A loop reading every beat of the runs of n bytes at each addr (arrays
        broadcast) with a request of its own (agu.h agu_count_reqs): one
        burst's latency for all, each beat at max(ii, the request rate)
        (_Items.rd_runs also takes a loop's steps where they are more)."""
        a, n = np.broadcast_arrays(_arr(addr), _arr(n))
        beats = int(_beats(self.b, a, n).sum())
        self.v["rd"] += int(n.sum())
        self.v["rd_beats"] += beats
        self.v["rd_bursts"] += int(beats > 0)
        self.v["rd_agu"] += beats * _req_ii(self.b, ii)

    def wr(self, addr, n, ii=None, times=1):
        """Write bursts drained from a buffer (default: two read ports)."""
        self._burst("wr", addr, n, self.b.ii_drain if ii is None else ii, times)

    def rdw(self, addr, n, times=1, port=0):
        """Beat-wide read bursts (agu_rd_wide): a buffer partitioned by the
        beat takes one per cycle, ceil(n/W) + (addr % W != 0) loop cycles;
        on data port `port`."""
        self._burst("rd", addr, n, 1, times, wide=True, port=port)

    def wrw(self, addr, n, times=1, port=0):
        """Beat-wide write bursts (agu_wr_wide): one beat per cycle."""
        self._burst("wr", addr, n, 1, times, port=port)

    def gather(self, n):
        """n one-byte reads issued inside a pipelined loop (agu_rd_byte)."""
        self.v["rd"] += n
        self.v["rd_beats"] += n
        self.v["gathers"] += n

    def chunks(self, total, K):
        """(starts, lengths) of the CTRAIN_CHUNK loop over `total` elements."""
        i0 = np.arange(0, total, K, dtype=np.int64)
        return i0, np.minimum(K, total - i0)

    def add(self, other, times=1):
        for k in self.v:
            self.v[k] += times * other.v[k]

    def stage(self):
        """A fresh counter for one stage of a dataflow region (see region)."""
        return _Count(self.b)

    def region(self, stages, times=1):
        """`times` iterations of a hand-pipelined region whose stages counted
        `stages` (a list of _Count; CTRAIN_REGION_* in types.h): adds their
        counts; the code runs the stages one after another, so only each
        stage's own ports overlap (hidden), and what running them
        concurrently would save is planned: the stages' times summed minus
        the region's, max(longest stage, each AXI channel's total)."""
        costs = [_stage_cost(st.iters(), self.b) for st in stages]
        for st in stages:
            self.add(st, times)
        span = _span(self.b, max(c.time for c in costs),
                     [sum(c.rd[p] for c in costs) for p in (0, 1)],
                     [sum(c.wr[p] for c in costs) for p in (0, 1)],
                     sum(c.beats for c in costs))
        each = sum(c.time for c in costs)
        self.v["hidden"] += times * (sum(c.serial for c in costs) - each)
        self.v["planned"] += times * (each - span)

    def iters(self):
        return Iters(**self.v)


# ---------------------------------------------------------------- dense ops

#: The dense unit's tiling: the instruction's tile fields, or the unit's rule (ctrain.tiling).
ConvPlan = tiling.ConvPlan
conv_plan = tiling.conv_plan


def _beats(b, addr, n):
    """Beats of bursts of n bytes at addr (0 for n = 0)."""
    W = b.ddr_beat
    return np.where(n > 0, (addr % W + n + W - 1) // W, 0)


def _req_ii(b, ii):
    """Cycles a beat of a loop issuing a read request per beat at `ii`: a
    request waits for one of the port's outstanding slots (agu.h AGU_II_REQ)."""
    return max(ii, _cdiv(b.rd_latency, b.outstanding))


class _Items:
    """Counters of the items of one pipelined item loop, per item (vectors),
    as _Count keeps them per instruction."""

    def __init__(self, b, n):
        self.b, self.n = b, n
        self.v = {k: np.zeros(n, np.int64) for k in Iters._fields}

    def loop(self, cls, item, trip):
        item, trip = np.broadcast_arrays(_arr(item), _arr(trip))
        np.add.at(self.v[cls], item, trip)
        np.add.at(self.v[cls + "_in"], item, (trip > 0).astype(np.int64))

    def burst(self, ch, item, addr, n, ii, extra=0, port=0, held=0, joined=0):
        """Bursts of n bytes at addr for items `item`: ii AGU cycles per beat
        and per `extra` (spp_count's plane boundaries inside beats), on data
        port `port`; a write's `held` partial beats wait on chip for a later
        burst (not written), its `joined` ones complete a held one (written
        whole): neither is read and merged (agu.h ddr_put_edge)."""
        item, a, n, extra, held, joined = np.broadcast_arrays(
            _arr(item), _arr(addr), _arr(n), _arr(extra), _arr(held), _arr(joined))
        W = self.b.ddr_beat
        live = n > 0
        beats = np.where(live, (a % W + n + W - 1) // W, 0)
        np.add.at(self.v[ch], item, n)
        for f in (ch, ch + "1")[:1 + (port == 1)]:
            np.add.at(self.v[f + "_beats"], item, beats - held)
            np.add.at(self.v[f + "_bursts"], item, live.astype(np.int64))
            np.add.at(self.v[f + "_agu"], item, ii * (beats + extra))
        if ch == "wr":
            end = (a + n) % W
            part = np.where(live, np.where(beats == 1, (a % W != 0) | (end != 0),
                                           (a % W != 0).astype(np.int64) + (end != 0)), 0)
            part = part - held - joined
            np.add.at(self.v["wr_merges"], item, part)
            if port == 1:
                np.add.at(self.v["wr1_merges"], item, part)

    def rd_runs(self, item, addr, n, ii, steps=0):
        """Per item, a loop reading its runs' beats (_Count.rd_runs): `item`,
        `addr`, `n` one entry per run; `steps` the loop's steps if more."""
        item, a, n = np.broadcast_arrays(_arr(item), _arr(addr), _arr(n))
        beats = np.zeros(self.n, np.int64)
        np.add.at(beats, item, _beats(self.b, a, n))
        np.add.at(self.v["rd"], item, n)
        self.v["rd_beats"] += beats
        self.v["rd_bursts"] += (beats > 0).astype(np.int64)
        self.v["rd_agu"] += np.where(beats > 0, np.maximum(beats * _req_ii(self.b, ii), steps), 0)

    def rd_steps(self, item, addr, n, steps):
        """Read bursts for items `item` whose loops take `steps` cycles each
        (conv.cpp band_rd: a loop counted by its steps)."""
        item, a, n, steps = np.broadcast_arrays(_arr(item), _arr(addr), _arr(n), _arr(steps))
        live = n > 0
        np.add.at(self.v["rd"], item, n)
        np.add.at(self.v["rd_beats"], item, np.where(live, _beats(self.b, a, n), 0))
        np.add.at(self.v["rd_bursts"], item, live.astype(np.int64))
        np.add.at(self.v["rd_agu"], item, np.where(live, steps, 0))

    def add_to(self, c):
        """Every item's counts into the _Count c (the items' totals)."""
        for k, arr in self.v.items():
            c.v[k] += int(arr.sum())

    @staticmethod
    def cat(first, then):
        """Items `first` followed by items `then`: one item loop."""
        out = _Items(then.b, first.n + then.n)
        for k in out.v:
            out.v[k] = np.concatenate([first.v[k], then.v[k]])
        return out

    def cost(self):
        """_StageCost per item (arrays): _stage_cost."""
        return _costs(self.v, self.b)


def _pipeline(c, load, comp, store, built=False, firsts=None):
    """Counters of an item loop in lockstep steps `load k+1 || compute k ||
    store k-1`: every item's counts, and per step k < n what its stages
    overlap; load 0 and store n-1 run alone, overlapping their own ports.
    built: a DATAFLOW loop (CTRAIN_PIPE_*), its steps' overlap hidden; else
    a hand-pipelined region (conv.cpp items_loop; CTRAIN_REGION_*) whose
    stages run one after another: their own ports' overlap hidden, the
    steps' overlap planned. firsts (built only): the items that start a
    loop of their own (conv.cpp's DATAFLOW loop per chunk and group), each
    loop's first load and last store alone."""
    for part in (load, comp, store):
        part.add_to(c)
    n = load.n
    if not n:
        return
    cl, cc, cs = load.cost(), comp.cost(), store.cost()
    if firsts is not None:
        bounds = list(firsts) + [n]
        for a, e in zip(bounds[:-1], bounds[1:]):
            _lockstep(c, _slice_cost(cl, a, e), _slice_cost(cc, a, e), _slice_cost(cs, a, e), True)
        return
    _lockstep(c, cl, cc, cs, built)


def _slice_cost(x, a, e):
    """Items [a, e) of a _StageCost of arrays."""
    return _StageCost(x.serial[a:e], x.time[a:e], tuple(r[a:e] for r in x.rd),
                      tuple(w[a:e] for w in x.wr), x.beats[a:e])


def _lockstep(c, cl, cc, cs, built):
    """_pipeline's overlap of one item loop, its stages' costs cl, cc, cs."""
    z = np.zeros(1, np.int64)

    def nxt(x):    # load k+1
        return np.concatenate([x[1:], z])

    def prv(x):    # store k-1
        return np.concatenate([z, x[:-1]])
    span = _span(c.b, np.maximum.reduce([nxt(cl.time), cc.time, prv(cs.time)]),
                 [nxt(cl.rd[p]) + cc.rd[p] + prv(cs.rd[p]) for p in (0, 1)],
                 [nxt(cl.wr[p]) + cc.wr[p] + prv(cs.wr[p]) for p in (0, 1)],
                 nxt(cl.beats) + cc.beats + prv(cs.beats))
    serial = nxt(cl.serial) + cc.serial + prv(cs.serial)
    # load 0 and store n-1 run alone: what their ports overlap (0 with one port)
    alone = cl.serial[0] - cl.time[0] + cs.serial[-1] - cs.time[-1]
    if built:
        c.v["hidden"] += int((serial - span).sum() + alone)
    else:
        each = nxt(cl.time) + cc.time + prv(cs.time)
        c.v["hidden"] += int((serial - each).sum() + alone)
        c.v["planned"] += int((each - span).sum())


def _column_runs(eb, count, k, s, p, n_src, pairs):
    """PE steps of each run of a band row's columns (conv.cpp make_ranges),
    in a row that starts at an even output index and in one that starts at
    an odd one: max(1, valid taps) a column, and with pairs (PE_POS_PAIRS)
    columns v and v + 1 from an even output index (v even in the first kind
    of row, odd in the second) that both have valid taps (EB at stride 1
    only: make_ranges' pdt) run as one, over the union of their taps
    (pe_array pe_xrun)."""
    n, k0 = _ranges(eb, count, k, s, p, n_src, firsts=True)
    steps = np.maximum(1, n)
    if not (pairs and (not eb or s == 1)) or count < 2:
        return steps, steps
    a, b = slice(0, count - 1), slice(1, count)
    paired = np.append((n[a] > 0) & (n[b] > 0), False)
    union = np.append(np.maximum(k0[a] + n[a], k0[b] + n[b]) - np.minimum(k0[a], k0[b]), 0)

    def row(first):
        runs, v = [], 0
        while v < count:
            if (v - first) % 2 == 0 and paired[v]:
                runs.append(union[v])
                v += 2
            else:
                runs.append(steps[v])
                v += 1
        return np.asarray(runs, dtype=np.int64)
    return row(0), row(1)


class _Rows(NamedTuple):
    """Each item's band rows [y0, y1) of the swept plane (valid kernel rows
    ny per row), whether its width is odd and whether a tile's rows are odd
    in number with it (its row tiles then start at alternating parity)."""
    ny: np.ndarray
    y0: np.ndarray
    y1: np.ndarray
    odd: bool
    rows_odd: np.ndarray


def _by_row_offset(v, y0, y1):
    """Per-row values v summed over each item's band rows [y0, y1): those at
    an even offset from its first row, and those at an odd one."""
    par = np.arange(v.size) % 2
    e = np.concatenate([[0], np.cumsum(np.where(par == 0, v, 0))])
    o = np.concatenate([[0], np.cumsum(np.where(par == 1, v, 0))])
    ev, od = e[y1] - e[y0], o[y1] - o[y0]
    odd0 = (y0 % 2).astype(bool)
    return np.where(odd0, od, ev), np.where(odd0, ev, od)


def _pass_waits(D, rows, runs_e, runs_o, tiles, gct):
    """Cycles each item's pass spends on the dense epilogue beyond its steps
    (pe_array, PE_EPI_SLICES = D): the waits of its runs but the first
    (_epi_waits; a row's runs by its first output index's parity, as
    band_steps counts its steps) and its last run's D slices."""
    waits = np.zeros(gct.shape, np.int64)
    t_odd = np.where(rows.rows_odd, tiles // 2, 0)
    for g in np.unique(gct):
        sel = gct == g
        (we_e, we_o), (wo_e, wo_o) = (_by_row_offset(_epi_waits(D, g * rows.ny, r), rows.y0, rows.y1)
                                      for r in (runs_e, runs_o))
        te = we_e + (wo_o if rows.odd else we_o)   # a tile from an even output index
        to = wo_e + we_o                           # from an odd one
        first = np.maximum(0, D - g * rows.ny[rows.y0] * runs_e[0])
        waits[sel] = ((tiles - t_odd) * te + t_odd * to - first)[sel]
    return waits + D


def _epi_waits(D, m, runs):
    """Cycles a row of GATHER runs waits for the dense unit's epilogue
    (pe_array: a run ends once the run before has left, D cycles after its
    end): D - n where a run takes n < D steps, m = column tiles x the row's
    valid kernel rows times each column run's steps."""
    return np.maximum(0, D - np.asarray(m)[:, None] * runs[None, :]).sum(axis=1)


def _ranges(eb, count, k, s, p, n_src, firsts=False):
    """Valid taps per swept row (column) v < count (conv.cpp make_ranges);
    with firsts also each one's first tap (unscaled; 0 where no tap is
    valid)."""
    v = np.arange(count, dtype=np.int64)
    if not eb:
        vs = v * s - p
        n = np.maximum(0, np.minimum(k, n_src - vs) - np.maximum(0, -vs))
        k0 = np.maximum(0, -vs)
    else:
        hi = np.minimum(n_src - 1, (v + p) // s)
        lo = np.maximum(0, -((-(v + p - k + 1)) // s))
        n = np.maximum(0, hi - lo + 1)
        k0 = v + p - hi * s
    if not firsts:
        return n
    return n, np.where(n > 0, k0, 0)


def _conv_ii(b, ch):
    """Cycles per beat of the dense unit's lane-addressed bursts (conv.cpp
    CONV_II_*): the weight loaders' W lane stores ("rd"), the kernel
    store's W/4 accumulators two a cycle ("kernels").  Its band bursts
    count pieces (_conv_runs)."""
    return {"rd": b.ii_fill, "kernels": _cdiv(b.ddr_beat // 4, 2)}[ch]


def _conv_runs(items, ch, item, addr, n, run, runs, k0=0, slot=0, banks=1, lane_runs=0,
               period=0, held=0, joined=0):
    """A burst through a band buffer (conv.cpp band_rd, band_wr) of `runs`
    runs, each a band channel's `run` bytes (with a period, `period` bytes
    apart, the rest read and dropped): its steps are the pieces, a run's
    part in one buffer word, run k (counted from k0; with lane_runs, from 0
    again in each lane) starting at word lane ((k // banks) * slot) % W; a
    dropped stretch a piece per beat it touches; a read one more (priming
    its window), a write one more where it ends inside a beat (its last
    beat flushed)."""
    W = items.b.ddr_beat
    item, addr, n, run, runs, k0, slot = np.broadcast_arrays(
        _arr(item), _arr(addr), _arr(n), _arr(run), _arr(runs), _arr(k0), _arr(slot))
    K = int(runs.max()) if runs.size else 0
    k = k0[..., None] + np.arange(K, dtype=np.int64)
    if lane_runs:
        k = k % np.asarray(lane_runs)[..., None]
    j0 = (k // banks) * slot[..., None] % W
    kept = np.where((np.arange(K) < runs[..., None]) & (run[..., None] > 0),
                    (j0 + run[..., None] + W - 1) // W, 0).sum(axis=-1)
    steps = kept
    if period:
        m = np.arange(max(K - 1, 0), dtype=np.int64)
        a0 = addr[..., None] + m * period + run[..., None]       # a dropped stretch's first byte
        a1 = addr[..., None] + (m + 1) * period                  # and its end
        touched = np.where((m < runs[..., None] - 1) & (a1 > a0), (a1 - 1) // W - a0 // W + 1, 0)
        steps = steps + touched.sum(axis=-1)
    if not period and (banks & (banks - 1)) == 0:   # one-byte runs: BAND_ONE a step
        steps = np.where(run == 1, _one_steps(n, lane_runs, banks, W), steps)
    steps = steps + (1 if ch == "rd" else ((addr + n) % W != 0))
    beats = (addr % W + n + W - 1) // W
    items.burst(ch, item, addr, n, 1, np.where(n > 0, steps - beats, 0), held=held, joined=joined)


def _one_steps(n, row_len, banks, W):
    """Steps of n one-byte runs through `banks` banks (a power of two;
    conv.cpp band_one_n): min(banks, W) runs a step, a lane row's
    `row_len` runs (0: one row) ending a step."""
    fb = min(banks, W)
    n = np.asarray(n, dtype=np.int64)
    if not row_len:
        return (n + fb - 1) // fb
    return n // row_len * _cdiv(row_len, fb) + (n % row_len + fb - 1) // fb


def _eb_staged_shape(b):
    """EB's weights stage only where a row tile's rows are whole sub-steps
    of the staging banks (C divides R) or fewer than the banks (R < C, the
    tile's rows from its first bank on, wrapping into the next entry):
    conv.cpp EB_STAGED_SHAPE."""
    R, C = b.pe_rows, b.pe_cols
    return R % C == 0 or R < C


def _staged_pieces(W, runs, run, slot, banks, at0=0):
    """Steps of a staging band_rd (conv.cpp conv_weights_staged): per burst
    starting at entry at0 (a scalar or one per burst), `runs` runs of `run`
    bytes, run i at word lane (at0 + (i // banks) * slot) % W, a piece per
    word a run touches, and one priming the window."""
    at0 = np.atleast_1d(np.asarray(at0, dtype=np.int64))
    j0 = (at0[:, None] + (np.arange(runs, dtype=np.int64) // banks) * slot) % W
    return at0.size + int(((j0 + run + W - 1) // W).sum())


def _fp_weights(f, p, b, c, r0, vr, units=False):
    """FP weights of rows [r0, r0 + vr) with one group (conv_tile_weights):
    staged through the column-operand buffer where a row fits it
    (conv_weights_staged: per row tile a band_rd of its rows, a run each
    from word lane 0, then a word per entry), else lane by lane. (The
    buffer: act[0] before the pass, or where the item loop is DATAFLOW its
    act channel, a unit per pseudo-item: `units` asks for those, returned
    as (load, compute) _Items, a unit each; else None.)"""
    rowlen, W, R = f["c_in"] * f["k_h"] * f["k_w"], b.ddr_beat, b.pe_rows
    at = f["src2"] + r0 * rowlen
    if rowlen > b.conv_act:
        c.rd(at, vr * rowlen, ii=_conv_ii(b, "rd"))
        return None
    t0 = np.arange(0, vr, R, dtype=np.int64)
    vt = np.minimum(R, vr - t0)
    pieces = _one_steps(vt, b.pe_cols, b.pe_cols, W) if rowlen == 1 else vt * _cdiv(rowlen, W)
    load, comp = _Items(b, t0.size), _Items(b, t0.size)
    u = np.arange(t0.size, dtype=np.int64)
    load.rd_steps(u, at + t0 * rowlen, vt * rowlen, 1 + pieces)
    comp.loop("ew", u, rowlen)
    return _staged_units(c, load, comp, units)


def _eb_block_weights(f, p, b, c, r0, units=False):
    """EB weights with one group at the first row tile r0 of a block
    (conv_tile_weights): one burst per c_out channel of the block's nr
    rows, staged where the board's shape allows and the rows fit a staging
    bank (conv_weights_staged: band_rd of nr runs of kk bytes, run i at
    column i % C, entry (i // C) * kk, then per row tile and tap ceil(R / C)
    words; kk = 1: one run of nr bytes, then a word per row tile), else
    lane by lane. Staged with `units` (the DATAFLOW item loop's pseudo-
    items, _fp_weights): returned as (load, compute) _Items, a unit (kk = 1:
    a channel; else a chunk of channels) each; else None."""
    ci, kk, R, C, W = f["c_in"], f["k_h"] * f["k_w"], b.pe_rows, b.pe_cols, b.ddr_beat
    nr = min(p.rb * R, p.rows - r0)
    at = f["src2"] + (np.arange(p.cols, dtype=np.int64) * ci + r0) * kk
    tiles = _cdiv(nr, R)
    # staged only where it costs fewer cycles than a byte a cycle (at most:
    # priming, a piece per word a run touches, the words, the loop's fill)
    if kk == 1:   # one run, then a staging word's R bytes per row tile (EB_FC_STAGED)
        if W % R == 0 and nr <= b.conv_act and 1 + _cdiv(nr, W) + tiles + EW_DEPTH < nr:
            load, comp = _Items(b, p.cols), _Items(b, p.cols)
            u = np.arange(p.cols, dtype=np.int64)
            load.rd_steps(u, at, nr, 1 + _cdiv(nr, W))
            comp.loop("ew", u, tiles)
            return _staged_units(c, load, comp, units)
    elif _eb_staged_shape(b) and _cdiv(nr, C) * kk <= b.conv_act and \
            1 + nr * _cdiv(kk + W - 1, W) + tiles * _cdiv(R, C) * kk + EW_DEPTH < nr * kk:
        # chunks of the channels whose staged rows fit the buffer, each one
        # band_rd of a burst per channel (channel j's rows ent entries on)
        # and one transfer loop; chunks of one channel are plain bursts
        ent = _cdiv(nr, C) * kk
        chunk = b.conv_act // ent
        n_u = _cdiv(p.cols, chunk)
        load, comp = _Items(b, n_u), _Items(b, n_u)
        for i, u0 in enumerate(range(0, p.cols, chunk)):
            nu = min(chunk, p.cols - u0)
            steps = _staged_pieces(W, nr, kk, kk, C, np.arange(nu) * ent)
            if nu == 1:
                load.rd_steps(i, at[u0], nr * kk, steps)
            else:
                load.rd_runs(np.full(nu, i), at[u0:u0 + nu], nr * kk, 1, steps=steps)
            comp.loop("ew", i, _cdiv(nr, R) * _cdiv(R, C) * kk * nu)
        return _staged_units(c, load, comp, units)
    c.rd_runs(at, nr * kk, _conv_ii(b, "rd"))
    return None


def _conv_weights(f, p, b, c, load, k, grp_k, r0, vr):
    """Weight bursts of one FP/EB row tile: without channel groups one run
    (FP) or, at the first row tile of each block of p.rb, one per c_out
    channel of the block's rows (EB, conv_tile_weights: _eb_block_weights), else at the first
    unit of each chunk (items k), as its group's columns need them: in
    those items' load stage, or on a board whose item loop is DATAFLOW
    before each chunk's group's loop (conv_group_weights), one loop each."""
    eb, ci, kk, C = f["op"] == Op.CONV_EB, f["c_in"], f["k_h"] * f["k_w"], b.pe_cols
    if p.groups == 1:   # staged on a DATAFLOW board: the pass's pseudo-items (returned)
        df = bool(b.conv_dataflow)
        if not eb:
            return _fp_weights(f, p, b, c, r0, vr, units=df)
        if (r0 // b.pe_rows) % p.rb == 0:
            return _eb_block_weights(f, p, b, c, r0, units=df)
        return None
    w0 = grp_k * p.g * C
    gc = np.minimum(p.g * C, p.cols - w0)
    # a loop per item (k) reading its group's runs; DATAFLOW: before its loop, serially
    dest = _Items(b, load.n) if b.conv_dataflow else load
    if not eb:
        r = np.arange(vr, dtype=np.int64)[None, :]
        at = f["src2"] + ((r0 + r) * ci + w0[:, None]) * kk
        dest.rd_runs(np.repeat(k, vr), at.ravel(), np.repeat(gc * kk, vr), _conv_ii(b, "rd"))
    else:
        rep = np.repeat(np.arange(k.size), gc)
        gi = np.arange(rep.size, dtype=np.int64) - np.repeat(np.cumsum(gc) - gc, gc)
        dest.rd_runs(k[rep], f["src2"] + ((w0[rep] + gi) * ci + r0) * kk, vr * kk, _conv_ii(b, "rd"))
    if dest is not load:
        dest.add_to(c)
    return None


def _staged_units(c, load, comp, units):
    """A staged weight load's units (load: their bursts, comp: their
    transfer loops): returned as the DATAFLOW item loop's pseudo-items where
    `units`, else counted into c (before the pass, one after another)."""
    if units:
        return load, comp
    load.add_to(c)
    comp.add_to(c)
    return None


def _staged_first(units, load, comp, store):
    """The item loop's stages with a staged weight load's units first
    (conv.cpp conv_items' pseudo-items: the load process's burst, the
    compute process's words, nothing to store), where `units` holds them."""
    if units is None:
        return load, comp, store
    wl, wc = units
    return _Items.cat(wl, load), _Items.cat(wc, comp), _Items.cat(_Items(store.b, wl.n), store)


def _kernel_store(f, b, c, r0, nr):
    """WG's gradients of rows [r0, r0 + nr) with one group (conv.cpp
    conv_store_grads): one burst at the kernel store's II, or with two data
    ports (KERNELS_2P) and rows a whole number of beats long, per row tile
    its first ceil(vt / 2) rows on port 0 and the rest on port 1 in the same
    loop: the second burst's beats counted (its latency, the DDR's time for
    them), its AGU cycles the first's."""
    kk = f["k_h"] * f["k_w"]
    rowlen, R, W = f["c_in"] * kk, b.pe_rows, b.ddr_beat
    at = f["dst"] + 4 * r0 * rowlen
    if b.ddr_ports < 2 or rowlen % (W // 4) or nr < 2:
        c.wr(at, 4 * nr * rowlen, ii=_conv_ii(b, "kernels"))
        return
    t0 = np.arange(0, nr, R, dtype=np.int64)
    vt = np.minimum(R, nr - t0)
    h = (vt + 1) // 2
    a = at + 4 * t0 * rowlen
    c.wr(a, 4 * h * rowlen, ii=_conv_ii(b, "kernels"))
    c._burst("wr", a + 4 * h * rowlen, 4 * (vt - h) * rowlen, 0, 1, port=1)


def _wg_grads_store(f, p, b, c, r0, nr, c0):
    """WG's gradients of rows [r0, r0 + nr) for the channel group from
    column c0 (conv.cpp conv_store_grads): one group, _kernel_store; else a
    burst per row, the group's columns of it."""
    if p.groups == 1:
        _kernel_store(f, b, c, r0, nr)
        return
    kk = f["k_h"] * f["k_w"]
    r = np.arange(nr, dtype=np.int64)
    c.wr(f["dst"] + 4 * (((r0 + r) * f["c_in"] + c0) * kk), 4 * min(p.g * b.pe_cols, p.cols - c0) * kk,
         ii=_conv_ii(b, "kernels"))


def _conv_wg_store(f, p, b, c, r0, vr, c0, gsel):
    """The WG row tile's gradient writes for channel group `gsel` (from
    column c0), and its bias gradients after the first group."""
    _wg_grads_store(f, p, b, c, r0, vr, c0)
    if f["flags"] & Flag.BIAS and gsel == 0:
        c.loop("ew", vr)
        c.wr(f["dst2"] + 4 * r0, 4 * vr)


def _dense_conv(f, b, c):
    op, n, ci, kh, kw = f["op"], f["n"], f["c_in"], f["k_h"], f["k_w"]
    kk, s, pd = kh * kw, f["stride"], f["pad"]
    R, C, B = b.pe_rows, b.pe_cols, b.pe_lanes
    wg, eb = op == Op.CONV_WG, op == Op.CONV_EB
    p = conv_plan(f, b)
    groups_in_items = 1 if wg else p.groups
    nt = _cdiv(n, B)
    N = nt * p.bands * groups_in_items
    k = np.arange(N, dtype=np.int64)
    # item_of: chunks of p.cu units (lane tile, band), each group's items in turn
    per, units = groups_in_items * p.cu, nt * p.bands
    chunk_k, r_k = k // per, k % per
    cu_k = np.minimum(p.cu, units - chunk_k * p.cu)
    grp_k, u_k = r_k // cu_k, r_k % cu_k
    unit_k = chunk_k * p.cu + u_k
    band_k = unit_k % p.bands
    b0_k = unit_k // p.bands * B
    vb_k = np.minimum(B, n - b0_k)
    y0_k = band_k * p.br
    y1_k = np.minimum(p.oh, y0_k + p.br)
    if not eb:
        lo_k = np.maximum(0, y0_k * s - pd)
        hi_k = np.minimum(p.sh, (y1_k - 1) * s - pd + kh)
    else:
        lo_k = np.maximum(0, -((-(y0_k + pd - kh + 1)) // s))
        hi_k = np.minimum(p.sh, (y1_k - 1 + pd) // s + 1)
    hi_k = np.maximum(hi_k, lo_k)
    col_base = f["src2"] if wg else f["src"]
    if wg:
        band_cycles = None  # FP, EB: each item's pass's cycles, its band's steps and the epilogue's
    else:
        c.loop("ew", p.ow)                                  # column tables
        ny = np.maximum(1, _ranges(eb, p.oh, kh, s, pd, p.sh))
        runs_e, runs_o = _column_runs(eb, p.ow, kw, s, pd, p.sw,
                                      bool(b.pe_pos_pairs) and p.groups == 1)
        xe, xo = int(runs_e.sum()), int(runs_o.sum())
        # the band's rows by parity from its first (conv.cpp make_ranges' sums)
        ye, yo = _by_row_offset(ny, y0_k, y1_k)
        # a tile's steps from an even output index and from an odd one: with
        # an odd width row oy of tile t starts at (t * rows + oy) * ow
        odd = p.ow % 2 == 1
        se = ye * xe + yo * xo if odd else (ye + yo) * xe
        so = ye * xo + yo * xe
        rows_odd = odd & ((y1_k - y0_k) % 2 == 1)

        def band_steps(tiles):
            t_odd = np.where(rows_odd, tiles // 2, 0)
            return (tiles - t_odd) * se + t_odd * so

        def band_cycles(tiles, gct):
            """pe_array's cycles of each item's pass: its steps, the
            epilogue's waits and its last run's slices (_pass_waits)."""
            gct = np.broadcast_to(np.asarray(gct, dtype=np.int64), k.shape)
            rows = _Rows(ny, y0_k, y1_k, odd, rows_odd)
            return gct * band_steps(tiles) + _pass_waits(b.epi_slices, rows, runs_e, runs_o, tiles, gct)
    # lanes of every item: (item, lane) pairs with lane < vb
    li = np.repeat(k, vb_k)
    ll = np.arange(li.size, dtype=np.int64) - np.repeat(np.cumsum(vb_k) - vb_k, vb_k)
    img = b0_k[li] + ll

    def load_cols(items, grp):
        """Column operand bursts (load_cols): run gi of a lane's group at
        word lane ((gi // C) * slot) % W."""
        c0 = grp * p.g * C
        gc = np.minimum(p.g * C, p.cols - c0)
        run = (hi_k - lo_k) * p.sw
        full = (lo_k == 0) & (hi_k == p.sh)
        lanes = full & (gc == p.cols)        # every lane in one burst
        _conv_runs(items, "rd", k[lanes], col_base + b0_k[lanes] * p.cols * p.sh * p.sw,
                   (vb_k * gc * run)[lanes], run[lanes], (vb_k * gc)[lanes], 0, p.slot, C, p.cols)
        full = full & ~lanes
        one = full[li]
        _conv_runs(items, "rd", li[one], col_base + (img[one] * p.cols + c0[li][one]) * p.sh * p.sw,
                   (gc * run)[li][one], run[li][one], gc[li][one], 0, p.slot, C)
        m = ~one & ~lanes[li]
        plane = p.sh * p.sw
        sp = m & _conv_span(b, gc[li], run[li], plane)   # conv_span: every channel's band in one burst (band_rd's period)
        _conv_runs(items, "rd", li[sp], col_base + ((img[sp] * p.cols + c0[li][sp]) * p.sh
                                                    + lo_k[li][sp]) * p.sw,
                   (gc[li][sp] - 1) * plane + run[li][sp], run[li][sp], gc[li][sp], 0, p.slot, C,
                   period=plane)
        m = m & ~sp
        gcs = gc[li][m]
        rep = np.repeat(np.arange(m.sum()), gcs)
        gi = np.arange(rep.size, dtype=np.int64) - np.repeat(np.cumsum(gcs) - gcs, gcs)
        it = li[m][rep]
        _conv_runs(items, "rd", it, col_base + ((img[m][rep] * p.cols + c0[it] + gi) * p.sh
                                                + lo_k[it]) * p.sw, run[it], run[it], 1, gi, p.slot, C)

    def rows_io(items, ch, base, r0, vr, sel):
        """Row bursts of the swept plane (rows_rd, rows_wr) for items with `sel`:
        row k of a lane at word lane ((k // R) * run) % W (block mode's
        tiles), a row of its own at 0."""
        run = (y1_k - y0_k) * p.ow
        if p.bands == 1 and vr == p.rows:      # every lane in one burst
            _conv_runs(items, ch, k[sel], base + b0_k[sel] * p.rows * p.oh * p.ow,
                       (vb_k * vr * run)[sel], run[sel], (vb_k * vr)[sel], 0, run[sel], R, vr)
            return
        s_l = sel[li]
        it, im = li[s_l], img[s_l]
        if p.bands == 1:
            _conv_runs(items, ch, it, base + (im * p.rows + r0) * p.oh * p.ow, vr * run[it], run[it],
                       vr, 0, run[it], R)
            return
        plane = p.oh * p.ow
        # reads: every row's band in one burst where conv_span (band_rd's period)
        sp = (_conv_span(b, vr, run, plane) if ch == "rd" else np.zeros(run.shape, bool))[it]
        _conv_runs(items, ch, it[sp], base + ((im[sp] * p.rows + r0) * p.oh + y0_k[it][sp]) * p.ow,
                   (vr - 1) * plane + run[it][sp], run[it][sp], vr, period=plane)
        it, im = it[~sp], im[~sp]
        r = np.arange(vr, dtype=np.int64)[None, :]
        at = base + (((im[:, None] * p.rows + r0 + r) * p.oh + y0_k[it][:, None]) * p.ow)
        n = np.broadcast_to(run[it][:, None], at.shape)
        held = joined = 0
        if ch == "wr" and vr <= R and sparse_tiling.bands_join(p.oh, p.bands, p.br, p.ow, W):
            held, joined = _joins(at, n, r, vr, (y0_k[it] == 0)[:, None], (y1_k[it] == p.oh)[:, None], W)
            held, joined = held.ravel(), joined.ravel()
        _conv_runs(items, ch, np.repeat(it, vr), at.ravel(), n.ravel(), n.ravel(), 1,
                   held=held, joined=joined)

    W = b.ddr_beat
    tiles = {}   # a row tile's counts by what they depend on (see below)
    if p.bm:
        # Block mode: per block of p.rb row tiles, its counts depend on r0
        # through its rows and its operands' offsets within a beat.
        for r0 in range(0, p.rows, p.rb * R):
            nr = min(p.rb * R, p.rows - r0)
            key = (nr, r0 * ci * kk % W, r0 * kk % W, r0 * p.oh * p.ow % W, 4 * r0 % W)
            if key not in tiles:
                tiles[key] = t = c.stage()
                _dense_block(f, p, b, t, r0, nr, N, k, y1_k, y0_k, band_cycles, load_cols,
                             rows_io)
            c.add(tiles[key])
        return
    for r0 in range(0, p.rows, R):
        vr = min(R, p.rows - r0)
        # A row tile's counts depend on r0 only through vr, whether it
        # starts an EB weight block (and that block's rows), and its
        # operands' offsets within a beat (every address is a fixed base
        # plus one of these multiples of r0): equal keys, equal counts, so
        # each distinct row tile is walked once.
        block = min(p.rb * R, p.rows - r0) if (r0 // R) % p.rb == 0 else 0
        key = (vr, block, r0 * ci * kk % W, r0 * kk % W, r0 * p.oh * p.ow % W,
               4 * r0 * ci * kk % W, 4 * r0 % W)
        if key not in tiles:
            tiles[key] = t = c.stage()
            _dense_row_tile(f, p, b, t, r0, vr, N, k, grp_k, u_k == 0, y1_k, y0_k, band_cycles,
                            load_cols, rows_io)
        c.add(tiles[key])


def _wg_steps(b, taps, npos, btap, tiles):
    """WG's PE steps of an item (pe_array OUTER, conv.cpp's g.total): per
    row tile a run of its npos positions per tap and the bias tap (btap);
    with tap pairs (PE_POS_PAIRS, 2+ taps, npos >= 2) a run per two
    consecutive taps (the last alone) and one step more, the last pair's
    second tap."""
    npos = np.asarray(npos)
    pairs = bool(b.pe_pos_pairs) & (taps >= 2) & (npos >= 2)
    runs = np.where(pairs, (taps + 1) // 2, taps)
    return (runs + btap) * npos * tiles + pairs


def _conv_span(b, n, run, plane):
    """conv.cpp conv_span: n > 1 planes' bands of `run` bytes read in one
    burst through the planes' other rows, where those are fewer bytes than
    a burst's latency and fill move (and a plane is at least a beat)."""
    return (np.asarray(n) > 1) & (plane >= b.ddr_beat) & \
        (plane - np.asarray(run) < (b.rd_latency + AGU_DEPTH) * b.ddr_beat)


def _conv_bias(f, b, c, r0, nr):
    """FP with BIAS: the biases of the row tiles of rows [r0, r0 + nr), one
    burst and one shifting loop per tile (conv_tile_bias)."""
    if f["op"] != Op.CONV_FP or not f["flags"] & Flag.BIAS:
        return
    for t0 in range(r0, r0 + nr, b.pe_rows):
        vr = min(b.pe_rows, r0 + nr - t0)
        c.rd(f["src3"] + 4 * t0, 4 * vr)
        c.loop("ew", vr)


def _dense_block(f, p, b, c, r0, nr, N, k, y1_k, y0_k, band_cycles, load_cols, rows_io):
    """One block of the block mode (one band; FP, EB one group): FP, EB its
    biases and weights, then one item pipeline over the lane tiles, each
    item's pass walking the block's row tiles; WG per group a pass: the
    clearing of its tap accumulators, the item pipeline, its gradients, and
    after the first group per row tile the bias gradients."""
    kk, R = f["k_h"] * f["k_w"], b.pe_rows
    nt = _cdiv(nr, R)
    everything = np.ones(N, bool)
    if f["op"] == Op.CONV_WG:
        bias = bool(f["flags"] & Flag.BIAS)
        npos = (y1_k - y0_k) * p.ow
        for gsel in range(p.groups):
            gct = min(p.g, p.ct - gsel * p.g)
            c.loop("ew", (gct * kk + bias) * nt)          # clear_taps
            load, comp, store = _Items(b, N), _Items(b, N), _Items(b, N)
            load_cols(load, np.full(N, gsel, np.int64))
            rows_io(load, "rd", f["src"], r0, nr, everything)
            comp.loop("pe", k, _wg_steps(b, gct * kk, npos, bias, nt))
            _pipeline(c, load, comp, store, built=bool(b.conv_dataflow))
            _wg_grads_store(f, p, b, c, r0, nr, gsel * p.g * b.pe_cols)
            if bias and gsel == 0:
                for t0 in range(r0, r0 + nr, R):
                    vr = min(R, r0 + nr - t0)
                    c.loop("ew", vr)
                    c.wr(f["dst2"] + 4 * t0, 4 * vr)
        return
    _conv_bias(f, b, c, r0, nr)
    df = bool(b.conv_dataflow)
    if f["op"] == Op.CONV_EB:
        units = _eb_block_weights(f, p, b, c, r0, units=df)
    else:
        units = _fp_weights(f, p, b, c, r0, nr, units=df)
    load, comp, store = _Items(b, N), _Items(b, N), _Items(b, N)
    load_cols(load, np.zeros(N, np.int64))
    if f["flags"] & Flag.RELU_MASK:
        rows_io(load, "rd", f["aux"], r0, nr, everything)
    comp.loop("ew", k, y1_k - y0_k)                      # row tables
    comp.loop("pe", k, band_cycles(nt, p.ct))
    rows_io(store, "wr", f["dst"], r0, nr, everything)
    _pipeline(c, *_staged_first(units, load, comp, store), built=df)


def _dense_row_tile(f, p, b, c, r0, vr, N, k, grp_k, first_k, y1_k, y0_k, band_cycles, load_cols,
                    rows_io):
    """One row tile of _dense_conv: its bias, weights (with groups, at each
    chunk's first unit: first_k), passes (item pipelines) and WG stores,
    counted into c."""
    op, kk, C = f["op"], f["k_h"] * f["k_w"], b.pe_cols
    wg = op == Op.CONV_WG
    mask = f["flags"] & Flag.RELU_MASK
    everything = np.ones(N, bool)
    _conv_bias(f, b, c, r0, vr)
    for gsel in range(p.groups if wg else 1):
        c0 = gsel * p.g * C
        load, comp, store = _Items(b, N), _Items(b, N), _Items(b, N)
        if wg:
            gct = min(p.g, p.ct - gsel * p.g)
            c.loop("ew", gct * kk)                      # clear_taps
            load_cols(load, np.full(N, gsel, np.int64))
            rows_io(load, "rd", f["src"], r0, vr, everything)
            comp.loop("pe", k, _wg_steps(b, gct * kk, (y1_k - y0_k) * p.ow, 0, 1))
        else:
            units = _conv_weights(f, p, b, c, load, k[first_k], grp_k[first_k], r0, vr)
            load_cols(load, grp_k)
            last = grp_k == p.groups - 1
            if mask:
                rows_io(load, "rd", f["aux"], r0, vr, last)
            gct = np.minimum(p.g, p.ct - grp_k * p.g)
            comp.loop("ew", k, y1_k - y0_k)             # row tables
            comp.loop("pe", k, band_cycles(1, gct))
            rows_io(store, "wr", f["dst"], r0, vr, last)
        # DATAFLOW with several groups: a loop per chunk and group (conv_items)
        split = b.conv_dataflow and not wg and p.groups > 1
        if not wg:
            load, comp, store = _staged_first(units, load, comp, store)
        _pipeline(c, load, comp, store, built=bool(b.conv_dataflow),
                  firsts=np.flatnonzero(first_k) if split else None)
        if wg:
            _conv_wg_store(f, p, b, c, r0, vr, c0, gsel)


def _elementwise(f, b, c):
    op, K = f["op"], b.chunk
    W = b.ddr_beat
    if op == Op.UPDATE:
        L = b.update_lanes
        P1 = b.port1   # update.cpp: the master weights and velocities in, the weights out

        def load(it, k, i0, ln):
            for a, port in ((f["src"], 0), (f["src2"], P1), (f["src3"], P1)):
                _items_rdw(it, k, a + 4 * i0, 4 * ln, port)
            _items_rdw(it, k, f["aux"] + i0, np.clip(f["count_w"] - i0, 0, ln))

        def store(it, k, i0, ln):
            it.burst("wr", k, f["src2"] + 4 * i0, 4 * ln, 1, port=P1)
            it.burst("wr", k, f["src3"] + 4 * i0, 4 * ln, 1)
            it.burst("wr", k, f["dst"] + i0, np.clip(f["count_w"] - i0, 0, ln), 1)
        _chunk_pipeline(c, f["count"], b.update_chunk or K, load,
                        lambda it, k, i0, ln: it.loop("ew", k, _cdiv(ln, L)), store)   # L lanes
    elif op in (Op.RELU_FP, Op.RELU_BP):
        def load(it, k, i0, ln):
            _items_rdw(it, k, f["src"] + i0, ln)
            if op == Op.RELU_BP:   # the gate on port 1 (agu_chunk_rd2)
                _items_rdw(it, k, f["aux"] + i0, ln, b.port1)
        _chunk_pipeline(c, f["count"], K, load,
                        # a word of W lanes per cycle
                        lambda it, k, i0, ln: it.loop("ew", k, _cdiv(ln, W)),
                        lambda it, k, i0, ln: it.burst("wr", k, f["dst"] + i0, ln, 1))
    elif op in validate.POOL_OPS:
        _pool(f, b, c)
    elif op in validate.BN_OPS:
        ch, hw = f["c_in"], f["h_in"] * f["w_in"]
        total = f["n"] * ch * hw
        c.rdw(f["src2"], 4 * ch)                     # A
        if op == Op.BN_FP:
            c.rdw(f["src3"], 4 * ch)                 # B, shifted once per channel
            c.loop("ew", ch)
        mask = op == Op.BN_BP and f["flags"] & Flag.RELU_MASK

        def load(it, k, i0, ln):
            _items_rdw(it, k, f["src"] + i0, ln)
            if mask:   # the gate on port 1 (agu_chunk_rd2)
                _items_rdw(it, k, f["aux"] + i0, ln, b.port1)
        _chunk_pipeline(c, total, b.bn_chunk or K, load,
                        lambda it, k, i0, ln: it.loop("ew", k, _bn_steps(i0, ln, hw, W)),
                        lambda it, k, i0, ln: it.burst("wr", k, f["dst"] + i0, ln, 1))


def _bn_steps(i0, ln, hw, W):
    """Steps of stream_bn's bn_steps loop per chunk (starts i0, lengths ln):
    a step takes the runs of a word's lanes in two channels, so a word of
    `runs` channel runs takes ceil(runs / 2): one when h*w >= W."""
    if hw >= W:
        return _cdiv(ln, W)
    words = _cdiv(ln, W)
    k = np.repeat(np.arange(len(i0)), words)
    at = np.arange(k.size, dtype=np.int64) - np.repeat(np.cumsum(words) - words, words)
    g0 = i0[k] + at * W                          # the word's first element
    n = np.minimum(W, ln[k] - at * W)            # its live lanes
    runs = 1 + (g0 + n - 1) // hw - g0 // hw     # channel boundaries inside, plus one
    return np.bincount(k, (runs + 1) // 2, minlength=len(i0)).astype(np.int64)


def _items_rdw(it, k, addr, n, port=0):
    """_Count.rdw for the chunks `k` of an _Items: a beat-wide read takes
    ceil(n/W) + (addr % W != 0) AGU cycles (on data port `port`)."""
    W = it.b.ddr_beat
    a, n = np.broadcast_arrays(_arr(addr), _arr(n))
    beats = (a % W + n + W - 1) // W
    extra = np.where(n > 0, (n + W - 1) // W + (a % W != 0) - beats, 0)
    it.burst("rd", k, a, n, 1, extra, port)


def _chunk_pipeline(c, total, K, load, comp, store):
    """The element-wise units' DATAFLOW chunk loop over `total` elements in
    chunks of K, load chunk k+1 || compute k || store k-1 (stream.cpp
    relu_chunks, bn_chunks; update.cpp upd_chunks; eltwise.cpp add_chunks):
    load, comp and store(items, k, i0, len) count each stage of the chunks
    into an _Items; _pipeline credits the overlap as built."""
    i0, ln = c.chunks(total, K)
    k = np.arange(len(i0))
    stages = [_Items(c.b, len(i0)) for _ in range(3)]
    for fn, it in zip((load, comp, store), stages):
        fn(it, k, i0, ln)
    _pipeline(c, *stages, built=True)


#: Rows of the widest plane in a pooling band (stream.cpp POOL_ROWS, POOL_BAND).
POOL_BAND = (validate.LIMITS["KERNEL"] + validate.LIMITS["STRIDE"] - 1) * validate.LIMITS["DIM"]


def _pool_tiling(f, b):
    """(G, ny) of stream_pool's tiled path (pool_tiled: k_h = k_w = s, s a
    power of two) when its band fits a half of the band buffers, else None:
    G whole planes per band (ny = h_out), or one plane's ny output rows."""
    hi, wi, ho, wo, kh, kw, s = (f["h_in"], f["w_in"], f["h_out"], f["w_out"], f["k_h"],
                                 f["k_w"], f["stride"])
    if not (kh == s and kw == s and s in (1, 2, 4)):
        return None
    bp = f["op"] == Op.POOL_BP        # BP's errors share the rows' half
    room = b.pool_band - 2 * b.ddr_beat
    fit = room // (hi * wi + bp * ho * wo)
    tail_in = (hi - ho * s) * wi
    ny = (room - tail_in) // (wi * s + bp * wo) if room > tail_in else 0
    if fit >= 1:
        return _pool_align(f, b, fit), ho
    return (1, min(ny, ho)) if ny >= 1 else None


def _pool_align(f, b, g_fit):
    """Planes per band rounded down to a multiple of those that make the
    written band whole beats (stream_pool's g_align)."""
    wplane = f["h_in"] * f["w_in"] if f["op"] == Op.POOL_BP else f["h_out"] * f["w_out"]
    tz = min((wplane & -wplane).bit_length() - 1, b.ddr_beat.bit_length() - 1)
    g_align = b.ddr_beat >> tz
    return g_fit - g_fit % g_align if g_fit >= g_align else g_fit


def _pool_tiled(f, b, c, G, ny):
    """pool_tiled: bands load k+1 || compute k || store k-1, a DATAFLOW loop
    where the board builds one (b.pool_dataflow: pool_bands, after counting
    its bands: a cycle per group of G whole planes, or per row band of a
    plane), else by hand through the halves of the band buffers; per band
    one loop of a segment per cycle: FP s steps per (plane, output row,
    segment of P = W/s windows), BP s + 1 per (plane, output row, segment of
    W columns: its rows, its errors; the previous segment's rows written
    meanwhile), s to write the
    last one's before a plane's tail rows or at the band's end, and one per
    tail row's segment."""
    bp, W = f["op"] == Op.POOL_BP, b.ddr_beat
    P, hi, wi, ho, wo, s = (f["n"] * f["c_in"], f["h_in"], f["w_in"], f["h_out"], f["w_out"],
                            f["stride"])
    plane, plane_out, tail = hi * wi, ho * wo, hi - ho * s
    whole = ny == ho
    p0 = np.repeat(np.arange(0, P, G, dtype=np.int64), _cdiv(ho, ny))
    y0 = np.tile(np.arange(0, ho, ny, dtype=np.int64), _cdiv(P, G))
    k = np.arange(p0.size)
    last = y0 + ny >= ho
    gb, nyb = np.minimum(G, P - p0), np.where(last, ho - y0, ny)
    in_at, out_at = p0 * plane + y0 * s * wi, p0 * plane_out + y0 * wo
    if whole:
        n_x, n_o = gb * plane, gb * plane_out
    else:
        n_x = np.where(last, (ho - y0) * s * wi, ny * s * wi)
        n_o = np.where(last, plane_out - y0 * wo, ny * wo)
    load, comp, store = (_Items(b, k.size) for _ in range(3))
    _items_rdw(load, k, (f["aux"] if bp else f["src"]) + in_at, n_x)
    if bp:
        _items_rdw(load, k, f["src"] + out_at, n_o)
        nq = _cdiv(wi, W)
        tails = np.where(whole | last, tail, 0)
        # s + 1 steps a segment (its rows, its errors), its gradient rows
        # written in the next one's; s more before each plane's tail rows, or
        # once at the band's end
        comp.loop("ew", k, gb * nyb * nq * (s + 1) + np.where(tails > 0, gb * (s + tails * nq), s))
        n_w = gb * plane if whole else np.where(last, plane - y0 * s * wi, ny * s * wi)
        store.burst("wr", k, f["dst"] + in_at, n_w, 1)
    else:
        comp.loop("ew", k, gb * nyb * _cdiv(wo, W // s) * s)
        store.burst("wr", k, f["dst"] + out_at, n_o, 1)
    if b.pool_dataflow:   # pool_band_count
        c.loop("ew", (_cdiv(P, G) if G > 1 else 0) if whole else _cdiv(ho, ny))
    _pipeline(c, load, comp, store, built=bool(b.pool_dataflow))


def _pool(f, b, c):
    """stream_pool: tiled windows through _pool_tiled where their band fits;
    else per band (G whole planes, or ny output rows of one plane) one read
    burst per operand, one loop over every (output, tap), BP's store of the
    rows the band owns and the carry of overlapping rows, one write."""
    tiling = _pool_tiling(f, b)
    if tiling is not None:
        _pool_tiled(f, b, c, *tiling)
        return
    bp = f["op"] == Op.POOL_BP
    P, hi, wi, ho, wo, kh, kw, s = (f["n"] * f["c_in"], f["h_in"], f["w_in"], f["h_out"],
                                    f["w_out"], f["k_h"], f["k_w"], f["stride"])
    plane = hi * wi
    whole = plane <= POOL_BAND
    G = _pool_align(f, b, POOL_BAND // plane if whole else 1)
    fit = (POOL_BAND // wi - kh + 1) // s
    ny = ho if whole or fit > ho else fit
    W = b.ddr_beat
    if bp:   # the clear, a word of W per cycle
        c.loop("ew", _cdiv(min(P, G) * plane if whole else (ny * s + kh - 1) * wi, W))
    p0 = np.arange(0, P, G, dtype=np.int64)[:, None]
    y0 = np.arange(0, ho, ny, dtype=np.int64)[None, :]
    gb, nyb = np.minimum(G, P - p0), np.minimum(ny, ho - y0)
    last = y0 + nyb == ho
    in_at = (p0 * hi + y0 * s) * wi
    out_at, n_out = (p0 * ho + y0) * wo, gb * nyb * wo
    c.rdw((f["aux"] if bp else f["src"]) + in_at, ((gb - 1) * hi + (nyb - 1) * s + kh) * wi)
    if bp:
        c.rdw(f["src"] + out_at, n_out)
    c.loop("ew", n_out * kh * _cdiv(kw, W))                        # row segments of <= W taps
    if not bp:
        c.wrw(f["dst"] + out_at, n_out)
        return
    own = gb * plane if whole else np.where(last, hi - y0 * s, nyb * s) * wi
    c.loop("ew", np.broadcast_to(_cdiv(own, W), n_out.shape))      # store, W per cycle
    c.wrw(f["dst"] + in_at, own)
    if not whole and kh > s:
        c.loop("ew", np.where(last, 0, b.pool_carry_ii * (kh - s) * wi) + 0 * p0)    # carry


# ------------------------------------------------- residual add, average pooling

def _graph_ops(f, b, c):
    """OP_ADD and OP_AVGPOOL_* (eltwise.cpp): the add and the pool's vertical
    sums take a beat (b.ddr_beat elements) per iteration; the pool's
    horizontal sums and stores one element."""
    op, W = f["op"], b.ddr_beat
    if op == Op.ADD:
        def load(it, k, i0, ln):   # the second operand on port 1 (agu_chunk_rd)
            for a, port in ((f["src"], 0), (f["src2"], b.port1)) + \
                    (((f["aux"], 0),) if f["flags"] & Flag.RELU_MASK else ()):
                _items_rdw(it, k, a + i0, ln, port)
        _chunk_pipeline(c, f["count"], b.chunk, load,
                        lambda it, k, i0, ln: it.loop("ew", k, _cdiv(ln, W)),   # add_beat
                        lambda it, k, i0, ln: it.burst("wr", k, f["dst"] + i0, ln, 1))
        return
    P, hi, wi, ho, wo, kh, kw, s = (f["n"] * f["c_in"], f["h_in"], f["w_in"], f["h_out"],
                                    f["w_out"], f["k_h"], f["k_w"], f["stride"])
    G = _avg_band(f, b)
    if G is not None:
        _avgpool_band(f, b, c, G)
        return
    nc = np.arange(P, dtype=np.int64)[:, None]
    if op == Op.AVGPOOL_FP:
        iy = _arr([y * s + ky for y in range(ho) for ky in range(kh)])
        c.rd(f["src"] + (nc * hi + iy[None, :]) * wi, wi)
        c.loop("ew", _cdiv(wi, W), times=P * ho * kh)              # vsum
        c.loop("ew", wo, times=P * ho * kw)                        # hsum
        c.wr(f["dst"] + (nc * ho + np.arange(ho)[None, :]) * wo, wo)
        return
    c.loop("ew", wi)                                               # clear
    cover = [range(0 if iy < kh else (iy - kh + s) // s, min(iy // s, ho - 1) + 1) for iy in range(hi)]
    oys = _arr([oy for r in cover for oy in r])
    c.rd(f["src"] + (nc * ho + oys[None, :]) * wo, wo)
    c.loop("ew", _cdiv(wo, W), times=P * oys.size)                 # vsum
    c.loop("ew", wo, times=P * kw * sum(1 for r in cover if len(r)))   # spread
    rows = (nc * hi + np.arange(hi)[None, :]) * wi
    if f["flags"] & Flag.RELU_MASK:
        c.rd(f["aux"] + rows, wi)
    c.loop("ew", wi, times=P * hi)                                 # store
    c.wr(f["dst"] + rows, wi)


def _avg_band(f, b):
    """Planes per band of eltwise.cpp's avgpool_band (G whole planes fit a
    CTRAIN_CHUNK half, BP's windows cover every input at most once), else None."""
    bp = f["op"] == Op.AVGPOOL_BP
    hi, wi, ho, wo, kh, kw, s = (f["h_in"], f["w_in"], f["h_out"], f["w_out"], f["k_h"], f["k_w"],
                                 f["stride"])
    g = (b.chunk - b.ddr_beat) // (hi * wi + (ho * wo if bp else 0))
    once = (s >= kh or ho == 1) and (s >= kw or wo == 1)
    return g if g >= 1 and (not bp or once) else None


def _avgpool_band(f, b, c, G):
    """avgpool_band: bands of G planes through ping-pong halves, load k+1 ||
    compute k || store k-1; FP a segment of <= W taps of a window row per
    cycle, BP an input element per cycle."""
    bp, W = f["op"] == Op.AVGPOOL_BP, b.ddr_beat
    P, plane_in, plane_out = f["n"] * f["c_in"], f["h_in"] * f["w_in"], f["h_out"] * f["w_out"]
    p0 = np.arange(0, P, G, dtype=np.int64)
    k, gb = np.arange(p0.size), np.minimum(G, P - p0)
    load, comp, store = (_Items(b, k.size) for _ in range(3))
    if not bp:
        _items_rdw(load, k, f["src"] + p0 * plane_in, gb * plane_in)
        comp.loop("ew", k, gb * plane_out * f["k_h"] * _cdiv(f["k_w"], W))
        store.burst("wr", k, f["dst"] + p0 * plane_out, gb * plane_out, 1)
    else:
        if f["flags"] & Flag.RELU_MASK:
            _items_rdw(load, k, f["aux"] + p0 * plane_in, gb * plane_in)
        _items_rdw(load, k, f["src"] + p0 * plane_out, gb * plane_out)
        comp.loop("ew", k, gb * plane_in)
        store.burst("wr", k, f["dst"] + p0 * plane_in, gb * plane_in, 1)
    _pipeline(c, load, comp, store)


# ---------------------------------------------------------------- sparse ops

@dataclass
class _Plan:
    eb: bool
    wg: bool
    rows: int
    red: int
    oh: int
    ow: int
    wh: int
    ww: int
    xn: int
    cg: int
    groups: int
    seg: int
    plane: bool = False




def sparse_plan(f, b):
    """The sparse unit's tiling of an instruction (sp_make_plan in sconv_rows.cpp)."""
    b = _board(b)
    eb, wg = f["op"] == Op.SCONV_EB, f["op"] == Op.SCONV_WG
    kh, kw, s = f["k_h"], f["k_w"], f["stride"]
    rows, red = (f["c_in"], f["c_out"]) if eb else (f["c_out"], f["c_in"])
    oh, ow = (f["h_in"], f["w_in"]) if eb else (f["h_out"], f["w_out"])
    wh, ww = (f["h_out"], f["w_out"]) if eb else (f["h_in"], f["w_in"])
    if red * kh * kw <= b.sparse_win:
        cg = red
        q = b.sparse_win // (red * kh)
        xn = min((q - kw) // s + 1, b.sparse_xt, ow)
    else:
        cg, xn = b.sparse_win // (kh * kw), 1
    groups, seg, plane = _cdiv(red, cg), (xn - 1) * s + kw, False
    if wh * ww <= b.sparse_win:   # plane mode: whole planes, no more groups than rows
        cgp = b.sparse_win // (wh * ww)
        if _cdiv(red, cgp) <= groups:
            plane, cg, groups, xn = True, min(cgp, red), _cdiv(red, cgp), min(ow, b.sparse_xt)
    return _Plan(eb, wg, rows, red, oh, ow, wh, ww, xn, cg, groups, seg, plane)


def _paired(eb, v, k, s, p, lim):
    if not eb:
        u = v * s + k - p
        return u if 0 <= u < lim else -1
    t = v + p - k
    return t // s if t >= 0 and t % s == 0 and t // s < lim else -1


def _xtiles(g):
    x0 = np.arange(0, g.ow, g.xn, dtype=np.int64)
    return x0, np.minimum(g.xn, g.ow - x0)


def _window_pass(f, g, b, c):
    """Every window load of one sweep over batch, swept rows, x tiles and
    channel groups (sp_load_window), as run once per row tile (FP, EB) or
    per row tile and chunk (WG)."""
    s, p, kh, kw, n = f["stride"], f["pad"], f["k_h"], f["k_w"], f["n"]
    src = f["src2"] if g.wg else f["src"]
    lanes = np.arange(n, dtype=np.int64)[:, None, None]
    if g.plane:   # whole planes per lane: once per batch tile, or per call with groups
        _window_planes(g, c, src, lanes)
        return
    for y in range(g.oh):
        crow = [_paired(g.eb, y, ky, s, p, g.wh) for ky in range(kh)]
        ok = [ky for ky in range(kh) if crow[ky] >= 0]
        if not ok:
            continue
        for x0, xc in zip(*_xtiles(g)):
            x0, xc = int(x0), int(xc)
            if not g.eb:
                base, hi = x0 * s - p, (x0 + xc - 1) * s - p + kw
            else:
                base, hi = -((-(x0 + p - kw + 1)) // s), (x0 + xc - 1 + p) // s + 1
            lo, hi = max(base, 0), min(hi, g.ww)
            if hi <= lo:
                continue
            _window_tile(g, c, src, lanes, crow, ok, lo, hi)


def _window_planes(g, c, src, lanes):
    """Whole-plane window loads per lane (g.plane): once per batch tile, or
    once per call when channel groups make every (row, x tile) a call."""
    pl = g.wh * g.ww
    calls = 1 if g.groups == 1 else g.oh * len(_xtiles(g)[0])
    for ch0 in range(0, g.red, g.cg):
        chn = min(g.cg, g.red - ch0)
        c.rd(src + (lanes[:, 0, 0] * g.red + ch0) * pl, chn * pl, times=calls)


def _window_tile(g, c, src, lanes, crow, ok, lo, hi):
    """Window loads of one (output row, x tile) for every channel group:
    one run of the rows `ok` when the tile spans whole source rows, else a
    run of columns lo..hi per paired row `crow`."""
    for ch0 in range(0, g.red, g.cg):
        chn = min(g.cg, g.red - ch0)
        chs = np.arange(ch0, ch0 + chn, dtype=np.int64)[None, :, None]
        if lo == 0 and hi == g.ww and (not g.eb or g.wh == 1):
            if g.wh == 1 and g.ww == 1:
                c.rd(src + lanes[:, 0, 0] * g.red + ch0, chn)
            else:
                c.rd(src + ((lanes * g.red + chs) * g.wh + crow[ok[0]]) * g.ww,
                     (ok[-1] - ok[0] + 1) * g.ww)
        else:
            rws = _arr([crow[ky] for ky in ok])[None, None, :]
            c.rd(src + ((lanes * g.red + chs) * g.wh + rws) * g.ww + lo, hi - lo)


def _lists(f, g, index):
    """(start, length) of every PE-row list: CSR rows (FP, WG), or the
    transposed index's ranges per input channel (EB). Even spread without an
    index."""
    z, kk = f["count"], f["k_h"] * f["k_w"]
    if index is None:
        lens = np.full(g.rows, z // g.rows, np.int64)
        lens[:z % g.rows] += 1
        return np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64), lens
    rowptr, _, tptr, _, _ = index
    ptr = np.asarray(tptr, np.int64)[::kk] if g.eb else np.asarray(rowptr, np.int64)
    return ptr[:-1], np.diff(ptr)


def _entries(f, g, lay, start, lens, off, se, c, times=1):
    """Counters of loading one chunk (from `off`) of a tile's lists
    (sp_load_entries: beat-wide bursts, a decode loop); returns the chunk's
    per-row lengths."""
    lr = np.clip(lens - off, 0, se)
    first = start + off
    aux = f["aux"]
    if g.eb:
        c.rdw(aux + lay["trow"] + 2 * first, 2 * lr, times=times)
        c.rdw(aux + lay["tpos"] + 4 * first, 4 * lr, times=times)
        # each nonempty row's column starts into registers (sp_tap_starts), then its decode
        c.loop("ew", np.where(lr > 0, f["k_h"] * f["k_w"] - 1, 0), times=times)
        c.loop("ew", lr, times=times)
        c.gather(times * int(lr.sum()))
    else:
        if not g.wg:
            c.rdw(f["src2"] + first, lr, times=times)
        c.rdw(aux + lay["col"] + 2 * first, 2 * lr, times=times)
        c.loop("ew", lr, times=times)
    return lr


def _gather_epilogue(f, g, c, r0, vr, times):
    """Counters of sp_epilogue for row tile r0 over every (batch tile, swept
    row, x tile), each `times` over."""
    n, mask = f["n"], f["flags"] & Flag.RELU_MASK
    lanes = np.arange(n, dtype=np.int64)
    x0s, xcs = _xtiles(g)
    nbt = _cdiv(n, c.b.pe_cols)
    if g.oh == 1 and g.ow == 1:
        if mask:
            c.rd(f["src3"] + lanes * g.rows + r0, vr, times=times)
        c.loop("ew", xcs, times=times * nbt * g.oh * vr)
        c.wr(f["dst"] + lanes * g.rows + r0, vr, times=times)
        return
    rows_here = np.arange(r0, r0 + vr, dtype=np.int64)
    at = (((lanes[:, None, None, None] * g.rows + rows_here[None, :, None, None]) * g.oh
           + np.arange(g.oh)[None, None, :, None]) * g.ow + x0s[None, None, None, :])
    if mask:
        c.rd(f["src3"] + at, xcs[None, None, None, :], times=times)
    c.loop("ew", xcs, times=times * nbt * g.oh * vr)
    c.wr(f["dst"] + at, xcs[None, None, None, :], times=times)


def _errors(f, g, c, r0, vr):
    """Counters of sp_load_errors for row tile r0 over every (batch tile,
    swept row, x tile)."""
    lanes = np.arange(f["n"], dtype=np.int64)
    if g.oh == 1 and g.ow == 1:
        c.rd(f["src"] + lanes * f["c_out"] + r0, vr)
        return
    x0s, xcs = _xtiles(g)
    rows_here = np.arange(r0, r0 + vr, dtype=np.int64)
    at = (((lanes[:, None, None, None] * f["c_out"] + rows_here[None, :, None, None])
           * f["h_out"] + np.arange(g.oh)[None, None, :, None]) * f["w_out"]
          + x0s[None, None, None, :])
    c.rd(f["src"] + at, xcs[None, None, None, :])


def _grads(f, c, start, lr, off=0):
    """Counters of sp_store_grads: per row with entries a quantize loop and a
    beat-wide burst."""
    c.loop("ew", lr)
    c.wrw(f["dst"] + 4 * (start + off), 4 * lr)


def _survey(j, p0):
    """sp_rows_survey: the resident pass from row p0, as (tiles, most): the
    consecutive row tiles whose lists fit on chip together (each PE row's
    total <= SPARSE_ENTRIES, at most SP_RTILES tiles; 0 when the first
    alone does not fit) and the fullest PE row's total. Counts the bounds of
    every tile taken and of the first refused."""
    g, R, se = j.g, j.R, j.se
    total, tiles, most = np.zeros(R, np.int64), 0, 0
    r0 = p0
    while r0 < g.rows and tiles < j.b.sparse_rtiles:
        vr = min(R, g.rows - r0)
        j.bounds(r0, vr)
        lens = np.zeros(R, np.int64)
        lens[:vr] = j.lens_all[r0:r0 + vr]
        if (total + lens > se).any():
            break
        total += lens
        most = max(most, int(total.max()))
        tiles += 1
        r0 += R
    return tiles, most


def _passes(f, b, index):
    """[(first row, row tiles) of each resident pass, or (first row, 0) for
    a streamed tile] of an instruction on the row-tile path, without
    counting (sparse_passes)."""
    j = _RowJob(f, b, _Count(b), index)
    if j.g.groups != 1:
        return [(r0, 0) for r0 in j.r0s]
    out, p0 = [], 0
    while p0 < j.g.rows:
        tiles, _ = _survey(j, p0)
        out.append((p0, tiles))
        p0 += max(tiles, 1) * j.R
    return out


def sparse_passes(insn, board_, ddr=None, index=None):
    """How the row-tile path walks an instruction's row tiles: a list of
    (first row, tiles) per resident pass (lists loaded once, one window per
    batch tile, row and x tile for all its tiles) or (first row, 0) per
    streamed tile."""
    b, f = _board(board_), validate.fields(insn)
    return _passes(f, b, index_of(insn, ddr, index))


class _RowJob:
    """What the row-tile path's stages share (sp_rows_job_make and
    sp_rows_survey in sconv_rows.cpp): the plan, the index lists, one
    window pass's counters and the row tiles."""

    def __init__(self, f, b, c, index):
        self.f, self.b, self.c = f, b, c
        self.g = g = sparse_plan(f, b)
        self.R, self.se = b.pe_rows, b.sparse_entries
        self.kk = f["k_h"] * f["k_w"]
        self.lay = validate.index_layout(f["c_out"], validate.sparse_cols(f), f["count"])
        self.bias = f["flags"] & Flag.BIAS
        self.nbt = _cdiv(f["n"], b.pe_cols)
        _, self.xcs = _xtiles(g)
        self.passes = self.nbt * g.oh * len(self.xcs)   # (batch tile, row, x tile)
        self.one_pass = _Count(b)
        _window_pass(f, g, b, self.one_pass)
        self.starts, self.lens_all = _lists(f, g, index)
        self.r0s = list(range(0, g.rows, self.R))

    def tiles(self, p0=0, count=None):
        """(r0, valid rows, list starts, list lengths) of `count` row tiles
        from row p0 (default: every tile)."""
        for r0 in self.r0s[p0 // self.R:None if count is None else p0 // self.R + count]:
            vr = min(self.R, self.g.rows - r0)
            yield r0, vr, self.starts[r0:r0 + vr], self.lens_all[r0:r0 + vr]

    def bounds(self, r0, vr):
        """sp_read_bounds: the tile's list pointers (EB: per tap)."""
        f, c = self.f, self.c
        if self.g.eb:
            c.rd(f["aux"] + self.lay["tptr"] + 4 * r0 * self.kk, 4 * (vr * self.kk + 1))
        else:
            c.rd(f["aux"] + self.lay["rowptr"] + 4 * r0, 4 * (vr + 1))

    def bias_grads(self, r0, vr):
        """WG's bias gradients of a tile: a quantize loop and a burst."""
        self.c.loop("ew", vr)
        self.c.wr(self.f["dst2"] + 4 * r0, 4 * vr)


def _sparse_conv(f, b, c, index):
    """sp_rows_unit, the row-tile path: sp_make_plan's tables, then with one
    channel group resident passes (streaming a tile whose lists alone do not
    fit), else every tile streamed."""
    j = _RowJob(f, b, c, index)
    kmax = validate.LIMITS["KERNEL"]
    c.loop("ew", kmax)          # sp_make_plan's tables: k / s, k % s
    c.loop("ew", kmax * kmax)   # and tap -> (ky, kx)
    stream = _sp_stream_wg if j.g.wg else _sp_stream_gather
    p0 = 0
    while p0 < j.g.rows:
        tiles, most = _survey(j, p0) if j.g.groups == 1 else (0, 0)
        if tiles == 0:
            stream(j, *next(j.tiles(p0, 1)))
            p0 += j.R
            continue
        _sp_resident(j, p0, tiles, most)
        p0 += tiles * j.R


def _sp_resident(j, p0, tiles, most):
    """A resident pass over `tiles` row tiles from row p0: sp_res_load (their
    lists), sp_res_sweep (one window for all of them), sp_res_tile per tile,
    sp_res_store (WG)."""
    f, g, c, se = j.f, j.g, j.c, j.se
    for r0, vr, start, lens in j.tiles(p0, tiles):
        j.bounds(r0, vr)
        _entries(f, g, j.lay, start, lens, 0, se, c)
        if not g.wg and j.bias:
            c.rd(f["src3"] + 4 * r0, 4 * vr)
    if g.wg:
        c.loop("ew", most)              # clear_all_taps
    if most > 0:
        c.add(j.one_pass)               # one window for all row tiles
    point = g.oh == 1 and g.ow == 1
    for r0, vr, _, lens in j.tiles(p0, tiles):
        _res_tile(j, r0, vr, int(lens.max()), point)
    if point:
        _point_pass(j, p0, tiles, most)
    if g.wg:
        for r0, vr, start, lens in j.tiles(p0, tiles):
            j.bounds(r0, vr)
            _grads(f, c, start, lens)
            if j.bias:
                j.bias_grads(r0, vr)


def _res_tile(j, r0, vr, longest, point):
    """sp_res_tile over the batch: a tile's steps and its epilogue (FP, EB;
    point layers: the quantization only) or error rows (WG but point)."""
    f, g, c = j.f, j.g, j.c
    if longest > 0:
        c.loop("pe", j.xcs * longest, times=j.nbt * g.oh)
    if not g.wg and point:
        c.loop("ew", vr, times=j.nbt)   # sp_point_quantize
    elif not g.wg:
        _gather_epilogue(f, g, c, r0, vr, 1)
    elif not point and (longest > 0 or j.bias):
        _errors(f, g, c, r0, vr)


def _point_pass(j, p0, tiles, most):
    """A point layer's resident pass: per lane one burst of the pass's rows,
    an element per cycle (sp_point_rd, sp_point_wr): FP/EB the outputs (and
    EB's masks), WG the errors."""
    f, g, c = j.f, j.g, j.c
    at = np.arange(f["n"], dtype=np.int64) * g.rows + p0
    prow = min(g.rows - p0, tiles * j.R)
    W = j.b.ddr_beat
    if g.wg:
        if most > 0 or j.bias:
            c.rd(f["src"] + at, prow, ii=W)
        return
    if g.eb and f["flags"] & Flag.RELU_MASK:
        c.rd(f["src3"] + at, prow, ii=W)
    c.wr(f["dst"] + at, prow, ii=W)


def _sp_stream_gather(j, r0, vr, start, lens):
    """Streamed FP/EB of one row tile (sp_stream_gather): its lists in
    chunks of SPARSE_ENTRIES, a window pass per chunk, the epilogue."""
    f, g, c, se = j.f, j.g, j.c, j.se
    longest = int(lens.max())
    chunks = 1 if longest == 0 else _cdiv(longest, se)
    j.bounds(r0, vr)
    if j.bias:
        c.rd(f["src3"] + 4 * r0, 4 * vr)
    if chunks == 1:
        _entries(f, g, j.lay, start, lens, 0, se, c)
    if longest > 0:
        c.add(j.one_pass)
        reloads = j.passes * g.groups if chunks > 1 else 0
        for k in range(chunks):
            off = k * se
            if reloads:
                _entries(f, g, j.lay, start, lens, off, se, c, times=reloads)
            c.loop("pe", j.xcs * min(se, longest - off), times=j.nbt * g.oh * g.groups)
    _gather_epilogue(f, g, c, r0, vr, 1)


def _sp_stream_wg(j, r0, vr, start, lens):
    """Streamed WG of one row tile (sp_stream_wg): per chunk its entries,
    the errors, a window pass and the gradient store; then the bias."""
    f, g, c, se = j.f, j.g, j.c, j.se
    longest = int(lens.max())
    chunks = 1 if longest == 0 else _cdiv(longest, se)
    j.bounds(r0, vr)
    for k in range(chunks):
        off = k * se
        lenj = 0 if longest <= off else min(se, longest - off)
        if lenj == 0 and not (j.bias and k == 0):
            continue
        if lenj > 0:
            lr = _entries(f, g, j.lay, start, lens, off, se, c)
            c.loop("ew", lenj)   # clear_taps
        _errors(f, g, c, r0, vr)
        if lenj > 0:
            c.add(j.one_pass)
            c.loop("pe", j.xcs * lenj, times=j.nbt * g.oh * g.groups)
            _grads(f, c, start, lr, off)
    if j.bias:
        j.bias_grads(r0, vr)


# ------------------------------------------- sparse, position-parallel path

#: List pointers per burst of the chunking pass (SP_BND, sconv.cpp).
SP_BND = 256


def _spp_inner(addr, n, plane, W):
    """Plane boundaries strictly inside a beat of each burst (spp_count):
    bursts of n bytes at addr, `plane` bytes per plane."""
    addr, n = np.broadcast_arrays(_arr(addr), _arr(n))
    m = int(n.max()) // plane if n.size else 0
    if m < 1:
        return np.zeros(addr.shape, np.int64)
    o = plane * np.arange(1, m + 1, dtype=np.int64)
    inner = ((addr[..., None] + o) % W != 0) & (o < n[..., None])
    return inner.sum(axis=-1)


def _pointers(f, g, index):
    """Every list's first entry and one past its last (rows + 1 values):
    sparse_tiling.list_pointers of the index; an even spread without one."""
    if index is None:
        z = f["count"]
        lens = np.full(g.rows, z // g.rows, np.int64)
        lens[:z % g.rows] += 1
        return np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    return list_pointers(f, index)


def _pos_chunks(f, g, b, c, lay, ptr):
    """Counters of the chunking pass (spp_chunks) and its chunks' first rows
    (and the row count at the end), or None when a list exceeds SP_LIST:
    pieces of at most nmax rows, merged while the merged lists fit SP_LIST
    and the rows SP_OD (one window load per item for all its pieces)."""
    kk = f["k_h"] * f["k_w"]
    step = kk if g.eb else 1
    words = g.rows * step + 1
    at = f["aux"] + (lay["tptr"] if g.eb else lay["rowptr"])
    w0 = np.arange(0, words, SP_BND, dtype=np.int64)
    cnt = np.minimum(SP_BND, words - w0)
    c.rd(at + 4 * w0, 4 * cnt)
    c.loop("ew", cnt)
    L, OD = b.sparse_list, b.sparse_odepth
    ok, starts = True, []
    first = prev = mfirst = int(ptr[0])
    nr = row = mrow = 0
    for r in range(g.rows):
        v = int(ptr[r + 1])
        if v - prev > L:
            ok = False
        if nr > 0 and (nr == g.nmax or v - first > L):
            # a piece of at most nmax rows ends: merged into the chunk if both fit
            if prev - mfirst > L or row - mrow > OD:
                starts.append(mrow)
                mrow, mfirst = row - nr, first
            first, nr = prev, 0
        nr += 1
        row += 1
        prev = v
    if prev - mfirst > L or row - mrow > OD:
        starts.append(mrow)
        mrow = row - nr
    starts += [mrow, row]
    return starts if ok else None


def _pos_gathers(f, b):
    """Whether SCONV_EB gathers its values (a one-byte read an entry, issued
    by the list decode) rather than scanning the values array: past SPP_SCAN
    blocks of SP_VALS bytes (sconv.cpp spp_lists)."""
    return f["count"] > _hls_macro(b.name, "SPP_SCAN") * _hls_macro(b.name, "SP_VALS")


def _pos_value_scan(f, b, c, cnt):
    """Counters of EB's value scan for a chunk of cnt entries
    (spp_value_scan): the values array in SP_VALS-byte blocks, each looked
    up by every entry."""
    L, z = _hls_macro(b.name, "SP_VALS"), f["count"]
    v0 = np.arange(0, z, L, dtype=np.int64)
    c.rdw(f["src2"] + v0, np.minimum(L, z - v0))
    c.loop("ew", np.full(v0.size, cnt, np.int64))


def _pos_items(g, n, P):
    """The items of spp_unit (k: item, b0/nbi: its images, y0/bri: its band
    rows, lo/hi: the source rows its window reads, top: the slot's last row,
    T: its tiles of P positions) and their (item, image) pairs ii, jj."""
    if g.tb:
        # per group of nbt images: each image's bands, then the group's tail item
        g0 = np.arange(0, n, g.nbt, dtype=np.int64)
        ng = np.minimum(g.nbt, n - g0)
        per = ng * g.bands + 1
        k = np.arange(int(per.sum()), dtype=np.int64)
        grp = np.repeat(np.arange(g0.size, dtype=np.int64), per)
        r = k - np.repeat(np.cumsum(per) - per, per)
        tl = r == ng[grp] * g.bands
        b0 = np.where(tl, g0[grp], g0[grp] + r // g.bands)
        nbi = np.where(tl, ng[grp], 1)
        y0 = np.where(tl, g.bands * g.br, r % g.bands * g.br)
        bri = np.where(tl, g.tb, g.br)
    else:
        k = np.arange(_cdiv(n, g.nb) * g.bands, dtype=np.int64)
        b0 = k // g.bands * g.nb
        nbi = np.minimum(g.nb, n - b0)
        y0 = k % g.bands * g.br
        bri = np.minimum(g.br, g.oh - y0)
    top = y0 + bri + g.kh - 1 - g.ey
    # its tiles: up to its last image's last output position (spp_item_of)
    qimg = np.where(tl, g.qimgt, g.qimg) if g.tb else g.qimg
    T = -(-((nbi - 1) * qimg + (bri - 1) * g.pw + g.ow) // P)
    ii = np.repeat(k, nbi)
    jj = np.arange(ii.size, dtype=np.int64) - np.repeat(np.cumsum(nbi) - nbi, nbi)
    return SimpleNamespace(k=k, b0=b0, nbi=nbi, y0=y0, bri=bri, T=T, lo=np.maximum(y0 - g.ey, 0),
                           hi=np.minimum(top, g.sh), top=top, ii=ii, jj=jj)


def _pos_window(g, b, load, it, S, wsrc, wwords, df):
    """A chunk's window loads (spp_load_window): an item's with its first
    sub-chunk (pair k * S), zeroed again only for a band with padding rows;
    DATAFLOW (df): zeroed and loaded by every pair (the channel's buffers
    alternate)."""
    splane = g.sh * g.sw
    subs = np.arange(S if df else 1, dtype=np.int64)
    if df:
        load.loop("ew", it.k * S + subs[:, None], wwords)
    elif (g.ey > 0 or g.ex > 0) and g.banded:
        edge = (it.lo + g.ey > it.y0) | (it.hi < it.top)
        load.loop("ew", it.k[edge] * S, wwords)
    ii, jj = it.ii, it.jj
    live = it.hi > it.lo
    whole = (live & (((it.lo == 0) & (it.hi == g.sh)) | g.span))[ii]   # one burst per image
    wat = wsrc + (it.b0[ii] + jj)[whole] * g.red * splane
    for s_ in subs:
        load.burst("rd", ii[whole] * S + s_, wat, g.red * splane, g.lii,
                   _spp_inner(wat, g.red * splane, splane, b.ddr_beat))
    part = (live[ii] & ~whole)
    pi, pj = ii[part], jj[part]
    ch = np.arange(g.red, dtype=np.int64)[None, :]
    at = wsrc + (((it.b0[pi] + pj)[:, None] * g.red + ch) * g.sh + it.lo[pi][:, None]) * g.sw
    for s_ in subs:
        load.burst("rd", np.repeat(pi * S + s_, g.red), at.ravel(),
                   np.repeat((it.hi[pi] - it.lo[pi]) * g.sw, g.red), g.lii)


def _joins(a, n, r, rows, fb, lb, W):
    """Held and joined partial beats of written pieces (agu.h agu_edge_first,
    agu_edge_last, ddr_put_edge): piece of `n` bytes at `a`, row r of a set
    of `rows`, in its first / last band (fb, lb). A band's partial first
    beat joins the tail its previous band held; band 0's is held for the
    row above's last band (not on the set's first row); a partial last beat
    is held for the next band; the last band's joins the row below's head
    (not on the set's last row); none for an empty piece."""
    sp, ep = (n > 0) & ((a % W) != 0), (n > 0) & (((a + n) % W) != 0)
    held = (sp & fb & (r > 0)).astype(np.int64) + (ep & ~lb)
    joined = (sp & ~fb).astype(np.int64) + (ep & lb & (r + 1 < rows))
    return held, joined


def _pos_rows_io(g, b, it, pr, items_, ch_, base):
    """Bursts of a chunk's rows on the swept plane (spp_rows_rd / spp_rows_wr)
    for every pair: pr the pairs (pk item, pi0/pnr rows, q rows per
    sub-chunk, ra the chunk's first row)."""
    oplane = g.oh * g.ow
    pp = np.repeat(np.arange(pr.pk.size, dtype=np.int64), it.nbi[pr.pk])
    pjj = np.arange(pp.size, dtype=np.int64) - np.repeat(np.cumsum(it.nbi[pr.pk]) - it.nbi[pr.pk],
                                                        it.nbi[pr.pk])
    img = (it.b0[pr.pk[pp]] + pjj) * g.rows + pr.ra + pr.pi0[pp]
    nrr = pr.pnr[pp]
    if not g.banded or (ch_ == "rd" and g.rspan):
        at = base + img * oplane
        items_.burst(ch_, pp, at, nrr * oplane, g.sii, _spp_inner(at, nrr * oplane, oplane, b.ddr_beat))
        return
    i = np.arange(pr.q, dtype=np.int64)[None, :]
    inside = i < nrr[:, None]
    y0, bri = it.y0[pr.pk[pp]][:, None], it.bri[pr.pk[pp]][:, None]
    a = base + (img[:, None] + i) * oplane + y0 * g.ow
    n = np.broadcast_to(bri * g.ow, a.shape)
    held = joined = 0
    W = b.ddr_beat
    if ch_ == "wr" and g.join:
        # spp_rows_wr's joins, the chunk's rows the set
        held, joined = _joins(a, n, pr.pi0[pp][:, None] + i, pr.nr, y0 == 0, y0 + bri == g.oh, W)
        held, joined = held[inside], joined[inside]
    items_.burst(ch_, np.broadcast_to(pp[:, None], a.shape)[inside], a[inside], n[inside], g.sii,
                 held=held, joined=joined)


def _pos_conv(f, g, b, c, lay, ptr, bounds):
    """Counters of the position-parallel path (spp_unit)."""
    P, OD = b.macs, b.sparse_odepth
    kk = f["k_h"] * f["k_w"]
    bias = bool(f["flags"] & Flag.BIAS)
    mask = g.eb and bool(f["flags"] & Flag.RELU_MASK)
    wsrc = f["src2"] if g.wg else f["src"]
    c.loop("ew", kk)                    # spp_taps
    c.loop("ew", _hls_macro(b.name, "SP_Q"))   # spp_positions: the drain lanes' first positions
    it = _pos_items(g, f["n"], P)
    wwords = _cdiv(g.red * g.cs + g.tail, P)
    df = bool(b.sparse_dataflow)   # spp_pairs: every pair zeroes and loads its own buffers
    if (g.ey > 0 or g.ex > 0) and not df:   # both window copies zeroed once
        c.loop("ew", wwords, 2)
    if g.wg and not df:     # both error copies zeroed once
        c.loop("ew", OD, 2)
    tp, pair = sparse_tiling.step_pairs(sparse_tiling.unit(b.name), g.wg)   # tiles, kept weights a step
    for ci in range(len(bounds) - 1):
        ra, nr = bounds[ci], bounds[ci + 1] - bounds[ci]
        z0 = int(ptr[ra])
        lens = np.diff(ptr[ra:ra + nr + 1])
        cnt = int(lens.sum())
        _pos_lists(f, g, b, c, lay, ra, nr, z0, lens)
        # sub-chunks: S of q rows (the last fewer), their steps
        S = _cdiv(nr, g.nmax)
        q = _cdiv(nr, S)
        sg = _pos_steps(g, b, lens, q, pair, tp, bias and g.wg)
        _pos_chunk_begin(f, g, c, ra, nr, cnt, bias)
        # (item, sub-chunk) pairs, item-major: pk item, ps sub-chunk, rows [pi0, pi0 + pnr)
        NP = it.k.size * S
        ps = np.tile(np.arange(S, dtype=np.int64), it.k.size)
        pr = SimpleNamespace(pk=np.repeat(it.k, S), pi0=ps * q, q=q, ra=ra, nr=nr)
        pr.pnr = np.minimum(q, nr - pr.pi0)
        load, comp, store = _Items(b, NP), _Items(b, NP), _Items(b, NP)
        _pos_window(g, b, load, it, S, wsrc, wwords, df)
        pairs = np.arange(NP, dtype=np.int64)
        if g.wg:
            # junk positions hold 0: zeroed where other items load (DATAFLOW: every pair)
            short = pairs if df or g.tb else pairs[((it.nbi < g.nb) | (it.bri < g.br))[pr.pk]]
            load.loop("ew", short, pr.pnr[short] * g.T)
            _pos_rows_io(g, b, it, pr, load, "rd", f["src"])
        elif mask:
            if df:
                load.loop("ew", pairs, pr.pnr * g.T)
            _pos_rows_io(g, b, it, pr, load, "rd", f["src3"])
        comp.loop("pe", pairs, _pair_steps(g, b, it.T[pr.pk], sg[ps], pr.pnr, tp))
        if not g.wg:
            _pos_rows_io(g, b, it, pr, store, "wr", f["dst"])
        _pipeline(c, load, comp, store, built=df)
        if g.wg:
            _pos_wg_store(f, c, ra, nr, z0, cnt, bias)


def _pos_steps(g, b, lens, q, pair, tp, bias=False):
    """PE steps a tile (a group of tiles) of each sub-chunk of q rows
    (spp_unit's stot, spp_total): WG ceil(len / pair) a row (an empty row
    one masked step, unless `bias`), with `bias` one more (the row's bias
    step, the errors' sum); FP, EB per row max(ceil(len / pair), drain),
    the drain what the SP_Q quantizers take for the previous group
    (spp_group_steps: SP_QD a tile, the pair's extra step one of them;
    where the instruction pairs tiles, tp = 2, any group may follow a
    pair)."""
    starts = np.arange(0, len(lens), q)
    steps = -(-lens // pair)
    if g.wg:
        steps = steps + 1 if bias else np.maximum(steps, 1)
        return np.add.reduceat(steps, starts)
    qd = _hls_macro(b.name, "SP_QD")
    drain = 2 * qd - 1 if _pairs_tiles(g, tp) else qd
    return np.add.reduceat(np.maximum(np.maximum(steps, 1), drain), starts)


def _pairs_tiles(g, tp):
    """spp_pairs_tiles: the instruction pairs tiles (tp = 2 on a packing
    board, T >= 2)."""
    return tp == 2 and g.T >= 2


def _pair_steps(g, b, T, sg, nr, tp):
    """PE steps of pairs (spp_pair_steps) of items of T tiles, their
    sub-chunks' steps a tile sg and rows nr: WG T x sg; FP, EB per group of
    tiles (tp, a pair, or one) sg, a pair's extra step per row, and after
    the last row the last group's drain (a pair where T is even)."""
    if g.wg:
        return T * sg
    qd = _hls_macro(b.name, "SP_QD")
    tail = np.where(_pairs_tiles(g, tp) & (T % 2 == 0), 2 * qd - 1, qd)
    return -(-T // tp) * sg + nr * (T // tp) * (tp - 1) + tail


def _pos_lists(f, g, b, c, lay, ra, nr, z0, lens):
    """A chunk's lists decoded once (spp_lists): FP, WG one burst each of
    rowptr, col and (FP) vals, SPP_DL entries decoded a cycle; EB per input
    channel its column pointers, one burst each of trow and tpos, the values
    gathered by the decode (_pos_gathers) or scanned (_pos_value_scan)."""
    kk = f["k_h"] * f["k_w"]
    cnt = int(lens.sum())
    if not g.eb:
        c.rd(f["aux"] + lay["rowptr"] + 4 * ra, 4 * (nr + 1))
        if not g.wg:
            c.rdw(f["src2"] + z0, cnt)
        c.rdw(f["aux"] + lay["col"] + 2 * z0, 2 * cnt)
        c.loop("ew", _cdiv(cnt, _hls_macro(b.name, "SPP_DL")))   # SPP_DL entries a cycle
        return
    tp = f["aux"] + lay["tptr"]
    c.rd(tp + 4 * (ra + nr) * kk, 4)
    c.rd(tp + 4 * ra * kk, 4)
    c.rdw(f["aux"] + lay["trow"] + 2 * z0, 2 * cnt)
    c.rdw(f["aux"] + lay["tpos"] + 4 * z0, 4 * cnt)
    c.rd(tp + 4 * np.arange(ra, ra + nr, dtype=np.int64) * kk, 4 * (kk + 1))
    # each nonempty channel's column starts into registers (sp_tap_starts), then its decode
    c.loop("ew", np.where(np.asarray(lens) > 0, kk - 1, 0))
    if _pos_gathers(f, b):   # the decode issues a gather an entry: at their rate, its fill
        c.fill("ew", lens)
        c.gather(cnt)
        return
    c.loop("ew", lens)
    _pos_value_scan(f, b, c, cnt)


def _pos_chunk_begin(f, g, c, ra, nr, cnt, bias):
    """Before a chunk's items: FP/EB read its rows' biases; WG clears its
    gradient accumulators (and bias sums)."""
    if not g.wg and bias:
        c.rd(f["src3"] + 4 * ra, 4 * nr)
        c.loop("ew", nr)
    if g.wg:
        c.loop("ew", cnt)
        if bias:
            c.loop("ew", nr)


def _pos_wg_store(f, c, ra, nr, z0, cnt, bias):
    """WG after a chunk's items: the kept gradients quantized and written a
    beat per cycle, then the bias gradients."""
    c.loop("ew", cnt)
    c.wrw(f["dst"] + 4 * z0, 4 * cnt)
    if bias:
        c.loop("ew", nr)
        c.wr(f["dst2"] + 4 * ra, 4 * nr)


def _sparse_unit(f, b, c, index):
    """sconv_unit: the row-tile path for rows_first instructions, else the
    position-parallel path when the instruction fits it, else the row-tile
    path (_sparse_conv). A board built without the row-tile path
    (sparse_tiling.unit(b).rows false) refuses what that path would run
    (FAULT_TILE, sparse_tiling.refused): no cycles to count, a ValueError."""
    g = None if rows_first(f) else pos_plan(f, b)
    if g is not None:
        lay = validate.index_layout(f["c_out"], validate.sparse_cols(f), f["count"])
        ptr = _pointers(f, g, index)
        bounds = _pos_chunks(f, g, b, c, lay, ptr)
        if bounds is not None:
            _pos_conv(f, g, b, c, lay, ptr, bounds)
            return
    if not sparse_tiling.unit(b).rows:
        raise ValueError(f"{Op(f['op']).name} on {b.name}: its sparse unit has no row-tile path and the "
                         f"position-parallel path does not take this instruction (FAULT_TILE)")
    _sparse_conv(f, b, c, index)


def pos_chunks(insn, board_, ddr=None, index=None):
    """(PosPlan, chunk bounds) of a sparse instruction on the position-parallel
    path (each chunk's rows run as ceil(rows / nmax) sub-chunks), or None
    when it runs on the row-tile path."""
    b, f = _board(board_), validate.fields(insn)
    g = None if rows_first(f) else pos_plan(f, b)
    if g is None:
        return None
    lay = validate.index_layout(f["c_out"], validate.sparse_cols(f), f["count"])
    bounds = _pos_chunks(f, g, b, _Count(b), lay, _pointers(f, g, index_of(insn, ddr, index)))
    return None if bounds is None else (g, bounds)


def _index_check(f, b, c):
    """FAULT_INDEX pass of validation: every entry, CTRAIN_CHUNK per
    beat-wide burst, pointers W/4 and the other parts W/2 entries checked
    per cycle (fetch.cpp check_index)."""
    rows, cols, z, K = f["c_out"], validate.sparse_cols(f), f["count"], b.chunk
    lay = validate.index_layout(rows, cols, z)
    W = b.ddr_beat
    for part, count, size, lanes in (("rowptr", rows + 1, 4, W // 4), ("col", z, 2, W // 2),
                                     ("tptr", cols + 1, 4, W // 4), ("tpos", z, 4, W // 2),
                                     ("trow", z, 2, W // 2)):
        i0, ln = c.chunks(count, K)
        c.rdw(f["aux"] + lay[part] + size * i0, size * ln)
        c.loop("ew", -(-ln // lanes))   # checked `lanes` entries per cycle


# ---------------------------------------------------------------- public API

def index_of(insn, ddr=None, index=None):
    """The (rowptr, col, tptr, tpos, trow) a sparse instruction reads: given,
    or read from a DDR image, or None."""
    if index is not None or ddr is None:
        return index
    return validate.index_arrays(ddr, validate.fields(insn))


def iterations(insn, board_, ddr=None, index=None, table_len=0, insn_addr=0, table_addr=0):
    """Iters of one instruction that runs to completion (or a HALT), exactly as
    the C-sim counts it: its fetch (from byte `insn_addr`), validation,
    execution and statistics record; `table_len` > 0 adds the parameter-table
    load of instruction 0 (from `table_addr`). Sparse instructions read their
    index arrays from `index` or `ddr`."""
    b, f = _board(board_), validate.fields(insn)
    c = _Count(b)
    c.rd(insn_addr, INSN_BYTES, ii=1)   # fetch into registers
    if table_len:
        c.rd(table_addr, 4 * table_len)
    op = f["op"]
    if op == Op.HALT:
        return c.iters()
    if op in validate.CONV_OPS:
        _dense_conv(f, b, c)
    elif op in validate.SPARSE_OPS:
        _index_check(f, b, c)
        _sparse_unit(f, b, c, index_of(insn, ddr, index))
    elif op == Op.ADD or op in validate.AVG_OPS:
        _graph_ops(f, b, c)
    else:
        _elementwise(f, b, c)
    c.wr(f["stats"], STATS_BYTES, ii=1)  # the record is registers
    return c.iters()


def breakdown(it, board_):
    """Cycles of counters `it` per part, as the code spends them one after
    another (docs/overlay.md "Performance model"): dict of
    pe       PE steps at II=1 plus one PE pipeline fill per loop entry
    ew       element-wise iterations plus one fill per entry
    rd, wr   per AXI channel: each burst its latency and the AGU loop's fill,
             the beats at the AGU's II (or the DDR's rate if slower)
    gather   SCONV_EB's one-byte reads: latency over the requests outstanding
    merge    a write's partial beats: each a one-beat read round trip (the
             read-merge of ddr_put in synthesis), serial
    insn     the fixed per-instruction cycles
    hidden   minus the cycles the built overlap hides (Iters.hidden; the
             hand-pipelined regions' Iters.planned is not taken off)."""
    b = _board(board_)
    rd0, rd1, wr0, wr1 = _channels(it._asdict(), b)
    return dict(pe=it.pe + it.pe_in * b.pe_depth,
                ew=it.ew + it.ew_in * EW_DEPTH,
                rd=int(rd0 + rd1), wr=int(wr0 + wr1),   # the ports one after another
                gather=it.gathers * _cdiv(b.rd_latency, b.outstanding),
                merge=it.wr_merges * (b.rd_latency + AGU_DEPTH),
                insn=b.insn_cycles,
                hidden=-it.hidden)


def _channel(b, beats, bursts, agu, latency):
    """One AXI channel of one port: each burst its latency and the AGU
    loop's fill, the beats at the AGU's II or the DDR's rate if slower."""
    ddr = np.where(beats > 0, np.ceil(beats * b.ddr_beat / b.bytes_per_cycle), 0).astype(np.int64)
    return bursts * (latency + AGU_DEPTH) + np.maximum(agu, ddr)


def _ddr_total(b, beats):
    """Cycles the DDR itself needs for `beats` beats of every port together."""
    return np.where(beats > 0, np.ceil(beats * b.ddr_beat / b.ddr_bytes_per_cycle),
                    0).astype(np.int64)


def _channels(v, b):
    """(read 0, read 1, write 0, write 1): each data port's channels without
    gathers and merges; port 1's counts are the rd1_* / wr1_* fields, port
    0's the totals less them (v: Iters fields, scalars or arrays)."""
    g = v["gathers"]
    return (_channel(b, v["rd_beats"] - g - v["rd1_beats"], v["rd_bursts"] - v["rd1_bursts"],
                     v["rd_agu"] - v["rd1_agu"], b.rd_latency),
            _channel(b, v["rd1_beats"], v["rd1_bursts"], v["rd1_agu"], b.rd_latency),
            _channel(b, v["wr_beats"] - v["wr1_beats"], v["wr_bursts"] - v["wr1_bursts"],
                     v["wr_agu"] - v["wr1_agu"], b.wr_latency),
            _channel(b, v["wr1_beats"], v["wr1_bursts"], v["wr1_agu"], b.wr_latency))


@dataclass
class _StageCost:
    """A stage of a dataflow region (csim_api.cpp stage_cost): `serial` its
    parts one after another (what the counters sum), `time` as the code
    runs it, its data ports concurrent (each direction the longer port, at
    least the DDR's own time for both ports' beats); per port `rd` (reads,
    gathers, merge reads) and `wr`; `beats` of both ports and directions."""
    serial: object
    time: object
    rd: tuple
    wr: tuple
    beats: object


def _costs(v, b):
    compute = v["pe"] + v["pe_in"] * b.pe_depth + v["ew"] + v["ew_in"] * EW_DEPTH
    rd0, rd1, wr0, wr1 = _channels(v, b)
    merge = b.rd_latency + AGU_DEPTH
    rd0 = rd0 + v["gathers"] * _cdiv(b.rd_latency, b.outstanding) + \
        (v["wr_merges"] - v["wr1_merges"]) * merge
    rd1 = rd1 + v["wr1_merges"] * merge
    rb, wb = v["rd_beats"] - v["gathers"], v["wr_beats"]
    return _StageCost(
        serial=compute + rd0 + rd1 + wr0 + wr1,
        time=compute + np.maximum.reduce([rd0, rd1, _ddr_total(b, rb)])
        + np.maximum.reduce([wr0, wr1, _ddr_total(b, wb)]),
        rd=(rd0, rd1), wr=(wr0, wr1), beats=rb + wb)


def _span(b, longest, rd, wr, beats):
    """A region's time (csim_api.cpp ctrain_region_end): its longest stage,
    each port's read and write channel over the stages, the DDR's own time
    for every beat of the region."""
    return np.maximum.reduce([longest, rd[0], rd[1], wr[0], wr[1], _ddr_total(b, beats)])


def _stage_cost(it, b):
    """_StageCost of one stage of a dataflow region (plain ints):
    breakdown's terms but the fixed instruction cycles."""
    c = _costs(it._asdict(), b)
    return _StageCost(int(c.serial), int(c.time), tuple(int(x) for x in c.rd),
                      tuple(int(x) for x in c.wr), int(c.beats))


def cycles_of(it, board_):
    """(cycles, compute, memory) of counters `it` (see breakdown): compute =
    PE and element-wise loops, memory = both AXI channels, gathers, merges,
    cycles = their sum plus the per-instruction overhead, less what dataflow
    regions hide (phases outside a region run one after another)."""
    d = breakdown(it, board_)
    compute, memory = d["pe"] + d["ew"], d["rd"] + d["wr"] + d["gather"] + d["merge"]
    return compute + memory + d["insn"] + d["hidden"], compute, memory


def cycles(insn, board_, ddr=None, index=None):
    """Modeled clock cycles of one instruction (see cycles_of)."""
    return cycles_of(iterations(insn, board_, ddr, index), board_)[0]


def ops(insn, ddr=None, index=None):
    """(operations done, dense-equivalent operations) of an instruction: 2 per
    multiply-accumulate for convolutions (a sparse one does n*h_out*w_out per
    kept weight, its dense equivalent per weight), 1 per element otherwise."""
    f = validate.fields(insn)
    op = f["op"]
    if op in validate.CONV_OPS or op in validate.SPARSE_OPS:
        pos = f["n"] * f["h_out"] * f["w_out"]
        dense = 2 * pos * f["c_out"] * validate.sparse_cols(f)
        return (2 * pos * f["count"] if op in validate.SPARSE_OPS else dense), dense
    if op in (Op.UPDATE, Op.RELU_FP, Op.RELU_BP, Op.ADD):
        return f["count"], f["count"]
    if op in validate.AVG_OPS:   # one add per window element, one scaling per output
        e = f["n"] * f["c_in"] * f["h_out"] * f["w_out"] * (f["k_h"] * f["k_w"] + 1)
        return e, e
    if op in validate.BN_OPS or op in validate.POOL_OPS:
        e = f["n"] * f["c_in"] * f["h_out"] * f["w_out"]
        return e, e
    return 0, 0


PHASES = {Op.CONV_FP: "FP", Op.SCONV_FP: "FP", Op.POOL_FP: "FP", Op.RELU_FP: "FP",
          Op.BN_FP: "FP", Op.CONV_EB: "EB", Op.SCONV_EB: "EB", Op.POOL_BP: "EB",
          Op.RELU_BP: "EB", Op.BN_BP: "EB", Op.CONV_WG: "WG", Op.SCONV_WG: "WG",
          Op.ADD: "FP", Op.AVGPOOL_FP: "FP", Op.AVGPOOL_BP: "EB",
          Op.UPDATE: "UPDATE"}
