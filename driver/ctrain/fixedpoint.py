"""The primitive integer operations of docs/numeric.md, vectorised over int64.

Shared by the numpy engine and the host code so both round and saturate the
same way. Shifts are per tensor (a scalar); data are arrays or scalars.

`requantize8` is the engine's fast form of the int8 store of an accumulator,
`sat8(rshift_round(relu(acc + bias), s))`, on float-held exact integers; it
computes exactly what the int64 form computes (see its docstring for why).
"""
import numpy as np

SHIFT_LIMIT = 62
Q8_MAX = 127
Q32_MAX = 2**31 - 1
_TOP = 1 << SHIFT_LIMIT


def clamp_shift(s):
    """The shift as rshift_round uses it: clamped to [-62, 62]."""
    return min(max(int(s), -SHIFT_LIMIT), SHIFT_LIMIT)


def rshift_round(x, s):
    """x * 2^-s rounded half towards +inf, s clamped to [-62, 62]; left shifts
    (s < 0) saturate at +-2^62. Returns a new int64 array (or numpy scalar),
    never x itself, so callers may modify the result in place."""
    s = clamp_shift(s)
    x = np.asarray(x, np.int64)
    if s > 0:
        y = x + (1 << (s - 1))
        y >>= s
        return y
    if s == 0:
        return x.copy()
    # Clamping to +-(2^62 >> -s) first makes the shift exact and lands beyond-range
    # values on exactly +-2^62.
    lim = _TOP >> -s
    y = np.clip(x, -lim, lim)
    y <<= -s
    return y


def rshift_even(x, s):
    """rshift_round with ties to even for s > 0 (docs/numeric.md: ADD's store,
    whose 1-2 bit shifts make ties common). A new int64 array."""
    s = clamp_shift(s)
    if s <= 0:
        return rshift_round(x, s)
    x = np.asarray(x, np.int64)
    q = x >> s
    r = x - (q << s)
    half = 1 << (s - 1)
    q += (r > half) | ((r == half) & ((q & 1) == 1))
    return q


def rshift_round_int(x, s):
    """rshift_round on one Python int (exact, for bounds and scalars)."""
    s = clamp_shift(s)
    if s > 0:
        return (x + (1 << (s - 1))) >> s
    if s == 0:
        return x
    lim = _TOP >> -s
    return _TOP if x > lim else -_TOP if x < -lim else x << -s


def rshift_round_inplace(x, s):
    """x := rshift_round(x, s) for an int64 array x whose values stay within
    +-2^62 (so adding the rounding half cannot overflow)."""
    s = clamp_shift(s)
    if s > 0:
        x += 1 << (s - 1)
        x >>= s
    elif s < 0:
        lim = _TOP >> -s
        np.clip(x, -lim, lim, out=x)
        x <<= -s
    return x


def product_bound(bound, m, s):
    """Largest |rshift_round(m * x, s)| over integers |x| <= bound (rounding is
    monotone, so the ends of the range give it)."""
    top = abs(m) * bound
    return max(abs(rshift_round_int(top, s)), abs(rshift_round_int(-top, s)))


def _saturate(x, lim, dtype):
    x = np.asarray(x, np.int64)
    if x.size == 0 or (x.min() >= -lim and x.max() <= lim):  # the common case: no clamp
        return x.astype(dtype), 0
    n = np.count_nonzero(x > lim) + np.count_nonzero(x < -lim)
    return np.clip(x, -lim, lim).astype(dtype), int(n)


def sat8(x):
    """(x clamped to [-127, 127] as int8, number of clamped elements)."""
    return _saturate(x, Q8_MAX, np.int8)


def sat32(x):
    """(x clamped to [-(2^31-1), 2^31-1] as int32, number of clamped elements)."""
    return _saturate(x, Q32_MAX, np.int32)


def max_abs(x):
    """Largest magnitude in x as a Python int (0 for an empty array); immune to
    the int8/int64 overflow of np.abs at the type's minimum."""
    if np.size(x) == 0:
        return 0
    return max(int(np.max(x)), -int(np.min(x)))


#: Integers float32 / float64 hold exactly: all of magnitude below these (one
#: more mantissa bit than stored); docs/numeric.md "Exactness" uses them.
FLOAT32_EXACT = 1 << 24
FLOAT64_EXACT = 1 << 53
_EXACT = {np.dtype(np.float32): FLOAT32_EXACT, np.dtype(np.float64): FLOAT64_EXACT}
#: Below this many elements requantize8 uses the int64 form (fewer numpy calls).
SMALL = 8192


def requantize8_even(acc, shift, relu=False):
    """requantize8 (no bias) with ADD's rshift_even: for shift > 0, acc * 2^-s
    is exact in acc's float type (a power-of-two scaling of an exact integer)
    and np.rint rounds it half to even exactly; shift <= 0 is requantize8's
    (the two rules differ only in ties). Same (q, peak, sat) contract."""
    s = clamp_shift(shift)
    if s <= 0 or acc.size <= SMALL:
        if s <= 0:
            return requantize8(acc, shift, None, relu)
        v = acc.astype(np.int64)
        if relu:
            np.maximum(v, 0, out=v)
        peak = max_abs(v)
        q, sat = sat8(rshift_even(v, s))
        return q, peak, sat
    if relu:
        np.maximum(acc, 0, out=acc)
    peak = int(max(float(acc.max()), -float(acc.min())))
    acc *= acc.dtype.type(2.0 ** -s)
    np.rint(acc, out=acc)
    over = np.abs(acc) > Q8_MAX
    sat = int(np.count_nonzero(over))
    if sat:
        np.clip(acc, -Q8_MAX, Q8_MAX, out=acc)
    return acc, peak, sat


def requantize8(acc, shift, bias=None, relu=False, axis=0):
    """The int8 store of docs/numeric.md on an accumulator held in floats:
    q = sat8(rshift_round(v, shift)) with v = acc + bias[channel] (bias
    optional, one int64 per index of `axis`, the channel axis of `acc`),
    v = max(v, 0) when `relu`.

    `acc` is a float32/float64 array (2-D or more) of exact integers (below
    2^24 resp. 2^53 in magnitude, as the engine's exact BLAS sums are; at most
    2^48 as validation bounds every sum); it is used as scratch. Returns
    (q, peak, sat): q of acc's shape, whose values truncated towards zero
    (a C cast, numpy's unsafe casting) are the stored int8 values -- acc
    itself, float, on the fast path, an int8 array otherwise; peak the
    largest |v| (a Python int); sat the number of clamped stores.

    The fast path computes in units of 2^-s and is taken only where every
    intermediate is an exact float (|value| * 2^s below 2^24 resp. 2^53);
    elsewhere the int64 form runs. With A = max|acc|:
    - s > 0: rshift_round(v, s) = floor((v + 2^(s-1)) / 2^s). Writing
      bias + 2^(s-1) = qb * 2^s + rb with 0 <= rb < 2^s (exact int64 work),
      the result is floor(acc * 2^-s + c) with c = rb * 2^-s + qb (rb is
      taken in [2^(s-1), 3 * 2^(s-1)), no carry needed). |floor((acc + rb) *
      2^-s)| <= F = (A >> s) + 2, so clamping qb to +-(F + 128) changes no
      stored value (a value beyond +-127 only moves further out on its side)
      and keeps every value, in units of 2^-s, below A + 1.5 * 2^s +
      (F + 128) * 2^s <= 2A + 131.5 * 2^s: the condition checked is
      2A + 132 * 2^s below the exact range. The power-of-two scaling and the
      sum are then exact.
    - s <= 0: rshift_round(v, s) = v * 2^-s (its +-2^62 cap saturates on the
      same side); bias clamped to +-(A + 128) keeps |v| <= 2A + 128 (exact
      within the bound) and the saturation side; the scaling is exact.
    - ReLU commutes with the shift (both monotone, 0 maps to 0): it is the
      lower clamp at 0. Once every value is >= 0 truncation is the floor, so
      the floor pass runs only for negative values without ReLU.
    - Peak and saturation come from each channel's extremes in int64 (v is
      monotone in acc within a channel), so the value passes that clamp and
      count run only where something actually clamps."""
    s = clamp_shift(shift)
    bcast = tuple(slice(None) if d == axis else None for d in range(acc.ndim))
    if acc.size <= SMALL:
        v = _int64_values(acc, bias, relu, bcast)
        peak = max_abs(v)
        q, sat = sat8(rshift_round_inplace(v, s))  # |v| <= 2^62 + 2^48: no overflow
        return q, peak, sat
    a, hi_max, lo_min, negative = _channel_extremes(acc, bias, relu, axis)
    peak = max(hi_max, -lo_min)
    sat_hi = rshift_round_int(hi_max, s) > Q8_MAX
    sat_lo = rshift_round_int(lo_min, s) < -Q8_MAX
    limit = _EXACT.get(acc.dtype, 0)
    if s > 0 and 2 * a + 132 * (1 << s) < limit:
        _shift_right_in_floats(acc, s, bias, a, bcast, negative and not relu)
    elif s <= 0 and 2 * a + 128 < limit:
        if bias is not None:
            acc += np.clip(np.asarray(bias, np.int64), -(a + 128), a + 128).astype(acc.dtype)[bcast]
        if s < 0:
            acc *= acc.dtype.type(2.0 ** -s)
    else:  # beyond the float bounds: the int64 form
        q, sat = sat8(rshift_round_inplace(_int64_values(acc, bias, relu, bcast), s))
        return q, peak, sat
    if relu and negative:
        np.maximum(acc, 0, out=acc)
    return acc, peak, _clamp8(acc, sat_hi, sat_lo)


def _int64_values(acc, bias, relu, bcast):
    """v = acc + bias[channel], ReLU'd, in int64: requantize8's exact form,
    taken for small arrays and beyond the float bounds."""
    v = acc.astype(np.int64)
    if bias is not None:
        v += np.asarray(bias, np.int64)[bcast]
    if relu:
        np.maximum(v, 0, out=v)
    return v


def _channel_extremes(acc, bias, relu, axis):
    """From each channel's extremes in int64 (v is monotone in acc within a
    channel): (A = max|acc|, the largest and smallest v, whether any v before
    ReLU is negative), so requantize8 knows its peak and which sides clamp
    without a pass over the values."""
    other = tuple(d for d in range(acc.ndim) if d != axis)
    mx = acc.max(axis=other).astype(np.int64)
    mn = acc.min(axis=other).astype(np.int64)
    if bias is None:
        hi, lo = mx, mn
    else:
        b = np.asarray(bias, np.int64)
        hi, lo = mx + b, mn + b  # |acc| < 2^48 and |bias| <= 2^62: no int64 overflow
    negative = int(lo.min()) < 0
    if relu:
        hi, lo = np.maximum(hi, 0), np.maximum(lo, 0)
    return max(int(mx.max()), -int(mn.min())), int(hi.max()), int(lo.min()), negative


def _shift_right_in_floats(acc, s, bias, a, bcast, floor):
    """requantize8's fast path for s > 0, in place: acc * 2^-s + c with
    c = rb * 2^-s + qb (docs in requantize8), floored when some value can be
    negative (`floor`; truncation is the floor once all are >= 0)."""
    acc *= acc.dtype.type(2.0 ** -s)
    if bias is None:  # c = 2^(s-1) * 2^-s
        acc += acc.dtype.type(0.5)
    else:
        b = np.asarray(bias, np.int64)
        qb = b >> s
        rb = (b & ((1 << s) - 1)) + (1 << (s - 1))  # in [2^(s-1), 3 * 2^(s-1))
        f = (a >> s) + 2
        qb = np.minimum(np.maximum(qb, -(f + 128)), f + 128)
        c = (rb + (qb << s)).astype(np.float64) * 2.0 ** -s  # exact: below 2^53 units
        acc += c.astype(acc.dtype)[bcast]
    if floor:
        np.floor(acc, out=acc)


def _clamp8(acc, sat_hi, sat_lo):
    """Clamps acc to +-Q8_MAX in place on the sides that saturate; returns
    the number of clamped values (the passes run only where something clamps)."""
    sat = 0
    if sat_hi:
        sat += np.count_nonzero(acc >= Q8_MAX + 1)
        np.minimum(acc, Q8_MAX, out=acc)
    if sat_lo:
        sat += np.count_nonzero(acc < -Q8_MAX)
        np.maximum(acc, -Q8_MAX, out=acc)
    return int(sat)
