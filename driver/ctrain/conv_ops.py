"""Convolution and max-pool building blocks on [N, C, H, W] arrays.

Shared by the numpy engine (on float32/float64 copies of integer data, where
docs/numeric.md "Exactness" makes every sum exact) and by the host float model.
Everything is dtype-generic: results have the dtype of the data argument, and
are C-contiguous so callers can view them as raw bytes.

Convolutions go through one im2col matrix laid out [C*kh*kw, N*Ho*Wo]: built by
a copy per kernel offset (fast contiguous runs along W), multiplied by the
weights in a single GEMM. The input gradient is the transpose: one GEMM, then a
strided add per kernel offset (col2im). No Python loop ever runs over pixels.
"""
import numpy as np


def _pair(k):
    """(kh, kw) from an int or a pair."""
    return (k, k) if np.isscalar(k) else (int(k[0]), int(k[1]))


def out_size(n, k, stride, pad=0):
    """Output length of a window sweep: floor((n + 2*pad - k) / stride) + 1."""
    return (n + 2 * pad - k) // stride + 1


def _span(start, count, stride):
    """The slice hitting `count` positions from `start`, `stride` apart."""
    return slice(start, start + stride * (count - 1) + 1, stride)


def _padded(x, pad):
    """x zero-padded by `pad` on both spatial sides (x itself when pad == 0)."""
    if pad == 0:
        return x
    n, c, h, w = x.shape
    xp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), x.dtype)
    xp[:, :, pad:pad + h, pad:pad + w] = x
    return xp


def _im2col(x, kh, kw, stride, pad, ho, wo):
    """Columns [C*kh*kw, N*ho*wo]: entry (c,ky,kx),(n,oy,ox) is the padded input at
    (n, c, oy*stride+ky, ox*stride+kx)."""
    xt = _padded(x, pad).transpose(1, 0, 2, 3)
    n, c = x.shape[:2]
    cols = np.empty((c, kh, kw, n, ho, wo), x.dtype)
    for ky in range(kh):
        for kx in range(kw):
            cols[:, ky, kx] = xt[:, :, _span(ky, ho, stride), _span(kx, wo, stride)]
    return cols.reshape(c * kh * kw, n * ho * wo)


def _channels_first(y):
    """[N, C, H, W] -> [C, N*H*W] (a copy), the layout the GEMMs consume."""
    return y.transpose(1, 0, 2, 3).reshape(y.shape[1], -1)


def conv2d(x, w, stride, pad):
    """Cross-correlation with zero padding: y[n,co,oy,ox] =
    sum w[co,ci,ky,kx] * x[n,ci,oy*stride+ky-pad,ox*stride+kx-pad]."""
    n, _, h, wd = x.shape
    co, _, kh, kw = w.shape
    ho, wo = out_size(h, kh, stride, pad), out_size(wd, kw, stride, pad)
    cols = _im2col(x, kh, kw, stride, pad, ho, wo)
    y = w.reshape(co, -1).astype(x.dtype, copy=False) @ cols
    return np.ascontiguousarray(y.reshape(co, n, ho, wo).transpose(1, 0, 2, 3))


def conv2d_grad_input(dy, w, in_hw, stride, pad):
    """Gradient of conv2d w.r.t. its input, shape [N, Ci, H, W] for in_hw = (H, W).

    Input positions no output window reaches (stride not dividing H+2p-k) get 0."""
    n, co, ho, wo = dy.shape
    _, ci, kh, kw = w.shape
    h, wd = in_hw
    w2 = w.reshape(co, -1).astype(dy.dtype, copy=False)
    cols = (w2.T @ _channels_first(dy)).reshape(ci, kh, kw, n, ho, wo)
    dxp = np.zeros((ci, n, h + 2 * pad, wd + 2 * pad), dy.dtype)
    for ky in range(kh):
        for kx in range(kw):
            dxp[:, :, _span(ky, ho, stride), _span(kx, wo, stride)] += cols[:, ky, kx]
    dx = dxp[:, :, pad:pad + h, pad:pad + wd].transpose(1, 0, 2, 3)
    return np.ascontiguousarray(dx)


def conv2d_grad_weight(dy, x, k_hw, stride, pad):
    """Gradient of conv2d w.r.t. its weights, shape [Co, Ci, kh, kw]."""
    co, (kh, kw) = dy.shape[1], _pair(k_hw)
    ho, wo = dy.shape[2:]
    cols = _im2col(x, kh, kw, stride, pad, ho, wo)
    dw = _channels_first(dy).astype(x.dtype, copy=False) @ cols.T
    return dw.reshape(co, x.shape[1], kh, kw)


def _windows(x, kh, kw, stride):
    """(ky, kx, view of x at that offset of every pool window), row-major order."""
    ho, wo = out_size(x.shape[2], kh, stride), out_size(x.shape[3], kw, stride)
    for ky in range(kh):
        for kx in range(kw):
            yield ky, kx, x[:, :, _span(ky, ho, stride), _span(kx, wo, stride)]


def maxpool2d(x, k, stride):
    """Max over kh x kw windows `stride` apart, no padding, floor output size."""
    kh, kw = _pair(k)
    views = _windows(x, kh, kw, stride)
    y = next(views)[2].copy()
    for _, _, v in views:
        np.maximum(y, v, out=y)
    return y


def maxpool2d_grad(dy, x, k, stride, relu_mask=False):
    """Route dy back to the *first* maximum (row-major (ky, kx)) of each window of x;
    overlapping windows add up. relu_mask drops windows whose maximum is <= 0.
    Result has dy's dtype and x's shape."""
    kh, kw = _pair(k)
    y = maxpool2d(x, (kh, kw), stride)
    ho, wo = y.shape[2:]
    g = np.where(y > 0, dy, 0).astype(dy.dtype) if relu_mask else dy
    pending = np.ones(y.shape, bool)
    dx = np.zeros(x.shape, dy.dtype)
    for ky, kx, v in _windows(x, kh, kw, stride):
        hit = pending & (v == y)
        pending &= ~hit
        dx[:, :, _span(ky, ho, stride), _span(kx, wo, stride)] += np.where(hit, g, 0)
    return dx
