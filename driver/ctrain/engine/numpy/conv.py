"""Dense convolutions (CONV_FP/EB/WG), beside conv.cpp and pe_array.cpp:
im2col GEMMs through float BLAS (or host_lib's small GEMMs) where provably
exact, the stores and col2im in host_lib's fused kernels where built
(host_kernels.py; else their numpy forms), and the fully connected form
(1x1 kernel on a 1x1 map) as plain GEMMs.

A fast kernel takes (engine, plan, ddr, tab), writes its results into ddr and
returns (max_abs, exp, sat, nnz, count); `tab` is the table as Python ints.
"""
import numpy as np

from ...fixedpoint import FLOAT32_EXACT, clamp_shift, max_abs, requantize8, rshift_round, sat32
from ...isa import Flag, Op
from ...validate import terms_per_output
from . import host_kernels as hk
from .operands import F32_TERMS, blas_dtype, combine, i8, i32

#: Accumulator elements per tile of images (2 MiB of float32).
TILE_ELEMS = 1 << 19
#: Column elements per tile of images of CONV_EB with host_lib's col2im (1 MiB of float32).
EB_TILE_ELEMS = 1 << 18


def _weights(plan, ddr, dtype, transpose=False):
    """The int8 weights [c_out, c_in*kh*kw] as `dtype` (transposed: [c_in*kh*kw, c_out])."""
    f = plan.f
    g = plan.geom
    w8 = i8(ddr, f["src2"], (f["c_out"], g.k))
    if transpose:
        w8 = w8.T
    w = plan.buf("w", w8.shape, dtype)
    np.copyto(w, w8)
    return w


def _err_rows(plan, ddr, dtype, ck=False):
    """The output error [N, Co, Ho, Wo] in the geometry's layout as GEMM
    operand(s) in `dtype`: [N, Co, Ho*Wo] (image-major) or [Co, Ho*Wo*N]
    (transposed in host_lib when `ck`)."""
    f, g = plan.f, plan.geom
    co = f["c_out"]
    e = plan.buf("err", g.image_shape(co, g.ho, g.wo), dtype)
    src = i8(ddr, f["src"], (g.n, co, g.ho, g.wo))
    fn = _TO_BATCH_LAST.get(e.dtype) if g.batch_last and ck else None
    if fn:  # host_lib's 8x8-block transpose (numpy's strided copy costs 2-7x more)
        getattr(hk.lib, fn)(hk.ptr(src), g.n, co * g.p, hk.ptr(e))
    else:
        g.to_layout(src, e)
    return e.reshape(co, -1) if g.batch_last else e.reshape(g.n, co, -1)


_TO_BATCH_LAST = {np.dtype(np.int8): "ctrain_to_batch_last_i8", np.dtype(np.float32): "ctrain_to_batch_last_f32"}


def _store_i8(ddr, addr, q, g, chw):
    """Store q (a tensor [N, *chw] in the geometry's layout, any shape of it:
    requantize8's result, converted as a C cast) as int8 NCHW at addr;
    returns its nonzero count."""
    dst = i8(ddr, addr, (g.n,) + chw)
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
    cols = engine.columns(ddr, f["src"], g, np.int8 if hk.int8_columns(co, g.k, engine.host_kernels) else dt)
    w = _weights(plan, ddr, dt)
    e_acc = tab[f["e_src"]] + tab[f["e_src2"]]
    s, relu = tab[f["e_dst"]] - e_acc, bool(f["flags"] & Flag.RELU)
    bias = None
    if f["flags"] & Flag.BIAS:
        bias = rshift_round(i32(ddr, f["src3"], co), e_acc - tab[f["e_src3"]])
    dst = i8(ddr, f["dst"], (g.n, co, g.ho, g.wo))
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
    peak, sat, nnz = combine(parts)
    return peak, e_acc, sat, nnz, dst.size



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
    err8 = i8(ddr, f["src"], (g.n, co, g.ho, g.wo))
    aux = i8(ddr, f["aux"], (g.n, g.c, g.h, g.w)) if f["flags"] & Flag.RELU_MASK else None
    dst = i8(ddr, f["dst"], (g.n, g.c, g.h, g.w))
    e_acc = tab[f["e_src"]] + tab[f["e_src2"]]
    shift = tab[f["e_dst"]] - e_acc
    work = g.n * co * g.p * g.k
    ck = plan.uses_c(engine)
    if ck:
        sc, base = clamp_shift(shift), hk.i8p(ddr, f["dst"])
        mbase = hk.i8p(ddr, f["aux"]) if aux is not None else None
        chw = g.c * g.h * g.w
    if g.batch_last:  # lanes over input channels: their rows of W^T and of the columns
        err = _err_rows(plan, ddr, dt, ck)  # [Co, Ho*Wo*N]
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
    peak, sat, nnz = combine(parts)
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
    # the dtype CONV_FP's columns have (sums go by exact spans); int8 columns
    # take int8 errors straight from DDR
    dt = np.int8 if hk.int8_columns(co, g.k, engine.host_kernels) else np.float32
    cols = engine.columns(ddr, f["src2"], g, dt)
    gw = plan.buf("gw", (co, g.k), np.float64)
    work = g.n * co * g.p * g.k
    ck = hk.gram_ok(co, g.k, dt, plan.uses_c(engine))
    plan.path = "host C" if ck else "numpy"
    if g.batch_last:  # [Co, T] x [K, T]: lanes over the K rows of gw's columns
        err = _err_rows(plan, ddr, dt, engine.host_kernels)

        def lane(_, a, b):
            if ck:
                gw[:, a:b] = 0
                hk.gram(err, cols[a:b], gw, a)
            else:
                _exact_gram(err, cols[a:b], gw[:, a:b])
        engine.lanes(lane, g.k, work)
        return _store_grads(ddr, f, tab, gw, lambda: _channel_sums(err, 1), engine.host_kernels)
    # image-major: lanes over images, each an exact float64 partial sum (an
    # integer below 2^47); adding the partial sums is exact
    err8 = i8(ddr, f["src"], (g.n, co, g.p))
    err = err8 if dt == np.int8 else plan.buf("err", (g.n, co, g.p), dt)

    def lane(k, a, b):
        e = err[a:b]
        if e.dtype != np.int8:
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
    return _store_grads(ddr, f, tab, gw, lambda: _channel_sums(err, g.n), engine.host_kernels)


#: Most int8 values (each at most 2^7 in magnitude) a float32 sum adds exactly.
_F32_SUM_TERMS = FLOAT32_EXACT // (1 << 7)


def _channel_sums(e, n):
    """Exact float64 sums per channel of errors e ([n, Co, T] or [Co, T] for
    n = 1): host_lib sums int8 errors in one pass."""
    if e.dtype == np.int8 and hk.AVAILABLE:
        out = np.empty(e.shape[-2], np.int64)
        hk.lib.ctrain_channel_sums_i8(hk.ptr(e), n, e.shape[-2], e.shape[-1], hk.ptr(out))
        return out.astype(np.float64)
    s = _row_sums(e)
    return s.sum(axis=0) if s.ndim == 2 else s


def _row_sums(e):
    """Exact float64 sums over the last axis of int8 values, held as int8 (summed
    in int64) or as floats (a matrix-vector product: float32 when every partial
    sum is below 2^24)."""
    t = e.shape[-1]
    if e.dtype == np.int8:
        return e.sum(axis=-1, dtype=np.int64).astype(np.float64)
    if e.dtype == np.float32 and t <= _F32_SUM_TERMS:
        return np.matmul(e, np.ones(t, np.float32)).astype(np.float64)
    return e.sum(axis=-1, dtype=np.float64)


def _store_grads(ddr, f, tab, gw, err_sums, ck=False):
    """CONV_WG's stores from the exact sums gw [Co, K] (float64, or float32
    below 2^24); err_sums() gives the bias sums (per output channel, float64:
    exact below 2^53). `ck`: in host_lib (one pass each, the same results)."""
    co = gw.shape[0]
    e_dst = tab[f["e_dst"]]
    if ck:
        st = hk.stats()
        fn = hk.lib.ctrain_store_grads_f32 if gw.dtype == np.float32 else hk.lib.ctrain_store_grads_f64
        fn(hk.ptr(gw), gw.size, clamp_shift(e_dst - (tab[f["e_src"]] + tab[f["e_src2"]])), hk.i32p(ddr, f["dst"]), st)
        count = gw.size
        if f["flags"] & Flag.BIAS:
            gb = np.ascontiguousarray(err_sums(), np.float64)
            hk.lib.ctrain_store_grads_f64(hk.ptr(gb), co, clamp_shift(e_dst - tab[f["e_src"]]),
                                          hk.i32p(ddr, f["dst2"]), st)
            count += co
        peak, sat, nnz = hk.result(st)
        return peak, e_dst, sat, nnz, count
    gw = gw.astype(np.float64, copy=False)
    v_w = rshift_round(gw.astype(np.int64), e_dst - (tab[f["e_src"]] + tab[f["e_src2"]]))
    dw, sat = sat32(v_w)
    peak, nnz, count = max_abs(v_w), int(np.count_nonzero(dw)), dw.size
    i32(ddr, f["dst"], dw.size)[...] = dw.reshape(-1)
    if f["flags"] & Flag.BIAS:
        gb = err_sums().astype(np.int64)
        v_b = rshift_round(gb, e_dst - tab[f["e_src"]])
        db, sat_b = sat32(v_b)
        i32(ddr, f["dst2"], co)[...] = db
        peak, sat = max(peak, max_abs(v_b)), sat + sat_b
        nnz, count = nnz + int(np.count_nonzero(db)), count + co
    return peak, e_dst, sat, nnz, count


# Fully connected layers (1x1 kernel on a 1x1 map): plain GEMMs on [N, C]
# matrices, no layout changes.

def _fc_operands(plan, ddr, tab, name, width):
    """FC FP/EB's GEMM operands: src [n, width] (activations, or errors) and
    the weights [c_out, c_in], in the BLAS dtype exact for width-term sums;
    and e_acc, the exponent of their products."""
    f = plan.f
    dt = blas_dtype(width)
    a = plan.buf(name, (f["n"], width), dt)
    np.copyto(a, i8(ddr, f["src"], (f["n"], width)))
    w = plan.buf("w", (f["c_out"], f["c_in"]), dt)
    np.copyto(w, i8(ddr, f["src2"], (f["c_out"], f["c_in"])))
    return a, w, tab[f["e_src"]] + tab[f["e_src2"]]


def _fc_store(engine, plan, ddr, tab, acc, e_acc, bias=None, relu=False, mask=False):
    """FC FP/EB's epilogue: the sums acc [n, m] plus the bias (per output,
    at e_acc), ReLU or the aux mask, requantized to the int8 dst [n, m]; the
    statistics record's (peak, e_acc, saturated, nonzero, count)."""
    f = plan.f
    n, m = acc.shape
    shift = tab[f["e_dst"]] - e_acc
    if plan.uses_c(engine):
        gate = hk.i8p(ddr, f["aux"]) if mask else hk.ffi.NULL
        peak, sat, nnz = hk.requant(acc, bias, gate, relu, clamp_shift(shift), (n, m, 1, 1),
                                    hk.i8p(ddr, f["dst"]), (m, 1, 0, 0))
        return peak, e_acc, sat, nnz, n * m
    if mask:
        np.copyto(acc, 0, where=i8(ddr, f["aux"], (n, m)) <= 0)
    q, peak, sat = requantize8(acc, shift, bias, relu, axis=1)
    dst = i8(ddr, f["dst"], (n, m))
    np.copyto(dst, q, casting="unsafe")
    return peak, e_acc, sat, int(np.count_nonzero(dst)), dst.size


def _fc_fp(engine, plan, ddr, tab):
    f = plan.f
    n, ci, co = f["n"], f["c_in"], f["c_out"]
    x, w, e_acc = _fc_operands(plan, ddr, tab, "x", ci)
    acc = np.matmul(x, w.T, out=plan.buf("acc", (n, co), x.dtype))
    bias = None
    if f["flags"] & Flag.BIAS:
        bias = rshift_round(i32(ddr, f["src3"], co), e_acc - tab[f["e_src3"]])
    return _fc_store(engine, plan, ddr, tab, acc, e_acc, bias, relu=bool(f["flags"] & Flag.RELU))


def _fc_eb(engine, plan, ddr, tab):
    f = plan.f
    n, ci, co = f["n"], f["c_in"], f["c_out"]
    e, w, e_acc = _fc_operands(plan, ddr, tab, "e", co)
    acc = np.matmul(e, w, out=plan.buf("acc", (n, ci), e.dtype))
    return _fc_store(engine, plan, ddr, tab, acc, e_acc, mask=bool(f["flags"] & Flag.RELU_MASK))


def _fc_wg(engine, plan, ddr, tab):
    f = plan.f
    n, ci, co = f["n"], f["c_in"], f["c_out"]
    e = plan.buf("e", (n, co), np.float32)
    np.copyto(e, i8(ddr, f["src"], (n, co)))
    x = plan.buf("x", (n, ci), np.float32)
    np.copyto(x, i8(ddr, f["src2"], (n, ci)))
    ck = plan.uses_c(engine)
    if n <= F32_TERMS:  # exact: at most 2^10 terms
        gw = np.matmul(e.T, x, out=plan.buf("gw32", (co, ci), np.float32))
    else:
        gw = _exact_gram(np.ascontiguousarray(e.T), np.ascontiguousarray(x.T), plan.buf("gw", (co, ci), np.float64))
    return _store_grads(ddr, f, tab, gw, lambda: _row_sums(e.T), ck)



KERNELS = {Op.CONV_FP: _conv_fp, Op.CONV_EB: _conv_eb, Op.CONV_WG: _conv_wg}
#: The fully connected forms, chosen when h_in = w_in = k_h = k_w = 1.
FC_KERNELS = {Op.CONV_FP: _fc_fp, Op.CONV_EB: _fc_eb, Op.CONV_WG: _fc_wg}
