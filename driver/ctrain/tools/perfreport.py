"""What the accelerator would do on a board: one training iteration of a
compiled Program through the performance model (ctrain.perfmodel), per
instruction and per phase, against the board's roofs and resources.

Shared by `ctrain perf`, `ctrain train --report` and notebook 2. Definitions
(docs/overlay.md "`ctrain perf`"):

- phases: FP, EB, WG are the convolution and fully connected instructions
  (dense and sparse), UPDATE the weight updates, `stream` the ReLU, pooling
  and batch-norm instructions of both directions;
- ideal cycles (`ideal_cycles`): a convolution's multiply-accumulates (the
  kept ones when sparse) over the design's peak products per cycle (its
  largest multiplier array, perfmodel.Board.peak_products: on DSP48E2
  boards the sparse position path's two products per PE, twice the dense
  array's L x R x C); an
  element-wise instruction's elements (as perfmodel.ops counts them: for
  pooling, the pooled map's) at the unit's rate: W (the port's beat) per
  cycle for ReLU and batch norm; max pooling's window elements (the pooled
  map's times k_h*k_w: its input, read once) W per cycle; UPDATE's
  CTRAIN_UPDATE_LANES per cycle; one per cycle for average pooling;
- efficiency: ideal cycles over modeled cycles; the total's counts only the
  FP/EB/WG instructions' ideal cycles (the PE array's useful work) over all
  cycles of the iteration;
- bound: compute when the model's pipelined-loop term is at least its DDR
  term, else memory;
- operational intensity: operations done per DDR byte moved;
- operations done by a pruned layer run dense (compiler.choose_execution)
  are its kept multiply-accumulates only: its zero products are work, not
  useful work, so its efficiency and GOP/s are a sparse layer's measures.

One iteration is the two device runs the runtime makes (the FP segment, then
the BP segment), each loading the parameter table at its first instruction.
"""
import json

import numpy as np

from .. import boards, perfmodel, validate
from . import resources
from ..compiler import EXEC_PHASES
from ..errors import CheckpointError, MappingError
from ..isa import Op
from ..model import stage_labels

#: The phases of the report, in print order.
PHASES = ("FP", "EB", "WG", "UPDATE", "stream")
#: Phases whose instructions run on the PE array (the total's efficiency).
PE_PHASES = ("FP", "EB", "WG")
MAC_OPS = frozenset(validate.CONV_OPS) | frozenset(validate.SPARSE_OPS)
#: Units that take a beat of W elements per cycle (stream.cpp, eltwise.cpp's ADD).
LANE_OPS = frozenset((Op.RELU_FP, Op.RELU_BP, Op.ADD)) | frozenset(validate.BN_OPS)
STREAM_OPS = (frozenset((Op.RELU_FP, Op.RELU_BP, Op.BN_FP, Op.BN_BP, Op.ADD)) | frozenset(validate.POOL_OPS)
              | frozenset(validate.AVG_OPS))
#: Input shape of a checkpoint's dataset (the loaders' (C, H, W)); models
#: without a listed dataset take their factory's default input.
DATASET_INPUT = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "cifar10": (3, 32, 32)}


def phase_of(op):
    op = Op(op)
    return "stream" if op in STREAM_OPS else perfmodel.PHASES[op]


def ideal_cycles(op, ops_done, board, window=1):
    """Cycles of an instruction at full use of its unit: multiply-accumulates
    (ops_done / 2) over the design's peak products per cycle (the largest
    multiplier array, perfmodel.Board.peak_products), rounded up, for a
    convolution, dense or sparse alike;
    for ReLU and batch norm, whose units take a beat of W elements per cycle,
    ops_done / W; for max pooling its windows' elements (ops_done x `window`,
    k_h*k_w) W per cycle (stream.cpp pool_tiled reads a beat of them per
    cycle); UPDATE's lanes (board.update_lanes) per cycle; one element
    (ops_done) per cycle for the others."""
    if Op(op) in MAC_OPS:
        return -(-(ops_done // 2) // board.peak_products)
    if Op(op) in LANE_OPS:
        return -(-int(ops_done) // board.ddr_beat)
    if Op(op) in validate.POOL_OPS:
        return -(-int(ops_done) * int(window) // board.ddr_beat)
    if Op(op) == Op.UPDATE:
        return -(-int(ops_done) // board.update_lanes)
    return int(ops_done)


def peak_gops(board):
    """The design's peak: 2 operations per product of its largest multiplier
    array per cycle (perfmodel.Board.peak_products)."""
    return 2 * board.peak_products * board.clock_mhz * 1e6 / 1e9


def port_gbps(board):
    """DDR GB/s the accelerator can use: the board's DDR, or its m_axi port's
    beat per cycle where that is narrower (perfmodel.Board.bytes_per_cycle)."""
    return board.bytes_per_cycle * board.clock_mhz * 1e6 / 1e9


def duplex_gbps(board):
    """DDR GB/s reads and writes can reach together: each m_axi data port's
    read and write channels each move a beat per cycle (AXI4's channels are
    independent, and the chunk and item pipelines overlap loads with
    stores; with two ports, CTRAIN_DDR_PORTS, the units that use the second
    run both at once), bounded by the DDR's peak."""
    return min(board.ddr_gbps,
               2 * board.ddr_ports * board.ddr_beat * board.clock_mhz * 1e6 / 1e9)


def roofline(board, intensity):
    """Attainable GOP/s at an operational intensity (ops per DDR byte, reads
    and writes together): the memory roof is the duplex bandwidth, which only
    an instruction that reads and writes equal amounts at once reaches."""
    return min(peak_gops(board), duplex_gbps(board) * intensity)


def sparse_indexes(program):
    """{aux offset: (rowptr, col, tptr, tpos, trow)} of a Program's sparse
    layers, from the index blocks the compiler built (no DDR image needed)."""
    return {program.plan[L.region("idx")].offset: L.index_arrays() for L in program.layers if L.sparse}


def instructions(program, board):
    """One dict per instruction of a training iteration (program order): the
    perfmodel's counters turned into cycles, ideal cycles, operations and DDR
    bytes."""
    b = perfmodel.board(board) if isinstance(board, str) else board
    indexes = sparse_indexes(program)
    run_starts = {start for start, _ in program.segments.values()}
    rows, labels = [], stage_labels(program.model)
    masked_dense = {L.stage.index: L for L in program.layers if L.mask is not None and not L.sparse}
    for k, insn in enumerate(program.insns):
        f = validate.fields(insn)
        if f["op"] == Op.HALT:
            continue
        op = Op(f["op"])
        index = indexes.get(f["aux"]) if op in validate.SPARSE_OPS else None
        it = perfmodel.iterations(insn, b, index=index,
                                  table_len=program.table_len if k in run_starts else 0)
        cyc, comp, mem = perfmodel.cycles_of(it, b)
        done, dense = perfmodel.ops(insn, index=index)
        L = masked_dense.get(program.insn_stage[k])
        if L is not None and op in validate.CONV_OPS:  # a pruned layer run dense: only kept products are useful
            done = dense // L.n_dense * L.kept
        stage = program.model.stages[program.insn_stage[k]]
        name = labels[stage.index]
        rows.append(dict(insn=k, stage=stage.index, layer=name, op=op.name, phase=phase_of(op),
                         cycles=int(cyc), planned_cycles=int(cyc - it.planned), compute=int(comp), memory=int(mem),
                         ideal_cycles=int(ideal_cycles(op, done, b, f["k_h"] * f["k_w"])), ops=int(done), dense_ops=int(dense),
                         ddr_bytes=int(it.rd + it.wr), bound="compute" if comp >= mem else "memory"))
    for r in rows:
        r.update(_rates(r, b))
    return rows


def _rates(r, b):
    """Derived figures of a row (or a sum of rows)."""
    sec = r["cycles"] / (b.clock_mhz * 1e6)
    return dict(seconds=sec, efficiency=r["ideal_cycles"] / r["cycles"] if r["cycles"] else 0.0,
                gops=r["ops"] / sec / 1e9 if sec else 0.0,
                equivalent_gops=r["dense_ops"] / sec / 1e9 if sec else 0.0,
                intensity=r["ops"] / r["ddr_bytes"] if r["ddr_bytes"] else 0.0)


def _sum(rows, b):
    s = {k: sum(r[k] for r in rows)
         for k in ("cycles", "planned_cycles", "ideal_cycles", "compute", "memory", "ops", "dense_ops", "ddr_bytes")}
    s.update(_rates(s, b))
    return s


def build(program, board, model=None, sparsity=None, layer_sparsity=None):
    """The report of one training iteration of `program` on `board` (a name
    or perfmodel.Board): the JSON shape of `ctrain perf --json` plus the
    per-instruction rows and the roofs."""
    b = perfmodel.board(board) if isinstance(board, str) else board
    rows = instructions(program, b)
    phases = {}
    for ph in PHASES:
        s = _sum([r for r in rows if r["phase"] == ph], b)
        phases[ph] = dict(cycles=s["cycles"], ideal_cycles=s["ideal_cycles"], efficiency=s["efficiency"],
                          seconds=s["seconds"], gops=s["gops"], equivalent_gops=s["equivalent_gops"],
                          compute=s["compute"], memory=s["memory"], planned_cycles=s["planned_cycles"],
                          planned_efficiency=s["ideal_cycles"] / s["planned_cycles"] if s["planned_cycles"] else 0.0)
    t = _sum(rows, b)
    pe_ideal = sum(phases[ph]["ideal_cycles"] for ph in PE_PHASES)
    total = dict(cycles=t["cycles"], seconds=t["seconds"], gops=t["gops"], equivalent_gops=t["equivalent_gops"],
                 efficiency=pe_ideal / t["cycles"] if t["cycles"] else 0.0, ideal_cycles=pe_ideal,
                 ddr_bytes=t["ddr_bytes"], planned_cycles=t["planned_cycles"],
                 planned_efficiency=pe_ideal / t["planned_cycles"] if t["planned_cycles"] else 0.0)
    if sparsity is None:
        sparsity = _program_sparsity(program)
    est = resources.estimate(b.name)
    rep = {"board": b.name, "model": model or "unnamed", "batch": int(program.batch), "sparsity": float(sparsity),
           "fits": bool(est.fits), "resources": est.resources,
           "resources_table": resources.format_resources(est),
           "phases": phases, "total": total,
           "peak": {"gops": peak_gops(b), "ddr_gbps": b.ddr_gbps, "port_gbps": port_gbps(b), "ddr_ports": b.ddr_ports,
                    "clock_mhz": b.clock_mhz, "pe_lanes": b.pe_lanes, "pe_rows": b.pe_rows,
                    "pe_cols": b.pe_cols, "pe_pos_pairs": int(b.pe_pos_pairs), "products": est.peak["products"],
                    # the chip's physical int8 peak (resources.peaks) beside the design's
                    "chip_int8_gops": est.peak["chip_int8"],
                    "part_clock_mhz": resources.part_clock_mhz(boards.get(b.name)),
                    "pe_fraction": est.peak_fraction},
           "instructions": rows}
    if layer_sparsity is not None:
        rep["layer_sparsity"] = [float(s) for s in layer_sparsity]
    rep["execution"] = execution(program)
    return rep


def execution(program):
    """Per pruned layer, and per unpruned one the compiler weighed on the
    sparse unit (compiler.choose_execution), the form it runs in and the
    opcode per phase; where the compiler chose ("auto"), the modeled cycles
    of both forms per phase."""
    labels, out = stage_labels(program.model), []
    for L, c in zip(program.layers, program.execution or [None] * len(program.layers)):
        if L.mask is None and c is None:
            continue
        row = {"layer": labels[L.stage.index], "exec": "sparse" if L.sparse else "dense",
               "kept": L.kept, "weights": L.n_dense}
        if c is not None:
            row.update(ops=c.ops(), dense_cycles=dict(c.dense), sparse_cycles=dict(c.sparse))
        out.append(row)
    return out


def _program_sparsity(program):
    kept = sum(L.kept for L in program.layers)
    return 1.0 - kept / sum(L.n_dense for L in program.layers)


def to_json(rep):
    """JSON text of a report (numpy scalars a resource model may hand over
    become plain numbers)."""
    def plain(o):
        if isinstance(o, np.generic):
            return o.item()
        raise TypeError(f"{type(o).__name__} is not JSON serialisable")
    return json.dumps(rep, indent=1, default=plain)


def format_report(rep):
    """The report as text: per instruction, per phase, total, roofs, resources."""
    p = rep["peak"]
    lines = [f"{rep['model']} on {rep['board']} ({p['pe_lanes']}x{p['pe_rows']}x{p['pe_cols']} PE array, "
             f"{p['clock_mhz']:g} MHz), "
             f"batch {rep['batch']}, sparsity {100 * rep['sparsity']:.1f}%",
             f"{'stage':>5} {'layer':<12} {'op':<9} {'phase':<6} {'cycles':>12} {'ideal':>12} {'eff':>6} "
             f"{'bound':<7} {'GOP/s':>7} {'eq GOP/s':>8} {'op/B':>7}"]
    for r in rep["instructions"]:
        lines.append(f"{r['stage']:>5} {r['layer']:<12} {r['op']:<9} {r['phase']:<6} {r['cycles']:>12,d} "
                     f"{r['ideal_cycles']:>12,d} {100 * r['efficiency']:>5.1f}% {r['bound']:<7} "
                     f"{r['gops']:>7.3f} {r['equivalent_gops']:>8.3f} {r['intensity']:>7.2f}")
    lines.append(f"{'phase':<6} {'cycles':>12} {'ideal':>12} {'eff':>6} {'GOP/s':>7} {'eq GOP/s':>8}")
    for ph, s in rep["phases"].items():
        lines.append(f"{ph:<6} {s['cycles']:>12,d} {s['ideal_cycles']:>12,d} {100 * s['efficiency']:>5.1f}% "
                     f"{s['gops']:>7.3f} {s['equivalent_gops']:>8.3f}")
    t = rep["total"]
    lines.append(f"total (one iteration): {t['cycles']:,d} cycles, {t['seconds'] * 1e3:.3f} ms, {t['gops']:.3f} GOP/s, "
                 f"{t['equivalent_gops']:.3f} equivalent GOP/s, PE efficiency {100 * t['efficiency']:.1f}%")
    lines.append(f"planned (every hand-pipelined region's stages concurrent, once it is DATAFLOW: "
                 f"docs/overlay.md \"Overlap: built and planned\"): "
                 f"{t['planned_cycles']:,d} cycles, PE efficiency "
                 f"{100 * t['planned_efficiency']:.1f}%; FP / EB / WG "
                 + " / ".join(f"{100 * rep['phases'][ph]['planned_efficiency']:.1f}%" for ph in PE_PHASES))
    port = "" if p["port_gbps"] >= p["ddr_gbps"] else f", the accelerator's port {p['port_gbps']:.3f} GB/s"
    if p.get("ddr_ports", 1) > 1:   # port 1: UPDATE (update.cpp), RELU_BP/BN_BP/ADD's second input
        port += f" (and a second port for UPDATE and the stream units' second inputs, {p['ddr_ports']} in all)"
    lines.append(f"roofs: peak {p['gops']:.2f} GOP/s (2 x {p['products']} products/cycle of the largest "
                 f"multiplier array x {p['clock_mhz']:g} MHz; the dense array's "
                 f"{p['pe_lanes'] * p['pe_rows'] * p['pe_cols']}"
                 + (", twice that with FP and EB positions and WG taps in pairs" if p.get("pe_pos_pairs")
                    else "")
                 + f"); DDR {p['ddr_gbps']:.3f} GB/s{port}")
    lines.append(f"chip int8 peak {p['chip_int8_gops']:.1f} GOP/s ({p['part_clock_mhz']:g} MHz): the PE peak is "
                 f"{100 * p['pe_fraction']:.1f}% of it, achieved {t['gops']:.3f} GOP/s "
                 f"({100 * t['gops'] / p['chip_int8_gops']:.2f}% of it)")
    lines += format_execution(rep["execution"])
    lines.append(rep["resources_table"])
    lines.append(f"fits {rep['board']}: {'yes' if rep['fits'] else 'NO'}")
    return "\n".join(lines)


def format_execution(rows):
    """Lines of the execution table (execution()): per pruned layer its form
    and, where the compiler chose, sparse / dense cycles per phase."""
    if not rows:
        return []
    lines = [f"{'layer':<12} {'kept':>9} {'runs':<6} " + " ".join(f"{ph + ' sparse/dense':>19}"
                                                                 for ph in EXEC_PHASES)]
    for r in rows:
        ratios = [f"{r['sparse_cycles'][ph] / max(r['dense_cycles'][ph], 1):>19.3f}"
                  if "dense_cycles" in r and ph in r["dense_cycles"] else f"{'-':>19}"
                  for ph in EXEC_PHASES]
        lines.append(f"{r['layer']:<12} {100 * r['kept'] / r['weights']:>8.1f}% {r['exec']:<6} " + " ".join(ratios))
    return lines


def compare(sparse, dense):
    """Lines comparing a sparse report with its dense counterpart per phase:
    modeled cycles, and the compute terms alone (pe + ew, what pruning
    removes without the DDR traffic)."""
    out = []
    for ph in PE_PHASES + ("UPDATE",):
        s, d = sparse["phases"][ph], dense["phases"][ph]
        out.append(f"{ph} cycles, sparse / dense: {s['cycles']:,d} / {d['cycles']:,d} = "
                   f"{s['cycles'] / max(d['cycles'], 1):.3f} (compute only: "
                   f"{s['compute'] / max(d['compute'], 1):.3f})")
    a, d = sparse["total"]["cycles"], dense["total"]["cycles"]
    out.append(f"iteration cycles, sparse / dense: {a:,d} / {d:,d} = {a / max(d, 1):.3f}")
    return out


# ------------------------------------------------------- programs to report

def default_input(model_name):
    """The input (C, H, W) a named model's factory defaults to."""
    import inspect

    from ..model import MODELS
    return tuple(inspect.signature(MODELS[model_name]).parameters["input_shape"].default)


def random_masks(model, sparsity, seed=0, scope="layer"):
    """Element-wise keep-masks pruning `sparsity` of freshly initialised
    (seeded) weights by magnitude, as the trainer prunes (ctrain.pruning);
    None when sparsity is 0. Per layer by default: initial magnitudes scale
    with 1/sqrt(fan-in), so one global threshold would empty the widest
    layers (CNV's 256x256 convolution keeps 1 of 589,824 weights at 80%),
    which trained weights do not do."""
    from ..pruning import prune_masks
    if sparsity == 0:
        return None
    params = model.init_params(np.random.default_rng(seed))
    return prune_masks([p["w"] for p in params], sparsity, "element", scope)


def checkpoint_masks(path):
    """(model name, input shape, masks or None, batch size) of a training
    checkpoint."""
    from .. import checkpoint
    from ..train import DEFAULT_MODEL
    arrays, meta = checkpoint.load(path)
    cfg = meta.get("config", {})
    name = cfg.get("model") or DEFAULT_MODEL.get(cfg.get("dataset"), "lenet5")
    masks, j = [], 0
    while f"mask{j}" in arrays:
        masks.append(arrays[f"mask{j}"].astype(bool))
        j += 1
    shape = DATASET_INPUT.get(cfg.get("dataset")) or default_input(name)
    return name, shape, masks or None, cfg.get("batch_size")


#: Batch size of `ctrain perf` when neither the user nor a checkpoint gives one.
DEFAULT_BATCH = 64


def perf_program(model_name, batch=None, sparsity=0.0, checkpoint=None, seed=0, scope="layer",
                 sparse_exec=None, board=None):
    """(Program, model name, overall sparsity, per-layer sparsity) of a named
    model at a batch size (None: the checkpoint's, else DEFAULT_BATCH),
    compiled without training for `board`: dense, with random masks, or with
    a checkpoint's masks, its pruned layers run as `sparse_exec` says
    (compiler.SPARSE_EXEC; None: the default, "auto")."""
    from ..compiler import DEFAULT_SPARSE_EXEC, compile_model
    from .. import torch_import  # noqa: F401  (a factory may return a torch.nn.Module)
    from ..model import build_model, weight_shape
    from ..pruning import sparsity_of
    shape = default_input(model_name) if model_name is not None else None
    masks = None
    if checkpoint is not None:
        ck_name, shape, masks, ck_batch = checkpoint_masks(checkpoint)
        batch = batch or ck_batch
        if model_name is not None and ck_name != model_name:
            raise CheckpointError(f"{checkpoint}: checkpoint is of model {ck_name!r}, not {model_name!r}")
        model_name = ck_name
    model = build_model(model_name, shape)
    if checkpoint is None:
        masks = random_masks(model, sparsity, seed, scope)
    elif masks is not None:
        shapes = [weight_shape(st) for st in model.param_stages]
        if len(masks) != len(shapes):
            raise CheckpointError(f"{checkpoint}: {len(masks)} masks for the {len(shapes)} layers of {model_name}")
        try:
            masks = [m.reshape(s) for m, s in zip(masks, shapes)]
        except ValueError:
            raise CheckpointError(f"{checkpoint}: masks {[m.shape for m in masks]} do not match "
                                  f"{model_name}'s weights {shapes}") from None
    per, total = sparsity_of(masks or [np.ones(weight_shape(st), bool) for st in model.param_stages])
    program = compile_model(model, batch or DEFAULT_BATCH, masks, sparse_exec=sparse_exec or DEFAULT_SPARSE_EXEC,
                            board=board)
    return program, model_name, float(total), per


def check_options(model, batch, board, sparsity, checkpoint, scope, json_path=None):
    """Reject bad `ctrain perf` options with one line, before any work."""
    import os

    from ..isa import LIMITS
    from ..model import MODELS
    from ..pruning import SCOPES
    if checkpoint is None and model is None:
        raise MappingError("--model is required (or --checkpoint)")
    if model is not None and model not in MODELS:
        raise MappingError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    if batch is not None and not 1 <= batch <= LIMITS["BATCH"]:
        raise MappingError(f"--batch {batch} is beyond the accelerator's 1..{LIMITS['BATCH']}")
    if board not in perfmodel.BOARDS:
        raise MappingError(f"unknown board {board!r}; choose one of {', '.join(perfmodel.BOARDS)}")
    if not 0.0 <= sparsity < 1.0:
        raise MappingError(f"--sparsity {sparsity} must be in [0, 1)")
    if scope not in SCOPES:
        raise MappingError(f"--prune-scope {scope!r}: choose one of {', '.join(SCOPES)}")
    if checkpoint is not None and sparsity:
        raise MappingError("--sparsity and --checkpoint exclude each other (the checkpoint has its masks)")
    if checkpoint is not None and not os.path.isfile(checkpoint):
        raise CheckpointError(f"{checkpoint}: checkpoint file not found")
    if json_path is not None and not os.path.isdir(os.path.dirname(os.path.abspath(json_path))):
        raise MappingError(f"--json {json_path}: directory {os.path.dirname(json_path)!r} does not exist")
