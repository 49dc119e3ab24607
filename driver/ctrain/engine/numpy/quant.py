"""The statistics record store, as quant.cpp's: the 32-byte ctrain_stats_t
every instruction writes (docs/isa.md)."""
import struct

import numpy as np

from ...isa import STATS_DTYPE

_U32 = 1 << 32
_STATS = struct.Struct("<qiIII8x")
assert _STATS.size == STATS_DTYPE.itemsize


def write_stats(ddr, addr, peak, exp, sat, nnz, count):
    """ctrain_stats_t (max_abs = peak); exp and the counters wrap to 32
    bits as C's casts would."""
    raw = _STATS.pack(peak, (exp + (1 << 31)) % _U32 - (1 << 31), sat % _U32, nnz % _U32, count % _U32)
    ddr[addr:addr + _STATS.size] = np.frombuffer(raw, np.uint8)


# --------------------------------------------------------------------------
# Fast kernels: kernel(engine, plan, ddr, tab) computes, writes its results
# into ddr and returns (max_abs, exp, sat, nnz, count). `tab` is the table as
# a list of Python ints.
