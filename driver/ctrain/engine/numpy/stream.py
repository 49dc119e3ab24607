"""ReLU, max pooling and frozen batch norm, forward and backward, beside
stream.cpp: fast kernels (pooling with disjoint windows, batch norm: in
host_lib where built, else in numpy on float-held exact integers) and the
generic int64 forms the rest take."""
import numpy as np

from ... import conv_ops
from ...fixedpoint import FLOAT32_EXACT, clamp_shift, max_abs, requantize8, rshift_round, sat8
from ...isa import Flag, Op
from . import host_kernels as hk
from .operands import combine, extent, i8, i32, stats


def _relu_fp(ins):
    out = np.maximum(ins.i8("src", (ins.f["count"],)), 0)
    return [("dst", out)], stats(max_abs(out), ins.e("e_src"), 0, [out])


def _relu_bp(ins):
    count = ins.f["count"]
    out = ins.i8("src", (count,)) * (ins.i8("aux", (count,)) > 0)
    return [("dst", out)], stats(max_abs(out), ins.e("e_src"), 0, [out])


def _pool_bp(ins):
    n, c, h, w, ho, wo, kh, kw, s = ins.dims("n", "c_in", "h_in", "w_in", "h_out", "w_out",
                                             "k_h", "k_w", "stride")
    err = ins.i8("src", (n, c, ho, wo)).astype(np.int32)
    dx = conv_ops.maxpool2d_grad(err, ins.i8("aux", (n, c, h, w)), (kh, kw), s,
                                 relu_mask=ins.has(Flag.RELU_MASK))
    out, sat = sat8(dx)
    return [("dst", out)], stats(max_abs(out), ins.e("e_src"), sat, [out])


def _per_channel(ins, field):
    c = ins.f["c_in"]
    return ins.i32(field, c).astype(np.int64).reshape(1, c, 1, 1)


def _bn_fp(ins):
    shape = ins.dims("n", "c_in", "h_in", "w_in")
    e_acc = ins.e("e_src") + ins.e("e_src2")
    acc = ins.i8("src", shape).astype(np.int64) * _per_channel(ins, "src2")
    acc += rshift_round(_per_channel(ins, "src3"), e_acc - ins.e("e_src3"))
    if ins.has(Flag.RELU):
        np.maximum(acc, 0, out=acc)
    out, sat = sat8(rshift_round(acc, ins.e("e_dst") - e_acc))
    return [("dst", out)], stats(max_abs(acc), e_acc, sat, [out])


def _bn_bp(ins):
    shape = ins.dims("n", "c_in", "h_in", "w_in")
    e_acc = ins.e("e_src") + ins.e("e_src2")
    acc = ins.i8("src", shape).astype(np.int64) * _per_channel(ins, "src2")
    if ins.has(Flag.RELU_MASK):
        acc[ins.i8("aux", shape) <= 0] = 0
    out, sat = sat8(rshift_round(acc, ins.e("e_dst") - e_acc))
    return [("dst", out)], stats(max_abs(acc), e_acc, sat, [out])



def _pool_fp_fast(engine, plan, ddr, tab):
    f = plan.f
    n, c, h, w, ho, wo = (f[k] for k in ("n", "c_in", "h_in", "w_in", "h_out", "w_out"))
    x = i8(ddr, f["src"], (n, c, h, w))
    y = i8(ddr, f["dst"], (n, c, ho, wo))
    if plan.uses_c(engine):
        xp, yp = hk.i8p(ddr, f["src"]), hk.i8p(ddr, f["dst"])

        def lane(_, a, b):  # lanes over images
            st = hk.stats()
            hk.lib.ctrain_maxpool(xp + a * c * h * w, (b - a) * c, h, w, f["k_h"], f["k_w"], f["stride"],
                                  ho, wo, yp + a * c * ho * wo, st)
            return hk.result(st)
        peak, _, nnz = combine(engine.lanes(lane, n, y.size * f["k_h"] * f["k_w"]))
        return peak, tab[f["e_src"]], 0, nnz, y.size

    def lane(_, a, b):  # lanes over images
        out = conv_ops.maxpool2d(x[a:b], (f["k_h"], f["k_w"]), f["stride"], out=y[a:b])
        return max_abs(out), 0, int(np.count_nonzero(out))
    peak, _, nnz = combine(engine.lanes(lane, n, y.size * f["k_h"] * f["k_w"]))
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
        peak, sat, nnz = combine(engine.lanes(lane, n, n * c * h * w * 4))
        return peak, tab[f["e_src"]], sat, nnz, n * c * h * w
    plan.path = "numpy"
    err = i8(ddr, f["src"], (n, c, ho, wo))
    if s < kh or s < kw or int(err.min()) == -128:  # sums or a clamp of -128: the generic path
        return None
    x = i8(ddr, f["aux"], (n, c, h, w))
    y = plan.buf("y", (n, c, ho, wo), np.int8)
    dst = i8(ddr, f["dst"], (n, c, h, w))
    uncovered = ho * s < h or wo * s < w or s > kh or s > kw

    def lane(_, a, b):  # lanes over images
        yl = conv_ops.maxpool2d(x[a:b], (kh, kw), s, out=y[a:b])
        g = err[a:b] * (yl > 0) if f["flags"] & Flag.RELU_MASK else err[a:b]
        if uncovered:
            dst[a:b] = 0  # positions outside every window
        conv_ops.maxpool2d_route(g, x[a:b], yl, (kh, kw), s, dst[a:b])
        return max_abs(g), 0, int(np.count_nonzero(g))  # every window's value lands once
    peak, _, nnz = combine(engine.lanes(lane, n, dst.size * 4))
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
    a32 = i32(ddr, f["src2"], c)
    dt = np.float32 if extent(a32) * (1 << 7) < FLOAT32_EXACT else np.float64
    scale = a32.astype(dt).reshape(1, c, 1)
    bias = rshift_round(i32(ddr, f["src3"], c), e_acc - tab[f["e_src3"]]) if fp else None
    relu = fp and bool(f["flags"] & Flag.RELU)
    mask = i8(ddr, f["aux"], (n, c, h * w)) if not fp and f["flags"] & Flag.RELU_MASK else None
    x = i8(ddr, f["src"], (n, c, h * w))
    dst = i8(ddr, f["dst"], (n, c, h * w))
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
        peak, sat, nnz = combine(engine.lanes(lane, n, dst.size * 4))
        return peak, e_acc, sat, nnz, dst.size

    def lane(k, a, b):
        acc = np.multiply(x[a:b], scale, out=plan.buf(f"acc{k}", (b - a, c, h * w), dt))
        if mask is not None:
            np.copyto(acc, 0, where=mask[a:b] <= 0)
        q, peak, sat = requantize8(acc, shift, bias, relu, 1)
        np.copyto(dst[a:b], q, casting="unsafe")
        return peak, sat, int(np.count_nonzero(dst[a:b]))
    peak, sat, nnz = combine(engine.lanes(lane, n, dst.size * 4))
    return peak, e_acc, sat, nnz, dst.size


#: Largest exponent gap ADD's float path takes, per dtype: |a| * 2^d + |b| <= 2^(7+d) + 2^7


KERNELS = {Op.POOL_FP: _pool_fp_fast, Op.POOL_BP: _pool_bp_fast, Op.BN_FP: _bn_fast,
           Op.BN_BP: _bn_fast}
GENERIC = {Op.RELU_FP: _relu_fp, Op.RELU_BP: _relu_bp, Op.POOL_BP: _pool_bp,
           Op.BN_FP: _bn_fp, Op.BN_BP: _bn_bp}
