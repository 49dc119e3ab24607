"""End to end on the emulated device: fixed-point iterations lower the loss,
keep the master copy and the int8 copy consistent, checkpoints round-trip,
and the CLI reports a test accuracy."""
import numpy as np
import pytest

from ctrain.cli import main
from ctrain.compiler import compile_model
from ctrain.device.emulated import EmulatedDevice
from ctrain.errors import CheckpointError
from ctrain.fixedpoint import rshift_round, sat8
from ctrain.floatnet import FloatNet
from ctrain.model import digits_cnn
from ctrain.runtime import Runtime
from ctrain.train import TrainConfig, Trainer


def _runtime(digits, batch=32, seed=0):
    model = digits_cnn(digits.input_shape)
    net = FloatNet(model, model.init_params(np.random.default_rng(seed)))
    rt = Runtime(compile_model(model, batch), EmulatedDevice(ddr_bytes=16 << 20))
    acts, errs = net.calibrate(digits.train_x[:batch], digits.train_y[:batch])
    rt.load_float(net.params, [acts], [errs])
    rt.set_hyper(0.05, 0.9, 5e-4)
    return rt


def test_fixed_point_iterations_lower_the_loss(digits):
    rt = _runtime(digits)
    from ctrain.hostlib import quantize
    xq = quantize(digits.train_x[:32], -7)[0]
    y = digits.train_y[:32]
    losses = [rt.train_step(xq, y)[0] for _ in range(15)]
    assert losses[-1] < 0.5 * losses[0], losses


def test_int8_copy_is_derived_from_master(digits):
    rt = _runtime(digits)
    from ctrain.hostlib import quantize
    xq = quantize(digits.train_x[:32], -7)[0]
    for _ in range(3):
        rt.train_step(xq, digits.train_y[:32])
    arrays = rt.layer_arrays()
    for L in rt.program.layers:
        m = arrays[L.region("master")][:L.n_w].astype(np.int64)
        shift = int(arrays["table"][L.slot_w8]) - int(arrays["table"][L.slot_m])
        expect = sat8(rshift_round(m, shift))[0]
        assert np.array_equal(arrays[L.region("w")].reshape(-1), expect)
        assert np.any(arrays[L.region("mom")] != 0)


@pytest.mark.slow
def test_training_reaches_accuracy_and_checkpoint_resumes(tmp_path, digits):
    ck = str(tmp_path / "run.ckpt")
    cfg = TrainConfig(epochs=4, warmup_epochs=1, checkpoint=ck)
    t = Trainer(cfg, dataset=digits)
    acc = t.run(progress=False)
    assert acc > 0.85
    assert any(t.history.fixed) and not t.history.fixed[0]
    assert len(t.history) == t.it and len(t.history.epochs) == 4
    assert "saturation" in t.history.epochs[-1] and "exponents" in t.history.epochs[-1]
    # loading the last checkpoint gives back the same device state
    t2 = Trainer(cfg, dataset=digits)
    t2.load(ck)
    assert t2.it == t.it and t2.fixed
    a, b = t.runtime.layer_arrays(), t2.runtime.layer_arrays()
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert t2.evaluate() == acc


def test_truncated_checkpoint_is_a_clear_error(tmp_path, digits):
    ck = tmp_path / "run.ckpt"
    cfg = TrainConfig(epochs=1, warmup_epochs=0.5, checkpoint=str(ck))
    Trainer(cfg, dataset=digits).run(progress=False)
    raw = ck.read_bytes()
    ck.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match=str(ck.name)):
        Trainer(cfg, dataset=digits).load(str(ck))


def test_cli_states_test_accuracy(capsys):
    assert main(["train", "--epochs", "2", "--warmup", "1", "--no-progress"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("test accuracy: ") and "8-bit fixed point" in last


def test_cli_reports_bad_input(tmp_path, capsys):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 8)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05")
    assert main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--no-progress"]) == 2
    assert "ctrain: error:" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_is_bit_exact(tmp_path, digits):
    """Stopping at a checkpoint and resuming ends at the same bytes as one run."""
    ck = str(tmp_path / "run.ckpt")
    cfg = TrainConfig(epochs=2, batch_size=64, warmup_epochs=0.5, checkpoint=ck, checkpoint_every=5)
    whole = Trainer(cfg, dataset=digits)
    whole.run(progress=False)
    # a run that stops after 15 iterations (its last checkpoint), then a new process resumes
    part = Trainer(TrainConfig(**{**cfg.__dict__, "checkpoint": str(tmp_path / "part.ckpt")}), dataset=digits)
    while part.it < 15:
        part.step(part.batch_indices())
    part.save(str(tmp_path / "part.ckpt"))
    resumed = Trainer(TrainConfig(**{**cfg.__dict__, "checkpoint": str(tmp_path / "part.ckpt")}), dataset=digits)
    resumed.load(str(tmp_path / "part.ckpt"))
    resumed.run(progress=False)
    a, b = whole.runtime.layer_arrays(), resumed.runtime.layer_arrays()
    for k in a:
        assert np.array_equal(a[k], b[k]), k

