"""The C-sim engine (the HLS sources compiled with g++) against the numpy
engine, byte for byte: random cases of every opcode, fault cases, shapes that
span several PE tiles on both board configurations, and the iteration counters
docs/overlay.md promises the performance model."""
import importlib.util
import math
import os
import shutil

import numpy as np
import pytest

from ctrain import perfmodel, validate
from ctrain.engine.numpy import NumpyEngine
from ctrain.isa import INSN_BYTES, INSN_DTYPE, STATS_BYTES, Fault, Flag, Op
from ctrain.tools.random_insn import OPS, insn_case, random_case
from ctrain.tools.cross_check import format_report, verify

from ctrain import overlay_src
from ctrain.engine.csim import build
from conftest import csim_or_skip, insn

SEED = 20240611


@pytest.fixture(scope="module")
def csim():
    return csim_or_skip()


@pytest.fixture(scope="module")
def builder():
    """The build module, where the C-sim engine can be built here."""
    csim_or_skip()
    return build


# ---------------------------------------------------------------- bit-exactness

@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_random_cases_match_numpy(csim, op):
    report = verify("csim", 200, SEED + int(op), ops=[op], progress=False, faults=40)
    assert report["mismatches"] == 0, format_report(report)
    assert report["per_op"] == {f"OP_{op.name}": {"cases": 200, "mismatches": 0}}


def test_fault_cases_cover_every_code(csim):
    report = verify("csim", 0, SEED, progress=False, faults=600)
    assert report["mismatches"] == 0, format_report(report)
    assert set(report["per_fault"]) == {f"FAULT_{f.name}" for f in Fault if f != Fault.NONE}


def _conv_case(rng, op, flags, n, ci, h, w, co, k, s, p):
    """One instruction (then HALT) on random data at the given shape."""
    kh, kw = k
    ho, wo = (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1
    shape = dict(n=n, c_in=ci, h_in=h, w_in=w, c_out=co, h_out=ho, w_out=wo, k_h=kh, k_w=kw,
                 stride=s, pad=p)
    act = rng.integers(-128, 128, (n, ci, h, w)).astype(np.int8)
    err = rng.integers(-128, 128, (n, co, ho, wo)).astype(np.int8)
    wt = rng.integers(-127, 128, (co, ci, kh, kw)).astype(np.int8)
    garbage = lambda nbytes: rng.integers(0, 256, nbytes, dtype=np.uint8)  # noqa: E731
    ops = {
        Op.CONV_FP: dict(src=act, src2=wt, src3=rng.integers(-2**20, 2**20, co).astype(np.int32),
                         dst=garbage(err.size)),
        Op.CONV_EB: dict(src=err, src2=wt, aux=act, dst=garbage(act.size)),
        Op.CONV_WG: dict(src=err, src2=act, dst=garbage(4 * wt.size), dst2=garbage(4 * co)),
        Op.POOL_FP: dict(src=act, dst=garbage(err.size)),
        Op.POOL_BP: dict(src=err, aux=act, dst=garbage(act.size)),
    }[op]
    case = insn_case(rng, op, flags, shape, ops, [-7, -8, -13, -3, 0],
                     (0, 1, 4, 3 if op == Op.CONV_WG else 2))
    return case.ddr, (case.prog, case.n_insn, case.table, case.table_len)


# Several row/column tiles on both boards, rows wider than a chunk, maximal
# kernel/stride/pad, overlapping and gapped pool windows.
BIG_SHAPES = [
    (Op.CONV_FP, Flag.BIAS | Flag.RELU, 2, 20, 9, 40, 19, (3, 3), 2, 1),
    (Op.CONV_FP, Flag.BIAS, 1, 37, 5, 5, 33, (5, 3), 1, 2),
    (Op.CONV_FP, 0, 1, 3, 40, 512, 2, (11, 11), 4, 5),
    (Op.CONV_EB, Flag.RELU_MASK, 2, 20, 9, 40, 19, (3, 3), 2, 1),
    (Op.CONV_EB, 0, 1, 17, 11, 13, 35, (4, 5), 3, 2),
    (Op.CONV_WG, Flag.BIAS, 2, 20, 9, 40, 19, (3, 3), 2, 1),
    (Op.CONV_WG, Flag.BIAS, 3, 33, 7, 6, 17, (2, 2), 1, 0),
    (Op.POOL_FP, 0, 2, 5, 30, 511, 5, (3, 3), 2, 0),
    (Op.POOL_BP, Flag.RELU_MASK, 2, 5, 30, 300, 5, (3, 4), 1, 0),
    (Op.POOL_BP, 0, 1, 3, 20, 20, 3, (11, 2), 4, 0),
]


@pytest.mark.parametrize("board", ["pynq_z2", "zcu104"])
def test_multi_tile_shapes_match_numpy(board):
    engine, ref = csim_or_skip(board), NumpyEngine()
    rng = np.random.default_rng(SEED)
    for spec in BIG_SHAPES:
        ddr, args = _conv_case(rng, *spec)
        mine, theirs = ddr.copy(), ddr.copy()
        assert engine.run(mine, *args) == ref.run(theirs, *args), spec
        diff = np.flatnonzero(mine != theirs)
        assert diff.size == 0, f"{spec}: {diff.size} bytes differ, first at {diff[0]}"


@pytest.mark.parametrize("board", ["pynq_z2", "zcu104"])
def test_add_far_exponent_gaps_match_numpy(board):
    """ADD where its lanes cut the exponent gap (docs/numeric.md "ADD on
    narrow words": gaps past 16 with store shifts near the gap, where a few
    values stay inside the int8 range, or at 9 and more but far below it;
    ReLU, a fork's mask, either operand
    the shifted one, a saturating gap) over several chunks with a partial
    last beat: bytes and the statistics record (|acc| up to 2^62) as numpy's."""
    from ctrain.tools.random_insn import _i8
    engine, ref = csim_or_skip(board), NumpyEngine()
    rng = np.random.default_rng(SEED)
    count = 3 * 1024 + 5
    cases = 0
    # shifts d near the gap (values inside int8), and >= 9 but far below it (the
    # cut store shift a left shift: every lane whose shifted operand is 0 stores 0)
    for gap, ds in ((17, (9, 8, 16, 17, 24, 25)), (30, (12, 22, 29, 30, 31, 40)),
                    (61, (9, 30, 54, 60, 61, 70)), (5, (0, 4, 5, 6))):
        for d in ds:
            for flags in (Flag.RELU, Flag.RELU_MASK, 0):
                e_a = -10
                e_b = e_a + (gap if (d + int(flags)) % 2 else -gap)   # either operand shifted
                ops = dict(src=_i8(rng, count), src2=_i8(rng, count))
                if flags & Flag.RELU_MASK:
                    ops["aux"] = _i8(rng, count)
                ops["dst"] = rng.integers(0, 256, count, dtype=np.uint8)
                case = insn_case(rng, Op.ADD, flags, dict(count=count), ops,
                                 [e_a, e_b, min(e_a, e_b) + d], (0, 1, 0, 2))
                args = (case.prog, case.n_insn, case.table, case.table_len)
                mine, theirs = case.ddr.copy(), case.ddr.copy()
                result = engine.run(mine, *args)
                assert result.status == 0 and result == ref.run(theirs, *args), (gap, d, flags)
                diff = np.flatnonzero(mine != theirs)
                assert diff.size == 0, f"gap {gap}, shift {d}: {diff.size} bytes differ, first at {diff[0]}"
                cases += 1
    assert cases == 3 * 22


@pytest.mark.parametrize("c_in, resident", [(2000, 0), (1400, 1)], ids=["streamed", "resident"])
def test_sparse_row_passes_match_numpy(c_in, resident):
    """The sparse row-tile path's resident passes and streamed tiles (a stride-2
    fully connected layer: 40 lists of about 0.6 c_in entries, streamed where
    they outgrow the Pynq-Z2's SPARSE_ENTRIES of 1024 a PE row, one resident
    pass a tile of 4 rows where they fit) byte for byte. The Pynq-Z2 is the
    one board built with the path (docs/overlay.md "Board configurations")."""
    from ctrain.tools.random_insn import layer_case
    from test_perfmodel import ROW_PASSES
    board = "pynq_z2"
    engine, ref = csim_or_skip(board), NumpyEngine()
    rng = np.random.default_rng(SEED)
    fc = dict(ROW_PASSES, c_in=c_in)
    for op, flags, shape in ((Op.SCONV_FP, Flag.BIAS | Flag.RELU, fc),
                             (Op.SCONV_EB, Flag.RELU_MASK, dict(fc, c_in=40, c_out=c_in)),
                             (Op.SCONV_WG, Flag.BIAS, fc)):
        case = layer_case(rng, op, shape, flags, density=0.6)
        mine, theirs = case.ddr.copy(), case.ddr.copy()
        result = engine.run(mine, *case.run_args())
        assert result.status == 0 and result == ref.run(theirs, *case.run_args()), op.name
        diff = np.flatnonzero(mine != theirs)
        assert diff.size == 0, f"{op.name}: {diff.size} bytes differ, first at {diff[0]}"
    passes = perfmodel.sparse_passes(insn(case)[0], board, ddr=case.ddr)
    assert passes == [(r, resident) for r in range(0, 40, 4)]


def test_runs_in_place_without_copies(csim):
    case = random_case(np.random.default_rng(SEED), op=Op.RELU_FP)
    ddr = case.ddr.copy()
    before = ddr.copy()
    csim.run(ddr, *case.run_args())
    assert not np.array_equal(ddr, before)  # the caller's array holds the result
    with pytest.raises(TypeError):
        csim.run(case.ddr[::2], *case.run_args())


def test_verify_reports_the_first_difference(monkeypatch, csim):
    class Corrupting:
        """Runs csim, then flips one output byte of CONV_FP."""
        def run(self, ddr, prog, n_insn, table, table_len):
            result = csim.run(ddr, prog, n_insn, table, table_len)
            f = validate.fields(ddr[prog:prog + INSN_BYTES].view(INSN_DTYPE)[0])
            if f["op"] == Op.CONV_FP:
                ddr[f["dst"] + 1 if f["n"] * f["c_out"] * f["h_out"] * f["w_out"] > 1
                    else f["dst"]] ^= 1
            return result

    monkeypatch.setattr("ctrain.tools.cross_check.get_engine", lambda name: Corrupting())
    report = verify("csim", 30, SEED, ops=["CONV_FP"], progress=False, faults=0)
    assert report["mismatches"] == 30
    first = report["first_mismatch"]
    assert first["opcode"] == "OP_CONV_FP" and first["operand"] == "dst"
    assert "MISMATCH" in format_report(report)


# ---------------------------------------------------------------- iteration counters

def _cdiv(a, b):
    return -(-a // b)


def _tap_rows(f, eb, count, k, n_src, pairs=False, start=0):
    """Per swept row (column) v < count, its valid taps, at least 1 (a position
    without any takes one masked step): FP pairs source v*s + k - p inside
    the plane, EB the exact pairs (v + p - k) / s inside it; a list.  With
    `pairs` (columns on a PE_POS_PAIRS board; EB at stride 1 only), in a
    row whose first output index has parity `start`: a column at an even
    output index and the next, both with valid taps, run as one over every
    tap from the least to the greatest of theirs, the second in no step of
    its own."""
    s, p = f["stride"], f["pad"]
    taps = []
    for v in range(count):
        if eb:
            taps.append({kk for kk in range(k) if (v + p - kk) >= 0 and (v + p - kk) % s == 0
                         and (v + p - kk) // s < n_src})
        else:
            taps.append({kk for kk in range(k) if 0 <= v * s + kk - p < n_src})
    steps = [max(1, len(t)) for t in taps]
    for v in range(start % 2, count - 1, 2) if pairs and (not eb or s == 1) else ():
        if taps[v] and taps[v + 1]:
            both = taps[v] | taps[v + 1]
            steps[v], steps[v + 1] = max(both) - min(both) + 1, 0
    return steps


def _bands(f, eb, plan):
    """(lo, hi, y0, y1) per band of plan.br swept rows: the source rows
    loaded and the swept rows."""
    s, p, kh = f["stride"], f["pad"], f["k_h"]
    out = []
    for y0 in range(0, plan.oh, plan.br):
        y1 = min(plan.oh, y0 + plan.br)
        if eb:
            lo, hi = max(0, -((-(y0 + p - kh + 1)) // s)), min(plan.sh, (y1 - 1 + p) // s + 1)
        else:
            lo, hi = max(0, y0 * s - p), min(plan.sh, (y1 - 1) * s - p + kh)
        out.append((lo, max(lo, hi), y0, y1))
    return out


def _loaded_rows(f, eb, plan):
    """S: source rows loaded, summed over the bands of plan.br swept rows."""
    return sum(hi - lo for lo, hi, _, _ in _bands(f, eb, plan))


def _span_extra(b, n_planes, run, plane):
    """Bytes a band read of n_planes planes adds when it is one burst through
    the planes' other rows (conv.cpp conv_span: n > 1, plane >= W, and the
    other rows fewer bytes than a burst's latency and fill move)."""
    lat = (b.rd_latency + perfmodel.AGU_DEPTH) * b.ddr_beat
    if n_planes > 1 and plane >= b.ddr_beat and plane - run < lat:
        return (n_planes - 1) * (plane - run)
    return 0


def _cols_span(f, eb, plan, b, P):
    """The spanning column reads' extra bytes (load_cols: per pass, group,
    band of part of the plane, and image)."""
    extra = 0
    for g in range(plan.groups):
        gc = min(plan.g * b.pe_cols, plan.cols - g * plan.g * b.pe_cols)
        for lo, hi, _, _ in _bands(f, eb, plan):
            if not (lo == 0 and hi == plan.sh):
                extra += _span_extra(b, gc, (hi - lo) * plan.sw, plan.sh * plan.sw)
    return P * f["n"] * extra


def _rows_span(f, eb, plan, b):
    """The spanning row reads' extra bytes per read of a tensor on the swept
    plane (rows_rd / rows_wr with several bands: per row tile, band and image)."""
    if plan.bands == 1:
        return 0
    extra = 0
    for r0 in range(0, plan.rows, b.pe_rows):
        vr = min(b.pe_rows, plan.rows - r0)
        for _, _, y0, y1 in _bands(f, eb, plan):
            extra += _span_extra(b, vr, (y1 - y0) * plan.ow, plan.oh * plan.ow)
    return f["n"] * extra


def expected_iters(f, board, chunk):
    """docs/overlay.md "Iteration counters" for one executed instruction, without
    the fetch, table load and statistics store every instruction adds (`beat`:
    the DDR port's bytes per beat, the element-wise unit's lanes)."""
    op, n, ci, co = f["op"], f["n"], f["c_in"], f["c_out"]
    hi, wi, ho, wo, kh, kw = (f[k] for k in ("h_in", "w_in", "h_out", "w_out", "k_h", "k_w"))
    kk, bias, mask = kh * kw, f["flags"] & Flag.BIAS, f["flags"] & Flag.RELU_MASK
    beat = perfmodel.board(board).ddr_beat
    if op in validate.CONV_OPS:
        b = perfmodel.board(board)
        plan = perfmodel.conv_plan(f, b)   # the tiling: groups, bands
        eb = op == Op.CONV_EB
        rt, nt = _cdiv(plan.rows, b.pe_rows), _cdiv(n, b.pe_lanes)
        # passes over the items: a row tile each, a block of plan.rb in block mode
        P = _cdiv(rt, plan.rb) if plan.bm else rt
        S = _loaded_rows(f, eb, plan)
        if op == Op.CONV_WG:
            btap = 1 if plan.bm and bias else 0   # block mode's bias tap: a run per tile
            # per item (lane tile, band, group) a run of its positions per tap of the
            # group's column tiles (and per row tile the bias tap), or on a
            # PE_POS_PAIRS board, with 2+ taps and 2+ positions, a run per two taps
            # and a step for the last pair's second
            pe = 0
            for g0 in range(0, plan.ct, plan.g):
                taps = min(plan.g, plan.ct - g0) * kk
                for _, _, y0, y1 in _bands(f, eb, plan):
                    npos = (y1 - y0) * wo
                    pair = b.pe_pos_pairs and taps >= 2 and npos >= 2
                    per_tile = ((_cdiv(taps, 2) if pair else taps) + btap) * npos
                    tiles = plan.rb if plan.bm else 1
                    pe += nt * sum(per_tile * min(tiles, rt - t0) + pair
                                   for t0 in range(0, rt, tiles))
            return dict(pe=pe,
                        pe_in=P * plan.groups * nt * plan.bands,
                        # clear_taps: per pass its group's taps (and bias tap) of each row tile
                        ew=rt * (plan.ct * kk + btap * plan.groups) + (co if bias else 0),
                        rd=P * n * ci * S * wi + plan.groups * n * co * ho * wo
                        + _cols_span(f, eb, plan, b, P) + plan.groups * _rows_span(f, eb, plan, b),
                        wr=4 * co * ci * kk + (4 * co if bias else 0))
        ty = _tap_rows(f, eb, plan.oh, kh, plan.sh)
        # two positions a step (PE_POS_PAIRS) with one group, from an even output
        # index: a row's column steps by its first index's parity
        pairs = bool(b.pe_pos_pairs) and plan.groups == 1
        tx = [sum(_tap_rows(f, eb, plan.ow, kw, plan.sw, pairs, start)) for start in (0, 1)]
        # per pass (a row tile, or a block of plan.rb in block mode), lane tile and
        # band: each tile's rows, their output indexes counted on from the pass's start
        pe = 0
        for t0 in range(0, rt, plan.rb if plan.bm else 1):
            tiles = min(plan.rb, rt - t0) if plan.bm else 1
            for _, _, y0, y1 in _bands(f, eb, plan):
                pe += sum(ty[y] * tx[((t * (y1 - y0) + y - y0) * plan.ow) % 2]
                          for t in range(tiles) for y in range(y0, y1))
        pe *= nt * plan.ct
        # the epilogue, a PE row wide (pe_array.h PE_EPI_SLICES = D): each
        # pass's runs in order (a position's, or a pair's, taps times its
        # group's column tiles), each but the first waiting D - n cycles
        # where it takes n < D steps, and the last run's D slices after them
        D = b.epi_slices
        runs = [[x for x in _tap_rows(f, eb, plan.ow, kw, plan.sw, pairs, start) if x] for start in (0, 1)]
        for t0 in range(0, rt, plan.rb if plan.bm else 1):
            tiles = min(plan.rb, rt - t0) if plan.bm else 1
            for _, _, y0, y1 in _bands(f, eb, plan):
                for g0 in range(0, plan.ct, plan.g):
                    gct = min(plan.g, plan.ct - g0)
                    seq = [gct * ty[y] * x for t in range(tiles) for y in range(y0, y1)
                           for x in runs[((t * (y1 - y0) + y - y0) * plan.ow) % 2]]
                    pe += nt * (sum(max(0, D - m) for m in seq[1:]) + D)
        # with groups, each group's weights once per chunk of plan.cu units (lane tile, band)
        weights = co * ci * kk * (1 if plan.groups == 1 else _cdiv(nt * plan.bands, plan.cu))
        rd = weights + P * n * plan.cols * S * plan.sw + _cols_span(f, eb, plan, b, P)
        ew = plan.ow + P * nt * plan.groups * plan.oh
        if op == Op.CONV_FP and plan.groups == 1 and ci * kk <= b.conv_act:
            ew += rt * ci * kk   # staged weights: a word per entry per row tile
        R, C = b.pe_rows, b.pe_cols
        if eb and plan.groups == 1:
            # staged weights: per weight block (plan.rb row tiles) that fits a staging
            # bank, per c_out channel cdiv(R, C) words per row tile and tap (kk = 1: one)
            for r0 in range(0, plan.rows, plan.rb * R):
                nr = min(plan.rb * R, plan.rows - r0)
                tiles, fill = _cdiv(nr, R), perfmodel.EW_DEPTH   # staged where cheaper
                if kk == 1 and beat % R == 0 and nr <= b.conv_act and \
                        1 + _cdiv(nr, beat) + tiles + fill < nr:
                    ew += co * tiles
                elif kk > 1 and (R % C == 0 or C % R == 0) and _cdiv(nr, C) * kk <= b.conv_act and \
                        1 + nr * _cdiv(kk + beat - 1, beat) + tiles * _cdiv(R, C) * kk + fill < nr * kk:
                    ew += co * tiles * _cdiv(R, C) * kk
        if bias:
            rd += 4 * co
            ew += co   # shifting the biases, a row per cycle
        if mask:
            rd += n * ci * hi * wi + _rows_span(f, eb, plan, b)
        return dict(pe=pe, pe_in=P * nt * plan.bands * plan.groups,
                    ew=ew, rd=rd, wr=n * plan.rows * plan.oh * plan.ow)
    if op == Op.UPDATE:
        cnt, cw = f["count"], f["count_w"]
        return dict(pe=0, ew=cnt, rd=12 * cnt + cw, wr=8 * cnt + cw)
    if op in (Op.RELU_FP, Op.RELU_BP):   # a word of W lanes per cycle
        cnt, reads = f["count"], 2 if op == Op.RELU_BP else 1
        words = sum(_cdiv(min(chunk, cnt - i0), beat) for i0 in range(0, cnt, chunk))
        return dict(pe=0, ew=words, rd=reads * cnt, wr=cnt)
    planes = n * ci
    if op == Op.ADD:
        cnt = f["count"]
        lens = [min(chunk, cnt - i) for i in range(0, cnt, chunk)]
        return dict(pe=0, ew=sum(_cdiv(n_, beat) for n_ in lens), rd=(3 if mask else 2) * cnt, wr=cnt)
    avg_bp = op == Op.AVGPOOL_BP
    if op in validate.AVG_OPS and (chunk - beat) // (hi * wi + avg_bp * ho * wo) >= 1 and (
            not avg_bp or (f["stride"] >= kh or ho == 1) and (f["stride"] >= kw or wo == 1)):
        # whole planes through ping-pong bands: every operand read once; FP a
        # segment of <= W taps per cycle, BP an input element per cycle
        if op == Op.AVGPOOL_FP:
            return dict(pe=0, ew=planes * ho * wo * kh * _cdiv(kw, beat), rd=planes * hi * wi,
                        wr=planes * ho * wo)
        return dict(pe=0, ew=planes * hi * wi, rd=planes * (ho * wo + (hi * wi if mask else 0)),
                    wr=planes * hi * wi)
    if op == Op.AVGPOOL_FP:
        return dict(pe=0, ew=planes * ho * (kh * _cdiv(wi, beat) + kw * wo), rd=planes * ho * kh * wi,
                    wr=planes * ho * wo)
    if op == Op.AVGPOOL_BP:
        s = f["stride"]
        cov = [max(0, min(iy // s, ho - 1) - (0 if iy < kh else (iy - kh + s) // s) + 1) for iy in range(hi)]
        ew = wi + planes * (sum(cov) * _cdiv(wo, beat) + sum(c > 0 for c in cov) * kw * wo + hi * wi)
        rd = planes * (sum(cov) * wo + (hi * wi if mask else 0))
        return dict(pe=0, ew=ew, rd=rd, wr=planes * hi * wi)
    # pooling bands: G whole planes, or ny output rows of one plane
    POOL_BAND = perfmodel.POOL_BAND
    planes, s, plane = n * ci, f["stride"], hi * wi
    b = perfmodel.board(board)
    room, tail, bp = b.pool_band - 2 * beat, hi - ho * s, op == Op.POOL_BP
    whole = room // (plane + bp * ho * wo) > 0
    if kh == kw == s and s in (1, 2, 4) and (whole or (room - tail * wi) // (wi * s + bp * wo) > 0):
        # tiled windows: every input read once (whole planes, else the rows in
        # windows), a segment of W columns per cycle, s steps per segment of
        # P = W/s windows (FP) or s + 1 per segment of a row (BP: its rows and
        # its errors, each segment's gradient rows written in the next one's
        # steps), one per tail row's
        # segment, and s to write the last segment's rows: before each
        # plane's tail rows, else once a band
        rd_x = planes * (plane if whole else ho * s * wi)
        # a DATAFLOW band loop (CTRAIN_POOL_DATAFLOW) first counts its bands:
        # a cycle per group of G whole planes (none for one plane a band),
        # or per row band of a plane (the plan's G and ny)
        G, ny = perfmodel._pool_tiling(f, b)
        n_bands = _cdiv(planes, G) if ny == ho else planes * _cdiv(ho, ny)
        bands = 0
        if b.pool_dataflow:
            bands = ((_cdiv(planes, G) if G > 1 else 0) if ny == ho else _cdiv(ho, ny))
        if op == Op.POOL_FP:
            return dict(pe=0, ew=planes * ho * _cdiv(wo, beat // s) * s + bands, rd=rd_x,
                        wr=planes * ho * wo)
        drains = planes if (tail > 0 and ny == ho) else n_bands
        return dict(pe=0, ew=planes * (ho * (s + 1) + tail) * _cdiv(wi, beat) + drains * s + bands,
                    rd=rd_x + planes * ho * wo, wr=planes * plane)
    span = ((ho - 1) * s + kh) * wi
    if plane <= POOL_BAND:   # rounded down to planes that make whole beats of the written band
        written = plane if op == Op.POOL_BP else ho * wo
        align = beat // math.gcd(written, beat)
        G = POOL_BAND // plane
        G = G - G % align if G >= align else G
        groups = _cdiv(planes, G)
        rd_in, first = planes * plane - groups * (plane - span), min(planes, G) * plane
        carry = 0
        # the store, W per cycle: full groups, then the last
        store = (groups - 1) * _cdiv(G * plane, beat) + _cdiv((planes - (groups - 1) * G) * plane, beat)
    else:
        ny = min((POOL_BAND // wi - kh + 1) // s, ho)
        nb = _cdiv(ho, ny)
        rd_in, first = planes * ((ho - nb) * s + nb * kh) * wi, (ny * s + kh - 1) * wi
        # the carry: POOL_CARRY_II cycles an element (a read and two writes of one bank)
        carry = planes * (nb - 1) * (kh - s) * wi if kh > s else 0
        carry *= perfmodel.board(board).pool_carry_ii
        band = ny * s * wi   # the rows a band but a plane's last owns
        store = planes * ((nb - 1) * _cdiv(band, beat) + _cdiv(plane - (nb - 1) * band, beat))
    taps = planes * ho * wo * kh * _cdiv(kw, beat)   # a row segment of <= W taps per cycle
    if op == Op.POOL_FP:
        return dict(pe=0, ew=taps, rd=rd_in, wr=planes * ho * wo)
    return dict(pe=0, ew=_cdiv(first, beat) + taps + store + carry, rd=rd_in + planes * ho * wo,
                wr=planes * plane)


def _subset(it, keys):
    return {k: getattr(it, k) for k in keys}


def _check_counters(engine, case):
    """The documented formulas for the iteration and byte counters (all the
    counters, beats and bursts included, are checked against ctrain.perfmodel
    in tests/test_perfmodel.py)."""
    engine.run(case.ddr.copy(), *case.run_args())
    iters = engine.last_iters()
    f = validate.fields(case.ddr[case.prog:case.prog + INSN_BYTES].view(INSN_DTYPE)[0])
    want = dict(pe=0, ew=0, rd=INSN_BYTES, wr=0)   # the fetch
    want["rd"] += 4 * case.table_len
    if f["op"] != Op.HALT:
        for key, value in expected_iters(f, engine.board, engine.chunk).items():
            want[key] = want.get(key, 0) + value
        want["wr"] += STATS_BYTES
    assert _subset(iters[0], want) == want, f"{Op(f['op']).name} {validate.fields(f)}"
    if case.n_insn == 2 and f["op"] != Op.HALT:  # the trailing HALT: its fetch only
        assert iters[1].rd == INSN_BYTES and iters[1].rd_bursts == 1
        assert iters[1].pe + iters[1].ew + iters[1].wr + iters[1].gathers == 0


#: Opcodes expected_iters knows; the sparse and batch-norm ones are checked
#: against ctrain.perfmodel in tests/test_perfmodel.py.
DENSE_OPS = [op for op in OPS if op not in validate.SPARSE_OPS + validate.BN_OPS]


@pytest.mark.parametrize("board", ["pynq_z2", "zcu104"])
def test_iteration_counters_follow_the_documented_formulas(board):
    engine = csim_or_skip(board)
    rng = np.random.default_rng(SEED)
    for i in range(200):
        _check_counters(engine, random_case(rng, op=DENSE_OPS[i % len(DENSE_OPS)]))
    for spec in BIG_SHAPES:
        ddr, args = _conv_case(rng, *spec)
        engine.run(ddr.copy(), *args)
        f = validate.fields(ddr[args[0]:args[0] + INSN_BYTES].view(INSN_DTYPE)[0])
        want = expected_iters(f, engine.board, engine.chunk)
        want.update(rd=want["rd"] + INSN_BYTES + 4 * args[3], wr=want["wr"] + STATS_BYTES)
        assert _subset(engine.last_iters()[0], want) == want, spec


def test_counters_stop_at_a_fault(csim):
    report_case = random_case(np.random.default_rng(SEED), op=Op.RELU_FP)
    ddr = report_case.ddr.copy()
    ddr[report_case.prog:report_case.prog + INSN_BYTES].view(INSN_DTYPE)[0]["op"] = 0
    result = csim.run(ddr, *report_case.run_args())
    assert result.status != 0 and result.pc == 0
    assert [it.pe + it.ew + it.wr for it in csim.last_iters()] == [0]


# ---------------------------------------------------------------- the build

@pytest.mark.slow
def test_build_from_installed_layout_is_cached_and_keyed_on_sources(builder, tmp_path, monkeypatch):
    """As after a non-editable install: the sources in ctrain/overlay_src, no
    repo around (the package's directory moved to one with no overlay/ beside).
    The build is cached (a second call returns it untouched) and its key
    follows the flags and the board. One build, not one per property: each
    is a full g++ compile of the HLS."""
    src = tmp_path / "site" / "ctrain" / "overlay_src"
    root = builder.overlay_dir()
    for sub in ("include", "hls"):
        shutil.copytree(os.path.join(root, sub), src / sub)
    monkeypatch.setattr(overlay_src, "_PKG", str(src.parent))
    assert builder.overlay_dir() == str(src)
    cache = str(tmp_path / "cache")
    first = builder.build("pynq_z2", cache_dir=cache)
    assert os.path.isfile(first) and first.startswith(cache)
    mtime = os.path.getmtime(first)
    assert builder.build("pynq_z2", cache_dir=cache) == first
    assert os.path.getmtime(first) == mtime
    root, ap_dir, cxx = builder.overlay_dir(), builder.ap_types_dir(), builder.cxx_compiler()
    assert builder.cache_key("pynq_z2", root, ap_dir, cxx) in first
    monkeypatch.setattr(builder, "HLS_FLAGS", builder.HLS_FLAGS + ["-DCTRAIN_UNUSED=1"])
    assert builder.cache_key("pynq_z2", root, ap_dir, cxx) not in first
    assert builder.cache_key("zcu104", root, ap_dir, cxx) != builder.cache_key(
        "pynq_z2", root, ap_dir, cxx)


def test_unroll_flags_where_the_compiler_takes_them(builder, monkeypatch):
    """g++ gets the complete-unrolling limits, and the cache key holds them; a
    compiler that rejects them (clang: GCC's --param) builds without."""
    cxx = builder.cxx_compiler()
    gcc = "clang" not in builder._compiler_version(cxx).lower()
    assert builder.unroll_flags(cxx) == (builder.UNROLL_FLAGS if gcc else [])
    assert builder.unroll_flags("false") == []   # exits 1 on any arguments
    root, ap_dir = builder.overlay_dir(), builder.ap_types_dir()
    key = builder.cache_key("pynq_z2", root, ap_dir, cxx)
    if gcc:
        monkeypatch.setattr(builder, "UNROLL_FLAGS", ["--param=max-completely-peel-times=32"])
        assert builder.cache_key("pynq_z2", root, ap_dir, cxx) != key


def test_missing_tools_give_clear_errors(monkeypatch):
    builder = build   # no compiler needed: it is the missing one
    monkeypatch.delenv("XILINX_HLS", raising=False)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(builder.importlib.util, "find_spec",
                        lambda name, *a: None if name == "hls4ml" else real_find_spec(name, *a))
    with pytest.raises(builder.CsimBuildError, match="pip install ctrain\\[csim\\]"):
        builder.ap_types_dir()
    monkeypatch.setattr(builder.shutil, "which", lambda exe: None)
    monkeypatch.setenv("CXX", "g++")
    with pytest.raises(builder.CsimBuildError, match="g\\+\\+"):
        builder.cxx_compiler()
