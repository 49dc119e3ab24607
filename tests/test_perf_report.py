"""`ctrain perf` and its report (ctrain.tools.perfreport): the JSON shape, totals
that are the sums of the per-instruction performance model, efficiency as
ideal over modeled cycles, ideal cycles that shrink with the kept weights,
checkpoint masks, `ctrain train --report`, one-line errors; and the CNV
network: it maps at batch 64 and trains on the emulated device."""
import json
import math

import numpy as np
import pytest

from ctrain import checkpoint, perfmodel, validate
from ctrain.tools import perfreport
from ctrain.cli import main
from ctrain.compiler import compile_model
from ctrain.device.emulated import EmulatedDevice
from ctrain.errors import CheckpointError
from ctrain.floatnet import FloatNet
from ctrain.hostlib import quantize
from ctrain.isa import Op
from ctrain.model import MODELS, cnv, lenet5, lenet5_bn, weight_shape
from ctrain.pruning import prune_masks
from ctrain.runtime import Runtime

#: Opcodes whose chunk loops are DATAFLOW (stream.cpp, eltwise.cpp, update.cpp): their overlap is built.
BUILT_OPS = ("RELU_FP", "RELU_BP", "BN_FP", "BN_BP", "ADD", "UPDATE", "CONV_FP", "CONV_EB", "CONV_WG",
             "POOL_FP", "POOL_BP")

PHASE_KEYS = {"FP", "EB", "WG", "UPDATE", "stream"}
RESOURCE_KEYS = {"dsp", "bram36", "uram", "lut"}


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _perf_json(tmp_path, *args):
    out = tmp_path / "perf.json"
    assert main(["perf", *args, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_json_has_exactly_the_documented_shape(tmp_path, capsys):
    rep = _perf_json(tmp_path, "--model", "lenet5-bn", "--batch", "8", "--board", "ultra96", "--sparsity", "0.8")
    assert {"board", "model", "batch", "sparsity", "fits", "resources", "phases", "total"} <= set(rep)
    assert (rep["board"], rep["model"], rep["batch"]) == ("ultra96", "lenet5-bn", 8)
    assert isinstance(rep["sparsity"], float) and abs(rep["sparsity"] - 0.8) < 1e-3
    assert [round(v, 3) for v in rep["layer_sparsity"]] == [0.8] * 5   # random masks: S in every layer
    assert set(rep["phases"]) == PHASE_KEYS
    for ph in rep["phases"].values():
        assert type(ph["cycles"]) is int and type(ph["ideal_cycles"]) is int
        assert isinstance(ph["efficiency"], float)
    t = rep["total"]
    assert type(t["cycles"]) is int
    assert all(isinstance(t[k], float) for k in ("seconds", "gops", "equivalent_gops", "efficiency"))
    assert t["cycles"] == sum(ph["cycles"] for ph in rep["phases"].values())
    text = capsys.readouterr().out
    assert "lenet5-bn on ultra96" in text and f"{t['cycles']:,d} cycles" in text
    glob = _perf_json(tmp_path, "--model", "lenet5-bn", "--batch", "8", "--sparsity", "0.8",
                      "--prune-scope", "global")
    assert abs(glob["sparsity"] - 0.8) < 1e-3 and len({round(v, 2) for v in glob["layer_sparsity"]}) > 1


def test_json_carries_the_resource_estimate(tmp_path, capsys):
    from ctrain.tools import resources
    rep = _perf_json(tmp_path, "--model", "lenet5", "--batch", "4", "--board", "zcu104")
    assert set(rep["resources"]) == RESOURCE_KEYS
    for r in rep["resources"].values():
        assert set(r) >= {"used", "available"} and _number(r["used"]) and _number(r["available"])
    est = resources.estimate("zcu104")
    assert rep["resources"] == json.loads(json.dumps(est.resources)) and rep["fits"] is bool(est.fits)
    assert resources.format_resources(est) in capsys.readouterr().out


def _independent_model(program, board):
    """Cycles, ideal cycles and ops per instruction straight from perfmodel,
    with the table load at the start of each device run."""
    b = perfmodel.board(board)
    starts = {s for s, _ in program.segments.values()}
    index_of = {}
    for L in program.layers:
        if L.sparse:
            f = dict(c_out=L.w_shape[0], c_in=int(np.prod(L.w_shape[1:])), k_h=1, k_w=1, count=L.n_w, aux=0)
            index_of[program.plan[L.region("idx")].offset] = validate.index_arrays(L.index, f)
    # pruned layers run dense (a board without the row-tile path: the fully
    # connected ones under always) do only their kept products' work
    masked_dense = {L.stage.index: L for L in program.layers if L.mask is not None and not L.sparse}
    out = []
    for k, insn in enumerate(program.insns):
        f = validate.fields(insn)
        index = index_of.get(f["aux"]) if f["op"] in validate.SPARSE_OPS else None
        it = perfmodel.iterations(insn, b, index=index, table_len=program.table_len if k in starts else 0)
        cyc = perfmodel.cycles_of(it, b)[0]
        done = perfmodel.ops(insn, index=index)[0]
        L = masked_dense.get(program.insn_stage[k])
        if L is not None and f["op"] in validate.CONV_OPS:
            done = done // L.n_dense * L.kept
        conv = f["op"] in validate.CONV_OPS or f["op"] in validate.SPARSE_OPS
        lanes = f["op"] in (Op.RELU_FP, Op.RELU_BP) or f["op"] in validate.BN_OPS   # W per cycle
        pool = f["op"] in validate.POOL_OPS   # the windows' elements, W per cycle
        sgd = f["op"] == Op.UPDATE   # CTRAIN_UPDATE_LANES per cycle
        ideal = math.ceil(done / 2 / b.peak_products) if conv else math.ceil(done / b.ddr_beat) if lanes else \
            math.ceil(done * f["k_h"] * f["k_w"] / b.ddr_beat) if pool else \
            math.ceil(done / b.update_lanes) if sgd else done
        out.append((Op(f["op"]), cyc, ideal, done))
    return out


@pytest.mark.parametrize("board", perfmodel.BOARDS)
def test_totals_are_sums_of_the_per_instruction_model(board):
    model = lenet5_bn()
    masks = prune_masks([p["w"] for p in model.init_params(np.random.default_rng(3))], 0.7, scope="layer")
    masks[2] = None   # one dense layer among sparse ones
    program = compile_model(model, 6, masks, sparse_exec="always", board=board)
    rep = perfreport.build(program, board, "lenet5-bn")
    ref = _independent_model(program, board)
    groups = {"FP": {Op.CONV_FP, Op.SCONV_FP}, "EB": {Op.CONV_EB, Op.SCONV_EB}, "WG": {Op.CONV_WG, Op.SCONV_WG},
              "UPDATE": {Op.UPDATE},
              "stream": {Op.RELU_FP, Op.RELU_BP, Op.POOL_FP, Op.POOL_BP, Op.BN_FP, Op.BN_BP}}
    assert {op for op, *_ in ref} <= set().union(*groups.values())
    for ph, ops in groups.items():
        got = rep["phases"][ph]
        assert got["cycles"] == sum(c for op, c, _, _ in ref if op in ops) > 0
        assert got["ideal_cycles"] == sum(i for op, _, i, _ in ref if op in ops) > 0
        assert got["efficiency"] == got["ideal_cycles"] / got["cycles"]
    t = rep["total"]
    assert t["cycles"] == sum(c for _, c, _, _ in ref)
    pe = sum(i for op, _, i, _ in ref if op not in groups["UPDATE"] | groups["stream"])
    assert t["efficiency"] == pe / t["cycles"] and 0 < t["efficiency"] < 1
    b = perfmodel.board(board)
    assert t["seconds"] == t["cycles"] / (b.clock_mhz * 1e6)
    assert t["gops"] == pytest.approx(sum(d for *_, d in ref) / t["seconds"] / 1e9, rel=1e-12)
    assert t["equivalent_gops"] > t["gops"]   # pruned work counted as done
    for r in rep["instructions"]:   # every point lies under the roofs
        assert r["gops"] <= perfreport.roofline(b, r["intensity"]) * (1 + 1e-9)
        assert r["bound"] == ("compute" if r["compute"] >= r["memory"] else "memory")


@pytest.mark.parametrize("board", ["pynq_z2", "zcu102"])
def test_planned_reading_takes_off_what_the_hand_pipelined_regions_would_overlap(board):
    """The cycles charge a hand-pipelined region's stages one after another
    (as the HLS runs them); the planned figures take off Iters.planned, what
    they would overlap as DATAFLOW, per instruction, phase and iteration. The
    dense convolutions' item loops are DATAFLOW since session 22
    (CTRAIN_CONV_DATAFLOW), as are the chunk loops of the stream units and,
    on every board since session 22, max pooling's bands
    (CTRAIN_POOL_DATAFLOW): a dense CNV iteration (every layer on the dense
    unit: `never`) plans nothing, its overlap is in the cycles. A board
    header without CTRAIN_POOL_DATAFLOW would plan its pooling bands."""
    program = compile_model(cnv(), 64, board=board, sparse_exec="never")
    rep = perfreport.build(program, board, "cnv")
    b = perfmodel.board(board)
    starts = {s for s, _ in program.segments.values()}
    planned, per_op = 0, {}
    for k, (insn, r) in enumerate(zip((i for i in program.insns if validate.fields(i)["op"] != Op.HALT),
                                      rep["instructions"])):
        it = perfmodel.iterations(insn, b, table_len=program.table_len if r["insn"] in starts else 0)
        assert r["planned_cycles"] == r["cycles"] - it.planned
        planned += it.planned
        per_op.setdefault(r["op"], [0, 0])
        per_op[r["op"]][0] += it.planned
        per_op[r["op"]][1] += it.hidden
    t = rep["total"]
    assert t["planned_cycles"] == t["cycles"] - planned
    assert b.pool_dataflow and planned == 0
    assert t["planned_efficiency"] == t["ideal_cycles"] / t["planned_cycles"] == t["efficiency"]
    for ph in rep["phases"].values():
        assert ph["planned_cycles"] <= ph["cycles"]
    assert sum(ph["planned_cycles"] for ph in rep["phases"].values()) == t["planned_cycles"]
    for op in BUILT_OPS:   # DATAFLOW item and chunk loops: their overlap is in the cycles
        if op in per_op:
            assert per_op[op][0] == 0 and per_op[op][1] > 0, op


def test_sparse_ideal_cycles_shrink_with_the_kept_weights():
    # the Pynq-Z2: the board with the row-tile path, so every layer runs sparse under always
    model, batch, board = lenet5(), 16, perfmodel.board("pynq_z2")
    masks = prune_masks([p["w"] for p in model.init_params(np.random.default_rng(5))], 0.8, scope="layer")
    dense = perfreport.build(compile_model(model, batch, sparse_exec="never", board=board.name), board)["instructions"]
    sparse = perfreport.build(compile_model(model, batch, masks, sparse_exec="always", board=board.name),
                              board)["instructions"]
    assert [r["op"] for r in sparse] == [r["op"].replace("CONV", "SCONV") if "CONV" in r["op"] else r["op"]
                                         for r in dense]
    for d, s in zip(dense, sparse):
        if d["phase"] not in ("FP", "EB", "WG"):
            continue
        st = model.stages[d["stage"]]
        m = masks[st.param_index]
        kept = int(m.sum())
        positions = d["ops"] // (2 * m.size)   # n * h_out * w_out of the dense instruction
        assert d["ideal_cycles"] == -(-positions * m.size // board.peak_products)
        assert s["ideal_cycles"] == -(-positions * kept // board.peak_products)
        assert abs(s["ideal_cycles"] / d["ideal_cycles"] - kept / m.size) <= 1 / d["ideal_cycles"]
        assert s["dense_ops"] == d["dense_ops"] and s["ops"] == positions * kept * 2


def test_checkpoint_masks_make_the_program_sparse(tmp_path):
    model = lenet5()
    masks = prune_masks([p["w"] for p in model.init_params(np.random.default_rng(9))], 0.6)
    ck = tmp_path / "run.ckpt"
    checkpoint.save(str(ck), {f"mask{j}": m.astype(np.uint8) for j, m in enumerate(masks)},
                    {"config": {"model": "lenet5", "dataset": "mnist", "batch_size": 12}})
    program, name, total, per = perfreport.perf_program(None, checkpoint=str(ck), sparse_exec="always")
    assert name == "lenet5" and program.batch == 12
    assert [L.n_w for L in program.layers] == [int(m.sum()) for m in masks]
    assert all(np.array_equal(L.mask, m) for L, m in zip(program.layers, masks))
    assert total == pytest.approx(1 - sum(m.sum() for m in masks) / sum(m.size for m in masks))
    with pytest.raises(CheckpointError, match="not 'cnv'"):
        perfreport.perf_program("cnv", checkpoint=str(ck))
    for other, dataset, problem in (("mlp", "mnist", "5 masks for the 2 layers of mlp"),
                                    ("lenet5", "cifar10", "do not match lenet5's weights")):
        checkpoint.save(str(ck), {f"mask{j}": m.astype(np.uint8) for j, m in enumerate(masks)},
                        {"config": {"model": other, "dataset": dataset, "batch_size": 12}})
        with pytest.raises(CheckpointError, match=problem):
            perfreport.perf_program(None, checkpoint=str(ck))


def test_train_report_is_the_perf_report_of_the_final_program(tmp_path, capsys):
    ck = tmp_path / "run.ckpt"
    assert main(["train", "--epochs", "1", "--warmup", "0.5", "--prune", "0.5", "--prune-at", "0.6",
                 "--checkpoint", str(ck), "--report", "--board", "zcu102", "--no-progress"]) == 0
    trained = capsys.readouterr().out
    rep = _perf_json(tmp_path, "--checkpoint", str(ck), "--board", "zcu102")
    assert rep["model"] == "digits-cnn" and rep["batch"] == 16 and rep["sparsity"] > 0.45
    text = perfreport.format_report(rep)
    assert text in trained   # the same program, the same report
    assert "iteration cycles, sparse / dense" in trained


@pytest.mark.parametrize("argv, message", [
    (["--model", "resnet"], "unknown model 'resnet'"),
    (["--model", "cnv", "--batch", "0"], "--batch 0"),
    (["--model", "cnv", "--batch", "4096"], "--batch 4096"),
    (["--model", "cnv", "--batch", "many"], "invalid int value"),
    (["--model", "cnv", "--board", "vcu118"], "unknown board 'vcu118'"),
    (["--model", "cnv", "--sparsity", "1"], "--sparsity 1.0"),
    (["--model", "cnv", "--sparsity", "-0.1"], "--sparsity -0.1"),
    (["--model", "cnv", "--sparsity", "0.5", "--checkpoint", "x.ckpt"], "not allowed with"),
    (["--model", "cnv", "--checkpoint", "missing.ckpt"], "missing.ckpt: checkpoint file not found"),
    (["--model", "cnv", "--prune-scope", "net"], "--prune-scope 'net'"),
    (["--batch", "8"], "--model is required"),
    (["--model", "cnv", "--json", "no/such/dir/out.json"], "directory 'no/such/dir' does not exist"),
])
def test_bad_input_is_one_line_before_any_work(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        rc = main(["perf", *argv] + ([] if "--json" in argv else ["--json", "out.json"]))
    except SystemExit as exc:   # what argparse itself rejects
        rc = exc.code
    assert rc == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ctrain: error: ") and message in lines[0], captured.err
    assert not (tmp_path / "out.json").exists()


# ------------------------------------------------------------------- CNV

@pytest.mark.slow
def test_cnv_maps_at_batch_64():
    model = MODELS["cnv"]()
    assert [st.out_shape for st in model.param_stages] == [
        (64, 30, 30), (64, 28, 28), (128, 12, 12), (128, 10, 10), (256, 3, 3), (256, 1, 1),
        (512, 1, 1), (512, 1, 1), (10, 1, 1)]
    assert [type(st.layer).__name__ for st in model.stages].count("BatchNorm2d") == 6
    assert all(model.stages[st.index + 1].kind == "bn" for st in model.param_stages[:6])
    assert sum(int(np.prod(weight_shape(st))) for st in model.param_stages) == 1_542_848
    masks = prune_masks([p["w"] for p in model.init_params(np.random.default_rng(0))], 0.8, scope="layer")
    # the smallest and the largest array (the report's sums on every board:
    # test_totals_are_sums_of_the_per_instruction_model; 3 CPU-s a board here),
    # each the board's program (validated as the engines will run it)
    for board in (perfmodel.BOARDS[0], perfmodel.BOARDS[-1]):
        program = compile_model(model, 64, board=board)
        sparse = compile_model(model, 64, masks, board=board)
        d, s = perfreport.build(program, board, "cnv"), perfreport.build(sparse, board, "cnv")
        assert d["total"]["gops"] == pytest.approx(d["total"]["equivalent_gops"])
        # the same dense-equivalent work, a fifth of it done (whether it is faster
        # is the cycle model's finding, reported by `ctrain perf`, not asserted)
        assert s["total"]["equivalent_gops"] * s["total"]["seconds"] == pytest.approx(
            d["total"]["equivalent_gops"] * d["total"]["seconds"], rel=1e-3)  # UPDATE: kept weights only
        assert s["total"]["gops"] < 0.5 * s["total"]["equivalent_gops"]


@pytest.mark.slow
@pytest.mark.parametrize("sparsity", [0.0, 0.8])
def test_cnv_trains_on_the_emulated_device(sparsity):
    """A few fixed-point iterations of CNV at batch 4 on random 3x32x32 data:
    the loss on the repeated batch falls and every layer's weights move."""
    rng = np.random.default_rng(1)
    model = cnv()
    net = FloatNet(model, model.init_params(rng))
    masks = prune_masks([p["w"] for p in net.params], sparsity, scope="layer") if sparsity else None
    if masks:
        net.prune(masks)
    x = rng.random((4, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, 4)
    rt = Runtime(compile_model(model, 4, masks), EmulatedDevice(ddr_bytes=64 << 20))
    rt.load_float(net.params, *[[t] for t in net.calibrate(x, y)], masks,
                  [net.bn_affine(k) for k in range(len(net.bn))])
    rt.set_hyper(0.002, 0.9, 0.0)
    before = rt.layer_arrays()
    xq = quantize(x, -7)[0]
    losses = [rt.train_step(xq, y)[0] for _ in range(8)]
    after = rt.layer_arrays()
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    for L in rt.program.layers:
        assert not np.array_equal(before[L.region("master")], after[L.region("master")]), L.region("master")
