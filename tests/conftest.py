"""What several test files share: the digits data set, the one decision of
whether the C-sim engine can be built here, and the helpers that run random
instruction cases (ctrain.tools.random_insn) and read their instructions; test files
import these with `from conftest import ...`. Markers are registered in pyproject.toml (`slow`: more
than about five seconds, end-to-end runs, builds and installs;
`python -m pytest -m "not slow"` is the quick run, the README's command runs
everything)."""
from pathlib import Path

import numpy as np
import pytest

from ctrain.datasets import get_dataset
from ctrain.engine import RunResult
from ctrain.errors import CTrainError
from ctrain.isa import INSN_BYTES, INSN_DTYPE
from ctrain.tools.random_insn import random_case

_CSIM = {}  # board -> the engine, or the reason it cannot be built


@pytest.fixture(scope="session")
def digits():
    """The shipped digits split, made once; its arrays are read-only so no
    test can change what the others see."""
    ds = get_dataset("digits")
    for a in (ds.train_x, ds.train_y, ds.test_x, ds.test_y):
        a.flags.writeable = False
    return ds


def shared_data(name):
    """../shared/data/<name> in a folder above this checkout (the real data
    sets some tests read), or None: a fresh clone has none."""
    for parent in Path(__file__).resolve().parents:
        d = parent / "shared" / "data" / name
        if d.is_dir():
            return d
    return None


def csim_or_skip(board=None):
    """The C-sim engine built for `board` (None: the default), or skip the
    test with the reason it cannot be built here (no g++, no ap_types
    headers: the engine's own CTrainError). Decided once per board."""
    if board not in _CSIM:
        from ctrain.engine import get_engine  # the C-sim module is loaded only when asked for
        try:
            _CSIM[board] = get_engine("csim", **({"board": board} if board else {}))
        except CTrainError as exc:
            _CSIM[board] = f"the C-sim engine cannot be built here: {exc}"
    if isinstance(_CSIM[board], str):
        pytest.skip(_CSIM[board])
    return _CSIM[board]


@pytest.fixture
def csim_engine():
    """The default board's C-sim engine (see csim_or_skip)."""
    return csim_or_skip()


def insn(case, index=0):
    """Writable structured view (shape (1,)) of instruction `index` inside a
    random case's DDR (ctrain.tools.random_insn)."""
    at = case.prog + index * INSN_BYTES
    return case.ddr[at:at + INSN_BYTES].view(INSN_DTYPE)


def run_case(engine, case):
    """Run `engine` on a copy of the case's DDR; returns (RunResult, ddr)."""
    ddr = case.ddr.copy()
    return engine.run(ddr, *case.run_args()), ddr


def first_case(op, want=lambda case: True, salt=0, tries=1000):
    """The first seeded random case of `op` (seeds [0, salt], [1, salt], ...)
    satisfying `want`."""
    for seed in range(tries):
        case = random_case(np.random.default_rng([seed, salt]), op)
        if want(case):
            return case
    raise AssertionError(f"no {op.name} case of the first {tries} seeds qualifies")


def assert_fault(engine, case, fault, addr, pc=0):
    """The engine stops at `pc` with `fault`/`addr` and the DDR is untouched."""
    got, ddr = run_case(engine, case)
    assert got == RunResult(fault, pc, addr)
    assert np.array_equal(ddr, case.ddr)
