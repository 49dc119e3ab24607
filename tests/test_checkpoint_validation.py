"""A checkpoint whose digest is right but whose content is wrong for the run
(the writer was buggy, or someone re-signed an edit) is rejected as a whole,
before any state is used: `ctrain train --resume` gives one error line naming
the field or array and what was expected, exit status 2, and leaves every file
as it was. A resume with different settings names every difference."""
import numpy as np
import pytest

from ctrain import checkpoint
from ctrain.cli import main
from ctrain.train import TrainConfig, Trainer
from test_cli_errors import fails

ARGS = ["--epochs", "2", "--batch-size", "64", "--warmup", "0.5", "--no-progress"]
CUT = 30  # fixed point from 11, pruned at 22, of 44 iterations


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """(arrays, meta) of a run stopped at iteration CUT: fixed point, pruned."""
    path = tmp_path_factory.mktemp("good") / "run.ckpt"
    t = Trainer(TrainConfig(epochs=2, batch_size=64, warmup_epochs=0.5, checkpoint=str(path)))
    while t.it < CUT:
        loss, acc = t.step(t.batch_indices())
        t.history.add(loss, acc, t.fixed)
    assert t.fixed and t.masks is not None
    t.save(str(path))
    return checkpoint.load(str(path))


def _region(arrays, kind):
    return next(k for k in sorted(arrays) if k.startswith("ddr_") and k[4:].startswith(kind))


def _set(d, key, value):
    d[key] = value


def _table(arrays, meta):
    t = arrays["ddr_table"].copy()
    t[-1] = 1 << 30
    arrays["ddr_table"] = t


def _poke(name_of, value, dtype=None):
    def edit(arrays, meta):
        name = name_of(arrays)
        a = arrays[name].astype(dtype or arrays[name].dtype)
        a.reshape(-1)[0] = value
        arrays[name] = a
    return edit


TAMPER = [
    ("no it", lambda a, m: m.pop("it"), "'it' is missing"),
    ("no exponents", lambda a, m: m.pop("exponents"), "'exponents' is missing"),
    ("negative it", lambda a, m: _set(m, "it", -1), "'it' is -1, expected an iteration in 0..44"),
    ("huge it", lambda a, m: _set(m, "it", 10 ** 12), "expected an iteration in 0..44"),
    ("fractional it", lambda a, m: _set(m, "it", 30.5), "'it' is 30.5"),
    ("junk history", lambda a, m: _set(m, "history", "junk"), "'history' is 'junk'"),
    ("history longer than the run", lambda a, m: _set(m, "history", {**m["history"], "loss": [0.0] * 99}),
     "'history'"),
    ("None config", lambda a, m: _set(m, "config", None), "'config' is None, expected the run's settings"),
    ("junk tops", lambda a, m: _set(m, "tops", [[1, 2]]), "'tops'"),
    ("fixed flag wrong", lambda a, m: _set(m, "fixed", False), "'fixed' is False, expected True"),
    ("negative runtime_it", lambda a, m: _set(m, "runtime_it", -3), "'runtime_it' is -3"),
    ("exponent slot beyond table", lambda a, m: m["exponents"].update({"99999": [1]}), "beyond the"),
    ("table value 2^30", _table, "'ddr_table'", "exponents within +-1024"),
    ("missing master", lambda a, m: a.pop(_region(a, "master")), "(device state) is missing"),
    ("missing mask", lambda a, m: a.pop("mask0"), "'mask0' (pruning mask of layer 0) is missing"),
    ("mask byte 2", _poke(lambda a: "mask0", 2), "'mask0'", "0 (pruned) or 1 (kept)"),
    ("device mask byte 7", _poke(lambda a: _region(a, "mask"), 7), "(device state): values out of range",
     "0 or 1"),
    ("NaN weight", _poke(lambda a: "float_w0", np.nan), "'float_w0' (layer 0): values out of range",
     "finite"),
    ("float64 weights", _poke(lambda a: "float_w1", 0.0, np.float64), "'float_w1' (layer 1) is float64",
     "expected float32"),
    ("stray device array", lambda a, m: _set(a, "ddr_bogus", np.zeros(3, np.int32)), "ddr_bogus",
     "not state of this program"),
]


@pytest.mark.parametrize("case", TAMPER, ids=lambda c: c[0])
def test_tampered_checkpoint_is_rejected(capsys, tmp_path, monkeypatch, good, case):
    monkeypatch.chdir(tmp_path)
    _, edit, *expected = case
    arrays = {k: v.copy() for k, v in good[0].items()}
    meta = {**good[1], "history": dict(good[1]["history"]), "exponents": dict(good[1]["exponents"])}
    edit(arrays, meta)
    checkpoint.save("run.ckpt", arrays, meta)  # a consistent digest over the wrong content
    fails(capsys, tmp_path, ["train", *ARGS, "--checkpoint", "run.ckpt", "--resume"], "run.ckpt", *expected)


def test_resume_names_every_changed_setting(capsys, tmp_path, monkeypatch, good):
    monkeypatch.chdir(tmp_path)
    checkpoint.save("run.ckpt", *good)
    msg = fails(capsys, tmp_path, ["train", *ARGS, "--checkpoint", "run.ckpt", "--resume", "--train-count", "1000",
                                   "--window", "3", "--lr", "0.02"], "different settings")
    for diff in ("lr 0.05 (this run: 0.02)", "window_log2 2 (this run: 3)", "train_count 1437 (this run: 1000)"):
        assert diff in msg
    assert "seed" not in msg and "model" not in msg


def test_resume_with_the_default_model_named_is_the_same_run(capsys, tmp_path, monkeypatch, good):
    """The checkpoint's config has model None (the dataset's default); naming
    that default on resume is the same run, and it finishes."""
    monkeypatch.chdir(tmp_path)
    assert good[1]["config"]["model"] is None
    checkpoint.save("run.ckpt", *good)
    assert main(["train", *ARGS, "--checkpoint", "run.ckpt", "--resume", "--model", "digits-cnn"]) == 0
    assert "digits-cnn on digits" in capsys.readouterr().out
    assert checkpoint.load("run.ckpt")[1]["it"] == 44
