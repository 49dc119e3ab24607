"""Convolution and max-pool building blocks on [N, C, H, W] arrays.

Shared by the numpy engine (on float32/float64 copies of integer data, where
docs/numeric.md "Exactness" makes every sum exact) and by the host float model.
Everything is dtype-generic: results have the dtype of the data argument.
Results may be transposed views (callers that need raw bytes make them
contiguous), which saves a full copy where the caller converts anyway.

Internally images are laid out [C, H, W, N]: with the batch innermost, every
kernel offset's slice has long contiguous runs, so the per-offset copies
(im2col) and adds (col2im) are few large numpy operations. Convolutions are one
GEMM against the im2col matrix [C*kh*kw, Ho*Wo*N]; the input gradient is the
transposed GEMM followed by one strided add per kernel offset. No Python loop
ever runs over pixels.
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


def _batch_last(x, pad=0):
    """[N, C, H, W] -> zero-padded [C, H+2p, W+2p, N] (a copy)."""
    n, c, h, w = x.shape
    xt = np.zeros((c, h + 2 * pad, w + 2 * pad, n), x.dtype)
    xt[:, pad:pad + h, pad:pad + w] = x.transpose(1, 2, 3, 0)
    return xt


def _from_batch_last(y):
    """[C, H, W, N] -> [N, C, H, W] view."""
    return y.transpose(3, 0, 1, 2)


def _im2col(x, kh, kw, stride, pad, ho, wo):
    """Columns [C*kh*kw, ho*wo*N]: entry (c,ky,kx),(oy,ox,n) is the zero-padded
    input at (n, c, oy*stride+ky, ox*stride+kx)."""
    xt = _batch_last(x, pad)
    c, n = x.shape[1], x.shape[0]
    cols = np.empty((c, kh, kw, ho, wo, n), x.dtype)
    for ky in range(kh):
        for kx in range(kw):
            cols[:, ky, kx] = xt[:, _span(ky, ho, stride), _span(kx, wo, stride)]
    return cols.reshape(c * kh * kw, ho * wo * n)


def _rows(dy):
    """Output gradient [N, Co, Ho, Wo] as the GEMM operand [Co, Ho*Wo*N] (a copy)."""
    return dy.transpose(1, 2, 3, 0).reshape(dy.shape[1], -1)


def conv2d(x, w, stride, pad):
    """Cross-correlation with zero padding: y[n,co,oy,ox] =
    sum w[co,ci,ky,kx] * x[n,ci,oy*stride+ky-pad,ox*stride+kx-pad]."""
    n, _, h, wd = x.shape
    co, _, kh, kw = w.shape
    ho, wo = out_size(h, kh, stride, pad), out_size(wd, kw, stride, pad)
    cols = _im2col(x, kh, kw, stride, pad, ho, wo)
    y = w.reshape(co, -1).astype(x.dtype, copy=False) @ cols
    return _from_batch_last(y.reshape(co, ho, wo, n))


def conv2d_grad_input(dy, w, in_hw, stride, pad):
    """Gradient of conv2d w.r.t. its input, shape [N, Ci, H, W] for in_hw = (H, W).

    Input positions no output window reaches (stride not dividing H+2p-k) get 0."""
    n, co, ho, wo = dy.shape
    _, ci, kh, kw = w.shape
    h, wd = in_hw
    wt = w.transpose(2, 3, 1, 0).reshape(kh * kw * ci, co).astype(dy.dtype, copy=False)
    cols = (wt @ _rows(dy)).reshape(kh, kw, ci, ho, wo, n)
    dxt = np.zeros((ci, h + 2 * pad, wd + 2 * pad, n), dy.dtype)
    for ky in range(kh):
        for kx in range(kw):
            dxt[:, _span(ky, ho, stride), _span(kx, wo, stride)] += cols[ky, kx]
    return _from_batch_last(dxt[:, pad:pad + h, pad:pad + wd])


def conv2d_grad_weight(dy, x, k_hw, stride, pad):
    """Gradient of conv2d w.r.t. its weights, shape [Co, Ci, kh, kw]."""
    co, (kh, kw) = dy.shape[1], _pair(k_hw)
    ho, wo = dy.shape[2:]
    cols = _im2col(x, kh, kw, stride, pad, ho, wo)
    dw = _rows(dy).astype(x.dtype, copy=False) @ cols.T
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
    g = dy * (y > 0) if relu_mask else dy  # products with masks: np.where is slow
    pending = np.ones(y.shape, bool)
    dx = np.zeros(x.shape, dy.dtype)
    for ky, kx, v in _windows(x, kh, kw, stride):
        hit = pending & (v == y)
        pending &= ~hit
        dx[:, :, _span(ky, ho, stride), _span(kx, wo, stride)] += g * hit
    return dx
