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
    from ..._host import ffi, lib
    #: every kernel the engine calls (a _host built before any of them: the numpy forms)
    _NEEDED = ("ctrain_requant_f32", "ctrain_gemm_b8", "ctrain_gram_i8", "ctrain_im2col_i8", "ctrain_store_grads_f64",
               "ctrain_channel_sums_i8", "ctrain_to_batch_last_i8")
    AVAILABLE = all(hasattr(lib, n) for n in _NEEDED) and os.environ.get("CTRAIN_HOST_KERNELS", "1") != "0"
    #: the host float model's im2col/col2im/pool kernels (ctrain.floatnet; host_lib/ctrain_float.c)
    FLOAT_AVAILABLE = AVAILABLE and hasattr(lib, "ctrain_col2im_nchw_f32")
except ImportError:  # pragma: no cover - the package is always built with host_lib
    ffi = lib = None
    AVAILABLE = FLOAT_AVAILABLE = False

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


#: (the last DDR image, an int8_t pointer to its first byte): every run
#: addresses one window, so its pointer is made once, not per operand
_DDR = (None, None)


def _base(ddr):
    global _DDR
    last = _DDR
    if last[0] is not ddr:
        last = _DDR = (ddr, ffi.cast("int8_t *", ffi.from_buffer(ddr)))
    return last[1]


def i8p(ddr, addr):
    """An int8_t pointer to DDR byte addr."""
    return _base(ddr) + addr


def i32p(ddr, addr):
    return ffi.cast("int32_t *", _base(ddr) + addr)


#: Largest M*K (rows of the result times summed terms) for which
#: ctrain_gemm_f32 beats OpenBLAS here (measured on one core: LeNet-5,
#: ResNet-20's 16- and 32-channel layers; CNV's 64x576 goes to BLAS).
GEMM_MK = 32 * 288
#: Largest M*N of a weight gradient for which ctrain_gram_f32 beats BLAS.
GRAM_MN = 16 * 160


def gemm(a, b, out, use=True):
    """out = a @ b for float32 a [M, K] and b [..., K, N] (a batch of them, or
    one), in host_lib when `use` and the shape suits it (else numpy's BLAS);
    exact for int8 values when K <= 1024, as the engine's float32 GEMMs are.
    Returns out."""
    m, k = a.shape
    if not (use and a.dtype == out.dtype == np.float32 and b.dtype in (np.float32, np.int8) and m * k <= GEMM_MK
            and k <= 1024 and b.flags.c_contiguous and out.flags.c_contiguous and a.flags.c_contiguous):
        return np.matmul(a, b, out=out)
    n = b.shape[-1]
    batch = b.size // (k * n) if b.size else 0
    fn = lib.ctrain_gemm_f32 if b.dtype == np.float32 else lib.ctrain_gemm_b8
    fn(ptr(a), m, k, ptr(b), n, batch, k * n, m * n, ptr(out))
    return out


def int8_columns(m, k, use=True):
    """Whether a convolution with an [m, k] weight matrix keeps its im2col
    columns as int8 (a quarter of float32's bytes): when both its CONV_FP GEMM
    (gemm) and its CONV_WG gram take host_lib, which convert them exactly."""
    return use and AVAILABLE and m * k <= GEMM_MK and k <= 1024 and m * k <= GRAM_MN


def gram_ok(m, n, dtype, use=True):
    """Whether gram() takes host_lib for an [m, n] gradient."""
    return use and dtype in (np.float32, np.int8) and m * n <= GRAM_MN


def gram(a, b, out, col=0):
    """out[:, col:col + N] += sum over images of a[i] @ b[i].T for contiguous
    a [batch, M, T] (or [M, T]) and b [batch, N, T] (or [N, T]), both float32
    or both int8, exactly (float32 sums of at most 1024 terms added in
    float64); out a contiguous float64 [M, K] array."""
    a3 = a.reshape((-1,) + a.shape[-2:])
    b3 = b.reshape((-1,) + b.shape[-2:])
    m, t = a3.shape[1:]
    n = b3.shape[1]
    fn = lib.ctrain_gram_f32 if a3.dtype == np.float32 else lib.ctrain_gram_i8
    if a3.dtype != b3.dtype:
        raise ValueError("gram: both operands float32 or both int8")
    fn(ptr(a3), m, ptr(b3), n, t, a3.shape[0], m * t, n * t, t, t, ptr(out) + col, out.shape[1])
    return out
