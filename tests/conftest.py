"""What several test files share: the digits data set, the one decision of
whether the C-sim engine can be built here, and the helpers that run random
instruction cases (ctrain.tools.random_insn) and read their instructions; test files
import these with `from conftest import ...`. Markers are registered in pyproject.toml (`slow`: more
than about five seconds, end-to-end runs, builds and installs;
`python -m pytest -m "not slow"` is the quick run, the README's command runs
everything)."""
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from ctrain.datasets import get_dataset
from ctrain.engine import RunResult
from ctrain.errors import CTrainError
from ctrain.isa import INSN_BYTES, INSN_DTYPE
from ctrain.tools.random_insn import random_case

_CSIM = {}  # board -> the engine, or the reason it cannot be built
OVERLAY = Path(__file__).resolve().parent.parent / "overlay"


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


def checkpoint_without(cfg, dataset, path, field):
    """A checkpoint of one step of `cfg` as a CTrain from before TrainConfig
    had `field` wrote it (the field absent from its config); returns `path`."""
    from ctrain import checkpoint
    from ctrain.train import Trainer
    t = Trainer(cfg, dataset=dataset)
    t.step(t.batch_indices())
    t.save(str(path))
    arrays, meta = checkpoint.load(str(path))
    del meta["config"][field]
    checkpoint.save(str(path), arrays, meta)
    return str(path)


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


# ------------------------------------------------------------ prebuilding
# The C-sim builds (a g++ compile of the HLS per board, half a minute each),
# the synthesis-branch compiles and the testbench's are the suite's longest
# waits on a cold cache. A background worker runs them when collection
# ends, on the second core, in the order the selected tests first need them,
# while the tests run on the first (two at a time for what the first module
# using the C-sim needs: its tests would wait anyway). A test that comes first builds a board
# itself (the build's file lock makes whichever comes second wait for the
# first instead of compiling again); test_overlay_check's tests wait for its
# makes (claim_prebuild) before running their own, or drop them if not yet
# started. Tests marked after_builds (every board's C-sim at once) run last.
# The tests assert what they did before: a board's engine still comes from
# ctrain's build and cache, the stamps and the testbench from the same make
# targets. CTRAIN_TEST_PREBUILD=0 turns the worker off.

def _csim_boards(item):
    """The boards whose C-sim engine the item uses: a test that names the
    C-sim (the csim fixtures, csim_or_skip, the engine name) needs its board
    parameter's, else the default board's."""
    from ctrain import boards
    code = getattr(getattr(item, "function", None), "__code__", None)
    if not (any("csim" in f for f in getattr(item, "fixturenames", ()))
            or (code is not None and ("csim_or_skip" in code.co_names or "csim" in code.co_consts))):
        return []
    params = getattr(getattr(item, "callspec", None), "params", {})
    return [v for v in params.values() if isinstance(v, str) and v in boards.BOARDS] or [boards.DEFAULT_BOARD]


#: test_overlay_check's makes, in the order it runs them, with the tests that
#: run each: every board's synthesis branch through g++ and clang (its
#: stamps), the testbench, the MAC-shared builds' testbenches
_MAKES = (("check-compile", ("check-compile",),
           {"test_synthesis_branch_compiles_for_every_board", "test_make_check"}),
          ("testbench-pynq_z2", ("BOARD=pynq_z2", "build/csim/pynq_z2/ctrain_tb"), {"test_csim_testbench"}),
          *((f"shared-{b}", (f"BOARD={b}", f"build/shared/{b}/ctrain_tb"),
             {f"test_mac_shared_build_passes_the_testbench[{b}]"}) for b in ("pynq_z2", "zcu104")))


class _Prebuild:
    """A queue of build commands run in order by background threads, each
    command a process group of its own: two threads while the first
    `first` jobs remain (what the first C-sim tests wait for, with the
    tests' own core idle meanwhile), then one beside the tests; stop() ends
    what runs at session end."""

    def __init__(self, jobs, first):
        self.jobs = list(jobs)          # (name, argv, cwd), in the order they are needed
        self.next = 0
        self.done = {name: threading.Event() for name, *_ in self.jobs}   # finished or dropped
        self.started = set()
        self.procs = set()
        self.stopping = False
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(limit,), name="ctrain-prebuild", daemon=True)
                        for limit in (len(self.jobs), first)]
        for t in self.threads:
            t.start()

    def _take(self, limit):
        """The next job to start (a Popen), None when this thread is done."""
        with self.lock:
            while self.next < limit and not self.stopping:
                name, argv, cwd = self.jobs[self.next]
                self.next += 1
                if self.done[name].is_set():   # claimed by its test
                    continue
                self.started.add(name)
                try:
                    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, start_new_session=True)
                except OSError:
                    self.done[name].set()
                    continue
                proc.job = name
                self.procs.add(proc)
                return proc
            return None

    def _run(self, limit):
        while (proc := self._take(limit)) is not None:
            proc.wait()   # a failed build is the test's to report: it builds again
            with self.lock:
                self.procs.discard(proc)
            self.done[proc.job].set()

    def claim(self, name):
        """Before a test builds `name` itself: a queued job is dropped, a
        running one waited for (two makes of one target would clash)."""
        event = self.done.get(name)
        if event is None:
            return
        with self.lock:
            if name not in self.started:
                event.set()
        event.wait()

    def stop(self):
        with self.lock:
            self.stopping = True
            procs = list(self.procs)
        for proc in procs:
            if proc.poll() is None:
                try:   # SIGINT: g++ stops, the build's cleanup runs
                    os.killpg(proc.pid, signal.SIGINT)
                    proc.wait(timeout=20)
                except (OSError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except OSError:
                        pass
                    proc.wait()
        for t in self.threads:
            t.join(timeout=30)


_PREBUILD = []


def _overlay_make(*args):
    """make in overlay/ as test_overlay_check runs it."""
    return ["make", "-C", str(OVERLAY), "--no-print-directory", f"PYTHON={sys.executable}", *args]


def pytest_collection_modifyitems(items):
    """Tests marked after_builds run last, in their order: by then the
    background worker has built what they need."""
    items[:] = ([i for i in items if i.get_closest_marker("after_builds") is None]
                + [i for i in items if i.get_closest_marker("after_builds") is not None])


def pytest_collection_finish(session):
    if os.environ.get("CTRAIN_TEST_PREBUILD", "1") == "0" or session.config.option.collectonly:
        return
    # the directory pytest started in, as the tests' own processes see it
    # (not the process's at the moment: a C-sim build chdirs while it compiles)
    cwd = str(session.config.invocation_params.dir)
    jobs, seen, first_module, first = [], set(), None, 0
    for item in session.items:   # in the order the tests first need them
        for b in _csim_boards(item):
            first_module = first_module or getattr(item, "module", None)
            if f"csim-{b}" not in seen:
                seen.add(f"csim-{b}")
                jobs.append((f"csim-{b}", [sys.executable, "-m", "ctrain.engine.csim", "--board", b], cwd))
        for name, args, tests in _MAKES:
            if item.name in tests and name not in seen and (OVERLAY / "Makefile").is_file():
                seen.add(name)
                jobs.append((name, _overlay_make(*args), cwd))
        if first_module is not None and getattr(item, "module", None) is first_module:
            first = len(jobs)   # what the first module using the C-sim needs
    if jobs:
        _PREBUILD.append(_Prebuild(jobs, first))


def claim_prebuild(name):
    """Wait for (or drop) the background build `name` before building it here."""
    for p in _PREBUILD:
        p.claim(name)


def pytest_sessionfinish(session):
    while _PREBUILD:
        _PREBUILD.pop().stop()
