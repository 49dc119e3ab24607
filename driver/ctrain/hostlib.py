"""numpy-friendly wrappers over host_lib's C hot paths (ctrain._host)."""
import numpy as np

from ._host import ffi, lib


def _ptr(ctype, arr):
    return ffi.cast(ctype, ffi.from_buffer(arr))


def quantize(x, e, out=None):
    """int8 q = sat8(floor(x * 2^-e + 0.5)); returns (q, saturated count)."""
    x = np.ascontiguousarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float32)
    q = np.empty(x.shape, np.int8) if out is None else out
    if not (q.flags.c_contiguous and q.dtype == np.int8 and q.size == x.size):
        raise ValueError("quantize: out must be a contiguous int8 array of x's size")
    fn, ct = ((lib.ctrain_quantize_f32, "float *") if x.dtype == np.float32
              else (lib.ctrain_quantize_f64, "double *"))
    sat = fn(_ptr(ct, x), _ptr("int8_t *", q), x.size, int(e))
    return q, int(sat)


def dequantize(q, e):
    q = np.ascontiguousarray(q, dtype=np.int8)
    x = np.empty(q.shape, np.float32)
    lib.ctrain_dequantize(_ptr("int8_t *", q), _ptr("float *", x), q.size, int(e))
    return x


def to_master(x, e):
    """int32 master = sat32(floor(x * 2^-e + 0.5)); returns (m, saturated count)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    m = np.empty(x.shape, np.int32)
    sat = lib.ctrain_to_master(_ptr("float *", x), _ptr("int32_t *", m), x.size, int(e))
    return m, int(sat)


def from_master(m, e):
    m = np.ascontiguousarray(m, dtype=np.int32)
    x = np.empty(m.shape, np.float32)
    lib.ctrain_from_master(_ptr("int32_t *", m), _ptr("float *", x), m.size, int(e))
    return x


def index_bytes(rows, cols, nnz):
    return int(lib.ctrain_index_bytes(rows, cols, nnz))


def build_index(mask2d):
    """The sparse index block (docs/isa.md) of a [rows, cols] mask, as uint8,
    and its nnz. Built in C: it runs whenever a mask changes."""
    mask2d = np.ascontiguousarray(mask2d, dtype=np.uint8)
    rows, cols = mask2d.shape
    nnz = int(np.count_nonzero(mask2d))
    block = np.zeros(index_bytes(rows, cols, nnz), np.uint8)
    got = lib.ctrain_build_index(_ptr("uint8_t *", mask2d), rows, cols, _ptr("uint8_t *", block))
    if got < 0:
        raise ValueError(f"a {rows}x{cols} layer is too large for 16-bit sparse indices")
    return block, nnz


_LAYOUT = tuple(name for name, _ in ffi.typeof("ctrain_index_layout_t").fields)


def index_layout(rows, cols, nnz):
    """Byte offsets inside the index block (docs/isa.md "Sparse layers"):
    dict rowptr, col, tptr, tpos, trow, size -- ctrain_isa.h's
    ctrain_index_layout, the one definition C, HLS and testbench use."""
    lay = lib.ctrain_host_index_layout(int(rows), int(cols), int(nnz))
    return {name: int(getattr(lay, name)) for name in _LAYOUT}


def split_index(block, rows, cols, nnz):
    """Views (rowptr, col, tptr, tpos, trow) into an index block."""
    lay = index_layout(rows, cols, nnz)
    return (block[:lay["col"]].view("<u4"), block[lay["col"]:lay["col"] + 2 * nnz].view("<u2"),
            block[lay["tptr"]:lay["tpos"]].view("<u4"), block[lay["tpos"]:lay["trow"]].view("<u4"),
            block[lay["trow"]:lay["size"]].view("<u2"))
