"""host_lib's fused integer kernels (host_lib/ctrain_kernels.c) for the numpy
engine: requantisation, col2im, batch norm, residual add, max pool and the SGD
update, each one pass in C computing in int64 exactly what docs/numeric.md
specifies. numpy keeps the GEMMs (exact float BLAS, docs/numeric.md
"Exactness"); these replace the numpy passes around them.

AVAILABLE is False when the installed ctrain._host predates the kernels or
$CTRAIN_HOST_KERNELS is 0; the engine then runs its numpy forms (the same
results: tests/test_host_kernels.py runs both)."""
import os

import numpy as np

try:
    from .._host import ffi, lib
    AVAILABLE = hasattr(lib, "ctrain_requant_f32") and os.environ.get("CTRAIN_HOST_KERNELS", "1") != "0"
except ImportError:  # pragma: no cover - the package is always built with host_lib
    ffi = lib = None
    AVAILABLE = False

_CT = {np.dtype(np.int8): "int8_t *", np.dtype(np.float32): "float *", np.dtype(np.float64): "double *",
       np.dtype(np.int64): "int64_t *", np.dtype("<i4"): "int32_t *"}


def ptr(arr):
    """A C pointer to a C-contiguous array's first element (NULL for None)."""
    if arr is None:
        return ffi.NULL
    if not arr.flags.c_contiguous:
        raise ValueError("host kernel operand must be C-contiguous")
    return ffi.cast(_CT[arr.dtype], ffi.from_buffer(arr, require_writable=False))


def stats():
    """A fresh [peak, sat, nnz] accumulator."""
    return ffi.new("int64_t[3]")


def result(st):
    """(peak, sat, nnz) of an accumulator as Python ints."""
    return int(st[0]), int(st[1]), int(st[2])


def requant(acc, bias, mask, relu, s, shape4, dst, strides4):
    """ctrain_requant on acc (float32/float64, shape4 = (A, C, B, D) elements
    contiguous) into dst (a pointer) at strides4; returns (peak, sat, nnz)."""
    st = stats()
    fn = lib.ctrain_requant_f32 if acc.dtype == np.float32 else lib.ctrain_requant_f64
    fn(ptr(acc), ptr(bias), mask, int(relu), s, *shape4, dst, *strides4, st)
    return result(st)


def col2im_requant(cols, g, O, C, D, mask, s, dst, so, sc, sd):
    """ctrain_col2im_requant of CONV_EB's columns (geometry g) into dst."""
    st = stats()
    fn = lib.ctrain_col2im_requant_f32 if cols.dtype == np.float32 else lib.ctrain_col2im_requant_f64
    fn(ptr(cols), O, C, g.kh, g.kw, g.ho, g.wo, D, g.h, g.w, g.stride, g.pad, mask, s, dst, so, sc, sd, st)
    return result(st)


def i8p(ddr, addr):
    """An int8_t pointer to DDR byte addr."""
    return ffi.cast("int8_t *", ffi.from_buffer(ddr)) + addr


def i32p(ddr, addr):
    return ffi.cast("int32_t *", ffi.cast("int8_t *", ffi.from_buffer(ddr)) + addr)
