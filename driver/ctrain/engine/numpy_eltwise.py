"""Numpy kernels of the residual add and average pooling (OP_ADD,
OP_AVGPOOL_FP/BP), registered in numpy_engine's dispatch table; the
arithmetic is docs/numeric.md's, in int64 throughout (these ops are cheap next
to the convolutions, so no float fast path).

Handlers take the engine's decoded instruction (`ins`: .ddr, .f, .e(slot
field), .has(flag)) and return (writes, stats) exactly like numpy_engine's.
"""
import numpy as np

from ..fixedpoint import max_abs, rshift_even, rshift_round, sat8
from ..isa import AVG_SHIFT, Flag, Op, avg_recip


def _i8(ins, field, shape):
    addr, size = ins.f[field], int(np.prod(shape))
    return ins.ddr[addr:addr + size].view(np.int8).reshape(shape)


def _dims(ins, *names):
    return tuple(ins.f[name] for name in names)


def add_acc(a, b, e_a, e_b):
    """(acc, e_acc): a*2^e_a + b*2^e_b exactly at e_acc = min(e_a, e_b), each
    term an exact left shift saturating at +-2^62 (one of them is unshifted,
    so the sum stays inside int64)."""
    e_acc = min(e_a, e_b)
    return rshift_round(a, e_acc - e_a) + rshift_round(b, e_acc - e_b), e_acc


def _add(ins):
    count = ins.f["count"]
    acc, e_acc = add_acc(_i8(ins, "src", (count,)), _i8(ins, "src2", (count,)), ins.e("e_src"), ins.e("e_src2"))
    if ins.has(Flag.RELU_MASK):
        acc[_i8(ins, "aux", (count,)) <= 0] = 0
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
    n, c, h, w, ho, wo, kh, kw, s = _dims(ins, "n", "c_in", "h_in", "w_in", "h_out", "w_out",
                                          "k_h", "k_w", "stride")
    r = avg_recip(kh * kw)
    e_acc = ins.e("e_src") - AVG_SHIFT
    if ins.f["op"] == Op.AVGPOOL_FP:
        acc = window_sums(_i8(ins, "src", (n, c, h, w)), kh, kw, s, ho, wo) * r
    else:
        acc = window_spread(_i8(ins, "src", (n, c, ho, wo)).astype(np.int64), kh, kw, s, h, w) * r
        if ins.has(Flag.RELU_MASK):
            acc[_i8(ins, "aux", (n, c, h, w)) <= 0] = 0
    out, sat = sat8(rshift_round(acc, ins.e("e_dst") - e_acc))
    return [("dst", out)], (max_abs(acc), e_acc, sat, int(np.count_nonzero(out)), out.size)


EXECUTE = {Op.ADD: _add, Op.AVGPOOL_FP: _avgpool, Op.AVGPOOL_BP: _avgpool}
