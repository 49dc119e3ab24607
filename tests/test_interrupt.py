"""Kill-and-resume loop: a run checkpointing every iteration is stopped again
and again (SIGKILL, Ctrl-C and SIGTERM, often mid-save) and resumed each time.
Ctrl-C and SIGTERM end with exactly `ctrain: interrupted` (no traceback, exit
130); no temp file survives; the final state equals an uninterrupted run."""
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ctrain import checkpoint
from ctrain.cli import main

ARGS = ["--epochs", "2", "--batch-size", "64", "--warmup", "0.5", "--seed", "5", "--no-progress"]


@pytest.fixture(autouse=True)
def _ctrl_c_raises():
    """Ctrl-C as a terminal delivers it, whatever this test process inherited:
    a shell that starts the suite in the background without job control
    starts it with SIGINT ignored, and an ignored signal stays ignored in
    every child (Python then never installs KeyboardInterrupt)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _cmd(ck, resume):
    return [sys.executable, "-m", "ctrain", "train", *ARGS, "--checkpoint", str(ck), "--checkpoint-every", "1",
            *(["--resume"] if resume else [])]


def _state(path):
    arrays, meta = checkpoint.load(str(path))
    return {k: v for k, v in arrays.items() if k.startswith(("ddr_", "float_", "mask"))}, meta


@pytest.mark.slow
def test_kill_and_resume_loop_leaves_no_temp_files_and_ends_where_one_run_does(tmp_path):
    whole = tmp_path / "whole" / "run.ckpt"
    whole.parent.mkdir()
    assert main(["train", *ARGS, "--checkpoint", str(whole)]) == 0
    cut_dir = tmp_path / "cut"
    cut_dir.mkdir()
    cut = cut_dir / "run.ckpt"
    rng = random.Random(1)
    stops = 0
    for sig in (signal.SIGKILL, signal.SIGINT, signal.SIGTERM):
        start = cut.stat().st_mtime_ns if cut.exists() else 0
        proc = subprocess.Popen(_cmd(cut, cut.exists()), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 300
        while proc.poll() is None and not (cut.exists() and cut.stat().st_mtime_ns != start):
            assert time.monotonic() < deadline, "no checkpoint written in 300 s"
            time.sleep(0.005)  # until it saved once: past start-up, making progress
        time.sleep(rng.uniform(0.0, 0.03))
        if proc.poll() is None:
            proc.send_signal(sig)
        err = proc.communicate(timeout=120)[1].decode()
        if proc.returncode == 0:
            break
        stops += 1
        if sig == signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL
        else:
            assert (proc.returncode, err) == (130, "ctrain: interrupted\n")
    assert stops == 3, "the run finished before it could be interrupted"
    r = subprocess.run(_cmd(cut, True), capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    assert sorted(os.listdir(cut_dir)) == ["run.ckpt"]
    a, meta_a = _state(whole)
    b, meta_b = _state(cut)
    assert meta_a["it"] == meta_b["it"] == 44 and meta_b["fixed"]
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert meta_a["exponents"] == meta_b["exponents"]


def test_stale_temp_files_are_removed_at_the_next_save(tmp_path):
    """Temp files of writers that no longer run (a SIGKILL mid-save) go; a
    live writer's temp file and unrelated hidden files stay."""
    path = tmp_path / "run.ckpt"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [tmp_path / f".run.ckpt.{dead.pid}.abc123.tmp", tmp_path / ".run.ckpt.k2j_x9.tmp"]
    live = tmp_path / f".run.ckpt.{os.getppid()}.zzz.tmp"
    other = tmp_path / ".other.ckpt.1.abc.tmp"
    for p in (*stale, live, other):
        p.write_bytes(b"partial")
    checkpoint.save(path, {"w": np.ones(2)}, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, live.name, other.name])


def _interrupt_inside_savez(monkeypatch, sig):
    """Deliver `sig` from inside np.savez, i.e. while the temp file is half written."""
    real = np.savez

    def savez(f, **arrays):
        signal.raise_signal(sig)
        real(f, **arrays)
    monkeypatch.setattr(checkpoint.np, "savez", savez)


def test_ctrl_c_inside_a_save_is_delivered_once_the_file_is_whole(tmp_path, monkeypatch):
    path = tmp_path / "run.ckpt"
    _interrupt_inside_savez(monkeypatch, signal.SIGINT)
    try:
        checkpoint.save(path, {"w": np.arange(3.0)}, {"n": 1})
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the held Ctrl-C was never delivered")
    arrays, meta = checkpoint.load(path)
    assert meta == {"n": 1} and arrays["w"].tolist() == [0.0, 1.0, 2.0]
    assert os.listdir(tmp_path) == ["run.ckpt"]


def test_sigterm_inside_a_save_ends_ctrain_cleanly(tmp_path, monkeypatch, capsys):
    ck = tmp_path / "run.ckpt"
    _interrupt_inside_savez(monkeypatch, signal.SIGTERM)
    assert main(["train", *ARGS, "--checkpoint", str(ck)]) == 130
    assert capsys.readouterr().err == "ctrain: interrupted\n"
    assert checkpoint.load(ck)[1]["it"] == 22  # the first epoch's checkpoint, whole
    assert os.listdir(tmp_path) == ["run.ckpt"]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
