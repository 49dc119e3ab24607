"""The emulated board: a bounds-checked DDR, an allocator handing out
DeviceBuffers, and the accelerator's AXI-lite register file driving an
engine. The driver talks to it exactly as to the board: through registers
and physical addresses."""
import queue
import threading
import time

import numpy as np

from .. import isa
from ..engine import get_engine
from ..errors import MemoryFault
from .buffer import Allocator, DeviceBuffer

R = isa.REG


class EmulatedIP:
    """The register map of ctrain_top (ap_ctrl_hs). A started run executes on
    a worker thread, as the hardware runs beside the CPU -- or, for an engine
    whose runs always return, on the driver's own thread when it calls
    wait_done first.

    The worker is kept between runs (it exits after WORKER_IDLE s without
    work): a fresh thread per run made every run pay for cold malloc arenas and
    BLAS buffers (about a third slower on LeNet-5) plus the thread start.

    A start is claimed once: by wait_done, which runs it on the waiting
    driver's thread when the engine says `always_returns` (Accelerator.wait
    calls it right after the start; this saves the two thread hand-overs per
    run a worker costs -- on a loaded machine each a scheduling delay, most of
    the host's share of a LeNet-5 iteration), or by the worker, which wait_done
    of any other engine or a CTRL read hands it to (a driver polling over MMIO,
    as on the board). A run on the driver's thread cannot be interrupted, so
    the driver's timeout cannot fire while it is stuck: only engines whose
    runs end by construction take that path (the numpy engine: every loop
    bounded by validated fields), and one that took longer than the limit is
    reported as late by wait_done (Accelerator raises DeviceTimeout, as for a
    stuck run). Any other engine (the C-sim's compiled HLS, which a loop bug
    can hang) runs on the worker, where the timeout fires while the run is
    stuck. The device is only observable through CTRL and the results a
    finished run leaves, so both paths look the same to a driver. Runs happen
    one at a time, in start order."""

    WORKER_IDLE = 2.0
    #: the driver's timeout applies per instruction (Accelerator.limit)
    timeout_per_insn = True

    def __init__(self, device, engine, offsets=None, span=None):
        """offsets: ISA register name -> byte offset (default ctrain_isa.h's map;
        the emulated board passes the .hwh's, as the hardware has what was
        exported); span: bytes of the register space."""
        self.device = device
        self.engine = engine
        self.offsets = dict(offsets) if offsets is not None else dict(R)
        self.span = int(span) if span is not None else max(R["MAP_BYTES"], max(self.offsets.values()) + 4)
        self.regs = np.zeros(self.span // 4, np.uint32)
        self._idle = True
        self._done = False
        self._thread = None
        self._error = None
        self._finished = threading.Event()  # set while idle: the emulation's "interrupt line"
        self._finished.set()
        self._jobs = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending = None  # the started run's arguments until a thread claims it

    def _check(self, offset):
        if offset % 4 or not 0 <= offset < self.span:
            raise MemoryFault(f"register offset 0x{offset:x} is not in the accelerator's map "
                              f"(0x0..0x{self.span - 4:x}, word aligned)")

    def read(self, offset):
        self._check(offset)
        if offset == self.offsets["CTRL"]:
            self._to_worker()
            if self._error is not None:
                err, self._error = self._error, None
                raise err
            value = (isa.CTRL_AP_DONE if self._done else 0) | (isa.CTRL_AP_IDLE if self._idle else 0)
            self._done = False  # ap_done clears on read
            return value
        return int(self.regs[offset // 4])

    def write(self, offset, value):
        self._check(offset)
        if offset == self.offsets["CTRL"]:
            if value & isa.CTRL_AP_START and self._idle:
                self._start()
            return
        self.regs[offset // 4] = int(value) & 0xFFFFFFFF

    def _reg(self, name):
        return int(self.regs[self.offsets[name] // 4])

    def _start(self):
        self._idle, self._done = False, False
        base = self._reg("DDR_LO") | (self._reg("DDR_HI") << 32)
        if "DDR1_LO" in self.offsets and "DDR1_HI" in self.offsets:
            # a second data port (CTRAIN_DDR_PORTS 2) reaches the same window
            # only through the same base: the emulation refuses another
            base1 = self._reg("DDR1_LO") | (self._reg("DDR1_HI") << 32)
            if base1 != base:
                raise MemoryFault(f"the second data port's offset 0x{base1:x} (DDR1_LO/HI) is not "
                                  f"the DDR base 0x{base:x}: both ports address one window")
        window = self.device.window(base, self._reg("DDR_SIZE"))
        args = (window, self._reg("PROG"), self._reg("N_INSN"), self._reg("TABLE"), self._reg("TABLE_LEN"))
        self._finished.clear()
        with self._lock:
            self._pending = args

    def _to_worker(self):
        """Hand the pending run (if any) to the worker thread."""
        with self._lock:
            if self._pending is None:
                return
            self._jobs.put(None)  # wakes the worker, which claims the run
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, daemon=True, name="ctrain-emulated-ip")
                self._thread.start()

    def _serve(self):
        """The worker: runs queued starts; leaves after WORKER_IDLE s without one."""
        while True:
            try:
                self._jobs.get(timeout=self.WORKER_IDLE)
            except queue.Empty:
                with self._lock:
                    if self._jobs.empty():
                        self._thread = None
                        return
                continue
            args = self._claim()
            if args is not None:
                self._run(*args)

    def _claim(self):
        """The pending run's arguments, taken (None if another thread took them)."""
        with self._lock:
            args, self._pending = self._pending, None
        return args

    def _run(self, *args):
        try:
            res = self.engine.run(*args)
            self.regs[self.offsets["STATUS"] // 4] = int(res.status)
            self.regs[self.offsets["PC"] // 4] = int(res.pc)
            self.regs[self.offsets["FAULT_ADDR"] // 4] = int(res.fault_addr) & 0xFFFFFFFF
        except BaseException as exc:  # an engine bug, not a program fault: surface it
            self._error = exc
        self._done, self._idle = True, True
        self._finished.set()

    def wait_done(self, timeout):
        """Block until the run in progress finishes (at most `timeout` s); True if
        it did within `timeout`. The driver calls this before polling CTRL, so it
        sleeps on an event instead of sleep-polling (which adds up to a poll
        interval per run and contends for the GIL with the engine's thread).
        ap_done is still read and cleared through CTRL as on the board. A run
        nobody has claimed yet runs here, on the caller's thread, if the engine
        `always_returns` (False if it took longer than `timeout`), else on the
        worker."""
        if getattr(self.engine, "always_returns", False):
            args = self._claim()
            if args is not None:
                t0 = time.monotonic()
                self._run(*args)
                return time.monotonic() - t0 <= timeout
        self._to_worker()
        return self._finished.wait(timeout)


class EmulatedDevice:
    """A board in software. `ddr_bytes` of zeroed DDR at a physical base;
    `engine` executes instructions (numpy or csim) as `board` (an engine
    option; default: the default board) would."""

    name = "emulated"
    PHYS_BASE = 0x1000_0000

    def __init__(self, ddr_bytes=256 << 20, engine="numpy", **engine_options):
        self.ddr = np.zeros(int(ddr_bytes), np.uint8)
        self.allocator = Allocator(self.PHYS_BASE, self.ddr.size)
        self.engine = get_engine(engine, **engine_options) if isinstance(engine, str) else engine
        self.ip = EmulatedIP(self, self.engine)

    @property
    def board(self):
        """The board whose configuration the engine runs (its dense buffers
        bound a CONV_* tiling: a program must be compiled for it)."""
        return getattr(self.engine, "board", None)

    def allocate(self, shape, dtype=np.uint8):
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        addr = self.allocator.allocate(nbytes)
        return DeviceBuffer(self, addr, shape, dtype)

    def free(self, addr):
        self.allocator.free(addr)

    def _offset(self, addr, nbytes, what):
        off = int(addr) - self.PHYS_BASE
        if off < 0 or off + int(nbytes) > self.ddr.size:
            raise MemoryFault(f"{what} [0x{int(addr):x}, +{int(nbytes)}) is outside DDR "
                              f"[0x{self.PHYS_BASE:x}, 0x{self.PHYS_BASE + self.ddr.size:x})")
        if self.allocator.owner(addr, nbytes) is None:
            raise MemoryFault(f"{what} [0x{int(addr):x}, +{int(nbytes)}) is not inside one allocated buffer")
        return off

    def write_ddr(self, addr, data):
        off = self._offset(addr, data.size, "host write")
        self.ddr[off:off + data.size] = data

    def read_ddr(self, addr, nbytes):
        off = self._offset(addr, nbytes, "host read")
        return self.ddr[off:off + nbytes]

    def window(self, base, size):
        """What the accelerator's m_axi port reaches from `base`: it must be memory this device allocated."""
        off = self._offset(base, size, "accelerator DDR window")
        return self.ddr[off:off + int(size)]
