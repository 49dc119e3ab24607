"""`ctrain bench`: training speed of bit-exact emulation against a float framework.

Trains LeNet-5 (ctrain.model.lenet5: conv 1->6 k5 pad 2, ReLU, max-pool 2,
conv 6->16 k5, ReLU, max-pool 2, fc 400-120-84-10) on MNIST at each batch size,
in one process and on the same batches:

- ctrain fixed point: 8-bit training on the emulated device with the numpy
  engine, through the real path (Trainer.step -> Runtime.set_hyper +
  Runtime.train_step -> Accelerator -> EmulatedIP -> NumpyEngine);
- ctrain float: the host float32 model (Trainer.step in the float phase);
- torch fp32: the same network, loss and optimizer (SGD, momentum 0.9, the same
  weight decay) in PyTorch, when it is installed.

numpy/BLAS (threadpoolctl) and torch (torch.set_num_threads) get the same
thread count (the numpy engine itself runs its small GEMMs on one BLAS
thread, see NumpyEngine). Frameworks take turns: every round runs `iters`
iterations of each, and each framework's best round is reported (as timeit
does: slower rounds are other processes' interference, and taking turns gives
every framework the same chances of a quiet round); the median round is in
the JSON output too. Reported per framework and batch size:
training images/s, ms per iteration, for ctrain fixed point the engine's share
(NumpyEngine.busy_seconds) and the host overhead (iteration wall time minus
engine time: Trainer, Runtime, driver, emulated device), and peak memory: the
peak resident set size (getrusage ru_maxrss) of a fresh process that loads the
same data and trains that framework alone for a few iterations (Linux VmHWM,
i.e. ru_maxrss of that program image), and its growth over the resident set
before the first iteration.
"""
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

from . import data

FRAMEWORKS = ("fixed", "float", "torch")
LABELS = {"fixed": "ctrain fixed-point (emulated)", "float": "ctrain float32 (host)", "torch": "torch fp32"}
LR, MOMENTUM, WEIGHT_DECAY = 0.02, 0.9, 5e-4


# ------------------------------------------------------------------ setup

def set_threads(threads):
    """Limit numpy's BLAS (and any OpenMP pool) and, if loaded, torch to `threads`.
    Returns a function restoring the previous settings."""
    limiter = None
    try:
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(limits=threads)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(threads)

    def restore():
        if limiter is not None:
            limiter.restore_original_limits()
        if torch is not None:
            torch.set_num_threads(before)
    return restore


def import_torch(want):
    """torch, or None when `want` is False or it is not installed."""
    if not want:
        return None
    try:
        import torch
    except ImportError:
        return None
    return torch


def synthetic_dataset(n_train=512, n_test=64, seed=0):
    """Random 28x28 images and labels: the bench without MNIST on disk (tests)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n_train + n_test, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, n_train + n_test).astype(np.int64)
    return data.Dataset(x[:n_train], y[:n_train], x[n_train:], y[n_train:], "synthetic")


def load_dataset(data_dir=None, synthetic=False):
    if synthetic:
        return synthetic_dataset()
    return data.get_dataset("mnist", data_dir)


def _config(batch, fixed_point):
    """A TrainConfig for the bench: LeNet-5, fixed point from the first iteration
    (exponents calibrated on one batch), constant learning rate, no pruning."""
    from .train import TrainConfig
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    kw = dict(dataset="mnist", model="lenet5", batch_size=batch, epochs=1000, lr=LR, momentum=MOMENTUM,
              weight_decay=WEIGHT_DECAY, schedule="constant", warmup_epochs=0.0, fixed_point=fixed_point,
              engine="numpy", device="emulated", prune=0.0)
    return TrainConfig(**{k: v for k, v in kw.items() if k in known})


def batch_order(n, batch, count, seed=0):
    """`count` batches of indices: shuffled epochs over n images, drop-last."""
    rng = np.random.default_rng(seed)
    per_epoch = n // batch
    out = []
    while len(out) < count:
        perm = rng.permutation(n)
        out.extend(perm[k * batch:(k + 1) * batch] for k in range(min(per_epoch, count - len(out))))
    return out


class _CtrainRunner:
    """ctrain's Trainer, fixed point (emulated numpy engine) or float."""

    def __init__(self, ds, batch, fixed_point):
        from .train import Trainer
        self.trainer = Trainer(_config(batch, fixed_point), dataset=ds)
        self.fixed_point = fixed_point

    def step(self, idx):
        self.trainer.step(idx)

    def engine_seconds(self):
        rt = self.trainer.runtime
        if rt is None:
            return 0.0
        return getattr(rt.device.engine, "busy_seconds", 0.0)


class _TorchRunner:
    """LeNet-5 in PyTorch fp32, trained exactly like ctrain's float model."""

    def __init__(self, ds, batch, torch):
        nn = torch.nn
        torch.manual_seed(0)
        self.torch = torch
        self.net = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
        self.opt = torch.optim.SGD(self.net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
        self.loss = nn.CrossEntropyLoss()
        self.x = torch.from_numpy(np.ascontiguousarray(ds.train_x))
        self.y = torch.from_numpy(ds.train_y)

    def step(self, idx):
        t = self.torch.from_numpy(idx)
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss(self.net(self.x[t]), self.y[t])
        loss.backward()
        self.opt.step()
        loss.item()  # the loss reaches the host each iteration, as in ctrain

    def engine_seconds(self):
        return 0.0


def make_runner(framework, ds, batch, torch=None):
    if framework == "fixed":
        return _CtrainRunner(ds, batch, True)
    if framework == "float":
        return _CtrainRunner(ds, batch, False)
    if framework == "torch":
        return _TorchRunner(ds, batch, torch)
    raise ValueError(f"unknown framework {framework!r}")


# ------------------------------------------------------------------ memory

def _proc_status_kib(field):
    """A KiB field of /proc/self/status (Linux), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:  # pragma: no cover - not Linux
        pass
    return None


def _rss_kib():
    """Current resident set size, KiB (0 where unavailable)."""
    return _proc_status_kib("VmRSS") or 0


def peak_rss_kib():
    """Peak resident set size of this process, KiB: Linux's VmHWM, the same
    high-water mark as getrusage's ru_maxrss but of this program image only
    (ru_maxrss carries the parent's peak across fork + exec, which would
    charge the bench's own memory to every probe); ru_maxrss elsewhere."""
    hwm = _proc_status_kib("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory_probe(framework, batch, threads, data_dir, synthetic, iters):
    """In this (fresh) process: load the data, build `framework`, train `iters`
    iterations; peak RSS (peak_rss_kib) and RSS just before the first iteration, KiB."""
    torch = import_torch(framework == "torch")
    restore = set_threads(threads)
    try:
        ds = load_dataset(data_dir, synthetic)
        runner = make_runner(framework, ds, batch, torch)
        order = batch_order(len(ds.train_y), batch, iters)
        before = _rss_kib()
        for idx in order:
            runner.step(idx)
        result = {"peak_kib": peak_rss_kib(), "before_kib": before}
    finally:
        restore()
    return result


_PROBE = ("import json, sys; from ctrain.bench import memory_probe; "
          "print(json.dumps(memory_probe(*json.loads(sys.argv[1]))))")


def measure_memory(framework, batch, threads, data_dir, synthetic, iters):
    """memory_probe in a fresh interpreter (python -c, so nothing of this
    process -- pages or its main module -- is inherited)."""
    args = json.dumps([framework, batch, threads, data_dir, synthetic, iters])
    done = subprocess.run([sys.executable, "-c", _PROBE, args], capture_output=True, text=True, timeout=900)
    if done.returncode:
        raise RuntimeError(f"memory probe for {framework} batch {batch} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ timing

def time_batch(batch, ds, frameworks, iters, rounds, warmup, torch=None, log=None):
    """Interleaved rounds; per framework the best round's wall and engine time."""
    runners = {}
    for fw in frameworks:
        runners[fw] = make_runner(fw, ds, batch, torch)
    order = batch_order(len(ds.train_y), batch, warmup + iters * rounds)
    for fw, r in runners.items():  # warm-up: compile, calibrate, first-touch buffers
        for idx in order[:warmup]:
            r.step(idx)
    samples = {fw: [] for fw in frameworks}
    for k in range(rounds):
        chunk = order[warmup + k * iters:warmup + (k + 1) * iters]
        for fw, r in runners.items():
            e0 = r.engine_seconds()
            t0 = time.perf_counter()
            for idx in chunk:
                r.step(idx)
            wall = time.perf_counter() - t0
            samples[fw].append((wall, r.engine_seconds() - e0))
        if log:
            log(f"  batch {batch} round {k + 1}/{rounds}: " + ", ".join(
                f"{fw} {batch * iters / samples[fw][-1][0]:.0f} img/s" for fw in frameworks))
    out = {}
    for fw, s in samples.items():
        wall, engine = min(s)
        out[fw] = {"images_per_s": batch * iters / wall, "ms_per_iter": 1e3 * wall / iters,
                   "engine_ms": 1e3 * engine / iters if fw == "fixed" else None,
                   "host_ms": 1e3 * (wall - engine) / iters if fw == "fixed" else None,
                   "median_images_per_s": batch * iters / sorted(s)[len(s) // 2][0],
                   "rounds_images_per_s": [batch * iters / w for w, _ in s]}
    return out


def environment(threads, torch):
    info = {"python": platform.python_version(), "numpy": np.__version__, "cpus": os.cpu_count(),
            "threads": threads, "cpu": _cpu_name()}
    try:
        from threadpoolctl import threadpool_info
        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if blas:
            info["blas"] = f"{blas[0].get('internal_api')} {blas[0].get('version')} ({blas[0].get('architecture')})"
    except ImportError:  # pragma: no cover
        pass
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover
        pass
    return platform.processor() or "unknown"


def run_bench(batch_sizes=(64, 256), iters=20, rounds=5, warmup=5, threads=None, data_dir=None,
              synthetic=False, use_torch=True, use_float=True, memory=True, memory_iters=10, log=print):
    """Run the benchmark; returns a dict (printable with format_report)."""
    threads = threads or os.cpu_count() or 1
    torch = import_torch(use_torch)
    ds = load_dataset(data_dir, synthetic)
    frameworks = ["fixed"] + (["float"] if use_float else []) + (["torch"] if torch is not None else [])
    restore = set_threads(threads)
    try:
        report = {"env": environment(threads, torch), "dataset": ds.name, "train_images": int(len(ds.train_y)),
                  "iters": iters, "rounds": rounds, "warmup": warmup, "frameworks": frameworks,
                  "torch_missing": bool(use_torch and torch is None), "results": {}}
        for b in batch_sizes:
            res = time_batch(b, ds, frameworks, iters, rounds, warmup, torch, log)
            if memory:
                for fw in frameworks:
                    m = measure_memory(fw, b, threads, data_dir, synthetic, memory_iters)
                    res[fw]["peak_rss_mib"] = m["peak_kib"] / 1024
                    res[fw]["train_rss_mib"] = (m["peak_kib"] - m["before_kib"]) / 1024
            report["results"][b] = res
    finally:
        restore()
    return report


def format_report(report):
    env = report["env"]
    lines = [
        f"LeNet-5 training on {report['dataset']} ({report['train_images']} training images): "
        f"{report['iters']} iterations x {report['rounds']} interleaved rounds per framework and batch size "
        f"(best round), after {report['warmup']} warm-up iterations",
        f"CPU: {env['cpu']}, {env['cpus']} cores; threads: {env['threads']} for numpy/BLAS"
        + (f" and torch ({env['torch_threads']})" if "torch" in env else ""),
        f"python {env['python']}, numpy {env['numpy']}" + (f", BLAS {env['blas']}" if "blas" in env else "")
        + (f", torch {env['torch']}" if "torch" in env else ""),
        "",
        f"{'batch':>5}  {'framework':<31} {'images/s':>9} {'ms/iter':>8} {'engine ms':>9} {'host ms':>8} "
        f"{'host %':>6} {'peak RSS MiB':>12} {'(+train)':>9}",
    ]
    for b, res in report["results"].items():
        for fw in report["frameworks"]:
            r = res[fw]
            eng = f"{r['engine_ms']:9.2f}" if r["engine_ms"] is not None else f"{'-':>9}"
            host = f"{r['host_ms']:8.2f}" if r["host_ms"] is not None else f"{'-':>8}"
            pct = f"{100 * r['host_ms'] / r['ms_per_iter']:5.1f}%" if r["host_ms"] is not None else f"{'-':>6}"
            mem = (f"{r['peak_rss_mib']:12.0f} {'+%.0f' % r['train_rss_mib']:>9}" if "peak_rss_mib" in r
                   else f"{'-':>12} {'':>9}")
            lines.append(f"{b:>5}  {LABELS[fw]:<31} {r['images_per_s']:9.0f} {r['ms_per_iter']:8.2f} {eng} "
                         f"{host} {pct} {mem}")
    lines.append("")
    lines.append("host = iteration wall time minus NumpyEngine.run time (Trainer, Runtime, driver, emulated "
                 "device); peak RSS = high-water resident set (VmHWM / ru_maxrss) of a fresh process "
                 "training that framework alone (+train: growth over its RSS before the first iteration)")
    if "torch" in report["frameworks"]:
        ratios = ", ".join(f"batch {b}: {res['fixed']['images_per_s'] / res['torch']['images_per_s']:.2f}x"
                           for b, res in report["results"].items())
        lines.append(f"ratio ctrain fixed-point (bit-exact emulation) / torch fp32 images/s: {ratios}")
    elif report.get("torch_missing"):
        lines.append("torch fp32: not installed (pip install torch) -- no ratio")
    return "\n".join(lines)


def bench_parser(p):
    """Arguments of `ctrain bench` (also used by `python -m ctrain.bench`)."""
    p.add_argument("--data-dir", default="../shared/data/mnist", help="directory of MNIST IDX files")
    p.add_argument("--synthetic", action="store_true", help="random images instead of MNIST (no files needed)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    p.add_argument("--iters", type=int, default=20, help="timed iterations per round")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (the best is reported)")
    p.add_argument("--warmup", type=int, default=5, help="untimed iterations first")
    p.add_argument("--threads", type=int, default=None, help="BLAS and torch threads (default: all cores)")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if it is installed")
    p.add_argument("--no-float", action="store_true", help="skip ctrain's host float32 model")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    p.add_argument("--json", default=None, help="also write the results to this file")
    p.add_argument("--quiet", action="store_true", help="no per-round progress lines")
    return p


def main_args(args):
    report = run_bench(batch_sizes=args.batch_sizes, iters=args.iters, rounds=args.rounds, warmup=args.warmup,
                       threads=args.threads, data_dir=args.data_dir, synthetic=args.synthetic,
                       use_torch=not args.no_torch, use_float=not args.no_float, memory=not args.no_memory,
                       log=None if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True)))
    print(format_report(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    import argparse
    sys.exit(main_args(bench_parser(argparse.ArgumentParser(prog="python -m ctrain.bench")).parse_args()))
