"""The numpy engine's top (ctrain_top.cpp's counterpart): runs an instruction stream against a DDR image bit-exactly
as docs/numeric.md specifies, fast enough to train on.

Convolution sums go through float GEMMs only where they are provably exact
(docs/numeric.md "Exactness"): float32 when at most 2^10 products are summed
(each is at most 2^14 in magnitude, so every partial sum is an integer below
2^24). Longer sums (forward passes over more than 2^10 terms, weight
gradients over the whole batch) are split into float32 GEMMs of at most 2^10
terms each whose exact partial sums are added in float64; CONV_EB's GEMM sums
c_out terms, col2im adds the kernel offsets (in float64 in host_lib).

Two paths compute every fast kernel (NumpyEngine.paths counts which ran per
opcode): "host C", host_lib's fused kernels (host_kernels.py: the
requantising stores, col2im, batch norm, residual add, max pool, the update,
batch-last im2col, and register-blocked GEMMs for small convolutions), and
"numpy", the same results from numpy passes and BLAS (`fixedpoint.requantize8`
for the stores, bit-identical to the int64 form), used where host_lib lacks
the kernels or NumpyEngine(host_kernels=False) asks for it. "generic" marks
the reference-style fallback of rare cases (the GENERIC tables).

Each instruction is validated (ctrain.validate) and computed completely before
any of its results is written, so a fault leaves its outputs untouched;
operands a result overlaps are rejected by validation (FAULT_OVERLAP) except
the exact in-place cases, which are read element by element before they are
written, so results go straight into the DDR image.

Speed: an instruction's decoding, validation and geometry depend only on its
128 bytes, the window size and the table length, so they are cached per
(bytes, ddr size, table length) -- a changed word is a new entry, validated
afresh. Scratch buffers live in those entries and are reused across runs. The
im2col matrix CONV_FP builds is kept with a copy of the activation bytes it
came from; CONV_WG of the same layer reuses it when those bytes are unchanged.
"""
import collections
import math
import time

import numpy as np

from ... import boards, conv_ops, sparse_tiling
from ...lanes import Lanes, set_blas_threads
from ...isa import INSN_BYTES, INSN_DTYPE, Fault, Op
from ...validate import SPARSE_OPS, check, check_index, check_program, fields, index_arrays
from ..result import RunResult
from . import conv, eltwise, host_kernels as hk, sconv, stream, update
from .operands import Insn
from .quant import write_stats

#: Decoded instructions kept (a training program has tens; random tests many).
PLAN_CACHE = 1024
#: im2col matrices kept for reuse by CONV_WG (and as buffers across runs): at
#: most this many, of at most COLS_BYTES together -- enough for every
#: convolution of ResNet-20 at batch 64 (21 matrices, about 0.5 GiB), so none
#: is evicted between its CONV_FP and CONV_WG or rebuilt (zeroed) every run.
COLS_CACHE = 64
COLS_BYTES = 1 << 30
#: Output rows shorter than this use the batch-last layout (conv_ops.ConvGeometry).
BATCH_LAST_BELOW = 16
#: Work (multiply-adds or element operations) below which an instruction runs in one lane.
PAR_WORK = 1 << 18

#: Opcode -> fast kernel(engine, plan, ddr, tab) -> stats, or None to take the generic path.
KERNELS = {**conv.KERNELS, **update.KERNELS, **stream.KERNELS, **eltwise.KERNELS}
#: Opcode -> generic handler(Insn) -> (writes, stats).
GENERIC = {**stream.GENERIC, **sconv.GENERIC, **eltwise.GENERIC}


def _store(ddr, addr, arr):
    ddr[addr:addr + arr.nbytes] = np.ascontiguousarray(arr).view(np.uint8).reshape(-1)


class _Plan:
    """An instruction decoded once: fields, validation result, geometry, scratch."""

    __slots__ = ("f", "fault", "addr", "op", "kernel", "generic", "geom", "scratch", "path", "sparse", "halt",
                 "stats_at", "refused")

    def __init__(self, raw, ddr_size, table_len, board):
        self.f = f = fields(np.frombuffer(raw, INSN_DTYPE)[0])
        self.fault, self.addr = check(f, ddr_size, table_len, board=board)
        self.op = f["op"]
        self.sparse, self.halt, self.stats_at = self.op in SPARSE_OPS, self.op == Op.HALT, f["stats"]
        # a sparse instruction's FAULT_TILE (a board without the row-tile path
        # refusing its shape: a sparse op has no tiling of its own) comes after
        # the index contents' check, which needs the DDR: taken per run
        self.refused = self.sparse and self.fault == Fault.TILE
        if self.refused:
            self.fault = Fault.NONE
        self.kernel = KERNELS.get(self.op)
        self.generic = GENERIC.get(self.op)
        self.geom = None
        self.scratch = {}
        self.path = "numpy"
        if self.fault == Fault.NONE and self.op in conv.FC_KERNELS and f["h_in"] == f["w_in"] == f["k_h"] == f["k_w"] == 1:
            self.kernel = conv.FC_KERNELS[self.op]  # validation makes h_out = w_out = 1, pad = 0
        elif self.fault == Fault.NONE and self.op in (Op.CONV_FP, Op.CONV_EB, Op.CONV_WG):
            self.geom = conv_ops.ConvGeometry(f["n"], f["c_in"], f["h_in"], f["w_in"],
                                              f["k_h"], f["k_w"], f["stride"], f["pad"],
                                              batch_last=f["w_out"] < BATCH_LAST_BELOW)

    def uses_c(self, engine):
        """Whether this run takes host_lib's kernels (recorded as the plan's path)."""
        self.path = "host C" if engine.host_kernels else "numpy"
        return engine.host_kernels

    def buf(self, name, shape, dtype):
        """A scratch array kept across runs."""
        a = self.scratch.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self.scratch[name] = np.empty(shape, dtype)
        return a


class _Columns:
    __slots__ = ("cols", "image", "snapshot", "valid")



class NumpyEngine:
    """Bit-exact emulation of the accelerator in numpy.

    `threads` (default: the CPUs this process may use) is how many lanes an
    instruction's work is split into: convolutions, batch norm and pooling
    over images (or over channels in the batch-last layout), each lane a
    contiguous slice computed exactly as the whole would be, statistics
    combined (max of peaks, sums of counts; weight gradients as exact float64
    partial sums). One lane runs on the calling thread, the others on a
    persistent pool; numpy's GEMMs, copies and ufuncs release the GIL, so the
    lanes run on separate cores. Instructions with less than PAR_WORK
    multiply-adds (or element operations) stay in one lane, where a hand-off
    would cost more than it saves.

    `blas_threads` (default 1) is the BLAS thread count during a run (None:
    leave the process setting alone). Each lane's GEMMs are small (LeNet-5:
    a few MFLOP each): a second OpenBLAS thread costs more in hand-offs than it
    gains, and when the cores are busy OpenBLAS's spinning threads make a run
    5-15x slower. The previous count is restored after each run.

    `host_kernels` (default: whether the built ctrain._host has them,
    host_kernels.AVAILABLE) chooses host_lib's fused C kernels or their numpy
    forms (identical results); `paths` counts, per (opcode, path), the runs of
    each path ("host C", "numpy", "generic").

    `busy_seconds`, `busy_cpu_seconds` and `runs` accumulate the wall time
    and the process CPU time spent in run() and the number of runs (benchmarks
    subtract them from the iteration's: the host's share).

    `board` (default: the default board) is the board whose dense buffers a
    CONV_* instruction's tiling must fit and whose sparse unit must take an
    SCONV_* instruction (FAULT_TILE, as its C-sim build checks; a board
    without the row-tile path refuses what only that path runs); neither
    changes a result (docs/numeric.md)."""

    name = "numpy"
    #: every run returns (each loop is bounded by validated fields): the
    #: emulated IP may run it on the waiting driver's thread (device/emulated.py)
    always_returns = True

    def __init__(self, blas_threads=1, threads=None, host_kernels=None, board=None):
        self.board = board or boards.DEFAULT_BOARD
        # built without the sparse unit's row-tile path: list lengths checked per run
        self._rowless = not sparse_tiling.unit(self.board).rows
        self._plans = {}
        self.host_kernels = hk.AVAILABLE if host_kernels is None else bool(host_kernels) and hk.AVAILABLE
        self.paths = collections.Counter()
        self._cols = {}
        self.blas_threads = blas_threads
        self._lanes = Lanes(threads)
        self.busy_seconds = 0.0
        self.busy_cpu_seconds = 0.0
        self.runs = 0

    @property
    def threads(self):
        return self._lanes.threads

    @threads.setter
    def threads(self, value):
        self._lanes.threads = value

    def lanes(self, fn, total, work):
        """Lanes.run(fn, total), in one lane when `work` < PAR_WORK."""
        return self._lanes.run(fn, total, split=work >= PAR_WORK)

    def run(self, ddr, prog, n_insn, table, table_len):
        """Execute `n_insn` instructions at DDR offset `prog` with the int32
        parameter table at `table`, in place on `ddr` (a writable 1-D uint8
        array: the whole window); returns RunResult(status, pc, fault_addr).

        The table is read once before the first instruction (the accelerator's
        on-chip copy); each instruction is fetched when it runs."""
        t0, c0 = time.perf_counter(), time.process_time()
        restore = set_blas_threads(self.blas_threads)
        try:
            return self._run(ddr, int(prog), int(n_insn), int(table), int(table_len))
        finally:
            restore()
            self.busy_seconds += time.perf_counter() - t0
            self.busy_cpu_seconds += time.process_time() - c0
            self.runs += 1

    def _run(self, ddr, prog, n_insn, table, table_len):
        fault, addr = check_program(prog, n_insn, table, table_len, ddr.size)
        if fault:
            return RunResult(fault, 0, addr)
        tab = ddr[table:table + 4 * table_len].view("<i4").tolist()
        mem = ddr.data  # the statistics records are packed into it in place
        plans, size, paths = self._plans, ddr.size, self.paths
        for pc in range(n_insn):
            at = prog + pc * INSN_BYTES
            raw = mem[at:at + INSN_BYTES].tobytes()
            plan = plans.get((raw, size, table_len)) or self._plan(raw, size, table_len)
            if plan.fault:
                return RunResult(plan.fault, pc, plan.addr)
            if plan.sparse:  # index contents live in DDR: checked every run
                fault, addr = check_index(ddr, plan.f)
                if fault:
                    return RunResult(fault, pc, addr)
                # sconv_unit's FAULT_TILE: the shape checked with the plan, the lists with the index
                if plan.refused or (self._rowless and sparse_tiling.lists_refused(plan.f, self.board,
                                                                                    index_arrays(ddr, plan.f))):
                    return RunResult(Fault.TILE, pc, 0)
            if plan.halt:
                return RunResult(Fault.NONE, pc, 0)
            stats = plan.kernel(self, plan, ddr, tab) if plan.kernel else None
            if stats is None:  # no fast kernel for this case
                plan.path = "generic"
                writes, stats = plan.generic(Insn(ddr, plan.f, tab))
                for field, arr in writes:
                    _store(ddr, plan.f[field], arr)
            write_stats(mem, plan.stats_at, *stats)
            paths[plan.op, plan.path] += 1
        return RunResult(Fault.NONE, n_insn, 0)

    def _plan(self, raw, ddr_size, table_len):
        key = (raw, ddr_size, table_len)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= PLAN_CACHE:
                del self._plans[next(iter(self._plans))]
            plan = self._plans[key] = _Plan(raw, ddr_size, table_len, self.board)
        return plan

    def _cols_bytes(self):
        return sum(e.cols.nbytes + e.image.nbytes + e.snapshot.nbytes for e in self._cols.values())

    def columns(self, ddr, addr, g, dtype):
        """The im2col matrix (g.gemm_shape) of the int8 activations at addr.

        Kept with a copy of those bytes: a later call on unchanged bytes (CONV_WG
        after CONV_FP of the same layer) returns it as is. Padding entries are
        zeroed once and never written."""
        key = (addr, g.key, np.dtype(dtype))
        ent = self._cols.get(key)
        nbytes = g.n * g.c * g.h * g.w
        src = ddr[addr:addr + nbytes]
        if ent is None:
            need = math.prod(g.cols_shape) * np.dtype(dtype).itemsize
            while self._cols and (len(self._cols) >= COLS_CACHE or self._cols_bytes() + need > COLS_BYTES):
                del self._cols[next(iter(self._cols))]
            ent = self._cols[key] = _Columns()
            ent.cols = np.zeros(g.cols_shape, dtype)
            ent.image = np.empty(g.image_shape(g.c, g.h, g.w), dtype)
            ent.snapshot = np.empty(nbytes, np.uint8)
            ent.valid = False
        elif ent.valid and np.array_equal(ent.snapshot, src):
            return ent.cols.reshape(g.gemm_shape)
        ent.valid = False
        x = src.view(np.int8).reshape(g.n, g.c, g.h, g.w)
        if self.host_kernels:  # one pass from int8 NCHW: lanes over channels (batch-last) or images
            fn = {np.dtype(np.float32): hk.lib.ctrain_im2col_f32, np.dtype(np.float64): hk.lib.ctrain_im2col_f64,
                  np.dtype(np.int8): hk.lib.ctrain_im2col_i8}[ent.cols.dtype]
            xp, cp = hk.ptr(x), hk.ptr(ent.cols)

            def lane(_, a, b):
                fn(xp, g.n, g.c, g.h, g.w, g.kh, g.kw, g.stride, g.pad, g.ho, g.wo, int(g.batch_last), a, b, cp)
            self.lanes(lane, g.c if g.batch_last else g.n, ent.cols.size)
        elif g.batch_last:  # lanes over channels: [C, H, W, N] -> [C, kh, kw, Ho, Wo, N]
            def lane(_, a, b):
                np.copyto(ent.image[a:b], x[:, a:b].transpose(1, 2, 3, 0), casting="unsafe")
                g.im2col(ent.image[a:b], ent.cols[a:b])
            self.lanes(lane, g.c, ent.cols.size)
        else:  # lanes over images
            def lane(_, a, b):
                np.copyto(ent.image[a:b], x[a:b], casting="unsafe")
                g.im2col(ent.image[a:b], ent.cols[a:b])
            self.lanes(lane, g.n, ent.cols.size)
        ent.snapshot[...] = src
        ent.valid = True
        return ent.cols.reshape(g.gemm_shape)
