"""Dynamic fixed point on the host: each tensor's exponent is chosen from the
hardware's statistics of the last 2^N iterations, so normalisation is a shift."""
import math
from collections import deque

Q8_BITS = 7  # magnitude bits of int8
WINDOW_LOG2_MAX = 10  # windows of up to 1024 iterations
#: Largest |exponent| a table slot may hold. Any float32 value's exponent is
#: within +-160 and the accelerator clamps every shift to +-62, so larger
#: entries can only come from a damaged file; the bound keeps sums and
#: differences of table entries far from int32 overflow.
EXPONENT_LIMIT = 1024


def top(max_abs, exp):
    """Smallest t with every value below 2^t, from a stats record (None if all zero)."""
    max_abs = int(max_abs)
    if max_abs == 0:
        return None
    return int(exp) + max_abs.bit_length()


class ExponentWindow:
    """Tops of one tensor over the last `size` iterations."""

    def __init__(self, size):
        self.tops = deque(maxlen=size)

    def push(self, t):
        if t is not None:
            self.tops.append(int(t))

    def exponent(self, default):
        return (max(self.tops) - Q8_BITS) if self.tops else default

    def state(self):
        return list(self.tops)


class ExponentManager:
    """Windows for every dynamically scaled tensor, keyed by table slot."""

    def __init__(self, window_log2=2):
        if not 0 <= window_log2 <= WINDOW_LOG2_MAX:
            raise ValueError(f"window_log2 must be in 0..{WINDOW_LOG2_MAX}, got {window_log2}")
        self.size = 1 << window_log2
        self.windows = {}

    def window(self, slot):
        w = self.windows.get(slot)
        if w is None:
            w = self.windows[slot] = ExponentWindow(self.size)
        return w

    def observe(self, slot, t):
        self.window(slot).push(t)

    def exponent(self, slot, default):
        return self.window(slot).exponent(default)

    def state(self):
        return {int(k): w.state() for k, w in self.windows.items()}

    def load_state(self, state):
        self.windows = {}
        for k, tops in state.items():
            w = self.window(int(k))
            for t in tops:
                w.push(t)


def quantize_scalar(x, bits=15):
    """(mantissa, shift) with x ~= m * 2^-s and 2^(bits-1) <= m < 2^bits; (0, 0) for 0."""
    if x < 0:
        raise ValueError(f"hyper-parameter must be >= 0, got {x}")
    if x == 0:
        return 0, 0
    s = (bits - 1) - math.floor(math.log2(x))
    m = math.floor(x * 2.0 ** s + 0.5)
    if m >= 1 << bits:
        m, s = m >> 1, s - 1
    return int(m), int(s)
