"""The numpy engine: runs an instruction stream against a DDR image bit-exactly
as docs/numeric.md specifies, fast enough to train on.

Convolution sums go through float GEMMs only where they are provably exact
(docs/numeric.md "Exactness"): float32 when at most 2^10 products are summed
(each is at most 2^14 in magnitude, so every partial sum is an integer below
2^24). Longer sums (forward passes over more than 2^10 terms, weight
gradients over the whole batch) are split into float32 GEMMs of at most 2^10
terms each whose exact partial sums are added in float64; CONV_EB's GEMM sums
c_out terms, col2im adds the kernel offsets (in float64 in host_lib).

Two paths compute every fast kernel (NumpyEngine.paths counts which ran per
opcode): "host C", host_lib's fused kernels (engine/host_kernels.py: the
requantising stores, col2im, batch norm, residual add, max pool, the update,
batch-last im2col, and register-blocked GEMMs for small convolutions), and
"numpy", the same results from numpy passes and BLAS (`fixedpoint.requantize8`
for the stores, bit-identical to the int64 form), used where host_lib lacks
the kernels or NumpyEngine(host_kernels=False) asks for it. "generic" marks
the reference-style fallback of rare cases.

Each instruction is validated (ctrain.validate) and computed completely before
any of its results is written, so a fault leaves its outputs untouched;
operands a result overlaps are rejected by validation (FAULT_OVERLAP) except
the exact in-place cases, which are read element by element before they are
written, so results go straight into the DDR image.

Speed: an instruction's decoding, validation and geometry depend only on its
128 bytes, the window size and the table length, so they are cached per
(bytes, ddr size, table length) -- a changed word is a new entry, validated
afresh. Scratch buffers live in those entries and are reused across runs. The
im2col matrix CONV_FP builds is kept with a copy of the activation bytes it
came from; CONV_WG of the same layer reuses it when those bytes are unchanged.
"""
import collections
import math
import struct
import time

import numpy as np

from .. import conv_ops
from ..lanes import Lanes, set_blas_threads
from ..fixedpoint import (Q32_MAX, clamp_shift, max_abs, product_bound, requantize8, rshift_round,
                          rshift_round_inplace, sat8, sat32)
from ..isa import INSN_BYTES, INSN_DTYPE, PAR, STATS_DTYPE, Fault, Flag, Op
from ..validate import SPARSE_OPS, check, check_index, check_program, fields, terms_per_output
from . import RunResult, host_kernels as hk, numpy_eltwise, numpy_sparse

_U32 = 1 << 32
#: Most int8 x int8 products whose sum is exact in float32 in any order.
F32_TERMS = 1 << 10
#: Decoded instructions kept (a training program has tens; random tests many).
PLAN_CACHE = 1024
#: im2col matrices kept for reuse by CONV_WG (and as buffers across runs): at
#: most this many, of at most COLS_BYTES together -- enough for every
#: convolution of ResNet-20 at batch 64 (21 matrices, about 0.5 GiB), so none
#: is evicted between its CONV_FP and CONV_WG or rebuilt (zeroed) every run.
COLS_CACHE = 64
COLS_BYTES = 1 << 30
#: Output rows shorter than this use the batch-last layout (conv_ops.ConvGeometry).
BATCH_LAST_BELOW = 16
#: Accumulator elements per tile of images (2 MiB of float32).
TILE_ELEMS = 1 << 19
#: Column elements per tile of images of CONV_EB with host_lib's col2im (1 MiB of float32).
EB_TILE_ELEMS = 1 << 18
#: Work (multiply-adds or element operations) below which an instruction runs in one lane.
PAR_WORK = 1 << 18


def blas_dtype(terms):
    """float32 when a sum of `terms` int8 products (each at most 2^14 in magnitude)
    is exact in float32 whatever the order, else float64."""
    return np.float32 if terms <= F32_TERMS else np.float64


# --------------------------------------------------------------------------
# The generic (reference-style) path: an instruction as typed views, results
# returned as arrays and stored after the fact. Used for opcodes and cases
# without a fast kernel; new opcodes can start here.
# --------------------------------------------------------------------------

class _Insn:
    """One decoded instruction with typed views of its operands in the DDR image."""

    def __init__(self, ddr, f, table):
        self.ddr, self.f, self.table = ddr, f, table

    def e(self, slot_field, offset=0):
        """Table entry at the slot the field names (plus offset), as a Python int."""
        return int(self.table[self.f[slot_field] + offset])

    def i8(self, field, shape):
        addr = self.f[field]
        return self.ddr[addr:addr + math.prod(shape)].view(np.int8).reshape(shape)

    def i32(self, field, count):
        addr = self.f[field]
        return self.ddr[addr:addr + 4 * count].view("<i4")

    def has(self, flag):
        return bool(self.f["flags"] & flag)

    def dims(self, *names):
        return tuple(self.f[name] for name in names)


def _stats(peak, exp, sat, outputs):
    """(max_abs, exp, sat, nnz, count) with nnz and count over the stored outputs."""
    nnz = sum(int(np.count_nonzero(o)) for o in outputs)
    count = sum(o.size for o in outputs)
    return peak, exp, sat, nnz, count


def _relu_fp(ins):
    out = np.maximum(ins.i8("src", (ins.f["count"],)), 0)
    return [("dst", out)], _stats(max_abs(out), ins.e("e_src"), 0, [out])


def _relu_bp(ins):
    count = ins.f["count"]
    out = ins.i8("src", (count,)) * (ins.i8("aux", (count,)) > 0)
    return [("dst", out)], _stats(max_abs(out), ins.e("e_src"), 0, [out])


def _pool_bp(ins):
    n, c, h, w, ho, wo, kh, kw, s = ins.dims("n", "c_in", "h_in", "w_in", "h_out", "w_out",
                                             "k_h", "k_w", "stride")
    err = ins.i8("src", (n, c, ho, wo)).astype(np.int32)
    dx = conv_ops.maxpool2d_grad(err, ins.i8("aux", (n, c, h, w)), (kh, kw), s,
                                 relu_mask=ins.has(Flag.RELU_MASK))
    out, sat = sat8(dx)
    return [("dst", out)], _stats(max_abs(out), ins.e("e_src"), sat, [out])


_EXECUTE = {Op.RELU_FP: _relu_fp, Op.RELU_BP: _relu_bp, Op.POOL_BP: _pool_bp,
            **numpy_sparse.EXECUTE,    # SCONV_*, BN_*
            **numpy_eltwise.EXECUTE}   # ADD, AVGPOOL_*


def stats_record(peak, exp, sat, nnz, count):
    """The 32-byte ctrain_stats_t (max_abs = peak); exp and the counters wrap to
    32 bits as C's casts would."""
    rec = np.zeros(1, STATS_DTYPE)
    rec["max_abs"] = peak
    rec["exp"] = (exp + (1 << 31)) % _U32 - (1 << 31)
    rec["sat"], rec["nnz"], rec["count"] = sat % _U32, nnz % _U32, count % _U32
    return rec.view(np.uint8)


def _store(ddr, addr, arr):
    ddr[addr:addr + arr.nbytes] = np.ascontiguousarray(arr).view(np.uint8).reshape(-1)


_STATS = struct.Struct("<qiIII8x")
assert _STATS.size == STATS_DTYPE.itemsize


def _write_stats(ddr, addr, peak, exp, sat, nnz, count):
    """stats_record, packed directly."""
    raw = _STATS.pack(peak, (exp + (1 << 31)) % _U32 - (1 << 31), sat % _U32, nnz % _U32, count % _U32)
    ddr[addr:addr + _STATS.size] = np.frombuffer(raw, np.uint8)


# --------------------------------------------------------------------------
# Fast kernels: kernel(engine, plan, ddr, tab) computes, writes its results
# into ddr and returns (max_abs, exp, sat, nnz, count). `tab` is the table as
# a list of Python ints.
# --------------------------------------------------------------------------

def _i8(ddr, addr, shape):
    return ddr[addr:addr + math.prod(shape)].view(np.int8).reshape(shape)


def _i32(ddr, addr, count):
    return ddr[addr:addr + 4 * count].view("<i4")


class _Plan:
    """An instruction decoded once: fields, validation result, geometry, scratch."""

    __slots__ = ("f", "fault", "addr", "op", "kernel", "legacy", "geom", "scratch", "path")

    def __init__(self, raw, ddr_size, table_len):
        self.f = f = fields(np.frombuffer(raw, INSN_DTYPE)[0])
        self.fault, self.addr = check(f, ddr_size, table_len)
        self.op = f["op"]
        self.kernel = _KERNELS.get(self.op)
        self.legacy = _EXECUTE.get(self.op)
        self.geom = None
        self.scratch = {}
        self.path = "numpy"
        if self.fault == Fault.NONE and self.op in _FC_KERNELS and f["h_in"] == f["w_in"] == f["k_h"] == f["k_w"] == 1:
            self.kernel = _FC_KERNELS[self.op]  # validation makes h_out = w_out = 1, pad = 0
        elif self.fault == Fault.NONE and self.op in (Op.CONV_FP, Op.CONV_EB, Op.CONV_WG):
            self.geom = conv_ops.ConvGeometry(f["n"], f["c_in"], f["h_in"], f["w_in"],
                                              f["k_h"], f["k_w"], f["stride"], f["pad"],
                                              batch_last=f["w_out"] < BATCH_LAST_BELOW)

    def uses_c(self, engine):
        """Whether this run takes host_lib's kernels (recorded as the plan's path)."""
        self.path = "host C" if engine.host_kernels else "numpy"
        return engine.host_kernels

    def buf(self, name, shape, dtype):
        """A scratch array kept across runs."""
        a = self.scratch.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self.scratch[name] = np.empty(shape, dtype)
        return a


class _Columns:
    __slots__ = ("cols", "image", "snapshot", "valid")


def _weights(plan, ddr, dtype, transpose=False):
    """The int8 weights [c_out, c_in*kh*kw] as `dtype` (transposed: [c_in*kh*kw, c_out])."""
    f = plan.f
    g = plan.geom
    w8 = _i8(ddr, f["src2"], (f["c_out"], g.k))
    if transpose:
        w8 = w8.T
    w = plan.buf("w", w8.shape, dtype)
    np.copyto(w, w8)
    return w


def _err_rows(plan, ddr, dtype):
    """The output error [N, Co, Ho, Wo] in the geometry's layout as GEMM
    operand(s) in `dtype`: [N, Co, Ho*Wo] (image-major) or [Co, Ho*Wo*N]."""
    f, g = plan.f, plan.geom
    co = f["c_out"]
    e = plan.buf("err", g.image_shape(co, g.ho, g.wo), dtype)
    g.to_layout(_i8(ddr, f["src"], (g.n, co, g.ho, g.wo)), e)
    return e.reshape(co, -1) if g.batch_last else e.reshape(g.n, co, -1)


def _store_i8(ddr, addr, q, g, chw):
    """Store q (a tensor [N, *chw] in the geometry's layout, any shape of it:
    requantize8's result, converted as a C cast) as int8 NCHW at addr;
    returns its nonzero count."""
    dst = _i8(ddr, addr, (g.n,) + chw)
    np.copyto(dst, g.nchw(q.reshape(g.image_shape(*chw))), casting="unsafe")
    return int(np.count_nonzero(dst))


def _gemm_exact(w, b, out32, out64, ck):
    """w [M, K] @ b [..., K, N] exactly for float32 operands holding int8
    values: one float32 GEMM when K <= F32_TERMS (returns out32), else float32
    GEMMs over spans of at most F32_TERMS terms (each exact) whose results are
    added in out64 (exact below 2^53; returns out64). Twice float64 BLAS's speed."""
    k = w.shape[1]
    if k <= F32_TERMS:
        return hk.gemm(w, b, out32, ck)
    parts = -(-k // F32_TERMS)
    for j in range(parts):
        k0, k1 = k * j // parts, k * (j + 1) // parts
        np.matmul(w[:, k0:k1], b[..., k0:k1, :], out=out32)
        if j:
            out64 += out32
        else:
            np.copyto(out64, out32)
    return out64


def _conv_fp(engine, plan, ddr, tab):
    f, g = plan.f, plan.geom
    co = f["c_out"]
    dt = np.float32  # columns hold int8 values; sums over more than F32_TERMS go by spans
    acc_dt = blas_dtype(g.k)
    cols = engine.columns(ddr, f["src"], g, dt)
    w = _weights(plan, ddr, dt)
    e_acc = tab[f["e_src"]] + tab[f["e_src2"]]
    s, relu = tab[f["e_dst"]] - e_acc, bool(f["flags"] & Flag.RELU)
    bias = None
    if f["flags"] & Flag.BIAS:
        bias = rshift_round(_i32(ddr, f["src3"], co), e_acc - tab[f["e_src3"]])
    dst = _i8(ddr, f["dst"], (g.n, co, g.ho, g.wo))
    work = g.n * co * g.p * g.k
    ck = plan.uses_c(engine)
    if ck:
        sc, base = clamp_shift(s), hk.i8p(ddr, f["dst"])
    if g.batch_last:  # [Co, Ho*Wo*N]: lanes over output channels (rows of the GEMM)
        acc = plan.buf("acc", (co, cols.shape[1]), acc_dt)

        def lane(k, a, b):
            t = _gemm_exact(w[a:b], cols, plan.buf(f"t{k}", (b - a, cols.shape[1]), dt) if acc_dt != dt
                            else acc[a:b], acc[a:b], ck)
            if ck:  # [b-a][P][N] into dst[n, a + c, p]
                return hk.requant(t, None if bias is None else bias[a:b], hk.ffi.NULL, relu, sc,
                                  (1, b - a, g.p, g.n), base + a * g.p, (0, g.p, 1, co * g.p))
            q, peak, sat = requantize8(t, s, None if bias is None else bias[a:b], relu, 0)
            out = dst[:, a:b]
            np.copyto(out, q.reshape(b - a, g.ho, g.wo, g.n).transpose(3, 0, 1, 2), casting="unsafe")
            return peak, sat, int(np.count_nonzero(out))
        parts = engine.lanes(lane, co, work)
    else:
        # image-major: [N, Co, Ho*Wo] is NCHW; lanes over images, and within a
        # lane GEMM, store and statistics per tile of images, so the tile stays
        # in cache (requantize8 is elementwise, its statistics combine: max of
        # peaks, sum of clamps)
        dst3 = dst.reshape(g.n, co, g.p)
        step = max(1, TILE_ELEMS // (co * g.p))

        def lane(k, a, b):
            acc = plan.buf(f"acc{k}", (min(step, b - a), co, g.p), acc_dt)
            tmp = plan.buf(f"t{k}", acc.shape, dt) if acc_dt != dt else acc
            peak = sat = nnz = 0
            for t in range(a, b, step):
                u = min(t + step, b)
                r = _gemm_exact(w, cols[t:u], tmp[:u - t], acc[:u - t], ck)
                if ck:
                    p_t, s_t, n_t = hk.requant(r, bias, hk.ffi.NULL, relu, sc, (u - t, co, g.p, 1),
                                               base + t * co * g.p, (co * g.p, g.p, 1, 0))
                    peak, sat, nnz = max(peak, p_t), sat + s_t, nnz + n_t
                    continue
                q, p_t, s_t = requantize8(r, s, bias, relu, 1)
                np.copyto(dst3[t:u], q, casting="unsafe")
                peak, sat = max(peak, p_t), sat + s_t
            return peak, sat, nnz if ck else int(np.count_nonzero(dst3[a:b]))
        parts = engine.lanes(lane, g.n, work)
    peak, sat, nnz = _combine(parts)
    return peak, e_acc, sat, nnz, dst.size


def _combine(parts):
    """(max of peaks, sum of clamps, sum of nonzeros) of lanes' (peak, sat, nnz)."""
    return max(p[0] for p in parts), sum(p[1] for p in parts), sum(p[2] for p in parts)


def _conv_eb(engine, plan, ddr, tab):
    f, g = plan.f, plan.geom
    co = f["c_out"]
    # each column entry sums c_out products; host_lib's col2im adds them in
    # float64, so float32 GEMMs suffice up to F32_TERMS output channels
    dt = np.float32 if engine.host_kernels and co <= F32_TERMS else blas_dtype(terms_per_output(f))
    wt = _weights(plan, ddr, dt, transpose=True)
    shape = g.image_shape(g.c, g.h, g.w)
    whole = g.batch_last or not engine.host_kernels  # else per-lane tiles
    cols = plan.buf("cols", g.cols_shape, dt) if whole else None
    acc = plan.buf("acc", shape, dt) if not engine.host_kernels else None
    err8 = _i8(ddr, f["src"], (g.n, co, g.ho, g.wo))
    aux = _i8(ddr, f["aux"], (g.n, g.c, g.h, g.w)) if f["flags"] & Flag.RELU_MASK else None
    dst = _i8(ddr, f["dst"], (g.n, g.c, g.h, g.w))
    e_acc = tab[f["e_src"]] + tab[f["e_src2"]]
    shift = tab[f["e_dst"]] - e_acc
    work = g.n * co * g.p * g.k
    ck = plan.uses_c(engine)
    if ck:
        sc, base = clamp_shift(shift), hk.i8p(ddr, f["dst"])
        mbase = hk.i8p(ddr, f["aux"]) if aux is not None else None
        chw = g.c * g.h * g.w
    if g.batch_last:  # lanes over input channels: their rows of W^T and of the columns
        err = _err_rows(plan, ddr, dt)  # [Co, Ho*Wo*N]
        kk = g.kh * g.kw

        def lane(_, a, b):
            c = hk.gemm(wt[a * kk:b * kk], err, cols.reshape(g.k, -1)[a * kk:b * kk], ck)
            if ck:  # columns [b-a][kh][kw][Ho][Wo][N] into dst[n, a + c, h, w]
                off = a * g.h * g.w
                return hk.col2im_requant(c, g, 1, b - a, g.n, hk.ffi.NULL if mbase is None else mbase + off,
                                         sc, base + off, 0, g.h * g.w, chw)
            x = g.col2im(c.reshape((b - a,) + g.cols_shape[1:]), acc[a:b])
            if aux is not None:
                np.copyto(x, 0, where=aux[:, a:b].transpose(1, 2, 3, 0) <= 0)
            q, peak, sat = requantize8(x.reshape(b - a, -1), shift)
            out = dst[:, a:b]
            np.copyto(out, q.reshape(b - a, g.h, g.w, g.n).transpose(3, 0, 1, 2), casting="unsafe")
            return peak, sat, int(np.count_nonzero(out))
        parts = engine.lanes(lane, g.c, work)
    else:  # lanes over images
        err = plan.buf("err", (g.n, co, g.p), dt)

        step = max(1, EB_TILE_ELEMS // (g.k * g.p))

        def lane(k, a, b):
            e = err[a:b]
            np.copyto(e, err8[a:b].reshape(b - a, co, g.p))
            if ck:  # per tile of images (its columns stay in cache): [u-t][C][kh][kw][Ho][Wo] into dst[t:u]
                tile = plan.buf(f"cols{k}", (min(step, b - a), g.k, g.p), dt)
                peak = sat = nnz = 0
                for t in range(a, b, step):
                    u = min(t + step, b)
                    c = hk.gemm(wt, err[t:u], tile[:u - t], ck)
                    off = t * chw
                    p_t, s_t, n_t = hk.col2im_requant(c, g, u - t, g.c, 1,
                                                      hk.ffi.NULL if mbase is None else mbase + off,
                                                      sc, base + off, chw, g.h * g.w, 0)
                    peak, sat, nnz = max(peak, p_t), sat + s_t, nnz + n_t
                return peak, sat, nnz
            c = hk.gemm(wt, e, cols.reshape(g.gemm_shape)[a:b], ck)
            x = g.col2im(c.reshape((b - a,) + g.cols_shape[1:]), acc[a:b])
            if aux is not None:
                np.copyto(x, 0, where=aux[a:b] <= 0)
            q, peak, sat = requantize8(x.reshape(b - a, -1), shift)
            out = dst[a:b]
            np.copyto(out, q.reshape(out.shape), casting="unsafe")
            return peak, sat, int(np.count_nonzero(out))
        parts = engine.lanes(lane, g.n, work)
    peak, sat, nnz = _combine(parts)
    return peak, e_acc, sat, nnz, dst.size


def _exact_gram(a, b, out64):
    """out64 = a @ b.T exactly, for a [M, T], b [K, T] float32 holding int8
    values: float32 GEMMs over chunks of at most F32_TERMS terms (each exact),
    their partial sums added in float64 (exact below 2^53). The operand with
    more rows goes first (OpenBLAS is up to twice as fast that way round)."""
    if a.shape[0] > b.shape[0]:
        return _gram_chunks(a, b, out64)
    return _gram_chunks(b, a, out64.T).T


def _gram_chunks(a, b, out64):
    t = a.shape[1]
    if t <= F32_TERMS:
        out64[...] = a @ b.T
        return out64
    full = t // F32_TERMS
    main = full * F32_TERMS
    pa = a[:, :main].reshape(a.shape[0], full, F32_TERMS).transpose(1, 0, 2)
    pb = b[:, :main].reshape(b.shape[0], full, F32_TERMS).transpose(1, 2, 0)
    np.sum(np.matmul(pa, pb), axis=0, dtype=np.float64, out=out64)
    if main < t:
        out64 += a[:, main:] @ b[:, main:].T
    return out64


def _exact_gram_images(err, cols, out64):
    """out64 = sum over images n of err[n] @ cols[n].T exactly, for err
    [N, Co, P], cols [N, K, P] float32 holding int8 values: per image and per
    span of at most F32_TERMS positions one float32 GEMM (exact), the partial
    sums added in float64."""
    out64[...] = 0
    for a in range(0, err.shape[2], F32_TERMS):
        part = np.matmul(err[:, :, a:a + F32_TERMS], cols[:, :, a:a + F32_TERMS].transpose(0, 2, 1))
        out64 += part.sum(axis=0, dtype=np.float64)
    return out64


def _conv_wg(engine, plan, ddr, tab):
    f, g = plan.f, plan.geom
    co = f["c_out"]
    dt = np.float32  # the dtype CONV_FP's columns have (sums go by exact spans)
    cols = engine.columns(ddr, f["src2"], g, dt)
    gw = plan.buf("gw", (co, g.k), np.float64)
    work = g.n * co * g.p * g.k
    ck = hk.gram_ok(co, g.k, dt, plan.uses_c(engine))
    plan.path = "host C" if ck else "numpy"
    if g.batch_last:  # [Co, T] x [K, T]: lanes over the K rows of gw's columns
        err = _err_rows(plan, ddr, dt)

        def lane(_, a, b):
            if ck:
                gw[:, a:b] = 0
                hk.gram(err, cols[a:b], gw, a)
            else:
                _exact_gram(err, cols[a:b], gw[:, a:b])
        engine.lanes(lane, g.k, work)
        return _store_grads(ddr, f, tab, gw, lambda: _row_sums(err))
    # image-major: lanes over images, each an exact float64 partial sum (an
    # integer below 2^47); adding the partial sums is exact
    err = plan.buf("err", (g.n, co, g.p), dt)
    err8 = _i8(ddr, f["src"], (g.n, co, g.p))

    def lane(k, a, b):
        e = err[a:b]
        np.copyto(e, err8[a:b])
        out = gw if k == 0 else plan.buf(f"gw{k}", (co, g.k), np.float64)
        if ck:
            out[...] = 0
            hk.gram(e, cols[a:b], out)
        else:
            _exact_gram_images(e, cols[a:b], out)
        return out
    parts = engine.lanes(lane, g.n, work)
    for part in parts[1:]:
        gw += part
    return _store_grads(ddr, f, tab, gw, lambda: _row_sums(err).sum(axis=0))


#: Most int8 values (each at most 2^7 in magnitude) a float32 sum adds exactly.
_F32_SUM_TERMS = 1 << 17


def _row_sums(e):
    """Exact float64 sums over the last axis of a float array of int8 values
    (a matrix-vector product: float32 when every partial sum is below 2^24)."""
    t = e.shape[-1]
    if e.dtype == np.float32 and t <= _F32_SUM_TERMS:
        return np.matmul(e, np.ones(t, np.float32)).astype(np.float64)
    return e.sum(axis=-1, dtype=np.float64)


def _store_grads(ddr, f, tab, gw, err_sums):
    """CONV_WG's stores from the exact sums gw [Co, K] (float64); err_sums()
    gives the bias sums (per output channel, float64: exact below 2^53)."""
    co = gw.shape[0]
    e_dst = tab[f["e_dst"]]
    v_w = rshift_round(gw.astype(np.int64), e_dst - (tab[f["e_src"]] + tab[f["e_src2"]]))
    dw, sat = sat32(v_w)
    peak, nnz, count = max_abs(v_w), int(np.count_nonzero(dw)), dw.size
    _i32(ddr, f["dst"], dw.size)[...] = dw.reshape(-1)
    if f["flags"] & Flag.BIAS:
        gb = err_sums().astype(np.int64)
        v_b = rshift_round(gb, e_dst - tab[f["e_src"]])
        db, sat_b = sat32(v_b)
        _i32(ddr, f["dst2"], co)[...] = db
        peak, sat = max(peak, max_abs(v_b)), sat + sat_b
        nnz, count = nnz + int(np.count_nonzero(db)), count + co
    return peak, e_dst, sat, nnz, count


# Fully connected layers (1x1 kernel on a 1x1 map): plain GEMMs on [N, C]
# matrices, no layout changes.

def _fc_fp(engine, plan, ddr, tab):
    f = plan.f
    n, ci, co = f["n"], f["c_in"], f["c_out"]
    dt = blas_dtype(ci)
    x = plan.buf("x", (n, ci), dt)
    np.copyto(x, _i8(ddr, f["src"], (n, ci)))
    w = plan.buf("w", (co, ci), dt)
    np.copyto(w, _i8(ddr, f["src2"], (co, ci)))
    acc = np.matmul(x, w.T, out=plan.buf("acc", (n, co), dt))
    e_acc = tab[f["e_src"]] + tab[f["e_src2"]]
    bias = None
    if f["flags"] & Flag.BIAS:
        bias = rshift_round(_i32(ddr, f["src3"], co), e_acc - tab[f["e_src3"]])
    if plan.uses_c(engine):
        peak, sat, nnz = hk.requant(acc, bias, hk.ffi.NULL, bool(f["flags"] & Flag.RELU),
                                    clamp_shift(tab[f["e_dst"]] - e_acc), (n, co, 1, 1),
                                    hk.i8p(ddr, f["dst"]), (co, 1, 0, 0))
        return peak, e_acc, sat, nnz, n * co
    q, peak, sat = requantize8(acc, tab[f["e_dst"]] - e_acc, bias, bool(f["flags"] & Flag.RELU), axis=1)
    dst = _i8(ddr, f["dst"], (n, co))
    np.copyto(dst, q, casting="unsafe")
    return peak, e_acc, sat, int(np.count_nonzero(dst)), dst.size


def _fc_eb(engine, plan, ddr, tab):
    f = plan.f
    n, ci, co = f["n"], f["c_in"], f["c_out"]
    dt = blas_dtype(co)
    e = plan.buf("e", (n, co), dt)
    np.copyto(e, _i8(ddr, f["src"], (n, co)))
    w = plan.buf("w", (co, ci), dt)
    np.copyto(w, _i8(ddr, f["src2"], (co, ci)))
    acc = np.matmul(e, w, out=plan.buf("acc", (n, ci), dt))
    if plan.uses_c(engine):
        e_acc = tab[f["e_src"]] + tab[f["e_src2"]]
        mask = hk.i8p(ddr, f["aux"]) if f["flags"] & Flag.RELU_MASK else hk.ffi.NULL
        peak, sat, nnz = hk.requant(acc, None, mask, False, clamp_shift(tab[f["e_dst"]] - e_acc),
                                    (n, ci, 1, 1), hk.i8p(ddr, f["dst"]), (ci, 1, 0, 0))
        return peak, e_acc, sat, nnz, n * ci
    if f["flags"] & Flag.RELU_MASK:
        np.copyto(acc, 0, where=_i8(ddr, f["aux"], (n, ci)) <= 0)
    e_acc = tab[f["e_src"]] + tab[f["e_src2"]]
    q, peak, sat = requantize8(acc, tab[f["e_dst"]] - e_acc)
    dst = _i8(ddr, f["dst"], (n, ci))
    np.copyto(dst, q, casting="unsafe")
    return peak, e_acc, sat, int(np.count_nonzero(dst)), dst.size


def _fc_wg(engine, plan, ddr, tab):
    f = plan.f
    n, ci, co = f["n"], f["c_in"], f["c_out"]
    e = plan.buf("e", (n, co), np.float32)
    np.copyto(e, _i8(ddr, f["src"], (n, co)))
    x = plan.buf("x", (n, ci), np.float32)
    np.copyto(x, _i8(ddr, f["src2"], (n, ci)))
    gw = plan.buf("gw", (co, ci), np.float64)
    if n <= F32_TERMS:
        gw[...] = e.T @ x  # exact: at most 2^10 terms
    else:
        _exact_gram(np.ascontiguousarray(e.T), np.ascontiguousarray(x.T), gw)
    return _store_grads(ddr, f, tab, gw, lambda: _row_sums(e.T))


def _extent(a):
    """max |a| of an int array as a Python int (0 when empty)."""
    return max(int(a.max()), -int(a.min())) if a.size else 0


def _clip32(x, needed):
    """sat32 without the count (UPDATE counts only its int8 store), skipped when
    bounds prove it cannot clamp."""
    if needed:
        np.clip(x, -Q32_MAX, Q32_MAX, out=x)
    return x


def _update(engine, plan, ddr, tab):
    """docs/numeric.md UPDATE in int64, in place, one pass per step. Clamps that
    bounds from the inputs' extremes prove to be no-ops are skipped."""
    f = plan.f
    count, count_w = f["count"], f["count_w"]
    p = f["e_par"]
    lr_m, lr_s, mu_m, mu_s, wd_m, wd_s = (tab[p + PAR[k]] for k in
                                          ("LR_M", "LR_S", "MU_M", "MU_S", "WD_M", "WD_S"))
    e_g, e_m, e_q = tab[f["e_src"]], tab[f["e_src2"]], tab[f["e_dst"]]
    if plan.uses_c(engine):  # lanes over elements
        args = [hk.i32p(ddr, f["src"]), hk.i32p(ddr, f["src2"]), hk.i32p(ddr, f["src3"]),
                hk.i8p(ddr, f["aux"]), hk.i8p(ddr, f["dst"])]
        consts = (count_w, lr_m, clamp_shift(lr_s + e_m - e_g), clamp_shift(lr_s), mu_m, clamp_shift(mu_s),
                  wd_m, clamp_shift(wd_s), clamp_shift(e_q - e_m))

        def lane(_, a, b):
            st = hk.stats()
            hk.lib.ctrain_update(*args, a, b, *consts, st)
            return hk.result(st)
        peak, sat, nnz = _combine(engine.lanes(lane, count, count * 16))
        return peak, e_m, sat, nnz, count_w
    g32 = _i32(ddr, f["src"], count)
    w32 = _i32(ddr, f["src2"], count)
    v32 = _i32(ddr, f["src3"], count)
    s_g = lr_s + e_m - e_g
    b_g = product_bound(_extent(g32), lr_m, s_g)
    vel = np.multiply(g32, lr_m, dtype=np.int64)  # products below 2^62: exact
    _clip32(rshift_round_inplace(vel, s_g), b_g > Q32_MAX)  # t_g
    w_ext = _extent(w32)
    b_wd = 0
    if wd_m:  # with wd_m = 0 the decay term is exactly 0
        b_d = product_bound(w_ext, wd_m, wd_s)
        d = np.multiply(w32, wd_m, dtype=np.int64)
        _clip32(rshift_round_inplace(d, wd_s), b_d > Q32_MAX)
        b_wd = product_bound(min(b_d, Q32_MAX), lr_m, lr_s)
        d *= lr_m
        vel += _clip32(rshift_round_inplace(d, lr_s), b_wd > Q32_MAX)  # t_wd
    b_mu = product_bound(_extent(v32), mu_m, mu_s)
    mom = np.multiply(v32, mu_m, dtype=np.int64)
    vel += _clip32(rshift_round_inplace(mom, mu_s), b_mu > Q32_MAX)  # t_mu
    b_v = sum(min(b, Q32_MAX) for b in (b_g, b_wd, b_mu))
    _clip32(vel, b_v > Q32_MAX)  # v'
    w_new = np.subtract(w32, vel, dtype=np.int64)
    _clip32(w_new, w_ext + min(b_v, Q32_MAX) > Q32_MAX)  # w'
    pruned = _i8(ddr, f["aux"], (count_w,)) == 0
    if pruned.any():
        w_new[:count_w][pruned] = 0
        vel[:count_w][pruned] = 0
    ww = w_new[:count_w]
    peak = _extent(ww)
    q, sat = sat8(rshift_round(ww, e_q - e_m))
    w32[...] = w_new
    v32[...] = vel
    dst = _i8(ddr, f["dst"], (count_w,))
    dst[...] = q
    return peak, e_m, sat, int(np.count_nonzero(dst)), count_w


def _pool_fp_fast(engine, plan, ddr, tab):
    f = plan.f
    n, c, h, w, ho, wo = (f[k] for k in ("n", "c_in", "h_in", "w_in", "h_out", "w_out"))
    x = _i8(ddr, f["src"], (n, c, h, w))
    y = _i8(ddr, f["dst"], (n, c, ho, wo))
    if plan.uses_c(engine):
        xp, yp = hk.i8p(ddr, f["src"]), hk.i8p(ddr, f["dst"])

        def lane(_, a, b):  # lanes over images
            st = hk.stats()
            hk.lib.ctrain_maxpool(xp + a * c * h * w, (b - a) * c, h, w, f["k_h"], f["k_w"], f["stride"],
                                  ho, wo, yp + a * c * ho * wo, st)
            return hk.result(st)
        peak, _, nnz = _combine(engine.lanes(lane, n, y.size * f["k_h"] * f["k_w"]))
        return peak, tab[f["e_src"]], 0, nnz, y.size

    def lane(_, a, b):  # lanes over images
        out = conv_ops.maxpool2d(x[a:b], (f["k_h"], f["k_w"]), f["stride"], out=y[a:b])
        return max_abs(out), 0, int(np.count_nonzero(out))
    peak, _, nnz = _combine(engine.lanes(lane, n, y.size * f["k_h"] * f["k_w"]))
    return peak, tab[f["e_src"]], 0, nnz, y.size


def _pool_bp_fast(engine, plan, ddr, tab):
    """Disjoint windows (stride >= kernel): each input position receives at most
    one error, so nothing sums; every window routes its error exactly once."""
    f = plan.f
    n, c, h, w, ho, wo, kh, kw, s = (f[k] for k in ("n", "c_in", "h_in", "w_in", "h_out", "w_out",
                                                    "k_h", "k_w", "stride"))
    if s >= kh and s >= kw and plan.uses_c(engine):
        ep, xp, dp = hk.i8p(ddr, f["src"]), hk.i8p(ddr, f["aux"]), hk.i8p(ddr, f["dst"])
        relu_mask = int(bool(f["flags"] & Flag.RELU_MASK))

        def lane(_, a, b):  # lanes over images
            st = hk.stats()
            hk.lib.ctrain_maxpool_bp(ep + a * c * ho * wo, xp + a * c * h * w, (b - a) * c, h, w, kh, kw, s,
                                     ho, wo, relu_mask, dp + a * c * h * w, st)
            return hk.result(st)
        peak, sat, nnz = _combine(engine.lanes(lane, n, n * c * h * w * 4))
        return peak, tab[f["e_src"]], sat, nnz, n * c * h * w
    plan.path = "numpy"
    err = _i8(ddr, f["src"], (n, c, ho, wo))
    if s < kh or s < kw or int(err.min()) == -128:  # sums or a clamp of -128: the generic path
        return None
    x = _i8(ddr, f["aux"], (n, c, h, w))
    y = plan.buf("y", (n, c, ho, wo), np.int8)
    dst = _i8(ddr, f["dst"], (n, c, h, w))
    uncovered = ho * s < h or wo * s < w or s > kh or s > kw

    def lane(_, a, b):  # lanes over images
        yl = conv_ops.maxpool2d(x[a:b], (kh, kw), s, out=y[a:b])
        g = err[a:b] * (yl > 0) if f["flags"] & Flag.RELU_MASK else err[a:b]
        if uncovered:
            dst[a:b] = 0  # positions outside every window
        conv_ops.maxpool2d_route(g, x[a:b], yl, (kh, kw), s, dst[a:b])
        return max_abs(g), 0, int(np.count_nonzero(g))  # every window's value lands once
    peak, _, nnz = _combine(engine.lanes(lane, n, dst.size * 4))
    return peak, tab[f["e_src"]], 0, nnz, dst.size


def _bn_fast(engine, plan, ddr, tab):
    """BN_FP / BN_BP (docs/numeric.md) on float-held exact integers: x * A[c]
    is exact in float32 when |A| * 2^7 < 2^24, else in float64 (below 2^38);
    requantize8 then adds the shifted B (BN_FP), applies ReLU and stores
    exactly as the int64 form. Lanes over images."""
    f = plan.f
    n, c, h, w = (f[k] for k in ("n", "c_in", "h_in", "w_in"))
    fp = f["op"] == Op.BN_FP
    e_acc = tab[f["e_src"]] + tab[f["e_src2"]]
    a32 = _i32(ddr, f["src2"], c)
    dt = np.float32 if _extent(a32) < 1 << 17 else np.float64
    scale = a32.astype(dt).reshape(1, c, 1)
    bias = rshift_round(_i32(ddr, f["src3"], c), e_acc - tab[f["e_src3"]]) if fp else None
    relu = fp and bool(f["flags"] & Flag.RELU)
    mask = _i8(ddr, f["aux"], (n, c, h * w)) if not fp and f["flags"] & Flag.RELU_MASK else None
    x = _i8(ddr, f["src"], (n, c, h * w))
    dst = _i8(ddr, f["dst"], (n, c, h * w))
    shift = tab[f["e_dst"]] - e_acc
    if plan.uses_c(engine):
        xp, dp, a = hk.i8p(ddr, f["src"]), hk.i8p(ddr, f["dst"]), np.ascontiguousarray(a32)
        mp = hk.i8p(ddr, f["aux"]) if mask is not None else None
        chw, sc = c * h * w, clamp_shift(shift)

        def lane(_, lo, hi):  # lanes over images
            st = hk.stats()
            hk.lib.ctrain_bn(xp + lo * chw, hk.ptr(a), hk.ptr(bias), hk.ffi.NULL if mp is None else mp + lo * chw,
                             int(relu), sc, hi - lo, c, h * w, dp + lo * chw, st)
            return hk.result(st)
        peak, sat, nnz = _combine(engine.lanes(lane, n, dst.size * 4))
        return peak, e_acc, sat, nnz, dst.size

    def lane(k, a, b):
        acc = np.multiply(x[a:b], scale, out=plan.buf(f"acc{k}", (b - a, c, h * w), dt))
        if mask is not None:
            np.copyto(acc, 0, where=mask[a:b] <= 0)
        q, peak, sat = requantize8(acc, shift, bias, relu, 1)
        np.copyto(dst[a:b], q, casting="unsafe")
        return peak, sat, int(np.count_nonzero(dst[a:b]))
    peak, sat, nnz = _combine(engine.lanes(lane, n, dst.size * 4))
    return peak, e_acc, sat, nnz, dst.size


#: Largest exponent gap ADD's float path takes, per dtype: |a| * 2^d + |b| <= 2^(7+d) + 2^7
#: stays an exact float32 integer (below 2^24) for d <= 16, float64 (and within
#: requantize8's 2^48) for d <= 40.
_ADD_GAP = ((16, np.float32), (40, np.float64))
#: ADD's store rounds ties half up here (docs/numeric.md); host_lib's ctrain_add
#: also takes ties to even (1), the rule branch h/round adopts for ADD.
ADD_TIES_EVEN = 0


def _add_fast(engine, plan, ddr, tab):
    """ADD (docs/numeric.md) on float-held exact integers: the exact left
    shifts are power-of-two scalings, the sum exact below the dtype's integer
    range (_ADD_GAP); requantize8 applies ReLU and stores. Larger exponent
    gaps (whose shifts may saturate) take the int64 path. Lanes over elements."""
    f = plan.f
    count = f["count"]
    e_a, e_b = tab[f["e_src"]], tab[f["e_src2"]]
    e_acc = min(e_a, e_b)
    gap = abs(e_a - e_b)
    dt = next((t for limit, t in _ADD_GAP if gap <= limit), None)
    if dt is None:
        plan.path = "numpy"
        return None
    if plan.uses_c(engine):
        ap, bp, dp = hk.i8p(ddr, f["src"]), hk.i8p(ddr, f["src2"]), hk.i8p(ddr, f["dst"])
        mp = hk.i8p(ddr, f["aux"]) if f["flags"] & Flag.RELU_MASK else None
        relu, sc = int(bool(f["flags"] & Flag.RELU)), clamp_shift(tab[f["e_dst"]] - e_acc)

        def lane(_, lo, hi):  # lanes over elements
            st = hk.stats()
            hk.lib.ctrain_add(ap + lo, bp + lo, e_a - e_acc, e_b - e_acc, hk.ffi.NULL if mp is None else mp + lo,
                              relu, sc, ADD_TIES_EVEN, hi - lo, dp + lo, st)
            return hk.result(st)
        peak, sat, nnz = _combine(engine.lanes(lane, count, count * 8))
        return peak, e_acc, sat, nnz, count
    scale_a, scale_b = dt(2.0 ** (e_a - e_acc)), dt(2.0 ** (e_b - e_acc))
    a, b = _i8(ddr, f["src"], (count,)), _i8(ddr, f["src2"], (count,))
    mask = _i8(ddr, f["aux"], (count,)) if f["flags"] & Flag.RELU_MASK else None
    relu = bool(f["flags"] & Flag.RELU)
    dst = _i8(ddr, f["dst"], (count,))
    shift = tab[f["e_dst"]] - e_acc

    def lane(k, lo, hi):
        acc = np.multiply(a[lo:hi], scale_a, out=plan.buf(f"acc{k}", (1, hi - lo), dt)[0])
        if scale_b == 1:
            np.add(acc, b[lo:hi], out=acc)
        else:
            acc += np.multiply(b[lo:hi], scale_b, out=plan.buf(f"b{k}", (hi - lo,), dt))
        if mask is not None:
            np.copyto(acc, 0, where=mask[lo:hi] <= 0)
        q, peak, sat = requantize8(acc.reshape(1, -1), shift, None, relu)
        np.copyto(dst[lo:hi], q.reshape(-1), casting="unsafe")
        return peak, sat, int(np.count_nonzero(dst[lo:hi]))
    peak, sat, nnz = _combine(engine.lanes(lane, count, count * 8))
    return peak, e_acc, sat, nnz, count


_KERNELS = {
    Op.CONV_FP: _conv_fp, Op.CONV_EB: _conv_eb, Op.CONV_WG: _conv_wg, Op.UPDATE: _update,
    Op.POOL_FP: _pool_fp_fast, Op.POOL_BP: _pool_bp_fast, Op.BN_FP: _bn_fast, Op.BN_BP: _bn_fast,
    Op.ADD: _add_fast,
}
_FC_KERNELS = {Op.CONV_FP: _fc_fp, Op.CONV_EB: _fc_eb, Op.CONV_WG: _fc_wg}


class NumpyEngine:
    """Bit-exact emulation of the accelerator in numpy.

    `threads` (default: the CPUs this process may use) is how many lanes an
    instruction's work is split into: convolutions, batch norm and pooling
    over images (or over channels in the batch-last layout), each lane a
    contiguous slice computed exactly as the whole would be, statistics
    combined (max of peaks, sums of counts; weight gradients as exact float64
    partial sums). One lane runs on the calling thread, the others on a
    persistent pool; numpy's GEMMs, copies and ufuncs release the GIL, so the
    lanes run on separate cores. Instructions with less than PAR_WORK
    multiply-adds (or element operations) stay in one lane, where a hand-off
    would cost more than it saves.

    `blas_threads` (default 1) is the BLAS thread count during a run (None:
    leave the process setting alone). Each lane's GEMMs are small (LeNet-5:
    a few MFLOP each): a second OpenBLAS thread costs more in hand-offs than it
    gains, and when the cores are busy OpenBLAS's spinning threads make a run
    5-15x slower. The previous count is restored after each run.

    `busy_seconds` and `runs` accumulate the time spent in run() and the
    number of runs (benchmarks subtract it from wall time: the host's share)."""

    name = "numpy"

    def __init__(self, blas_threads=1, threads=None, host_kernels=None):
        self._plans = {}
        self.host_kernels = hk.AVAILABLE if host_kernels is None else bool(host_kernels) and hk.AVAILABLE
        self.paths = collections.Counter()
        self._cols = {}
        self.blas_threads = blas_threads
        self._lanes = Lanes(threads)
        self.busy_seconds = 0.0
        self.runs = 0

    @property
    def threads(self):
        return self._lanes.threads

    @threads.setter
    def threads(self, value):
        self._lanes.threads = value

    def lanes(self, fn, total, work):
        """Lanes.run(fn, total), in one lane when `work` < PAR_WORK."""
        return self._lanes.run(fn, total, split=work >= PAR_WORK)

    def run(self, ddr, prog, n_insn, table, table_len):
        """Execute `n_insn` instructions at DDR offset `prog` with the int32
        parameter table at `table`, in place on `ddr` (a writable 1-D uint8
        array: the whole window); returns RunResult(status, pc, fault_addr).

        The table is read once before the first instruction (the accelerator's
        on-chip copy); each instruction is fetched when it runs."""
        t0 = time.perf_counter()
        restore = set_blas_threads(self.blas_threads)
        try:
            return self._run(ddr, int(prog), int(n_insn), int(table), int(table_len))
        finally:
            restore()
            self.busy_seconds += time.perf_counter() - t0
            self.runs += 1

    def _run(self, ddr, prog, n_insn, table, table_len):
        fault, addr = check_program(prog, n_insn, table, table_len, ddr.size)
        if fault:
            return RunResult(fault, 0, addr)
        tab = ddr[table:table + 4 * table_len].view("<i4").tolist()
        for pc in range(n_insn):
            at = prog + pc * INSN_BYTES
            plan = self._plan(ddr[at:at + INSN_BYTES].tobytes(), ddr.size, table_len)
            if plan.fault:
                return RunResult(plan.fault, pc, plan.addr)
            if plan.op in SPARSE_OPS:  # index contents live in DDR: checked every run
                fault, addr = check_index(ddr, plan.f)
                if fault:
                    return RunResult(fault, pc, addr)
            if plan.op == Op.HALT:
                return RunResult(Fault.NONE, pc, 0)
            stats = plan.kernel(self, plan, ddr, tab) if plan.kernel else None
            if stats is None:  # no fast kernel for this case
                plan.path = "generic"
                writes, stats = plan.legacy(_Insn(ddr, plan.f, tab))
                for field, arr in writes:
                    _store(ddr, plan.f[field], arr)
            _write_stats(ddr, plan.f["stats"], *stats)
            self.paths[plan.op, plan.path] += 1
        return RunResult(Fault.NONE, n_insn, 0)

    def _plan(self, raw, ddr_size, table_len):
        key = (raw, ddr_size, table_len)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= PLAN_CACHE:
                del self._plans[next(iter(self._plans))]
            plan = self._plans[key] = _Plan(raw, ddr_size, table_len)
        return plan

    def _cols_bytes(self):
        return sum(e.cols.nbytes + e.image.nbytes + e.snapshot.nbytes for e in self._cols.values())

    def columns(self, ddr, addr, g, dtype):
        """The im2col matrix (g.gemm_shape) of the int8 activations at addr.

        Kept with a copy of those bytes: a later call on unchanged bytes (CONV_WG
        after CONV_FP of the same layer) returns it as is. Padding entries are
        zeroed once and never written."""
        key = (addr, g.key, np.dtype(dtype))
        ent = self._cols.get(key)
        nbytes = g.n * g.c * g.h * g.w
        src = ddr[addr:addr + nbytes]
        if ent is None:
            need = math.prod(g.cols_shape) * np.dtype(dtype).itemsize
            while self._cols and (len(self._cols) >= COLS_CACHE or self._cols_bytes() + need > COLS_BYTES):
                del self._cols[next(iter(self._cols))]
            ent = self._cols[key] = _Columns()
            ent.cols = np.zeros(g.cols_shape, dtype)
            ent.image = np.empty(g.image_shape(g.c, g.h, g.w), dtype)
            ent.snapshot = np.empty(nbytes, np.uint8)
            ent.valid = False
        elif ent.valid and np.array_equal(ent.snapshot, src):
            return ent.cols.reshape(g.gemm_shape)
        ent.valid = False
        x = src.view(np.int8).reshape(g.n, g.c, g.h, g.w)
        if self.host_kernels:  # one pass from int8 NCHW: lanes over channels (batch-last) or images
            fn = hk.lib.ctrain_im2col_f32 if ent.cols.dtype == np.float32 else hk.lib.ctrain_im2col_f64
            xp, cp = hk.ptr(x), hk.ptr(ent.cols)

            def lane(_, a, b):
                fn(xp, g.n, g.c, g.h, g.w, g.kh, g.kw, g.stride, g.pad, g.ho, g.wo, int(g.batch_last), a, b, cp)
            self.lanes(lane, g.c if g.batch_last else g.n, ent.cols.size)
        elif g.batch_last:  # lanes over channels: [C, H, W, N] -> [C, kh, kw, Ho, Wo, N]
            def lane(_, a, b):
                np.copyto(ent.image[a:b], x[:, a:b].transpose(1, 2, 3, 0), casting="unsafe")
                g.im2col(ent.image[a:b], ent.cols[a:b])
            self.lanes(lane, g.c, ent.cols.size)
        else:  # lanes over images
            def lane(_, a, b):
                np.copyto(ent.image[a:b], x[a:b], casting="unsafe")
                g.im2col(ent.image[a:b], ent.cols[a:b])
            self.lanes(lane, g.n, ent.cols.size)
        ent.snapshot[...] = src
        ent.valid = True
        return ent.cols.reshape(g.gemm_shape)
