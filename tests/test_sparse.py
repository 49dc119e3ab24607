"""Sparse convolutions and batch norm at the instruction level, on both
engines: sparse execution equals dense execution with the mask applied
(docs/numeric.md), large sparse layers agree byte for byte between the C-sim
and numpy, and the new validation rules (shapes, flags, slots, operands and
FAULT_INDEX with the offending entry's address) hold."""

import numpy as np
import pytest

from ctrain import validate
from ctrain.engine import RunResult
from ctrain.engine.numpy import NumpyEngine
from ctrain.isa import LIMITS, STATS_DTYPE, Fault, Flag, Op
from ctrain.tools.random_insn import layer_case, random_case
from conftest import csim_or_skip, insn, run_case as run

SEED = 20240613


@pytest.fixture(scope="module", params=["numpy", "csim"])
def engine(request):
    return NumpyEngine() if request.param == "numpy" else csim_or_skip()


def out(case, ddr, field, dtype, count):
    addr = int(insn(case)[field][0])
    return ddr[addr:addr + np.dtype(dtype).itemsize * count].view(dtype)


def stats(case, ddr):
    at = int(insn(case)["stats"][0])
    return ddr[at:at + 32].view(STATS_DTYPE)[0]


# ---------------------------------------------------------------- sparse == dense with the mask

EQUIV_SHAPES = [
    dict(n=3, c_in=5, h_in=9, w_in=11, c_out=7, k_h=3, k_w=3, stride=1, pad=1),
    dict(n=2, c_in=4, h_in=12, w_in=10, c_out=9, k_h=5, k_w=3, stride=2, pad=2),
    dict(n=9, c_in=40, h_in=1, w_in=1, c_out=12, k_h=1, k_w=1, stride=1, pad=0),
]


@pytest.mark.parametrize("shape", EQUIV_SHAPES, ids=["3x3", "strided", "fc"])
@pytest.mark.parametrize("density", [0.05, 0.2, 0.6])
def test_sparse_equals_dense_with_mask(engine, shape, density):
    rng = np.random.default_rng([SEED, int(density * 100), shape["c_in"]])
    s = dict(shape)
    co, k = s["c_out"], s["c_in"] * s["k_h"] * s["k_w"]
    weights = rng.integers(-127, 128, (co, s["c_in"], s["k_h"], s["k_w"])).astype(np.int8)
    mask = rng.random((co, k)) < density
    mask[0] = False  # an empty row
    mask[:, 1] = False  # an empty column
    mask[1, 0] = True
    masked = (weights.reshape(co, k) * mask).reshape(weights.shape)
    h_out = (s["h_in"] + 2 * s["pad"] - s["k_h"]) // s["stride"] + 1
    w_out = (s["w_in"] + 2 * s["pad"] - s["k_w"]) // s["stride"] + 1
    act = rng.integers(-128, 128, (s["n"], s["c_in"], s["h_in"], s["w_in"])).astype(np.int8)
    err = rng.integers(-128, 128, (s["n"], co, h_out, w_out)).astype(np.int8)
    for dense_op, sparse_op, flags in ((Op.CONV_FP, Op.SCONV_FP, Flag.BIAS | Flag.RELU),
                                       (Op.CONV_FP, Op.SCONV_FP, 0),
                                       (Op.CONV_EB, Op.SCONV_EB, Flag.RELU_MASK),
                                       (Op.CONV_EB, Op.SCONV_EB, 0),
                                       (Op.CONV_WG, Op.SCONV_WG, Flag.BIAS)):
        # the same random draws (bias, mask activations) for both: same seed
        dense = layer_case(np.random.default_rng(7), dense_op, s, flags, weights=masked,
                           act=act, err=err)
        sparse = layer_case(np.random.default_rng(7), sparse_op, s, flags, weights=weights,
                            mask=mask, act=act, err=err)
        rd, dd = run(engine, dense)
        rs, ds = run(engine, sparse)
        assert rd.status == rs.status == Fault.NONE
        if dense_op == Op.CONV_WG:
            gd = out(dense, dd, "dst", "<i4", co * k).reshape(co, k)
            gs = out(sparse, ds, "dst", "<i4", int(mask.sum()))
            rows, cols = np.nonzero(mask)
            assert np.array_equal(gs, gd[rows, cols])
            assert np.array_equal(out(sparse, ds, "dst2", "<i4", co), out(dense, dd, "dst2", "<i4", co))
            continue
        n_out = (err if dense_op == Op.CONV_FP else act).size
        assert np.array_equal(out(sparse, ds, "dst", np.int8, n_out),
                              out(dense, dd, "dst", np.int8, n_out)), (dense_op.name, flags)
        sd, ss = stats(dense, dd), stats(sparse, ds)
        assert sd.tobytes() == ss.tobytes()


def test_eb_reads_the_transposed_index(engine):
    """A transposed index naming other values than the CSR changes SCONV_EB's
    result and nothing else (FP and WG follow the CSR)."""
    rng = np.random.default_rng(SEED)
    s = dict(n=2, c_in=3, h_in=5, w_in=5, c_out=4, k_h=3, k_w=3, stride=1, pad=1)
    case = layer_case(rng, Op.SCONV_EB, s, density=0.5)
    f = validate.fields(insn(case)[0])
    _, ddr0 = run(engine, case)
    _, _, _, tpos, _ = validate.index_arrays(case.ddr, f)
    if tpos.size > 1:
        tpos[:] = np.roll(tpos.copy(), 1)  # still valid: every tpos < Z
    r, ddr1 = run(engine, case)
    assert r.status == Fault.NONE
    n_out = s["n"] * s["c_in"] * s["h_in"] * s["w_in"]
    assert not np.array_equal(out(case, ddr0, "dst", np.int8, n_out),
                              out(case, ddr1, "dst", np.int8, n_out))


# ---------------------------------------------------------------- large layers, C-sim vs numpy

_CONV = dict(n=10, c_in=6, h_in=14, w_in=14, c_out=19, k_h=5, k_w=5, stride=1, pad=0)
_PBANDS = dict(n=2, c_in=48, h_in=40, w_in=40, c_out=6, k_h=3, k_w=3, stride=1, pad=1)
BIG = [
    (Op.SCONV_FP, Flag.BIAS | Flag.RELU, _CONV, 0.2),
    (Op.SCONV_EB, Flag.RELU_MASK, _CONV, 0.2),
    (Op.SCONV_WG, Flag.BIAS, _CONV, 0.2),
    (Op.SCONV_FP, Flag.BIAS, dict(n=3, c_in=200, h_in=5, w_in=7, c_out=9, k_h=5, k_w=5,
                                  stride=2, pad=2), 0.3),   # channel groups
    (Op.SCONV_WG, Flag.BIAS, dict(n=3, c_in=200, h_in=5, w_in=7, c_out=9, k_h=5, k_w=5,
                                  stride=2, pad=2), 0.3),
    (Op.SCONV_EB, Flag.RELU_MASK, dict(n=2, c_in=3, h_in=6, w_in=300, c_out=5, k_h=3, k_w=4,
                                       stride=3, pad=1), 0.5),   # x tiles
    (Op.SCONV_FP, 0, dict(n=2, c_in=60, h_in=3, w_in=3, c_out=3, k_h=5, k_w=5, stride=1,
                          pad=2), 0.95),   # lists longer than the on-chip buffer
    (Op.SCONV_EB, 0, dict(n=2, c_in=3, h_in=3, w_in=3, c_out=60, k_h=5, k_w=5, stride=1,
                          pad=2), 0.95),
    (Op.SCONV_WG, Flag.BIAS, dict(n=20, c_in=400, h_in=1, w_in=1, c_out=37, k_h=1, k_w=1,
                                  stride=1, pad=0), 0.2),   # fully connected
    (Op.SCONV_FP, Flag.BIAS | Flag.RELU, _PBANDS, 0.2),   # position-parallel bands
    (Op.SCONV_EB, Flag.RELU_MASK, dict(_PBANDS, c_in=6, c_out=48, pad=0), 0.2),
    (Op.SCONV_WG, Flag.BIAS, _PBANDS, 0.2),
    (Op.BN_FP, Flag.RELU, None, None),
    (Op.BN_BP, Flag.RELU_MASK, None, None),
]


@pytest.mark.parametrize("board", ["pynq_z2", "zcu104"])
def test_large_sparse_layers_match_numpy(board):
    csim, ref = csim_or_skip(board), NumpyEngine(board=board)   # the ZCU104 refuses the row-tile cases alike
    rng = np.random.default_rng(SEED)
    for op, flags, shape, density in BIG:
        if shape is None:  # batch norm over a large tensor: several chunks, many channels
            case = random_case(rng, op)
            for _ in range(50):
                case = random_case(rng, op)
                if insn(case)["flags"][0] == flags:
                    break
        else:
            case = layer_case(rng, op, shape, flags, density=density)
        a, b = case.ddr.copy(), case.ddr.copy()
        assert csim.run(a, *case.run_args()) == ref.run(b, *case.run_args())
        diff = np.flatnonzero(a != b)
        assert diff.size == 0, f"{op.name}: {diff.size} bytes differ, first at {diff[0]}"


# ---------------------------------------------------------------- validation of the new opcodes

def first_case(op, want=lambda case: True):
    for seed in range(1000):
        case = random_case(np.random.default_rng([seed, 77]), op)
        if want(case):
            return case
    raise AssertionError("no such case")


def assert_fault(engine, case, fault, addr, pc=0):
    got, ddr = run(engine, case)
    assert got == RunResult(fault, pc, addr)
    assert np.array_equal(ddr, case.ddr)


def _index_part(case, name):
    """(array view into case.ddr, byte address of entry 0, entry size)."""
    f = validate.fields(insn(case)[0])
    parts = dict(zip(("rowptr", "col", "tptr", "tpos", "trow"), validate.index_arrays(case.ddr, f)))
    lay = validate.index_layout(f["c_out"], validate.sparse_cols(f), f["count"])
    return parts[name], f["aux"] + lay[name], parts[name].itemsize


@pytest.mark.parametrize("op", [Op.SCONV_FP, Op.SCONV_EB, Op.SCONV_WG])
@pytest.mark.parametrize("part,entry,value", [
    ("rowptr", 0, 1),                 # rowptr[0] != 0
    ("rowptr", 1, "huge"),            # a later entry smaller than this one
    ("rowptr", -1, "z+1"),            # rowptr[R] != Z
    ("col", -1, "cols"),              # a column out of range
    ("tptr", 0, 2),
    ("tptr", -1, "z-1"),
    ("tpos", 0, "z"),
    ("trow", -1, "rows"),
])
def test_index_faults_name_the_entry(engine, op, part, entry, value):
    case = first_case(op, lambda c: insn(c)["count"][0] >= 2 and insn(c)["c_out"][0] >= 2)
    f = validate.fields(insn(case)[0])
    arr, base, size = _index_part(case, part)
    entry = entry % arr.size
    z, rows, cols = f["count"], f["c_out"], validate.sparse_cols(f)
    value = {"huge": z + 5, "z+1": z + 1, "z-1": z - 1, "z": z, "cols": cols, "rows": rows}.get(value, value)
    arr[entry] = value
    fault, addr = validate.check(f, case.ddr.size, case.table_len, case.ddr)
    assert fault == Fault.INDEX
    if part == "rowptr" and entry == 1:  # entry 1 is now above entry 2: the later one is reported
        assert addr == base + 2 * size or (arr.size == 2 and addr == base + size)
    else:
        assert addr == base + entry * size
    assert_fault(engine, case, Fault.INDEX, addr)


def test_index_faults_come_in_memory_order(engine):
    case = first_case(Op.SCONV_WG, lambda c: insn(c)["count"][0] >= 2)
    trow, trow_at, _ = _index_part(case, "trow")
    col, col_at, _ = _index_part(case, "col")
    trow[0] = 60000
    col[-1] = 60000
    f = validate.fields(insn(case)[0])
    assert validate.check(f, case.ddr.size, case.table_len, case.ddr) == (
        Fault.INDEX, col_at + 2 * (col.size - 1))
    assert_fault(engine, case, Fault.INDEX, col_at + 2 * (col.size - 1))


def test_index_is_checked_after_overlap(engine):
    case = first_case(Op.SCONV_FP)
    rowptr, _, _ = _index_part(case, "rowptr")
    rowptr[0] = 9
    insn(case)["dst"] = insn(case)["src"]  # output onto the input
    assert_fault(engine, case, Fault.OVERLAP, int(insn(case)["dst"][0]))


def test_compiler_checks_without_ddr():
    """validate.check without a DDR image (the compiler's use) skips the index
    contents and accepts a valid instruction."""
    case = first_case(Op.SCONV_EB)
    f = validate.fields(insn(case)[0])
    assert validate.check(f, case.ddr.size, case.table_len) == (Fault.NONE, 0)
    rowptr, _, _ = _index_part(case, "rowptr")
    rowptr[0] = 3
    assert validate.check(f, case.ddr.size, case.table_len) == (Fault.NONE, 0)
    assert validate.check(f, case.ddr.size, case.table_len, case.ddr)[0] == Fault.INDEX


def _set(**values):
    def apply(i):
        for name, value in values.items():
            i[name] = value
    return apply


def _wide_sparse(i):
    """c_in*k_h*k_w beyond CTRAIN_MAX_SPARSE_COLS with everything else valid."""
    i["c_in"], i["k_h"], i["k_w"], i["pad"], i["stride"] = LIMITS["CH"], 6, 6, 0, 1
    i["h_in"] = i["w_in"] = 6
    i["h_out"] = i["w_out"] = 1


@pytest.mark.parametrize("op,mutate", [
    (Op.SCONV_FP, _set(count=0)),
    (Op.SCONV_EB, lambda i: i.__setitem__("count", i["c_out"] * i["c_in"] * i["k_h"] * i["k_w"] + 1)),
    (Op.SCONV_WG, _set(stride=0)),
    (Op.SCONV_FP, _wide_sparse),
    (Op.BN_FP, lambda i: i.__setitem__("c_out", i["c_in"] + 1)),
    (Op.BN_BP, lambda i: i.__setitem__("h_out", i["h_in"] + 1)),
    (Op.BN_FP, lambda i: i.__setitem__("w_out", i["w_in"] + 1)),
    (Op.BN_BP, _set(n=0)),
    (Op.BN_FP, _set(h_in=LIMITS["DIM"] + 1, h_out=LIMITS["DIM"] + 1)),
])
def test_shape_faults_of_new_opcodes(engine, op, mutate):
    case = first_case(op)
    mutate(insn(case))
    assert_fault(engine, case, Fault.SHAPE, 0)


@pytest.mark.parametrize("op,flag", [(Op.SCONV_FP, Flag.RELU_MASK), (Op.SCONV_EB, Flag.BIAS),
                                     (Op.SCONV_WG, Flag.RELU), (Op.BN_FP, Flag.BIAS),
                                     (Op.BN_BP, Flag.RELU), (Op.BN_FP, 8)])
def test_flags_of_new_opcodes(engine, op, flag):
    case = first_case(op)
    insn(case)["flags"] |= int(flag)
    assert_fault(engine, case, Fault.OPCODE, 0)


def test_bn_fp_always_reads_its_offset_slot(engine):
    case = first_case(Op.BN_FP)
    insn(case)["e_src3"] = case.table_len
    assert_fault(engine, case, Fault.SLOT, case.table_len)
    case = first_case(Op.BN_BP)
    insn(case)["e_src3"] = 10**6  # BN_BP has no B
    assert run(engine, case)[0].status == Fault.NONE


@pytest.mark.parametrize("op,field,offset", [(Op.SCONV_FP, "aux", 2), (Op.SCONV_WG, "dst", 2),
                                             (Op.BN_FP, "src3", 1), (Op.BN_BP, "src2", 3)])
def test_alignment_of_new_operands(engine, op, field, offset):
    case = first_case(op)
    insn(case)[field] += offset
    assert_fault(engine, case, Fault.ALIGN, int(insn(case)[field][0]))


def test_index_may_not_be_written_over(engine):
    case = first_case(Op.SCONV_WG)
    insn(case)["dst"] = insn(case)["aux"]
    assert_fault(engine, case, Fault.OVERLAP, int(insn(case)["dst"][0]))


def test_index_block_size_and_bounds(engine):
    case = first_case(Op.SCONV_FP, lambda c: insn(c)["count"][0] % 2 == 1)
    f = validate.fields(insn(case)[0])
    z, r, k = f["count"], f["c_out"], validate.sparse_cols(f)
    size = {name: nbytes for name, _, nbytes, _ in validate.operands(f)}["aux"]
    assert size == 4 * (r + 1) + 2 * z + 2 + 4 * (k + 1) + 4 * z + 2 * z
    insn(case)["aux"] = (case.ddr.size - size) // 4 * 4 + 4
    assert_fault(engine, case, Fault.BOUNDS, int(insn(case)["aux"][0]))
