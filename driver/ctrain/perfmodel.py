"""Performance model of the accelerator (docs/overlay.md "Performance model").

Two levels:

- `iterations(insn, board)` reproduces, exactly, the per-instruction counters
  the C-sim build of the HLS sources keeps (`CsimEngine.last_iters()`): PE
  steps, element-wise steps, DDR bytes read and written, and DDR bursts. The
  formulas follow the loop nests of overlay/hls; tests/test_perfmodel.py checks
  them against the C-sim on every opcode and several boards. Sparse
  instructions depend on how the kept weights spread over the rows of a PE
  tile, so they take the index arrays (or a DDR image holding them); without
  them the kept weights are assumed spread evenly.
- `cycles(insn, board)` turns the counters into clock cycles: the pipelined
  loops (II=1) against the DDR transfer time at the board's bandwidth, the
  larger of the two (the bound with loads overlapping compute), plus fixed
  overheads per burst and per instruction. `report(program, board)` sums it
  per layer and phase with time, GOP/s and equivalent GOP/s (pruned work
  counted as done).

Board parameters of the PE array and buffers come from the same config headers
the HLS build uses (overlay/hls/config/<board>.h); the DDR figures are the
boards' data sheets.
"""
import math
import os
import re
from collections import OrderedDict, namedtuple
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import validate
from .isa import INSN_BYTES, STATS_BYTES, Flag, Op

#: Counters of one instruction (ctrain_iters_t; CsimEngine.last_iters()).
Iters = namedtuple("Iters", "pe ew rd wr bursts")

#: DDR of each board: peak GB/s of the memory the PS gives the accelerator's
#: HP port (bus width x transfer rate).
DDR_GBPS = {
    "pynq_z2": 4.264,   # DDR3-1066, 32 bit
    "ultra96": 8.533,   # LPDDR4-2133, 32 bit (Ultra96-V2)
    "zcu104": 19.2,     # DDR4-2400, 64 bit
    "zcu102": 17.064,   # DDR4-2133, 64 bit (PS DIMM)
}
#: Cycles a DDR burst costs beyond its beats: AXI address phase and the burst
#: loop's entry and pipeline fill (latency itself is hidden by outstanding
#: requests). An assumption to calibrate on a board.
BURST_CYCLES = 4
#: Fixed cycles per instruction: fetch latency, decode and validation, the
#: units' start-up and the statistics record's write response.
INSN_CYCLES = 120
BOARDS = ("pynq_z2", "ultra96", "zcu104", "zcu102")


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
    ddr_beat: int         # bytes per beat of the accelerator's m_axi port
    ddr_gbps: float       # the board's DDR peak bandwidth
    burst_cycles: int = BURST_CYCLES
    insn_cycles: int = INSN_CYCLES

    @property
    def bytes_per_cycle(self):
        """DDR bytes per accelerator cycle: the port's beat, unless the DDR
        itself delivers less at this clock."""
        return min(float(self.ddr_beat), self.ddr_gbps * 1e3 / self.clock_mhz)

    @property
    def macs(self):
        return self.pe_rows * self.pe_cols


def _config_dir():
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (os.path.join(os.path.dirname(os.path.dirname(here)), "overlay", "hls", "config"),
                 os.path.join(here, "overlay_src", "hls", "config")):
        if os.path.isdir(cand):
            return cand
    raise FileNotFoundError("overlay/hls/config not found (repo checkout or ctrain/overlay_src)")


_DEFINE = re.compile(r"#define\s+CTRAIN_(\w+)\s+(\"[^\"]*\"|\S+)")


@lru_cache(maxsize=None)
def board(name):
    """The Board of a configuration header overlay/hls/config/<name>.h."""
    if name not in DDR_GBPS:
        raise ValueError(f"unknown board {name!r}; choose one of {', '.join(BOARDS)}")
    with open(os.path.join(_config_dir(), f"{name}.h"), encoding="utf-8") as fh:
        d = {k: v.strip('"') for k, v in _DEFINE.findall(fh.read())}
    return Board(name=name, part=d["PART"], clock_mhz=float(d["CLOCK_MHZ"]),
                 pe_rows=int(d["PE_ROWS"]), pe_cols=int(d["PE_COLS"]), chunk=int(d["CHUNK"]),
                 sparse_entries=int(d["SPARSE_ENTRIES"]), sparse_win=int(d["SPARSE_WIN"]),
                 sparse_xt=int(d["SPARSE_XT"]), ddr_beat=int(d.get("DDR_BEAT", 1)),
                 ddr_gbps=DDR_GBPS[name])


def _board(b):
    return board(b) if isinstance(b, str) else b


def _cdiv(a, b):
    return -(-a // b)


class _Count:
    """Mutable counters while a formula walks the loop nest."""

    def __init__(self):
        self.pe = self.ew = self.rd = self.wr = self.bursts = 0

    def burst(self, rd=0, wr=0, n=1):
        self.rd += rd
        self.wr += wr
        self.bursts += n

    def add(self, other, times=1):
        for k in Iters._fields:
            setattr(self, k, getattr(self, k) + times * getattr(other, k))

    def iters(self):
        return Iters(self.pe, self.ew, self.rd, self.wr, self.bursts)


# ---------------------------------------------------------------- dense ops

def _taps(f):
    """T: (output row, ky) pairs whose input row lies inside the input."""
    s, p, hi = f["stride"], f["pad"], f["h_in"]
    return sum(1 for y in range(f["h_out"]) for ky in range(f["k_h"])
               if 0 <= y * s + ky - p < hi)


def _dense_conv(f, b, c):
    op, n, ci, co = f["op"], f["n"], f["c_in"], f["c_out"]
    hi, wi, ho, wo, kh, kw = (f[k] for k in ("h_in", "w_in", "h_out", "w_out", "k_h", "k_w"))
    kk, bias, mask = kh * kw, f["flags"] & Flag.BIAS, f["flags"] & Flag.RELU_MASK
    R, C, T = b.pe_rows, b.pe_cols, _taps(f)
    if op in (Op.CONV_FP, Op.CONV_EB):
        eb = op == Op.CONV_EB
        out_c, red_c = (ci, co) if eb else (co, ci)
        oh, ow, iw = (hi, wi, wo) if eb else (ho, wo, wi)
        rt, ct = _cdiv(out_c, R), _cdiv(red_c, C)
        c.pe += rt * ct * n * T * kw * wo
        c.ew += rt * n * oh * ow + n * out_c * oh * ow
        c.burst(rd=n * oh * co * ci * kk, n=n * oh * co * ci)       # weights per output row
        c.burst(rd=rt * n * T * red_c * iw, n=rt * n * T * red_c)   # column lines
        if bias:
            c.burst(rd=4 * co, n=rt)
        if mask:
            c.burst(rd=n * ci * hi * wi, n=n * ci * hi)
        c.burst(wr=n * out_c * oh * ow, n=n * out_c * oh)
        return
    rt, ct = _cdiv(co, R), _cdiv(ci, C)   # CONV_WG
    c.pe += rt * ct * n * T * kw * wo
    c.ew += rt * ct * kk + co * ci * kk + (co if bias else 0)
    c.burst(rd=ct * n * ho * co * wo, n=ct * n * ho * co)
    c.burst(rd=rt * n * T * ci * wi, n=rt * n * T * ci)
    c.burst(wr=4 * co * ci * kk, n=co * ci)
    if bias:
        c.burst(wr=4 * co, n=rt)


def _elementwise(f, b, c):
    op, K = f["op"], b.chunk
    if op == Op.UPDATE:
        cnt, cw = f["count"], f["count_w"]
        c.ew += cnt
        c.burst(rd=12 * cnt + cw, wr=8 * cnt + cw, n=5 * _cdiv(cnt, K) + 2 * _cdiv(cw, K))
    elif op in (Op.RELU_FP, Op.RELU_BP):
        cnt, m = f["count"], 2 if op == Op.RELU_BP else 1
        c.ew += cnt
        c.burst(rd=m * cnt, wr=cnt, n=(m + 1) * _cdiv(cnt, K))
    elif op in validate.POOL_OPS:
        P, hi, wi, ho, wo, kh, kw = (f["n"] * f["c_in"], f["h_in"], f["w_in"], f["h_out"],
                                     f["w_out"], f["k_h"], f["k_w"])
        if op == Op.POOL_FP:
            c.ew += P * ho * kh * kw * wo
            c.burst(rd=P * ho * kh * wi, wr=P * ho * wo, n=P * ho * (kh + 1))
        else:
            c.ew += wi + P * (ho * (2 * kh * kw * wo + wo) + hi * wi)
            c.burst(rd=P * ho * (kh * wi + wo), wr=P * hi * wi, n=P * (ho * (kh + 1) + hi))
    elif op in validate.BN_OPS:
        ch, total = f["c_in"], f["n"] * f["c_in"] * f["h_in"] * f["w_in"]
        chunks = _cdiv(total, K)
        c.burst(rd=4 * ch)                           # A
        c.ew += total
        c.burst(rd=total, wr=total, n=2 * chunks)   # the tensor in, the result out
        if op == Op.BN_FP:
            c.burst(rd=4 * ch)                       # B, shifted once per channel
            c.ew += ch
        elif f["flags"] & Flag.RELU_MASK:
            c.burst(rd=total, n=chunks)


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


def sparse_plan(f, b):
    """The sparse unit's tiling of an instruction (sp_make_plan in sconv.cpp)."""
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
    return _Plan(eb, wg, rows, red, oh, ow, wh, ww, xn, cg, _cdiv(red, cg), (xn - 1) * s + kw)


def _paired(eb, v, k, s, p, lim):
    if not eb:
        u = v * s + k - p
        return u if 0 <= u < lim else -1
    t = v + p - k
    return t // s if t >= 0 and t % s == 0 and t // s < lim else -1


def _window_traffic(f, g):
    """(bytes, bursts) of loading every window once over all swept rows and x
    tiles, for one lane and one channel (bursts: per channel group when the
    planes are 1x1), as sp_load_window does."""
    s, p, kh, kw = f["stride"], f["pad"], f["k_h"], f["k_w"]
    nvk = [sum(1 for ky in range(kh) if _paired(g.eb, y, ky, s, p, g.wh) >= 0)
           for y in range(g.oh)]
    rows_total, rows_any = sum(nvk), sum(1 for v in nvk if v)
    nbytes = bursts = 0
    for x0 in range(0, g.ow, g.xn):
        xc = min(g.xn, g.ow - x0)
        if not g.eb:
            base, hi = x0 * s - p, (x0 + xc - 1) * s - p + kw
        else:
            base, hi = -((-(x0 + p - kw + 1)) // s), (x0 + xc - 1 + p) // s + 1
        lo, hi = max(base, 0), min(hi, g.ww)
        if hi <= lo:
            continue
        nbytes += rows_total * (hi - lo)
        whole = lo == 0 and hi == g.ww and (not g.eb or g.wh == 1)
        bursts += rows_any if whole else rows_total
    return nbytes, bursts, g.wh == 1 and g.ww == 1 and nbytes > 0


def _lists(f, g, index):
    """Length of every PE-row list: CSR row lengths (FP, WG), or the transposed
    index's entries per input channel (EB). Even spread without an index."""
    z, kk = f["count"], f["k_h"] * f["k_w"]
    if index is None:
        lens = np.full(g.rows, z // g.rows, np.int64)
        lens[:z % g.rows] += 1
        return lens
    rowptr, _, tptr, _, _ = index
    if g.eb:
        return np.diff(np.asarray(tptr, np.int64)[::kk])
    return np.diff(np.asarray(rowptr, np.int64))


def _entries(g, lens, off, se, c):
    """Counters of loading one chunk (from `off`) of a tile's lists."""
    lr = np.clip(lens - off, 0, se)
    total, rows = int(lr.sum()), int(np.count_nonzero(lr))
    if g.eb:      # trow, tpos, then one gather burst per value
        c.burst(rd=7 * total, n=2 * rows + total)
    elif g.wg:    # columns only
        c.burst(rd=2 * total, n=rows)
    else:         # values and columns
        c.burst(rd=3 * total, n=2 * rows)
    c.ew += total
    return lr


def _sparse_conv(f, b, c, index):
    g = sparse_plan(f, b)
    R, C, se = b.pe_rows, b.pe_cols, b.sparse_entries
    n, kk = f["n"], f["k_h"] * f["k_w"]
    nt = _cdiv(n, C)
    bias, mask = f["flags"] & Flag.BIAS, f["flags"] & Flag.RELU_MASK
    xtiles = _cdiv(g.ow, g.xn)
    # one pass of windows over all positions: bytes and bursts per lane
    per_ch_bytes, per_ch_bursts, one_by_one = _window_traffic(f, g)
    win_rd = n * g.red * per_ch_bytes
    win_bursts = n * (g.groups if one_by_one else g.red) * per_ch_bursts
    positions = nt * g.oh * g.ow   # (batch tile, row, x) steps of one list entry
    point = g.oh == 1 and g.ow == 1   # 1x1 swept plane: a lane's PE rows are contiguous

    def row_io(vr):
        """(bytes, bursts) of one output/mask/error pass of a row tile."""
        return vr * n * g.oh * g.ow, (n if point else vr * n * g.oh * xtiles)
    lens_all = _lists(f, g, index)
    for r0 in range(0, g.rows, R):
        vr = min(R, g.rows - r0)
        lens = lens_all[r0:r0 + vr]
        longest = int(lens.max())
        chunks = 1 if longest == 0 else _cdiv(longest, se)
        c.burst(rd=4 * (vr * kk + 1) if g.eb else 4 * (vr + 1))   # the tile's pointers
        if not g.wg:
            if bias:
                c.burst(rd=4 * vr)
            # lists that fit stay on chip for the tile; longer ones are streamed
            # per (batch tile, row, x tile, group) pass
            reloads = 1 if chunks == 1 else nt * g.oh * xtiles * g.groups
            for j in range(chunks):
                one = _Count()
                _entries(g, lens, j * se, se, one)
                c.add(one, reloads)
            if longest > 0:
                c.burst(rd=win_rd, n=win_bursts)
                c.pe += positions * g.groups * longest
            io_bytes, io_bursts = row_io(vr)
            if mask:
                c.burst(rd=io_bytes, n=io_bursts)
            c.ew += vr * positions
            c.burst(wr=io_bytes, n=io_bursts)
            continue
        for j in range(chunks):   # WG
            off = j * se
            lenj = 0 if longest <= off else min(se, longest - off)
            if lenj == 0 and not (bias and j == 0):
                continue
            if lenj > 0:
                lr = _entries(g, lens, off, se, c)
                c.ew += lenj   # clear the accumulators
            io_bytes, io_bursts = row_io(vr)
            c.burst(rd=io_bytes, n=io_bursts)   # error rows
            if lenj > 0:
                c.burst(rd=win_rd, n=win_bursts)
                c.pe += positions * g.groups * lenj
                kept = int(lr.sum())
                c.ew += kept
                c.burst(wr=4 * kept, n=int(np.count_nonzero(lr)))
        if bias:
            c.ew += vr
            c.burst(wr=4 * vr)


def _index_check(f, b, c):
    """FAULT_INDEX pass of validation: every entry, CTRAIN_CHUNK per burst."""
    rows, cols, z, K = f["c_out"], validate.sparse_cols(f), f["count"], b.chunk
    for count, size in ((rows + 1, 4), (z, 2), (cols + 1, 4), (z, 4), (z, 2)):
        c.burst(rd=size * count, n=_cdiv(count, K))
        c.ew += count


# ---------------------------------------------------------------- public API

def index_of(insn, ddr=None, index=None):
    """The (rowptr, col, tptr, tpos, trow) a sparse instruction reads: given,
    or read from a DDR image, or None."""
    if index is not None or ddr is None:
        return index
    return validate.index_arrays(ddr, validate.fields(insn))


def iterations(insn, board_, ddr=None, index=None, table_len=0):
    """Iters of one instruction that runs to completion (or a HALT), exactly as
    the C-sim counts it: its fetch, validation, execution and statistics
    record; `table_len` > 0 adds the parameter-table load of instruction 0.
    Sparse instructions read their index arrays from `index` or `ddr`."""
    b, f = _board(board_), validate.fields(insn)
    c = _Count()
    c.burst(rd=INSN_BYTES)
    if table_len:
        c.burst(rd=4 * table_len)
    op = f["op"]
    if op == Op.HALT:
        return c.iters()
    if op in validate.CONV_OPS:
        _dense_conv(f, b, c)
    elif op in validate.SPARSE_OPS:
        _index_check(f, b, c)
        _sparse_conv(f, b, c, index_of(insn, ddr, index))
    else:
        _elementwise(f, b, c)
    c.burst(wr=STATS_BYTES)
    return c.iters()


def cycles_of(it, board_):
    """(cycles, compute, memory) of counters `it`: compute = pipelined
    iterations (pe + ew, II=1), memory = DDR bytes at the board's bytes per
    cycle plus BURST_CYCLES per burst; cycles = max of the two plus the
    per-instruction overhead."""
    b = _board(board_)
    compute = it.pe + it.ew
    memory = math.ceil((it.rd + it.wr) / b.bytes_per_cycle) + it.bursts * b.burst_cycles
    return max(compute, memory) + b.insn_cycles, compute, memory


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
    if op in (Op.UPDATE, Op.RELU_FP, Op.RELU_BP):
        return f["count"], f["count"]
    if op in validate.BN_OPS or op in validate.POOL_OPS:
        e = f["n"] * f["c_in"] * f["h_out"] * f["w_out"]
        return e, e
    return 0, 0


PHASES = {Op.CONV_FP: "FP", Op.SCONV_FP: "FP", Op.POOL_FP: "FP", Op.RELU_FP: "FP",
          Op.BN_FP: "FP", Op.CONV_EB: "EB", Op.SCONV_EB: "EB", Op.POOL_BP: "EB",
          Op.RELU_BP: "EB", Op.BN_BP: "EB", Op.CONV_WG: "WG", Op.SCONV_WG: "WG",
          Op.UPDATE: "UPDATE"}


def _program_parts(program, ddr):
    """(instructions, stage of each, {aux offset: index arrays}) of a compiler
    Program or a plain instruction array."""
    insns = getattr(program, "insns", program)
    stages = getattr(program, "insn_stage", None) or list(range(len(insns)))
    indexes = {}
    for L in getattr(program, "layers", []) or []:
        block = getattr(L, "index", None)
        if block is not None and ddr is None:
            off = program.plan[L.region("idx")].offset
            rows, cols = L.w_shape[0], int(np.prod(L.w_shape[1:]))
            f = dict(c_out=rows, c_in=cols, k_h=1, k_w=1, count=L.n_w, aux=0)
            indexes[off] = validate.index_arrays(np.asarray(block, np.uint8), f)
    return insns, stages, indexes


def report(program, board_, ddr=None):
    """Per layer (stage) and phase: cycles, seconds at the board clock, GOP/s
    and equivalent GOP/s (dense operation count / time). `program` is a
    compiler Program (layers named by stage, sparse indexes taken from it) or
    an instruction array (layers = instruction numbers); `ddr` (the arena
    image) supplies index arrays otherwise. Returns {"rows": [dict], "total":
    dict} with rows keyed by layer and phase in program order."""
    b = _board(board_)
    insns, stages, indexes = _program_parts(program, ddr)
    rows = OrderedDict()
    for k, insn in enumerate(insns):
        f = validate.fields(insn)
        if f["op"] == Op.HALT:
            continue
        index = indexes.get(f["aux"]) if f["op"] in validate.SPARSE_OPS else None
        it = iterations(insn, b, ddr, index)
        cyc, comp, mem = cycles_of(it, b)
        done, dense = ops(insn, ddr, index)
        key = (stages[k], PHASES.get(Op(f["op"]), "other"))
        row = rows.setdefault(key, dict(layer=key[0], phase=key[1], ops=[], cycles=0, compute=0,
                                         memory=0, op_count=0, dense_op_count=0))
        row["ops"].append(Op(f["op"]).name)
        row["cycles"] += cyc
        row["compute"] += comp
        row["memory"] += mem
        row["op_count"] += done
        row["dense_op_count"] += dense
    out = []
    for row in rows.values():
        seconds = row["cycles"] / (b.clock_mhz * 1e6)
        row.update(seconds=seconds, gops=row["op_count"] / seconds / 1e9,
                   equiv_gops=row["dense_op_count"] / seconds / 1e9,
                   bound="compute" if row["compute"] >= row["memory"] else "memory")
        out.append(row)
    cyc = sum(r["cycles"] for r in out)
    sec = cyc / (b.clock_mhz * 1e6)
    total = dict(cycles=cyc, seconds=sec,
                 gops=sum(r["op_count"] for r in out) / sec / 1e9 if sec else 0.0,
                 equiv_gops=sum(r["dense_op_count"] for r in out) / sec / 1e9 if sec else 0.0)
    return {"board": b.name, "rows": out, "total": total}


def format_report(rep):
    lines = [f"{'layer':>5} {'phase':<6} {'cycles':>12} {'time':>10} {'GOP/s':>8} "
             f"{'eq GOP/s':>9} {'bound':<7} ops"]
    for r in rep["rows"]:
        lines.append(f"{r['layer']:>5} {r['phase']:<6} {r['cycles']:>12,d} "
                     f"{r['seconds'] * 1e6:>8.1f}us {r['gops']:>8.3f} {r['equiv_gops']:>9.3f} "
                     f"{r['bound']:<7} {','.join(sorted(set(r['ops'])))}")
    t = rep["total"]
    lines.append(f"total ({rep['board']}): {t['cycles']:,d} cycles, {t['seconds'] * 1e3:.3f} ms, "
                 f"{t['gops']:.3f} GOP/s, {t['equiv_gops']:.3f} equivalent GOP/s")
    return "\n".join(lines)
