"""The accelerator's driver: arguments into registers, ap_start, wait for
ap_done with a timeout, decode faults. Board and emulation share it (cf.
pynq.lib.dma: a small class over an IP's registers)."""
import time

from .. import isa
from ..errors import DeviceFault, DeviceTimeout

R = isa.REG


class Accelerator:
    """ip: read(offset)/write(offset, value) on the AXI-lite registers; its
    `offsets` (ISA register name -> offset, what the board device read from the
    .hwh) place the registers, else ctrain_isa.h's map."""

    def __init__(self, ip, timeout=60.0):
        self.ip = ip
        self.timeout = float(timeout)
        self.reg = dict(getattr(ip, "offsets", None) or R)

    def configure(self, ddr_base, ddr_size, table, table_len):
        # every data port's m_axi offset the map has: one DDR window, the same base
        for lo, hi in isa.PORT_OFFSETS:
            if lo in self.reg:
                self.ip.write(self.reg[lo], ddr_base & 0xFFFFFFFF)
                self.ip.write(self.reg[hi], ddr_base >> 32)
        self.ip.write(self.reg["DDR_SIZE"], ddr_size)
        self.ip.write(self.reg["TABLE"], table)
        self.ip.write(self.reg["TABLE_LEN"], table_len)

    def run(self, prog, n_insn, program=None, first=0):
        """Run n_insn instructions from offset `prog`; `program` (the host's
        copy of the instruction array) and `first` (its index of the first
        instruction) only make error messages name the instruction."""
        self.ip.write(self.reg["PROG"], prog)
        self.ip.write(self.reg["N_INSN"], n_insn)
        self.ip.write(self.reg["CTRL"], isa.CTRL_AP_START)
        self.wait(n_insn, program, first)
        status = self.ip.read(self.reg["STATUS"])
        pc = self.ip.read(self.reg["PC"])
        if status != isa.Fault.NONE:
            addr = self.ip.read(self.reg["FAULT_ADDR"])
            raise fault_error(status, pc, addr, program, first)
        return pc

    def limit(self, n_insn):
        """Seconds a run of n_insn instructions may take: `timeout` on a board,
        where a whole program takes milliseconds and anything near a minute is a
        hang; `timeout` per instruction on an IP that says `timeout_per_insn`
        (the emulation, whose speed depends on the host's load: a sparse CNV
        segment at nice 19 on a busy laptop took over a minute, and a long run
        must not die of it; an emulated instruction stuck for a minute is still
        reported)."""
        per = getattr(self.ip, "timeout_per_insn", False)
        return self.timeout * max(int(n_insn), 1) if per else self.timeout

    def wait(self, n_insn, program=None, first=0):
        limit = self.limit(n_insn)
        deadline = time.monotonic() + limit
        wait_done = getattr(self.ip, "wait_done", None)  # emulated IP: block instead of polling
        # False: not finished within the limit (or, run on this thread, finished after it)
        late = wait_done is not None and not wait_done(limit)
        delay = 0.0
        while not (done := self.ip.read(self.reg["CTRL"]) & isa.CTRL_AP_DONE) and time.monotonic() <= deadline:
            time.sleep(delay)
            delay = min(delay * 2 or 2e-5, 1e-3)
        if done and not late:
            return
        pc = self.ip.read(self.reg["PC"])
        raise DeviceTimeout(f"accelerator did not finish {n_insn} instructions in {limit:g} s; "
                            f"it reached {describe_insn(pc, program, first)}")


def describe_insn(pc, program=None, first=0):
    """'instruction K (OP_NAME)' for the pc the accelerator reported."""
    text = f"instruction {first + pc}"
    if program is not None and 0 <= first + pc < len(program):
        text += f" ({isa.op_name(int(program[first + pc]['op']))})"
    return text


def fault_error(status, pc, addr, program=None, first=0):
    """The DeviceFault for STATUS/PC/FAULT_ADDR, naming the fault, the
    instruction, its opcode and the offending address (or table slot)."""
    what = "slot" if status == isa.Fault.SLOT else "address"
    shown = f"{addr}" if what == "slot" else f"0x{addr:x} (window offset)"
    op = None
    if program is not None and 0 <= first + pc < len(program):
        op = int(program[first + pc]["op"])
    return DeviceFault(f"accelerator fault {isa.fault_name(status)} at {describe_insn(pc, program, first)}, "
                       f"{what} {shown}", code=status, pc=first + pc, opcode=op, address=addr)
