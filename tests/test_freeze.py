"""--freeze N: the first N Conv2d/Linear layers stay fixed. The program has no
WG or UPDATE for them and its backward pass ends at layer N; their bytes on
the device (int8 weights, master copy, momentum) do not change in training,
pruning leaves them whole, and the float phase does not move them either."""
import numpy as np
import pytest

from ctrain.cli import main
from ctrain.compiler import compile_model
from ctrain.errors import MappingError
from ctrain.isa import Op
from ctrain.model import digits_cnn
from ctrain.train import TrainConfig, Trainer

BP_OPS = (Op.CONV_EB, Op.CONV_WG, Op.SCONV_EB, Op.SCONV_WG, Op.UPDATE, Op.POOL_BP, Op.RELU_BP, Op.BN_BP)


def bp_ops(program):
    start, count = program.segments["bp"]
    return [(program.insn_stage[k], Op(int(program.insns[k]["op"]))) for k in range(start, start + count)]


def test_program_of_a_frozen_model():
    """digits-cnn: stages 0 conv, 1 pool, 2 conv, 3 pool, 4 linear, 5 linear (layers L0..L3)."""
    model = digits_cnn((1, 8, 8))
    assert bp_ops(compile_model(model, 16)) == [
        (5, Op.CONV_EB), (5, Op.CONV_WG), (5, Op.UPDATE), (4, Op.CONV_EB), (4, Op.CONV_WG), (4, Op.UPDATE),
        (3, Op.POOL_BP), (2, Op.CONV_EB), (2, Op.CONV_WG), (2, Op.UPDATE), (1, Op.POOL_BP),
        (0, Op.CONV_WG), (0, Op.UPDATE)]
    frozen = compile_model(model, 16, freeze=2)
    assert bp_ops(frozen) == [(5, Op.CONV_EB), (5, Op.CONV_WG), (5, Op.UPDATE), (4, Op.CONV_WG), (4, Op.UPDATE)]
    assert [L.frozen for L in frozen.layers] == [True, True, False, False]
    # errors exist only where a trained layer needs them: the outputs of stages 4 and 5
    assert sorted(r for r in frozen.plan.regions if r.startswith("err")) == ["err5", "err6"]
    assert bp_ops(compile_model(model, 16, freeze=3)) == [(5, Op.CONV_WG), (5, Op.UPDATE)]
    with pytest.raises(MappingError, match="freeze 4: must leave a layer to train, in 0..3"):
        compile_model(model, 16, freeze=4)


def test_frozen_layers_bytes_do_not_change_in_fixed_point_training(digits):
    cfg = TrainConfig(epochs=1, batch_size=32, train_count=640, warmup_epochs=0.0, freeze=2, prune=0.5,
                      prune_at=0.5, lr=0.05, sparse_exec="always")
    t = Trainer(cfg, dataset=digits)
    t._switch()
    before = t.runtime.layer_arrays()
    for _ in range(t.total):  # 20 iterations, pruned (and recompiled sparse) at 10
        t.step(t.batch_indices())
    after = t.runtime.layer_arrays()
    assert t.history.pruning and [L.sparse for L in t.runtime.program.layers] == [False, False, True, True]
    for j in range(4):
        for kind in ("w", "master", "mom", "mask"):
            name = f"{kind}{j}"
            if j < 2:
                assert before[name].tobytes() == after[name].tobytes(), name
        if j >= 2:
            assert not np.array_equal(t.runtime.float_params()[j]["w"] != 0, np.ones_like(t.masks[j])), j
            assert np.any(after[f"mom{j}"] != 0)
    for j in range(2):  # the frozen int8 copies keep their exponents too
        L = t.runtime.program.layers[j]
        assert before["table"][L.slot_w8] == after["table"][L.slot_w8]
        assert t.masks[j].all()
    assert 0.0 < t.evaluate() <= 1.0


def test_frozen_layers_do_not_move_in_the_float_phase(digits):
    cfg = TrainConfig(epochs=1, batch_size=32, train_count=320, fixed_point=False, freeze=1, prune=0.0)
    t = Trainer(cfg, dataset=digits)
    w0 = [{k: None if v is None else v.copy() for k, v in p.items()} for p in t.net.params]
    for _ in range(5):
        t.step(t.batch_indices())
    assert np.array_equal(t.net.params[0]["w"], w0[0]["w"]) and np.array_equal(t.net.params[0]["b"], w0[0]["b"])
    assert all(not np.array_equal(t.net.params[j]["w"], w0[j]["w"]) for j in (1, 2, 3))


def test_cli_freeze_trains(capsys):
    assert main(["train", "--epochs", "1", "--batch-size", "32", "--train-count", "320", "--warmup", "0.5",
                 "--freeze", "2", "--no-progress"]) == 0
    assert "test accuracy" in capsys.readouterr().out


def _tiny_resnet():
    from ctrain.model import BatchNorm2d, Conv2d, Flatten, GlobalAvgPool2d, Linear, ReLU, Residual, Sequential
    body = [Conv2d(8, 8, 3, padding=1, bias=False), BatchNorm2d(8), ReLU(),
            Conv2d(8, 8, 3, padding=1, bias=False), BatchNorm2d(8)]
    return Sequential(Conv2d(1, 8, 3, padding=1, bias=False), BatchNorm2d(8), ReLU(), Residual(body), ReLU(),
                      GlobalAvgPool2d(), Flatten(), Linear(8, 10), input_shape=(1, 8, 8))


def test_freeze_in_a_layer_graph(digits):
    """A residual block: freezing the stem and the block's first convolution
    leaves WG/UPDATE for the last two layers only, no error below the
    block's second convolution (not even the fork's sum), and their bytes fixed."""
    model = _tiny_resnet()
    full, frozen = compile_model(model, 16), compile_model(model, 16, freeze=2)
    wg = [model.stages[s].param_index for s, op in bp_ops(frozen) if op == Op.CONV_WG]
    assert wg == [3, 2] and [op for _, op in bp_ops(frozen)].count(Op.UPDATE) == 2
    assert Op.ADD in [op for _, op in bp_ops(full)] and Op.ADD not in [op for _, op in bp_ops(frozen)]
    conv2 = model.param_stages[2].index
    assert all(s >= conv2 for s, _ in bp_ops(frozen))
    assert (conv2, Op.CONV_EB) not in bp_ops(frozen) and (conv2, Op.CONV_WG) in bp_ops(frozen)
    t = Trainer(TrainConfig(epochs=1, batch_size=16, train_count=160, warmup_epochs=0.5, freeze=2, prune=0.0,
                            lr=0.02), dataset=digits, model=_tiny_resnet())
    t0 = [{k: None if v is None else v.copy() for k, v in p.items()} for p in t.net.params]
    while not t.fixed:
        t.step(t.batch_indices())
    assert all(np.array_equal(t.net.params[j]["w"], t0[j]["w"]) for j in (0, 1))  # float phase
    before = t.runtime.layer_arrays()
    for _ in range(5):
        t.step(t.batch_indices())
    after = t.runtime.layer_arrays()
    for j in (0, 1):
        for kind in ("w", "master", "mom"):
            assert before[f"{kind}{j}"].tobytes() == after[f"{kind}{j}"].tobytes(), (kind, j)
    assert not np.array_equal(before["master3"], after["master3"])
