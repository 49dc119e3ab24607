"""The stream processor's pooling bands (stream.cpp stream_pool) on shapes the
random cases never reach: whole planes grouped with a partial last group, row
bands of a plane too large for the band buffer with overlapping windows (the
gradient rows carried from band to band) and with stride above the kernel
(rows no window covers, owned by the last band), and tiled windows (k = s:
pool_tiled's ping-pong bands, whole planes and row bands with rows and
columns below the last window): the C-sim writes exactly what the numpy
engine writes, and the model's counters equal the C-sim's."""

import numpy as np
import pytest

from ctrain import perfmodel, validate
from ctrain.engine.numpy import NumpyEngine
from ctrain.isa import INSN_BYTES, INSN_DTYPE, Flag, Op
from ctrain.tools.random_insn import Case, _garbage, _i8, build_ddr
from conftest import csim_or_skip



def _pool_case(rng, op, n, c, h, w, k_h, k_w, s, flags=0):
    sh = dict(n=n, c_in=c, c_out=c, h_in=h, w_in=w, h_out=(h - k_h) // s + 1,
              w_out=(w - k_w) // s + 1, k_h=k_h, k_w=k_w, stride=s)
    act_in, act_out = (n, c, h, w), (n, c, sh["h_out"], sh["w_out"])
    if op == Op.POOL_FP:
        ops = [("src", _i8(rng, act_in)), ("dst", _garbage(rng, int(np.prod(act_out))))]
    else:
        ops = [("src", _i8(rng, act_out)), ("aux", _i8(rng, act_in)),
               ("dst", _garbage(rng, int(np.prod(act_in))))]
    table = np.array([-6], np.int32)
    arrays = ops + [("stats", _garbage(rng, 32)), ("prog", np.zeros(2 * INSN_BYTES, np.uint8)),
                    ("table", table)]
    ddr, at = build_ddr(arrays)
    prog = np.zeros(2, INSN_DTYPE)
    prog[0]["op"], prog[0]["flags"], prog[1]["op"] = op, flags, Op.HALT
    for name, v in sh.items():
        prog[0][name] = v
    for name in [name for name, _ in ops] + ["stats"]:
        prog[0][name] = at[name]
    ddr[at["prog"]:at["prog"] + 2 * INSN_BYTES] = prog.view(np.uint8)
    return Case(ddr, at["prog"], 2, at["table"], table.size, op, at), prog[0]


BAND = perfmodel.POOL_BAND
SHAPES = [
    (3, 10, 30, 30, 2, 2, 2),     # whole planes: 11 per band, a partial last group
    (1, 2, 150, 120, 3, 3, 2),    # row bands, overlapping windows: the carry
    (2, 1, 130, 97, 2, 3, 3),     # row bands, stride above the kernel: uncovered rows
    (1, 1, 40, 512, 11, 11, 4),   # the widest plane, the largest window and stride
    # tiled windows (k = s, pool_tiled): bands through ping-pong halves
    (5, 16, 28, 28, 2, 2, 2),     # CNV's first pool: whole planes, many bands
    (1, 2, 151, 121, 2, 2, 2),    # row bands, a row and a column below the last window
    (2, 1, 23, 510, 4, 4, 4),     # row bands of the widest stride, tail rows
    (3, 2, 5, 27, 1, 1, 1),       # 1x1 windows
]


@pytest.mark.parametrize("board", ["pynq_z2", "zcu102"])
def test_pool_bands_agree_and_are_counted(board):
    """Every shape and direction, on two boards whose tiled bands are a
    DATAFLOW loop (CTRAIN_POOL_DATAFLOW: every shipped board since session
    22, the Pynq-Z2's 4-byte beat and the ZCU102's 16); a board without it
    would have them hand-pipelined, counted as planned."""
    csim = csim_or_skip(board)
    built = perfmodel.board(board).pool_dataflow
    rng = np.random.default_rng(5)
    kinds, tiled = set(), set()
    for n, c, h, w, k_h, k_w, s in SHAPES:
        kinds.add("whole" if h * w <= BAND else "rows")
        for op, flags in ((Op.POOL_FP, 0), (Op.POOL_BP, 0), (Op.POOL_BP, Flag.RELU_MASK)):
            case, insn = _pool_case(rng, op, n, c, h, w, k_h, k_w, s, flags)
            ref, got_ddr = case.ddr.copy(), case.ddr.copy()
            want = NumpyEngine().run(ref, *case.run_args())
            got = csim.run(got_ddr, *case.run_args())
            assert got.status == want.status == 0
            assert np.array_equal(got_ddr, ref), (op, n, c, h, w, k_h, k_w, s)
            model = perfmodel.iterations(insn, board, table_len=1, insn_addr=case.prog,
                                         table_addr=case.table)
            assert csim.last_iters()[0] == model, (op, n, c, h, w, k_h, k_w, s)
            f = validate.fields(insn)
            tiling = perfmodel._pool_tiling(f, perfmodel.board(board))
            if tiling:
                tiled.add(built)
                G, ny = tiling
                # several tiled bands: a DATAFLOW loop hides their overlap on a
                # board that builds it (CTRAIN_POOL_DATAFLOW), else it is planned
                if G < n * c or ny < f["h_out"]:
                    if built:
                        assert model.planned == 0 and model.hidden > 0, (op, n, c, h, w)
                    else:
                        assert model.planned > 0, (op, n, c, h, w)
    assert kinds == {"whole", "rows"}
    assert tiled == {built}


@pytest.mark.parametrize("board", ["pynq_z2", "zcu102"])
def test_compiled_stream_writes_are_whole_beats(board):
    """The memory plan starts every tensor on a beat and the element-wise units
    and pooling write whole tensors (pooling: bands of a whole number of
    beats), so no ReLU, BN or pooling write of a compiled LeNet-5 or CNV
    merges a partial beat; UPDATE at most once per written tensor's end."""
    from ctrain.compiler import compile_model
    from ctrain.model import MODELS
    seen = set()
    for name in ("lenet5", "cnv"):
        prog = compile_model(MODELS[name](), 64)
        assert all(r.offset % perfmodel.board(board).ddr_beat == 0
                   for r in prog.plan.regions.values())
        for insn in prog.insns:
            op = Op(int(insn["op"]))
            if op in validate.CONV_OPS or op in validate.SPARSE_OPS:
                continue
            seen.add(op)
            merges = perfmodel.iterations(insn, board).wr_merges
            assert merges <= (3 if op == Op.UPDATE else 0), (name, op.name, merges)
    assert {Op.POOL_FP, Op.POOL_BP, Op.UPDATE, Op.BN_FP, Op.BN_BP} <= seen


def _elements(f):
    return f["n"] * f["c_in"] * f["h_in"] * f["w_in"] if f["op"] in (Op.BN_FP, Op.BN_BP) \
        else f["count"]


@pytest.mark.parametrize("board", ["pynq_z2"])
def test_chunk_pipelines_agree_and_are_counted(board):
    """UPDATE, RELU, BN and ADD over two chunks or more (the DATAFLOW chunk
    loops of stream.cpp, update.cpp, eltwise.cpp: load k+1 || compute k ||
    store k-1 through ping-pong channels): the C-sim writes what the numpy
    engine writes, the model's counters (hidden and planned included) equal
    the C-sim's, and the overlap is built: it hides cycles, none planned."""
    from ctrain.tools.random_insn import random_case
    csim = csim_or_skip(board)
    b = perfmodel.board(board)
    rng = np.random.default_rng(11)
    # BN's own chunk (CTRAIN_BN_CHUNK) may be longer than the random
    # tensors: test_update_lanes_and_bn_chunks_agree_and_are_counted sizes its cases
    ops = [Op.UPDATE, Op.RELU_FP, Op.RELU_BP, Op.ADD] + \
        ([Op.BN_FP, Op.BN_BP] if b.bn_chunk == b.chunk else [])
    for op in ops:
        done = 0
        for _ in range(400):   # the random sizes pass a chunk often enough
            case = random_case(rng, op=op)
            insn = case.ddr[case.prog:case.prog + INSN_BYTES].view(INSN_DTYPE)[0]
            f = validate.fields(insn)
            chunk = {Op.UPDATE: b.update_chunk, Op.BN_FP: b.bn_chunk, Op.BN_BP: b.bn_chunk}.get(op, b.chunk)
            if _elements(f) <= chunk:   # one chunk: nothing to overlap
                continue
            ref, got_ddr = case.ddr.copy(), case.ddr.copy()
            want = NumpyEngine().run(ref, *case.run_args())
            got = csim.run(got_ddr, *case.run_args())
            assert got.status == want.status == 0
            assert np.array_equal(got_ddr, ref), (op.name, f)
            model = perfmodel.iterations(insn, board, table_len=case.table_len,
                                         insn_addr=case.prog, table_addr=case.table)
            assert csim.last_iters()[0] == model, (op.name, f)
            assert model.hidden > 0 and model.planned == 0, (op.name, f)
            done += 1
            if done == 2:
                break
        assert done == 2, op.name


def _bn_sizes(K, W):
    """(n, c, h, w) of BN tensors around K-element chunks: lanes (h*w >= W)
    over two chunks and a partial one, lanes with planes straddling the
    chunk boundary, and one element per cycle (h*w < W) over a chunk."""
    a = (2, -(-(2 * K + 3 * W + 5) // (2 * 64)), 8, 8)
    b = (1, -(-(K + 2 * 37) // 37), 1, 37)   # 37 >= W on every board
    c = (2, -(-(K + 11) // 18), 3, 3)
    return a, b, c


@pytest.mark.parametrize("board", perfmodel.BOARDS)
def test_update_lanes_and_bn_chunks_agree_and_are_counted(board):
    """UPDATE at CTRAIN_UPDATE_LANES elements per cycle in CTRAIN_UPDATE_CHUNK
    chunks, BN in CTRAIN_BN_CHUNK chunks (update.h, stream.h), at sizes on and
    around their chunk and lane-word boundaries (the weights ending inside a
    lane word, inside a chunk, on one; biases only): the C-sim writes
    exactly what the numpy engine writes, and the model's counters equal
    the C-sim's."""
    from ctrain.tools.random_insn import sized_case
    csim = csim_or_skip(board)
    b = perfmodel.board(board)
    K, L, W = b.update_chunk, b.update_lanes, b.ddr_beat
    rng = np.random.default_rng(13)
    cases = [sized_case(rng, Op.UPDATE, count=n, count_w=nw) for n, nw in
             ((K, K), (K + 1, K - 3), (2 * K + L + 1, K + L + 1), (2 * K - 1, 2 * K - 1 - W),
              (K + 5, 0), (3, 1))]
    cases += [sized_case(rng, op, flags, n=n, c=c, h=h, w=w)
              for n, c, h, w in _bn_sizes(b.bn_chunk, W)
              for op, flags in ((Op.BN_FP, Flag.RELU), (Op.BN_BP, Flag.RELU_MASK))]
    for case in cases:
        insn = case.ddr[case.prog:case.prog + INSN_BYTES].view(INSN_DTYPE)[0]
        ref, got_ddr = case.ddr.copy(), case.ddr.copy()
        want = NumpyEngine().run(ref, *case.run_args())
        got = csim.run(got_ddr, *case.run_args())
        assert got.status == want.status == 0
        assert np.array_equal(got_ddr, ref), Op(int(insn["op"])).name
        model = perfmodel.iterations(insn, board, table_len=case.table_len,
                                     insn_addr=case.prog, table_addr=case.table)
        assert csim.last_iters()[0] == model, Op(int(insn["op"])).name
