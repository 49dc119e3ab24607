"""`ctrain sweep`: a grid or random search of training runs, run on Ray.

Each trial is an ordinary `ctrain train` run (the same option parser, the
same `train()`), in a Ray task that declares its CPUs, with its own directory
`<sweep dir>/<trial id>/`: `run.ckpt` (checkpoint every epoch), `log.txt`,
then `result.json` (written atomically at the end) or `error.txt`. The trial
id is a hash of the trial's options, so a rerun finds its trials again: it
skips those with a result and resumes the others from their checkpoints.
The sweep directory must be one filesystem every Ray node sees.
"""
import argparse
import csv
import hashlib
import itertools
import json
import math
import os
import signal
import shlex
import sys
import tempfile
import time
import traceback
from contextlib import redirect_stderr, redirect_stdout

import numpy as np

from .errors import CTrainError
from .boards import BOARDS, DEFAULT_BOARD

#: `ctrain train` options a sweep sets itself, so they may not be swept or passed
RESERVED = {"checkpoint": "each trial checkpoints to <trial dir>/run.ckpt",
            "resume": "a rerun of the sweep resumes interrupted trials",
            "no-progress": "the sweep shows progress per trial",
            "report": "every trial's table row holds its modeled cycles",
            "board": "give the performance model's board as `ctrain sweep --board`"}
DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")
RESULT, ERROR, LOG, CKPT = "result.json", "error.txt", "log.txt", "run.ckpt"
TABLE_JSON, TABLE_CSV, PLOT = "sweep.json", "sweep.csv", "sweep.png"
#: the table's measured columns, after the trial id, status and swept settings
COLUMNS = ("test_acc", "sparsity", "cycles", "modeled_ms", "equiv_gops", "modeled_img_s", "wall_s",
           "iterations", "resumed_from_it", "error")


class SweepError(CTrainError, ValueError):
    """A sweep's settings are wrong (named before any trial starts)."""


# -- the trial's option parser: `ctrain train`'s own ------------------------------
class _RaisingParser(argparse.ArgumentParser):
    def error(self, message):
        raise SweepError(message)


def train_parser():
    """`ctrain train`'s parser, raising SweepError instead of exiting."""
    from .train_options import add_train_parser
    return add_train_parser(_RaisingParser(prog="ctrain").add_subparsers(parser_class=_RaisingParser))


def _action(parser, key):
    action = parser._option_string_actions.get("--" + key)
    if action is None:
        raise SweepError(f"{key!r} is not a `ctrain train` option (see `ctrain train --help`)")
    if key in RESERVED:
        raise SweepError(f"{key!r} cannot be swept or passed to trials: {RESERVED[key]}")
    return action


def _flag_value(key, value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise SweepError(f"{key!r} is a flag: its values are true or false, not {value!r}")


def _option_args(parser, key, value):
    """The argv fragment that sets option `key` to `value` (a flag: true adds it)."""
    action = _action(parser, key)
    if action.nargs == 0:
        return [f"--{key}"] if _flag_value(key, value) else []
    return [f"--{key}", _text(value)]


def _text(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _key(name):
    return name.strip().lstrip("-").replace("_", "-")


# -- the search space ------------------------------------------------------------
def parse_assignment(text, what):
    """'KEY=VALUE' -> (key, value) with KEY a train option name (dashes or underscores)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise SweepError(f"{what} {text!r}: expected KEY=VALUE, e.g. {what} prune=0,0.5,0.8")
    return _key(key), value.strip()


def parse_distribution(key, text):
    """'uniform:LO:HI', 'loguniform:LO:HI', 'randint:LO:HI' (inclusive) or 'choice:A,B,...'."""
    kind, _, rest = text.partition(":")
    if kind == "choice":
        values = [v.strip() for v in rest.split(",") if v.strip()]
        if not values:
            raise SweepError(f"--random {key}: choice needs values, e.g. choice:a,b")
        return ("choice", values)
    if kind not in DISTRIBUTIONS:
        raise SweepError(f"--random {key}={text}: unknown distribution {kind!r}; "
                         f"choose one of {', '.join(DISTRIBUTIONS)}")
    try:
        lo, hi = (float(v) for v in rest.split(":"))
    except ValueError:
        raise SweepError(f"--random {key}={text}: expected {kind}:LO:HI") from None
    if not lo <= hi or (kind == "loguniform" and lo <= 0):
        raise SweepError(f"--random {key}={text}: need {'0 < ' if kind == 'loguniform' else ''}LO <= HI")
    if kind == "randint" and (lo != int(lo) or hi != int(hi)):
        raise SweepError(f"--random {key}={text}: randint bounds are integers")
    return (kind, lo, hi)


def _draw(rng, dist):
    kind = dist[0]
    if kind == "choice":
        return dist[1][int(rng.integers(len(dist[1])))]
    lo, hi = dist[1], dist[2]
    if kind == "uniform":
        return float(rng.uniform(lo, hi))
    if kind == "loguniform":
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return int(rng.integers(int(lo), int(hi) + 1))


def load_spec_file(path):
    """A sweep file, JSON or TOML: {"train": "--dataset mnist ..." or [...],
    "grid": {key: [values]}, "random": {key: "dist:..."}, "samples": N, "search_seed": S}."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise SweepError(f"--spec {path}: {exc.strerror}") from None
    try:
        if path.endswith(".toml"):
            try:
                import tomllib
            except ImportError:
                raise SweepError(f"--spec {path}: TOML needs Python 3.11; write the sweep as JSON") from None
            spec = tomllib.loads(raw.decode())
        else:
            spec = json.loads(raw)
    except SweepError:
        raise
    except ValueError as exc:
        raise SweepError(f"--spec {path}: not valid {'TOML' if path.endswith('.toml') else 'JSON'}: {exc}") from None
    if not isinstance(spec, dict):
        raise SweepError(f"--spec {path}: expected a table of train, grid, random, samples, search_seed")
    unknown = set(spec) - {"train", "grid", "random", "samples", "search_seed"}
    if unknown:
        raise SweepError(f"--spec {path}: unknown keys {sorted(unknown)}; "
                         "use train, grid, random, samples, search_seed")
    for name in ("grid", "random"):
        if not isinstance(spec.get(name, {}), dict):
            raise SweepError(f"--spec {path}: {name} must be a table of option = values")
    for key, values in spec.get("grid", {}).items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"--spec {path}: grid {key} must be a non-empty list")
    train = spec.get("train", [])
    spec["train"] = shlex.split(train) if isinstance(train, str) else [str(a) for a in train]
    return spec


def build_spec(grid=(), random=(), samples=None, search_seed=None, train=(), spec_file=None):
    """One search space from a file and the command line (the command line adds
    grid axes and random settings, and its train options go after the file's)."""
    spec = load_spec_file(spec_file) if spec_file else {}
    train = list(train)[1:] if list(train)[:1] == ["--"] else list(train)
    out = {"train": list(spec.get("train", [])) + train,
           "grid": {_key(k): [v for v in vs] for k, vs in spec.get("grid", {}).items()},
           "random": {_key(k): v for k, v in spec.get("random", {}).items()},
           "samples": samples if samples is not None else spec.get("samples", 1),
           "search_seed": search_seed if search_seed is not None else spec.get("search_seed", 0)}
    for text in grid:
        key, value = parse_assignment(text, "--grid")
        out["grid"][key] = [v.strip() for v in value.split(",") if v.strip()]
    for text in random:
        key, value = parse_assignment(text, "--random")
        out["random"][key] = value
    return out


def trials(spec):
    """[(trial id, {swept key: value}, argv)]: the grid's product in the order
    given, times `samples` random draws per grid point (seeded by search_seed)."""
    parser = train_parser()
    base = list(spec["train"])
    if not isinstance(spec["samples"], int) or spec["samples"] < 1:
        raise SweepError(f"--samples must be a positive integer, not {spec['samples']!r}")
    grid = spec["grid"]
    dists = {key: parse_distribution(key, str(text)) for key, text in spec["random"].items()}
    _check_axes(parser, base, grid, dists)
    rng = np.random.default_rng(spec["search_seed"])
    samples = spec["samples"] if dists else 1
    out = []
    for point in itertools.product(*grid.values()):
        for _ in range(samples):
            settings = dict(zip(grid, point))
            settings.update({key: _draw(rng, dist) for key, dist in sorted(dists.items())})
            out.append(_trial(parser, base, settings))
    ids = [t[0] for t in out]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise SweepError(f"two trials have the same options ({dup}): a grid axis repeats a value")
    return out


def _check_axes(parser, base, grid, dists):
    """Every swept key a train option, swept once (grid or random, not also
    after `--`), and the reserved options after `--` known to the parser."""
    both = set(grid) & set(dists)
    if both:
        raise SweepError(f"{sorted(both)[0]!r} is both a grid axis and a random setting")
    given = {_key(a.split("=")[0]) for a in base if a.startswith("--")}
    for key in list(grid) + list(dists):
        _action(parser, key)
        if key in given:
            raise SweepError(f"{key!r} is swept and also among the train options after `--`")
    for a in base:
        if a.startswith("--") and _key(a.split("=")[0]) in RESERVED:
            _action(parser, _key(a.split("=")[0]))


def _trial(parser, base, settings):
    """(trial id, settings as the trainer reads them, argv) for one point:
    the argv parsed now, so a bad value names its trial before any runs."""
    argv = list(base)
    for key, value in settings.items():
        argv += _option_args(parser, key, value)
    try:
        args = parser.parse_args(argv)
    except SweepError as exc:
        raise SweepError(f"trial {settings}: {exc} (options: {shlex.join(argv)})") from None
    settings = {key: _flag_value(key, value) if _action(parser, key).nargs == 0
                else getattr(args, _action(parser, key).dest) for key, value in settings.items()}
    return trial_id(settings, argv), settings, argv


def trial_id(settings, argv):
    """Readable swept settings plus a hash of the whole argv (stable across reruns)."""
    digest = hashlib.sha1(json.dumps(argv).encode()).hexdigest()[:8]
    words = "_".join(f"{k}={_text(v)}" for k, v in settings.items())
    words = "".join(c if c.isalnum() or c in "=._-" else "-" for c in words)[:80]
    return f"{words}-{digest}" if words else digest


def validate(parsed):
    """Check the files every trial names, before any trial runs (trials() parsed their options)."""
    from .train_options import train_config
    parser = train_parser()
    for tid, _, argv in parsed:
        # parsed once already by trials(); each trial writes its own run.ckpt
        cfg = train_config(parser.parse_args(argv + ["--checkpoint", "run.ckpt"]))
        if cfg.dataset == "mnist" and not (cfg.data_dir and os.path.isdir(cfg.data_dir)):
            raise SweepError(f"trial {tid}: --dataset mnist needs --data-dir, a directory "
                             f"({cfg.data_dir!r} is not one)")
        if cfg.warm_start and not os.path.isfile(cfg.warm_start):
            raise SweepError(f"trial {tid}: --warm-start {cfg.warm_start}: no such file")


# -- one trial (runs in a Ray worker) ----------------------------------------------
def _write_atomic(path, text):
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def modeled(trainer, board):
    """Cycles of one training iteration of the final program on `board`, from
    the performance model (a float run: the program it would have run)."""
    from .tools import perfreport
    program = trainer.runtime.program if trainer.fixed else trainer._compile()
    total = perfreport.build(program, board, trainer.cfg.model_name())["total"]  # as `ctrain perf` reports it
    return {"cycles": int(total["cycles"]), "modeled_ms": 1e3 * total["seconds"],
            "equiv_gops": total["equivalent_gops"],
            "modeled_img_s": trainer.cfg.batch_size / total["seconds"] if total["seconds"] else 0.0}


def run_trial(trial_dir, tid, settings, argv, board):
    """Train one trial to the end (resuming from its checkpoint) and write
    result.json, or error.txt on failure. Returns the table row."""
    from . import checkpoint
    from .train_options import train_config
    from .pruning import sparsity_of
    from .train import train
    t0 = time.time()
    os.makedirs(trial_dir, exist_ok=True)
    ckpt = os.path.join(trial_dir, CKPT)
    row = {"trial": tid, "settings": settings, "argv": argv, "board": board, "host": os.uname().nodename}
    _write_atomic(os.path.join(trial_dir, "settings.json"), json.dumps(row, indent=1) + "\n")
    try:
        with open(os.path.join(trial_dir, LOG), "a") as log, redirect_stdout(log), redirect_stderr(log):
            # the trial's program is compiled for the sweep's board too (its dense/sparse choice)
            cfg = train_config(train_parser().parse_args(argv + ["--checkpoint", ckpt, "--board", board]))
            resume = os.path.exists(ckpt)
            start = int(checkpoint.load(ckpt)[1]["it"]) if resume else 0
            print(f"== {time.strftime('%Y-%m-%d %H:%M:%S')} ctrain train {shlex.join(argv)}"
                  + (f" (resuming at iteration {start})" if resume else ""), flush=True)
            trainer, acc = train(cfg, progress=False, resume=resume)
            row.update(status="ok", test_acc=acc, sparsity=float(sparsity_of(trainer.masks)[1])
                       if trainer.masks else 0.0, iterations=trainer.it, resumed_from_it=start,
                       fixed_point=cfg.fixed_point, **modeled(trainer, board))
            row["wall_s"] = time.time() - t0
            print(f"test accuracy: {100 * acc:.2f}%", flush=True)
    except Exception as exc:
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}", wall_s=time.time() - t0)
        _write_atomic(os.path.join(trial_dir, ERROR), row["error"] + "\n\n" + traceback.format_exc())
        return row
    _write_atomic(os.path.join(trial_dir, RESULT), json.dumps(row, indent=1) + "\n")
    if os.path.exists(os.path.join(trial_dir, ERROR)):
        os.unlink(os.path.join(trial_dir, ERROR))
    return row


def read_trial(trial_dir):
    """A trial's row from its directory: finished, failed, or None (not run / interrupted)."""
    path = os.path.join(trial_dir, RESULT)
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    path = os.path.join(trial_dir, ERROR)
    if os.path.exists(path):
        with open(path) as f:
            return {"trial": os.path.basename(trial_dir), "status": "failed", "error": f.readline().strip()}
    return None


# -- the sweep: Ray --------------------------------------------------------------
#: Ray advertises a single-node instance on the machine's network address unless
#: clusters are off (its own switch for laptops, read when ray is imported)
LOOPBACK_ONLY = ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def _ray():
    try:
        import ray
    except ImportError:
        raise SweepError("ctrain sweep runs on Ray, which is not installed: pip install 'ctrain[sweep]'") from None
    return ray


def start_local_ray(num_cpus=None):
    """A new local Ray instance (even where a `ray start` cluster runs) with
    `num_cpus` CPUs (default all), on the loopback address only."""
    os.environ.setdefault(*LOOPBACK_ONLY)  # for the processes Ray starts
    ray = _ray()
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    if getattr(constants, "ENABLE_RAY_CLUSTER", False):  # ray was imported before the variable was set
        constants.ENABLE_RAY_CLUSTER = False
    ray.init(address="local", _node_ip_address="127.0.0.1", num_cpus=num_cpus or os.cpu_count(),
             include_dashboard=False, log_to_driver=False)
    return ray


def _status_line(k, n, row):
    words = " ".join(f"{key}={_text(v)}" for key, v in row.get("settings", {}).items()) or row["trial"]
    if row["status"] == "ok":
        return (f"[{k}/{n}] done   {words}: test accuracy {100 * row['test_acc']:.2f}%, sparsity "
                f"{100 * row['sparsity']:.1f}%, {row['equiv_gops']:.2f} eq GOP/s modeled, {row['wall_s']:.1f} s"
                + (f" (resumed at iteration {row['resumed_from_it']})" if row.get("resumed_from_it") else ""))
    return f"[{k}/{n}] FAILED {words}: {row['error']}"


def run(spec, sweep_dir, board=DEFAULT_BOARD, cpus_per_trial=1, num_cpus=None, address=None,
        progress=True, plot=True, say=None):
    """Run the sweep: validate, skip finished trials, run the rest as Ray tasks
    (each declaring `cpus_per_trial` CPUs), then write the table and plot.
    Uses the Ray instance already initialized in this process if there is one,
    else starts a local one (`num_cpus`, default all) or joins `address`."""
    from tqdm.auto import tqdm
    if board not in BOARDS:
        raise SweepError(f"--board {board!r}: choose one of {', '.join(BOARDS)}")
    if cpus_per_trial <= 0:
        raise SweepError(f"--cpus-per-trial must be positive, not {cpus_per_trial}")
    parsed = trials(spec)
    validate(parsed)
    say = say or tqdm.write
    sweep_dir = os.path.abspath(sweep_dir)
    os.makedirs(sweep_dir, exist_ok=True)
    rows = {tid: read_trial(os.path.join(sweep_dir, tid)) for tid, _, _ in parsed}
    todo = [t for t in parsed if not (rows[t[0]] and rows[t[0]]["status"] == "ok")]
    if todo:
        _run_on_ray(todo, rows, len(parsed), sweep_dir, board, cpus_per_trial, num_cpus, address, progress, say)
    else:
        say(f"sweep: all {len(parsed)} trials in {sweep_dir} are finished")
    table = [dict(rows[tid] or {"trial": tid, "status": "not run"}, settings=settings)
             for tid, settings, _ in parsed]
    write_table(table, sweep_dir, board, list(spec["grid"]) + sorted(spec["random"]))
    if plot:
        plot_table(table, os.path.join(sweep_dir, PLOT), board)
    return table


def _run_on_ray(todo, rows, n, sweep_dir, board, cpus_per_trial, num_cpus, address, progress, say):
    """Run the `todo` trials as Ray tasks, filling `rows` as they end."""
    from tqdm.auto import tqdm
    ray = _ray()
    started = not ray.is_initialized()
    if started:
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                start_local_ray(num_cpus)
        except Exception as exc:
            where = f"join the Ray cluster at {address}" if address else "start a local Ray instance"
            raise SweepError(f"cannot {where}: {type(exc).__name__}: "
                             f"{(str(exc).strip().splitlines() or [''])[0]}") from None
    pending = {}
    interrupted = []

    def on_sigint(signum, frame):
        interrupted.append(signum)
        raise KeyboardInterrupt
    # Ctrl-C stops the sweep (exit 130), whatever handler Ray installed for its
    # driver: a trial cancelled by it must not read as a failed trial
    previous = signal.signal(signal.SIGINT, on_sigint) if _main_thread() else None
    try:
        cpus = ray.cluster_resources().get("CPU", 0)
        if cpus < cpus_per_trial:
            raise SweepError(f"--cpus-per-trial {cpus_per_trial:g}: the Ray cluster has {cpus:g} CPUs")
        say(f"sweep: {n} trials in {sweep_dir}: {n - len(todo)} finished, {len(todo)} to run "
            f"({sum(os.path.exists(os.path.join(sweep_dir, t[0], CKPT)) for t in todo)} resuming from "
            f"checkpoints); Ray: {cpus:g} CPUs, {cpus_per_trial:g} a trial, "
            f"up to {int(cpus // cpus_per_trial)} at a time")
        remote = ray.remote(num_cpus=cpus_per_trial, max_retries=0)(run_trial)
        pending = {remote.remote(os.path.join(sweep_dir, tid), tid, settings, argv, board): (tid, settings)
                   for tid, settings, argv in todo}
        with tqdm(total=n, initial=n - len(todo), unit="trial", desc="sweep", disable=not progress) as bar:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                tid, settings = pending.pop(done[0])
                try:
                    row = ray.get(done[0])
                except Exception as exc:  # the worker died (killed, out of memory): no error.txt from it
                    if interrupted:  # Ray raised its own error for our Ctrl-C: the trial did not fail
                        raise KeyboardInterrupt from None
                    row = {"trial": tid, "settings": settings, "status": "failed",
                           "error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1]}"}
                    os.makedirs(os.path.join(sweep_dir, tid), exist_ok=True)
                    _write_atomic(os.path.join(sweep_dir, tid, ERROR), row["error"] + "\n")
                rows[tid] = row
                bar.update(1)
                say(_status_line(bar.n, n, row))
    except BaseException as exc:
        _stop_ray(ray, pending, started, previous, quiet=True)
        if interrupted and not isinstance(exc, KeyboardInterrupt):
            raise KeyboardInterrupt from None  # Ray's own error for our Ctrl-C
        raise
    _stop_ray(ray, pending, started, previous, quiet=False)


def _stop_ray(ray, pending, started, previous, quiet):
    """Restore the SIGINT handler, stop the running trials (their checkpoints
    stay) and the Ray instance the sweep started.  With an error or Ctrl-C on
    its way up (`quiet`), a failing clean-up is said in one line and does not
    replace it.  A Ray instance of the sweep's own is shut down with its
    workers and nothing cancelled first: Ray 2.60 aborts the driver
    (task_manager.cc, "Tried to complete task that was not pending") when a
    force-cancelled task's reply is already on its way, i.e. on a Ctrl-C as a
    trial ends; on a cluster the running trials must be cancelled."""
    if previous is not None:
        signal.signal(signal.SIGINT, previous)
    try:
        if started:
            ray.shutdown()
        else:
            for ref in pending:
                ray.cancel(ref, force=True)
    except Exception as exc:
        if not quiet:
            raise
        print(f"ctrain sweep: stopping Ray: {type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}",
              file=sys.stderr)


def _main_thread():
    import threading
    return threading.current_thread() is threading.main_thread()


# -- results ---------------------------------------------------------------------
def write_table(table, sweep_dir, board, keys):
    """sweep.json (every row in full) and sweep.csv (a row per trial: id,
    status, the swept settings, the measured columns)."""
    _write_atomic(os.path.join(sweep_dir, TABLE_JSON),
                  json.dumps({"board": board, "settings": keys, "columns": list(COLUMNS), "trials": table},
                             indent=1) + "\n")
    path = os.path.join(sweep_dir, TABLE_CSV)
    with open(path + ".tmp", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["trial", "status"] + keys + list(COLUMNS))
        for row in table:
            w.writerow([row["trial"], row["status"]] + [row["settings"].get(k, "") for k in keys]
                       + [_cell(row.get(c)) for c in COLUMNS])
    os.replace(path + ".tmp", path)


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def load_table(sweep_dir):
    """(board, swept keys, rows) from a sweep directory's sweep.json."""
    with open(os.path.join(sweep_dir, TABLE_JSON)) as f:
        t = json.load(f)
    return t["board"], t["settings"], t["trials"]


def format_table(table, keys):
    """A markdown table of the trials (accuracy and sparsity in %)."""
    head = keys + ["test acc %", "sparsity %", "cycles/iter", "eq GOP/s", "wall s", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table:
        ok = r["status"] == "ok"
        cells = [_text(r["settings"].get(k, "")) for k in keys]
        cells += ([f"{100 * r['test_acc']:.2f}", f"{100 * r['sparsity']:.1f}", f"{r['cycles']:,d}",
                   f"{r['equiv_gops']:.3f}", f"{r['wall_s']:.1f}"] if ok else [""] * 5)
        cells.append("ok" if ok else f"{r['status']}: {r.get('error', '')}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_table(table, path=None, board=DEFAULT_BOARD):
    """Accuracy against final sparsity and against modeled equivalent GOP/s,
    a point per finished trial and the mean of the trials that differ only in
    seed; saved as PNG if `path`. Returns the figure."""
    import matplotlib
    if path and "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ok = [r for r in table if r["status"] == "ok"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    groups = {}
    for r in ok:
        groups.setdefault(tuple((k, str(v)) for k, v in r["settings"].items() if k != "seed"), []).append(r)
    for ax, key, label in ((axes[0], "sparsity", "final sparsity (%)"),
                           (axes[1], "equiv_gops", f"modeled equivalent GOP/s, training ({board})")):
        scale = 100 if key == "sparsity" else 1
        ax.scatter([scale * r[key] for r in ok], [100 * r["test_acc"] for r in ok], s=18, alpha=0.5,
                   color="tab:blue", label="trial")
        means = sorted((np.mean([scale * r[key] for r in g]), np.mean([100 * r["test_acc"] for r in g]),
                        np.std([100 * r["test_acc"] for r in g])) for g in groups.values())
        if means:
            x, y, e = zip(*means)
            ax.errorbar(x, y, yerr=e, fmt="o", color="tab:red", capsize=3, label="mean over seeds (±1 sd)")
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize="small")
    failed = len(table) - len(ok)
    fig.suptitle(f"ctrain sweep: {len(ok)} trials" + (f" ({failed} failed or not run)" if failed else ""))
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=110)
    return fig


# -- command line ----------------------------------------------------------------
def sweep_parser(p):
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a grid axis: a `ctrain train` option and its values (repeat for more axes), "
                        "e.g. --grid seed=0,1,2 --grid prune=0,0.5,0.8; flags take true,false")
    p.add_argument("--random", action="append", default=[], metavar="KEY=DIST",
                   help="a random setting drawn --samples times per grid point: uniform:LO:HI, "
                        "loguniform:LO:HI, randint:LO:HI or choice:A,B,...")
    p.add_argument("--samples", type=int, default=None, help="random draws per grid point (default 1)")
    p.add_argument("--search-seed", type=int, default=None, help="seed of the random draws (default 0)")
    p.add_argument("--spec", default=None, metavar="FILE",
                   help="the sweep in a JSON or TOML file: train, grid, random, samples, search_seed")
    p.add_argument("--dir", default="sweep", help="sweep directory: a subdirectory per trial, the table, the plot")
    p.add_argument("--board", default=DEFAULT_BOARD, choices=BOARDS,
                   help="board of the performance model for the modeled cycles and GOP/s")
    p.add_argument("--cpus-per-trial", type=float, default=1, help="CPUs each trial declares to Ray (default 1)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)")
    p.add_argument("--address", default=None,
                   help="join this Ray cluster (e.g. auto, or ray://head:10001) instead of starting a local one")
    p.add_argument("--no-plot", action="store_true", help="no sweep.png")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("train", nargs=argparse.REMAINDER, metavar="-- TRAIN OPTIONS",
                   help="`ctrain train` options for every trial, after `--`")
    return p


def main_args(args):
    spec = build_spec(args.grid, args.random, args.samples, args.search_seed, args.train, args.spec)
    table = run(spec, args.dir, board=args.board, cpus_per_trial=args.cpus_per_trial, num_cpus=args.num_cpus,
                address=args.address, progress=not args.no_progress, plot=not args.no_plot,
                say=None if not args.no_progress else print)
    keys = list(spec["grid"]) + sorted(spec["random"])
    print(format_table(table, keys))
    out = os.path.abspath(args.dir)
    print(f"table: {os.path.join(out, TABLE_CSV)}, {os.path.join(out, TABLE_JSON)}"
          + ("" if args.no_plot else f"; plot: {os.path.join(out, PLOT)}"))
    failed = sum(r["status"] != "ok" for r in table)
    if failed:
        print(f"ctrain sweep: {failed} of {len(table)} trials failed (their error.txt says why)", file=sys.stderr)
    return 1 if failed else 0
