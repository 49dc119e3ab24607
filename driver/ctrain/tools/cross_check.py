"""Cross-checks an engine against the numpy engine on random programs.

Every case runs on two copies of one DDR image; the whole window must come out
byte for byte identical and the RunResults equal. Valid cases come from
ctrain.tools.random_insn; fault cases mutate one of them (opcode, shape, slot,
alignment, bounds, overlap, or the run's own program/table arguments) until
ctrain.validate says it faults, so fault codes, pc and fault addresses are
compared too, including a fault after a valid instruction has run. Sparse
instructions also get their index block corrupted (FAULT_INDEX).
"""
import time

import numpy as np
from tqdm import tqdm

from .. import sparse_tiling, validate
from ..engine import get_engine
from ..engine.numpy import NumpyEngine
from ..isa import INSN_BYTES, INSN_DTYPE, LIMITS, Fault, Op, fault_name, op_name
from .random_insn import OPS, random_case

#: Share of fault cases added to the valid ones when `faults` is not given.
FAULT_SHARE = 0.2
#: Share of fault cases that break the run's arguments rather than an instruction.
PROGRAM_FAULT_SHARE = 0.1
_MUTATIONS = ("opcode", "shape", "tile", "slot", "align", "bounds", "overlap")
#: Share of fault cases of a sparse opcode that corrupt its index block instead.
INDEX_FAULT_SHARE = 0.5
#: On a board without the sparse unit's row-tile path, share of fault cases
#: of a sparse opcode that are a valid instruction only that path would run
#: (FAULT_TILE, nothing written: validate.sparse_refused).
REFUSAL_SHARE = 0.25
_WINDOW = ("n", "c_in", "h_in", "w_in", "c_out", "h_out", "w_out", "k_h", "k_w", "stride", "pad")
_SHAPE_FIELDS = {"conv": _WINDOW, "pool": _WINDOW, "count": ("count",),
                 "update": ("count", "count_w"), "sparse": _WINDOW + ("count",),
                 "bn": ("n", "c_in", "h_in", "w_in", "c_out", "h_out", "w_out")}
_LIMIT_OF = {"n": "BATCH", "c_in": "CH", "c_out": "CH", "h_in": "DIM", "w_in": "DIM",
             "h_out": "DIM", "w_out": "DIM", "k_h": "KERNEL", "k_w": "KERNEL",
             "stride": "STRIDE", "pad": "PAD", "count": "COUNT", "count_w": "COUNT"}


def _op_list(ops):
    if ops is None:
        return list(OPS)
    out = []
    for op in ops:
        if isinstance(op, str):
            name = op.upper()
            out.append(Op[name[3:] if name.startswith("OP_") else name])
        else:
            out.append(Op(int(op)))
    return out


def _shape_group(op):
    if op in validate.CONV_OPS:
        return "conv"
    if op in validate.POOL_OPS or op in validate.AVG_OPS:
        return "pool"
    if op in validate.SPARSE_OPS:
        return "sparse"
    if op in validate.BN_OPS:
        return "bn"
    if op == Op.UPDATE:
        return "update"
    if op in (Op.RELU_FP, Op.RELU_BP, Op.ADD):
        return "count"
    return None


# ---------------------------------------------------------------- fault cases

def _mutation_kind(rng, f, used, operands, nonempty):
    """A mutation of _MUTATIONS that the opcode has fields for (else opcode)."""
    op = f["op"]
    kind = str(rng.choice(_MUTATIONS))
    if kind == "tile" and op not in validate.CONV_OPS:
        kind = "shape"
    if ((kind == "shape" and _shape_group(op) is None) or (kind == "slot" and not used)
            or (kind in ("align", "bounds") and not operands)
            or (kind == "overlap" and len(nonempty) < 2)):
        kind = "opcode"
    return kind


def _mutate_insn(rng, f, ddr_size, table_len):
    """(field -> new value, description) of one mutation of instruction fields f."""
    used, operands = validate.slots(f), validate.operands(f)
    nonempty = [o for o in operands if o[2] > 0]
    kind = _mutation_kind(rng, f, used, operands, nonempty)
    if kind == "opcode":
        return _bad_opcode(rng, f)
    if kind == "shape":
        return _bad_shape(rng, f)
    if kind == "tile":
        return _bad_tiling(rng, f)
    if kind == "slot":
        return _bad_slot(rng, f, used, table_len)
    if kind == "overlap":
        return _overlap(rng, nonempty)
    if kind == "align":
        aligned = [o for o in operands if o[3] > 1]
        if aligned:
            return _misalign(rng, aligned)
    return _out_of_window(rng, operands, ddr_size)


def _bad_opcode(rng, f):
    """OP_INVALID, an opcode past the last, or a flag bit the op does not allow."""
    r = rng.random()
    if r < 0.3:
        return {"op": 0}, "opcode 0 (OP_INVALID)"
    if r < 0.6:
        bad = int(rng.choice([int(Op.COUNT), int(rng.integers(int(Op.COUNT), 1 << 32))]))
        return {"op": bad}, f"opcode {bad}"
    allowed = validate.ALLOWED_FLAGS.get(Op(f["op"]), 0)
    bit = next(1 << int(b) for b in rng.permutation(32) if not (1 << int(b)) & allowed)
    return {"flags": f["flags"] | bit}, f"flag bit {bit:#x}"


def _bad_shape(rng, f):
    """A shape field of the op's group at 0, past its limit, off by one or huge."""
    name = str(rng.choice(_SHAPE_FIELDS[_shape_group(f["op"])]))
    lim = LIMITS[_LIMIT_OF[name]]
    value = int(rng.choice([0, lim + 1, f[name] + 1, max(f[name] - 1, 0), 1 << 31]))
    return {name: value}, f"{name} {f[name]} -> {value}"


def _bad_tiling(rng, f):
    """A tiling beyond the buffers (FAULT_TILE): the reduced channels at
    the limit, all of them in one group (weights or one source row each past
    CONV_WCAP or CONV_ACT), with a random band and EB block; the operands
    grow with them, but the tiling is checked before the bounds."""
    cols = "c_out" if f["op"] == Op.CONV_EB else "c_in"
    changes = {cols: LIMITS["CH"], "tile_g": int(rng.choice([LIMITS["CH"], 1 << 31])),
               "tile_br": int(rng.integers(0, 3)) * int(rng.integers(1, 1 << 10)),
               "tile_rb": int(rng.integers(0, 3)) * int(rng.integers(1, 1 << 10))}
    return changes, "tiling " + ", ".join(f"{k} {v}" for k, v in changes.items())


def _bad_slot(rng, f, used, table_len):
    """A parameter-table slot the op uses, moved to or past the table's end."""
    name = used[int(rng.integers(len(used)))][0]
    reach = validate.PAR["COUNT"] - 1 if name == "e_par" else 0
    value = max(table_len - reach, 0) + int(rng.integers(0, 4))
    return {name: value}, f"{name} {f[name]} -> {value} (table_len {table_len})"


def _overlap(rng, nonempty):
    """One operand moved onto another (check() keeps only real clashes)."""
    i, j = (int(k) for k in rng.choice(len(nonempty), 2, replace=False))
    name, addr, _, align = nonempty[i]
    target = nonempty[j][1] + int(rng.integers(0, max(nonempty[j][2], 1)))
    value = target - target % align
    return {name: value}, f"{name} {addr} -> {value} (onto {nonempty[j][0]})"


def _misalign(rng, aligned):
    """An operand that needs alignment moved off it."""
    name, addr, _, align = aligned[int(rng.integers(len(aligned)))]
    value = addr + int(rng.integers(1, align))
    return {name: value}, f"{name} {addr} -> {value} (align {align})"


def _out_of_window(rng, operands, ddr_size):
    """An operand straddling the end of the DDR window, past it, or at the
    top of the 32-bit address space."""
    name, addr, nbytes, _ = operands[int(rng.integers(len(operands)))]
    r = rng.random()
    if r < 0.6:  # straddles the end of the window, 8-byte aligned
        value = max((ddr_size - nbytes) // 8 + int(rng.integers(1, 4)), 0) * 8
    elif r < 0.8:
        value = ddr_size + int(rng.integers(0, 4))
    else:
        value = (1 << 32) - 8
    return {name: value}, f"{name} {addr} -> {value} (window {ddr_size})"


def _mutate_program(rng, case):
    """(prog, n_insn, table, table_len), description: run arguments that fault."""
    prog, n_insn, table, table_len = case.run_args()
    size = case.ddr.size
    r = int(rng.integers(5))
    if r == 0:
        return (prog + int(rng.integers(1, 4)), n_insn, table, table_len), "prog misaligned"
    if r == 1:
        n = (size - prog) // INSN_BYTES + 1
        return (prog, n, table, table_len), f"n_insn {n} runs past the window"
    if r == 2:
        return (prog, n_insn, table + int(rng.integers(1, 4)), table_len), "table misaligned"
    if r == 3:
        n = (size - table) // 4 + 1
        return (prog, n_insn, table, n), f"table_len {n} runs past the window"
    n = LIMITS["TABLE"] + 1
    return (prog, n_insn, table, n), f"table_len {n} > CTRAIN_MAX_TABLE"


def _corrupt_index(rng, case, f):
    """Description of one corruption of the case's index block (in place in
    case.ddr): an entry set out of range or out of order."""
    rowptr, col, tptr, tpos, trow = validate.index_arrays(case.ddr, f)
    z, rows, cols = f["count"], f["c_out"], validate.sparse_cols(f)
    parts = [("rowptr", rowptr, z), ("col", col, cols), ("tptr", tptr, z), ("tpos", tpos, z),
             ("trow", trow, rows)]
    name, arr, lim = parts[int(rng.integers(len(parts)))]
    k = int(rng.integers(arr.size))
    top = np.iinfo(arr.dtype).max
    if name in ("rowptr", "tptr"):  # a pointer out of order, or a wrong first/last entry
        value = int(rng.choice([int(arr[k]) + int(rng.integers(1, 4)), max(int(arr[k]) - 1, 0),
                                z + 1, top]))
    else:
        value = int(rng.choice([lim, lim + int(rng.integers(0, 5)), top]))
    before = int(arr[k])
    arr[k] = min(value, top)
    return f"index {name}[{k}] {before} -> {int(arr[k])}"


def fault_case(rng, ops=None, tries=50, board=None):
    """(case, run args, description): a random case made to fault (on
    `board`: its tilings). The mutated instruction replaces the first one,
    or (when there is a second) the trailing HALT, so a valid instruction
    runs before the fault. On a board without the row-tile path a sparse
    opcode's case is, REFUSAL_SHARE of the time, an instruction that
    board's sparse unit refuses (FAULT_TILE), half of those with a corrupted
    index as well (FAULT_INDEX first, docs/isa.md)."""
    op_list = _op_list(ops)
    for _ in range(tries):
        op = op_list[int(rng.integers(len(op_list)))]
        if op in validate.SPARSE_OPS and not sparse_tiling.unit(board).rows and \
                rng.random() < REFUSAL_SHARE:
            case = random_case(rng, op=op, board=board, refused=True)
            what = "refused (no row-tile path on this board)"
            if rng.random() < 0.5:
                f = validate.fields(case.ddr[case.prog:case.prog + INSN_BYTES].view(INSN_DTYPE)[0])
                what = f"{_corrupt_index(rng, case, f)} of an instruction {what}"
            return case, case.run_args(), f"instruction 0: {what}"
        case = random_case(rng, op=op, board=board)
        args = case.run_args()
        if rng.random() < PROGRAM_FAULT_SHARE:
            args, what = _mutate_program(rng, case)
            if validate.check_program(*args, case.ddr.size)[0] != Fault.NONE:
                return case, args, "program: " + what
            continue
        second = case.n_insn == 2 and case.op != Op.HALT and rng.random() < 0.5
        at = case.prog + (INSN_BYTES if second else 0)
        first = case.ddr[case.prog:case.prog + INSN_BYTES].view(INSN_DTYPE)[0]
        f = validate.fields(first)
        if case.op in validate.SPARSE_OPS and rng.random() < INDEX_FAULT_SHARE:
            changes, what = {}, _corrupt_index(rng, case, f)
        else:
            changes, what = _mutate_insn(rng, f, case.ddr.size, case.table_len)
        f.update(changes)
        if validate.check(f, case.ddr.size, case.table_len, case.ddr, board)[0] == Fault.NONE:
            continue  # the mutation happened to stay valid: never run it
        rec = case.ddr[at:at + INSN_BYTES].view(INSN_DTYPE)
        rec[0] = first
        for name, value in changes.items():
            rec[0][name] = value
        where = "instruction 1 (after a valid one)" if at != case.prog else "instruction 0"
        return case, args, f"{where}: {what}"
    raise RuntimeError("no faulting mutation found")  # pragma: no cover


# ---------------------------------------------------------------- comparison

def _regions(case, args):
    """[(name, start, nbytes, element size)] of everything the case laid out,
    outputs first so an in-place operand is named by its output role."""
    prog, n_insn, table, table_len = (int(a) for a in args)
    out = []
    if n_insn and prog + INSN_BYTES <= case.ddr.size:
        f = validate.fields(case.ddr[prog:prog + INSN_BYTES].view(INSN_DTYPE)[0])
        for name, addr, nbytes, align in reversed(validate.operands(f)):
            out.append((name, addr, nbytes, align if name != "stats" else 1))
    out.append(("prog", prog, INSN_BYTES * n_insn, INSN_BYTES))
    out.append(("table", table, 4 * table_len, 4))
    return out


def _locate(offset, regions):
    for name, start, nbytes, elem in regions:
        if start <= offset < start + nbytes:
            if name == "stats":
                return {"operand": name, "byte": offset - start}
            return {"operand": name, "element": (offset - start) // elem,
                    "byte": offset - start}
    return {"operand": None}


def _shape_text(f):
    group = _shape_group(f["op"])
    names = _SHAPE_FIELDS.get(group, ())
    return {name: f[name] for name in names} | ({"flags": f["flags"]} if f["flags"] else {})


def _compare(engine, ref, case, args, kind):
    """(reference RunResult, None when both engines agree else a dict
    describing the first difference)."""
    ddr_ref, ddr_eng = case.ddr.copy(), case.ddr.copy()
    r_ref = ref.run(ddr_ref, *args)
    r_eng = engine.run(ddr_eng, *args)
    r_ref, r_eng = tuple(int(v) for v in r_ref), tuple(int(v) for v in r_eng)
    diff = np.flatnonzero(ddr_ref != ddr_eng)
    if r_ref == r_eng and diff.size == 0:
        return r_ref, None
    prog = int(args[0])
    f = validate.fields(case.ddr[prog:prog + INSN_BYTES].view(INSN_DTYPE)[0]) \
        if prog + INSN_BYTES <= case.ddr.size else {"op": case.op, "flags": 0}
    info = {"kind": kind, "opcode": op_name(int(case.op)), "shape": _shape_text(f),
            "numpy": r_ref, "engine": r_eng, "bytes_differing": int(diff.size)}
    if diff.size:
        off = int(diff[0])
        info.update(offset=off, numpy_byte=int(ddr_ref[off]), engine_byte=int(ddr_eng[off]),
                    **_locate(off, _regions(case, args)))
    return r_ref, info


def verify(engine_name, cases, seed, ops=None, progress=True, faults=None, board=None):
    """Run `cases` random valid cases (and `faults` fault cases, by default
    FAULT_SHARE of `cases`) on `engine_name` built for `board` (None: the
    default board) and on the numpy engine for the same board, the cases
    drawn for that board's buffers.

    Returns a dict: engine, board, seed, cases, faults, per_op {opcode:
    {cases, mismatches}}, per_fault {fault: {cases, mismatches}},
    mismatches (total), first_mismatch (None or details), seconds."""
    engine = get_engine(engine_name) if board is None else get_engine(engine_name, board=board)
    board = getattr(engine, "board", board)   # the engine's own; cases and reference for it
    ref = NumpyEngine(board=board)
    op_list = _op_list(ops)
    n_faults = int(round(FAULT_SHARE * cases)) if faults is None else int(faults)
    rng = np.random.default_rng(seed)
    report = {"engine": engine_name, "board": board, "seed": seed, "cases": int(cases),
              "faults": n_faults, "per_op": {}, "per_fault": {}, "mismatches": 0,
              "first_mismatch": None}
    t0 = time.perf_counter()
    where = f" on {board}" if board else ""
    with tqdm(total=cases + n_faults, desc=f"verify {engine_name}{where}", disable=not progress,
              unit="case") as bar:
        for i in range(cases + n_faults):
            if i < cases:
                case = random_case(rng, op=op_list[int(rng.integers(len(op_list)))], board=board)
                args, kind = case.run_args(), "valid"
            else:
                case, args, what = fault_case(rng, op_list, board=board)
                kind = "fault case, " + what
            result, bad = _compare(engine, ref, case, args, kind)
            if i < cases:
                key, name = "per_op", op_name(int(case.op))
            else:
                key, name = "per_fault", fault_name(result[0])
            bucket = report[key].setdefault(name, {"cases": 0, "mismatches": 0})
            bucket["cases"] += 1
            if bad is not None:
                bucket["mismatches"] += 1
                report["mismatches"] += 1
                if report["first_mismatch"] is None:
                    report["first_mismatch"] = dict(bad, case_index=i)
            bar.update()
    report["seconds"] = time.perf_counter() - t0
    return report


def format_report(report):
    """A human-readable summary of verify()'s report."""
    where = f" on {report['board']}" if report.get("board") else ""
    lines = [f"verify {report['engine']}{where} against numpy: {report['cases']} valid + "
             f"{report['faults']} fault cases, seed {report['seed']}, "
             f"{report.get('seconds', 0):.1f} s"]
    for title, key in (("opcode", "per_op"), ("fault", "per_fault")):
        rows = report[key]
        if not rows:
            continue
        width = max(len(title), *(len(k) for k in rows))
        lines.append(f"  {title:<{width}}  cases  mismatches")
        for name in sorted(rows):
            r = rows[name]
            lines.append(f"  {name:<{width}}  {r['cases']:5d}  {r['mismatches']:10d}")
    if report["mismatches"] == 0:
        lines.append("OK: every case bit-exact (DDR window and status/pc/fault_addr)")
        return "\n".join(lines)
    m = report["first_mismatch"]
    lines.append(f"MISMATCH in {report['mismatches']} case(s); first (case {m['case_index']}):")
    lines.append(f"  {m['opcode']} ({m['kind']}), shape {m['shape']}")
    lines.append(f"  RunResult numpy {m['numpy']}, {report['engine']} {m['engine']}")
    if m.get("bytes_differing"):
        where = m.get("operand") or "no operand"
        detail = f", element {m['element']}" if "element" in m else ""
        lines.append(f"  {m['bytes_differing']} byte(s) differ; first at offset {m['offset']} "
                     f"({where}{detail}, byte {m.get('byte', '-')}): numpy {m['numpy_byte']:#04x}, "
                     f"{report['engine']} {m['engine_byte']:#04x}")
    return "\n".join(lines)
