"""Instruction validation, exactly as docs/isa.md "Validation" orders it.

The one Python implementation: the numpy engine runs it before executing each
instruction, the compiler runs it before anything reaches a board, and the HLS
sources mirror it in C. All arithmetic here is on Python ints, so address and
size sums never wrap (C must use 64-bit sums for the same answers).
"""
import numpy as np

from . import sparse_tiling, tiling
from .hostlib import index_layout  # noqa: F401  (validate.index_layout: the engines' and perfmodel's name for it)
from .isa import INSN_BYTES, LIMITS, PAR, STATS_BYTES, Fault, Flag, Op

#: Flag bits each opcode accepts; any other bit is FAULT_OPCODE.
ALLOWED_FLAGS = {
    Op.HALT: 0,
    Op.CONV_FP: Flag.RELU | Flag.BIAS,
    Op.CONV_EB: Flag.RELU_MASK,
    Op.CONV_WG: Flag.BIAS,
    Op.UPDATE: 0,
    Op.RELU_FP: 0,
    Op.RELU_BP: 0,
    Op.POOL_FP: 0,
    Op.POOL_BP: Flag.RELU_MASK,
    Op.SCONV_FP: Flag.RELU | Flag.BIAS,
    Op.SCONV_EB: Flag.RELU_MASK,
    Op.SCONV_WG: Flag.BIAS,
    Op.BN_FP: Flag.RELU,
    Op.BN_BP: Flag.RELU_MASK,
    Op.ADD: Flag.RELU | Flag.RELU_MASK,
    Op.AVGPOOL_FP: 0,
    Op.AVGPOOL_BP: Flag.RELU_MASK,
}

CONV_OPS = (Op.CONV_FP, Op.CONV_EB, Op.CONV_WG)
POOL_OPS = (Op.POOL_FP, Op.POOL_BP)
#: Sparse convolutions: the dense op's shape rules plus the index block at aux.
SPARSE_OPS = (Op.SCONV_FP, Op.SCONV_EB, Op.SCONV_WG)
#: Frozen batch norm: per-channel affine (forward) or scale (backward).
BN_OPS = (Op.BN_FP, Op.BN_BP)
#: Average pooling: a window (up to the whole map) summed and scaled.
AVG_OPS = (Op.AVGPOOL_FP, Op.AVGPOOL_BP)
#: The dense opcode each sparse one computes like (docs/numeric.md).
DENSE_OF = {Op.SCONV_FP: Op.CONV_FP, Op.SCONV_EB: Op.CONV_EB, Op.SCONV_WG: Op.CONV_WG}

#: Sums of int8 x int8 products must stay below this (48-bit accumulators).
ACC_LIMIT = 1 << 47
_PRODUCT_MAX = 127 * 127

#: Operand fields in the order FAULT_ALIGN and FAULT_BOUNDS are checked.
OPERAND_ORDER = ("src", "src2", "src3", "aux", "dst", "dst2", "stats")
#: Slot fields in the order FAULT_SLOT is checked (header order).
SLOT_ORDER = ("e_src", "e_src2", "e_src3", "e_dst", "e_par")

#: The dense tiling (CONV_*; 0 = the unit's rule): ctrain.tiling.
TILE_FIELDS = ("tile_g", "tile_br", "tile_rb")
_SCALARS = ("op", "flags", "n", "c_in", "h_in", "w_in", "c_out", "h_out", "w_out",
            "k_h", "k_w", "stride", "pad", "count", "count_w") + OPERAND_ORDER + SLOT_ORDER


def fields(insn):
    """The instruction's scalar fields as a dict of Python ints. `insn` is an
    INSN_DTYPE record or any mapping with those keys (the tile fields may be
    absent: 0, the unit's rule)."""
    f = {name: int(insn[name]) for name in _SCALARS}
    names = insn.dtype.names if hasattr(insn, "dtype") else insn
    for name in TILE_FIELDS:
        f[name] = int(insn[name]) if name in names else 0
    return f


def _has(f, flag):
    return bool(f["flags"] & flag)


def terms_per_output(f):
    """Products summed into one accumulator of a conv op (an upper bound for EB),
    counted as for the dense op (SCONV_* take their dense op's bound)."""
    op, kk = DENSE_OF.get(f["op"], f["op"]), f["k_h"] * f["k_w"]
    if op == Op.CONV_FP:
        return f["c_in"] * kk
    if op == Op.CONV_EB:
        return f["c_out"] * kk
    return f["n"] * f["h_out"] * f["w_out"]


def sparse_cols(f):
    """K = c_in*k_h*k_w: columns of a sparse layer's weight matrix."""
    return f["c_in"] * f["k_h"] * f["k_w"]


def index_bytes(f):
    """Size of a sparse instruction's index block."""
    return index_layout(f["c_out"], sparse_cols(f), f["count"])["size"]


def _in_range(v, hi):
    return 1 <= v <= hi


def _window_ok(f, pad, k_max=LIMITS["KERNEL"]):
    """Kernel, stride, padding and the output-size formula, for both axes."""
    k_ok = _in_range(f["k_h"], k_max) and _in_range(f["k_w"], k_max)
    if not (k_ok and _in_range(f["stride"], LIMITS["STRIDE"])):
        return False
    if pad > LIMITS["PAD"] or pad >= min(f["k_h"], f["k_w"]):
        return False
    for size, k, out in (("h_in", "k_h", "h_out"), ("w_in", "k_w", "w_out")):
        span = f[size] + 2 * pad - f[k]
        if span < 0 or f[out] != span // f["stride"] + 1:
            return False
    return True


def _tensor_shape_ok(f, pool):
    """Batch, channels and spatial sizes within the PE array's limits."""
    dims_ok = all(_in_range(f[d], LIMITS["DIM"]) for d in ("h_in", "w_in", "h_out", "w_out"))
    ch_ok = _in_range(f["c_in"], LIMITS["CH"]) and _in_range(f["c_out"], LIMITS["CH"])
    return (dims_ok and ch_ok and _in_range(f["n"], LIMITS["BATCH"])
            and (not pool or f["c_out"] == f["c_in"]))


def shape_ok(f):
    """FAULT_SHAPE's rule for the opcode (f from fields(); opcode already valid)."""
    op = f["op"]
    if op in CONV_OPS or op in SPARSE_OPS:
        dense_ok = (_tensor_shape_ok(f, False) and _window_ok(f, f["pad"])
                    and terms_per_output(f) * _PRODUCT_MAX < ACC_LIMIT)
        if op in CONV_OPS or not dense_ok:
            return dense_ok
        cols = sparse_cols(f)
        return cols <= LIMITS["SPARSE_COLS"] and 1 <= f["count"] <= f["c_out"] * cols
    if op in BN_OPS:
        return (_tensor_shape_ok(f, True) and f["h_out"] == f["h_in"]
                and f["w_out"] == f["w_in"])
    if op in POOL_OPS:
        return f["pad"] == 0 and _tensor_shape_ok(f, True) and _window_ok(f, 0)
    if op in AVG_OPS:  # the window may be as large as the map (global pooling)
        return f["pad"] == 0 and _tensor_shape_ok(f, True) and _window_ok(f, 0, LIMITS["DIM"])
    if op in (Op.RELU_FP, Op.RELU_BP, Op.ADD):
        return _in_range(f["count"], LIMITS["COUNT"])
    if op == Op.UPDATE:
        return _in_range(f["count"], LIMITS["COUNT"]) and f["count_w"] <= f["count"]
    return True


def slots(f):
    """(field, highest table slot it makes the opcode read), in SLOT_ORDER."""
    op = f["op"]
    if op == Op.HALT:
        return []
    if op in (Op.RELU_FP, Op.RELU_BP) or op in POOL_OPS:
        names = ["e_src"]
    elif op in AVG_OPS:
        names = ["e_src", "e_dst"]
    elif (op in (Op.CONV_FP, Op.SCONV_FP) and _has(f, Flag.BIAS)) or op == Op.BN_FP:
        names = ["e_src", "e_src2", "e_src3", "e_dst"]
    else:
        names = ["e_src", "e_src2", "e_dst"]
    used = [(name, f[name]) for name in names]
    if op == Op.UPDATE:
        used.append(("e_par", f["e_par"] + PAR["COUNT"] - 1))
    return used


def operands(insn):
    """[(field, addr, nbytes, align)] of every operand the instruction touches, in
    OPERAND_ORDER. Optional operands appear only with their flag."""
    f = fields(insn)
    op, n, ci, co = f["op"], f["n"], f["c_in"], f["c_out"]
    act_in = n * ci * f["h_in"] * f["w_in"]
    act_out = n * co * f["h_out"] * f["w_out"]
    weights = co * ci * f["k_h"] * f["k_w"]
    bias = _has(f, Flag.BIAS)
    mask = _has(f, Flag.RELU_MASK)
    sizes = {  # field -> (bytes, alignment); None = operand unused
        Op.CONV_FP: dict(src=(act_in, 1), src2=(weights, 1),
                         src3=(4 * co, 4) if bias else None, dst=(act_out, 1)),
        Op.CONV_EB: dict(src=(act_out, 1), src2=(weights, 1),
                         aux=(act_in, 1) if mask else None, dst=(act_in, 1)),
        Op.CONV_WG: dict(src=(act_out, 1), src2=(act_in, 1), dst=(4 * weights, 4),
                         dst2=(4 * co, 4) if bias else None),
        Op.UPDATE: dict(src=(4 * f["count"], 4), src2=(4 * f["count"], 4),
                        src3=(4 * f["count"], 4), aux=(f["count_w"], 1),
                        dst=(f["count_w"], 1)),
        Op.RELU_FP: dict(src=(f["count"], 1), dst=(f["count"], 1)),
        Op.RELU_BP: dict(src=(f["count"], 1), aux=(f["count"], 1), dst=(f["count"], 1)),
        Op.POOL_FP: dict(src=(act_in, 1), dst=(act_out, 1)),
        Op.POOL_BP: dict(src=(act_out, 1), aux=(act_in, 1), dst=(act_in, 1)),
        Op.BN_FP: dict(src=(act_in, 1), src2=(4 * ci, 4), src3=(4 * ci, 4), dst=(act_in, 1)),
        Op.BN_BP: dict(src=(act_in, 1), src2=(4 * ci, 4), aux=(act_in, 1) if mask else None,
                       dst=(act_in, 1)),
        Op.ADD: dict(src=(f["count"], 1), src2=(f["count"], 1), aux=(f["count"], 1) if mask else None,
                     dst=(f["count"], 1)),
        Op.AVGPOOL_FP: dict(src=(act_in, 1), dst=(act_out, 1)),
        Op.AVGPOOL_BP: dict(src=(act_out, 1), aux=(act_in, 1) if mask else None, dst=(act_in, 1)),
    }.get(op)
    if op in SPARSE_OPS:
        z, index = f["count"], (index_bytes(f), 4)
        sizes = {
            Op.SCONV_FP: dict(src=(act_in, 1), src2=(z, 1), src3=(4 * co, 4) if bias else None,
                              aux=index, dst=(act_out, 1)),
            Op.SCONV_EB: dict(src=(act_out, 1), src2=(z, 1), src3=(act_in, 1) if mask else None,
                              aux=index, dst=(act_in, 1)),
            Op.SCONV_WG: dict(src=(act_out, 1), src2=(act_in, 1), aux=index, dst=(4 * z, 4),
                              dst2=(4 * co, 4) if bias else None),
        }[op]
    if sizes is None:  # HALT
        return []
    sizes["stats"] = (STATS_BYTES, 8)
    return [(name, f[name]) + sizes[name] for name in OPERAND_ORDER if sizes.get(name)]


def check(insn, ddr_size, table_len, ddr=None, board=None):
    """(Fault, fault_addr) for one instruction; (FAULT_NONE, 0) when it may run.
    fault_addr is the operand address (ALIGN, BOUNDS), the slot field's value
    (SLOT; e_par itself for UPDATE's block), the entry's address (INDEX) or 0
    (OPCODE, SHAPE, TILE). A dense tiling is checked against `board`'s
    buffers (a name, or a perfmodel.Board; None: the default board).

    The index contents of a sparse instruction (FAULT_INDEX, the last check)
    need the DDR image: without `ddr` (the compiler, before anything is in
    memory) that check is skipped; engines pass their window. After it, a
    sparse instruction a board without the row-tile path refuses is
    FAULT_TILE (sparse_refused; the HLS raises it in sconv_unit, before it
    writes anything), its list lengths checked only with `ddr`."""
    f = fields(insn)
    op = f["op"]
    if op not in ALLOWED_FLAGS or f["flags"] & ~ALLOWED_FLAGS[op]:
        return Fault.OPCODE, 0
    if not shape_ok(f):
        return Fault.SHAPE, 0
    board = getattr(board, "name", board)
    if not tiling.tiling_ok(f, tiling.buffers(board)):
        return Fault.TILE, 0
    for name, top in slots(f):
        if top >= table_len:
            return Fault.SLOT, f[name]
    ops = operands(f)
    for _, addr, _, align in ops:
        if addr % align:
            return Fault.ALIGN, addr
    for _, addr, nbytes, _ in ops:
        if addr + nbytes > ddr_size:
            return Fault.BOUNDS, addr
    clash = overlap(op, ops)
    if clash is not None:
        return Fault.OVERLAP, clash
    if op in SPARSE_OPS:
        if ddr is not None:
            fault = check_index(ddr, f)
            if fault[0] != Fault.NONE:
                return fault
        if sparse_refused(f, board, ddr):
            return Fault.TILE, 0
    return Fault.NONE, 0


def sparse_refused(f, board=None, ddr=None):
    """Whether sconv_unit refuses a sparse instruction (FAULT_TILE, nothing
    written): on a board built without the row-tile path (CTRAIN_SPARSE_ROWS
    0, sconv.h), one the position-parallel path does not take: a fully
    connected one, one it cannot plan, or, with the index contents in `ddr`
    (already through check_index), one whose longest list exceeds SP_LIST
    (sparse_tiling.refused). `board`: a name or None (the default board)."""
    f = fields(f) if not isinstance(f, dict) else f
    if f["op"] not in SPARSE_OPS or sparse_tiling.unit(board).rows:
        return False   # before the index is looked at: any other instruction's aux is no index
    return sparse_tiling.refused(f, board, None if ddr is None else index_arrays(ddr, f))


def index_arrays(ddr, f):
    """(rowptr, col, tptr, tpos, trow) as little-endian views into `ddr` for a
    sparse instruction whose operands passed the bounds check."""
    lay = index_layout(f["c_out"], sparse_cols(f), f["count"])
    base, z, rows, cols = f["aux"], f["count"], f["c_out"], sparse_cols(f)

    def part(name, dtype, count):
        at = base + lay[name]
        return ddr[at:at + np.dtype(dtype).itemsize * count].view(dtype)
    return (part("rowptr", "<u4", rows + 1), part("col", "<u2", z), part("tptr", "<u4", cols + 1),
            part("tpos", "<u4", z), part("trow", "<u2", z))


def _first_bad_ptr(ptr, total):
    """Index of the first offending entry of a pointer array: ptr[0] != 0, an
    entry below its predecessor, or the last entry != total; else None."""
    bad = np.zeros(ptr.size, bool)
    bad[0] = ptr[0] != 0
    bad[1:] = ptr[1:] < ptr[:-1]
    bad[-1] |= ptr[-1] != total
    return int(np.argmax(bad)) if bad.any() else None


def _first_at_least(values, limit):
    hit = values >= limit
    return int(np.argmax(hit)) if hit.any() else None


def check_index(ddr, f):
    """FAULT_INDEX check of a sparse instruction's index block (after every
    other check passed): (Fault.INDEX, address of the first bad entry) or
    (Fault.NONE, 0). Entries are checked part by part in the order rowptr,
    col, tptr, tpos, trow, each from its first entry: rowptr[0] = 0,
    non-decreasing, rowptr[R] = Z; col < K; the same for tptr with K and Z;
    tpos < Z; trow < R. That order is also the block's memory order, so the
    fault is the lowest-addressed bad entry."""
    f = fields(f) if not isinstance(f, dict) else f
    rows, cols, z = f["c_out"], sparse_cols(f), f["count"]
    lay = index_layout(rows, cols, z)
    rowptr, col, tptr, tpos, trow = index_arrays(ddr, f)
    for name, arr, size, first_bad in (
            ("rowptr", rowptr, 4, lambda a: _first_bad_ptr(a, z)),
            ("col", col, 2, lambda a: _first_at_least(a, cols)),
            ("tptr", tptr, 4, lambda a: _first_bad_ptr(a, z)),
            ("tpos", tpos, 4, lambda a: _first_at_least(a, z)),
            ("trow", trow, 2, lambda a: _first_at_least(a, rows))):
        i = first_bad(arr)
        if i is not None:
            return Fault.INDEX, f["aux"] + lay[name] + size * i
    return Fault.NONE, 0


#: Operands each opcode writes (UPDATE's master and momentum are read and written).
WRITTEN = {Op.UPDATE: ("src2", "src3", "dst", "stats")}
_DEFAULT_WRITTEN = ("dst", "dst2", "stats")
#: Pairs allowed to coincide exactly: in-place ReLU.
IN_PLACE = {Op.RELU_FP: ("src", "dst"), Op.RELU_BP: ("src", "dst")}


def overlap(op, ops):
    """Address of the later operand of the first pair (in operand order) where a
    written operand shares bytes with another, or None. Results would otherwise
    depend on the order an engine streams its tiles."""
    written = WRITTEN.get(op, _DEFAULT_WRITTEN)
    spans = [(name, addr, nbytes) for name, addr, nbytes, _ in ops if nbytes]
    for j, (nj, aj, bj) in enumerate(spans):
        for ni, ai, bi in spans[:j]:
            if (ni in written or nj in written) and ai < aj + bj and aj < ai + bi:
                if IN_PLACE.get(op) == (ni, nj) and ai == aj and bi == bj:
                    continue
                return aj
    return None


def check_program(prog, n_insn, table, table_len, ddr_size):
    """(FAULT_PROGRAM, offending offset) when the instruction stream or the table
    is not a 4-byte aligned range inside the window, or the table is longer than
    CTRAIN_MAX_TABLE; else (FAULT_NONE, 0)."""
    prog, table = int(prog), int(table)
    if prog % 4 or prog + INSN_BYTES * int(n_insn) > ddr_size:
        return Fault.PROGRAM, prog
    if table % 4 or table + 4 * int(table_len) > ddr_size or table_len > LIMITS["TABLE"]:
        return Fault.PROGRAM, table
    return Fault.NONE, 0
