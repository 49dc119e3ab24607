"""Interruption: a training process killed with SIGKILL loses at most the work
since its last checkpoint, and `ctrain train --resume` ends at the same bytes
as a run that was never interrupted. Divergence stops with a clear error."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ctrain import checkpoint
from ctrain.cli import main
from ctrain.errors import TrainingDiverged
from ctrain.train import TrainConfig, Trainer

ARGS = ["--epochs", "4", "--batch-size", "16", "--warmup", "0.5", "--seed", "3"]


def _cli(ck, *extra):
    return [sys.executable, "-m", "ctrain.cli", "train", *ARGS, "--checkpoint", str(ck), "--no-progress", *extra]


def _device_state(path):
    arrays, meta = checkpoint.load(str(path))
    return {k: v for k, v in arrays.items() if k.startswith(("ddr_", "float_"))}, meta


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path):
    whole = tmp_path / "whole.ckpt"
    assert subprocess.run(_cli(whole), capture_output=True, timeout=300).returncode == 0

    cut = tmp_path / "cut.ckpt"
    proc = subprocess.Popen(_cli(cut, "--checkpoint-every", "40"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if cut.exists() and _device_state(cut)[1]["it"] >= 120:  # into the fixed-point phase
            break
        time.sleep(0.01)
    assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _device_state(cut)[1]["it"]  # the checkpoint is whole: atomic writes
    assert 120 <= killed_at < _device_state(whole)[1]["it"]

    assert subprocess.run(_cli(cut, "--resume"), capture_output=True, timeout=300).returncode == 0
    a, meta_a = _device_state(whole)
    b, meta_b = _device_state(cut)
    assert meta_a["it"] == meta_b["it"] and meta_a["fixed"] and meta_b["fixed"]
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert meta_a["exponents"] == meta_b["exponents"]


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--checkpoint", str(tmp_path / "none.ckpt"), "--resume", "--no-progress"]) == 2
    assert "needs an existing checkpoint" in capsys.readouterr().err


def test_diverging_loss_stops_training():
    with pytest.raises(TrainingDiverged, match="diverged"):
        Trainer(TrainConfig(epochs=2, lr=50.0)).run(progress=False)


def test_nan_in_float_phase_stops_training():
    t = Trainer(TrainConfig(epochs=1))
    t.net.params[0]["w"][0, 0, 0, 0] = np.nan
    with pytest.raises(TrainingDiverged, match="float phase, iteration 0"):
        t.step(t.batch_indices())
