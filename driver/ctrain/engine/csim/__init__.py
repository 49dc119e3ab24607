"""The C-sim engine: the accelerator's own HLS sources (overlay/hls), compiled
natively by ctrain.engine.csim.build, run on the caller's DDR image in place.

Besides RunResult it exposes the per-instruction iteration counters the HLS
code keeps in C-sim builds (docs/overlay.md, "Iteration counters"), the input
of the performance model.
"""
import threading
import time

import numpy as np

from ... import boards
from ...counters import Iters
from ...errors import CTrainError
from ...isa import Fault
from ..result import RunResult
from . import build as builder

#: The C-sim keeps its counters in globals: one run at a time per process.
_RUN_LOCK = threading.Lock()
_LOADED = {}   # board -> compiled module, once per process


class CsimUnavailable(CTrainError, RuntimeError):
    """The C-sim engine cannot be built here (no C++ compiler or ap_types headers)."""


def load_csim(board=boards.DEFAULT_BOARD, verbose=False):
    """The compiled C-sim module for `board` (built and cached on first use)."""
    boards.get(board)   # an unknown board: one line naming the valid ones, before any build
    if board not in _LOADED:
        try:
            _LOADED[board] = builder.load(board, verbose=verbose)
        except builder.CsimBuildError as exc:
            raise CsimUnavailable(str(exc)) from exc
    return _LOADED[board]


class CsimEngine:
    """Runs instruction streams through the HLS C++ of the accelerator."""

    name = "csim"

    def __init__(self, board=boards.DEFAULT_BOARD, verbose=False):
        self.board = board
        self._mod = load_csim(board, verbose)
        self._ffi, self._lib = self._mod.ffi, self._mod.lib
        cfg = self._ffi.new("uint32_t[3]")
        self._lib.ctrain_csim_config(cfg)
        self.pe_rows, self.pe_cols, self.chunk = cfg[0], cfg[1], cfg[2]
        fields = tuple(name for name, _ in self._ffi.typeof("ctrain_iters_t").fields)
        if fields != Iters._fields:
            raise CsimUnavailable(f"ctrain_iters_t fields {fields} differ from Iters {Iters._fields}")
        self._trace = None
        self._last_iters = []
        self.busy_seconds = 0.0  # time in run(), as NumpyEngine's (benchmarks: the host's share)
        self.busy_cpu_seconds = 0.0
        self.runs = 0

    def run(self, ddr, prog, n_insn, table, table_len):
        """Execute like NumpyEngine.run; `ddr` (a writable, C-contiguous 1-D
        uint8 array) is modified in place, not copied."""
        if not (isinstance(ddr, np.ndarray) and ddr.dtype == np.uint8 and ddr.ndim == 1
                and ddr.flags.c_contiguous and ddr.flags.writeable):
            raise TypeError("ddr must be a writable, contiguous 1-D numpy uint8 array")
        if ddr.size >= 1 << 32:
            raise ValueError("the DDR window is limited to 4 GiB (32-bit offsets)")
        n_insn = int(n_insn)
        cap = min(n_insn, 1 << 20)
        if self._trace is None or len(self._trace) < cap:
            self._trace = self._ffi.new("ctrain_iters_t[]", max(cap, 1))
        result = self._ffi.new("uint32_t[3]")
        buf = self._ffi.from_buffer("uint8_t[]", ddr, require_writable=True)
        t0, c0 = time.perf_counter(), time.process_time()
        with _RUN_LOCK:
            self._lib.ctrain_csim_trace(self._trace, cap)
            self._lib.ctrain_csim_run(buf, int(prog), n_insn, int(table), int(table_len),
                                      ddr.size, result)
        self.busy_seconds += time.perf_counter() - t0
        self.busy_cpu_seconds += time.process_time() - c0
        self.runs += 1
        status, pc, fault_addr = result[0], result[1], result[2]
        if status == Fault.PROGRAM:
            fetched = 0
        else:  # up to and including the HALT or faulting instruction
            fetched = pc + 1 if pc < n_insn else n_insn
        self._last_iters = [Iters(*(getattr(self._trace[i], f) for f in Iters._fields))
                            for i in range(min(fetched, cap))]
        return RunResult(Fault(status), pc, fault_addr)

    def last_iters(self):
        """[Iters] of the last run, one per instruction fetched (the faulting or
        HALT one included; instruction 0 also carries the table load)."""
        return list(self._last_iters)
