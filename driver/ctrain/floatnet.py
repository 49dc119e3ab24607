"""Float32 numpy training of a model: the warm-up before fixed point and
the fp32 baseline. It runs the same stages as the accelerator (a layer graph:
each stage reads the tensors its `inputs` name) and records the magnitude of
every tensor, which seeds the fixed-point exponents."""
import numpy as np

from . import conv_ops
from .engine.numpy import host_kernels as hk
from .lanes import Lanes, set_blas_threads
from .model import Linear, error_needed, geometry


#: Output maps with fewer positions than this get their weight gradient as one
#: GEMM over images and positions (measured: a 1x1 map's per-image GEMMs are
#: outer products, 300x slower than one GEMM on CNV's last convolution).
SMALL_MAP = 64
#: Column elements per tile of images whose input gradient is computed and
#: folded back (col2im) while in cache (1 MiB of float32; at least one image).
DX_TILE_ELEMS = 1 << 18
#: Images per weight-gradient partial sum. The partials are added in chunk
#: order whatever the number of lanes, so the float warm-up gives the same bits
#: on a laptop and a many-core machine (docs/numeric.md).
WG_CHUNK = 16


def top_of(x):
    """Smallest t with max|x| < 2^t (None for an all-zero tensor)."""
    m = max(float(np.max(x)), -float(np.min(x))) if x.size else 0.0  # max|x| without an |x| copy
    if not np.isfinite(m):
        raise FloatingPointError("non-finite value")
    if m == 0.0:
        return None
    return int(np.floor(np.log2(m))) + 1


def softmax_xent(logits, labels):
    """Mean softmax cross-entropy and its gradient w.r.t. the logits (float64)."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    ez = np.exp(z)
    p = ez / ez.sum(axis=1, keepdims=True)
    n = z.shape[0]
    loss = -np.log(np.maximum(p[np.arange(n), labels], 1e-300)).mean()
    g = p
    g[np.arange(n), labels] -= 1.0
    return float(loss), g / n


class FloatNet:
    """Forward/backward/SGD over the model's stages in float32.

    The optimizer is the one the fixed-point UPDATE implements:
    v = mu*v + lr*(g + wd*w); w = w - v. The first `freeze` param layers (and
    the batch norms before the first trained one) stay fixed, and backward
    stops at the first trained layer, as the compiled program does."""

    def __init__(self, model, params, freeze=0, host_kernels=None):
        self.model = model
        # host_lib's im2col, col2im and 2x2 pool backward (the same bits as
        # conv_ops' numpy forms; False: those numpy forms)
        self.host_kernels = hk.FLOAT_AVAILABLE if host_kernels is None else bool(host_kernels) and hk.FLOAT_AVAILABLE
        self.params = params
        self.freeze = freeze
        # tensors whose error backward computes (those with a trained layer upstream)
        self.needed = error_needed(model.stages, freeze)
        self.velocity = [{k: (None if v is None else np.zeros_like(v)) for k, v in p.items()} for p in params]
        self.masks = None  # keep-masks per layer once pruned
        self.bn = [{"gamma": np.ones(st.layer.num_features, np.float32),
                    "beta": np.zeros(st.layer.num_features, np.float32),
                    "mean": np.zeros(st.layer.num_features, np.float32),
                    "var": np.ones(st.layer.num_features, np.float32)} for st in model.bn_stages]
        self.bn_velocity = [{"gamma": np.zeros_like(b["gamma"]), "beta": np.zeros_like(b["beta"])} for b in self.bn]
        self.bn_frozen = False  # frozen when fixed point starts: statistics from the float phase
        self._bn_sums = None    # per batch norm [sum of means, sum of variances, batches] while recalibrating
        self.lanes = Lanes()  # convolutions split over images on every core
        self._colbuf = {}     # (stage, input shape) -> (geometry, im2col buffer, backward buffer)

    def load_state(self, params, bn=()):
        """Copy float weights ([{"w", "b"}]) and batch-norm state ([{"gamma", "beta", "mean", "var"}]) in."""
        for dst, src in zip(self.params, params):
            for k in ("w", "b"):
                if dst[k] is not None:
                    dst[k][...] = src[k]
        for dst, src in zip(self.bn, bn):
            for k, v in src.items():
                dst[k][...] = v

    def bn_affine(self, k):
        """(A, B) with BN(x) = x*A + B per channel, from the running statistics."""
        st, b = self.model.bn_stages[k], self.bn[k]
        a = b["gamma"] / np.sqrt(b["var"] + np.float32(st.layer.eps))
        return a.astype(np.float32), (b["beta"] - b["mean"] * a).astype(np.float32)

    def _bn_forward(self, st, x, train):
        b = self.bn[st.bn_index]
        if not train or self.bn_frozen or (self.freeze and not self.needed[st.index + 1]):
            a, c = self.bn_affine(st.bn_index)
            return x * a[None, :, None, None] + c[None, :, None, None], None
        mean = x.mean(axis=(0, 2, 3), dtype=np.float64)
        var = x.var(axis=(0, 2, 3), dtype=np.float64)
        m = st.layer.momentum
        n = x.size // x.shape[1]
        if self._bn_sums is None:
            b["mean"] = ((1 - m) * b["mean"] + m * mean).astype(np.float32)
            b["var"] = ((1 - m) * b["var"] + m * var * n / max(n - 1, 1)).astype(np.float32)
        else:  # recalibrating: the batch's statistics summed, the running ones set at the end
            sums = self._bn_sums[st.bn_index]
            sums[0] += mean
            sums[1] += var * n / max(n - 1, 1)
            sums[2] += 1
        inv = (1.0 / np.sqrt(var + st.layer.eps)).astype(np.float32)
        xhat = (x - mean[None, :, None, None].astype(np.float32)) * inv[None, :, None, None]
        return xhat * b["gamma"][None, :, None, None] + b["beta"][None, :, None, None], (xhat, inv)

    def _bn_backward(self, st, err, cache):
        k = st.bn_index
        if cache is None:  # frozen: a fixed per-channel scale
            return err * self.bn_affine(k)[0][None, :, None, None], None
        xhat, inv = cache
        g = self.bn[k]["gamma"]
        m = err.size // err.shape[1]
        dbeta = err.sum(axis=(0, 2, 3))
        dgamma = (err * xhat).sum(axis=(0, 2, 3))
        dx = (g * inv)[None, :, None, None] / m * (m * err - dbeta[None, :, None, None]
                                                     - xhat * dgamma[None, :, None, None])
        return dx, {"gamma": dgamma.astype(np.float32), "beta": dbeta.astype(np.float32)}

    def prune(self, masks):
        """Zero the pruned weights and their velocity; they stay zero after every step."""
        self.masks = [np.asarray(m, bool) for m in masks]
        self._apply_masks()

    def _apply_masks(self):
        if self.masks is not None:
            for p, v, m in zip(self.params, self.velocity, self.masks):
                p["w"] *= m
                v["w"] *= m

    # -- convolutions: im2col buffers kept per stage, lanes over images -------
    def _columns(self, index, x, k_hw, stride, pad):
        """(geometry, im2col buffer, per-lane tiles) of stage `index` on inputs
        shaped like x; the im2col buffer is zeroed once (the numpy im2col never
        writes padding entries) and, after a forward, holds that input's columns."""
        key = (index, x.shape)
        ent = self._colbuf.get(key)
        if ent is None:
            if len(self._colbuf) >= 64:  # e.g. many prediction batch sizes
                self._colbuf.clear()
            n, c, h, w = x.shape
            g = conv_ops.ConvGeometry(n, c, h, w, k_hw[0], k_hw[1], stride, pad)
            ent = self._colbuf[key] = (g, np.zeros(g.cols_shape, np.float32), {})
        return ent

    def _fast(self, *arrays):
        """Whether host_lib's float kernels take these operands (float32, C-contiguous)."""
        return self.host_kernels and all(a.dtype == np.float32 and a.flags.c_contiguous for a in arrays)

    def _conv_forward(self, index, x, w, stride, pad):
        g, cols, _ = self._columns(index, x, w.shape[2:], stride, pad)
        co = w.shape[0]
        w2 = w.reshape(co, -1)
        y = np.empty((g.n, co, g.p), np.float32)
        if self._fast(x):
            xp, cp = hk.ptr(x), hk.ptr(cols)

        def lane(_, a, b):
            if self._fast(x):
                hk.lib.ctrain_im2col_nchw_f32(xp, g.c, g.h, g.w, g.kh, g.kw, g.stride, g.pad, g.ho, g.wo, a, b, cp)
            else:
                g.im2col(x[a:b], cols[a:b])
            np.matmul(w2, cols[a:b].reshape(b - a, g.k, g.p), out=y[a:b])
        self.lanes.run(lane, g.n)
        return y.reshape(g.n, co, g.ho, g.wo)

    def _conv_backward(self, index, err, x, w, stride, pad, need_dx):
        """(weight gradient, input gradient or None) from the columns the
        forward of this stage left in its buffer. The input gradient goes per
        tile of images: its columns (a GEMM per image, as over the whole batch)
        are folded back (col2im) while in cache."""
        g, cols, tiles = self._columns(index, x, w.shape[2:], stride, pad)
        co = w.shape[0]
        e = err.reshape(g.n, co, g.p)
        wt = w.reshape(co, -1).T
        dx = np.empty(x.shape, np.float32) if need_dx else None
        step = max(1, DX_TILE_ELEMS // (g.k * g.p))
        fast = need_dx and self._fast(dx)

        def chunk_gw(a, b):
            c = cols[a:b].reshape(b - a, g.k, g.p)
            if g.p < SMALL_MAP:  # one GEMM over (images x positions): per-image products would be outer products
                return np.tensordot(e[a:b], c, axes=([0, 2], [0, 2]))
            return np.matmul(e[a:b], c.transpose(0, 2, 1)).sum(axis=0)  # a GEMM per image, summed

        def lane(k, ca, cb):
            a, b = ca * WG_CHUNK, min(cb * WG_CHUNK, g.n)
            if need_dx:
                tile = tiles.get(k)
                if tile is None or tile.shape[0] < min(step, b - a):
                    tile = tiles[k] = np.empty((min(step, b - a), g.k, g.p), np.float32)
                for t in range(a, b, step):
                    u = min(t + step, b)
                    d = np.matmul(wt, e[t:u], out=tile[:u - t])
                    if fast:
                        hk.lib.ctrain_col2im_nchw_f32(hk.ptr(d), g.c, g.kh, g.kw, g.ho, g.wo, g.h, g.w, g.stride,
                                                      g.pad, 0, u - t, hk.ptr(dx[t:u]))
                    else:
                        g.col2im(d.reshape((u - t,) + g.cols_shape[1:]), dx[t:u])
            return [chunk_gw(t, min(t + WG_CHUNK, b)) for t in range(a, b, WG_CHUNK)]
        parts = [gw for lane_parts in self.lanes.run(lane, -(-g.n // WG_CHUNK)) for gw in lane_parts]
        gw = parts[0]
        for part in parts[1:]:  # chunk order: the same sum for any lane count
            gw += part
        return gw.reshape(w.shape), dx

    def _maxpool_grad(self, err, x, k, s):
        """conv_ops.maxpool2d_grad; the 2x2 stride-2 window in host_lib (the same bits)."""
        if k in (2, (2, 2)) and s == 2 and self._fast(err, x):
            dx = np.empty(x.shape, np.float32)
            n, c, h, w = x.shape
            hk.lib.ctrain_maxpool_bp_2x2_f32(hk.ptr(err), hk.ptr(x), n * c, h, w, err.shape[2], err.shape[3],
                                             hk.ptr(dx))
            return dx
        return conv_ops.maxpool2d_grad(err, x, k, s)

    # -- forward / backward --------------------------------------------------
    def forward(self, x, keep=False):
        """keep=True is a training forward: batch statistics for BN (until
        frozen) and every activation kept for backward."""
        acts = [x]
        self._bn_cache = [None] * len(self.bn)
        for st in self.model.stages:
            a = acts[st.inputs[0]]
            if st.kind == "param":
                p = self.params[st.param_index]
                k, s, pad = geometry(st)
                if isinstance(st.layer, Linear):
                    a2 = a.reshape(a.shape[0], -1)
                    y = (a2 @ p["w"].reshape(p["w"].shape[0], -1).T)[:, :, None, None]
                else:
                    y = self._conv_forward(st.index, a, p["w"], s, pad)
                if p["b"] is not None:
                    y = y + p["b"][None, :, None, None]
                if st.relu:
                    y = np.maximum(y, 0)
            elif st.kind == "pool":
                k, s, _ = geometry(st)
                y = conv_ops.maxpool2d(a, k, s)
            elif st.kind == "bn":
                y, self._bn_cache[st.bn_index] = self._bn_forward(st, a, keep)
                if st.relu:
                    y = np.maximum(y, 0)
            elif st.kind == "add":
                y = a + acts[st.inputs[1]]
                if st.relu:
                    y = np.maximum(y, 0)
            elif st.kind == "avgpool":
                kh, kw, s, _ = st.geom
                y = conv_ops.avgpool2d(a, (kh, kw), s)
            else:
                y = np.maximum(a, 0)
            acts.append(y.astype(np.float32, copy=False))
        if keep:
            self._acts = acts
        return acts[-1].reshape(x.shape[0], -1)

    def backward(self, dlogits):
        """Gradients per param stage, and the error tensor at every stage
        output. A tensor read by several stages (a residual fork) gets the sum
        of their errors; a fused ReLU's mask is applied to its stage's output
        error before the stage propagates it (the errors kept are masked, as
        the accelerator's are)."""
        acts = self._acts
        stages = self.model.stages
        grads = [None] * len(self.params)
        self._bn_grads = [None] * len(self.bn)
        errs = [None] * len(acts)
        errs[-1] = dlogits.astype(np.float32).reshape(acts[-1].shape)
        needed = self.needed

        def give(t, dx):
            if needed[t]:
                dx = dx.astype(np.float32, copy=False)
                errs[t] = dx if errs[t] is None else errs[t] + dx
        for st in reversed(stages):
            i = st.index
            err = errs[i + 1]
            if err is None:   # nothing after this stage depends on it
                continue
            y = acts[i + 1]
            if st.relu:
                err = errs[i + 1] = err * (y > 0)
            x = acts[st.inputs[0]]
            u = st.inputs[0]
            if st.kind == "param":
                p = self.params[st.param_index]
                k, s, pad = geometry(st)
                n = x.shape[0]
                if isinstance(st.layer, Linear):
                    x2, e2 = x.reshape(n, -1), err.reshape(n, -1)
                    gw = (e2.T @ x2).reshape(p["w"].shape)
                    if needed[u]:
                        give(u, (e2 @ p["w"].reshape(p["w"].shape[0], -1)).reshape(x.shape))
                else:
                    gw, dx = self._conv_backward(i, err, x, p["w"], s, pad, needed[u])
                    if needed[u]:
                        give(u, dx)
                gb = err.sum(axis=(0, 2, 3)) if p["b"] is not None else None
                grads[st.param_index] = {"w": gw.astype(np.float32), "b": None if gb is None else gb.astype(np.float32)}
            elif st.kind == "pool":
                k, s, _ = geometry(st)
                give(u, self._maxpool_grad(err, x, k, s))
            elif st.kind == "avgpool":
                kh, kw, s, _ = st.geom
                give(u, conv_ops.avgpool2d_grad(err, x.shape[2:], (kh, kw), s))
            elif st.kind == "bn":
                dx, self._bn_grads[st.bn_index] = self._bn_backward(st, err, self._bn_cache[st.bn_index])
                give(u, dx)
            elif st.kind == "add":
                give(u, err)
                give(st.inputs[1], err)
            else:
                give(u, err * (y > 0))
        self._errs = errs
        return grads

    def step(self, grads, lr, momentum, weight_decay):
        for p, v, g in zip(self.params, self.velocity, grads):
            for key in ("w", "b"):
                if p[key] is None or g is None:  # no gradient: a frozen layer
                    continue
                v[key] *= np.float32(momentum)
                v[key] += np.float32(lr) * (g[key] + np.float32(weight_decay) * p[key])
                p[key] -= v[key]
        for b, v, g in zip(self.bn, self.bn_velocity, self._bn_grads):
            if g is not None:  # gamma and beta train until BN is frozen
                for key in ("gamma", "beta"):
                    v[key] *= np.float32(momentum)
                    v[key] += np.float32(lr) * g[key]
                    b[key] -= v[key]
        self._apply_masks()

    def train_batch(self, x, y, lr, momentum, weight_decay):
        # The lanes are the parallelism; single-threaded BLAS also keeps the bits
        # the same on any machine (a threaded GEMM may take other kernels).
        restore = set_blas_threads(1)
        try:
            logits = self.forward(x, keep=True)
            loss, g = softmax_xent(logits, y)
            if not np.isfinite(loss):
                raise FloatingPointError("loss is not finite")
            grads = self.backward(g)
        finally:
            restore()
        self.step(grads, lr, momentum, weight_decay)
        return loss, logits

    def recalibrate_bn(self, batches):
        """Re-estimate every trained batch norm's running mean and variance on
        the current weights: the mean over `batches` (image arrays) of each
        batch's statistics, gamma and beta kept (adaptive batch norm after
        pruning, as in Li et al., EagleEye, ECCV 2020).  A frozen batch norm
        otherwise keeps normalising with the statistics of the unpruned
        network.  Batch norms a fine-tuning freeze keeps fixed are left alone."""
        self._bn_sums = [[np.zeros(b["mean"].shape), np.zeros(b["var"].shape), 0] for b in self.bn]
        frozen, self.bn_frozen = self.bn_frozen, False
        try:
            for x in batches:
                self.forward(x, keep=True)
            for b, (m, v, k) in zip(self.bn, self._bn_sums):
                if k:
                    b["mean"] = (m / k).astype(np.float32)
                    b["var"] = (v / k).astype(np.float32)
        finally:
            self._bn_sums = None
            self.bn_frozen = frozen

    def calibrate(self, x, y):
        """Forward and backward on one batch without a step: the tensor
        magnitudes (tops) that seed fixed point when there was no warm-up."""
        self.backward(softmax_xent(self.forward(x, keep=True), y)[1])
        return self.tensor_tops()

    def tensor_tops(self):
        """Magnitudes (tops) of the last batch's activations and errors per stage output."""
        return ([top_of(a) for a in self._acts], [None if e is None else top_of(e) for e in self._errs])

    def predict(self, x, batch_size=256):
        out = []
        for i in range(0, len(x), batch_size):
            out.append(self.forward(x[i:i + batch_size]))
        return np.concatenate(out)
