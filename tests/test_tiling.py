"""The dense tiling fields (docs/isa.md "Dense tiling"): how the unit resolves
them, FAULT_TILE in both engines, results that do not depend on them, and the
compiler's choice, never slower in the cycle model than the unit's rule."""
import numpy as np
import pytest

from ctrain import perfmodel, tiling, validate
from ctrain.compiler import compile_model
from ctrain.engine.numpy import NumpyEngine
from ctrain.isa import INSN_BYTES, INSN_DTYPE, Fault, Flag, Op
from ctrain.model import build_model
from ctrain.tools.perfreport import default_input
from ctrain.tools.random_insn import layer_case
from conftest import csim_or_skip

SEED = 1313
PYNQ = tiling.buffers("pynq_z2")   # 4 x 4 tiles; WCAP 512, ACT 5632, OUT 512


def _conv(op, **kw):
    f = dict(op=op, flags=0, n=2, c_in=64, h_in=28, w_in=28, c_out=64, h_out=28, w_out=28,
             k_h=3, k_w=3, stride=1, pad=1, tile_g=0, tile_br=0, tile_rb=0)
    f.update(kw)
    return f


def test_zero_fields_are_the_units_rule():
    """CNV's 64x64 3x3 at 28x28 on the Pynq-Z2: g = min(16, 512/9, 5632/(3*28))
    = 16 column tiles, then the band whose 16 channels' rows fit 5632/(16*28)
    = 12 rows: (12 - 3) + 1 = 10 rows, 3 bands."""
    p = tiling.conv_plan(_conv(Op.CONV_FP), PYNQ)
    assert (p.ct, p.g, p.groups, p.br, p.bands, p.slot, p.rb, p.fits) == (16, 16, 1, 10, 3, 12 * 28, 1, True)
    # EB of a fully connected 512 -> 10: every row tile's weights fit at once
    e = tiling.conv_plan(_conv(Op.CONV_EB, c_in=512, c_out=10, h_in=1, w_in=1, h_out=1, w_out=1,
                                k_h=1, k_w=1, pad=0), PYNQ)
    assert (e.rows, e.ct, e.groups, e.rb) == (512, 3, 1, 128)


@pytest.mark.parametrize("board", perfmodel.BOARDS)
def test_the_rule_fits_a_weight_gradient_with_its_bias_tap(board):
    """WG with biases keeps a bias tap beside a block's taps: where every
    column tile's taps fill CONV_TCAP exactly (a Linear with TCAP x C inputs)
    the rule takes two groups instead of a block that cannot hold the tap, in
    the HLS (conv_make_plan) as here, so a zero tiling never faults. WG runs
    in block mode with either (one band), a row tile a block here."""
    b = tiling.buffers(board)
    fc = dict(c_in=b.conv_tcap * b.pe_cols, c_out=b.pe_rows * 3, h_in=1, w_in=1, h_out=1, w_out=1,
              k_h=1, k_w=1, pad=0)
    for flags, groups in ((Flag.BIAS, 2), (0, 1)):
        p = tiling.conv_plan(_conv(Op.CONV_WG, flags=flags, **fc), b)
        assert p.fits and p.groups == groups and p.bm and p.rb == 1
    # one group and its block would need TCAP + 1 entries: FAULT_TILE
    assert not tiling.conv_plan(_conv(Op.CONV_WG, flags=Flag.BIAS, tile_g=b.conv_tcap, **fc), b).fits
    if board == "pynq_z2":   # the HLS rule runs it, to the numpy engine's bytes
        shape = dict(n=2, c_in=fc["c_in"], h_in=1, w_in=1, c_out=fc["c_out"], k_h=1, k_w=1, stride=1, pad=0)
        outs = []
        for engine in (NumpyEngine(board=board), csim_or_skip(board)):
            case = layer_case(np.random.default_rng(SEED), Op.CONV_WG, shape, flags=Flag.BIAS)
            r = engine.run(case.ddr, *case.run_args())
            assert r.status == Fault.NONE
            outs.append(case.ddr.copy())
        assert np.array_equal(*outs)


@pytest.mark.parametrize("board", [b for b in perfmodel.BOARDS
                                   if tiling.buffers(b).conv_tcap < tiling.buffers(b).conv_wcap])
def test_weights_and_tap_accumulators_have_their_own_capacity(board):
    """CONV_WCAP bounds FP's and EB's weights a PE, CONV_TCAP WG's tap
    accumulators (48 bits each where a weight is 8: a board may hold fewer):
    a layer whose column tiles' weights fit WCAP but whose taps do not fit
    TCAP runs FP in one group and WG in several, and WG asked for one group
    faults FAULT_TILE in both engines while FP's runs to the same bytes."""
    b = tiling.buffers(board)
    ct = b.conv_wcap // 9                  # column tiles whose 3x3 weights fill WCAP
    assert ct * 9 > b.conv_tcap
    shape = dict(n=1, c_in=ct * b.pe_cols, h_in=3, w_in=3, c_out=b.pe_rows, k_h=3, k_w=3, stride=1, pad=1)
    f = _conv(Op.CONV_FP, n=1, c_in=shape["c_in"], c_out=b.pe_rows, h_in=3, w_in=3, h_out=3, w_out=3)
    assert tiling.conv_plan(f, b).groups == 1
    assert tiling.conv_plan(dict(f, op=Op.CONV_EB, c_in=f["c_out"], c_out=f["c_in"]), b).groups == 1
    wg = tiling.conv_plan(dict(f, op=Op.CONV_WG), b)
    assert wg.fits and (wg.g, wg.groups) == (b.conv_tcap // 9, -(-ct // (b.conv_tcap // 9)))
    assert not tiling.conv_plan(dict(f, op=Op.CONV_WG, tile_g=ct), b).fits
    outs = []
    for engine in (NumpyEngine(board=board), csim_or_skip(board)):
        for op, status in ((Op.CONV_FP, Fault.NONE), (Op.CONV_WG, Fault.TILE)):
            case = _with(layer_case(np.random.default_rng(SEED), op, shape), tile_g=ct)
            r = engine.run(case.ddr, *case.run_args())
            assert r.status == status, (engine, op)
            if status == Fault.NONE:
                outs.append(case.ddr.copy())
    assert np.array_equal(*outs)


def test_fields_are_clamped_and_checked():
    f = _conv(Op.CONV_FP, tile_g=8, tile_br=14)
    p = tiling.conv_plan(f, PYNQ)
    assert (p.g, p.groups, p.br, p.bands, p.fits) == (8, 2, 14, 2, True)   # 16 rows x 28 x 8 <= 5632
    assert tiling.conv_plan(dict(f, tile_g=1 << 31, tile_br=1 << 31), PYNQ).g == 16
    assert tiling.conv_plan(dict(f, tile_br=18), PYNQ).fits                # 18 x 28 <= 512 outputs
    assert not tiling.conv_plan(dict(f, tile_br=19), PYNQ).fits            # 19 x 28 > 512
    assert not tiling.conv_plan(dict(f, tile_g=16, tile_br=11), PYNQ).fits  # 13 x 28 x 16 > 5632
    fc = _conv(Op.CONV_EB, c_in=512, c_out=512, h_in=1, w_in=1, h_out=1, w_out=1, k_h=1, k_w=1, pad=0)
    assert tiling.conv_plan(fc, PYNQ).rb == 4       # block mode: the most that fit, 4 x 128 <= 512
    assert tiling.conv_plan(fc, PYNQ).bm
    assert tiling.conv_plan(dict(fc, tile_rb=4), PYNQ).fits                # 4 x 128 = 512
    assert not tiling.conv_plan(dict(fc, tile_rb=5), PYNQ).fits
    assert tiling.conv_plan(dict(fc, tile_rb=5, tile_g=64), PYNQ).rb == 1   # two groups: no block
    # FP blocks too (one group, one band); biases limit a block to CONV_RB row tiles
    assert not tiling.conv_plan(dict(fc, op=Op.CONV_FP, tile_rb=99), PYNQ).fits   # 99 x 128 > 512
    fp = dict(fc, op=Op.CONV_FP, c_in=16, tile_rb=99)
    assert tiling.conv_plan(fp, PYNQ).fits                                 # 99 x 4 <= 512
    assert not tiling.conv_plan(dict(fp, flags=Flag.BIAS), PYNQ).fits      # 99 > CONV_RB = 64
    assert tiling.conv_plan(dict(fp, flags=Flag.BIAS, tile_rb=0), PYNQ).rb == 64
    # WG blocks its tap accumulators, with BIAS one bias tap per row tile more
    wg = dict(fc, op=Op.CONV_WG, c_in=124)                                  # 31 column tiles
    assert tiling.conv_plan(wg, PYNQ).rb == 16 and tiling.conv_plan(wg, PYNQ).bm   # 16 x 31 <= 512
    assert tiling.conv_plan(dict(wg, flags=Flag.BIAS), PYNQ).rb == 16       # 16 x 32 = 512
    assert not tiling.conv_plan(dict(wg, c_in=128, flags=Flag.BIAS, tile_rb=16), PYNQ).fits
    # ... with groups too: a block's tap accumulators are one group's
    assert tiling.conv_plan(dict(wg, tile_g=8), PYNQ).rb == 64              # 64 x 8 = 512
    assert tiling.conv_plan(dict(wg, tile_g=8, flags=Flag.BIAS), PYNQ).rb == 56   # 56 x 9 <= 512
    assert not tiling.conv_plan(dict(wg, tile_g=8, flags=Flag.BIAS, tile_rb=57), PYNQ).fits
    assert not tiling.conv_plan(dict(fc, op=Op.CONV_FP, tile_g=8), PYNQ).bm   # FP, EB: groups, no block
    assert tiling.conv_plan(dict(fc, tile_br=0, h_in=2, h_out=2, tile_rb=99), PYNQ).bm
    assert not tiling.conv_plan(dict(_conv(Op.CONV_EB), tile_br=4), PYNQ).bm   # bands: no block mode


def _with(case, **fields):
    rec = case.ddr[case.prog:case.prog + INSN_BYTES].view(INSN_DTYPE)
    for name, value in fields.items():
        rec[0][name] = value
    return case


def test_fault_tile_before_the_slots_in_both_engines():
    """A group of every column tile past CONV_WCAP faults FAULT_TILE (address
    0) before anything else is checked, the rule's tiling does not."""
    rng = np.random.default_rng(SEED)
    shape = dict(n=1, c_in=64, h_in=6, w_in=6, c_out=4, k_h=3, k_w=3, stride=1, pad=1)
    case = layer_case(rng, Op.CONV_FP, shape)
    ref = NumpyEngine(board="pynq_z2")
    assert ref.run(case.ddr.copy(), *case.run_args()).status == Fault.NONE
    ok = _with(case, tile_g=16, tile_br=0, tile_rb=0)   # all 16 column tiles: 16 x 9 taps <= 512
    assert ref.run(ok.ddr.copy(), *case.run_args()).status == Fault.NONE
    f = validate.fields(ok.ddr[case.prog:case.prog + INSN_BYTES].view(INSN_DTYPE)[0])
    big = dict(f, c_in=2048, tile_g=2048)                # 512 tiles x 9 taps > 512
    assert validate.check(big, ok.ddr.size, 0, board="pynq_z2") == (Fault.TILE, 0)
    assert validate.check(dict(big, tile_g=0), ok.ddr.size, 0, board="pynq_z2") == (Fault.SLOT, f["e_src"])
    for engine in (ref, csim_or_skip("pynq_z2")):
        fault = _with(layer_case(np.random.default_rng(SEED), Op.CONV_FP, shape), tile_g=2048,
                      c_in=2048, e_src=99)
        before = fault.ddr.copy()
        r = engine.run(fault.ddr, *fault.run_args())
        assert (r.status, r.pc, r.fault_addr) == (Fault.TILE, 0, 0)
        assert np.array_equal(fault.ddr, before)


TILINGS = [(0, 0, 0), (1, 1, 1), (1, 3, 0), (2, 2, 2), (3, 5, 3), (0, 4, 0), (2, 0, 1)]


@pytest.mark.parametrize("op, flags", [(Op.CONV_FP, Flag.BIAS | Flag.RELU), (Op.CONV_EB, Flag.RELU_MASK),
                                       (Op.CONV_WG, Flag.BIAS)])
def test_results_do_not_depend_on_the_tiling(op, flags):
    """The same layer under several tilings (groups, bands, EB blocks, each
    short at the end): the C-sim writes the bytes of the numpy engine, the
    same for every tiling (the layout of every case is the same), and its
    counters equal the cycle model's."""
    engine = csim_or_skip("pynq_z2")
    shape = dict(n=3, c_in=11, h_in=9, w_in=7, c_out=13, k_h=3, k_w=2, stride=1, pad=1)
    outs = set()
    for g, br, rb in TILINGS:
        case = layer_case(np.random.default_rng(SEED), op, dict(shape, tile_g=g, tile_br=br, tile_rb=rb),
                          flags)
        mine, theirs = case.ddr.copy(), case.ddr.copy()
        r = engine.run(mine, *case.run_args())
        assert r.status == 0 and r == NumpyEngine(board="pynq_z2").run(theirs, *case.run_args())
        assert np.array_equal(mine, theirs), (g, br, rb)
        insn = case.ddr[case.prog:case.prog + INSN_BYTES].view(INSN_DTYPE)[0]
        want = perfmodel.iterations(insn, "pynq_z2", table_len=case.table_len, insn_addr=case.prog,
                                    table_addr=case.table)
        assert engine.last_iters()[0] == want, (g, br, rb)
        mine[case.prog:case.prog + INSN_BYTES] = 0   # the instruction itself holds the tiling
        outs.add(mine.tobytes())
    assert len(outs) == 1


def test_distinct_splits():
    assert tiling._distinct_splits(10) == [10, 5, 4, 3, 2, 1]
    assert tiling._distinct_splits(1) == [1]
    for n in range(1, 60):
        s = tiling._distinct_splits(n)
        assert sorted(set(-(-n // m) for m in range(1, n + 1)), reverse=True) == s


def test_compiler_choice_fits_and_is_never_slower_than_the_rule():
    """Every CONV_* of LeNet-5 and CNV compiled for the Pynq-Z2 carries a
    tiling that fits, never slower in the cycle model than the rule's (0
    fields); CNV's fully connected EB runs in block mode with blocks of 4 row
    tiles (512 entries: 4 x 128 column tiles), as the rule does."""
    b = perfmodel.board("pynq_z2")
    for name in ("lenet5", "cnv"):
        prog = compile_model(build_model(name, default_input(name)), 16, board="pynq_z2")
        faster, blocks = [], []
        for insn in prog.insns:
            if int(insn["op"]) not in validate.CONV_OPS:
                continue
            f = validate.fields(insn)
            assert tiling.conv_plan(f, b).fits and f["tile_g"] >= 1 and f["tile_br"] >= 1
            mine = perfmodel.cycles(f, b)
            rule = perfmodel.cycles(dict(f, tile_g=0, tile_br=0, tile_rb=0), b)
            assert mine <= rule
            if tiling.conv_plan(f, b).bm:
                blocks.append((f["op"], f["c_in"], f["c_out"], f["tile_rb"]))
            if mine < rule:
                faster.append((f["op"], f["c_in"], f["c_out"], f["tile_rb"]))
        if name == "cnv":
            assert (Op.CONV_EB, 512, 512, 4) in blocks and (Op.CONV_EB, 256, 512, 4) in blocks


@pytest.mark.parametrize("op, flags", [(Op.CONV_FP, 0), (Op.CONV_EB, Flag.RELU_MASK), (Op.CONV_WG, 0)])
def test_partial_bands_are_read_in_one_burst_per_lane(op, flags):
    """A band of part of the plane (here 3 bands of a 10x12 plane) is read
    in one burst per lane through the channels' other rows (conv.cpp
    conv_span: the other rows of a plane are fewer bytes than a burst's
    latency moves), not one burst per channel: the C-sim still writes the
    numpy engine's bytes, its counters equal the model's, and the reads
    are at most a burst per (item, lane) and operand besides the weights
    and the fetch: far fewer than the c_in = 24 per lane of one per channel."""
    engine = csim_or_skip("pynq_z2")
    B = perfmodel.board("pynq_z2")
    shape = dict(n=2, c_in=24, h_in=10, w_in=12, c_out=4, k_h=3, k_w=3, stride=1, pad=1,
                 tile_g=0, tile_br=4, tile_rb=0)
    case = layer_case(np.random.default_rng(SEED), op, shape, flags)
    mine, theirs = case.ddr.copy(), case.ddr.copy()
    r = engine.run(mine, *case.run_args())
    assert r.status == 0 and r == NumpyEngine(board="pynq_z2").run(theirs, *case.run_args())
    assert np.array_equal(mine, theirs)
    insn = case.ddr[case.prog:case.prog + INSN_BYTES].view(INSN_DTYPE)[0]
    f = validate.fields(insn)
    plan = tiling.conv_plan(f, PYNQ)
    assert plan.bands == 3 and plan.groups == 1
    got = engine.last_iters()[0]
    assert got == perfmodel.iterations(insn, "pynq_z2", table_len=case.table_len,
                                       insn_addr=case.prog, table_addr=case.table)
    # items: row tiles x lane tiles x bands; per (item, lane) one column burst
    # and (EB mask, WG errors) one row burst; the weights a burst per row
    # tile (FP, WG none: it reads no weights), EB one per c_out channel
    items = (-(-plan.rows // B.pe_rows)) * (-(-f["n"] // B.pe_lanes)) * plan.bands
    per_lane = 2 if flags or op == Op.CONV_WG else 1
    weights = {Op.CONV_FP: -(-plan.rows // B.pe_rows), Op.CONV_EB: f["c_out"], Op.CONV_WG: 0}[op]
    fixed = 2   # the instruction and the exponent table
    assert got.rd_bursts <= fixed + weights + items * B.pe_lanes * per_lane, got
    assert got.rd_bursts < items * B.pe_lanes * f["c_in"] // 4


@pytest.mark.parametrize("flags", [0, Flag.BIAS])
def test_weight_gradient_blocks_row_tiles_in_groups(flags):
    """WG in one band runs in block mode with several groups (session 34): a
    pass per block and group holds the group's taps of the block's row
    tiles, so a lane's activations are read once per block and group, not
    once per row tile. A deep layer with one output position (CNV's L5
    shape, narrowed: 3x3 input, 3x3 kernel) tiled 4 column tiles a group and
    5 row tiles a block (with BIAS one bias tap a tile more: 5 x (4*9 + 1)
    <= TCAP) writes the numpy engine's bytes, its counters are the model's,
    and it reads the activations (c_in x 9 bytes an image) once per block
    where the one-group tiling reads them once per row tile; the last
    group is partial (13 column tiles) and so is the last block (12 row
    tiles)."""
    engine = csim_or_skip("pynq_z2")
    b = tiling.buffers("pynq_z2")
    ct, rt = 13, 12
    shape = dict(n=3, c_in=ct * b.pe_cols, h_in=3, w_in=3, c_out=rt * b.pe_rows, k_h=3, k_w=3, stride=1,
                 pad=0, tile_g=4, tile_br=0, tile_rb=5)
    case = layer_case(np.random.default_rng(SEED), Op.CONV_WG, shape, flags)
    insn = case.ddr[case.prog:case.prog + INSN_BYTES].view(INSN_DTYPE)[0]
    f = validate.fields(insn)
    plan = tiling.conv_plan(f, b)
    assert plan.fits and plan.bm and (plan.groups, plan.rb) == (4, 5)
    mine, theirs = case.ddr.copy(), case.ddr.copy()
    r = engine.run(mine, *case.run_args())
    assert r.status == Fault.NONE and r == NumpyEngine(board="pynq_z2").run(theirs, *case.run_args())
    assert np.array_equal(mine, theirs)
    got = engine.last_iters()[0]
    assert got == perfmodel.iterations(insn, "pynq_z2", table_len=case.table_len,
                                       insn_addr=case.prog, table_addr=case.table)
    # the same gradients as the one-group tiling (a row tile a pass), which
    # reads the activations rt times; the blocks read them cdiv(rt, 5) = 3 times
    one = case.ddr.copy()
    insn1 = one[case.prog:case.prog + INSN_BYTES].view(INSN_DTYPE)
    insn1[0]["tile_g"], insn1[0]["tile_rb"] = ct, 1
    assert engine.run(one, *case.run_args()).status == Fault.NONE
    one[case.prog:case.prog + INSN_BYTES] = mine[case.prog:case.prog + INSN_BYTES]   # but the tiling
    assert np.array_equal(one, mine)
    acts = f["n"] * f["c_in"] * 9
    errs = f["n"] * f["c_out"]
    fixed = INSN_BYTES + 4 * case.table_len
    assert got.rd == fixed + 3 * acts + plan.groups * errs
    assert engine.last_iters()[0].rd == fixed + rt * acts + errs
