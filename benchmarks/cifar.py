"""Accuracy and time per epoch of one network trained three ways, on the same
data, batches, augmentation, initial weights and schedule:

  compressed  CTrain: float warm-up, then 8-bit fixed point on the emulated
              accelerator (numpy engine), pruned at --prune-at (default half-way)
  float       CTrain float32 (host FloatNet), no pruning: the uncompressed baseline
  float-pruned  CTrain float32 pruned as `compressed` is: what pruning alone costs
  torch       PyTorch fp32 (optional), the same schedule as `compressed`
              (batch-norm freeze, pruning at the same iteration, the same SGD rule)

    python benchmarks/cifar.py --model cnv --epochs 10 --json cifar_cnv.json
    python benchmarks/cifar.py --dataset fashion-mnist --model lenet5 --epochs 16 --seeds 0 1 2 --runs compressed float
    python benchmarks/cifar.py --merge seed0.json seeds12.json --json all.json   # seeds run apart, one table

Defaults come from the model's defaults (ctrain.train.MODEL_DEFAULTS) and the
data set's; every run prints one line per epoch and the JSON has them all.
Needs ../shared/data (or --data-dir); not part of the test suite."""
import argparse
import json
import os
import sys
import time

import numpy as np

from ctrain.compiler import SPARSE_EXEC
from ctrain.pruning import SCOPES as PRUNE_SCOPES
from ctrain.runtime import LOSS_ROUNDING
from ctrain.train import TrainConfig, Trainer, learning_rate

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared", "data")
RUNS = ("compressed", "float", "float-pruned", "torch")
#: the data sets' directories in ../shared/data and their preprocessing
DATA = {"cifar10": ("cifar10", {"normalize": True, "augment": "crop=4,flip"}),
        "fashion-mnist": ("fashion-mnist", {}),
        "mnist": ("mnist", {})}


def config(args, run, seed):
    sub, prep = DATA[args.dataset]
    kw = dict(dataset=args.dataset, data_dir=args.data_dir or os.path.join(SHARED, sub), model=args.model,
              epochs=args.epochs, seed=seed, prune=0.0 if run == "float" else args.prune,
              prune_at=args.prune_at, fixed_point=run == "compressed", **prep)
    for key in ("batch_size", "lr", "warmup_epochs", "train_count", "prune_scope", "dense_first", "prune_steps",
                "prune_from", "lr_restart", "sparse_exec", "bn_recal", "loss_rounding"):
        if getattr(args, key) is not None and not (key == "lr_restart" and kw["prune"] == 0) \
                and not (key == "loss_rounding" and run != "compressed"):
            kw[key] = getattr(args, key)
    return TrainConfig(**kw)


def run_ctrain(cfg, say):
    """Trainer.run's loop, timing the training iterations of each epoch apart
    from the evaluation after it."""
    t = Trainer(cfg)
    epochs = []
    while t.it < t.total:
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(t.iters_per_epoch):
            loss, _ = t.step(t.batch_indices())
            t.history.add(loss, 0.0, t.fixed)
            for msg in t.messages:
                say("  " + msg)
            t.messages.clear()
        train_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        acc = t.evaluate("test")
        epochs.append({"epoch": len(epochs) + 1, "loss": float(loss), "test_acc": acc, "train_s": train_s, "cpu_s": cpu_s,
                       "eval_s": time.perf_counter() - t0, "fixed": t.fixed})
        say(f"  epoch {len(epochs)}: loss {loss:.4f} test {100 * acc:.2f}% "
            f"({'fixed' if t.fixed else 'float'}) {train_s:.1f} s wall, {cpu_s:.1f} s CPU")
    return epochs, t


def run_torch(cfg, say):
    """PyTorch fp32 with the compressed run's schedule: the same initial
    weights (the Trainer's), batches, augmentation, learning rate per
    iteration, SGD rule (v = mu v + lr (g + wd w); w -= v), batch-norm freeze
    (running statistics and affine) where fixed point would start, and pruning
    (ctrain.pruning on the same weights) at the same iteration."""
    import torch
    from ctrain.pruning import prune_masks
    from ctrain.torch_import import param_modules, to_torch
    torch.manual_seed(cfg.seed)
    t = Trainer(TrainConfig(**{**cfg.__dict__, "fixed_point": False}))
    warm = round(cfg.warmup_epochs * t.iters_per_epoch)  # where the compressed run freezes BN
    net = to_torch(t.model, t.net)
    layers, bns = param_modules(net)
    weights = [p for m in layers for p in (m.weight, m.bias) if p is not None]
    bn_params = [p for m in bns for p in (m.weight, m.bias)]
    vel = {id(p): torch.zeros_like(p) for p in weights + bn_params}
    decayed = {id(p) for p in weights}  # batch-norm affine has no weight decay, as in FloatNet
    masks = None
    steps = dict(t.prune_schedule)
    x_test = torch.from_numpy(np.ascontiguousarray(t.ds.test_x))
    epochs = []
    while t.it < t.total:
        t0, c0 = time.perf_counter(), time.process_time()
        net.train()
        for _ in range(t.iters_per_epoch):
            if t.it in steps:   # the Trainer's schedule (train.prune_schedule), each step on the last's masks
                masks = [torch.from_numpy(m) for m in prune_masks(
                    [m.weight.detach().numpy() for m in layers], steps[t.it], cfg.prune_mode, cfg.prune_scope,
                    None if masks is None else [k.numpy() for k in masks], spare=t.spared)]
                say(f"  pruned {100 * (1 - sum(int(m.sum()) for m in masks) / sum(m.numel() for m in masks)):.1f}%"
                    f" at iteration {t.it}")
                if cfg.bn_recal and bns and t.it >= warm:
                    recalibrate_bn(net, layers, bns, masks, t._recal_batches())
            frozen = t.it >= warm
            for m in bns:
                m.train(not frozen)
            idx = t.batch_indices()
            x = torch.from_numpy(np.ascontiguousarray(t._inputs(t.ds.train_x, idx)))
            y = torch.from_numpy(t.ds.train_y[idx])
            loss_t = torch.nn.functional.cross_entropy(net(x), y)
            net.zero_grad(set_to_none=False)
            loss_t.backward()
            loss = loss_t.item()
            lr = learning_rate(cfg, t.it, t.total)
            with torch.no_grad():
                for p in weights + ([] if frozen else bn_params):
                    v = vel[id(p)]
                    v.mul_(cfg.momentum).add_(p.grad + (cfg.weight_decay * p if id(p) in decayed else 0), alpha=lr)
                    p.sub_(v)
                if masks is not None:
                    for m, k in zip(layers, masks):
                        m.weight.mul_(k.reshape(m.weight.shape))
                        vel[id(m.weight)].mul_(k.reshape(m.weight.shape))
            t.it += 1
        train_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        net.eval()
        with torch.no_grad():
            pred = torch.cat([net(x_test[i:i + 500]).argmax(1) for i in range(0, len(x_test), 500)])
        acc = float((pred.numpy() == t.ds.test_y).mean())
        epochs.append({"epoch": len(epochs) + 1, "loss": loss, "test_acc": acc, "train_s": train_s, "cpu_s": cpu_s,
                       "eval_s": time.perf_counter() - t0, "fixed": False})
        say(f"  epoch {len(epochs)}: loss {loss:.4f} test {100 * acc:.2f}% (torch) {train_s:.1f} s wall, {cpu_s:.1f} s CPU")
    return epochs, t


def recalibrate_bn(net, layers, bns, masks, batches):
    """The Trainer's batch-norm re-estimation after pruning (FloatNet.recalibrate_bn)
    in PyTorch: pruned weights, running statistics reset and averaged over the
    same batches (momentum None), gamma and beta kept."""
    import torch
    with torch.no_grad():
        for m, k in zip(layers, masks):
            m.weight.mul_(k.reshape(m.weight.shape))
        momenta = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
            m.train(True)
        for x in batches:
            net(torch.from_numpy(np.ascontiguousarray(x)))
        for m, momentum in zip(bns, momenta):
            m.momentum = momentum


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="cifar10", choices=list(DATA))
    p.add_argument("--data-dir", default=None, help="default: ../shared/data/<dataset>")
    p.add_argument("--model", default="cnv")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=None, help="default: the model's (MODEL_DEFAULTS)")
    p.add_argument("--lr", type=float, default=None, help="default: the model's (MODEL_DEFAULTS)")
    p.add_argument("--warmup", dest="warmup_epochs", type=float, default=None,
                   help="float warm-up epochs of the compressed run (BN freezes there in every run)")
    p.add_argument("--train-count", type=int, default=None, help="train on the first N images (default 8000)")
    p.add_argument("--prune", type=float, default=0.8, help="fraction pruned (compressed, float-pruned and torch runs)")
    p.add_argument("--prune-at", type=float, default=0.5, help="when, as a fraction of the run")
    p.add_argument("--prune-scope", default=None, choices=PRUNE_SCOPES,
                   help="one magnitude threshold over all layers (global) or the target in every layer "
                        "(layer); default: TrainConfig's")
    p.add_argument("--dense-first", action="store_true", default=None,
                   help="never prune the first layer; the others carry its share (TrainConfig.dense_first)")
    p.add_argument("--prune-steps", type=int, default=None, metavar="N",
                   help="gradual pruning in N steps ending at --prune-at (TrainConfig.prune_steps)")
    p.add_argument("--prune-from", type=float, default=None, metavar="F", help="the first of them (TrainConfig.prune_from)")
    p.add_argument("--lr-restart", action="store_true", default=None,
                   help="the pruned runs restart the cosine at the last pruning step (TrainConfig.lr_restart); "
                        "the float run, never pruned, keeps one cosine")
    p.add_argument("--loss-rounding", default=None, choices=LOSS_ROUNDING,
                   help="the compressed run's int8 loss gradient (TrainConfig.loss_rounding); the others are float")
    p.add_argument("--sparse-exec", default=None, choices=SPARSE_EXEC,
                   help="pruned layers sparse or dense on the emulated device (same bits); default: TrainConfig's")
    p.add_argument("--bn-recal", type=int, default=None, metavar="N",
                   help="batches that re-estimate the frozen batch norms after pruning; default: TrainConfig's")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--runs", nargs="+", default=list(RUNS), choices=RUNS)
    p.add_argument("--threads", type=int, default=1, help="BLAS and torch threads (default 1)")
    p.add_argument("--json", default=None, metavar="FILE", help="write every epoch of every run here")
    p.add_argument("--merge", nargs="+", default=None, metavar="RESULT",
                   help="train nothing: merge these result files (seeds run apart) into one, print its table "
                        "and write it to --json")
    args = p.parse_args(argv)
    if args.merge:
        try:
            out = merge(args.merge)
        except ValueError as e:
            print(f"cifar.py: {e}", file=sys.stderr)
            return 2
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump(out, fh, indent=1)
        summarize(out, lambda m: print(m, flush=True))
        return 0
    from ctrain.tools.bench import import_torch, set_threads
    runs = [r for r in args.runs if r != "torch" or import_torch(True) is not None]
    if len(runs) < len(args.runs):
        print("torch is not installed: the torch run is skipped", file=sys.stderr)
    set_threads(args.threads)

    def say(msg):
        print(msg, flush=True)
    out = {"dataset": args.dataset, "model": args.model, "epochs": args.epochs, "threads": args.threads,
           "prune": args.prune, "prune_at": args.prune_at, "command": " ".join(sys.argv), "runs": {}}
    for run in runs:
        for seed in args.seeds:
            cfg = config(args, run, seed)
            say(f"{run} seed {seed}: {args.model} on {args.dataset}, {cfg.epochs} epochs, batch {cfg.batch_size}, "
                f"lr {cfg.lr:g}, warm-up {cfg.warmup_epochs:g}, prune {cfg.prune:g} at {cfg.prune_at:g}")
            epochs, _ = (run_torch if run == "torch" else run_ctrain)(cfg, say)
            out["runs"].setdefault(run, []).append({"seed": seed, "config": {k: v for k, v in cfg.__dict__.items()},
                                                    "epochs": epochs})
            if args.json:
                with open(args.json, "w", encoding="utf-8") as fh:
                    json.dump(out, fh, indent=1)
    summarize(out, say)
    return 0


def summarize(out, say):
    """Final accuracy per run, mean over its seeds, and the mean of the others
    against the first run's (the compressed run against its baselines)."""
    say("\nrun          final test accuracy (mean of seeds)   train s/epoch: wall, CPU")
    means = {}
    for run, results in out["runs"].items():
        accs = [r["epochs"][-1]["test_acc"] for r in results]
        wall = [e["train_s"] for r in results for e in r["epochs"]]
        cpu = [e["cpu_s"] for r in results for e in r["epochs"]]
        means[run] = 100 * np.mean(accs)
        seeds = ", ".join(f"{r['seed']}: {100 * a:.2f}" for r, a in zip(results, accs))
        say(f"{run:<12} {means[run]:6.2f}%  (seed {seeds})   {np.mean(wall):8.1f} {np.mean(cpu):8.1f}")
    if "compressed" in means:
        for run, m in means.items():
            if run != "compressed":
                say(f"compressed - {run}: {means['compressed'] - m:+.2f} points")


def merge(paths):
    """One result from the JSON files of several invocations (seeds run apart,
    on one machine or several): the same data set, model and epoch count, each
    (run, seed) once. Raises ValueError naming the first file that disagrees."""
    out = None
    for path in paths:
        try:
            with open(path, encoding="utf-8") as fh:
                d = json.load(fh)
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: not a cifar.py result ({e})") from None
        if not isinstance(d, dict) or not isinstance(d.get("runs"), dict):
            raise ValueError(f"{path}: not a cifar.py result (no 'runs')")
        if out is None:
            out = {k: v for k, v in d.items() if k != "runs"}
            out["command"] = [d.get("command")]
            out["runs"] = {}
        else:
            for key in ("dataset", "model", "epochs"):
                if d.get(key) != out.get(key):
                    raise ValueError(f"{path}: {key} {d.get(key)!r}, the first file's is {out.get(key)!r}")
            out["command"].append(d.get("command"))
        for run, results in d["runs"].items():
            have = out["runs"].setdefault(run, [])
            for r in results:
                if any(h["seed"] == r["seed"] for h in have):
                    raise ValueError(f"{path}: run {run} seed {r['seed']} is already in an earlier file")
                have.append(r)
    for results in out["runs"].values():
        results.sort(key=lambda r: r["seed"])
    return out


if __name__ == "__main__":
    sys.exit(main())
