"""host_lib's fused kernels (host_lib/ctrain_kernels.c, ctrain_gemm.c) against
the numpy forms they replace, value for value: the engine with and without
them on random cases of every opcode, and each kernel on shapes the random
cases do not reach (batch-last layouts, float64 sums, strides, padding,
remainders of the register blocks, saturation, negative shifts)."""
import numpy as np
import pytest

import conftest
from ctrain import conv_ops
from ctrain.engine.numpy import NumpyEngine, host_kernels as hk
from ctrain.engine.numpy.conv import _gemm_exact
from ctrain.fixedpoint import clamp_shift, requantize8, rshift_even, rshift_round, sat8
from ctrain.isa import Op
from ctrain.tools.random_insn import OPS, random_case

pytestmark = pytest.mark.skipif(not hk.AVAILABLE, reason="ctrain._host built without the kernels")

WITH, WITHOUT = NumpyEngine(host_kernels=True), NumpyEngine(host_kernels=False)
#: Opcodes whose fast kernel takes host_lib in some case.
C_OPS = {Op.CONV_FP, Op.CONV_EB, Op.CONV_WG, Op.UPDATE, Op.POOL_FP, Op.POOL_BP, Op.BN_FP, Op.BN_BP, Op.ADD}


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_engine_with_and_without_kernels(op):
    ran_c = 0
    for seed in range(60):
        case = random_case(np.random.default_rng([seed, int(op), 15]), op)
        got, want = conftest.run_case(WITH, case), conftest.run_case(WITHOUT, case)
        assert got[0] == want[0], seed
        assert np.array_equal(got[1], want[1]), seed
        ran_c = WITH.paths[int(op), "host C"]
    assert (ran_c > 0) == (op in C_OPS)
    assert WITHOUT.paths[int(op), "host C"] == 0


def _ints(rng, shape, lo=-128, hi=128, dtype=np.float32):
    return rng.integers(lo, hi, shape).astype(dtype)


@pytest.mark.parametrize("m,k,n,batch", [(6, 25, 784, 3), (16, 150, 37, 1), (7, 1, 16, 2), (1, 1024, 15, 1),
                                         (13, 17, 33, 4)])
def test_gemm_exact(m, k, n, batch):
    rng = np.random.default_rng(m * k + n)
    a, b = _ints(rng, (m, k)), _ints(rng, (batch, k, n))
    b[..., 0] = -128  # the largest products
    a[:, :] = np.where(rng.random((m, k)) < 0.3, -128, a)
    out = np.full((batch, m, n), np.nan, np.float32)
    hk.gemm(a, b, out)
    assert np.array_equal(out, (a.astype(np.float64) @ b.astype(np.float64)).astype(np.float32))


@pytest.mark.parametrize("m,n,t,batch", [(6, 25, 784, 3), (16, 150, 6400, 1), (5, 7, 2049, 2), (1, 1, 3, 1)])
def test_gram_exact(m, n, t, batch):
    rng = np.random.default_rng(t)
    a, b = _ints(rng, (batch, m, t)), _ints(rng, (batch, n, t))
    a[..., :t // 2] = -128
    b[..., :t // 2] = -128  # every term 2^14: float32 partial sums up to 2^24
    out = np.zeros((m, n + 3), np.float64)
    hk.gram(a, b, out, 2)
    want = np.einsum("bit,bjt->ij", a.astype(np.float64), b.astype(np.float64))
    assert np.array_equal(out[:, 2:2 + n], want)
    assert not out[:, :2].any() and not out[:, 2 + n:].any()


@pytest.mark.parametrize("geom", [(5, 3, 9, 7, 3, 3, 1, 1), (4, 2, 10, 11, 3, 3, 2, 1), (3, 4, 6, 6, 5, 5, 1, 2),
                                  (2, 3, 7, 5, 2, 3, 3, 0), (2, 1, 4, 4, 5, 5, 1, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_last", [True, False])
def test_im2col(geom, dtype, batch_last):
    g = conv_ops.ConvGeometry(*geom, batch_last=batch_last)
    rng = np.random.default_rng(sum(geom))
    x = rng.integers(-128, 128, (g.n, g.c, g.h, g.w)).astype(np.int8)
    want = g.im2col(g.to_layout(x, np.empty(g.image_shape(g.c, g.h, g.w), dtype)), np.zeros(g.cols_shape, dtype))
    got = np.full(g.cols_shape, np.nan, dtype)
    fn = hk.lib.ctrain_im2col_f32 if dtype == np.float32 else hk.lib.ctrain_im2col_f64
    total = g.c if batch_last else g.n
    for a, b in ((0, 1), (1, total)):  # two lanes over channels or images
        fn(hk.ptr(x), g.n, g.c, g.h, g.w, g.kh, g.kw, g.stride, g.pad, g.ho, g.wo, int(batch_last), a, b,
           hk.ptr(got))
    assert np.array_equal(got, want)


def _reference_store(v, shift, bias, relu, axis):
    return requantize8(v.astype(np.float64), shift, bias, relu, axis)


SHIFTS = [7, 1, 0, -3, 30, 31, 62, -62]


@pytest.mark.parametrize("shift", SHIFTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_requant_layouts(shift, dtype):
    rng = np.random.default_rng(shift + 100)
    lim = 1 << 23 if dtype == np.float32 else 1 << 40
    n, co, p = 5, 4, 9
    acc = rng.integers(-lim, lim, (n, co, p)).astype(dtype)
    acc[0, 0, :3] = [lim - 1, -lim + 1, 0]
    bias = rng.integers(-(1 << 33), 1 << 33, co)
    bias[1] = 5
    for relu in (False, True):
        q, peak, sat = _reference_store(acc.copy(), shift, bias, relu, 1)
        want = np.trunc(q).astype(np.int8)  # the stored values (a C cast)
        # image-major [N][C][P]
        dst = np.zeros((n, co, p), np.int8)
        got = hk.requant(acc, bias, hk.ffi.NULL, relu, clamp_shift(shift), (n, co, p, 1), hk.ptr(dst),
                         (co * p, p, 1, 0))
        assert got == (peak, sat, int(np.count_nonzero(want))) and np.array_equal(dst, want)
        # batch-last [C][P][N] into NCHW
        bl = np.ascontiguousarray(acc.transpose(1, 2, 0))
        dst = np.zeros((n, co, p), np.int8)
        got = hk.requant(bl, bias, hk.ffi.NULL, relu, clamp_shift(shift), (1, co, p, n), hk.ptr(dst),
                         (0, p, 1, co * p))
        assert got == (peak, sat, int(np.count_nonzero(want))) and np.array_equal(dst, want)


@pytest.mark.parametrize("geom", [(3, 2, 9, 7, 3, 3, 1, 1), (4, 3, 10, 11, 3, 3, 2, 1), (2, 2, 7, 5, 2, 3, 3, 0)])
@pytest.mark.parametrize("batch_last", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_col2im_requant(geom, batch_last, dtype):
    g = conv_ops.ConvGeometry(*geom, batch_last=batch_last)
    rng = np.random.default_rng(sum(geom) + batch_last)
    cols = rng.integers(-(1 << 20), 1 << 20, g.cols_shape).astype(dtype)
    mask = rng.integers(-2, 3, (g.n, g.c, g.h, g.w)).astype(np.int8)
    shift = 9
    x = g.col2im(cols, np.empty(g.image_shape(g.c, g.h, g.w), dtype))
    x = g.nchw(x).copy()
    x[mask <= 0] = 0
    q, peak, sat = _reference_store(x.reshape(g.n, -1), shift, None, False, 0)
    want = np.trunc(q).astype(np.int8).reshape(x.shape)
    dst = np.zeros(x.shape, np.int8)
    chw = g.c * g.h * g.w
    if batch_last:
        got = hk.col2im_requant(cols, g, 1, g.c, g.n, hk.ptr(mask), shift, hk.ptr(dst), 0, g.h * g.w, chw)
    else:
        got = hk.col2im_requant(cols, g, g.n, g.c, 1, hk.ptr(mask), shift, hk.ptr(dst), chw, g.h * g.w, 0)
    assert got == (peak, sat, int(np.count_nonzero(want)))
    assert np.array_equal(dst, want)



@pytest.mark.parametrize("shape", [((5, 2304), (2304, 33)), ((4, 1025), (3, 1025, 7)), ((3, 700), (700, 9))])
def test_gemm_over_spans_exact(shape):
    """CONV_FP's float32 GEMM over spans of at most 2^10 terms, added in float64."""
    rng = np.random.default_rng(shape[0][1])
    w, b = _ints(rng, shape[0]), _ints(rng, shape[1])
    w[:, ::2] = -128
    b[..., ::2, :] = -128  # half the products 2^14: any single float32 sum of them all would round
    out32 = np.empty(b.shape[:-2] + (w.shape[0], b.shape[-1]), np.float32)
    out64 = np.empty(out32.shape, np.float64)
    got = _gemm_exact(w, b, out32, out64, True)
    assert np.array_equal(got, w.astype(np.float64) @ b.astype(np.float64))


@pytest.mark.parametrize("shift", [1, 2, 5, 0, -2, 62])
def test_add_ties_to_even(shift):
    """ctrain_add's store rounds ties to the even neighbour (docs/numeric.md
    rshift_even), not half up: every pair of int8 values, shifted 1 and 0."""
    a = np.repeat(np.arange(-128, 128, dtype=np.int8), 256)
    b = np.tile(np.arange(-128, 128, dtype=np.int8), 256)
    dst, st = np.zeros(a.size, np.int8), hk.stats()
    hk.lib.ctrain_add(hk.ptr(a), hk.ptr(b), 1, 0, hk.ffi.NULL, 0, shift, a.size, hk.ptr(dst), st)
    v = a.astype(np.int64) * 2 + b
    want, sat = sat8(rshift_even(v, shift))
    assert np.array_equal(dst, want)
    assert hk.result(st) == (int(np.abs(v).max()), sat, int(np.count_nonzero(want)))
    if shift in (1, 2):  # ties occur and half up would differ on them
        assert not np.array_equal(dst, sat8(rshift_round(v, shift))[0])


@pytest.mark.parametrize("shift", SHIFTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_store_grads(shift, dtype):
    """CONV_WG's int32 store against rshift_round + sat32: clamps both ways,
    negative shifts (saturating at 2^62 before the clamp), the peak before it."""
    from ctrain.fixedpoint import max_abs, sat32
    rng = np.random.default_rng(shift + 70)
    lim = 1 << 23 if dtype == np.float32 else 1 << 52
    g = rng.integers(-lim, lim, 301).astype(dtype)
    g[:4] = [lim - 1, -lim + 1, 0, 1]
    v = rshift_round(g.astype(np.int64), shift)
    want, sat = sat32(v)
    dst, st = np.zeros(g.size, np.int32), hk.stats()
    st[0] = 3  # the peak so far is kept when larger
    fn = hk.lib.ctrain_store_grads_f32 if dtype == np.float32 else hk.lib.ctrain_store_grads_f64
    fn(hk.ptr(g), g.size, clamp_shift(shift), hk.ptr(dst), st)
    assert np.array_equal(dst, want)
    assert hk.result(st) == (max(3, max_abs(v)), sat, int(np.count_nonzero(want)))
    if shift == -62 or (shift == -3 and dtype == np.float64):  # the clamp is exercised
        assert sat > 0


@pytest.mark.parametrize("geom", [(3, 2, 9, 7, 3, 3, 1, 1), (4, 3, 10, 11, 3, 3, 2, 1), (2, 2, 7, 5, 2, 3, 3, 0),
                                  (2, 1, 4, 4, 5, 5, 1, 2)])
def test_float_im2col_col2im(geom):
    """The float model's im2col and col2im (host_lib/ctrain_float.c) give the
    bits of conv_ops' numpy forms: the same copies, the same additions in the
    same order (sums of non-integers here, so any other order would show)."""
    g = conv_ops.ConvGeometry(*geom)
    rng = np.random.default_rng(sum(geom))
    x = rng.standard_normal((g.n, g.c, g.h, g.w)).astype(np.float32)
    want = g.im2col(x, np.zeros(g.cols_shape, np.float32))
    got = np.full(g.cols_shape, np.nan, np.float32)
    for a, b in ((0, 1), (1, g.n)):
        hk.lib.ctrain_im2col_nchw_f32(hk.ptr(x), g.c, g.h, g.w, g.kh, g.kw, g.stride, g.pad, g.ho, g.wo, a, b,
                                      hk.ptr(got))
    assert np.array_equal(got, want)
    cols = (rng.standard_normal(g.cols_shape) * 1e3).astype(np.float32)
    want = g.col2im(cols, np.empty(x.shape, np.float32))
    got = np.full(x.shape, np.nan, np.float32)
    hk.lib.ctrain_col2im_nchw_f32(hk.ptr(cols), g.c, g.kh, g.kw, g.ho, g.wo, g.h, g.w, g.stride, g.pad, 0, g.n,
                                  hk.ptr(got))
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("hw", [(6, 8), (7, 5)])
def test_float_maxpool_bp(hw):
    """The float model's 2x2 pool backward routes like conv_ops.maxpool2d_grad,
    ties (to the first maximum) and signed zeros included; odd sizes leave the
    last row/column at 0."""
    rng = np.random.default_rng(hw[0])
    x = rng.integers(-2, 3, (3, 4) + hw).astype(np.float32)  # many ties
    x[0, 0, 0, 0] = -0.0
    err = rng.standard_normal((3, 4, hw[0] // 2, hw[1] // 2)).astype(np.float32)
    want = conv_ops.maxpool2d_grad(err, x, 2, 2)
    got = np.full(x.shape, np.nan, np.float32)
    hk.lib.ctrain_maxpool_bp_2x2_f32(hk.ptr(err), hk.ptr(x), 12, hw[0], hw[1], hw[0] // 2, hw[1] // 2, hk.ptr(got))
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("model", ["lenet5-bn", "digits-cnn"])
def test_floatnet_with_and_without_kernels(model):
    """FloatNet's training steps give the same bits with host_lib's kernels
    as with conv_ops' numpy forms (padding, 2x2 pools, batch norm)."""
    from ctrain.floatnet import FloatNet
    from ctrain.model import build_model
    shape = (1, 28, 28) if model == "lenet5-bn" else (1, 8, 8)
    m = build_model(model, shape, 10)
    rng = np.random.default_rng(3)
    x = rng.random((16,) + shape, dtype=np.float32)
    y = rng.integers(0, 10, 16)
    nets = [FloatNet(m, m.init_params(np.random.default_rng(0)), host_kernels=k) for k in (True, False)]
    for _ in range(3):
        out = [net.train_batch(x, y, 0.05, 0.9, 5e-4) for net in nets]
        assert out[0][0] == out[1][0] and out[0][1].tobytes() == out[1][1].tobytes()
    for p, q in zip(nets[0].params, nets[1].params):
        assert p["w"].tobytes() == q["w"].tobytes()


def test_channel_sums():
    """CONV_WG's bias sums from int8 errors: exact per channel over images and positions."""
    rng = np.random.default_rng(5)
    e = rng.integers(-128, 128, (7, 5, 301)).astype(np.int8)
    e[:, 0] = -128
    out = np.full(5, -1, np.int64)
    hk.lib.ctrain_channel_sums_i8(hk.ptr(e), 7, 5, 301, hk.ptr(out))
    assert np.array_equal(out, e.astype(np.int64).sum(axis=(0, 2)))


@pytest.mark.parametrize("n,d", [(64, 1600), (13, 21), (8, 8), (3, 5), (64, 7)])
def test_to_batch_last(n, d):
    """NCHW int8 errors into the batch-last layout (8x8 blocks and the edges), as int8 and as float32."""
    x = np.random.default_rng(n * d).integers(-128, 128, (n, d)).astype(np.int8)
    for dt, fn in ((np.int8, hk.lib.ctrain_to_batch_last_i8), (np.float32, hk.lib.ctrain_to_batch_last_f32)):
        out = np.full((d, n), 99, dt)
        fn(hk.ptr(x), n, d, hk.ptr(out))
        assert np.array_equal(out, x.T.astype(dt))
