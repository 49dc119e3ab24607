"""What every unit of the numpy engine shares: typed views of operands in the
DDR image, the decoded instruction of the generic path, the float dtype that
keeps a sum of int8 products exact, and the statistics a kernel returns."""
import math

import numpy as np

from ...fixedpoint import FLOAT32_EXACT

#: Largest magnitude of an int8 x int8 product (2^7 * 2^7).
PRODUCT_BOUND = 1 << 14
#: Most int8 x int8 products whose sum is exact in float32 in any order.
F32_TERMS = FLOAT32_EXACT // PRODUCT_BOUND


def blas_dtype(terms):
    """float32 when a sum of `terms` int8 products (each at most 2^14 in magnitude)
    is exact in float32 whatever the order, else float64."""
    return np.float32 if terms <= F32_TERMS else np.float64


def i8(ddr, addr, shape):
    return ddr[addr:addr + math.prod(shape)].view(np.int8).reshape(shape)


def i32(ddr, addr, count):
    return ddr[addr:addr + 4 * count].view("<i4")


def combine(parts):
    """(max of peaks, sum of clamps, sum of nonzeros) of lanes' (peak, sat, nnz)."""
    return max(p[0] for p in parts), sum(p[1] for p in parts), sum(p[2] for p in parts)


def extent(a):
    """max |a| of an int array as a Python int (0 when empty)."""
    return max(int(a.max()), -int(a.min())) if a.size else 0


# --------------------------------------------------------------------------
# The generic (reference-style) path: an instruction as typed views, results
# returned as arrays and stored after the fact. Used for opcodes and cases
# without a fast kernel; new opcodes can start here. A generic handler takes
# an Insn and returns (writes, stats): writes a list of (address field, array).
# --------------------------------------------------------------------------

class Insn:
    """One decoded instruction with typed views of its operands in the DDR image."""

    def __init__(self, ddr, f, table):
        self.ddr, self.f, self.table = ddr, f, table

    def e(self, slot_field, offset=0):
        """Table entry at the slot the field names (plus offset), as a Python int."""
        return int(self.table[self.f[slot_field] + offset])

    def i8(self, field, shape):
        return i8(self.ddr, self.f[field], shape)

    def i32(self, field, count):
        return i32(self.ddr, self.f[field], count)

    def has(self, flag):
        return bool(self.f["flags"] & flag)

    def dims(self, *names):
        return tuple(self.f[name] for name in names)


def stats(peak, exp, sat, outputs):
    """(max_abs, exp, sat, nnz, count) with nnz and count over the stored outputs."""
    nnz = sum(int(np.count_nonzero(o)) for o in outputs)
    count = sum(o.size for o in outputs)
    return peak, exp, sat, nnz, count
