"""The board driver against the installed pynq's version-specific behaviour.

The whole board path (tests/test_board.py, tests/test_notebooks.py) runs on
pynq 4.0 (scripts/run_tests.py's numpy1-pynq run) and was run on pynq 3.0.1
(docs/board.md); these tests pin down where the two differ: which pynq
versions the `board` extra admits, and how the PL clock driver is bound to
the device (pynq 4.0: Clocks.set_device by the Overlay; pynq 3.x: chosen from
the host CPU, reached through the active device)."""
import os
import sys

import pytest

pynq = pytest.importorskip("pynq", reason="needs pynq (pip install '.[board]')")

from ctrain.device import board as board_mod  # noqa: E402
from ctrain.device import pynq_emulated as pe  # noqa: E402
from ctrain.device.emulated import EmulatedDevice  # noqa: E402
from ctrain.overlay_files import OverlayError  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYNQ4 = hasattr(pynq.ps.Clocks, "set_device")


def _version():
    from importlib.metadata import version
    return version("pynq")


def test_installed_pynq_is_a_tested_one():
    """4.0 (the board extra) or 3.0.x (PYNQ 3.0 images; docs/board.md)."""
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        board = tomllib.load(f)["project"]["optional-dependencies"]["board"]
    assert Requirement(next(r for r in board if r.startswith("pynq"))).specifier == SpecifierSet(">=4.0")
    assert SpecifierSet("==3.0.*").contains(_version()) or SpecifierSet(">=4.0").contains(_version())
    assert PYNQ4 == (int(_version().split(".")[0]) >= 4)


def test_pl_clock_is_programmed_from_the_hwh_through_pynqs_own_clock_driver(tmp_path):
    dev = pe.EmulatedPynqDevice(EmulatedDevice(ddr_bytes=8 << 20))
    pe.write_overlay(tmp_path / "overlay")
    with pe.activate(dev):
        board_mod.BoardDevice(overlay=tmp_path / "overlay")
        if PYNQ4:
            assert pynq.ps.Clocks.device is dev
        else:  # bound by the emulated board: the Zynq-7000 driver, its SLCR view on this device
            clocks = pynq.ps.Clocks._real_instance
            assert type(clocks) is pynq.ps._ClocksZynq and clocks._slcr_mmio.device is dev
        assert pe.fclk_mhz(0) == 100.0
        pynq.ps.Clocks.fclk0_mhz = 50  # through pynq into the emulated SLCR ...
        assert pe.fclk_mhz(0) == 50.0 and pynq.ps.Clocks.fclk0_mhz == 50.0
        board_mod.BoardDevice(overlay=tmp_path / "overlay")  # ... and the download sets the .hwh's rate again
        assert pe.fclk_mhz(0) == 100.0 and pynq.ps.Clocks.fclk0_mhz == 100.0


@pytest.mark.skipif(PYNQ4, reason="pynq 4.0 binds the clock driver to the overlay's own device")
def test_pynq3_emulated_board_must_be_the_active_device(tmp_path):
    dev = pe.EmulatedPynqDevice(EmulatedDevice(ddr_bytes=8 << 20))
    other = pe.EmulatedPynqDevice(EmulatedDevice(ddr_bytes=8 << 20))
    pe.write_overlay(tmp_path / "overlay")
    with pe.activate(other):
        with pytest.raises(OverlayError, match="pynq 3.x programs the PL clocks through the active device"):
            board_mod.BoardDevice(overlay=tmp_path / "overlay", device=dev)
