"""`ctrain` command line: train, verify, fuzz, export, bench, sweep."""
import argparse
import sys

from .errors import CTrainError


def _train_parser(sub):
    p = sub.add_parser("train", help="train a CNN on the (emulated) accelerator")
    p.add_argument("--model", default=None, help="lenet5, digits-cnn or mlp (default: per dataset)")
    p.add_argument("--dataset", default="digits", choices=["digits", "mnist"],
                   help="digits: scikit-learn's 8x8 digits (built in); mnist: IDX files in --data-dir")
    p.add_argument("--data-dir", default=None, help="directory of MNIST IDX files (gzip or raw)")
    p.add_argument("--train-count", type=int, default=None, help="mnist t10k split: images for training (8000)")
    p.add_argument("--test-count", type=int, default=None, help="mnist t10k split: images for testing (2000)")
    p.add_argument("--epochs", type=int, default=None, help="default: 30 for digits, 8 for mnist")
    p.add_argument("--batch-size", type=int, default=None, help="default: 16 for digits, 64 for mnist")
    p.add_argument("--lr", type=float, default=0.05, help="peak learning rate")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--schedule", default="cosine", choices=["cosine", "constant"])
    p.add_argument("--warmup", type=float, default=1.0, help="epochs of float training before fixed point")
    p.add_argument("--float", dest="fixed_point", action="store_false",
                   help="fixed point off: the whole run in float32 (the fp32 baseline)")
    p.add_argument("--window", type=int, default=2, help="exponents from the last 2^N iterations")
    p.add_argument("--prune", type=float, default=0.5,
                   help="fraction of weights (or filters) to prune, 0 for none (default 0.5)")
    p.add_argument("--prune-at", type=float, default=0.5,
                   help="when to prune, as a fraction of the run (default half-way)")
    p.add_argument("--prune-mode", default="element", choices=["element", "filter"],
                   help="element-wise, or structured (whole output filters), by L2 norm")
    p.add_argument("--prune-scope", default="global", choices=["global", "layer"],
                   help="one magnitude threshold for all layers (default), or the target in every layer")
    p.add_argument("--dense-masked", dest="sparse_exec", action="store_false",
                   help="run pruned layers dense with a mask instead of sparse (for comparison)")
    p.add_argument("--warm-start", default=None, metavar="FILE",
                   help="start from these float weights: .npz (CTrain model file, checkpoint, or arrays) "
                        "or a PyTorch state_dict (.pt/.pth)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--engine", default="numpy", choices=["numpy", "csim"])
    p.add_argument("--device", default="emulated", choices=["emulated", "board"])
    p.add_argument("--checkpoint", default=None, help="checkpoint file, written atomically every epoch")
    p.add_argument("--checkpoint-every", type=int, default=0, help="also every N iterations")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--report", action="store_true",
                   help="after training, the performance model's cycles per layer and phase on --board")
    p.add_argument("--board", default="pynq_z2", choices=["pynq_z2", "ultra96", "zcu104", "zcu102"],
                   help="board configuration for --report (PE array, clock, DDR bandwidth)")
    p.add_argument("--no-progress", action="store_true")
    return p


def _print_report(trainer, board):
    """Modeled cycles of the final program, and of the same network dense."""
    from .compiler import compile_model
    from .perfmodel import format_report, report
    if not trainer.fixed:
        print("--report: no fixed-point program ran (float run), nothing to model")
        return
    program = trainer.runtime.program
    rep = report(program, board)
    print(format_report(rep))
    if any(L.sparse for L in program.layers):
        dense = report(compile_model(trainer.model, trainer.cfg.batch_size), board)

        def total(r, phases, key):
            return sum(row[key] for row in r["rows"] if row["phase"] in phases)
        for name, phases in (("FP+EB", ("FP", "EB")), ("WG", ("WG",)), ("all", ("FP", "EB", "WG", "UPDATE"))):
            for key, what in (("cycles", "cycles"), ("compute", "compute-only cycles")):
                a, d = total(rep, phases, key), total(dense, phases, key)
                print(f"modeled {name} {what}, sparse / dense: {a:,d} / {d:,d} = {a / max(d, 1):.3f}")


def train_config(args):
    """The TrainConfig of parsed `ctrain train` options (also each `ctrain sweep` trial's)."""
    from .train import TrainConfig
    return TrainConfig(dataset=args.dataset, data_dir=args.data_dir, model=args.model, epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
                      weight_decay=args.weight_decay, schedule=args.schedule, warmup_epochs=args.warmup,
                      fixed_point=args.fixed_point, window_log2=args.window, seed=args.seed,
                      engine=args.engine, device=args.device, train_count=args.train_count,
                      test_count=args.test_count, checkpoint=args.checkpoint,
                      checkpoint_every=args.checkpoint_every, prune=args.prune, prune_at=args.prune_at,
                      prune_mode=args.prune_mode, prune_scope=args.prune_scope, sparse_exec=args.sparse_exec,
                      warm_start=args.warm_start)


def _cmd_train(args):
    from .train import train
    cfg = train_config(args)
    trainer, acc = train(cfg, progress=not args.no_progress, resume=args.resume)
    mode = "8-bit fixed point" if cfg.fixed_point else "float32"
    if args.report:
        _print_report(trainer, args.board)
    print(f"test accuracy: {100 * acc:.2f}% ({mode}, {cfg.model_name()} on {cfg.dataset}, "
          f"{len(trainer.ds.test_y)} held-out images)")
    return 0


def _verify_parser(sub):
    p = sub.add_parser("verify", help="compare an engine with the numpy engine on random instructions")
    p.add_argument("--engine", default="csim", choices=["numpy", "csim"])
    p.add_argument("--cases", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    return p


def _cmd_verify(args):
    from .verify import format_report, verify
    report = verify(args.engine, args.cases, args.seed, progress=not args.no_progress)
    print(format_report(report))
    return 0 if report["mismatches"] == 0 else 1


def _fuzz_parser(sub):
    p = sub.add_parser("fuzz", help="fuzz the instruction decoder with random and mutated streams")
    p.add_argument("--engine", action="append", choices=["numpy", "csim"],
                   help="engine to fuzz (repeat for both; with two, their results are compared)")
    p.add_argument("--streams", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    return p


def _cmd_fuzz(args):
    from .fuzz import clean, format_report, fuzz
    report = fuzz(tuple(args.engine or ["numpy"]), args.streams, args.seed, progress=not args.no_progress)
    print(format_report(report))
    return 0 if clean(report) else 1


def _export_parser(sub):
    p = sub.add_parser("export", help="export a trained model (checkpoint) to a CTrain model file and ONNX")
    p.add_argument("checkpoint", help="a checkpoint written by `ctrain train --checkpoint`")
    p.add_argument("-o", "--output", required=True, help="model file to write (.npz, docs/export.md)")
    p.add_argument("--onnx", default=None, metavar="FILE", help="also write an ONNX model")
    p.add_argument("--onnx-style", default="exact", choices=["exact", "qdq"],
                   help="exact: dequantized weights + explicit requantization (bit-exact); "
                        "qdq: QuantizeLinear/DequantizeLinear nodes")
    return p


def _cmd_export(args):
    from .export import export_checkpoint
    trainer = export_checkpoint(args.checkpoint, args.output, args.onnx, args.onnx_style)
    print(f"wrote {args.output}" + (f" and {args.onnx}" if args.onnx else "")
          + f" ({trainer.cfg.model_name()}, iteration {trainer.it}, "
          + ("8-bit fixed point)" if trainer.fixed else "float32)"))
    return 0


def _bench_parser(sub):
    from .bench import bench_parser
    return bench_parser(sub.add_parser(
        "bench", help="training speed: bit-exact emulation vs the host float model and PyTorch fp32"))


def _cmd_bench(args):
    from .bench import main_args
    return main_args(args)


def _sweep_parser(sub):
    from .sweep import sweep_parser
    return sweep_parser(sub.add_parser(
        "sweep", help="a grid or random search of training runs on Ray (pip install 'ctrain[sweep]')",
        description="Each trial is a `ctrain train` run with its own directory and checkpoint; "
                    "options after `--` are passed to every trial."))


def _cmd_sweep(args):
    from .sweep import main_args
    return main_args(args)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="ctrain", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _verify_parser(sub)
    _fuzz_parser(sub)
    _export_parser(sub)
    _bench_parser(sub)
    _sweep_parser(sub)
    args = parser.parse_args(argv)
    try:
        commands = {"train": _cmd_train, "verify": _cmd_verify, "fuzz": _cmd_fuzz, "export": _cmd_export,
                    "bench": _cmd_bench, "sweep": _cmd_sweep}
        return commands[args.command](args)
    except CTrainError as exc:
        print(f"ctrain: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ctrain: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
