"""The numpy engine's fast paths, which the small random cases of
test_numpy_engine.py do not reach: the float form of the int8 store
(fixedpoint.requantize8 on large tensors), both im2col layouts, weight
gradients summed in exact float32 chunks, and the im2col matrix CONV_WG
reuses from CONV_FP -- checked byte for byte against the plain reference."""
import numpy as np
import pytest

import reference
from ctrain.engine.numpy import top as numpy_top
from ctrain.engine.numpy import NumpyEngine
from ctrain.fixedpoint import SMALL, max_abs, requantize8, requantize8_even, rshift_even, rshift_round, sat8
from ctrain.isa import INSN_BYTES, INSN_DTYPE, Flag, Op
from ctrain.tools.random_insn import build_ddr


# ------------------------------------------------------------ requantize8

def _int64_form(acc, s, bias, relu, axis):
    v = acc.astype(np.int64)
    if bias is not None:
        shape = [1] * acc.ndim
        shape[axis] = -1
        v = v + bias.reshape(shape)
    if relu:
        v = np.maximum(v, 0)
    q, sat = sat8(rshift_round(v, s))
    return q, max_abs(v), sat


def _random_store(rng):
    """An accumulator above SMALL elements with a shift, bias and ReLU chosen to
    hit the corners: shifts near the natural one, zero, negative and beyond the
    clamp; biases tiny, huge (+-2^62) and on saturation thresholds."""
    dtype = np.float32 if rng.random() < 0.7 else np.float64
    amax = int(2 ** rng.uniform(0, 24 if dtype == np.float32 else 47))
    axis = int(rng.integers(2))
    shape = [int(rng.integers(1, 9)), SMALL // 4 + int(rng.integers(1, 2000))][::1 if axis == 0 else -1]
    style = rng.integers(3)
    lo, hi = (-amax, amax) if style == 0 else (0, amax) if style == 1 else (-amax, 0)
    acc = rng.integers(lo, hi + 1, (4,) + tuple(shape)).astype(dtype)  # 3-D: channel axis 1 or 2
    axis += 1
    r = rng.random()
    s = (amax.bit_length() - 7 + int(rng.integers(-5, 6)) if r < 0.6 else
         int(rng.integers(-70, 71)) if r < 0.8 else 0)
    bias = None
    if rng.random() < 0.7:
        n = acc.shape[axis]
        ss = min(max(s, 0), 54)
        corners = [-(1 << 62), 1 << 62, 0, 127 << ss, -(127 << ss) - 1, (128 << ss) - (1 << max(ss - 1, 0))]
        kind = rng.integers(3)
        if kind == 0:
            bias = rng.integers(-amax, amax + 1, n)
        elif kind == 1:
            bias = rng.integers(-(1 << 62), 1 << 62, n, dtype=np.int64)
        else:
            bias = np.array([corners[int(k)] for k in rng.integers(len(corners), size=n)], np.int64)
        bias = np.asarray(bias, np.int64)
    return acc, s, bias, bool(rng.random() < 0.5), axis


def test_requantize8_equals_the_int64_form():
    rng = np.random.default_rng(7)
    fast = 0
    for _ in range(400):
        acc, s, bias, relu, axis = _random_store(rng)
        want = _int64_form(acc, s, bias, relu, axis)
        q, peak, sat = requantize8(acc.copy(), s, bias, relu, axis)
        fast += q.dtype != np.int8
        assert np.array_equal(np.asarray(q).astype(np.int64), want[0].astype(np.int64))
        assert (peak, sat) == want[1:]
    assert fast > 100  # the float form really ran


def test_requantize8_even_equals_the_int64_form():
    """ADD's store (ties to even) on float-held exact integers equals
    sat8(rshift_even(.)) in int64, on both sides of SMALL, with ties forced
    (small shifts on odd values) and ReLU."""
    rng = np.random.default_rng(11)
    for trial in range(300):
        dtype = np.float32 if trial % 3 else np.float64
        amax = int(2 ** rng.uniform(0, 23 if dtype == np.float32 else 40))
        n = int(rng.integers(1, 3 * SMALL))
        acc = rng.integers(-amax, amax + 1, (1, n)).astype(dtype)
        s = int(rng.integers(1, 3)) if trial % 2 else int(rng.integers(-70, 71))
        relu = bool(rng.random() < 0.5)
        v = acc.astype(np.int64)
        if relu:
            v = np.maximum(v, 0)
        want, want_sat = sat8(rshift_even(v, s))
        q, peak, sat = requantize8_even(acc.copy(), s, relu)
        assert np.array_equal(np.asarray(q).astype(np.int64), want.astype(np.int64)), (trial, s)
        assert (peak, sat) == (max_abs(v), want_sat)


# ------------------------------------------------------------ whole programs

SLOTS = {"a": -7, "w": -8, "b": -14, "y": -6, "e": -12, "ea": -9, "g": -30}


def _insn(op, flags=0, **fields):
    rec = np.zeros((), INSN_DTYPE)
    rec["op"], rec["flags"] = op, flags
    for k, v in fields.items():
        rec[k] = v
    return rec


def _program(rng, n, ci, h, co, k, stride, pad, relu_between):
    """CONV_FP, optionally an in-place RELU_FP on its input (so CONV_WG must not
    reuse the columns CONV_FP built), CONV_EB, CONV_WG, all on one layer."""
    ho = (h + 2 * pad - k) // stride + 1
    act = rng.integers(-127, 128, (n, ci, h, h)).astype(np.int8)
    arrays = [("act", act),
              ("w", rng.integers(-127, 128, (co, ci, k, k)).astype(np.int8)),
              ("bias", rng.integers(-2**20, 2**20, co).astype(np.int32)),
              ("out", np.zeros((n, co, ho, ho), np.int8)),
              ("err", rng.integers(-127, 128, (n, co, ho, ho)).astype(np.int8)),
              ("din", np.zeros(act.shape, np.int8)),
              ("gw", np.zeros(co * ci * k * k, np.int32)),
              ("gb", np.zeros(co, np.int32)),
              ("stats", np.zeros(32 * 4, np.uint8)),
              ("table", np.array(list(SLOTS.values()), np.int32)),
              ("prog", np.zeros(4 * INSN_BYTES, np.uint8))]
    ddr, at = build_ddr(arrays)
    slot = {name: i for i, name in enumerate(SLOTS)}
    shape = dict(n=n, c_in=ci, h_in=h, w_in=h, c_out=co, h_out=ho, w_out=ho, k_h=k, k_w=k,
                 stride=stride, pad=pad)
    insns = [_insn(Op.CONV_FP, Flag.RELU | Flag.BIAS, **shape, src=at["act"], src2=at["w"], src3=at["bias"],
                   dst=at["out"], e_src=slot["a"], e_src2=slot["w"], e_src3=slot["b"], e_dst=slot["y"])]
    if relu_between:
        insns.append(_insn(Op.RELU_FP, count=act.size, src=at["act"], dst=at["act"], e_src=slot["a"]))
    insns.append(_insn(Op.CONV_EB, Flag.RELU_MASK, **shape, src=at["err"], src2=at["w"], aux=at["act"],
                       dst=at["din"], e_src=slot["e"], e_src2=slot["w"], e_dst=slot["ea"]))
    insns.append(_insn(Op.CONV_WG, Flag.BIAS, **shape, src=at["err"], src2=at["act"], dst=at["gw"],
                       dst2=at["gb"], e_src=slot["e"], e_src2=slot["a"], e_dst=slot["g"]))
    for j, rec in enumerate(insns):
        rec["stats"] = at["stats"] + 32 * j
        ddr[at["prog"] + j * INSN_BYTES:at["prog"] + (j + 1) * INSN_BYTES] = np.frombuffer(rec.tobytes(), np.uint8)
    return ddr, (at["prog"], len(insns), at["table"], len(SLOTS))


@pytest.mark.parametrize("n, ci, h, co, k, stride, pad, relu_between", [
    (6, 2, 24, 3, 3, 1, 1, False),   # image-major layout (rows of 24), float store, WG per image
    (3, 3, 24, 4, 5, 1, 2, True),    # the same after an in-place change of the activations
    (2, 1, 40, 3, 3, 1, 1, False),   # image-major, 1600 positions per image: WG in two spans
    (12, 6, 12, 8, 3, 1, 0, False),  # batch-last layout (rows of 10), float stores of FP and EB
    (6, 2, 29, 3, 4, 2, 1, True),    # stride 2, padding, odd sizes
    (64, 1, 6, 4, 5, 1, 2, False),   # batch-last, WG over 2304 terms in float32 chunks
])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_layer_programs_match_the_reference(n, ci, h, co, k, stride, pad, relu_between, threads, monkeypatch):
    monkeypatch.setattr(numpy_top, "PAR_WORK", 0)  # lanes however small the layer
    rng = np.random.default_rng([n, ci, h, co])
    ddr, args = _program(rng, n, ci, h, co, k, stride, pad, relu_between)
    want = ddr.copy()
    assert reference.run(want, *args) == (0, args[1], 0)
    engine = NumpyEngine(threads=threads)
    for _ in range(2):  # the second run goes through the cached plans and columns
        got = ddr.copy()
        assert tuple(engine.run(got, *args)) == (0, args[1], 0)
        diff = np.flatnonzero(got != want)
        assert diff.size == 0, f"bytes differ at {diff[:8]}"
