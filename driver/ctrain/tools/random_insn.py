"""Random valid single-instruction test cases for every opcode.

Drives the engine tests and `ctrain verify` (numpy vs csim on identical DDR
images). Shapes, flags and exponents are drawn so that every opcode/flag
combination and the awkward corners come up: 1x1 fully connected layers,
kernels exactly covering the padded input, strides that skip input rows,
overlapping pool windows with tied maxima, shifts of zero, negative shifts,
shifts beyond the +-62 clamp, and saturating stores. Sparse convolutions get
a CSR and transposed index built from a random mask (0..95% pruned, empty rows
and columns, a single kept weight, odd and even counts), sometimes with
unsorted or repeated columns or a transposed index that disagrees with the CSR
(valid, and each opcode must read its own index).
"""
from dataclasses import dataclass, field

import numpy as np

from .. import tiling, validate
from ..isa import ALIGN, INSN_BYTES, INSN_DTYPE, PAR, STATS_BYTES, Flag, Op

#: Opcodes random_case draws from when none is given.
OPS = (Op.CONV_FP, Op.CONV_EB, Op.CONV_WG, Op.UPDATE, Op.RELU_FP, Op.RELU_BP,
       Op.POOL_FP, Op.POOL_BP, Op.SCONV_FP, Op.SCONV_EB, Op.SCONV_WG, Op.BN_FP, Op.BN_BP,
       Op.ADD, Op.AVGPOOL_FP, Op.AVGPOOL_BP, Op.HALT)

_FLAG_CHOICES = {
    Op.CONV_FP: (0, Flag.RELU, Flag.BIAS, Flag.RELU | Flag.BIAS),
    Op.CONV_EB: (0, Flag.RELU_MASK),
    Op.CONV_WG: (0, Flag.BIAS),
    Op.POOL_BP: (0, Flag.RELU_MASK),
    Op.SCONV_FP: (0, Flag.RELU, Flag.BIAS, Flag.RELU | Flag.BIAS),
    Op.SCONV_EB: (0, Flag.RELU_MASK),
    Op.SCONV_WG: (0, Flag.BIAS),
    Op.BN_FP: (0, Flag.RELU),
    Op.BN_BP: (0, Flag.RELU_MASK),
    Op.ADD: (0, Flag.RELU, Flag.RELU_MASK, Flag.RELU | Flag.RELU_MASK),
    Op.AVGPOOL_BP: (0, Flag.RELU_MASK),
}


@dataclass
class Case:
    """A DDR image holding a program, its parameter table and its operands."""
    ddr: np.ndarray
    prog: int
    n_insn: int
    table: int
    table_len: int
    op: Op
    offsets: dict = field(default_factory=dict)

    def run_args(self):
        """(prog, n_insn, table, table_len), the engine's arguments after ddr."""
        return self.prog, self.n_insn, self.table, self.table_len


def _round_up(x, align):
    return -(-x // align) * align


def build_ddr(arrays, align=ALIGN, tail=0):
    """Lay out named arrays at `align`-aligned offsets in a fresh uint8 window.

    `arrays` is an iterable of (name, ndarray); the window ends `tail` bytes after
    the last array's padded end. Returns (ddr, {name: offset})."""
    arrays = list(arrays)
    offsets, end = {}, 0
    for name, arr in arrays:
        offsets[name] = end
        end = _round_up(end + arr.nbytes, align)
    ddr = np.zeros(end + tail, np.uint8)
    for name, arr in arrays:
        raw = np.ascontiguousarray(arr).view(np.uint8).reshape(-1)
        ddr[offsets[name]:offsets[name] + raw.size] = raw
    return ddr, offsets


# ---------------------------------------------------------------- random data

def _i8(rng, shape, nonneg=False):
    """int8 data in [-127, 127] with a random share of zeros; sometimes a narrow
    range (ties for max pooling) or the full range including -128."""
    style = rng.integers(6)
    lo, hi = (-128, 127) if style == 0 else (-3, 3) if style == 1 else (-127, 127)
    x = rng.integers(lo, hi + 1, shape)
    if nonneg:
        x = np.maximum(x, 0)
    x[rng.random(shape) < rng.uniform(0, 0.5)] = 0
    return x.astype(np.int8)


def _i32(rng, shape, bits):
    """int32 data of magnitude below 2^bits; in some cases a few extreme values."""
    x = rng.integers(-(1 << bits) + 1, 1 << bits, shape)
    share = 0.03 if rng.random() < 0.3 else 0
    x[rng.random(shape) < share] = 2**31 - 1
    x[rng.random(shape) < share] = -(2**31 - 1)
    return x.astype(np.int32)


def _garbage(rng, nbytes):
    """Random bytes for output regions: engines must overwrite all of them."""
    return rng.integers(0, 256, nbytes, dtype=np.uint8)


def _shift(rng, natural):
    """A rescaling shift: mostly near `natural`, sometimes 0, sometimes wild
    (negative, saturating, or beyond the +-62 clamp)."""
    r = rng.random()
    if r < 0.07:
        return 0
    if r < 0.2:
        return int(rng.choice([-1, 1]) * rng.integers(20, 80))
    return natural + int(rng.integers(-4, 5))


def _bitlen(x):
    return int(x).bit_length()


# ---------------------------------------------------------------- shapes

def _conv_shape(rng):
    """n c_in h_in w_in c_out h_out w_out k_h k_w stride pad of a valid conv."""
    n, ci, co = (int(v) for v in rng.integers(1, [5, 9, 9]))
    style = rng.integers(5)
    if style == 0:  # fully connected
        return dict(n=n, c_in=int(rng.integers(1, 33)), h_in=1, w_in=1,
                    c_out=int(rng.integers(1, 17)), h_out=1, w_out=1,
                    k_h=1, k_w=1, stride=1, pad=0)
    kh, kw = (int(v) for v in rng.integers(1, 6, 2))
    stride = int(rng.integers(1, 4))
    pad = int(rng.integers(0, min(kh, kw)))
    if style == 1:  # kernel exactly covers the padded input
        h, w = max(1, kh - 2 * pad), max(1, kw - 2 * pad)
    else:
        h = int(rng.integers(max(1, kh - 2 * pad), 13))
        w = int(rng.integers(max(1, kw - 2 * pad), 13))
    return dict(n=n, c_in=ci, h_in=h, w_in=w, c_out=co,
                h_out=(h + 2 * pad - kh) // stride + 1, w_out=(w + 2 * pad - kw) // stride + 1,
                k_h=kh, k_w=kw, stride=stride, pad=pad)


def _pool_shape(rng):
    n, c = (int(v) for v in rng.integers(1, [4, 7]))
    kh, kw = (int(v) for v in rng.integers(1, 5, 2))
    stride = int(rng.integers(1, 4))
    h, w = int(rng.integers(kh, 13)), int(rng.integers(kw, 13))
    return dict(n=n, c_in=c, c_out=c, h_in=h, w_in=w, h_out=(h - kh) // stride + 1,
                w_out=(w - kw) // stride + 1, k_h=kh, k_w=kw, stride=stride)


def _act_in(s):
    return (s["n"], s["c_in"], s["h_in"], s["w_in"])


def _act_out(s):
    return (s["n"], s["c_out"], s["h_out"], s["w_out"])


def _weights(s):
    return (s["c_out"], s["c_in"], s["k_h"], s["k_w"])


# ---------------------------------------------------------------- opcodes
# Each builder returns (shape and flag fields, {slot field: table value(s)},
# [(operand field, initial array)]); an operand given as a str aliases another.

def _conv_fp(rng, op, flags):
    s = _conv_shape(rng)
    terms = s["c_in"] * s["k_h"] * s["k_w"]
    e_src, e_w = int(rng.integers(-10, -1)), int(rng.integers(-12, -3))
    e_acc = e_src + e_w
    slots = dict(e_src=e_src, e_src2=e_w, e_dst=e_acc + _shift(rng, 6 + _bitlen(terms) // 2))
    ops = [("src", _i8(rng, _act_in(s), nonneg=rng.random() < 0.5)),
           ("src2", _i8(rng, _weights(s)))]
    if flags & Flag.BIAS:
        slots["e_src3"] = e_acc - _shift(rng, 0)
        ops.append(("src3", _i32(rng, s["c_out"], int(rng.integers(1, 24)))))
    ops.append(("dst", _garbage(rng, int(np.prod(_act_out(s))))))
    return s, slots, ops


def _conv_eb(rng, op, flags):
    s = _conv_shape(rng)
    terms = s["c_out"] * s["k_h"] * s["k_w"]
    e_src, e_w = int(rng.integers(-20, -5)), int(rng.integers(-12, -3))
    slots = dict(e_src=e_src, e_src2=e_w,
                 e_dst=e_src + e_w + _shift(rng, 6 + _bitlen(terms) // 2))
    ops = [("src", _i8(rng, _act_out(s))), ("src2", _i8(rng, _weights(s)))]
    if flags & Flag.RELU_MASK:
        ops.append(("aux", _i8(rng, _act_in(s), nonneg=rng.random() < 0.7)))
    ops.append(("dst", _garbage(rng, int(np.prod(_act_in(s))))))
    return s, slots, ops


def _conv_wg(rng, op, flags):
    s = _conv_shape(rng)
    e_src, e_act = int(rng.integers(-20, -5)), int(rng.integers(-10, -1))
    slots = dict(e_src=e_src, e_src2=e_act, e_dst=e_src + e_act + _shift(rng, -8))
    ops = [("src", _i8(rng, _act_out(s))), ("src2", _i8(rng, _act_in(s), nonneg=True)),
           ("dst", _garbage(rng, 4 * int(np.prod(_weights(s)))))]
    if flags & Flag.BIAS:
        ops.append(("dst2", _garbage(rng, 4 * s["c_out"])))
    return s, slots, ops


def _hyper(rng):
    """lr, mu, wd as (mantissa in [2^14, 2^15), shift); mu or wd sometimes 0,
    and sometimes any int32 mantissa with a wild (possibly negative) shift."""
    def one(lo_s, hi_s):
        if rng.random() < 0.1:
            return int(rng.integers(-2**31 + 1, 2**31)), int(rng.integers(-70, 70))
        m = 0 if rng.random() < 0.1 else int(rng.integers(1 << 14, 1 << 15))
        return m, int(rng.integers(lo_s, hi_s))
    return one(14, 25) + one(15, 17) + one(20, 31)


def _update(rng, op, flags, count=None, count_w=None):
    count = int(rng.integers(1, 2000 if rng.random() < 0.1 else 200)) if count is None else count
    if count_w is None:
        count_w = int(rng.choice([0, count, rng.integers(0, count + 1)], p=[0.1, 0.3, 0.6]))
    lr_m, lr_s, mu_m, mu_s, wd_m, wd_s = _hyper(rng)
    e_q = int(rng.integers(-10, -2))
    e_m = e_q - 16 + int(rng.integers(-2, 3))
    e_g = e_m + lr_s - 15 + _shift(rng, 0)
    par = [0] * PAR["COUNT"]
    for name, value in zip(("LR_M", "LR_S", "MU_M", "MU_S", "WD_M", "WD_S"),
                           (lr_m, lr_s, mu_m, mu_s, wd_m, wd_s)):
        par[PAR[name]] = value
    mask = rng.choice(np.array([0, 1, 1, 1, 255], np.uint8), count_w)
    ops = [("src", _i32(rng, count, int(rng.integers(4, 21)))),
           ("src2", _i32(rng, count, int(rng.integers(12, 22)))),
           ("src3", _i32(rng, count, int(rng.integers(1, 21)))),
           ("aux", mask), ("dst", _garbage(rng, count_w))]
    return dict(count=count, count_w=count_w), dict(e_src=e_g, e_src2=e_m, e_dst=e_q,
                                                   e_par=par), ops


def _relu(rng, op, flags):
    count = int(rng.integers(1, 300))
    ops = [("src", _i8(rng, count))]
    if op == Op.RELU_BP:
        ops.append(("aux", _i8(rng, count, nonneg=rng.random() < 0.5)))
    in_place = rng.random() < 0.3
    ops.append(("dst", "src" if in_place else _garbage(rng, count)))
    return dict(count=count), dict(e_src=int(rng.integers(-20, 6))), ops


def _pool(rng, op, flags):
    s = _pool_shape(rng)
    if op == Op.POOL_FP:
        ops = [("src", _i8(rng, _act_in(s))), ("dst", _garbage(rng, int(np.prod(_act_out(s)))))]
    else:
        ops = [("src", _i8(rng, _act_out(s))), ("aux", _i8(rng, _act_in(s))),
               ("dst", _garbage(rng, int(np.prod(_act_in(s)))))]
    return s, dict(e_src=int(rng.integers(-20, 6))), ops


def _add(rng, op, flags):
    """Two int8 tensors at exponents mostly close together, sometimes far apart
    (one term shifted past the int8 range or to the +-2^62 saturation)."""
    count = int(rng.integers(1, 700))
    e_a = int(rng.integers(-20, 6))
    r = rng.random()
    e_b = e_a + (int(rng.integers(-3, 4)) if r < 0.7 else int(rng.choice([-1, 1]) * rng.integers(8, 80)))
    ops = [("src", _i8(rng, count)), ("src2", _i8(rng, count))]
    if flags & Flag.RELU_MASK:
        ops.append(("aux", _i8(rng, count, nonneg=rng.random() < 0.5)))
    ops.append(("dst", _garbage(rng, count)))
    return dict(count=count), dict(e_src=e_a, e_src2=e_b, e_dst=min(e_a, e_b) + _shift(rng, 1)), ops


def _avgpool(rng, op, flags):
    """A pool window as _pool draws it, or global (the window is the map)."""
    s = _pool_shape(rng)
    if rng.random() < 0.3:
        h, w = (int(v) for v in rng.integers(1, 17, 2))
        s.update(h_in=h, w_in=w, k_h=h, k_w=w, h_out=1, w_out=1)
    e_in = int(rng.integers(-20, 6))
    kk = s["k_h"] * s["k_w"]
    slots = dict(e_src=e_in, e_dst=e_in + _shift(rng, 0 if op == Op.AVGPOOL_FP else -_bitlen(kk - 1)))
    if op == Op.AVGPOOL_FP:
        ops = [("src", _i8(rng, _act_in(s))), ("dst", _garbage(rng, int(np.prod(_act_out(s)))))]
    else:
        ops = [("src", _i8(rng, _act_out(s)))]
        if flags & Flag.RELU_MASK:
            ops.append(("aux", _i8(rng, _act_in(s))))
        ops.append(("dst", _garbage(rng, int(np.prod(_act_in(s))))))
    return s, slots, ops


# ---------------------------------------------------------------- sparse index

def index_block(rowptr, col, tptr, tpos, trow, pad=0):
    """The index block of docs/isa.md as uint8 from its five arrays; `pad` fills
    the halfword after an odd number of columns (engines must ignore it)."""
    z = len(col)
    parts = [np.asarray(rowptr, "<u4").view(np.uint8), np.asarray(col, "<u2").view(np.uint8)]
    if z % 2:
        parts.append(np.array([pad], "<u2").view(np.uint8))
    parts += [np.asarray(tptr, "<u4").view(np.uint8), np.asarray(tpos, "<u4").view(np.uint8),
              np.asarray(trow, "<u2").view(np.uint8)]
    return np.concatenate(parts)


def csr_index(rows_of, cols_of, n_rows, n_cols):
    """(rowptr, col, tptr, tpos, trow) of entries given in CSR order (row-major,
    rows non-decreasing): the CSR, and the transposed index listing each
    column's entries by ascending row."""
    rows_of, cols_of = np.asarray(rows_of, np.int64), np.asarray(cols_of, np.int64)
    rowptr = np.concatenate([[0], np.cumsum(np.bincount(rows_of, minlength=n_rows))])
    order = np.lexsort((rows_of, cols_of))  # by column, then row
    tptr = np.concatenate([[0], np.cumsum(np.bincount(cols_of, minlength=n_cols))])
    return rowptr, cols_of, tptr, order, rows_of[order]


def random_mask(rng, n_rows, n_cols):
    """A keep-mask [n_rows, n_cols] with at least one kept entry: random sparsity
    in [0, 0.95], sometimes whole rows/columns pruned, sometimes one entry."""
    r = rng.random()
    if r < 0.1:  # Z = 1
        mask = np.zeros((n_rows, n_cols), bool)
        mask[rng.integers(n_rows), rng.integers(n_cols)] = True
        return mask
    mask = rng.random((n_rows, n_cols)) >= rng.uniform(0, 0.95)
    if r < 0.35:  # filter (row) and column pruning on top
        mask[rng.random(n_rows) < 0.3] = False
        mask[:, rng.random(n_cols) < 0.3] = False
    if not mask.any():
        mask[rng.integers(n_rows), rng.integers(n_cols)] = True
    return mask


def random_index(rng, n_rows, n_cols):
    """(index block, Z) of a random valid index. Mostly the consistent index of a
    random mask; sometimes unsorted or repeated columns within a row, or a
    transposed index unrelated to the CSR (still valid: each sparse opcode
    reads only its own index, docs/numeric.md)."""
    rows_of, cols_of = np.nonzero(random_mask(rng, n_rows, n_cols))
    z = rows_of.size
    style = rng.random()
    if style < 0.15 and z > 1:  # repeated and unsorted columns within rows
        dup = rng.random(z) < 0.3
        cols_of = cols_of.copy()
        cols_of[dup] = rng.integers(0, n_cols, int(dup.sum()))
        perm = np.lexsort((rng.random(z), rows_of))  # shuffle within each row
        rows_of, cols_of = rows_of[perm], cols_of[perm]
    rowptr, col, tptr, tpos, trow = csr_index(rows_of, cols_of, n_rows, n_cols)
    if style > 0.9:  # a transposed index of its own
        tptr = np.concatenate([[0], np.sort(rng.integers(0, z + 1, n_cols - 1)), [z]])
        tpos = rng.integers(0, z, z)
        trow = rng.integers(0, n_rows, z)
    pad = int(rng.integers(0, 1 << 16))
    return index_block(rowptr, col, tptr, tpos, trow, pad), z


def _sparse(rng, op, flags):
    """SCONV_*: the dense builder's operands with the weights (FP, EB) replaced by
    the kept values and an index block at aux; WG writes Z gradients."""
    dense = {Op.SCONV_FP: _conv_fp, Op.SCONV_EB: _conv_eb, Op.SCONV_WG: _conv_wg}[op]
    s, slots, ops = dense(rng, op, flags)
    block, z = random_index(rng, s["c_out"], s["c_in"] * s["k_h"] * s["k_w"])
    s = dict(s, count=z)
    out = []
    for name, arr in ops:
        if op != Op.SCONV_WG and name == "src2":
            arr = _i8(rng, z)
        elif op == Op.SCONV_EB and name == "aux":
            name = "src3"  # the ReLU mask moves to src3: aux holds the index
        elif op == Op.SCONV_WG and name == "dst":
            arr = _garbage(rng, 4 * z)
        out.append((name, arr))
    out.append(("aux", block))
    return s, slots, out


def _bn_shape(rng):
    n, c = (int(v) for v in rng.integers(1, [5, 9]))
    h, w = (1, 1) if rng.random() < 0.25 else (int(v) for v in rng.integers(1, 13, 2))
    return dict(n=n, c_in=c, h_in=h, w_in=w, c_out=c, h_out=h, w_out=w)


def _bn(rng, op, flags, s=None):
    s = _bn_shape(rng) if s is None else s
    shape = (s["n"], s["c_in"], s["h_in"], s["w_in"])
    e_x, a_bits = int(rng.integers(-20, -1)), int(rng.integers(1, 24))
    e_a = int(rng.integers(-20, -4))
    e_acc = e_x + e_a
    slots = dict(e_src=e_x, e_src2=e_a, e_dst=e_acc + _shift(rng, a_bits))
    ops = [("src", _i8(rng, shape, nonneg=op == Op.BN_FP and rng.random() < 0.5)),
           ("src2", _i32(rng, s["c_in"], a_bits))]
    if op == Op.BN_FP:
        slots["e_src3"] = e_acc - _shift(rng, 0)
        ops.append(("src3", _i32(rng, s["c_in"], int(rng.integers(1, 30)))))
    elif flags & Flag.RELU_MASK:
        ops.append(("aux", _i8(rng, shape, nonneg=rng.random() < 0.5)))
    ops.append(("dst", _garbage(rng, int(np.prod(shape)))))
    return s, slots, ops


_BUILDERS = {Op.CONV_FP: _conv_fp, Op.CONV_EB: _conv_eb, Op.CONV_WG: _conv_wg,
             Op.UPDATE: _update, Op.RELU_FP: _relu, Op.RELU_BP: _relu,
             Op.POOL_FP: _pool, Op.POOL_BP: _pool, Op.SCONV_FP: _sparse,
             Op.SCONV_EB: _sparse, Op.SCONV_WG: _sparse, Op.BN_FP: _bn, Op.BN_BP: _bn,
             Op.ADD: _add, Op.AVGPOOL_FP: _avgpool, Op.AVGPOOL_BP: _avgpool}


# ---------------------------------------------------------------- assembly

def _table(rng, slots):
    """Place slot values (ints, or lists for e_par's block) at random distinct
    positions among filler entries; returns (table int32, {field: slot index})."""
    items = list(slots.items())
    rng.shuffle(items)
    table, index = [], {}
    for name, value in items:
        table.extend(int(v) for v in rng.integers(-20, 6, rng.integers(0, 3)))
        index[name] = len(table)
        table.extend(value if isinstance(value, list) else [value])
    if rng.random() < 0.5:
        table.extend(int(v) for v in rng.integers(-20, 6, rng.integers(1, 4)))
    return np.array(table, np.int32), index


def _program(op, insn):
    """The instruction stream: the instruction alone or followed by HALT; for HALT
    itself, a HALT followed by an instruction that would fault if it ran."""
    prog = np.zeros(2, INSN_DTYPE)
    if op == Op.HALT:
        prog[0]["op"] = Op.HALT
        return prog
    prog[0] = insn
    prog[1]["op"] = Op.HALT
    return prog


def layer_case(rng, op, shape, flags=0, weights=None, mask=None, density=None, act=None,
               err=None, table=(-7, -8, -9, -5)):
    """A Case of one convolution (dense or sparse), then HALT, at a given shape
    (n c_in h_in w_in c_out k_h k_w stride pad; the output size is computed).

    Data not given is random. Sparse opcodes keep the weights where `mask`
    ([c_out, c_in*k_h*k_w] bool; else random with keep-probability `density`)
    is set, with a consistent index; dense ones use `weights` as they are.
    Table: e_src, e_src2, e_src3 (bias), e_dst at slots 0..3."""
    op = Op(op)
    s = dict(shape)
    s["h_out"] = (s["h_in"] + 2 * s["pad"] - s["k_h"]) // s["stride"] + 1
    s["w_out"] = (s["w_in"] + 2 * s["pad"] - s["k_w"]) // s["stride"] + 1
    co, k = s["c_out"], s["c_in"] * s["k_h"] * s["k_w"]
    if weights is None:
        weights = rng.integers(-127, 128, _weights(s)).astype(np.int8)
    act = _i8(rng, _act_in(s)) if act is None else act
    err = _i8(rng, _act_out(s)) if err is None else err
    ops = {}
    if op in (Op.SCONV_FP, Op.SCONV_EB, Op.SCONV_WG):
        if mask is None:
            mask = rng.random((co, k)) < (0.2 if density is None else density)
            if not mask.any():
                mask[rng.integers(co), rng.integers(k)] = True
        rows_of, cols_of = np.nonzero(mask.reshape(co, k))
        ops["aux"] = index_block(*csr_index(rows_of, cols_of, co, k))
        s["count"] = int(rows_of.size)
        vals = weights.reshape(co, k)[rows_of, cols_of]
    if op in (Op.CONV_FP, Op.SCONV_FP):
        ops.update(src=act, src2=vals if op == Op.SCONV_FP else weights,
                   dst=_garbage(rng, err.size))
        if flags & Flag.BIAS:
            ops["src3"] = rng.integers(-2**9, 2**9, co).astype(np.int32)
    elif op in (Op.CONV_EB, Op.SCONV_EB):
        ops.update(src=err, src2=vals if op == Op.SCONV_EB else weights,
                   dst=_garbage(rng, act.size))
        if flags & Flag.RELU_MASK:
            ops["src3" if op == Op.SCONV_EB else "aux"] = _i8(rng, act.shape)
    else:
        out = 4 * (s["count"] if op == Op.SCONV_WG else weights.size)
        ops.update(src=err, src2=act, dst=_garbage(rng, out))
        if flags & Flag.BIAS:
            ops["dst2"] = _garbage(rng, 4 * co)
    return insn_case(rng, op, flags, s, ops, table, (0, 1, 2, 3))


def insn_case(rng, op, flags, fields, ops, table, exps):
    """A Case of one instruction then HALT, laid out in the order given:
    the operands `ops` (name -> array), a garbage statistics record, the
    program and the parameter `table`. The instruction takes `fields` (its
    shape and counts), every operand's offset and the table slots `exps`
    (e_src, e_src2, e_src3, e_dst)."""
    tab = np.array(table, np.int32)
    arrays = list(ops.items()) + [("stats", _garbage(rng, STATS_BYTES)),
                                  ("prog", np.zeros(2 * INSN_BYTES, np.uint8)), ("table", tab)]
    ddr, offsets = build_ddr(arrays)
    prog = np.zeros(2, INSN_DTYPE)
    prog[0]["op"], prog[0]["flags"], prog[1]["op"] = op, flags, Op.HALT
    for name, value in fields.items():
        prog[0][name] = value
    for name in list(ops) + ["stats"]:
        prog[0][name] = offsets[name]
    prog[0]["e_src"], prog[0]["e_src2"], prog[0]["e_src3"], prog[0]["e_dst"] = exps
    ddr[offsets["prog"]:offsets["prog"] + 2 * INSN_BYTES] = prog.view(np.uint8)
    return Case(ddr, offsets["prog"], 2, offsets["table"], tab.size, op, offsets)


def random_tiling(rng, f, board=None):
    """tile_g, tile_br, tile_rb of a CONV_* instruction (fields f) that fit
    `board`'s buffers (default: the default board): each field 0 (the
    unit's rule) or a random size up to one past its extent (clamped), so
    groups, bands and EB weight blocks of every size come up."""
    buf = tiling.buffers(board)
    eb = f["op"] == Op.CONV_EB
    cols, oh, rows = (f["c_out"], f["h_in"], f["c_in"]) if eb else (f["c_in"], f["h_out"], f["c_out"])
    ct, rt = -(-cols // buf.pe_cols), -(-rows // buf.pe_rows)
    for _ in range(8):
        t = {name: 0 if rng.random() < 0.25 else int(rng.integers(1, top + 2))
             for name, top in (("tile_g", ct), ("tile_br", oh), ("tile_rb", rt))}
        if tiling.conv_plan(dict(f, **t), buf).fits:
            return t
    return {"tile_g": 0, "tile_br": 0, "tile_rb": 0}


def sized_case(rng, op, flags=0, **size):
    """A random valid Case of UPDATE (size: count, count_w) or BN_FP/BN_BP
    (size: n, c, h, w) at the size given, for the chunk boundaries of
    units whose chunks the random sizes rarely pass."""
    if op == Op.UPDATE:
        shape, slots, operands = _update(rng, op, flags, **size)
    else:
        n, c, h, w = size["n"], size["c"], size["h"], size["w"]
        shape, slots, operands = _bn(rng, op, flags, dict(n=n, c_in=c, h_in=h, w_in=w, c_out=c,
                                                          h_out=h, w_out=w))
    table, index = _table(rng, slots)
    fields = dict(shape, **({"e_par": index["e_par"]} if "e_par" in index else {}))
    exps = tuple(index.get(k, 0) for k in ("e_src", "e_src2", "e_src3", "e_dst"))
    return insn_case(rng, op, flags, fields, dict(operands), table, exps)


def _draw(rng, op, flags, board, refused=False):
    """(shape, slots, operands) of a random `op` instruction; a sparse one
    drawn again while `board`'s sparse unit would refuse it (with
    `refused`: until it would)."""
    for _ in range(1000):
        drawn = _BUILDERS[op](rng, op, flags)
        if op not in validate.SPARSE_OPS or (board is None and not refused) or \
                validate.sparse_refused(dict(drawn[0], op=op), board) == refused:
            return drawn
    want = "refuses" if refused else "takes"
    raise AssertionError(f"no {op.name} drawn that {board}'s sparse unit {want}")


def random_case(rng, op=None, board=None, refused=False):
    """A random valid Case for `op` (or a random opcode of OPS); a dense
    convolution's tiling fits `board` (random_tiling), and a sparse one is
    one `board`'s sparse unit takes (drawn again while a board without the
    row-tile path would refuse it, validate.sparse_refused).  With
    `refused`, a sparse `op` that board's sparse unit refuses (FAULT_TILE:
    only a board without the row-tile path has such instructions)."""
    op = Op(op if op is not None else rng.choice(OPS))
    flags = int(rng.choice(_FLAG_CHOICES.get(op, (0,))))
    insn = np.zeros((), INSN_DTYPE)
    shape, slots, operands = ({}, {}, []) if op == Op.HALT else _draw(rng, op, flags, board, refused)
    table, slot_index = _table(rng, slots) if slots else (np.zeros(int(rng.integers(0, 3)),
                                                                    np.int32), {})
    n_insn = 2 if op == Op.HALT or rng.random() < 0.5 else 1
    arrays = [(name, arr) for name, arr in operands if not isinstance(arr, str)]
    if op != Op.HALT:
        arrays.append(("stats", _garbage(rng, 32)))
    arrays += [("prog", np.zeros(n_insn * INSN_BYTES, np.uint8)), ("table", table)]
    rng.shuffle(arrays)
    ddr, offsets = build_ddr(arrays, tail=int(rng.integers(0, 65)))
    for name, arr in operands:
        offsets[name] = offsets[arr] if isinstance(arr, str) else offsets[name]
    insn["op"], insn["flags"] = op, flags
    for name, value in list(shape.items()) + list(slot_index.items()):
        insn[name] = value
    if op in (Op.CONV_FP, Op.CONV_EB, Op.CONV_WG):
        for name, value in random_tiling(rng, dict(shape, op=op), board).items():
            insn[name] = value
    for name in [name for name, _ in operands] + (["stats"] if op != Op.HALT else []):
        insn[name] = offsets[name]
    prog = offsets["prog"]
    ddr[prog:prog + n_insn * INSN_BYTES] = _program(op, insn)[:n_insn].view(np.uint8)
    return Case(ddr, prog, n_insn, offsets["table"], table.size, op, offsets)
