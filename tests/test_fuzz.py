"""A short run of the decoder fuzzer (`ctrain fuzz` runs long ones): no engine
crashes, hangs, writes outside its DDR window or gives an unclear fault, and
the two engines agree on every stream."""
import numpy as np
import pytest

from ctrain import isa
from ctrain.tools import fuzz, random_insn
from ctrain.engine.numpy import NumpyEngine

from conftest import csim_or_skip


@pytest.mark.slow
def test_fuzz_both_engines_clean(csim_engine):
    rep = fuzz.fuzz([NumpyEngine(), csim_engine], streams=1500, seed=7, progress=False)
    assert fuzz.clean(rep), fuzz.format_report(rep)
    for name in ("numpy", "csim"):
        r = rep[name]
        assert r["completed"] > 100 and sum(r["rejected"].values()) > 300
        # every fault code the decoder has comes up
        assert set(r["rejected"]) >= {isa.fault_name(f) for f in isa.Fault if f != isa.Fault.NONE}


@pytest.mark.slow
def test_fuzz_both_engines_clean_without_the_row_tile_path():
    """The same streams on the ZCU102, a board without the row-tile path:
    the sparse instructions it refuses (FAULT_TILE) come up, and a refused
    one with a bad index faults INDEX in both engines (the numpy engine
    said TILE until session 24: 21 mismatches in these streams)."""
    board = "zcu102"
    rep = fuzz.fuzz([NumpyEngine(board=board), csim_or_skip(board)], streams=800, seed=11,
                    progress=False)
    assert fuzz.clean(rep), fuzz.format_report(rep)
    assert rep["numpy"]["rejected"]["FAULT_TILE"] > 20 and rep["numpy"]["rejected"]["FAULT_INDEX"] > 5


def _overlapping_case(shift):
    rng = np.random.default_rng(3)
    while True:
        case = random_insn.random_case(rng, isa.Op.CONV_FP)
        insn = case.ddr[case.prog:case.prog + isa.INSN_BYTES].view(isa.INSN_DTYPE)
        if int(insn[0]["n"]) * int(insn[0]["c_out"]) * int(insn[0]["h_out"]) * int(insn[0]["w_out"]) > 8:
            break
    insn[0]["dst"] = int(insn[0]["src"]) + shift  # output lands on the input
    return case, int(insn[0]["dst"])


@pytest.mark.parametrize("engine", ["numpy", "csim"])
def test_output_overlapping_input_is_a_fault(engine):
    eng = NumpyEngine() if engine == "numpy" else csim_or_skip()
    case, dst = _overlapping_case(4)
    before = case.ddr.copy()
    res = eng.run(case.ddr, *case.run_args())
    assert (res.status, res.pc, res.fault_addr) == (isa.Fault.OVERLAP, 0, dst)
    assert np.array_equal(before, case.ddr)


def test_cli_fuzz(capsys):
    from ctrain.cli import main
    assert main(["fuzz", "--streams", "200", "--no-progress"]) == 0
    assert "crashes 0, hangs 0, writes outside DDR 0" in capsys.readouterr().out
    assert main(["fuzz", "--streams", "50", "--board", "aup_zu3", "--no-progress"]) == 0
    assert main(["fuzz", "--board", "vcu118"]) == 2
    assert "invalid choice: 'vcu118'" in capsys.readouterr().err
