"""The emulated device: bounds-checked DDR, pynq-like buffers with explicit
sync, the ap_ctrl_hs register protocol, and faults that name the instruction."""
import threading
import time

import numpy as np
import pytest

from ctrain import isa
from ctrain.device.accelerator import Accelerator
from ctrain.device.emulated import EmulatedDevice
from ctrain.errors import DeviceFault, MemoryFault
from ctrain.isa import Op


@pytest.fixture
def dev():
    return EmulatedDevice(ddr_bytes=1 << 20)


def test_buffers_are_not_coherent_until_synced(dev):
    buf = dev.allocate((16,), np.int32)
    buf[:] = np.arange(16)
    assert not dev.read_ddr(buf.physical_address, 64).any()
    buf.sync_to_device()
    assert np.array_equal(dev.read_ddr(buf.physical_address, 64).view(np.int32), np.arange(16))
    buf[:] = 0
    buf[4:8].sync_from_device()  # a slice syncs only its own bytes
    assert list(buf[:9]) == [0, 0, 0, 0, 4, 5, 6, 7, 0]
    assert buf[4:8].physical_address == buf.physical_address + 16


def test_allocation_bounds_and_free(dev):
    a = dev.allocate((1000,), np.uint8)
    b = dev.allocate((1000,), np.uint8)
    assert b.physical_address - a.physical_address >= 1000
    with pytest.raises(MemoryError, match="device memory exhausted"):
        dev.allocate((2 << 20,), np.uint8)
    addr = a.physical_address
    a.freebuffer()
    with pytest.raises(MemoryFault, match="not inside one allocated buffer"):
        dev.read_ddr(addr, 4)
    with pytest.raises(MemoryFault, match="outside DDR"):
        dev.read_ddr(dev.PHYS_BASE + (1 << 20) - 2, 4)


def test_register_map_checks_offsets(dev):
    with pytest.raises(MemoryFault, match="register offset"):
        dev.ip.write(0x1000, 1)
    with pytest.raises(MemoryFault, match="register offset"):
        dev.ip.read(3)
    assert dev.ip.read(isa.REG["CTRL"]) & isa.CTRL_AP_IDLE


def _program_with_bad_address(dev):
    arena = dev.allocate((4096,), np.uint8)
    prog = isa.new_program(2)
    prog[0]["op"] = Op.RELU_FP
    prog[0]["count"] = 64
    prog[0]["src"], prog[0]["dst"], prog[0]["stats"] = 1024, 1024, 2048
    prog[1] = prog[0]
    prog[1]["dst"] = 4090  # 64 bytes from here run past the 4 KiB window
    arena[:256] = prog.view(np.uint8)
    arena.sync_to_device()
    acc = Accelerator(dev.ip, timeout=5)
    acc.configure(arena.physical_address, 4096, 3072, 1)
    return arena, acc, prog


def test_fault_names_instruction_opcode_and_address(dev):
    arena, acc, prog = _program_with_bad_address(dev)
    before = np.array(dev.read_ddr(arena.physical_address, 4096))
    with pytest.raises(DeviceFault, match=r"FAULT_BOUNDS at instruction 1 \(OP_RELU_FP\), address 0xffa") as ei:
        acc.run(0, 2, prog)
    assert ei.value.pc == 1 and ei.value.address == 4090
    after = dev.read_ddr(arena.physical_address, 4096)
    # instruction 0 ran (its stats record changed), instruction 1 wrote nothing
    changed = np.nonzero(before != after)[0]
    assert changed.size and changed.min() >= 2048 and changed.max() < 2048 + isa.STATS_BYTES


def test_window_must_be_owned_memory(dev):
    acc = Accelerator(dev.ip)
    acc.configure(dev.PHYS_BASE + (1 << 20), 4096, 0, 1)
    with pytest.raises(MemoryFault, match="accelerator DDR window"):
        acc.run(0, 1)


class _Slowed:
    """The real numpy engine behind a fixed delay (a loaded host's emulation),
    or until `release` is set (a stuck run); records the thread each run took."""

    def __init__(self, engine, delay, always_returns):
        self.engine, self.delay, self.always_returns = engine, delay, always_returns
        self.release = threading.Event()
        self.threads = []

    def run(self, *args):
        self.threads.append(threading.current_thread())
        if self.delay is None:
            self.release.wait()
        else:
            time.sleep(self.delay)
        return self.engine.run(*args)


def _relu_program(dev):
    arena = dev.allocate((4096,), np.uint8)
    prog = isa.new_program(4)
    for k in range(4):
        prog[k]["op"] = Op.RELU_FP
        prog[k]["count"] = 64
        prog[k]["src"], prog[k]["dst"], prog[k]["stats"] = 1024, 1024, 2048
    arena[:prog.nbytes] = prog.view(np.uint8)
    arena.sync_to_device()
    return arena, prog


@pytest.mark.parametrize("on_driver_thread", [True, False])
def test_emulation_timeout_is_per_instruction(dev, on_driver_thread):
    """The emulation's speed depends on the host's load, so the driver's
    timeout applies per instruction there: 4 instructions that take 1 s in
    all finish under a 0.5 s timeout (2 s allowed), where a board's limit
    would stay 0.5 s; the same slowness on one instruction is a timeout
    naming the limit -- whether the run takes the driver's thread (an engine
    that always returns, as the numpy engine) or the IP's worker."""
    from ctrain.errors import DeviceTimeout
    assert dev.ip.engine.always_returns  # the numpy engine takes the driver's thread
    arena, prog = _relu_program(dev)
    slowed = dev.ip.engine = _Slowed(dev.ip.engine, 1.0, on_driver_thread)
    acc = Accelerator(dev.ip, timeout=0.5)
    assert (acc.limit(4), acc.limit(1)) == (2.0, 0.5)
    acc.configure(arena.physical_address, 4096, 3072, 1)
    assert acc.run(0, 4, prog) == 4
    with pytest.raises(DeviceTimeout, match=r"did not finish 1 instructions in 0.5 s"):
        acc.run(0, 1, prog)
    me = threading.current_thread()
    assert [t is me for t in slowed.threads] == [on_driver_thread] * 2
    assert dev.ip.wait_done(10)  # the late run ends (on the worker it was still running)
    assert acc.run(0, 4, prog) == 4


def test_emulation_timeout_fires_while_a_run_is_stuck(dev):
    """An engine that does not promise to return runs on the worker, so a
    stuck run is reported by the driver's timeout while it is still stuck."""
    from ctrain.errors import DeviceTimeout
    arena, prog = _relu_program(dev)
    stuck = dev.ip.engine = _Slowed(dev.ip.engine, None, False)
    acc = Accelerator(dev.ip, timeout=0.2)
    acc.configure(arena.physical_address, 4096, 3072, 1)
    t0 = time.monotonic()
    with pytest.raises(DeviceTimeout, match=r"did not finish 2 instructions in 0.4 s; it reached instruction 0"):
        acc.run(0, 2, prog)
    assert time.monotonic() - t0 < 5 and not stuck.release.is_set()
    stuck.release.set()
    assert dev.ip.wait_done(10)
    assert stuck.threads[0] is not threading.current_thread()
