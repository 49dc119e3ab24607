"""`ctrain sweep`: settings checked before anything runs, trials on a local Ray
instance (2 CPUs) that each equal a plain `ctrain train` run, the table and
plot, a failing trial, and resume after an interruption."""
import csv
import os
import signal
import subprocess
import sys
import time

import pytest

import ctrain
from ctrain import cli, sweep, train_options
from ctrain.train import Trainer, train

#: a small trial: the built-in digits, one epoch of 89 iterations, fixed point from the 45th (~1 s)
TINY = ["--epochs", "1", "--warmup", "0.5"]


def _spec(*grid, train=TINY, random=(), samples=None):
    return sweep.build_spec(grid=grid, random=random, samples=samples, train=train)


# -- settings ---------------------------------------------------------------------
def test_trials_are_the_product_with_stable_ids():
    parsed = sweep.trials(_spec("seed=0,1,2", "prune=0,0.5"))
    assert [s for _, s, _ in parsed] == [{"seed": s, "prune": p} for s in (0, 1, 2) for p in (0.0, 0.5)]
    assert parsed[1][2] == TINY + ["--seed", "0", "--prune", "0.5"]
    assert [t[0] for t in parsed] == [t[0] for t in sweep.trials(_spec("seed=0,1,2", "prune=0,0.5"))]
    assert len({t[0] for t in parsed}) == 6
    # other train options give other trials
    assert parsed[0][0] != sweep.trials(_spec("seed=0,1,2", "prune=0,0.5", train=["--epochs", "2"]))[0][0]


def test_random_search_is_seeded_and_in_range():
    spec = _spec("prune=0,0.8", random=["lr=loguniform:0.01:0.1", "prune-at=uniform:0.3:0.7",
                                        "float=choice:true,false"], samples=3)
    parsed = sweep.trials(spec)
    assert len(parsed) == 6
    for _, s, argv in parsed:
        assert 0.01 <= s["lr"] <= 0.1 and 0.3 <= s["prune-at"] <= 0.7
        assert ("--float" in argv) == s["float"]
    assert [t[0] for t in sweep.trials(spec)] == [t[0] for t in parsed]
    spec["search_seed"] = 1
    assert [t[0] for t in sweep.trials(spec)] != [t[0] for t in parsed]


def test_spec_file_toml(tmp_path):
    pytest.importorskip("tomllib")
    path = tmp_path / "s.toml"
    path.write_text('train = "--epochs 1"\nsamples = 2\n[grid]\nseed = [0, 1]\n[random]\nlr = "uniform:0.01:0.05"\n')
    parsed = sweep.trials(sweep.build_spec(spec_file=str(path)))
    assert len(parsed) == 4 and parsed[0][2][:2] == ["--epochs", "1"]
    # the command line adds an axis, and train options after the file's
    parsed = sweep.trials(sweep.build_spec(grid=["prune=0,0.5"], train=["--", "--batch-size", "32"],
                                           spec_file=str(path)))
    assert len(parsed) == 8 and {tuple(s) for _, s, _ in parsed} == {("seed", "prune", "lr")}
    assert parsed[0][2][:6] == ["--epochs", "1", "--batch-size", "32", "--seed", "0"]


@pytest.mark.parametrize("args, message", [
    (["--grid", "colour=red"], "'colour' is not a `ctrain train` option"),
    (["--grid", "checkpoint=a,b"], "each trial checkpoints to"),
    (["--grid", "float=maybe"], "'float' is a flag"),
    (["--grid", "seed"], "expected KEY=VALUE"),
    (["--grid", "seed=0,0"], "same options"),
    (["--grid", "seed=0,x"], "invalid int value: 'x'"),
    (["--grid", "engine=numpy,verilog"], "invalid choice: 'verilog'"),
    (["--random", "lr=gauss:0:1"], "unknown distribution 'gauss'"),
    (["--random", "lr=loguniform:0:1"], "need 0 < LO <= HI"),
    (["--grid", "seed=0", "--", "--seed", "1"], "'seed' is swept and also among the train options"),
    (["--grid", "seed=0", "--", "--resume"], "a rerun of the sweep resumes"),
    (["--grid", "seed=0", "--", "--dataset", "mnist", "--data-dir", "/nonexistent"], "--data-dir, a directory"),
    (["--spec", "/nonexistent.json"], "--spec /nonexistent.json: No such file"),
])
def test_bad_settings_one_line_before_anything_runs(args, message, tmp_path, capsys):
    out = tmp_path / "sw"
    assert cli.main(["sweep", "--dir", str(out)] + args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ctrain: error: ") and message in err and "\n" not in err
    assert not out.exists()


def test_missing_ray_is_one_clear_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets without the extra
    assert cli.main(["sweep", "--dir", str(tmp_path), "--grid", "seed=0", "--"] + TINY) == 2
    assert "pip install 'ctrain[sweep]'" in capsys.readouterr().err


# -- on Ray ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_ray():
    pytest.importorskip("ray")
    ray = sweep.start_local_ray(num_cpus=2)  # as a local sweep does
    assert ray.cluster_resources()["CPU"] == 2
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
    yield ray
    ray.shutdown()


def _config(argv):
    return train_options.train_config(sweep.train_parser().parse_args(argv))


@pytest.mark.slow
def test_small_sweep_table_and_plot(local_ray, tmp_path):
    lines = []
    table = sweep.run(_spec("seed=0,1", "prune=0,0.5"), tmp_path, progress=False, say=lines.append)
    assert [r["status"] for r in table] == ["ok"] * 4
    assert [r["sparsity"] for r in table] == pytest.approx([0.0, 0.5, 0.0, 0.5], abs=2e-3)
    assert all(0.5 < r["test_acc"] <= 1 and r["iterations"] == 89 for r in table)
    assert sum("] done   seed=" in line for line in lines) == 4
    # a trial is the `ctrain train` run of its options, bit for bit
    from ctrain.tools import perfreport
    trainer, acc = train(_config(TINY + ["--seed", "1", "--prune", "0.5"]), progress=False)
    row = table[3]
    assert row["test_acc"] == acc
    assert row["cycles"] == perfreport.build(trainer.runtime.program, "pynq_z2")["total"]["cycles"]
    # the pruned program runs each layer in the form the compiler found cheaper on the sweep's
    # board: never more cycles than the dense one
    assert row["cycles"] <= table[0]["cycles"]
    with open(tmp_path / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["seed"], r["prune"], r["status"]) for r in rows] == [
        ("0", "0.0", "ok"), ("0", "0.5", "ok"), ("1", "0.0", "ok"), ("1", "0.5", "ok")]
    assert float(rows[3]["test_acc"]) == pytest.approx(acc, rel=1e-5)
    board, keys, trials = sweep.load_table(tmp_path)
    assert (board, keys, [t["trial"] for t in trials]) == ("pynq_z2", ["seed", "prune"],
                                                          [r["trial"] for r in table])
    for r in table:
        d = tmp_path / r["trial"]
        assert {"run.ckpt", "result.json", "log.txt", "settings.json"} <= set(os.listdir(d))
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a rerun finds every trial finished and starts nothing
    lines.clear()
    again = sweep.run(_spec("seed=0,1", "prune=0,0.5"), tmp_path, progress=False, say=lines.append)
    assert again == table and lines == [f"sweep: all 4 trials in {tmp_path} are finished"]


def test_failing_trial_is_reported_and_others_finish(local_ray, tmp_path, capsys):
    code = cli.main(["sweep", "--dir", str(tmp_path), "--no-progress", "--no-plot",
                     "--grid", "lr=0.05,1000,0.02", "--"] + TINY)
    assert code == 1
    out, err = capsys.readouterr()
    _, _, table = sweep.load_table(tmp_path)
    assert [r["status"] for r in table] == ["ok", "failed", "ok"]
    assert table[1]["error"].startswith("TrainingDiverged: float phase, iteration ")
    assert "loss is not finite" in table[1]["error"]
    assert "FAILED lr=1000: TrainingDiverged" in out and "1 of 3 trials failed" in err
    failed = tmp_path / table[1]["trial"]
    assert (failed / "error.txt").read_text().startswith(table[1]["error"])
    assert "Traceback" in (failed / "error.txt").read_text() and not (failed / "result.json").exists()


@pytest.mark.slow
def test_resume_continues_an_interrupted_trial_bit_exactly(local_ray, tmp_path):
    """A trial stopped at iteration 100 of 178 (its checkpoint on disk) is
    resumed by the sweep and ends where the uninterrupted run ends."""
    spec = _spec("prune=0.5", train=["--epochs", "2"])
    (tid, _, argv), = sweep.trials(spec)
    os.makedirs(tmp_path / tid)
    cfg = _config(argv + ["--checkpoint", str(tmp_path / tid / "run.ckpt")])
    partial = Trainer(cfg)
    while partial.it < 100:
        partial.step(partial.batch_indices())
    partial.save(cfg.checkpoint)
    (row,) = sweep.run(spec, tmp_path, progress=False, plot=False, say=lambda s: None)
    _, acc = train(_config(argv), progress=False)
    assert (row["status"], row["resumed_from_it"], row["iterations"]) == ("ok", 100, 178)
    assert row["test_acc"] == acc


@pytest.mark.slow
def test_interrupted_sweep_rerun_skips_finished_trials(local_ray, tmp_path):
    """Ctrl-C a `ctrain sweep` (its own local Ray, one trial at a time) after
    its first trial finished; the rerun leaves finished trials untouched."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(ctrain.__file__))] + os.environ.get("PYTHONPATH", "").split(os.pathsep)))
    cmd = [sys.executable, "-m", "ctrain.cli", "sweep", "--dir", str(tmp_path), "--num-cpus", "1",
           "--no-progress", "--grid", "seed=0,1,2", "--"] + TINY + ["--checkpoint-every", "10"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 600  # a trial takes ~10 s alone, minutes on a loaded 2-core machine
        while not list(tmp_path.glob("*/result.json")):
            assert proc.poll() is None, f"the sweep ended before a trial finished:\n{proc.communicate()[0][-3000:]}"
            assert time.time() < deadline, "no trial finished in 600 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "ctrain: interrupted" in out, f"exit {proc.returncode}:\n{out[-3000:]}"
    finished = {p.parent.name: p.read_bytes() for p in tmp_path.glob("*/result.json")}
    stopped = {p.parent.name for p in tmp_path.glob("*/run.ckpt")} - set(finished)
    parsed = sweep.trials(_spec("seed=0,1,2", train=TINY + ["--checkpoint-every", "10"]))
    assert 1 <= len(finished) < 3
    lines = []
    table = sweep.run(_spec("seed=0,1,2", train=TINY + ["--checkpoint-every", "10"]), tmp_path,
                      progress=False, plot=False, say=lines.append)
    assert [r["status"] for r in table] == ["ok"] * 3
    assert lines[0].startswith(f"sweep: 3 trials in {tmp_path}: {len(finished)} finished, {3 - len(finished)} to run")
    for tid, content in finished.items():  # not rerun: the same result file, byte for byte
        assert (tmp_path / tid / "result.json").read_bytes() == content
    rerun = [r for r in table if r["trial"] not in finished]
    assert len(rerun) == 3 - len(finished) and [t[0] for t in parsed] == [r["trial"] for r in table]
    assert all(r["resumed_from_it"] > 0 for r in rerun if r["trial"] in stopped)
    assert sum(f"] done   seed={r['settings']['seed']}:" in line for r in rerun for line in lines) == len(rerun)
