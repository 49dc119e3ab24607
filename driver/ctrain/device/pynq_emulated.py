"""A PYNQ board in software, registered with pynq's own Device abstraction.

`EmulatedPynqDevice` is a `pynq.Device` (as PYNQ's own tests register fake
devices) whose memory is an `EmulatedDevice`'s DDR and whose AXI-lite slave is
its `EmulatedIP` register file, so everything above it is pynq's real code:
`pynq.Overlay` reads the .bit header and parses the .hwh (pynq's own
BitfileHandler / pynqmetadata path, as on a Zynq), binds drivers by VLNV and
sets the PL clocks; `pynq.allocate` returns real `PynqBuffer`s whose
`flush`/`invalidate` copy between the host array and the emulated DDR (the
host copy is not coherent until then, so a missing sync shows); `pynq.MMIO`
reads and writes reach the emulated registers, and writing ap_start runs the
engine over that DDR.

What it cannot stand in for is listed in docs/board.md: the bitstream itself
(the emulated one carries a valid header and no configuration data), timing,
interrupts, XRT/CMA allocation and cache maintenance on ARM, the real .hwh
Vivado writes.

`write_overlay(directory)` writes such an overlay: `ctrain.bit` (a valid
Xilinx bitstream header, empty configuration) and `ctrain.hwh` generated from
the ISA header's register map (the subset of Vivado's hardware handoff that
pynq parses: the Zynq PS with its clocks and address map, the accelerator
with its register map and its m_axi port into DDR).

Usage::

    dev = EmulatedPynqDevice()
    with activate(dev):                      # pynq.Device.active_device = dev
        write_overlay(tmpdir)
        board = BoardDevice(overlay=tmpdir)   # or CTRAIN_OVERLAY=tmpdir
        ...
"""
import contextlib
import datetime
import os
import struct
import threading
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import pynq
from pynq.buffer import PynqBuffer

from .. import boards, isa
from ..errors import MemoryFault
from ..overlay_files import OverlayError
from .board import VLNV, hwh_aliases, isa_register_names, register_offsets
from .emulated import EmulatedDevice, EmulatedIP

def _emulated(name, **ps):
    """A board's facts from its config header (ctrain.boards) plus what only
    the emulation needs: the PS's architecture, address map and IP names."""
    c = boards.get(name)
    return {**ps, "part": c.part, "clock_mhz": c.clock_mhz, "display": c.pynq_name, "hp": c.hp_port,
            "beat_bits": 8 * c.ddr_beat}


#: what the emulation knows per board: the PS, its address map, its part
BOARDS = {
    "pynq_z2": _emulated(
        "pynq_z2", arch="armv7l", family="zynq", device="7z020", package="clg400", speed="-1",
        ps="processing_system7", ps_vlnv="xilinx.com:ip:processing_system7:5.5",
        ps_name="processing_system7_0", gp="M_AXI_GP0", gp_base=0x4000_0000, ddr=(0x0000_0000, 0x1FFF_FFFF)),
}

# Zynq-7000 SLCR (TRM UG585): the clock registers pynq.ps.Clocks reads and writes,
# at their values on a Pynq-Z2 after boot (PS_CLK 50 MHz, IO PLL x20 = 1000 MHz,
# ARM PLL x26, DDR PLL x21, FCLK0 = IO PLL / 5 / 2 = 100 MHz).
SLCR_BASE, SLCR_SIZE = 0xF800_0000, 0x1000
_SLCR_RESET = {0x100: 26 << 12, 0x104: 21 << 12, 0x108: 20 << 12, 0x120: (2 << 8) | (0 << 4),
               0x170: (2 << 20) | (5 << 8), 0x180: (2 << 20) | (5 << 8), 0x190: (2 << 20) | (5 << 8),
               0x1A0: (2 << 20) | (5 << 8)}
# one PS per process, as on the board: pynq.ps.Clocks caches its register view
# of the first device it saw, so every emulated device shares these words
_SLCR = dict(_SLCR_RESET)
_SLCR_LOCK = threading.Lock()


def slcr_word(offset):
    """A word of the emulated PS's SLCR (e.g. 0x170, FPGA0_CLK_CTRL)."""
    return _SLCR.get(offset, 0)


def fclk_mhz(index=0):
    """The PL clock the emulated PS generates (what pynq.ps.Clocks programmed)."""
    ctrl = slcr_word(0x170 + 0x10 * index)
    src = (ctrl >> 4) & 3
    pll = {0: 0x108, 1: 0x108, 2: 0x100, 3: 0x104}[src]
    fdiv = (slcr_word(pll) >> 12) & 0x7F
    d0, d1 = (ctrl >> 8) & 0x3F, (ctrl >> 20) & 0x3F
    return 50.0 * fdiv / (d0 * d1) if d0 and d1 else 0.0


# -- the overlay files ----------------------------------------------------------

def bit_file_bytes(design="ctrain", part="7z020clg400", payload=b""):
    """A Xilinx .bit: the header fields Vivado writes (a: design;UserID;Version,
    b: part, c: date, d: time, e: configuration length + data). The payload
    here is only a marker; a real bitstream's configuration frames cannot be
    made without Vivado."""
    def field(key, text):
        data = text.encode("ascii") + b"\0"
        return key + struct.pack(">H", len(data)) + data

    now = datetime.datetime.now()
    body = payload or b"CTRAIN-EMULATED-BITSTREAM\0\0\0"
    body += b"\0" * (-len(body) % 4)
    magic = bytes([0x0F, 0xF0, 0x0F, 0xF0, 0x0F, 0xF0, 0x0F, 0xF0, 0x00])
    return (struct.pack(">H", len(magic)) + magic + struct.pack(">H", 1)
            + field(b"a", f"{design};UserID=0XFFFFFFFF;Version=2023.2")
            + field(b"b", part) + field(b"c", now.strftime("%Y/%m/%d")) + field(b"d", now.strftime("%H:%M:%S"))
            + b"e" + struct.pack(">I", len(body)) + body)


_RESERVED = "Reserved.  0s on read."


def _field(name, bit, width, access, text=None):
    return (name, bit, width, access, text or f"Bit {bit + width - 1} to {bit} of {name}")


#: the block-level registers as a Vitis HLS export describes them (field names,
#: bits and access of CTRL, GIER, IP_IER, IP_ISR; INTERRUPT is CTRL bit 9)
_BLOCK_FIELDS = {
    "CTRL": ("Control signals", "read-write", [
        ("AP_START", 0, 1, "read-write", "Control signal Register for 'ap_start'."),
        ("AP_DONE", 1, 1, "read-only", "Control signal Register for 'ap_done'."),
        ("AP_IDLE", 2, 1, "read-only", "Control signal Register for 'ap_idle'."),
        ("AP_READY", 3, 1, "read-only", "Control signal Register for 'ap_ready'."),
        ("RESERVED_1", 4, 3, "read-only", _RESERVED),
        ("AUTO_RESTART", 7, 1, "read-write", "Control signal Register for 'auto_restart'."),
        ("RESERVED_2", 8, 1, "read-only", _RESERVED),
        ("INTERRUPT", 9, 1, "read-only", "Control signal Register for 'interrupt'."),
        ("RESERVED_3", 10, 22, "read-only", _RESERVED)]),
    "GIER": ("Global Interrupt Enable Register", "read-write", [
        ("Enable", 0, 1, "read-write", "Master enable for the device interrupt output to the system "
                                       "interrupt controller: 0 = Disabled, 1 = Enabled"),
        ("RESERVED", 1, 31, "read-only", _RESERVED)]),
    "IP_IER": ("IP Interrupt Enable Register", "read-write", [
        ("CHAN0_INT_EN", 0, 1, "read-write", "Enable Channel 0 (ap_done) Interrupt.  0 = Disabled, 1 = Enabled."),
        ("CHAN1_INT_EN", 1, 1, "read-write", "Enable Channel 1 (ap_ready) Interrupt.  0 = Disabled, 1 = Enabled."),
        ("RESERVED_0", 2, 30, "read-only", _RESERVED)]),
    "IP_ISR": ("IP Interrupt Status Register", "read-write", [
        ("CHAN0_INT_ST", 0, 1, "read-only", "Channel 0 (ap_done) Interrupt Status. 0 = No Channel 0 "
                                           "interrupt, 1 = Channel 0 interrupt."),
        ("CHAN1_INT_ST", 1, 1, "read-only", "Channel 1 (ap_ready) Interrupt Status. 0 = No Channel 1 "
                                           "interrupt, 1 = Channel 1 interrupt."),
        ("RESERVED_0", 2, 30, "read-only", _RESERVED)]),
}


def isa_registers(offsets=None, ports=1):
    """The accelerator's register map as a Vitis HLS export writes it into the
    .hwh, at ctrain_isa.h's offsets (or `offsets`, ISA name -> offset):
    [(hls name, offset, access, description, [(field, bit, width, access, description)])].
    Conventions: the 64-bit m_axi offset `ddr` is ddr_1/ddr_2 (bits 31..0 and
    63..32 of ddr), a scalar is one register named after its argument (`table`
    is a Verilog keyword: table_r), an ap_vld output is its data register plus
    <arg>_ctrl with fields <arg>_ap_vld and RESERVED. `ports`: the data
    ports (CTRAIN_DDR_PORTS); with 2 the second's offset ddr1_1/ddr1_2 too."""
    offsets = dict(isa.REG if offsets is None else offsets)
    out = []
    for name in isa_register_names():
        if name.startswith("DDR1_") and ports < 2:
            continue
        hls = hwh_aliases(name)[0]
        off = offsets[name]
        if hls in _BLOCK_FIELDS:
            text, access, fields = _BLOCK_FIELDS[hls]
        elif any(name in pair for pair in isa.PORT_OFFSETS):
            arg = "ddr1" if name.startswith("DDR1") else "ddr"
            access, text = "write-only", f"Data signal of {arg}"
            fields = [_field(arg, 0, 32, access, f"Bit {'31 to 0' if name.endswith('_LO') else '63 to 32'} of {arg}")]
        elif name.endswith("_CTRL"):
            arg = hls[:-len("_ctrl")]
            access, text = "read-only", f"Control signal of {arg}"
            fields = [_field(f"{arg}_ap_vld", 0, 1, access, f"Control signal {arg}_ap_vld"),
                      _field("RESERVED", 1, 31, access, _RESERVED)]
        else:
            access = "read-only" if name in ("STATUS", "PC", "FAULT_ADDR") else "write-only"
            text = f"Data signal of {hls}"
            fields = [_field(hls, 0, 32, access)]
        out.append((hls, off, access, text, fields))
    return sorted(out, key=lambda r: r[1])


def hwh_text(board=boards.DEFAULT_BOARD, registers=None, ip_name="ctrain_top_0", ip_base=None, vlnv=VLNV,
             design="ctrain", clock_mhz=None):
    """The hardware handoff of the CTrain block design, as much of it as pynq
    reads: SYSTEMINFO, the PS (clock parameters, M_AXI_GP0 address map, HP
    port), the accelerator (VLNV, register map, s_axi_control and m_axi_gmem).
    `registers` overrides the register map (isa_registers()'s form; tests use
    it for maps other than ctrain_isa.h's)."""
    b = BOARDS[board]
    regs = isa_registers(ports=boards.get(board).ddr_ports) if registers is None else registers
    base = b["gp_base"] if ip_base is None else ip_base
    high = base + 0xFFFF
    mhz = b["clock_mhz"] if clock_mhz is None else clock_mhz
    ps = b["ps_name"]
    ctrl_bus, mem_bus = f"{ps}_{b['gp']}", f"{ip_name}_m_axi_gmem"
    clk_net = f"{ps}_FCLK_CLK0"
    q = quoteattr

    def reg_xml(name, off, access, text, fields):
        f_xml = "".join(
            f"""
                <FIELD NAME={q(fn)}>
                  <PROPERTY NAME="DESCRIPTION" VALUE={q(ft)}/>
                  <PROPERTY NAME="ADDRESS_OFFSET" VALUE="{bo}"/>
                  <PROPERTY NAME="ACCESS" VALUE={q(fa)}/>
                  <PROPERTY NAME="MODIFIED_READ_VALUES" VALUE=""/>
                  <PROPERTY NAME="WRITE_CONSTRAINT" VALUE="0"/>
                  <PROPERTY NAME="READ_ACTION" VALUE=""/>
                  <PROPERTY NAME="BIT_OFFSET" VALUE="{bo}"/>
                  <PROPERTY NAME="BIT_WIDTH" VALUE="{bw}"/>
                </FIELD>""" for fn, bo, bw, fa, ft in fields)
        return f"""
            <REGISTER NAME={q(name)}>
              <PROPERTY NAME="DESCRIPTION" VALUE={q(text)}/>
              <PROPERTY NAME="ADDRESS_OFFSET" VALUE="{off}"/>
              <PROPERTY NAME="SIZE" VALUE="32"/>
              <PROPERTY NAME="ACCESS" VALUE={q(access)}/>
              <PROPERTY NAME="IS_ENABLED" VALUE="true"/>
              <PROPERTY NAME="RESET_VALUE" VALUE="0"/>
              <FIELDS>{f_xml}
              </FIELDS>
            </REGISTER>"""

    axi_lite = ["AWADDR", "AWVALID", "AWREADY", "WDATA", "WSTRB", "WVALID", "WREADY", "BRESP", "BVALID",
                "BREADY", "ARADDR", "ARVALID", "ARREADY", "RDATA", "RRESP", "RVALID", "RREADY"]
    axi_dirs = {"AWREADY": "O", "WREADY": "O", "BRESP": "O", "BVALID": "O", "ARREADY": "O", "RDATA": "O",
                "RRESP": "O", "RVALID": "O"}
    axi_full = ["AWADDR", "AWLEN", "AWSIZE", "AWBURST", "AWVALID", "AWREADY", "WDATA", "WSTRB", "WLAST",
                "WVALID", "WREADY", "BRESP", "BVALID", "BREADY", "ARADDR", "ARLEN", "ARSIZE", "ARBURST",
                "ARVALID", "ARREADY", "RDATA", "RRESP", "RLAST", "RVALID", "RREADY"]
    master_in = {"AWREADY", "WREADY", "BRESP", "BVALID", "ARREADY", "RDATA", "RRESP", "RLAST", "RVALID"}

    def ports(prefix, sigs, dir_of, peer, peer_prefix):
        return "".join(f"""
        <PORT DIR="{dir_of(s)}" NAME="{prefix}_{s}" SIGIS="undef" SIGNAME="{peer}_{peer_prefix}_{s.lower()}">
          <CONNECTIONS>
            <CONNECTION INSTANCE="{peer}" PORT="{peer_prefix}_{s}"/>
          </CONNECTIONS>
        </PORT>""" for s in sigs)

    def portmaps(prefix, sigs):
        return "".join(f"""
            <PORTMAP LOGICAL="{s}" PHYSICAL="{prefix}_{s}"/>""" for s in sigs)

    def ps_params():
        p = {"PCW_UIPARAM_DDR_PARTNO": "MT41K256M16 RE-125", "PCW_USE_M_AXI_GP0": "1", "PCW_USE_S_AXI_HP0": "1",
             "PCW_S_AXI_HP0_DATA_WIDTH": "64", "PCW_CRYSTAL_PERIPHERAL_FREQMHZ": "50"}
        for i in range(4):
            on = i == 0
            p[f"PCW_FPGA{i}_PERIPHERAL_FREQMHZ"] = str(mhz if on else 100)
            p[f"PCW_ACT_FPGA{i}_PERIPHERAL_FREQMHZ"] = f"{(mhz if on else 10):.6f}"
            d0, d1 = _divisors(1000.0 / (mhz if on else 10))
            p[f"PCW_FCLK{i}_PERIPHERAL_DIVISOR0"] = str(d0)
            p[f"PCW_FCLK{i}_PERIPHERAL_DIVISOR1"] = str(d1)
            p[f"PCW_FCLK{i}_PERIPHERAL_CLKSRC"] = "IO PLL"
            p[f"PCW_FPGA_FCLK{i}_ENABLE"] = "1" if on else "0"
            p[f"PCW_EN_CLK{i}_PORT"] = "1" if on else "0"
        return "".join(f"""
        <PARAMETER NAME="{k}" VALUE={q(v)}/>""" for k, v in p.items())

    ip_ports = (ports("s_axi_control", axi_lite, lambda s: axi_dirs.get(s, "I"), ps, b["gp"])
                + ports("m_axi_gmem", axi_full, lambda s: "I" if s in master_in else "O", ps, b["hp"]))
    ps_ports = (ports(b["gp"], axi_lite, lambda s: "I" if s in axi_dirs else "O", ip_name, "s_axi_control")
                + ports(b["hp"], axi_full, lambda s: "O" if s in master_in else "I", ip_name, "m_axi_gmem"))
    ddr_lo, ddr_hi = b["ddr"]
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="no" ?>
<EDKSYSTEM EDWVERSION="1.2" TIMESTAMP="{datetime.datetime.now():%a %b %d %H:%M:%S %Y}" VIVADOVERSION="2023.2">
  <!-- Generated by ctrain.device.pynq_emulated from ctrain_isa.h for the emulated board; not a Vivado output. -->

  <SYSTEMINFO ARCH="{b['family']}" DEVICE="{b['device']}" NAME="{design}" PACKAGE="{b['package']}" SPEEDGRADE="{b['speed']}"/>

  <EXTERNALPORTS/>

  <EXTERNALINTERFACES/>

  <MODULES>
    <MODULE COREREVISION="1" FULLNAME="/{ip_name}" HWVERSION="1.0" INSTANCE="{ip_name}" IPTYPE="PERIPHERAL" IS_ENABLE="1" MODCLASS="PERIPHERAL" MODTYPE="ctrain_top" VLNV="{vlnv}">
      <DOCUMENTS/>
      <ADDRESSBLOCKS>
        <ADDRESSBLOCK ACCESS="read-write" INTERFACE="s_axi_control" NAME="Reg" RANGE="65536" USAGE="register">
          <REGISTERS>{"".join(reg_xml(*r) for r in regs)}
          </REGISTERS>
        </ADDRESSBLOCK>
      </ADDRESSBLOCKS>
      <PARAMETERS>
        <PARAMETER NAME="C_S_AXI_CONTROL_ADDR_WIDTH" VALUE="7"/>
        <PARAMETER NAME="C_S_AXI_CONTROL_DATA_WIDTH" VALUE="32"/>
        <PARAMETER NAME="C_M_AXI_GMEM_ADDR_WIDTH" VALUE="64"/>
        <PARAMETER NAME="C_M_AXI_GMEM_DATA_WIDTH" VALUE="{b['beat_bits']}"/>
        <PARAMETER NAME="Component_Name" VALUE="{design}_{ip_name}"/>
        <PARAMETER NAME="clk_period" VALUE="{1000.0 / mhz:g}"/>
        <PARAMETER NAME="EDK_IPTYPE" VALUE="PERIPHERAL"/>
        <PARAMETER NAME="C_S_AXI_CONTROL_BASEADDR" VALUE="0x{base:08X}"/>
        <PARAMETER NAME="C_S_AXI_CONTROL_HIGHADDR" VALUE="0x{high:08X}"/>
      </PARAMETERS>
      <PORTS>{ip_ports}
        <PORT CLKFREQUENCY="{int(mhz * 1e6)}" DIR="I" NAME="ap_clk" SIGIS="clk" SIGNAME="{clk_net}">
          <CONNECTIONS>
            <CONNECTION INSTANCE="{ps}" PORT="FCLK_CLK0"/>
          </CONNECTIONS>
        </PORT>
        <PORT DIR="I" NAME="ap_rst_n" SIGIS="rst"/>
        <PORT DIR="O" NAME="interrupt" SENSITIVITY="LEVEL_HIGH" SIGIS="INTERRUPT"/>
      </PORTS>
      <BUSINTERFACES>
        <BUSINTERFACE BUSNAME="{ctrl_bus}" DATAWIDTH="32" NAME="s_axi_control" TYPE="SLAVE" VLNV="xilinx.com:interface:aximm:1.0">
          <PARAMETER NAME="ADDR_WIDTH" VALUE="7"/>
          <PARAMETER NAME="DATA_WIDTH" VALUE="32"/>
          <PARAMETER NAME="PROTOCOL" VALUE="AXI4LITE"/>
          <PARAMETER NAME="FREQ_HZ" VALUE="{int(mhz * 1e6)}"/>
          <PORTMAPS>{portmaps("s_axi_control", axi_lite)}
          </PORTMAPS>
        </BUSINTERFACE>
        <BUSINTERFACE BUSNAME="{mem_bus}" DATAWIDTH="{b['beat_bits']}" NAME="m_axi_gmem" TYPE="MASTER" VLNV="xilinx.com:interface:aximm:1.0">
          <PARAMETER NAME="ADDR_WIDTH" VALUE="64"/>
          <PARAMETER NAME="DATA_WIDTH" VALUE="{b['beat_bits']}"/>
          <PARAMETER NAME="PROTOCOL" VALUE="AXI4"/>
          <PARAMETER NAME="FREQ_HZ" VALUE="{int(mhz * 1e6)}"/>
          <PORTMAPS>{portmaps("m_axi_gmem", axi_full)}
          </PORTMAPS>
        </BUSINTERFACE>
      </BUSINTERFACES>
      <MEMORYMAP>
        <MEMRANGE ADDRESSBLOCK="HP0_DDR_LOWOCM" BASENAME="C_BASEADDR" BASEVALUE="0x{ddr_lo:08X}" HIGHNAME="C_HIGHADDR" HIGHVALUE="0x{ddr_hi:08X}" INSTANCE="{ps}" IS_DATA="TRUE" IS_INSTRUCTION="TRUE" MASTERBUSINTERFACE="m_axi_gmem" MEMTYPE="MEMORY" SLAVEBUSINTERFACE="{b['hp']}"/>
      </MEMORYMAP>
    </MODULE>
    <MODULE CONFIGURABLE="TRUE" COREREVISION="6" FULLNAME="/{ps}" HWVERSION="5.5" INSTANCE="{ps}" IPTYPE="PERIPHERAL" IS_ENABLE="1" IS_PL="FALSE" MODTYPE="{b['ps']}" VLNV="{b['ps_vlnv']}">
      <DOCUMENTS/>
      <PARAMETERS>{ps_params()}
      </PARAMETERS>
      <PORTS>{ps_ports}
        <PORT CLKFREQUENCY="{int(mhz * 1e6)}" DIR="O" NAME="FCLK_CLK0" SIGIS="clk" SIGNAME="{clk_net}">
          <CONNECTIONS>
            <CONNECTION INSTANCE="{ip_name}" PORT="ap_clk"/>
          </CONNECTIONS>
        </PORT>
      </PORTS>
      <BUSINTERFACES>
        <BUSINTERFACE BUSNAME="{ctrl_bus}" DATAWIDTH="32" NAME="{b['gp']}" TYPE="MASTER" VLNV="xilinx.com:interface:aximm:1.0">
          <PARAMETER NAME="PROTOCOL" VALUE="AXI3"/>
          <PORTMAPS>{portmaps(b["gp"], axi_lite)}
          </PORTMAPS>
        </BUSINTERFACE>
        <BUSINTERFACE BUSNAME="{mem_bus}" DATAWIDTH="64" NAME="{b['hp']}" TYPE="SLAVE" VLNV="xilinx.com:interface:aximm:1.0">
          <PARAMETER NAME="PROTOCOL" VALUE="AXI3"/>
          <PORTMAPS>{portmaps(b["hp"], axi_full)}
          </PORTMAPS>
        </BUSINTERFACE>
      </BUSINTERFACES>
      <MEMORYMAP>
        <MEMRANGE ADDRESSBLOCK="Reg" BASENAME="C_S_AXI_CONTROL_BASEADDR" BASEVALUE="0x{base:08X}" HIGHNAME="C_S_AXI_CONTROL_HIGHADDR" HIGHVALUE="0x{high:08X}" INSTANCE="{ip_name}" IS_DATA="TRUE" IS_INSTRUCTION="TRUE" MASTERBUSINTERFACE="{b['gp']}" MEMTYPE="REGISTER" SLAVEBUSINTERFACE="s_axi_control"/>
      </MEMORYMAP>
    </MODULE>
  </MODULES>

</EDKSYSTEM>
"""


def _divisors(ratio):
    """Two 6-bit clock divisors whose product is closest to `ratio`."""
    best = min(((a, b_) for a in range(1, 64) for b_ in range(1, 64)), key=lambda d: (abs(d[0] * d[1] - ratio), d))
    return best


def write_overlay(directory, board=boards.DEFAULT_BOARD, name="ctrain", **hwh_options):
    """Write <name>.bit and <name>.hwh for the emulated board into `directory`;
    returns the .bit path."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    b = BOARDS[board]
    bit = d / f"{name}.bit"
    bit.write_bytes(bit_file_bytes(name, b["device"] + b["package"]))
    bit.with_suffix(".hwh").write_text(hwh_text(board, design=name, **hwh_options), encoding="utf-8")
    return bit


# -- the device -------------------------------------------------------------------

class EmulatedMemory:
    """The PS DDR as pynq sees it: allocate() hands out PynqBuffers whose host
    array is separate from the emulated DDR (as a cacheable CMA buffer is
    separate from what the accelerator reads until flushed)."""

    def __init__(self, device):
        self.device = device
        self.emulated = device.emulated
        self._host = {}  # bo (physical address of the allocation) -> host uint8 array

    def allocate(self, shape, dtype="u4", cacheable=False, **kwargs):
        dtype = np.dtype(dtype)
        shape = (shape,) if np.isscalar(shape) else tuple(shape)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        addr = self.emulated.allocator.allocate(nbytes)
        host = np.zeros(max(nbytes, 1), np.uint8)
        self._host[addr] = host
        buf = PynqBuffer(shape, dtype, buffer=host, device=self.device, device_address=addr, bo=addr,
                         coherent=False)
        # pynq's freebuffer() hands (pointer, return_to) back, as for XRT's buffer cache;
        # `freed` keeps its other branch (munmap of an XRT mapping) from ever running
        buf.memory, buf.pointer, buf.return_to, buf.freed = self, addr, self, True
        return buf

    def return_pointer(self, pointer):
        """Free an allocation (PynqBuffer.freebuffer, or garbage collection)."""
        if self._host.pop(pointer, None) is not None:
            self.emulated.free(pointer)

    def host(self, bo, offset, ptr, size):
        arr = self._host.get(bo)
        if arr is None:
            raise MemoryFault(f"sync of buffer 0x{bo:x}, which was freed or is not an allocation")
        base = arr.__array_interface__["data"][0]
        if ptr != base + offset or offset < 0 or offset + size > arr.size:
            raise MemoryFault(f"sync of [0x{bo + offset:x}, +{size}) is outside buffer 0x{bo:x}")
        return arr[offset:offset + size]

    @property
    def mem_used(self):
        return sum(self.emulated.allocator.used.values())

    @property
    def num_buffers(self):
        return len(self._host)


class EmulatedPynqDevice(pynq.Device):
    """A pynq Device that is an emulated board (see the module docstring).

    emulated: the EmulatedDevice holding DDR and the engine (default: a new
    one with the numpy engine); board: which board's PS and address map."""

    def __init__(self, emulated=None, board=boards.DEFAULT_BOARD, tag="ctrain_emulated0", engine="numpy"):
        super().__init__(tag)
        if board not in BOARDS:
            raise ValueError(f"no emulation of board {board!r}; choose one of {', '.join(BOARDS)}")
        self.board = board
        self.spec = BOARDS[board]
        self.emulated = emulated if emulated is not None else EmulatedDevice(engine=engine)
        self.capabilities = {"REGISTER_RW": True, "MEMORY_MAPPED": False, "CALLABLE": False}
        self.arch = self.spec["arch"]
        self.name = f"ctrain emulated {self.spec['display']}"
        self.bitfile_name = None
        self.timestamp = None
        self.downloads = 0
        self._memory = EmulatedMemory(self)
        self._slaves = []  # (base, size, read, write), set when a bitstream is downloaded
        self.mmio_log = None  # a list to record (op, address, value), or None

    # -- memory ------------------------------------------------------------------
    @property
    def default_memory(self):
        return self._memory

    def flush(self, bo, offset, ptr, size):
        """Host copy -> DDR (PynqBuffer.flush / sync_to_device)."""
        data = self._memory.host(bo, offset, ptr, size)
        self.emulated.write_ddr(bo + offset, data)

    def invalidate(self, bo, offset, ptr, size):
        """DDR -> host copy (PynqBuffer.invalidate / sync_from_device)."""
        host = self._memory.host(bo, offset, ptr, size)
        host[...] = self.emulated.read_ddr(bo + offset, size)

    # -- the bitstream -------------------------------------------------------------
    def get_bitfile_metadata(self, bitfile_name, partial=False):
        """pynq's own parse of the .bit/.hwh pair, the steps EmbeddedDevice's
        BitfileHandler.get_parser takes on a Zynq (pynqmetadata's .hwh
        frontend, RuntimeMetadataParser, the .bit header), except the XRT
        xclbin it synthesises with xclbinutil for XRT's memory allocator:
        allocation here is the emulated DDR's."""
        from pynq.pl_server.embedded_device import BitfileHandler
        from pynqmetadata.frontends import Metadata
        from pynqmetadata.views.runtime import RuntimeMetadataParser
        _bind_pynq3_clocks(self)
        hwh = Path(bitfile_name).with_suffix(".hwh")
        if not hwh.is_file():
            raise OverlayError(f"no metadata: {hwh} is missing beside {bitfile_name}")
        parser = RuntimeMetadataParser(Metadata(input=hwh))
        if not partial:
            parser.refresh_hierarchy_dict()
        handler = BitfileHandler(bitfile_name)
        parser.bin_data = handler.get_bin_data()
        parser.xclbin_data = None
        parser.dtbo_data = handler.get_dtbo_data()
        return parser

    def download(self, bitstream, parser=None):
        """'Configure the PL': check the bitstream header against this board,
        then decode the accelerator's AXI-lite range from the metadata and
        give it a fresh register file (DDR keeps its contents, as on a board)."""
        from pynq.pl_server.embedded_device import parse_bit_header
        if parser is None:
            parser = self.get_bitfile_metadata(bitstream.bitfile_name, bitstream.partial)
        with open(bitstream.bitfile_name, "rb") as f:
            header = parse_bit_header(f.read())
        want = self.spec["device"] + self.spec["package"]
        if not header.get("part", "").startswith(want):
            raise OverlayError(f"{bitstream.bitfile_name} is for part {header.get('part')!r}; "
                               f"the {self.spec['display']} is {want}")
        slaves = []
        for name, d in parser.ip_dict.items():
            if d.get("type") == VLNV:
                # the emulated hardware has the register map the .hwh describes, as a real export would
                span = int(d["addr_range"])
                offsets = register_offsets(d.get("registers"), f"{bitstream.bitfile_name}: {name}", span)
                ip = EmulatedIP(self.emulated, self.emulated.engine, offsets=offsets, span=span)
                self.emulated.ip = ip
                slaves.append((int(d["phys_addr"]), int(d["addr_range"]), ip))
        if not slaves:
            raise OverlayError(f"{bitstream.bitfile_name}: the metadata has no {VLNV} to emulate")
        self._slaves = slaves
        self.downloads += 1
        self.post_download(bitstream, parser, self.name)

    def gen_cache(self, bitstream, parser=None):
        """pynq writes a global state file on a board; nothing to cache here."""

    # -- AXI-lite ----------------------------------------------------------------------
    def _decode(self, address, length):
        for base, size, ip in self._slaves:
            if base <= address and address + length <= base + size:
                return ip, address - base
        if self.arch == "armv7l" and SLCR_BASE <= address and address + length <= SLCR_BASE + SLCR_SIZE:
            return None, address - SLCR_BASE
        raise MemoryFault(f"AXI access [0x{address:x}, +{length}) decodes to no slave of the "
                          f"{self.spec['display']} overlay (a bus error on the board)")

    def read_registers(self, address, length):
        if length % 4 or address % 4:
            raise MemoryFault(f"register read of {length} bytes at 0x{address:x}: 32-bit words only")
        target, off = self._decode(address, length)
        words = []
        for k in range(0, length, 4):
            if target is None:
                with _SLCR_LOCK:
                    v = _SLCR.get(off + k, 0)
            else:
                v = target.read(off + k)
            if self.mmio_log is not None:
                self.mmio_log.append(("r", address + k, v))
            words.append(int(v) & 0xFFFFFFFF)
        return struct.pack(f"<{len(words)}I", *words)

    def write_registers(self, address, data):
        data = bytes(data)
        if len(data) % 4 or address % 4:
            raise MemoryFault(f"register write of {len(data)} bytes at 0x{address:x}: 32-bit words only")
        target, off = self._decode(address, len(data))
        for k, v in enumerate(struct.unpack(f"<{len(data) // 4}I", data)):
            if self.mmio_log is not None:
                self.mmio_log.append(("w", address + 4 * k, v))
            if target is None:
                with _SLCR_LOCK:
                    _SLCR[off + 4 * k] = v
            else:
                target.write(off + 4 * k, v)


def _bind_pynq3_clocks(device):
    """pynq 3.x picks its PS clock driver from the host CPU (os.uname), not
    from the device as pynq 4.0 does (Clocks.set_device), and reaches it
    through the active device; off a board it has none. Give it the Zynq-7000
    driver, whose MMIO then reaches this device's emulated SLCR."""
    ps = pynq.ps
    if hasattr(ps.Clocks, "set_device"):
        return  # pynq 4.0: Overlay binds the clocks to its device
    if pynq.Device.active_device is not device:
        raise OverlayError("pynq 3.x programs the PL clocks through the active device: make the "
                           "emulated board pynq.Device.active_device before loading an overlay")
    if device.arch != ps.ZYNQ_ARCH:
        raise OverlayError(f"with pynq {pynq.__version__} only a Zynq-7000 PS is emulated")
    ps.Clocks._real_instance = ps._ClocksZynq()


@contextlib.contextmanager
def activate(device):
    """Make `device` pynq.Device.active_device for the block (what
    pynq.allocate, pynq.Overlay and MMIO use when given no device), then
    restore the previous one."""
    had = "_active_device" in pynq.Device.__dict__
    previous = pynq.Device.__dict__.get("_active_device")
    pynq.Device.active_device = device
    try:
        yield device
    finally:
        if had:
            pynq.Device.active_device = previous
        else:
            try:
                delattr(pynq.Device, "_active_device")
            except AttributeError:
                pass


def overlay_dir_env(directory):
    """Context manager: CTRAIN_OVERLAY=directory for the block."""
    return _env("CTRAIN_OVERLAY", str(directory))


@contextlib.contextmanager
def _env(key, value):
    old = os.environ.get(key)
    os.environ[key] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old
