"""Fuzzing the accelerator's instruction decoder (both engines).

Streams start as random valid programs (ctrain.tools.random_insn) and are mutated:
bit flips, fields set to boundary values, garbage words, foreign opcodes,
dense tilings at boundary values (some past the buffers: FAULT_TILE),
longer streams of mixed instructions, bad run arguments, and bit flips in a
sparse instruction's index block. Each stream runs
inside a DDR window fenced by guard bytes, so a write outside the window is
caught; every rejection must come back as a fault code whose DeviceFault
message names the instruction, opcode and address; with two engines, both
must leave identical bytes and registers."""
import time
from collections import Counter

import numpy as np
from tqdm.auto import tqdm

from .. import isa, validate
from ..device.accelerator import fault_error
from ..engine import get_engine
from . import random_insn

GUARD = 4096
GUARD_BYTE = 0xA5
HANG_SECONDS = 10.0
_WORDS = isa.INSN_BYTES // 4
_BOUNDARY = (0, 1, 2, 3, 4, 7, 8, 63, 64, 127, 128, 255, 256, 511, 512, 4095, 4096,
             (1 << 15), (1 << 16) - 1, (1 << 31) - 1, 1 << 31, (1 << 32) - 1)


def _words(ddr, prog, n):
    return ddr[prog:prog + n * isa.INSN_BYTES].view("<u4").reshape(n, _WORDS)


#: Words of the dense tiling (tile_g, tile_br, tile_rb) and of the channels.
_TILE_WORDS = tuple(isa.INSN_DTYPE.fields[n][1] // 4 for n in ("tile_g", "tile_br", "tile_rb"))
_CH_WORDS = tuple(isa.INSN_DTYPE.fields[n][1] // 4 for n in ("c_in", "c_out"))


def _mutate_words(rng, w, ddr_size):
    kind = rng.integers(7)
    k, f = rng.integers(w.shape[0]), rng.integers(_WORDS)
    if kind == 0:    # bit flips anywhere in the stream
        for _ in range(rng.integers(1, 9)):
            w[rng.integers(w.shape[0]), rng.integers(_WORDS)] ^= np.uint32(1 << int(rng.integers(32)))
    elif kind == 1:  # a field set to a boundary value
        w[k, f] = _BOUNDARY[rng.integers(len(_BOUNDARY))]
    elif kind == 2:  # an address field just inside / past the window
        f = rng.integers(15, 22)
        w[k, f] = max(0, ddr_size + int(rng.integers(-40, 40))) & 0xFFFFFFFF
    elif kind == 3:  # a foreign or invalid opcode, or stray flag bits
        if rng.random() < 0.5:
            w[k, 0] = int(rng.choice([0, isa.Op.COUNT, isa.Op.COUNT + 1, 255, (1 << 32) - 1,
                                      int(rng.integers(1 << 32))]))
        else:
            w[k, 1] |= np.uint32(1 << int(rng.integers(32)))
    elif kind == 4:  # a garbage instruction
        w[k] = rng.integers(0, 1 << 32, _WORDS, dtype=np.uint64).astype(np.uint32)
    elif kind == 5:  # a slot field beyond the table
        w[k, rng.integers(22, 27)] = int(rng.integers(0, 64))
    else:            # a tiling at boundary values; often every one of the most reduced
        for t in _TILE_WORDS:   # channels in one group, past the buffers (FAULT_TILE)
            w[k, t] = _BOUNDARY[rng.integers(len(_BOUNDARY))] if rng.random() < 0.7 else 0
        if rng.random() < 0.5:
            reduced = _CH_WORDS[1] if w[k, 0] == isa.Op.CONV_EB else _CH_WORDS[0]
            w[k, reduced] = w[k, _TILE_WORDS[0]] = isa.LIMITS["CH"]


#: Share of sparse streams whose index block gets bit flips (FAULT_INDEX, or a
#: different valid index both engines must agree on).
INDEX_FLIP_SHARE = 0.3


def _flip_index(rng, case):
    """Bit flips in the index block of the case's (sparse) first instruction."""
    f = validate.fields(case.ddr[case.prog:case.prog + isa.INSN_BYTES].view(isa.INSN_DTYPE)[0])
    at, size = f["aux"], validate.index_bytes(f)
    for _ in range(rng.integers(1, 4)):
        case.ddr[at + int(rng.integers(size))] ^= np.uint8(1 << int(rng.integers(8)))


def random_stream(rng):
    """(ddr, prog, n_insn, table, table_len) of one mutated stream."""
    case = random_insn.random_case(rng)
    if case.op in validate.SPARSE_OPS and rng.random() < INDEX_FLIP_SHARE:
        _flip_index(rng, case)
    ddr, (prog, n, table, table_len) = case.ddr, case.run_args()
    if rng.random() < 0.4:  # repeat the instruction into a longer stream, placed after the data
        reps = int(rng.integers(2, 9))
        body = np.tile(ddr[prog:prog + n * isa.INSN_BYTES], reps)
        start = -(-ddr.size // isa.ALIGN) * isa.ALIGN
        grown = np.zeros(start + body.size, np.uint8)
        grown[:ddr.size] = ddr
        grown[start:] = body
        ddr, prog, n = grown, start, n * reps
    if rng.random() < 0.9:
        _mutate_words(rng, _words(ddr, prog, n), ddr.size)
    else:  # bad run arguments instead
        which = rng.integers(4)
        if which == 0:
            n = int(rng.choice([n + 1, n + 1000, (1 << 32) - 1]))
        elif which == 1:
            prog = int(rng.choice([prog + 2, ddr.size, ddr.size - 4]))
        elif which == 2:
            table_len = int(rng.choice([0, isa.LIMITS["TABLE"] + 1, table_len + (1 << 20)]))
        else:
            table = int(rng.choice([table + 1, ddr.size]))
    return ddr, prog, n, table, table_len


def _fenced(ddr):
    buf = np.full(ddr.size + 2 * GUARD, GUARD_BYTE, np.uint8)
    buf[GUARD:GUARD + ddr.size] = ddr
    return buf, buf[GUARD:GUARD + ddr.size]


def run_one(engine, stream):
    """Run one stream fenced; returns (RunResult, window bytes, seconds, guards intact)."""
    ddr, prog, n, table, table_len = stream
    buf, window = _fenced(ddr)
    t0 = time.perf_counter()
    res = engine.run(window, prog, n, table, table_len)
    dt = time.perf_counter() - t0
    intact = bool(np.all(buf[:GUARD] == GUARD_BYTE) and np.all(buf[GUARD + ddr.size:] == GUARD_BYTE))
    return res, window, dt, intact


def _message_ok(res, stream):
    ddr, prog, n = stream[0], stream[1], stream[2]
    program = None
    if 0 <= prog and prog + min(n, 1 << 16) * isa.INSN_BYTES <= ddr.size and prog % 4 == 0:
        program = ddr[prog:prog + min(n, 1 << 16) * isa.INSN_BYTES].view(isa.INSN_DTYPE)
    msg = str(fault_error(int(res.status), int(res.pc), int(res.fault_addr), program))
    ok = isa.fault_name(int(res.status)) in msg and f"instruction {int(res.pc)}" in msg
    if program is not None and int(res.pc) < len(program):
        ok = ok and isa.op_name(int(program[int(res.pc)]["op"])) in msg
    return ok, msg


#: What `ctrain fuzz` runs by default: the engines and the number of streams.
ENGINES = ("numpy",)
STREAMS = 10000


def fuzz(engines=ENGINES, streams=STREAMS, seed=0, progress=True, board=None):
    """Fuzz the given engines on the same streams; returns a report dict.
    `board`: the configuration engines given by name emulate (None: the
    default board); the streams are the same on every board (random_case
    draws for no board: a board without the row-tile path meets the sparse
    instructions it refuses)."""
    engs = [get_engine(e, board=board) if isinstance(e, str) else e for e in engines]
    rng = np.random.default_rng(seed)
    rep = {e.name: {"streams": 0, "completed": 0, "rejected": Counter(), "crashes": 0, "hangs": 0,
                    "outside_writes": 0, "unclear": 0, "max_seconds": 0.0} for e in engs}
    rep["mismatches"] = 0
    rep["first_problem"] = None
    for _ in tqdm(range(streams), disable=not progress, desc="fuzz", unit="stream"):
        stream = random_stream(rng)
        outs = []
        for e in engs:
            r = rep[e.name]
            r["streams"] += 1
            try:
                res, window, dt, intact = run_one(e, stream)
            except Exception as exc:  # an engine must report faults, never raise
                r["crashes"] += 1
                rep["first_problem"] = rep["first_problem"] or f"{e.name} raised {exc!r}"
                outs.append(None)
                continue
            r["max_seconds"] = max(r["max_seconds"], dt)
            r["hangs"] += dt > HANG_SECONDS
            if not intact:
                r["outside_writes"] += 1
                rep["first_problem"] = rep["first_problem"] or f"{e.name} wrote outside the DDR window"
            if res.status == isa.Fault.NONE:
                r["completed"] += 1
            else:
                r["rejected"][isa.fault_name(int(res.status))] += 1
                ok, msg = _message_ok(res, stream)
                if not ok:
                    r["unclear"] += 1
                    rep["first_problem"] = rep["first_problem"] or f"unclear fault message: {msg}"
            outs.append((tuple(int(v) for v in res), window.tobytes()))
        if len(outs) > 1 and any(o != outs[0] for o in outs[1:]):
            rep["mismatches"] += 1
            rep["first_problem"] = rep["first_problem"] or "engines disagree on a stream"
    return rep


def format_report(rep):
    lines = []
    for name, r in rep.items():
        if not isinstance(r, dict):
            continue
        rej = sum(r["rejected"].values())
        lines.append(f"{name}: {r['streams']} streams, {r['completed']} ran to completion, {rej} rejected "
                     f"with a fault ({', '.join(f'{k} {v}' for k, v in sorted(r['rejected'].items()))}); "
                     f"crashes {r['crashes']}, hangs {r['hangs']}, writes outside DDR {r['outside_writes']}, "
                     f"unclear messages {r['unclear']}, slowest stream {r['max_seconds'] * 1e3:.1f} ms")
    if len([k for k, v in rep.items() if isinstance(v, dict)]) > 1:
        lines.append(f"engine mismatches: {rep['mismatches']}")
    if rep["first_problem"]:
        lines.append(f"first problem: {rep['first_problem']}")
    return "\n".join(lines)


def clean(rep):
    """True when no engine crashed, hung, wrote outside DDR, gave an unclear fault or disagreed."""
    engines = [v for v in rep.values() if isinstance(v, dict)]
    return rep["mismatches"] == 0 and all(
        r["crashes"] == r["hangs"] == r["outside_writes"] == r["unclear"] == 0 for r in engines)
