"""The primitive integer operations of docs/numeric.md, vectorised over int64.

Shared by the numpy engine and the host code so both round and saturate the
same way. Shifts are per tensor (a scalar); data are arrays or scalars.
"""
import numpy as np

SHIFT_LIMIT = 62
Q8_MAX = 127
Q32_MAX = 2**31 - 1
_TOP = 1 << SHIFT_LIMIT


def rshift_round(x, s):
    """x * 2^-s rounded half towards +inf, s clamped to [-62, 62]; left shifts
    (s < 0) saturate at +-2^62. Returns a new int64 array (or numpy scalar),
    never x itself, so callers may modify the result in place."""
    s = min(max(int(s), -SHIFT_LIMIT), SHIFT_LIMIT)
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
