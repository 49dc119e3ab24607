"""The board device over pynq's real code: Overlay (.bit header, .hwh parse,
driver binding by VLNV, PL clocks), allocate/PynqBuffer (flush/invalidate)
and MMIO, with ctrain.device.pynq_emulated.EmulatedPynqDevice registered as
pynq's active device, so training iterations run through the board device
class onto the emulated DDR and registers. Plus what needs no pynq: the
overlay search order, the register-map check, importing without pynq."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from ctrain import isa
from ctrain.device import board as board_mod
from ctrain.device.emulated import EmulatedDevice
from ctrain.errors import CTrainError, DeviceFault, DeviceTimeout
from ctrain.overlay_files import OverlayError, OverlayNotFound, find_overlay
from ctrain.train import TrainConfig, Trainer


# -- without pynq ------------------------------------------------------------------

def _touch_overlay(d, hwh=True):
    d.mkdir(parents=True, exist_ok=True)
    (d / "ctrain.bit").write_bytes(b"bit")
    if hwh:
        (d / "ctrain.hwh").write_text("<EDKSYSTEM/>")
    return d / "ctrain.bit"


def test_search_order_explicit_env_package(tmp_path, monkeypatch):
    monkeypatch.delenv("CTRAIN_OVERLAY", raising=False)
    monkeypatch.delenv("CTRAIN_BOARD", raising=False)
    monkeypatch.delenv("BOARD", raising=False)
    pkg = tmp_path / "pkg"
    z2 = _touch_overlay(pkg / "pynq_z2")
    env = _touch_overlay(tmp_path / "env")
    explicit = _touch_overlay(tmp_path / "explicit")
    # package data: the only board with files, or the named one (also PYNQ's $BOARD spelling)
    assert find_overlay(package_dir=pkg) == (z2, z2.with_suffix(".hwh"))
    monkeypatch.setenv("BOARD", "Pynq-Z2")
    assert find_overlay(package_dir=pkg)[0] == z2
    # the environment variable wins over package data, an explicit path over both
    monkeypatch.setenv("CTRAIN_OVERLAY", str(env.parent))
    assert find_overlay(package_dir=pkg)[0] == env
    assert find_overlay(explicit, package_dir=pkg)[0] == explicit
    assert find_overlay(explicit.parent, package_dir=pkg)[0] == explicit


def test_search_error_names_every_place(tmp_path, monkeypatch):
    monkeypatch.delenv("CTRAIN_OVERLAY", raising=False)
    monkeypatch.setenv("CTRAIN_BOARD", "zcu104")
    pkg = tmp_path / "pkg"
    _touch_overlay(pkg / "pynq_z2")
    with pytest.raises(OverlayNotFound) as exc:
        find_overlay(package_dir=pkg)
    msg = str(exc.value)
    assert "explicit path: none given\n  $CTRAIN_OVERLAY: not set\n  package data: " in msg
    assert str(pkg / "zcu104" / "ctrain.bit") in msg
    # an explicit place without the .hwh: no silent fallback, and the message says what is missing
    monkeypatch.setenv("CTRAIN_OVERLAY", str(_touch_overlay(tmp_path / "nohwh", hwh=False).parent))
    with pytest.raises(OverlayNotFound, match=r"\$CTRAIN_OVERLAY: .*ctrain.bit \(found, but no ctrain.hwh"):
        find_overlay(package_dir=pkg)
    with pytest.raises(OverlayNotFound, match="explicit path"):
        find_overlay(tmp_path / "nowhere", package_dir=pkg)
    assert isinstance(exc.value, FileNotFoundError) and isinstance(exc.value, CTrainError)


def _hls_registers(**moved):
    """A pynq-style register description of ctrain_top as Vitis HLS names it."""
    regs = {}
    for name, aliases in board_mod.HWH_NAMES.items():
        regs[aliases[0]] = {"address_offset": moved.get(name, isa.REG[name]), "size": 32}
    return regs


def test_register_map_taken_from_the_hwh():
    """The driver takes the .hwh's offsets (even where they differ from
    ctrain_isa.h) and refuses only a map it cannot use, naming every problem."""
    assert board_mod.register_offsets(_hls_registers()) == {k: v for k, v in isa.REG.items() if k != "MAP_BYTES"}
    moved = board_mod.register_offsets(_hls_registers(PC=0x4C, PC_CTRL=0x50), span=0x80)
    assert moved["PC"] == 0x4C and moved["STATUS"] == isa.REG["STATUS"]
    assert board_mod.differences_from_isa(moved) == [f"PC: 0x4c in the .hwh, 0x{isa.REG['PC']:x} in ctrain_isa.h",
                                                     f"PC_CTRL: 0x50 in the .hwh, 0x{isa.REG['PC_CTRL']:x} in ctrain_isa.h"]
    bad = _hls_registers(PC=isa.REG["STATUS"], DDR_HI=isa.REG["DDR_LO"] + 8, N_INSN=0x26, FAULT_ADDR=0x90)
    del bad["table_r"]
    with pytest.raises(OverlayError) as exc:
        board_mod.register_offsets(bad, "test.hwh", span=0x80)
    msg = str(exc.value)
    assert "register map in test.hwh is not usable" in msg
    assert "missing register TABLE (as table_r or table)" in msg
    assert "N_INSN (n_insn) at 0x26 is not word aligned" in msg
    assert "FAULT_ADDR (fault_addr) at 0x90 is outside the 0x80-byte register range" in msg
    assert f"STATUS and PC are both at 0x{isa.REG['STATUS']:x}" in msg
    assert "DDR_HI at 0x18 is not the word above DDR_LO at 0x10" in msg
    with pytest.raises(OverlayError, match="no register map"):
        board_mod.register_offsets({})


def test_second_data_port_offsets():
    """A two-port build (CTRAIN_DDR_PORTS 2) has DDR1_LO/HI: optional for the
    driver, but both halves, adjacent; configure writes the one DDR base into
    every data port's offset the map has."""
    from ctrain.device.accelerator import Accelerator
    one = {k: v for k, v in _hls_registers().items() if not k.startswith("ddr1")}
    offs1 = board_mod.register_offsets(one, span=0x80)
    assert "DDR1_LO" not in offs1
    offs2 = board_mod.register_offsets(_hls_registers(), span=0x80)
    assert (offs2["DDR1_LO"], offs2["DDR1_HI"]) == (isa.REG["DDR1_LO"], isa.REG["DDR1_LO"] + 4)
    assert isa.REG["DDR1_HI"] + 4 <= isa.REG["MAP_BYTES"]
    with pytest.raises(OverlayError, match="DDR1_LO without DDR1_HI"):
        board_mod.register_offsets(dict(one, ddr1_1={"address_offset": 0x74}), span=0x80)
    with pytest.raises(OverlayError, match="DDR1_HI at 0x7c is not the word above DDR1_LO"):
        board_mod.register_offsets(_hls_registers(DDR1_HI=0x7C), span=0x80)

    class IP:
        def __init__(self, offsets):
            self.offsets, self.writes = offsets, {}

        def write(self, off, v):
            self.writes[off] = v
    base = 0x8_1234_5000
    for offs, ports in ((offs1, 1), (offs2, 2)):
        ip = IP(offs)
        Accelerator(ip).configure(base, 4096, 0, 0)
        pairs = [("DDR_LO", "DDR_HI"), ("DDR1_LO", "DDR1_HI")][:ports]
        for lo, hi in pairs:
            assert (ip.writes[offs[lo]], ip.writes[offs[hi]]) == (base & 0xFFFFFFFF, base >> 32)
        assert (isa.REG["DDR1_LO"] in ip.writes) == (ports == 2)


def test_import_without_pynq():
    """`import ctrain` and the CLI work without pynq; the board device says how to get it."""
    code = ("import sys; sys.modules['pynq'] = None\n"
            "import ctrain, ctrain.cli, ctrain.train, ctrain.export, ctrain.overlay_files\n"
            "from ctrain.device.board import BoardDevice\n"
            "from ctrain.errors import CTrainError\n"
            "try:\n    BoardDevice()\nexcept CTrainError as e:\n    print('ERR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ERR the board device needs pynq" in out.stdout and "ctrain[board]" in out.stdout


# -- over pynq ---------------------------------------------------------------------

try:  # the tests below need pynq (the board extra); the ones above run without it
    import pynq
    from pynq.buffer import PynqBuffer
    from ctrain.device import pynq_emulated as pe
except ImportError:
    pynq = pe = PynqBuffer = None

needs_pynq = pytest.mark.skipif(pynq is None, reason="needs pynq (pip install 'ctrain[board]')")


@pytest.fixture
def emulated_board(tmp_path):
    """An EmulatedPynqDevice registered as pynq's active device, and an overlay for it."""
    if pynq is None:
        pytest.skip("needs pynq (pip install 'ctrain[board]')")
    dev = pe.EmulatedPynqDevice(EmulatedDevice(ddr_bytes=32 << 20))
    pe.write_overlay(tmp_path / "overlay")
    with pe.activate(dev):
        assert pynq.Device.active_device is dev
        yield dev, tmp_path / "overlay"


def _train(dataset, device, steps):
    cfg = TrainConfig(dataset="digits", epochs=1, batch_size=16, warmup_epochs=0.1, seed=3, prune=0)
    tr = Trainer(cfg, dataset=dataset, device=device)
    for _ in range(steps):
        tr.step(tr.batch_indices())
    return tr


def test_training_through_board_device_matches_emulator(emulated_board, digits):
    dev, overlay = emulated_board
    board = board_mod.BoardDevice(overlay=overlay)
    assert type(board.ip).__name__ == "CTrainIP" and isinstance(board.ip, pynq.DefaultIP)
    assert board.ip.offsets["DDR_SIZE"] == isa.REG["DDR_SIZE"]
    assert board.ip.mmio.device is dev and board.overlay.is_loaded()
    dev.mmio_log = []
    tr = _train(digits, board, 20)
    rt = tr.runtime
    assert isinstance(rt.arena, PynqBuffer) and isinstance(rt.views["table"], PynqBuffer)
    assert rt.iteration == 20 - tr.warm > 5
    base = int(board.overlay.ip_dict[board.ip_name]["phys_addr"])
    writes = [(a - base, v) for op, a, v in dev.mmio_log if op == "w"]
    assert (isa.REG["CTRL"], isa.CTRL_AP_START) in writes
    assert (isa.REG["DDR_LO"], rt.arena.physical_address) in writes

    ref_dev = EmulatedDevice(ddr_bytes=32 << 20)
    ref = _train(digits, ref_dev, 20)
    assert np.array_equal(dev.emulated.ddr, ref_dev.ddr)  # the same DDR bytes, every region
    assert np.array_equal(rt.predict_logits(tr.xq_test[:48]), ref.runtime.predict_logits(ref.xq_test[:48]))
    rt.close()  # PynqBuffer.freebuffer returns the arena to the emulated DDR
    assert not dev.emulated.allocator.used


def test_cli_train_device_board(emulated_board, monkeypatch, capsys):
    """`ctrain train --device board` runs unchanged: make_device() builds BoardDevice()
    from the search order ($CTRAIN_OVERLAY) and pynq's active device."""
    from ctrain import cli
    dev, overlay = emulated_board
    monkeypatch.setenv("CTRAIN_OVERLAY", str(overlay))
    rc = cli.main(["train", "--device", "board", "--epochs", "1", "--warmup", "0.5", "--prune", "0",
                   "--no-progress"])
    assert rc == 0
    assert "test accuracy" in capsys.readouterr().out
    assert dev.downloads == 1 and dev.emulated.ip.regs[isa.REG["N_INSN"] // 4] > 0


def test_buffers_need_flush_and_invalidate(emulated_board):
    dev, _ = emulated_board
    buf = pynq.allocate((64,), np.int32)  # pynq's allocate on the active (emulated) device
    assert isinstance(buf, PynqBuffer) and not buf.coherent
    buf[:] = np.arange(64)
    assert not dev.emulated.read_ddr(buf.device_address, 256).any()  # not flushed: DDR unchanged
    buf[8:16].flush()
    assert np.array_equal(dev.emulated.read_ddr(buf.device_address, 256).view(np.int32)[:17],
                          [0] * 8 + list(range(8, 16)) + [0])
    dev.emulated.ddr[buf.device_address - dev.emulated.PHYS_BASE] = 99
    assert buf[0] == 0
    buf.invalidate()
    assert buf[0] == 99
    buf.freebuffer()
    assert not dev.emulated.allocator.used


@needs_pynq
def test_pl_clock_set_from_hwh(tmp_path):
    """Overlay.download programs FCLK0 from the .hwh through pynq.ps.Clocks onto the
    emulated PS; pynqmetadata 0.2.0 leaves a Zynq-7000's rate None, which the board
    device fills from PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ (else pynq raises a TypeError)."""
    pe.write_overlay(tmp_path, clock_mhz=50)
    dev = pe.EmulatedPynqDevice(EmulatedDevice(ddr_bytes=1 << 20))
    with pe.activate(dev):
        b = board_mod.BoardDevice(overlay=tmp_path)
        assert pe.fclk_mhz(0) == pytest.approx(50.0)
        assert b.overlay.clock_dict[0]["frequency"] == 50.0
        pe.write_overlay(tmp_path / "100")
        board_mod.BoardDevice(overlay=tmp_path / "100")
        assert pe.fclk_mhz(0) == pytest.approx(100.0)


FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "hwh")

#: the register map of a Vitis HLS 2023.2 export of ctrain_top (scalars in 8-byte
#: slots, the 64-bit m_axi offset in 12, ap_vld outputs in 16), written out here
#: rather than read from ctrain_isa.h
VITIS_2023_2 = {"CTRL": 0x00, "GIE": 0x04, "IER": 0x08, "ISR": 0x0C, "DDR_LO": 0x10, "DDR_HI": 0x14,
                "PROG": 0x1C, "N_INSN": 0x24, "TABLE": 0x2C, "TABLE_LEN": 0x34, "DDR_SIZE": 0x3C,
                "STATUS": 0x44, "STATUS_CTRL": 0x48, "PC": 0x54, "PC_CTRL": 0x58,
                "FAULT_ADDR": 0x64, "FAULT_ADDR_CTRL": 0x68}


def _fixture_overlay(tmp_path, name):
    """An overlay directory with the fixture .hwh and a Pynq-Z2 .bit header."""
    d = tmp_path / name
    d.mkdir()
    with open(os.path.join(FIXTURES, f"{name}.hwh"), encoding="utf-8") as f:
        (d / "ctrain.hwh").write_text(f.read(), encoding="utf-8")
    (d / "ctrain.bit").write_bytes(pe.bit_file_bytes("ctrain", "7z020clg400"))
    return d


def test_hwh_fixture_parsed_by_pynq_matches_the_isa_header(tmp_path, emulated_board):
    """pynq parses a .hwh written to Vitis's conventions (ddr_1/ddr_2, table_r,
    <arg>_ctrl with <arg>_ap_vld, INTERRUPT in CTRL); the driver binds to it and
    finds the 2023.2 layout, which is the one ctrain_isa.h states."""
    board = board_mod.BoardDevice(overlay=_fixture_overlay(tmp_path, "ctrain_vitis_2023_2"))
    regs = board.overlay.ip_dict[board.ip_name]["registers"]
    assert regs["ddr_1"]["address_offset"] == 0x10 and regs["ddr_2"]["address_offset"] == 0x14
    assert set(regs["pc_ctrl"]["fields"]) == {"pc_ap_vld", "RESERVED"}
    assert regs["CTRL"]["fields"]["INTERRUPT"]["bit_offset"] == 9
    assert board.ip.offsets == VITIS_2023_2 and board.ip.isa_differences == []
    # a one-port build: the second data port's pair (two-port boards) is not in it
    assert {k: v for k, v in isa.REG.items() if k not in ("MAP_BYTES", "DDR1_LO", "DDR1_HI")} == VITIS_2023_2
    assert isa.REG["MAP_BYTES"] == 0x80 > max(VITIS_2023_2.values())


def test_driver_uses_the_hwh_offsets(tmp_path, emulated_board):
    """An export with another layout (ap_vld outputs in 8-byte slots, as Vivado
    HLS gave them): the emulated board has that map, and the driver reads PC and
    FAULT_ADDR where the .hwh says, so a fault is reported right."""
    dev, _ = emulated_board
    board = board_mod.BoardDevice(overlay=_fixture_overlay(tmp_path, "ctrain_vld_8_byte_slots"))
    assert board.ip.offsets["PC"] == 0x4C and board.ip.offsets["FAULT_ADDR"] == 0x54
    assert "PC: 0x4c in the .hwh, 0x54 in ctrain_isa.h" in board.ip.isa_differences
    from ctrain.device.accelerator import Accelerator
    buf = board.allocate((4096,), np.uint8)
    prog = isa.new_program(2)
    prog[0]["op"] = isa.Op.RELU_FP
    prog[0]["count"], prog[0]["src"], prog[0]["dst"], prog[0]["stats"] = 16, 512, 768, 2048
    prog[1]["op"] = isa.Op.RELU_FP
    prog[1]["count"] = 16
    prog[1]["src"] = 1 << 20  # outside the 4 KiB window
    buf[:256] = prog.view(np.uint8)
    buf.flush()
    dev.mmio_log = []
    acc = Accelerator(board.ip, timeout=5)
    acc.configure(buf.physical_address, 4096, 1024, 8)
    with pytest.raises(DeviceFault, match=r"FAULT_BOUNDS at instruction 1 \(OP_RELU_FP\), address 0x100000"):
        acc.run(0, 2, prog)
    base = int(board.overlay.ip_dict[board.ip_name]["phys_addr"])
    reads = {a - base for op, a, _ in dev.mmio_log if op == "r"}
    assert {0x4C, 0x54} <= reads and not reads & {0x64}


def test_unusable_register_map_is_refused(tmp_path, emulated_board):
    regs = [(n, isa.REG["STATUS"] if n == "pc" else off, a, t, f) for n, off, a, t, f in pe.isa_registers()]
    pe.write_overlay(tmp_path / "foreign", registers=regs)
    with pytest.raises(OverlayError, match=r"STATUS and PC are both at 0x44"):
        board_mod.BoardDevice(overlay=tmp_path / "foreign")


def test_bitstream_for_another_part_is_refused(tmp_path, emulated_board):
    bit = pe.write_overlay(tmp_path / "other")
    bit.write_bytes(pe.bit_file_bytes("ctrain", "7z010clg400"))
    with pytest.raises(OverlayError, match="is for part '7z010clg400'"):
        board_mod.BoardDevice(overlay=bit)


def test_fault_and_timeout_through_mmio(emulated_board):
    dev, overlay = emulated_board
    board = board_mod.BoardDevice(overlay=overlay)
    from ctrain.device.accelerator import Accelerator
    buf = board.allocate((4096,), np.uint8)
    prog = isa.new_program(2)
    prog[0]["op"] = isa.Op.RELU_FP
    prog[0]["count"] = 16
    prog[0]["src"] = 1 << 20  # outside the 4 KiB window
    buf[:256] = prog.view(np.uint8)
    buf.flush()
    acc = Accelerator(board.ip, timeout=5)
    acc.configure(buf.physical_address, 4096, 1024, 8)
    with pytest.raises(DeviceFault, match="FAULT_BOUNDS at instruction 0 \\(OP_RELU_FP\\)"):
        acc.run(0, 2, prog)

    release = threading.Event()

    class Stuck:
        def run(self, *args):
            release.wait(10)
            raise RuntimeError("released")

    dev.emulated.ip.engine = Stuck()
    acc = Accelerator(board.ip, timeout=0.2)
    try:
        with pytest.raises(DeviceTimeout, match=r"did not finish 2 instructions in 0.2 s; it reached instruction"):
            acc.run(0, 2, prog)
    finally:
        release.set()


@needs_pynq
def test_no_device_registered_is_clear(tmp_path, monkeypatch):
    """With no board and nothing registered, pynq itself says so (no silent emulation)."""
    pe.write_overlay(tmp_path)
    monkeypatch.setattr(pynq.Device, "_devices", [], raising=False)
    monkeypatch.delattr(pynq.Device, "_active_device", raising=False)
    with pytest.raises(CTrainError, match="pynq found no device \\(No Devices Found\\): run on a PYNQ board"):
        board_mod.BoardDevice(overlay=tmp_path)


ON_BOARD = os.path.exists("/proc/device-tree/chosen/pynq_board")


@needs_pynq
@pytest.mark.skipif(not ON_BOARD, reason="needs a PYNQ board image with the CTrain overlay (docs/board.md)")
def test_hardware_matches_emulator(digits):
    """On a board: the real overlay (found by the search order) computes exactly
    what the emulator computes; every region of the arena is compared."""
    board = board_mod.BoardDevice()
    tr = _train(digits, board, 20)
    ref = _train(digits, EmulatedDevice(ddr_bytes=32 << 20), 20)
    for name, view in tr.runtime.views.items():
        view.sync_from_device()
        ref.runtime.views[name].sync_from_device()
        assert np.array_equal(np.asarray(view), np.asarray(ref.runtime.views[name])), name
    tr.runtime.close()
