"""The board device: the accelerator on a PYNQ board, driven through pynq.

`BoardDevice` loads the overlay (`ctrain.bit` with `ctrain.hwh` beside it,
found by ctrain.overlay_files' search order) as a `pynq.Overlay`; pynq binds
`CTrainIP`, a `DefaultIP` subclass, to the accelerator's VLNV. The register
offsets are the ones pynq parsed out of the .hwh (what the export really has),
checked for a usable map before anything is written; the driver writes and
reads at those offsets, whatever ctrain_isa.h says. Buffers come from
`pynq.allocate` (PynqBuffers in contiguous memory, non-cacheable by default);
the runtime flushes or invalidates around every transfer, and
`ctrain.device.accelerator.Accelerator` polls `ap_done` with a timeout. The
same Runtime and Trainer run on it unchanged (`ctrain train --device board`).

Without a board, the path runs for real over pynq's own Device abstraction
with `ctrain.device.pynq_emulated.EmulatedPynqDevice` registered as the
active device (docs/board.md says what still needs a board).

This module imports without pynq (pynq is the `board` extra); `BoardDevice()`
then raises a clear error.
"""
import functools

import numpy as np

from .. import isa
from ..errors import CTrainError
from ..overlay_files import OverlayError, find_overlay

try:  # the board extra; absent on a laptop without `pip install ctrain[board]`
    import pynq
except ImportError:  # pragma: no cover - exercised in the no-pynq test
    pynq = None

#: the IP that scripts/hls.tcl exports and scripts/bd.tcl instantiates
VLNV = "ctrain:hls:ctrain_top:1.0"

#: ISA register name -> the names Vitis HLS gives it in the .hwh. The first is
#: what Vitis HLS 2023.2 emits for ctrain_top: a 64-bit m_axi offset becomes
#: <arg>_1/<arg>_2, arguments named like HDL keywords get an _r suffix
#: (`table` is a Verilog keyword), an ap_vld output has a <arg>_ctrl word.
HWH_NAMES = {
    "CTRL": ("CTRL",),
    "GIE": ("GIER", "GIE"),
    "IER": ("IP_IER", "IER"),
    "ISR": ("IP_ISR", "ISR"),
    "DDR_LO": ("ddr_1", "ddr", "ddr_r_1", "ddr_offset_1"),
    "DDR_HI": ("ddr_2", "ddr_r_2", "ddr_offset_2"),
    "DDR1_LO": ("ddr1_1", "ddr1", "ddr1_offset_1"),
    "DDR1_HI": ("ddr1_2", "ddr1_offset_2"),
    "PROG": ("prog", "prog_r"),
    "N_INSN": ("n_insn", "n_insn_r"),
    "TABLE": ("table_r", "table"),
    "TABLE_LEN": ("table_len", "table_len_r"),
    "DDR_SIZE": ("ddr_size", "ddr_size_r"),
    "STATUS": ("status", "status_r"),
    "STATUS_CTRL": ("status_ctrl", "status_ap_vld"),
    "PC": ("pc", "pc_r"),
    "PC_CTRL": ("pc_ctrl", "pc_ap_vld"),
    "FAULT_ADDR": ("fault_addr", "fault_addr_r"),
    "FAULT_ADDR_CTRL": ("fault_addr_ctrl", "fault_addr_ap_vld"),
}


def hwh_aliases(name):
    """The .hwh names of ISA register `name` (a register the table does not know
    yet is looked up by its lower-case name)."""
    return HWH_NAMES.get(name, (name.lower(),))


def isa_register_names():
    """Every register of ctrain_isa.h's map, in offset order."""
    return sorted((n for n in isa.REG if n != "MAP_BYTES"), key=lambda n: isa.REG[n])


#: the registers the driver uses; the others are taken when the .hwh has them
REQUIRED = ("CTRL", "DDR_LO", "DDR_HI", "PROG", "N_INSN", "TABLE", "TABLE_LEN", "DDR_SIZE",
            "STATUS", "PC", "FAULT_ADDR")


def register_offsets(registers, where="the .hwh", span=None):
    """ISA register name -> offset, from a pynq register description
    (`ip_dict[name]["registers"]`: {name: {"address_offset": int, ...}}).

    The driver uses these offsets, not ctrain_isa.h's: the .hwh is what the
    bitstream has. They must make a usable map, else OverlayError lists every
    problem: every register the driver uses present, word aligned, inside the
    address range `span` (when known), no two at one offset, and each data
    port's DDR_HI the word above its DDR_LO (the halves of one 64-bit
    offset; a second port's pair, DDR1_LO/HI, both or neither)."""
    if not registers:
        raise OverlayError(f"{where} has no register map for the accelerator ({VLNV}); "
                           "PYNQ needs the .hwh that Vivado wrote with the bitstream")
    by_name = {str(k).lower(): v for k, v in registers.items()}
    offsets, hits, problems = {}, {}, []
    for name in isa_register_names():
        aliases = hwh_aliases(name)
        hit = next((a for a in aliases if a.lower() in by_name), None)
        if hit is None:
            if name in REQUIRED:
                problems.append(f"missing register {name} (as {' or '.join(aliases)})")
            continue
        offsets[name], hits[name] = int(by_name[hit.lower()]["address_offset"]), hit
    for name, off in offsets.items():
        if off % 4:
            problems.append(f"{name} ({hits[name]}) at 0x{off:x} is not word aligned")
        if span is not None and not 0 <= off <= span - 4:
            problems.append(f"{name} ({hits[name]}) at 0x{off:x} is outside the 0x{span:x}-byte register range")
    problems += _layout_problems(offsets)
    if problems:
        raise OverlayError(f"the accelerator's register map in {where} is not usable:\n  " + "\n  ".join(problems))
    return offsets


def _layout_problems(offsets):
    """register_offsets' checks between registers: no two at one offset, and
    each data port's 64-bit offset as two adjacent words, both or neither."""
    problems, seen = [], {}
    for name, off in sorted(offsets.items(), key=lambda kv: kv[1]):
        if off in seen:
            problems.append(f"{seen[off]} and {name} are both at 0x{off:x}")
        seen.setdefault(off, name)
    for lo, hi in isa.PORT_OFFSETS:
        if (lo in offsets) != (hi in offsets) and lo not in REQUIRED:
            have, lack = (lo, hi) if lo in offsets else (hi, lo)
            problems.append(f"{have} without {lack} (as {' or '.join(hwh_aliases(lack))}): "
                            "half of a data port's 64-bit offset")
        if lo in offsets and hi in offsets and offsets[hi] != offsets[lo] + 4:
            problems.append(f"{hi} at 0x{offsets[hi]:x} is not the word above {lo} at "
                            f"0x{offsets[lo]:x} (one 64-bit m_axi offset)")
    return problems


def differences_from_isa(offsets):
    """Registers whose .hwh offset differs from ctrain_isa.h's: ["PC: 0x4c in the .hwh, 0x54 in ctrain_isa.h"]."""
    return [f"{n}: 0x{o:x} in the .hwh, 0x{isa.REG[n]:x} in ctrain_isa.h"
            for n, o in sorted(offsets.items(), key=lambda kv: kv[1]) if isa.REG.get(n) != o]


#: PS parameters holding the PL clock rate the design was timed at, per clock index
_CLOCK_PARAMS = ("PCW_ACT_FPGA{i}_PERIPHERAL_FREQMHZ", "PCW_FPGA{i}_PERIPHERAL_FREQMHZ",
                 "PSU__CRL_APB__PL{i}_REF_CTRL__ACT_FREQMHZ", "PSU__CRL_APB__PL{i}_REF_CTRL__FREQMHZ")


def fill_clock_frequencies(overlay):
    """pynq 4.0 programs each enabled PL clock from clock_dict's "frequency",
    which pynqmetadata 0.2.0 leaves None for a Zynq-7000 PS (it looks only for
    the UltraScale+ parameter name), so Overlay.download() fails with a
    TypeError on a Pynq-Z2. Fill it from the PS's own parameters in the .hwh
    (PCW_ACT_FPGA<i>_PERIPHERAL_FREQMHZ); returns the clocks it filled."""
    filled = {}
    params = {}
    for d in overlay.ip_dict.values():
        if str(d.get("type", "")).split(":")[2:3] in (["processing_system7"], ["zynq_ultra_ps_e"]):
            params.update(d.get("parameters") or {})
    for i, clk in overlay.clock_dict.items():
        if not clk.get("enable") or clk.get("frequency") is not None:
            continue
        for name in _CLOCK_PARAMS:
            value = params.get(name.format(i=i))
            if value not in (None, ""):
                clk["frequency"] = float(value)
                filled[i] = clk["frequency"]
                break
        else:
            raise OverlayError(f"PL clock {i} is enabled in the .hwh but its rate is in none of "
                               f"{', '.join(n.format(i=i) for n in _CLOCK_PARAMS)}")
    return filled


def _require_pynq():
    if pynq is None:
        raise CTrainError("the board device needs pynq: on a PYNQ image it is preinstalled; elsewhere "
                          "`pip install 'ctrain[board]'` (and register a pynq Device, see docs/board.md)")
    return pynq


@functools.lru_cache(maxsize=None)
def ip_class():
    """The DefaultIP subclass bound to VLNV; created (and so registered with
    pynq's driver table) on first use, since this module imports without pynq."""
    _require_pynq()

    class CTrainIP(pynq.DefaultIP):
        """The accelerator's AXI-lite registers (ap_ctrl_hs) through pynq's MMIO."""

        bindto = [VLNV]

        def __init__(self, description):
            super().__init__(description)
            self.fullpath = description.get("fullpath", "ctrain_top")
            span = int(description.get("addr_range", 0) or 0)
            if span <= 0:
                raise OverlayError(f"{self.fullpath}: the .hwh gives it no address range")
            self.offsets = register_offsets(description.get("registers"),
                                            f"the .hwh entry of {self.fullpath}", span)
            #: where the .hwh differs from ctrain_isa.h (the driver follows the .hwh)
            self.isa_differences = differences_from_isa(self.offsets)

        def read(self, offset=0):
            return int(self.mmio.read(offset))

        def write(self, offset, value):
            # pynq's MMIO takes a Python int or bytes, not numpy integers
            self.mmio.write(offset, int(value) & 0xFFFFFFFF)

    return CTrainIP


class BoardDevice:
    """The accelerator on a PYNQ board (or on a pynq Device that emulates one).

    overlay: explicit overlay path (a .bit, or a directory with ctrain.bit),
    else the search order of ctrain.overlay_files; board: overlay directory
    name for the package-data lookup; device: the pynq.Device (default
    pynq.Device.active_device); download: program the PL (False attaches to
    an overlay that is already loaded); cacheable: allocate cacheable
    buffers (see docs/board.md before turning it on)."""

    name = "board"

    def __init__(self, overlay=None, board=None, device=None, download=True, cacheable=False):
        _require_pynq()
        self.bitfile, self.hwhfile = find_overlay(overlay, board)
        cls = ip_class()
        if device is None:
            try:
                device = pynq.Device.active_device
            except RuntimeError as exc:  # pynq: "No Devices Found"
                raise CTrainError(f"pynq found no device ({exc}): run on a PYNQ board image, or register one "
                                  "as pynq.Device.active_device (docs/board.md: emulated board)") from exc
        self.pynq_device = device
        self.overlay = pynq.Overlay(str(self.bitfile), device=self.pynq_device, download=False)
        if download:
            fill_clock_frequencies(self.overlay)
            self.overlay.download()
        names = sorted(n for n, d in self.overlay.ip_dict.items() if d.get("type") == VLNV)
        if not names:
            found = ", ".join(f"{n} ({d.get('type')})" for n, d in self.overlay.ip_dict.items()) or "none"
            raise OverlayError(f"{self.hwhfile}: no IP of type {VLNV}; the overlay has: {found}")
        if len(names) > 1:
            raise OverlayError(f"{self.hwhfile}: several accelerators ({', '.join(names)}); "
                               "the driver runs one")
        self.ip_name = names[0]
        if download and not self.overlay.is_loaded():
            raise OverlayError(f"{self.bitfile} did not load onto {self.pynq_device.name}")
        self.ip = functools.reduce(getattr, self.ip_name.split("/"), self.overlay)
        if not isinstance(self.ip, cls):
            raise OverlayError(f"pynq bound {type(self.ip).__name__} to {self.ip_name}, not the CTrain driver "
                               f"(is its VLNV {self.overlay.ip_dict[self.ip_name].get('type')} instead of {VLNV}?)")
        self.cacheable = bool(cacheable)

    def allocate(self, shape, dtype=np.uint8):
        """A PynqBuffer in memory the accelerator reaches (pynq.allocate on this device)."""
        kwargs = {"cacheable": True} if self.cacheable else {}
        return pynq.allocate(shape, dtype, target=self.pynq_device, **kwargs)

    def describe(self):
        d = self.overlay.ip_dict[self.ip_name]
        return (f"{self.ip_name} ({VLNV}) at 0x{int(d['phys_addr']):x}, {self.bitfile} on "
                f"{getattr(self.pynq_device, 'name', self.pynq_device)}")
