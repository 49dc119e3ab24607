"""Convolution and max-pool building blocks on [N, C, H, W] arrays.

Shared by the numpy engine (on float32/float64 copies of integer data, where
docs/numeric.md "Exactness" makes every sum exact) and by the host float model.
Everything is dtype-generic: results have the dtype of the data argument.
Results may be transposed views (callers that need raw bytes make them
contiguous), which saves a full copy where the caller converts anyway.

Convolutions are GEMMs against im2col matrices (`ConvGeometry`, in an
NCHW-native or a batch-last layout): each kernel offset is one strided copy
of the in-range part of every image (im2col) or one strided add (col2im), and
positions a window reaches only through the zero padding are never touched;
the geometry precomputes those ranges once, and a caller that keeps its
column buffer across calls (the numpy engine) zeroes it only once. No Python
loop ever runs over pixels, channels or images.
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


def _valid(k, pad, stride, n_in, n_out):
    """For kernel offset k: (output slice, input slice) of the output positions
    o whose input o*stride + k - pad lies inside [0, n_in); None if there are none."""
    lo = max(0, -(-(pad - k) // stride))
    hi = min(n_out, (n_in - 1 + pad - k) // stride + 1)
    if hi <= lo:
        return None
    return slice(lo, hi), _span(lo * stride + k - pad, hi - lo, stride)


class ConvGeometry:
    """Shapes and per-kernel-offset index ranges of one convolution, in one of
    two internal layouts for images and column (im2col) matrices:

    - image-major (default): images are plain NCHW [N, C, H, W] and columns
      [N] x [C, kh, kw] x [Ho, Wo], one GEMM operand per image: no layout
      change in or out, copies run along image rows (Wo long);
    - batch-last (`batch_last=True`): images [C, H, W, N], columns
      [C, kh, kw] x [Ho, Wo, N], one GEMM operand for the batch: copies run
      along whole rows of the batch (Wo * N long), better when rows are
      short, at the price of transposing NCHW data in and out.

    `offsets` lists (ky, kx, oy, ox, iy, ix): output rows/columns oy, ox read
    input rows/columns iy, ix at kernel offset (ky, kx); only offsets and
    positions that reach the (unpadded) input appear, so positions a window
    reaches only through the zero padding are never touched: a caller that
    keeps its column buffer across calls zeroes it once."""

    def __init__(self, n, c, h, w, kh, kw, stride, pad, batch_last=False):
        self.n, self.c, self.h, self.w = n, c, h, w
        self.kh, self.kw, self.stride, self.pad = kh, kw, stride, pad
        self.ho, self.wo = out_size(h, kh, stride, pad), out_size(w, kw, stride, pad)
        self.k = c * kh * kw
        self.p = self.ho * self.wo
        self.batch_last = bool(batch_last)
        if self.batch_last:
            self.cols_shape = (c, kh, kw, self.ho, self.wo, n)
        else:
            self.cols_shape = (n, c, kh, kw, self.ho, self.wo)
        self.offsets = []
        for ky in range(kh):
            rows = _valid(ky, pad, stride, h, self.ho)
            for kx in range(kw):
                cols = _valid(kx, pad, stride, w, self.wo)
                if rows is not None and cols is not None:
                    self.offsets.append((ky, kx, rows[0], cols[0], rows[1], cols[1]))

    @property
    def key(self):
        return (self.n, self.c, self.h, self.w, self.kh, self.kw, self.stride, self.pad, self.batch_last)

    @property
    def gemm_shape(self):
        """The columns as GEMM operand(s): [N, K, Ho*Wo] or [K, Ho*Wo*N]."""
        return (self.k, self.p * self.n) if self.batch_last else (self.n, self.k, self.p)

    def image_shape(self, c, h, w):
        """The layout's shape of a [N, c, h, w] tensor."""
        return (c, h, w, self.n) if self.batch_last else (self.n, c, h, w)

    def to_layout(self, x_nchw, out):
        """Copy (and cast) an NCHW tensor into `out`, shaped image_shape(...)."""
        np.copyto(out, x_nchw.transpose(1, 2, 3, 0) if self.batch_last else x_nchw, casting="unsafe")
        return out

    def nchw(self, x):
        """An NCHW view of a layout tensor."""
        return x.transpose(3, 0, 1, 2) if self.batch_last else x

    def im2col(self, x, cols):
        """Fill the in-range entries of `cols` (cols_shape) from the input `x` in
        the layout (image_shape(c, h, w)); the other entries (padding) must
        already be zero and are not written."""
        if self.batch_last:
            for ky, kx, oy, ox, iy, ix in self.offsets:
                cols[:, ky, kx, oy, ox] = x[:, iy, ix]
        else:
            for ky, kx, oy, ox, iy, ix in self.offsets:
                cols[:, :, ky, kx, oy, ox] = x[:, :, iy, ix]
        return cols

    def col2im(self, cols, dx):
        """dx (image_shape(c, h, w)) = sum over kernel offsets of the columns
        (cols_shape) at the input positions they came from (positions no window
        reaches get 0)."""
        dx[...] = 0
        if self.batch_last:
            for ky, kx, oy, ox, iy, ix in self.offsets:
                dx[:, iy, ix] += cols[:, ky, kx, oy, ox]
        else:
            for ky, kx, oy, ox, iy, ix in self.offsets:
                dx[:, :, iy, ix] += cols[:, :, ky, kx, oy, ox]
        return dx


def _geometry(x_shape, k_hw, stride, pad):
    n, c, h, w = x_shape
    kh, kw = _pair(k_hw)
    return ConvGeometry(n, c, h, w, kh, kw, stride, pad)


def _columns(x, g):
    """Image-major columns [N, C*kh*kw, Ho*Wo] of an NCHW array."""
    return g.im2col(x, np.zeros(g.cols_shape, x.dtype)).reshape(g.gemm_shape)


def conv2d(x, w, stride, pad):
    """Cross-correlation with zero padding: y[n,co,oy,ox] =
    sum w[co,ci,ky,kx] * x[n,ci,oy*stride+ky-pad,ox*stride+kx-pad]."""
    co = w.shape[0]
    g = _geometry(x.shape, w.shape[2:], stride, pad)
    y = np.matmul(w.reshape(co, -1).astype(x.dtype, copy=False), _columns(x, g))
    return y.reshape(g.n, co, g.ho, g.wo)


def conv2d_grad_input(dy, w, in_hw, stride, pad):
    """Gradient of conv2d w.r.t. its input, shape [N, Ci, H, W] for in_hw = (H, W).

    Input positions no output window reaches (stride not dividing H+2p-k) get 0."""
    n, co = dy.shape[:2]
    _, ci, kh, kw = w.shape
    g = ConvGeometry(n, ci, in_hw[0], in_hw[1], kh, kw, stride, pad)
    wt = w.reshape(co, -1).T.astype(dy.dtype, copy=False)
    cols = np.matmul(wt, dy.reshape(n, co, -1)).reshape(g.cols_shape)
    return g.col2im(cols, np.empty((n, ci) + tuple(in_hw), dy.dtype))


def conv2d_grad_weight(dy, x, k_hw, stride, pad):
    """Gradient of conv2d w.r.t. its weights, shape [Co, Ci, kh, kw]."""
    co = dy.shape[1]
    g = _geometry(x.shape, k_hw, stride, pad)
    dw = np.tensordot(dy.reshape(g.n, co, -1).astype(x.dtype, copy=False), _columns(x, g),
                      axes=([0, 2], [0, 2]))
    return dw.reshape(co, g.c, g.kh, g.kw)


def _windows(x, kh, kw, stride):
    """(ky, kx, view of x at that offset of every pool window), row-major order."""
    ho, wo = out_size(x.shape[2], kh, stride), out_size(x.shape[3], kw, stride)
    for ky in range(kh):
        for kx in range(kw):
            yield ky, kx, x[:, :, _span(ky, ho, stride), _span(kx, wo, stride)]


def maxpool2d(x, k, stride, out=None):
    """Max over kh x kw windows `stride` apart, no padding, floor output size
    (into `out` when given; it must not overlap x)."""
    kh, kw = _pair(k)
    views = _windows(x, kh, kw, stride)
    first = next(views)[2]
    if out is None:
        y = first.copy()
    else:
        y = out
        y[...] = first
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
    if stride >= kh and stride >= kw:  # disjoint windows: every input gets at most one term
        return maxpool2d_route(g, x, y, (kh, kw), stride, np.zeros(x.shape, dy.dtype))
    pending = np.ones(y.shape, bool)
    dx = np.zeros(x.shape, dy.dtype)
    for ky, kx, v in _windows(x, kh, kw, stride):
        hit = pending & (v == y)
        pending &= ~hit
        dx[:, :, _span(ky, ho, stride), _span(kx, wo, stride)] += g * hit
    return dx


def maxpool2d_route(g, x, y, k, stride, dx):
    """Disjoint windows only (stride >= kh, kw): write g[n,c,oy,ox] at the first
    maximum y of each window of x into dx, whose other entries must be zero."""
    kh, kw = _pair(k)
    ho, wo = y.shape[2:]
    pending = None
    for ky, kx, v in _windows(x, kh, kw, stride):
        hit = v == y
        if pending is None:
            pending = ~hit
        else:
            hit &= pending
            pending &= ~hit
        np.multiply(g, hit, out=dx[:, :, _span(ky, ho, stride), _span(kx, wo, stride)])
    return dx


def avgpool2d(x, k, stride):
    """Mean of every k_h x k_w window (no padding), float32 for the float path."""
    kh, kw = _pair(k)
    ho, wo = out_size(x.shape[2], kh, stride), out_size(x.shape[3], kw, stride)
    y = np.zeros(x.shape[:2] + (ho, wo), np.float32)
    for ky in range(kh):
        for kx in range(kw):
            y += x[:, :, _span(ky, ho, stride), _span(kx, wo, stride)]
    return y * np.float32(1.0 / (kh * kw))


def avgpool2d_grad(dy, in_hw, k, stride):
    """avgpool2d's input gradient: each window's dy / (k_h*k_w) over the window."""
    kh, kw = _pair(k)
    ho, wo = dy.shape[2:]
    g = dy * np.float32(1.0 / (kh * kw))
    dx = np.zeros(dy.shape[:2] + tuple(in_hw), np.float32)
    for ky in range(kh):
        for kx in range(kw):
            dx[:, :, _span(ky, ho, stride), _span(kx, wo, stride)] += g
    return dx
