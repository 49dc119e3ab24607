"""The ISA as Python sees it: read through cffi from overlay/include/ctrain_isa.h
(compiled into ctrain._host), never retyped here."""
import enum

import numpy as np

from ._host import ffi, lib

INSN_BYTES = lib.CTRAIN_INSN_BYTES
STATS_BYTES = lib.CTRAIN_STATS_BYTES
ALIGN = lib.CTRAIN_ALIGN

_NUMPY_OF_C = {
    "uint8_t": "u1", "int8_t": "i1", "uint16_t": "<u2", "int16_t": "<i2",
    "uint32_t": "<u4", "int32_t": "<i4", "uint64_t": "<u8", "int64_t": "<i8",
}


def _dtype_of(ctype_name):
    """A numpy structured dtype with the exact offsets cffi computed for the struct."""
    ctype = ffi.typeof(ctype_name)
    names, formats, offsets = [], [], []
    for name, field in ctype.fields:
        t = field.type
        if t.kind == "array":
            fmt = (_NUMPY_OF_C[t.item.cname], t.length)
        else:
            fmt = _NUMPY_OF_C[t.cname]
        names.append(name)
        formats.append(fmt)
        offsets.append(field.offset)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                     "itemsize": ffi.sizeof(ctype)})


def _enum(name, ctype_name, prefix):
    """The C enum with its prefix dropped: Op.CONV_FP is OP_CONV_FP."""
    items = ffi.typeof(ctype_name).relements
    return enum.IntEnum(name, {k[len(prefix):]: v for k, v in items.items()})


INSN_DTYPE = _dtype_of("ctrain_insn_t")
STATS_DTYPE = _dtype_of("ctrain_stats_t")
assert INSN_DTYPE.itemsize == INSN_BYTES and STATS_DTYPE.itemsize == STATS_BYTES

Op = _enum("Op", "enum ctrain_opcode", "OP_")
Flag = _enum("Flag", "enum ctrain_flag", "FLAG_")
Fault = _enum("Fault", "enum ctrain_fault", "FAULT_")


def op_name(op):
    """The C name of an opcode, or 'opcode N' for one the ISA does not define."""
    return f"OP_{Op(op).name}" if op in Op._value2member_map_ else f"opcode {op}"


def fault_name(code):
    return f"FAULT_{Fault(code).name}" if code in Fault._value2member_map_ else f"fault {code}"

#: Register offsets, by name without the REG_ prefix.
REG = {n[4:]: getattr(lib, n) for n in dir(lib) if n.startswith("REG_")}
#: The 64-bit offset register pair of each data port (m_axi bundle), low word
#: first: port 0 (gmem, argument ddr) always; port 1 (gmem1, ddr1) in a build
#: with CTRAIN_DDR_PORTS 2, whose .hwh then lists it. The driver writes the
#: DDR base into every pair the map has.
PORT_OFFSETS = (("DDR_LO", "DDR_HI"), ("DDR1_LO", "DDR1_HI"))
CTRL_AP_START = lib.CTRL_AP_START
CTRL_AP_DONE = lib.CTRL_AP_DONE
CTRL_AP_IDLE = lib.CTRL_AP_IDLE
CTRL_AP_READY = lib.CTRL_AP_READY

#: PE-array limits, by name without the CTRAIN_MAX_ prefix (KERNEL, STRIDE, ...).
LIMITS = {n[11:]: getattr(lib, n) for n in dir(lib) if n.startswith("CTRAIN_MAX_")}

PAR = {n[11:]: getattr(lib, n) for n in dir(lib) if n.startswith("CTRAIN_PAR_")}


def new_program(n):
    """A zeroed instruction array (opcode 0 is OP_INVALID, so unset entries fault)."""
    return np.zeros(n, dtype=INSN_DTYPE)

#: AVGPOOL_*: the window's reciprocal is R = round(2^AVG_SHIFT / (k_h*k_w)) (docs/numeric.md).
AVG_SHIFT = lib.CTRAIN_AVG_SHIFT


def avg_recip(window):
    """R of an average pool over `window` = k_h*k_w elements: 2^AVG_SHIFT / window
    rounded half up, in integers (the HLS divides once per instruction)."""
    return ((1 << AVG_SHIFT) + window // 2) // window
