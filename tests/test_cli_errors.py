"""Bad input to `ctrain train` and `ctrain export`: each gives exactly one line
`ctrain: error: ...` naming the problem (and the accepted range), exit status
2, nothing on stdout (no training started) and no file created or changed."""
import hashlib
import os
import sys

import pytest

from ctrain.cli import main
from ctrain.model import MODELS
from ctrain.train import TrainConfig

QUICK = ["--epochs", "2", "--batch-size", "64", "--warmup", "0.5", "--no-progress"]


def snapshot(directory):
    """Every file under `directory` with its size, mtime and digest."""
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            p = os.path.join(root, name)
            st = os.stat(p)
            with open(p, "rb") as f:
                out[os.path.relpath(p, directory)] = (st.st_size, st.st_mtime_ns, hashlib.sha256(f.read()).hexdigest())
    return out


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("my notes\n")
    (tmp_path / "adir").mkdir()
    return tmp_path


def fails(capsys, workdir, argv, *expected):
    """Run, and assert the error contract; returns the message."""
    before = snapshot(workdir)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ctrain: error: "), err
    for text in expected:
        assert text in lines[0], (text, lines[0])
    assert "Traceback" not in err
    assert snapshot(workdir) == before
    return lines[0]


TRAIN_CASES = [
    (["--batch-size", "0"], "--batch-size 0", "integer >= 1"),
    (["--batch-size", "-1"], "--batch-size -1", "integer >= 1"),
    (["--batch-size", "1100"], "--batch-size 1100", "1..1024"),
    (["--batch-size", "1500", "--float"], "--batch-size 1500", "exceeds the 1437 training images", "1..1437"),
    (["--test-count", "0"], "--test-count 0", "integer >= 1"),
    (["--train-count", "0"], "--train-count 0", "integer >= 1"),
    (["--train-count", "5000"], "asked for 5000 samples, only 1437 available"),
    (["--epochs", "0"], "--epochs 0", "1..100000"),
    (["--prune", "1.0"], "--prune 1.0", "[0, 1)"),
    (["--prune", "-0.1"], "--prune -0.1", "[0, 1)"),
    (["--prune", "nan"], "--prune nan", "[0, 1)"),
    (["--prune-at", "2"], "--prune-at 2.0", "[0, 1)"),
    (["--prune-at", "-1"], "--prune-at -1.0", "[0, 1)"),
    (["--prune-at", "nan"], "--prune-at nan", "[0, 1)"),
    (["--epochs", "1", "--prune-at", "0.999"], "--prune-at 0.999", "after the last", "below 0.99"),
    (["--warmup", "-1"], "--warmup -1.0", "[0, "),
    (["--warmup", "nan"], "--warmup nan", "[0, "),
    (["--epochs", "3", "--warmup", "4"], "--warmup 4", "exceed the 3 epochs", "[0, 3]"),
    (["--window", "-1"], "--window -1", "0..10"),
    (["--window", "40"], "--window 40", "0..10"),
    (["--seed", "-1"], "--seed -1", "0..4294967295"),
    (["--momentum", "-1"], "--momentum -1.0", "[0, 1)"),
    (["--momentum", "nan"], "--momentum nan", "[0, 1)"),
    (["--momentum", "2"], "--momentum 2.0", "[0, 1)"),
    (["--weight-decay", "-1"], "--weight-decay -1.0", "[0, 1)"),
    (["--weight-decay", "inf"], "--weight-decay inf", "[0, 1)"),
    (["--lr=-0.05"], "--lr -0.05", "[1e-09, 1024]"),
    (["--lr", "0"], "--lr 0.0", "[1e-09, 1024]"),
    (["--lr", "nan"], "--lr nan", "[1e-09, 1024]"),
    (["--checkpoint-every", "-1", "--checkpoint", "run.ckpt"], "--checkpoint-every -1", "integer >= 0"),
    (["--checkpoint-every", "5"], "--checkpoint-every 5", "needs a checkpoint path"),
    (["--data-dir", "adir"], "digits", "does not read a data directory"),
    (["--dataset", "mnist"], "data_dir is required"),
    (["--dataset", "mnist", "--data-dir", "nowhere"], "nowhere", "cannot list MNIST directory"),
    (["--checkpoint", "missing/run.ckpt"], "missing/run.ckpt", "does not exist"),
    (["--checkpoint", "adir"], "adir", "is a directory"),
    (["--checkpoint", "notes.txt"], "notes.txt", "not a CTrain checkpoint", "refusing to overwrite"),
    (["--resume"], "--checkpoint", "required to resume"),
    (["--resume", "--checkpoint", "none.ckpt"], "none.ckpt", "needs an existing checkpoint"),
    (["--warm-start", "nothing.npz"], "nothing.npz", "not found"),
    (["--batch-size", "abc"], "--batch-size", "invalid int value"),
    (["--model", "foo"], "--model 'foo'", "out of range", "lenet5", "package.module:function"),
    (["--freeze", "-1"], "--freeze -1", "integer >= 0"),
    (["--freeze", "4"], "--freeze 4", "all 4 Conv2d/Linear layers of digits-cnn", "0..3"),
    (["--engine", "gpu"], "--engine", "invalid choice", "csim"),
    (["--no-such-option"], "unrecognized arguments"),
]


@pytest.mark.parametrize("args", TRAIN_CASES, ids=lambda a: " ".join(a[0]))
def test_train_bad_input(capsys, workdir, args):
    argv, *expected = args
    fails(capsys, workdir, ["train", *argv, "--no-progress"], *expected)


def test_checkpoint_into_read_only_directory(capsys, workdir):
    """A directory without write permission (root writes anywhere, so then a
    procfs directory, which refuses even root)."""
    ro = workdir / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if not os.access(ro, os.W_OK):
            target = "ro/run.ckpt"
        elif os.path.isdir("/proc/self") and not os.access("/proc/self", os.W_OK):
            target = "/proc/self/run.ckpt"
        else:
            pytest.skip("no read-only directory available")
        fails(capsys, workdir, ["train", "--checkpoint", target, "--no-progress"], target, "is not writable")
    finally:
        ro.chmod(0o755)


def test_multi_line_error_is_one_line(capsys, workdir, monkeypatch):
    """The overlay search explains itself over several lines; the CLI joins them."""
    pytest.importorskip("pynq", reason="the board device's overlay search runs after pynq is imported")
    monkeypatch.setenv("CTRAIN_OVERLAY", str(workdir / "adir"))
    fails(capsys, workdir, ["train", "--device", "board", "--no-progress"], "ctrain.bit", "adir")


def test_python_api_raises_the_same_errors():
    from ctrain.errors import ConfigError
    with pytest.raises(ConfigError, match=r"prune: 1.0 is out of range: must be a number in \[0, 1\)") as e:
        TrainConfig(prune=1.0)
    assert e.value.field == "prune"


@pytest.fixture(scope="module")
def checkpoint_file(tmp_path_factory):
    ck = tmp_path_factory.mktemp("ck") / "run.ckpt"
    assert main(["train", *QUICK, "--checkpoint", str(ck)]) == 0
    return ck


EXPORT_CASES = [
    (["missing.ckpt", "-o", "m.npz"], "missing.ckpt", "not found"),
    (["notes.txt", "-o", "m.npz"], "notes.txt", "not a checkpoint"),
    (["{ck}", "-o", "missing/m.npz"], "missing/m.npz", "does not exist"),
    (["{ck}", "-o", "adir"], "adir", "is a directory"),
    (["{ck}", "-o", "notes.txt"], "notes.txt", "not a CTrain checkpoint", "refusing to overwrite"),
    (["{ck}", "-o", "m.npz", "--onnx", "missing/m.onnx"], "missing/m.onnx", "does not exist"),
    (["{ck}", "-o", "m.npz", "--onnx", "adir"], "adir", "is a directory"),
    (["{ck}", "-o", "m.npz", "--onnx-style", "fp16"], "--onnx-style", "invalid choice"),
    (["{ck}", "-o", "{ck}"], "would replace the checkpoint"),
]


@pytest.mark.parametrize("args", EXPORT_CASES, ids=lambda a: " ".join(a[0]))
def test_export_bad_input(capsys, workdir, checkpoint_file, args):
    argv, *expected = args
    fails(capsys, workdir, ["export", *[a.format(ck=checkpoint_file) for a in argv]], *expected)


def test_export_onnx_without_onnx_installed(capsys, workdir, checkpoint_file, monkeypatch):
    """The package missing (an import of it fails) is reported before the .npz is written."""
    monkeypatch.setitem(sys.modules, "onnx", None)
    fails(capsys, workdir, ["export", str(checkpoint_file), "-o", "m.npz", "--onnx", "m.onnx"],
          "--onnx needs the onnx package", "nothing was written")


def test_export_writes_over_its_own_model_file(capsys, workdir, checkpoint_file):
    assert main(["export", str(checkpoint_file), "-o", "m.npz"]) == 0
    assert main(["export", str(checkpoint_file), "-o", "m.npz"]) == 0
    assert "wrote m.npz" in capsys.readouterr().out


def test_label_says_float_when_the_run_never_left_float(capsys):
    assert main(["train", "--epochs", "1", "--batch-size", "64", "--no-progress"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "8-bit" not in last
    assert "(float32: the run ended within its 1-epoch float warm-up, digits-cnn on digits" in last


def test_version_and_module_entry_point(capsys):
    import subprocess
    from ctrain import __version__
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"ctrain {__version__}"
    r = subprocess.run([sys.executable, "-m", "ctrain", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == f"ctrain {__version__}"


def test_help_shows_defaults_from_the_config_and_choices_from_the_registries(capsys):
    from ctrain.datasets import DATASETS
    from ctrain.engine import ENGINES
    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    from ctrain.train import MODEL_DEFAULTS
    d = TrainConfig()
    for option, value in (("--momentum", d.momentum), ("--weight-decay", d.weight_decay),
                          ("--window", d.window_log2), ("--prune", d.prune),
                          ("--prune-at", d.prune_at), ("--seed", d.seed), ("--freeze", d.freeze)):
        assert f"(default: {value})" in text.split(option + " ", 2)[-1][:400], option
    for option, key in (("--lr", "lr"), ("--warmup", "warmup_epochs")):  # per model, from MODEL_DEFAULTS
        for model, defaults in MODEL_DEFAULTS.items():
            assert f"{defaults[key]:g} for {model}" in text.split(option + " ", 2)[-1][:600], (option, model)
    for name in (*MODELS, *ENGINES, *DATASETS):
        assert name in text


def test_one_layer_numbering_in_epoch_lines_and_report(capsys):
    """Conv2d/Linear layer j is "Lj" in the saturation lines and in --report
    (as in checkpoints and the notebooks); other stages are named after the
    layer they follow."""
    from ctrain.model import build_model
    from ctrain.model import stage_labels
    assert stage_labels(build_model("digits-cnn", (1, 8, 8), 10)) == ["L0", "L0 pool", "L1", "L1 pool", "L2", "L3"]
    assert main(["train", "--epochs", "1", "--batch-size", "64", "--warmup", "0.5", "--prune", "0", "--report",
                 "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    sat = next(line for line in lines if line.startswith("  saturated stores: "))
    assert [part.split()[0] for part in sat[len("  saturated stores: "):].split(" | ")] == ["L0", "L1", "L2", "L3"]
    start = next(i for i, line in enumerate(lines) if line.split()[:3] == ["stage", "layer", "op"]) + 1
    rows = [line.split() for line in lines[start:start + 19]]  # stage, label (1-2 words), op, phase, ...
    labels = {" ".join(r[1:next(k for k, p in enumerate(r) if p.isupper() and "_" in p or p == "UPDATE")])
              for r in rows}
    assert labels == {"L0", "L0 pool", "L1", "L1 pool", "L2", "L3"}
