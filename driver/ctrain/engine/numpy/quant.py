"""The statistics record store, as quant.cpp's: the 32-byte ctrain_stats_t
every instruction writes (docs/isa.md)."""
import struct

from ...isa import STATS_DTYPE

_U32 = 1 << 32
_STATS = struct.Struct("<qiIII8x")
assert _STATS.size == STATS_DTYPE.itemsize


def write_stats(ddr, addr, peak, exp, sat, nnz, count):
    """ctrain_stats_t (max_abs = peak); exp and the counters wrap to 32
    bits as C's casts would. `ddr` is the DDR image or a writable
    memoryview of it (packed in place)."""
    _STATS.pack_into(ddr if isinstance(ddr, memoryview) else ddr.data, addr, peak,
                     (exp + (1 << 31)) % _U32 - (1 << 31), sat % _U32, nnz % _U32, count % _U32)


# --------------------------------------------------------------------------
# Fast kernels: kernel(engine, plan, ddr, tab) computes, writes its results
# into ddr and returns (max_abs, exp, sat, nnz, count). `tab` is the table as
# a list of Python ints.
