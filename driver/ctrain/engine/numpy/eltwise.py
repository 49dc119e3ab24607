"""Residual add and average pooling (ADD, AVGPOOL_FP/BP), beside eltwise.cpp:
docs/numeric.md's arithmetic in int64 (generic handlers), and ADD where the
exponent gap allows: in host_lib (ctrain_add) or on float-held exact integers."""
import numpy as np

from ...fixedpoint import clamp_shift, max_abs, requantize8_even, rshift_even, rshift_round, sat8
from ...isa import AVG_SHIFT, Flag, Op, avg_recip
from . import host_kernels as hk
from .operands import combine, i8


def add_acc(a, b, e_a, e_b):
    """(acc, e_acc): a*2^e_a + b*2^e_b exactly at e_acc = min(e_a, e_b), each
    term an exact left shift saturating at +-2^62 (one of them is unshifted,
    so the sum stays inside int64)."""
    e_acc = min(e_a, e_b)
    return rshift_round(a, e_acc - e_a) + rshift_round(b, e_acc - e_b), e_acc


def _add(ins):
    count = ins.f["count"]
    acc, e_acc = add_acc(ins.i8("src", (count,)), ins.i8("src2", (count,)), ins.e("e_src"), ins.e("e_src2"))
    if ins.has(Flag.RELU_MASK):
        acc[ins.i8("aux", (count,)) <= 0] = 0
    if ins.has(Flag.RELU):
        np.maximum(acc, 0, out=acc)
    out, sat = sat8(rshift_even(acc, ins.e("e_dst") - e_acc))
    return [("dst", out)], (max_abs(acc), e_acc, sat, int(np.count_nonzero(out)), out.size)


def window_sums(x, kh, kw, s, ho, wo):
    """Sum of every k_h x k_w window (stride s, no padding) of x [N, C, H, W], int64."""
    c = np.zeros((x.shape[0], x.shape[1], x.shape[2] + 1, x.shape[3] + 1), np.int64)
    np.cumsum(np.cumsum(x, axis=2, dtype=np.int64), axis=3, out=c[:, :, 1:, 1:])
    y0, x0 = np.arange(ho) * s, np.arange(wo) * s
    y1, x1 = y0 + kh, x0 + kw
    return (c[:, :, y1[:, None], x1[None, :]] - c[:, :, y0[:, None], x1[None, :]]
            - c[:, :, y1[:, None], x0[None, :]] + c[:, :, y0[:, None], x0[None, :]])


def window_spread(g, kh, kw, s, h, w):
    """Each input position's sum of the window values g [N, C, Ho, Wo] of the
    windows covering it (the transpose of window_sums), int64."""
    n, c, ho, wo = g.shape
    v = np.zeros((n, c, h, wo), np.int64)
    for ky in range(kh):  # within one ky the target rows oy*s + ky are distinct
        v[:, :, ky:ky + s * (ho - 1) + 1:s, :] += g
    out = np.zeros((n, c, h, w), np.int64)
    for kx in range(kw):
        out[:, :, :, kx:kx + s * (wo - 1) + 1:s] += v
    return out


def _avgpool(ins):
    n, c, h, w, ho, wo, kh, kw, s = ins.dims("n", "c_in", "h_in", "w_in", "h_out", "w_out",
                                          "k_h", "k_w", "stride")
    r = avg_recip(kh * kw)
    e_acc = ins.e("e_src") - AVG_SHIFT
    if ins.f["op"] == Op.AVGPOOL_FP:
        acc = window_sums(ins.i8("src", (n, c, h, w)), kh, kw, s, ho, wo) * r
    else:
        acc = window_spread(ins.i8("src", (n, c, ho, wo)).astype(np.int64), kh, kw, s, h, w) * r
        if ins.has(Flag.RELU_MASK):
            acc[ins.i8("aux", (n, c, h, w)) <= 0] = 0
    out, sat = sat8(rshift_round(acc, ins.e("e_dst") - e_acc))
    return [("dst", out)], (max_abs(acc), e_acc, sat, int(np.count_nonzero(out)), out.size)



_ADD_GAP = ((16, np.float32), (40, np.float64))


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
        return None
    if plan.uses_c(engine):  # ties to even in host_lib's ctrain_add too
        ap, bp, dp = hk.i8p(ddr, f["src"]), hk.i8p(ddr, f["src2"]), hk.i8p(ddr, f["dst"])
        mp = hk.i8p(ddr, f["aux"]) if f["flags"] & Flag.RELU_MASK else None
        relu, sc = int(bool(f["flags"] & Flag.RELU)), clamp_shift(tab[f["e_dst"]] - e_acc)

        def lane(_, lo, hi):  # lanes over elements
            st = hk.stats()
            hk.lib.ctrain_add(ap + lo, bp + lo, e_a - e_acc, e_b - e_acc, hk.ffi.NULL if mp is None else mp + lo,
                              relu, sc, hi - lo, dp + lo, st)
            return hk.result(st)
        peak, sat, nnz = combine(engine.lanes(lane, count, count * 8))
        return peak, e_acc, sat, nnz, count
    scale_a, scale_b = dt(2.0 ** (e_a - e_acc)), dt(2.0 ** (e_b - e_acc))
    a, b = i8(ddr, f["src"], (count,)), i8(ddr, f["src2"], (count,))
    mask = i8(ddr, f["aux"], (count,)) if f["flags"] & Flag.RELU_MASK else None
    relu = bool(f["flags"] & Flag.RELU)
    dst = i8(ddr, f["dst"], (count,))
    shift = tab[f["e_dst"]] - e_acc

    def lane(k, lo, hi):
        acc = np.multiply(a[lo:hi], scale_a, out=plan.buf(f"acc{k}", (1, hi - lo), dt)[0])
        if scale_b == 1:
            np.add(acc, b[lo:hi], out=acc)
        else:
            acc += np.multiply(b[lo:hi], scale_b, out=plan.buf(f"b{k}", (hi - lo,), dt))
        if mask is not None:
            np.copyto(acc, 0, where=mask[lo:hi] <= 0)
        q, peak, sat = requantize8_even(acc.reshape(1, -1), shift, relu)  # ADD's ties to even
        np.copyto(dst[lo:hi], q.reshape(-1), casting="unsafe")
        return peak, sat, int(np.count_nonzero(dst[lo:hi]))
    peak, sat, nnz = combine(engine.lanes(lane, count, count * 8))
    return peak, e_acc, sat, nnz, count



KERNELS = {Op.ADD: _add_fast}
GENERIC = {Op.ADD: _add, Op.AVGPOOL_FP: _avgpool, Op.AVGPOOL_BP: _avgpool}
