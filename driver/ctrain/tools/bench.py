"""`ctrain bench`: training speed of bit-exact emulation against a float framework.

Trains a named model (--model, default LeNet-5) on a named data set
(--dataset, default MNIST) at each batch size, in one process and on the
same batches:

- ctrain fixed point: 8-bit training on the emulated device with the numpy
  (or --engine csim) engine, through the real path (Trainer.step ->
  Runtime.set_hyper + Runtime.train_step -> Accelerator -> EmulatedIP -> engine);
- ctrain float: the host float32 model (Trainer.step in the float phase: the
  warm-up, batch norm on batch statistics);
- torch fp32: the same network (built from the ctrain model, same initial
  weights), loss and optimizer (SGD, momentum 0.9, the same weight decay) in
  PyTorch, when it is installed;
- torch int8 fake-quant: that network prepared for quantization-aware
  training the way PyTorch documents it (conv/BN/ReLU fused by
  fuse_modules_qat, the default QAT qconfig, prepare_qat: int8 per-channel
  weight and uint8 activation fake quantization), what a user would
  otherwise pick to simulate low precision.

numpy/BLAS (threadpoolctl) and torch (torch.set_num_threads) get the same
thread count; the numpy engine's own worker threads (NumpyEngine(threads=...))
get it too. Frameworks take turns: every round runs `iters`
iterations of each, and each framework's best round is reported (as timeit
does: slower rounds are other processes' interference, and taking turns gives
every framework the same chances of a quiet round); the median round is in
the JSON output too. Reported per framework and batch size:
training images/s, ms per iteration, for ctrain fixed point the engine's share
(NumpyEngine.busy_seconds) and the host overhead (iteration wall time minus
engine time: Trainer, Runtime, driver, emulated device; and, robust to other
processes' load, the host's share of the process CPU time, busy_cpu_seconds
subtracted), and peak memory: the
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
import warnings

import numpy as np

from .. import data
from ..datasets import get_dataset

FRAMEWORKS = ("fixed", "float", "torch", "torch-int8")
LABELS = {"fixed": "ctrain fixed-point (emulated)", "float": "ctrain float32 (host)", "torch": "torch fp32",
          "torch-int8": "torch int8 fake-quant (QAT)"}
LR, MOMENTUM, WEIGHT_DECAY = 0.02, 0.9, 5e-4
#: Image shape of --synthetic data per data set name (default: MNIST's).
SYNTHETIC_SHAPES = {"cifar10": (3, 32, 32), "digits": (1, 8, 8)}


@dataclasses.dataclass(frozen=True)
class Spec:
    """What is benchmarked: model, data and engine (JSON-able for the memory probes)."""
    model: str = "lenet5"
    dataset: str = "mnist"
    data_dir: str = None
    synthetic: bool = False
    engine: str = "numpy"


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


def synthetic_dataset(n_train=512, n_test=64, seed=0, shape=(1, 28, 28)):
    """Random images of `shape` and labels: the bench without files on disk (tests)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n_train + n_test,) + tuple(shape), dtype=np.float32)
    y = rng.integers(0, 10, n_train + n_test).astype(np.int64)
    return data.Dataset(x[:n_train], y[:n_train], x[n_train:], y[n_train:], "synthetic")


def load_dataset(spec):
    if spec.synthetic:
        return synthetic_dataset(shape=SYNTHETIC_SHAPES.get(spec.dataset, (1, 28, 28)))
    return get_dataset(spec.dataset, spec.data_dir)


def _config(spec, batch, fixed_point):
    """A TrainConfig for the bench: constant learning rate, no pruning; fixed
    point from the first iteration (exponents calibrated on one batch), or
    float all along as the warm-up trains (batch norm on batch statistics)."""
    from ..train import TrainConfig
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    epochs = 1000
    kw = dict(dataset=spec.dataset, model=spec.model, batch_size=batch, epochs=epochs, lr=LR, momentum=MOMENTUM,
              weight_decay=WEIGHT_DECAY, schedule="constant", warmup_epochs=0.0 if fixed_point else float(epochs),
              fixed_point=fixed_point, engine=spec.engine, device="emulated", prune=0.0)
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
    """ctrain's Trainer, fixed point (emulated engine) or float."""

    def __init__(self, spec, ds, batch, fixed_point, threads=None):
        from ..train import Trainer
        self.trainer = Trainer(_config(spec, batch, fixed_point), dataset=ds)
        self.fixed_point = fixed_point
        if threads:  # the engine's and the float model's lanes get the bench's thread count
            self.trainer.net.lanes.threads = threads
            if fixed_point and hasattr(self.trainer._device.engine, "threads"):
                self.trainer._device.engine.threads = threads

    def step(self, idx):
        self.trainer.step(idx)

    def engine_seconds(self):
        """(wall, process CPU) seconds the engine has spent in run()."""
        rt = self.trainer.runtime
        if rt is None:
            return 0.0, 0.0
        eng = rt.device.engine
        return getattr(eng, "busy_seconds", 0.0), getattr(eng, "busy_cpu_seconds", 0.0)


def torch_network(model, params, torch):
    """The ctrain model (ctrain.model.Sequential, residual blocks included) as
    nested torch.nn.Sequential modules with the same initial weights; raises
    ValueError on a layer torch has no twin for."""
    from .. import model as m
    nn = torch.nn
    by_layer = {id(st.layer): params[st.param_index] for st in model.param_stages}

    class Residual(nn.Module):
        def __init__(self, body, shortcut):
            super().__init__()
            self.body, self.shortcut = body, shortcut  # an empty Sequential is the identity

        def forward(self, x):
            return self.body(x) + self.shortcut(x)

    def twin(layer):
        if isinstance(layer, m.Conv2d):
            mod = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                            layer.padding, bias=layer.bias)
        elif isinstance(layer, m.Linear):
            mod = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias)
        elif isinstance(layer, m.BatchNorm2d):
            return nn.BatchNorm2d(layer.num_features, eps=layer.eps, momentum=layer.momentum)
        elif isinstance(layer, m.ReLU):
            return nn.ReLU()
        elif isinstance(layer, m.MaxPool2d):
            return nn.MaxPool2d(layer.kernel_size, layer.stride)
        elif isinstance(layer, getattr(m, "AvgPool2d", ())):
            return nn.AvgPool2d(layer.kernel_size, layer.stride)
        elif isinstance(layer, getattr(m, "GlobalAvgPool2d", ())):
            return nn.AdaptiveAvgPool2d(1)
        elif isinstance(layer, m.Flatten):
            return nn.Flatten()
        elif isinstance(layer, getattr(m, "Residual", ())):
            return Residual(sequential(layer.body), sequential(layer.shortcut))
        else:
            raise ValueError(f"bench: no PyTorch twin for {type(layer).__name__}")
        p = by_layer[id(layer)]
        with torch.no_grad():
            mod.weight.copy_(torch.from_numpy(p["w"].reshape(tuple(mod.weight.shape))))
            if p["b"] is not None:
                mod.bias.copy_(torch.from_numpy(p["b"]))
        return mod

    def sequential(layers):
        return nn.Sequential(*(twin(layer) for layer in layers))
    return sequential(model.layers)


def _fusable(seq, prefix, nn):
    """Names (for fuse_modules_qat) of the Conv2d(+BatchNorm2d)(+ReLU) and
    Linear(+ReLU) runs in `seq` and the Sequentials inside it."""
    mods, groups, i = list(seq.named_children()), [], 0
    while i < len(mods):
        name, mod = mods[i]
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            g = [i]
            if isinstance(mod, nn.Conv2d) and i + 1 < len(mods) and isinstance(mods[i + 1][1], nn.BatchNorm2d):
                g.append(i + 1)
            if g[-1] + 1 < len(mods) and isinstance(mods[g[-1] + 1][1], nn.ReLU):
                g.append(g[-1] + 1)
            if len(g) > 1:
                groups.append([prefix + mods[k][0] for k in g])
            i = g[-1] + 1
            continue
        for sub_name, sub in mod.named_children():
            if isinstance(sub, nn.Sequential):
                groups += _fusable(sub, f"{prefix}{name}.{sub_name}.", nn)
        i += 1
    return groups


def _qat_prepare(net, torch):
    """net prepared for int8 quantization-aware training as PyTorch's QAT
    tutorial does it: Conv2d(+BatchNorm2d)(+ReLU) and Linear(+ReLU) runs
    fused (fuse_modules_qat), the default QAT qconfig of the x86 backend
    (int8 per-channel weights, uint8 activations after every fused module),
    prepare_qat. A residual sum stays a float add (eager mode would need the
    model rewritten with FloatFunctional)."""
    from torch.ao import quantization as tq
    net.train()
    groups = _fusable(net, "", torch.nn)
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)  # and the default qconfig's reduce_range
        if groups:
            net = tq.fuse_modules_qat(net, groups)
        net.qconfig = tq.get_default_qat_qconfig("x86")
        return tq.prepare_qat(net)


class _TorchRunner:
    """The model in PyTorch fp32 (or int8 fake-quant), trained like ctrain's float model."""

    def __init__(self, spec, ds, batch, torch, fake_quant=False):
        from ..model import build_model
        nn = torch.nn
        torch.manual_seed(0)
        self.torch = torch
        model = build_model(spec.model, ds.input_shape, ds.num_classes)
        self.net = torch_network(model, model.init_params(np.random.default_rng(0)), torch)
        if fake_quant:
            self.net = _qat_prepare(self.net, torch)
        self.net.train()
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
        return 0.0, 0.0


def make_runner(framework, spec, ds, batch, torch=None, threads=None):
    if framework == "fixed":
        return _CtrainRunner(spec, ds, batch, True, threads)
    if framework == "float":
        return _CtrainRunner(spec, ds, batch, False, threads)
    if framework in ("torch", "torch-int8"):
        return _TorchRunner(spec, ds, batch, torch, fake_quant=framework == "torch-int8")
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


def memory_probe(framework, batch, threads, spec, iters):
    """In this (fresh) process: load the data, build `framework`, train `iters`
    iterations; peak RSS (peak_rss_kib) and RSS just before the first iteration, KiB."""
    spec = Spec(**spec) if isinstance(spec, dict) else spec
    torch = import_torch(framework.startswith("torch"))
    restore = set_threads(threads)
    try:
        ds = load_dataset(spec)
        runner = make_runner(framework, spec, ds, batch, torch, threads)
        order = batch_order(len(ds.train_y), batch, iters)
        before = _rss_kib()
        for idx in order:
            runner.step(idx)
        result = {"peak_kib": peak_rss_kib(), "before_kib": before}
    finally:
        restore()
    return result


_PROBE = ("import json, sys; from ctrain.tools.bench import memory_probe; "
          "print(json.dumps(memory_probe(*json.loads(sys.argv[1]))))")


def measure_memory(framework, batch, threads, spec, iters):
    """memory_probe in a fresh interpreter (python -c, so nothing of this
    process -- pages or its main module -- is inherited)."""
    args = json.dumps([framework, batch, threads, dataclasses.asdict(spec), iters])
    done = subprocess.run([sys.executable, "-c", _PROBE, args], capture_output=True, text=True, timeout=900)
    if done.returncode:
        raise RuntimeError(f"memory probe for {framework} batch {batch} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ timing

def time_batch(batch, spec, ds, frameworks, iters, rounds, warmup, torch=None, log=None, threads=None):
    """Interleaved rounds; per framework the best round's wall and engine time."""
    runners = {}
    for fw in frameworks:
        runners[fw] = make_runner(fw, spec, ds, batch, torch, threads)
    order = batch_order(len(ds.train_y), batch, warmup + iters * rounds)
    for fw, r in runners.items():  # warm-up: compile, calibrate, first-touch buffers
        for idx in order[:warmup]:
            r.step(idx)
    samples = {fw: [] for fw in frameworks}
    for k in range(rounds):
        chunk = order[warmup + k * iters:warmup + (k + 1) * iters]
        for fw, r in runners.items():
            e0, ec0 = r.engine_seconds()
            c0 = time.process_time()
            t0 = time.perf_counter()
            for idx in chunk:
                r.step(idx)
            wall = time.perf_counter() - t0
            e1, ec1 = r.engine_seconds()
            samples[fw].append((wall, e1 - e0, time.process_time() - c0, ec1 - ec0))
        if log:
            log(f"  batch {batch} round {k + 1}/{rounds}: " + ", ".join(
                f"{fw} {batch * iters / samples[fw][-1][0]:.0f} img/s" for fw in frameworks))
    out = {}
    for fw, s in samples.items():
        wall, engine, _, _ = min(s)
        _, _, cpu, engine_cpu = min(s, key=lambda x: x[2])  # the round of least CPU time
        out[fw] = {"images_per_s": batch * iters / wall, "ms_per_iter": 1e3 * wall / iters,
                   "images_per_cpu_s": batch * iters / cpu if cpu > 0 else None,
                   "engine_ms": 1e3 * engine / iters if fw == "fixed" else None,
                   "host_ms": 1e3 * (wall - engine) / iters if fw == "fixed" else None,
                   "host_cpu_pct": (100 * (cpu - engine_cpu) / cpu if fw == "fixed" and cpu > 0 and engine_cpu > 0
                                    else None),
                   "median_images_per_s": batch * iters / sorted(s)[len(s) // 2][0],
                   "rounds_images_per_s": [batch * iters / w for w, _, _, _ in s]}
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
              synthetic=False, use_torch=True, use_float=True, use_int8=True, memory=True, memory_iters=10,
              log=print, model="lenet5", dataset="mnist", engine="numpy"):
    """Run the benchmark; returns a dict (printable with format_report)."""
    threads = threads or os.cpu_count() or 1
    spec = Spec(model, dataset, data_dir, synthetic, engine)
    torch = import_torch(use_torch)
    ds = load_dataset(spec)
    frameworks = (["fixed"] + (["float"] if use_float else [])
                  + (["torch"] + (["torch-int8"] if use_int8 else []) if torch is not None else []))
    restore = set_threads(threads)
    try:
        report = {"env": environment(threads, torch), "model": model, "engine": engine, "dataset": ds.name,
                  "train_images": int(len(ds.train_y)), "iters": iters, "rounds": rounds, "warmup": warmup,
                  "frameworks": frameworks, "torch_missing": bool(use_torch and torch is None), "results": {}}
        for b in batch_sizes:
            res = time_batch(b, spec, ds, frameworks, iters, rounds, warmup, torch, log, threads)
            if memory:
                for fw in frameworks:
                    m = measure_memory(fw, b, threads, spec, memory_iters)
                    res[fw]["peak_rss_mib"] = m["peak_kib"] / 1024
                    res[fw]["train_rss_mib"] = (m["peak_kib"] - m["before_kib"]) / 1024
            report["results"][b] = res
    finally:
        restore()
    return report


#: (numerator, denominator, label) of the ratio lines; the first is the headline.
RATIOS = (("fixed", "torch", "ctrain fixed-point (bit-exact emulation) / torch fp32"),
          ("fixed", "torch-int8", "ctrain fixed-point (bit-exact emulation) / torch int8 fake-quant"),
          ("float", "torch", "ctrain float32 (warm-up) / torch fp32"))


def _rate(v):
    """An images/s figure in 9 columns: whole numbers, two decimals below 10
    (the C-sim engine on CIFAR-10 runs a few images per second)."""
    return f"{v:9.0f}" if v >= 10 else f"{v:9.2f}"


def format_report(report):
    """The report as text: a header, one row per batch size and framework,
    a note on the columns, and the ratio lines."""
    engine = report.get("engine", "numpy")
    lines = _report_header(report, engine)
    for b, res in report["results"].items():
        for fw in report["frameworks"]:
            lines.append(_result_row(b, fw, res[fw]))
    lines.append("")
    lines.append(f"host = iteration wall time minus {engine} engine run time (Trainer, Runtime, driver, emulated "
                 "device); img/CPU-s = images per second of the process's CPU time (all its threads; best round); "
                 "peak RSS = high-water resident set (VmHWM / ru_maxrss) of a fresh process "
                 "training that framework alone (+train: growth over its RSS before the first iteration)")
    lines += _ratio_lines(report)
    if report.get("torch_missing"):
        lines.append("torch fp32: not installed (pip install torch) -- no ratio")
    return "\n".join(lines)


def _report_header(report, engine):
    """The header lines: what ran, on what machine and software, then the
    column titles."""
    env = report["env"]
    return [
        f"{report.get('model', 'lenet5')} training on {report['dataset']} ({report['train_images']} training images), "
        f"{engine} engine: {report['iters']} iterations x {report['rounds']} interleaved rounds per framework "
        f"and batch size (best round), after {report['warmup']} warm-up iterations",
        f"CPU: {env['cpu']}, {env['cpus']} cores; threads: {env['threads']} for numpy/BLAS and the engine"
        + (f" and torch ({env['torch_threads']})" if "torch" in env else ""),
        f"python {env['python']}, numpy {env['numpy']}" + (f", BLAS {env['blas']}" if "blas" in env else "")
        + (f", torch {env['torch']}" if "torch" in env else ""),
        "",
        f"{'batch':>5}  {'framework':<31} {'images/s':>9} {'ms/iter':>8} {'engine ms':>9} {'host ms':>8} "
        f"{'host %':>6} {'img/CPU-s':>9} {'peak RSS MiB':>12} {'(+train)':>9}",
    ]


def _result_row(b, fw, r):
    """One table row: framework `fw`'s results `r` at batch size `b` ('-'
    where a figure was not measured)."""
    eng = f"{r['engine_ms']:9.2f}" if r["engine_ms"] is not None else f"{'-':>9}"
    host = f"{r['host_ms']:8.2f}" if r["host_ms"] is not None else f"{'-':>8}"
    pct = f"{100 * r['host_ms'] / r['ms_per_iter']:5.1f}%" if r["host_ms"] is not None else f"{'-':>6}"
    mem = (f"{r['peak_rss_mib']:12.0f} {'+%.0f' % r['train_rss_mib']:>9}" if "peak_rss_mib" in r
           else f"{'-':>12} {'':>9}")
    cpu = _rate(r["images_per_cpu_s"]) if r.get("images_per_cpu_s") else f"{'-':>9}"
    return (f"{b:>5}  {LABELS[fw]:<31} {_rate(r['images_per_s'])} {r['ms_per_iter']:8.2f} {eng} "
            f"{host} {pct} {cpu} {mem}")


def _ratio_lines(report):
    """The ratio lines of every RATIOS pair that both ran (images/s, then
    images per CPU second where measured), and fixed-point's host CPU share."""
    lines = []
    for num, den, label in RATIOS:
        if num in report["frameworks"] and den in report["frameworks"]:
            ratios = ", ".join(f"batch {b}: {res[num]['images_per_s'] / res[den]['images_per_s']:.2f}x"
                               for b, res in report["results"].items())
            lines.append(f"ratio {label} images/s: {ratios}")
    for num, den, label in RATIOS:  # CPU time: what a run costs, robust to other processes' load
        if num in report["frameworks"] and den in report["frameworks"]:
            res = report["results"]
            if all(res[b][num].get("images_per_cpu_s") and res[b][den].get("images_per_cpu_s") for b in res):
                ratios = ", ".join(f"batch {b}: {r[num]['images_per_cpu_s'] / r[den]['images_per_cpu_s']:.2f}x"
                                   for b, r in res.items())
                lines.append(f"CPU-time ratio {label} images per CPU second: {ratios}")
    if "fixed" in report["frameworks"]:
        res = report["results"]
        if all(res[b]["fixed"].get("host_cpu_pct") is not None for b in res):
            lines.append("host share of ctrain fixed-point's CPU time (process CPU time minus the engine's, "
                         "round of least CPU time): " + ", ".join(f"batch {b}: {r['fixed']['host_cpu_pct']:.1f}%"
                                                              for b, r in res.items()))
    return lines


def bench_parser(p):
    """Arguments of `ctrain bench` (also used by `python -m ctrain.tools.bench`)."""
    from ..engine import ENGINES
    from ..model import MODELS
    p.add_argument("--model", default="lenet5", choices=list(MODELS), help="the network (default lenet5)")
    p.add_argument("--dataset", default="mnist", help="a named data set (default mnist)")
    p.add_argument("--data-dir", default=None,
                   help="where the data set's files are (default ../shared/data/<dataset> for file data sets)")
    p.add_argument("--engine", default="numpy", choices=list(ENGINES), help="the emulated device's engine")
    p.add_argument("--synthetic", action="store_true", help="random images instead of the data set (no files needed)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    p.add_argument("--iters", type=int, default=20, help="timed iterations per round")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (the best is reported)")
    p.add_argument("--warmup", type=int, default=5, help="untimed iterations first")
    p.add_argument("--threads", type=int, default=None, help="BLAS, engine and torch threads (default: all cores)")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if it is installed")
    p.add_argument("--no-int8", action="store_true", help="skip PyTorch's int8 fake-quant run")
    p.add_argument("--no-float", action="store_true", help="skip ctrain's host float32 model")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    p.add_argument("--json", default=None, help="also write the results to this file")
    p.add_argument("--quiet", action="store_true", help="no per-round progress lines")
    return p


def _data_dir(args):
    """--data-dir, else ../shared/data/<dataset> for a data set read from files."""
    from ..datasets import DATASETS
    if args.data_dir is not None or args.synthetic:
        return args.data_dir
    src = DATASETS.get(args.dataset.lower())
    return os.path.join("..", "shared", "data", args.dataset.lower()) if src and src.needs_path else None


def main_args(args):
    report = run_bench(batch_sizes=args.batch_sizes, iters=args.iters, rounds=args.rounds, warmup=args.warmup,
                       threads=args.threads, data_dir=_data_dir(args), synthetic=args.synthetic,
                       use_torch=not args.no_torch, use_float=not args.no_float, use_int8=not args.no_int8,
                       memory=not args.no_memory, model=args.model, dataset=args.dataset, engine=args.engine,
                       log=None if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True)))
    print(format_report(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    import argparse
    sys.exit(main_args(bench_parser(argparse.ArgumentParser(prog="python -m ctrain.tools.bench")).parse_args()))
