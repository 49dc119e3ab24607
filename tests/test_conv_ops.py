"""conv_ops against naive per-pixel loops in float64 on random shapes."""
import numpy as np
import pytest

from ctrain import conv_ops


def naive_conv(x, w, s, p):
    n, ci, h, wd = x.shape
    co, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    ho, wo = (h + 2 * p - kh) // s + 1, (wd + 2 * p - kw) // s + 1
    y = np.zeros((n, co, ho, wo))
    for b in range(n):
        for o in range(co):
            for oy in range(ho):
                for ox in range(wo):
                    y[b, o, oy, ox] = np.sum(xp[b, :, oy * s:oy * s + kh, ox * s:ox * s + kw] * w[o])
    return y


def naive_grad_input(dy, w, hw, s, p):
    n, co, ho, wo = dy.shape
    _, ci, kh, kw = w.shape
    dxp = np.zeros((n, ci, hw[0] + 2 * p, hw[1] + 2 * p))
    for b in range(n):
        for o in range(co):
            for oy in range(ho):
                for ox in range(wo):
                    dxp[b, :, oy * s:oy * s + kh, ox * s:ox * s + kw] += dy[b, o, oy, ox] * w[o]
    return dxp[:, :, p:p + hw[0], p:p + hw[1]]


def naive_grad_weight(dy, x, k, s, p):
    n, co, ho, wo = dy.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dw = np.zeros((co, x.shape[1]) + k)
    for b in range(n):
        for o in range(co):
            for oy in range(ho):
                for ox in range(wo):
                    win = xp[b, :, oy * s:oy * s + k[0], ox * s:ox * s + k[1]]
                    dw[o] += dy[b, o, oy, ox] * win
    return dw


def naive_pool(x, k, s):
    n, c, h, w = x.shape
    ho, wo = (h - k[0]) // s + 1, (w - k[1]) // s + 1
    y = np.zeros((n, c, ho, wo), x.dtype)
    for idx in np.ndindex(n, c, ho, wo):
        b, ch, oy, ox = idx
        y[idx] = x[b, ch, oy * s:oy * s + k[0], ox * s:ox * s + k[1]].max()
    return y


def naive_pool_grad(dy, x, k, s, relu_mask):
    dx = np.zeros(x.shape, dy.dtype)
    for idx in np.ndindex(dy.shape):
        b, ch, oy, ox = idx
        win = x[b, ch, oy * s:oy * s + k[0], ox * s:ox * s + k[1]]
        ky, kx = np.unravel_index(np.argmax(win), win.shape)  # first maximum
        if relu_mask and win[ky, kx] <= 0:
            continue
        dx[b, ch, oy * s + ky, ox * s + kx] += dy[idx]
    return dx


def random_conv(rng):
    kh, kw = rng.integers(1, 6, 2)
    s, p = int(rng.integers(1, 4)), int(rng.integers(0, min(kh, kw)))
    h, w = (int(rng.integers(max(1, k - 2 * p), 11)) for k in (kh, kw))
    n, ci, co = rng.integers(1, 4, 3)
    x = rng.standard_normal((n, ci, h, w))
    wt = rng.standard_normal((co, ci, kh, kw))
    ho, wo = (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1
    dy = rng.standard_normal((n, co, ho, wo))
    return x, wt, dy, s, p


@pytest.mark.parametrize("seed", range(40))
def test_convolutions_match_naive_loops(seed):
    x, w, dy, s, p = random_conv(np.random.default_rng(seed))
    k = w.shape[2:]
    np.testing.assert_allclose(conv_ops.conv2d(x, w, s, p), naive_conv(x, w, s, p), atol=1e-12)
    np.testing.assert_allclose(conv_ops.conv2d_grad_input(dy, w, x.shape[2:], s, p),
                               naive_grad_input(dy, w, x.shape[2:], s, p), atol=1e-12)
    np.testing.assert_allclose(conv_ops.conv2d_grad_weight(dy, x, k, s, p),
                               naive_grad_weight(dy, x, k, s, p), atol=1e-12)


def test_grad_input_leaves_unreached_rows_zero():
    """k=2, stride 3 on 7 rows: rows 2 and 5 are in no window."""
    dy = np.ones((1, 1, 2, 2))
    dx = conv_ops.conv2d_grad_input(dy, np.ones((1, 1, 2, 2)), (7, 7), 3, 0)
    assert dx.shape == (1, 1, 7, 7)
    assert not dx[0, 0, [2, 5, 6]].any() and not dx[0, 0, :, [2, 5, 6]].any()
    assert dx[0, 0, :2, :2].sum() == 4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_result_dtype_follows_data(dtype):
    x, w, dy, s, p = random_conv(np.random.default_rng(0))
    x, dy = x.astype(dtype), dy.astype(dtype)
    assert conv_ops.conv2d(x, w, s, p).dtype == dtype
    assert conv_ops.conv2d_grad_input(dy, w, x.shape[2:], s, p).dtype == dtype
    assert conv_ops.conv2d_grad_weight(dy, x, w.shape[2:], s, p).dtype == dtype


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("dtype", [np.int64, np.float64])
def test_maxpool_matches_naive_loops(seed, dtype):
    rng = np.random.default_rng(seed)
    k = tuple(int(v) for v in rng.integers(1, 5, 2))
    s = int(rng.integers(1, 4))
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)),
             int(rng.integers(k[0], 11)), int(rng.integers(k[1], 11)))
    x = rng.integers(-2, 3, shape).astype(dtype)  # narrow range: many tied maxima
    dy = rng.integers(-50, 50, naive_pool(x, k, s).shape).astype(dtype)
    np.testing.assert_array_equal(conv_ops.maxpool2d(x, k, s), naive_pool(x, k, s))
    for mask in (False, True):
        got = conv_ops.maxpool2d_grad(dy, x, k, s, relu_mask=mask)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, naive_pool_grad(dy, x, k, s, mask))


def test_maxpool_square_kernel_as_int():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(conv_ops.maxpool2d(x, 2, 2), [[[[5, 7], [13, 15]]]])
