"""The compiler's choice of dense or sparse execution per pruned layer
(compiler.choose_execution): from the cycle model, never slower than either
extreme on any board, independent of the other layers' forms, deterministic,
redone when the masks change, and the same bits in every form."""
import numpy as np
import pytest

from ctrain import perfmodel, sparse_tiling, validate
from ctrain.tools import perfreport
from ctrain.compiler import SPARSE_EXEC, compile_model
from ctrain.data import Dataset
from ctrain.device.emulated import EmulatedDevice
from ctrain.errors import MappingError
from ctrain.isa import Op
from ctrain.model import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, build_model
from ctrain.train import TrainConfig, Trainer
from conftest import csim_or_skip


def cnv_small():
    """CNV's pattern (3x3 convolutions, pooling, two fully connected layers) at a test's size."""
    return Sequential(Conv2d(3, 16, 3, padding=1), ReLU(), Conv2d(16, 16, 3, padding=1), ReLU(), MaxPool2d(2),
                      Conv2d(16, 32, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(32 * 4 * 4, 64),
                      ReLU(), Linear(64, 10), input_shape=(3, 16, 16))


def _cycles(program, board):
    rep = perfreport.build(program, board)
    return rep["total"]["cycles"], {ph: rep["phases"][ph]["cycles"] for ph in ("FP", "EB", "WG", "UPDATE")}


@pytest.mark.parametrize("board", perfmodel.BOARDS)
def test_auto_is_never_slower_and_each_layer_costs_what_was_modeled(board):
    model = build_model("lenet5", (1, 28, 28))
    masks = perfreport.random_masks(model, 0.8)
    auto, always, never = (compile_model(model, 16, masks, sparse_exec=m, board=board) for m in SPARSE_EXEC)
    c_auto, c_always, c_never = (_cycles(p, board)[0] for p in (auto, always, never))
    assert c_auto <= min(c_always, c_never)
    # each layer's instructions in the mixed program cost what the choice modeled for its form
    # (regions are aligned, so a layer's counters do not depend on the others' forms)
    rowless = not sparse_tiling.unit(board).rows
    for L, c in zip(auto.layers, auto.execution):
        if c is None:   # its sparse form refused (no row-tile path: the fully connected layers)
            assert rowless and not L.sparse and L.j >= 2   # fc1, fc2, fc3
            continue
        assert L.sparse == c.runs_sparse and c.board == board
        assert set(c.dense) == set(c.sparse) == ({"FP", "WG", "UPDATE"} | ({"EB"} if L.j else set()))
        got = {}
        for k, insn in enumerate(auto.insns):
            op = Op(int(insn["op"]))
            if auto.insn_stage[k] != L.stage.index or not (
                    op in validate.CONV_OPS or op in validate.SPARSE_OPS or op == Op.UPDATE):
                continue
            ph = perfmodel.PHASES[op]
            assert op.name == c.ops()[ph]
            index = L.index_arrays() if op in validate.SPARSE_OPS else None
            got[ph] = got.get(ph, 0) + perfmodel.cycles(insn, board, index=index)
        assert got == (c.sparse if L.sparse else c.dense)
    # so the program costs the dense one with each layer's cheaper form swapped in
    saved = sum(min(sum(c.sparse.values()), sum(c.dense.values())) - sum(c.dense.values())
                for c in auto.execution if c is not None)
    assert rowless == (None in auto.execution)
    assert c_auto == c_never + saved


def test_choice_is_deterministic_and_follows_the_policy():
    model = cnv_small()
    # 60%: on the Pynq-Z2 a mixed program (at 80% every layer is cheaper sparse since session 6)
    masks = perfreport.random_masks(model, 0.6)
    a = compile_model(model, 8, masks, board="pynq_z2")
    b = compile_model(model, 8, [m.copy() for m in masks], board="pynq_z2")
    assert a.insns.tobytes() == b.insns.tobytes() and a.execution == b.execution
    choice = [L.sparse for L in a.layers]
    assert True in choice and False in choice      # a mixed program: the choice matters here
    ops = {int(i["op"]) for i in a.insns}
    assert {Op.SCONV_FP, Op.CONV_FP, Op.SCONV_WG, Op.CONV_WG} <= ops
    assert all(L.sparse for L in compile_model(model, 8, masks, sparse_exec="always").layers)
    assert not any(L.sparse for L in compile_model(model, 8, masks, sparse_exec="never").layers)
    # an explicit choice (a checkpoint's) is taken as it is
    flipped = [not s for s in choice]
    assert [L.sparse for L in compile_model(model, 8, masks, sparse_exec=flipped).layers] == flipped
    with pytest.raises(MappingError, match="sparse_exec 'sometimes': choose one of auto, always, never"):
        compile_model(model, 8, masks, sparse_exec="sometimes")
    with pytest.raises(MappingError, match="execution choice"):
        compile_model(model, 8, masks, sparse_exec=flipped[:-1])
    # unpruned layers are not chosen for on the Pynq-Z2 (its two arrays are equal)
    dense = compile_model(model, 8, None)
    assert dense.execution == [None] * 5 and not any(L.sparse for L in dense.layers)


@pytest.mark.parametrize("board", perfmodel.BOARDS)
def test_unpruned_layers_run_sparse_only_where_the_position_path_is_larger_and_faster(board):
    """On a DSP48E2 board the position path makes twice the dense array's
    products, and "auto" weighs each unpruned layer there with every weight
    kept: it runs sparse (its mask all ones, SCONV, every weight stored)
    only when strictly cheaper, each such layer in the form its modeled
    cycles say; `never` and `always` leave unpruned layers dense, and so
    does the Pynq-Z2, whose arrays are equal."""
    model = build_model("lenet5", (1, 28, 28))
    auto = compile_model(model, 16, None, board=board)
    b = perfmodel.board(board)
    if b.peak_products == b.macs:
        assert board == "pynq_z2" and auto.execution == [None] * 5
        assert not any(L.sparse for L in auto.layers)
        return
    assert any(L.sparse for L in auto.layers) and not all(L.sparse for L in auto.layers)
    for L, c in zip(auto.layers, auto.execution):
        if c is None:   # no row-tile path: its fully connected layers are not weighed
            assert not sparse_tiling.unit(board).rows and L.mask is None and L.j >= 2
            continue
        assert c.whole   # every layer of LeNet-5 fits the sparse index
        assert L.sparse == (sum(c.sparse.values()) < sum(c.dense.values()))
        if L.sparse:
            assert L.mask.all() and L.kept == L.n_dense == L.n_w
        else:
            assert L.mask is None
    for mode in ("never", "always"):
        p = compile_model(model, 16, None, sparse_exec=mode, board=board)
        assert not any(L.sparse for L in p.layers) and p.execution == [None] * 5
    # frozen layers (fine-tuning: no WG, no UPDATE) keep the dense unit, as they are never pruned
    frozen = compile_model(model, 16, None, freeze=2, board=board)
    assert frozen.execution[:2] == [None, None] and not any(L.sparse for L in frozen.layers[:2])
    # the choice never costs cycles: at most the all-dense program's
    assert _cycles(auto, board)[0] < _cycles(compile_model(model, 16, None, sparse_exec="never",
                                                           board=board), board)[0]


def _run_unpruned(mode, board="zcu102"):
    """6 iterations of batch 16, 2 in float, no pruning."""
    rng = np.random.default_rng(0)
    tx, ty = _data(rng, 96, (1, 28, 28))
    cfg = TrainConfig(dataset="synthetic", model="lenet5", epochs=1, batch_size=16, warmup_epochs=0.34,
                      prune=0, lr=0.05, seed=1, sparse_exec=mode, board=board)
    t = Trainer(cfg, dataset=Dataset(tx, ty, tx[:16], ty[:16], "synthetic"),
                device=EmulatedDevice(ddr_bytes=32 << 20, board=board))
    while t.it < t.total:
        t.step(t.batch_indices())
    assert t.fixed and t.masks is None
    return t


def test_an_unpruned_layer_run_sparse_trains_the_same_bits_and_resumes_in_its_layout(tmp_path):
    """LeNet-5 unpruned on the ZCU102: "auto" runs its first convolutions on
    the position path with every weight kept, and trains exactly the bits
    of the all-dense program; its checkpoint records those layers as sparse
    (`true`) and a run resumed under `never` keeps that layout."""
    from ctrain import checkpoint
    auto, never = _run_unpruned("auto"), _run_unpruned("never")
    choice = [L.sparse for L in auto.runtime.program.layers]
    assert True in choice and not any(L.sparse for L in never.runtime.program.layers)
    a, n = _state(auto), _state(never)
    for key in n:
        if key not in ("stats", "ops"):
            assert a[key] == n[key], key
    # every weight kept: each instruction's statistics record the same, field for field
    assert a["ops"] != n["ops"] and a["stats"].tobytes() == n["stats"].tobytes()
    ck = str(tmp_path / "unpruned.ckpt")
    auto.save(ck)
    _, meta = checkpoint.load(ck)
    assert meta["execution"] == [True if s else None for s in choice]
    r = Trainer.from_checkpoint(ck, dataset=auto.ds, settings={"sparse_exec": "never"})
    assert [L.sparse for L in r.runtime.program.layers] == choice
    assert _state(r)["master0"] == a["master0"]


def _data(rng, n, shape):
    y = rng.integers(0, 10, n)
    x = rng.random((n,) + shape, dtype=np.float32) * 0.2
    for i, c in enumerate(y):
        x[i, :, c:c + 5, c:c + 5] += 0.8
    return np.clip(x, 0, 1), y.astype(np.int64)


def _run(name, mode, board, engine="numpy"):
    """8 iterations of batch 16: 2 in float, then fixed point, pruned 80% per
    layer at iteration 4 (the program recompiled: the choice made again)."""
    rng = np.random.default_rng(0)
    shape = (1, 28, 28) if name == "lenet5" else (3, 16, 16)
    tx, ty = _data(rng, 128, shape)
    vx, vy = _data(rng, 16, shape)
    cfg = TrainConfig(dataset="synthetic", model="lenet5", epochs=1, batch_size=16, warmup_epochs=0.25,
                      prune=0.8, prune_at=0.5, prune_scope="layer", lr=0.05, seed=1, sparse_exec=mode, board=board)
    t = Trainer(cfg, dataset=Dataset(tx, ty, vx, vy, "synthetic"), model=None if name == "lenet5" else cnv_small(),
                device=EmulatedDevice(ddr_bytes=32 << 20, engine=engine, board=board))
    while t.it < t.total:
        t.step(t.batch_indices())
    assert t.fixed and t.history.pruning
    return t


def _state(t):
    """The run's results in a form every execution shares: per layer the
    dense int8 weights, master copy (weights and biases), momentum and mask;
    the table; the activations and errors; and per instruction
    its statistics record (compared by _check_stats)."""
    rt = t.runtime
    arrays = rt.layer_arrays()
    out = {"table": arrays["table"].tobytes()}
    for L in rt.program.layers:
        for kind in ("w", "master", "mom", "mask"):
            a = arrays[L.region(kind)].reshape(-1)
            out[f"{kind}{L.j}"] = np.concatenate([L.scatter(a[:L.n_w]), a[L.n_w:]]).tobytes()
    for name in rt.program.plan.regions:
        if name.startswith(("act", "err")):
            rt.views[name].sync_from_device()
            out[name] = np.array(rt.views[name]).tobytes()
    rt.stats.sync_from_device()
    out["stats"] = np.array(rt.stats)
    out["ops"] = [int(i["op"]) for i in rt.program.insns]
    return out


def _check_stats(a, b):
    """Statistics records agree field for field, but where the numeric
    contract lets the form show (docs/numeric.md "Sparse or dense
    execution"): a WG's record describes the gradients it stored (the kept
    ones, or all), an UPDATE's `count` is the weights it stored."""
    for k, (ra, rb, op, op_b) in enumerate(zip(a["stats"], b["stats"], a["ops"], b["ops"])):
        fields = (("exp",) if op in (Op.CONV_WG, Op.SCONV_WG) else
                  ("max_abs", "exp", "sat", "nnz") if op == Op.UPDATE else ra.dtype.names)
        for f in fields:
            assert np.array_equal(ra[f], rb[f]), (k, Op(op).name, f)
        if (op, op_b) == (Op.SCONV_WG, Op.CONV_WG):   # the kept gradients are among all of them
            assert all(ra[f] <= rb[f] for f in ("max_abs", "sat", "nnz", "count")) and ra["count"] < rb["count"]


#: Boards on which the auto choice is mixed for each model (the test asserts
#: it; on the Pynq-Z2 and KV260 every pruned layer of cnv-small now runs
#: sparse, since session 6's position-parallel changes), and the form of
#: each layer under `always`: every one sparse on the Pynq-Z2 (its fully
#: connected ones on the row-tile path), the convolutions on the ZCU104
#: (without the path, its fully connected layers run dense).
@pytest.mark.parametrize("name, board, always", [("lenet5", "pynq_z2", [True] * 5),
                                                 ("cnv-small", "zcu104", [True] * 3 + [False] * 2)])
def test_auto_always_and_never_compute_the_same_bits(name, board, always):
    runs = {mode: _run(name, mode, board) for mode in SPARSE_EXEC}
    choice = [L.sparse for L in runs["auto"].runtime.program.layers]
    assert True in choice and False in choice, choice   # the mixed program is among those compared
    assert [L.sparse for L in runs["always"].runtime.program.layers] == always
    assert not any(L.sparse for L in runs["never"].runtime.program.layers)
    states = {mode: _state(t) for mode, t in runs.items()}
    ref = states["never"]
    for mode in ("auto", "always"):
        s = states[mode]
        for key in ref:
            if key not in ("stats", "ops"):
                assert s[key] == ref[key], (mode, key)
        _check_stats(s, ref)
    for L in runs["never"].runtime.program.layers:   # pruned weights exactly zero, kept ones trained
        keep = np.frombuffer(ref[f"mask{L.j}"], np.uint8)[:L.n_dense].astype(bool)
        master = np.frombuffer(ref[f"master{L.j}"], np.int32)[:L.n_dense]
        assert 0.15 < keep.mean() < 0.25 and not master[~keep].any() and np.count_nonzero(master[keep])


@pytest.mark.slow
def test_lenet5_auto_under_csim_equals_numpy_and_never():
    csim_or_skip()
    a, n = _state(_run("lenet5", "auto", "kv260", "csim")), _state(_run("lenet5", "never", "kv260", "numpy"))
    ref = _state(_run("lenet5", "auto", "kv260", "numpy"))
    for key in ref:
        if key != "stats":
            assert a[key] == ref[key], key
    assert a["stats"].tobytes() == ref["stats"].tobytes()
    for key in n:
        if key not in ("stats", "ops"):
            assert a[key] == n[key], key


def test_a_checkpoint_resumes_in_the_layout_it_saved(tmp_path):
    from ctrain import checkpoint
    t = _run("lenet5", "auto", "pynq_z2")
    choice = [L.sparse for L in t.runtime.program.layers]
    ck = str(tmp_path / "run.ckpt")
    t.save(ck)
    # resumed where the settings choose otherwise (another board, and every
    # layer dense: since the dense block mode every board's "auto" makes
    # LeNet-5's choice), the checkpoint's layout is kept
    other = [L.sparse for L in compile_model(t.model, 16, t.masks, board="zcu102",
                                             sparse_exec="never").layers]
    assert other != choice
    r = Trainer.from_checkpoint(ck, dataset=t.ds, settings={"board": "zcu102", "sparse_exec": "never"})
    assert [L.sparse for L in r.runtime.program.layers] == choice
    assert _state(r)["master1"] == _state(t)["master1"]
    # a checkpoint from before the choice: its boolean sparse_exec says the layout
    arrays, meta = checkpoint.load(ck)
    del meta["execution"]
    meta["config"]["sparse_exec"] = True
    sparse_ck = str(tmp_path / "old.ckpt")
    rt_arrays = {k: v for k, v in arrays.items() if not k.startswith("ddr_")}
    always = _run("lenet5", "always", "pynq_z2")
    rt_arrays.update({f"ddr_{k}": v for k, v in always.runtime.layer_arrays().items()})
    checkpoint.save(sparse_ck, rt_arrays, meta)
    old = Trainer.from_checkpoint(sparse_ck, dataset=t.ds)
    assert old.cfg.sparse_exec == "always" and all(L.sparse for L in old.runtime.program.layers)


def test_the_emulated_device_is_the_board_compiled_for():
    """A program is tiled for cfg.board's dense buffers (the ZCU102's band
    of 1024 positions is twice the Pynq-Z2's): the device a Trainer makes
    emulates that board, and a device given for another board is refused
    in one line before any training (it would stop at FAULT_TILE)."""
    from ctrain.errors import ConfigError
    from ctrain.train import make_device
    assert make_device(TrainConfig(dataset="synthetic", board="zcu102")).board == "zcu102"
    rng = np.random.default_rng(0)
    tx, ty = _data(rng, 32, (1, 28, 28))
    cfg = TrainConfig(dataset="synthetic", model="lenet5", epochs=1, batch_size=16, board="zcu102")
    with pytest.raises(ConfigError) as e:
        Trainer(cfg, dataset=Dataset(tx, ty, tx, ty, "synthetic"), device=EmulatedDevice(ddr_bytes=32 << 20))
    assert e.value.field == "board" and "emulates pynq_z2" in str(e.value) and "\n" not in str(e.value)
    # the same check where a program meets a device, for a Runtime made by hand
    from ctrain.errors import CTrainError
    from ctrain.runtime import Runtime
    with pytest.raises(CTrainError, match="emulates pynq_z2, the program is compiled for zcu102"):
        Runtime(compile_model(build_model("lenet5", (1, 28, 28)), 4, board="zcu102"), EmulatedDevice(ddr_bytes=32 << 20))
