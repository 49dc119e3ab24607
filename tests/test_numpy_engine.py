"""The numpy engine against the plain reference (tests/reference.py), byte for
byte, on random valid cases of every opcode; and every fault it must raise."""
import itertools

import numpy as np
import pytest

import conftest
import reference
from conftest import insn
from ctrain import validate
from ctrain.engine import RunResult
from ctrain.engine.numpy import top as numpy_top
from ctrain.engine.numpy import NumpyEngine
from ctrain.isa import INSN_BYTES, LIMITS, STATS_DTYPE, Fault, Flag, Op
from ctrain.tools.random_insn import OPS, random_case

ENGINE = NumpyEngine()
CASES_PER_OP = 150


def run(case):
    """Run the engine on a copy of the case's DDR; returns (RunResult, ddr)."""
    return conftest.run_case(ENGINE, case)


def written_mask(case):
    """True on the bytes the case's first instruction may write."""
    mask = np.zeros(case.ddr.size, bool)
    outputs = {"dst", "dst2", "stats"} | ({"src2", "src3"} if case.op == Op.UPDATE else set())
    for name, addr, nbytes, _ in validate.operands(insn(case)[0]):
        if name in outputs:
            mask[addr:addr + nbytes] = True
    return mask


def first_case(op, want=lambda case: True):
    """The first seeded random case of `op` satisfying `want`."""
    return conftest.first_case(op, want, salt=99)


# ------------------------------------------------------------ random cases

@pytest.mark.parametrize("seed", range(CASES_PER_OP))
@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_matches_reference(op, seed):
    case = random_case(np.random.default_rng([seed, int(op)]), op)
    expected = case.ddr.copy()
    want = reference.run(expected, *case.run_args())
    got, ddr = run(case)
    assert tuple(got) == want
    diff = np.flatnonzero(ddr != expected)
    assert diff.size == 0, f"bytes differ at {diff[:8]} (layout {case.offsets})"
    if op != Op.HALT:
        outside = ~written_mask(case)
        assert np.array_equal(ddr[outside], case.ddr[outside])


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_lanes_match_reference(op, threads, monkeypatch):
    """Every instruction split into lanes (PAR_WORK 0: even the smallest),
    over images or channels, byte for byte as the reference."""
    monkeypatch.setattr(numpy_top, "PAR_WORK", 0)
    engine = NumpyEngine(threads=threads)
    for seed in range(40):
        case = random_case(np.random.default_rng([seed, int(op), 5]), op)
        expected = case.ddr.copy()
        want = reference.run(expected, *case.run_args())
        ddr = case.ddr.copy()
        assert tuple(engine.run(ddr, *case.run_args())) == want
        diff = np.flatnonzero(ddr != expected)
        assert diff.size == 0, f"seed {seed}: bytes differ at {diff[:8]} (layout {case.offsets})"


@pytest.mark.slow
def test_random_cases_reach_every_flag_combination_and_saturation():
    seen, saturated = set(), set()
    for op, seed in itertools.product(OPS, range(CASES_PER_OP)):
        case = random_case(np.random.default_rng([seed, int(op)]), op)
        seen.add((op, int(insn(case)["flags"][0])))
        _, ddr = run(case)
        if op != Op.HALT:
            stats = int(insn(case)["stats"][0])
            if ddr[stats:stats + 32].view(STATS_DTYPE)["sat"][0]:
                saturated.add(op)
    combos = {(op, f) for op, flags in validate.ALLOWED_FLAGS.items()
              for f in range(8) if f & ~flags == 0}
    assert combos <= seen
    assert {Op.CONV_FP, Op.CONV_EB, Op.CONV_WG, Op.UPDATE, Op.POOL_BP} <= saturated


# ------------------------------------------------------------ faults

def assert_fault(case, fault, addr, pc=0):
    """The engine stops at `pc` with `fault`/`addr` and the DDR is untouched."""
    conftest.assert_fault(ENGINE, case, fault, addr, pc)


def with_flag(flag):
    return lambda case: bool(insn(case)["flags"][0] & flag)


@pytest.mark.parametrize("op,flags", [
    (Op.CONV_FP, Flag.RELU_MASK), (Op.CONV_EB, Flag.BIAS), (Op.CONV_WG, Flag.RELU),
    (Op.POOL_FP, Flag.RELU_MASK), (Op.UPDATE, Flag.BIAS), (Op.RELU_BP, Flag.RELU_MASK),
    (Op.CONV_FP, 8), (Op.HALT, Flag.RELU)])
def test_flags_the_opcode_does_not_take(op, flags):
    case = first_case(op)
    insn(case)["flags"] |= int(flags)
    assert_fault(case, Fault.OPCODE, 0)


@pytest.mark.parametrize("opcode", [Op.INVALID, Op.COUNT, 0xFFFFFFFF])
def test_unknown_opcode(opcode):
    case = first_case(Op.RELU_FP)
    insn(case)["op"] = opcode
    assert_fault(case, Fault.OPCODE, 0)


def _set(**values):
    def apply(i):
        for name, value in values.items():
            i[name] = value
    return apply


def _recompute_out(i):
    for size, k, out in (("h_in", "k_h", "h_out"), ("w_in", "k_w", "w_out")):
        i[out] = (i[size] + 2 * i["pad"] - i[k]) // i["stride"] + 1


def _pad_at_kernel(i):
    i["pad"] = min(int(i["k_h"][0]), int(i["k_w"][0]))
    _recompute_out(i)


def _kernel_beyond_limit(i):
    i["k_h"] = LIMITS["KERNEL"] + 1
    i["h_in"] = LIMITS["KERNEL"] + 1
    _recompute_out(i)


def _input_smaller_than_kernel(i):
    """h_in + 2*pad < k_h with an h_out that truncating division would accept."""
    i["k_h"], i["k_w"], i["pad"], i["stride"], i["h_in"], i["h_out"] = 5, 1, 0, 2, 4, 1
    i["w_out"] = (i["w_in"] - 1) // 2 + 1


@pytest.mark.parametrize("op,mutate", [
    (Op.CONV_FP, _kernel_beyond_limit),
    (Op.CONV_FP, _set(stride=0)),
    (Op.CONV_EB, _set(stride=LIMITS["STRIDE"] + 1)),
    (Op.CONV_FP, _pad_at_kernel),
    (Op.CONV_WG, _pad_at_kernel),
    (Op.CONV_FP, lambda i: i.__setitem__("h_out", i["h_out"] + 1)),
    (Op.CONV_WG, lambda i: i.__setitem__("w_out", i["w_out"] - 1)),
    (Op.CONV_FP, _input_smaller_than_kernel),
    (Op.CONV_FP, _set(n=0)),
    (Op.CONV_EB, _set(n=LIMITS["BATCH"] + 1)),
    (Op.CONV_WG, _set(c_in=LIMITS["CH"] + 1)),
    (Op.CONV_FP, _set(c_out=0)),
    (Op.POOL_FP, _set(pad=1)),
    (Op.POOL_BP, lambda i: i.__setitem__("c_out", i["c_in"] + 1)),
    (Op.POOL_FP, _set(h_in=LIMITS["DIM"] + 1, k_h=1, stride=1, h_out=LIMITS["DIM"] + 1)),
    (Op.RELU_FP, _set(count=0)),
    (Op.RELU_BP, _set(count=LIMITS["COUNT"] + 1)),
    (Op.UPDATE, _set(count=0, count_w=0)),
    (Op.UPDATE, lambda i: i.__setitem__("count_w", i["count"] + 1)),
])
def test_shape_faults(op, mutate):
    case = first_case(op)
    mutate(insn(case))
    assert_fault(case, Fault.SHAPE, 0)


def test_slot_beyond_table():
    case = first_case(Op.CONV_FP)
    insn(case)["e_dst"] = case.table_len
    assert_fault(case, Fault.SLOT, case.table_len)


def test_slot_faults_report_the_first_bad_field():
    case = first_case(Op.CONV_EB)
    insn(case)["e_src2"] = case.table_len + 7
    insn(case)["e_dst"] = case.table_len + 1
    assert_fault(case, Fault.SLOT, case.table_len + 7)


def test_bias_slot_checked_only_with_bias():
    case = first_case(Op.CONV_FP, lambda c: not insn(c)["flags"][0] & Flag.BIAS)
    insn(case)["e_src3"] = 10**6
    assert run(case)[0].status == Fault.NONE
    case = first_case(Op.CONV_FP, with_flag(Flag.BIAS))
    insn(case)["e_src3"] = 10**6
    assert_fault(case, Fault.SLOT, 10**6)


def test_update_parameter_block_must_fit_in_table():
    case = first_case(Op.UPDATE)
    insn(case)["e_par"] = case.table_len - 5
    assert_fault(case, Fault.SLOT, case.table_len - 5)
    insn(case)["e_par"] = case.table_len - 6
    assert run(case)[0].status == Fault.NONE


@pytest.mark.parametrize("op,field,offset,want", [
    (Op.CONV_FP, "src3", 2, with_flag(Flag.BIAS)),
    (Op.CONV_WG, "dst", 1, lambda c: True),
    (Op.CONV_WG, "dst2", 2, with_flag(Flag.BIAS)),
    (Op.UPDATE, "src", 2, lambda c: True),
    (Op.UPDATE, "src3", 3, lambda c: True),
    (Op.RELU_FP, "stats", 4, lambda c: True),
])
def test_misaligned_operands(op, field, offset, want):
    case = first_case(op, want)
    insn(case)[field] += offset
    assert_fault(case, Fault.ALIGN, int(insn(case)[field][0]))


def test_int8_operands_need_no_alignment():
    case = first_case(Op.RELU_FP, lambda c: int(insn(c)["dst"][0]) != int(insn(c)["src"][0]))
    insn(case)["src"] += 1
    assert run(case)[0].status == Fault.NONE


def _size_of(case, field):
    return {name: nbytes for name, _, nbytes, _ in validate.operands(insn(case)[0])}[field]


@pytest.mark.parametrize("op,field", [
    (Op.CONV_FP, "dst"), (Op.CONV_EB, "src2"), (Op.CONV_WG, "dst"), (Op.UPDATE, "src3"),
    (Op.POOL_BP, "aux"), (Op.RELU_BP, "src")])
def test_operand_beyond_window(op, field):
    case = first_case(op)
    insn(case)[field] = (case.ddr.size - _size_of(case, field)) // 4 * 4 + 4  # still aligned
    assert_fault(case, Fault.BOUNDS, int(insn(case)[field][0]))


def test_operand_ending_at_window_end_is_fine():
    case = first_case(Op.RELU_FP)
    insn(case)["dst"] = case.ddr.size - _size_of(case, "dst")
    assert run(case)[0].status == Fault.NONE


def test_stats_beyond_window():
    case = first_case(Op.POOL_FP)
    insn(case)["stats"] = (case.ddr.size - 32) // 8 * 8 + 8
    assert_fault(case, Fault.BOUNDS, int(insn(case)["stats"][0]))


def test_bounds_checked_in_operand_order():
    case = first_case(Op.CONV_FP)
    insn(case)["dst"] = 0xFFFFFF00
    insn(case)["src"] = 0xFFFFFFF0
    assert_fault(case, Fault.BOUNDS, 0xFFFFFFF0)


@pytest.mark.parametrize("first,second", [
    ("opcode", "shape"), ("shape", "slot"), ("slot", "align"), ("align", "bounds")])
def test_check_order(first, second):
    breakers = {
        "opcode": lambda i: i.__setitem__("flags", Flag.RELU_MASK),
        "shape": lambda i: i.__setitem__("stride", 0),
        "slot": lambda i: i.__setitem__("e_dst", 10**6),
        "align": lambda i: i.__setitem__("src3", i["src3"] + 2),
        "bounds": lambda i: i.__setitem__("dst", 0xFFFFFF00),
    }
    case = first_case(Op.CONV_FP, with_flag(Flag.BIAS))
    breakers[second](insn(case))
    breakers[first](insn(case))
    got, ddr = run(case)
    assert got.status == Fault[first.upper()] and got.pc == 0
    assert np.array_equal(ddr, case.ddr)


def test_fault_keeps_earlier_writes():
    case = first_case(Op.CONV_FP, lambda c: c.n_insn == 2)
    insn(case, 1)["op"] = Op.INVALID
    expected = case.ddr.copy()
    reference.run(expected, case.prog, 1, case.table, case.table_len)
    got, ddr = run(case)
    assert got == RunResult(Fault.OPCODE, 1, 0)
    assert np.array_equal(ddr, expected)


@pytest.mark.parametrize("change,which", [
    (dict(n_insn=lambda c: c.n_insn + (c.ddr.size - c.prog) // INSN_BYTES), "prog"),
    (dict(prog=lambda c: c.prog + 2), "prog"),
    (dict(prog=lambda c: 0xFFFFFFFC), "prog"),
    (dict(table=lambda c: (c.ddr.size - 4 * c.table_len) // 4 * 4 + 4), "table"),
    (dict(table=lambda c: c.table + 2), "table"),
    (dict(table_len=lambda c: LIMITS["TABLE"] + 1, table=lambda c: 0), "table"),
])
def test_program_and_table_must_lie_in_window(change, which):
    case = first_case(Op.CONV_WG)
    case.ddr = np.concatenate([case.ddr, np.zeros(4 * 4096, np.uint8)])  # room for a long table
    for name, value in change.items():
        setattr(case, name, value(case))
    assert_fault(case, Fault.PROGRAM, getattr(case, which))


# ------------------------------------------------------------ HALT and pc

def test_halt_stops_before_the_rest():
    case = first_case(Op.RELU_FP, lambda c: c.n_insn == 2)
    expected = case.ddr.copy()
    assert reference.run(expected, *case.run_args()) == (0, 1, 0)
    got, ddr = run(case)
    assert got == RunResult(Fault.NONE, 1, 0)
    assert np.array_equal(ddr, expected)


def test_halt_first_runs_nothing():
    case = first_case(Op.HALT, lambda c: c.n_insn == 2)
    assert insn(case, 1)["op"][0] == Op.INVALID
    assert_fault(case, Fault.NONE, 0, pc=0)


def test_running_off_the_end_reports_n_insn():
    case = first_case(Op.POOL_FP, lambda c: c.n_insn == 1)
    assert run(case)[0] == RunResult(Fault.NONE, 1, 0)
    case.n_insn = 0
    assert_fault(case, Fault.NONE, 0, pc=0)
