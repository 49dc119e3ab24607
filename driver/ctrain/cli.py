"""`ctrain` command line: train, verify, fuzz, export, bench, perf, sweep."""
import argparse
import dataclasses
import signal
import sys

from . import __version__, boards
from .errors import ConfigError, CTrainError


class _Parser(argparse.ArgumentParser):
    """Usage mistakes as one line `ctrain: error: ...` and exit status 2
    (argparse's default prints the whole usage block first)."""

    def error(self, message):
        print(f"ctrain: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


class _DefaultsFormatter(argparse.HelpFormatter):
    """Appends '(default: X)' to options that take a value and have one, and
    whose help does not already say it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, argparse.SUPPRESS) and action.nargs != 0 and "default" not in text:
            text += " (default: %(default)s)"
        return text


def _train_parser(sub):
    from .datasets import DATASETS
    from .engine import ENGINES
    from .model import MODELS
    from .pruning import MODES, SCOPES
    from .train import BASE_DEFAULTS, DEFAULT_MODEL, DEFAULTS, DEVICES, MODEL_DEFAULTS, SCHEDULES, TrainConfig
    from .compiler import SPARSE_EXEC
    d = TrainConfig()  # the defaults, from the one place that defines them

    def per_dataset(key):
        return ", ".join(f"{v[key]} for {k}" for k, v in DEFAULTS.items())

    def per_model(key):
        return (", ".join(f"{v[key]:g} for {k}" for k, v in MODEL_DEFAULTS.items())
                + f", else {BASE_DEFAULTS[key]:g}")
    p = sub.add_parser("train", help="train a CNN on the (emulated) accelerator",
                       formatter_class=_DefaultsFormatter)
    p.add_argument("--model", default=None, metavar="NAME|MODULE:FUNCTION",
                   help="network: " + ", ".join(MODELS) + ", or package.module:function returning a model "
                        "(docs/models.md) (default: "
                        + ", ".join(f"{v} for {k}" for k, v in DEFAULT_MODEL.items()) + ")")
    p.add_argument("--dataset", default=d.dataset, choices=list(DATASETS),
                   help="; ".join(f"{name}: {src.help}" for name, src in DATASETS.items()))
    p.add_argument("--data-dir", default=None, help="the data set's directory, or the .npz file (docs/data.md)")
    p.add_argument("--image-size", default=None, metavar="HxW",
                   help="folder: resize every image to HxW (or NxN); default: all images must be one size")
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                   help="per-channel normalisation (training-split mean and std, scaled to the input format); "
                        "default: " + ", ".join(f"on for {k}" for k, v in DEFAULTS.items() if v.get("normalize"))
                        + ", else off")
    p.add_argument("--augment", default=None, metavar="SPEC",
                   help="augment training batches on the fly: flip, crop[=P] (zero padding P, default 4), "
                        "e.g. crop=4,flip, or none; default: "
                        + ", ".join(f"{v['augment']} for {k}" for k, v in DEFAULTS.items() if v.get("augment"))
                        + ", else none")
    p.add_argument("--train-count", type=int, default=None,
                   help="images for training: the first N (one-set mnist/cifar10 default 8000; docs/data.md)")
    p.add_argument("--test-count", type=int, default=None,
                   help="images for testing: the last N of one set (default 2000, npz/folder 20%%), else the first N")
    p.add_argument("--epochs", type=int, default=None, help=f"default: {per_dataset('epochs')}")
    p.add_argument("--batch-size", type=int, default=None, help=f"default: {per_dataset('batch_size')}")
    p.add_argument("--lr", type=float, default=None, help=f"peak learning rate (default: {per_model('lr')})")
    p.add_argument("--momentum", type=float, default=d.momentum, help="SGD momentum, in [0, 1)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="L2 weight decay, in [0, 1)")
    p.add_argument("--schedule", default=d.schedule, choices=list(SCHEDULES), help="learning-rate schedule")
    p.add_argument("--warmup", dest="warmup_epochs", type=float, default=None,
                   help="epochs of float training before fixed point, in [0, epochs] "
                        f"(default: {per_model('warmup_epochs')}, at most the epochs)")
    p.add_argument("--float", dest="fixed_point", action="store_false", default=d.fixed_point,
                   help="fixed point off: the whole run in float32 (the fp32 baseline)")
    p.add_argument("--window", dest="window_log2", type=int, default=d.window_log2,
                   help="exponents from the last 2^N iterations, N in 0..10")
    p.add_argument("--prune", type=float, default=d.prune,
                   help="fraction of weights (or filters) to prune, in [0, 1); 0 for none")
    p.add_argument("--prune-at", type=float, default=d.prune_at,
                   help="when to prune, as a fraction of the run, in [0, 1)")
    p.add_argument("--prune-mode", default=d.prune_mode, choices=list(MODES),
                   help="element-wise, or structured (whole output filters), by L2 norm")
    p.add_argument("--prune-scope", default=d.prune_scope, choices=list(SCOPES),
                   help="one magnitude threshold for all layers (global), or the target in every layer")
    p.add_argument("--sparse-exec", default=d.sparse_exec, choices=list(SPARSE_EXEC),
                   help="pruned layers: sparse or dense, whichever the cycle model of --board finds cheaper "
                        "(auto), always sparse, or never (dense with the mask); all compute the same bits")
    p.add_argument("--warm-start", default=None, metavar="FILE",
                   help="start from these float weights: .npz (CTrain model file, checkpoint, or arrays) "
                        "or a PyTorch state_dict (.pt/.pth)")
    p.add_argument("--freeze", type=int, default=d.freeze, metavar="N",
                   help="keep the first N Conv2d/Linear layers fixed (fine-tuning: no gradient or update for "
                        "them, backward stops at layer N)")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed, in 0..2^32-1")
    p.add_argument("--engine", default=d.engine, choices=list(ENGINES), help="emulation engine")
    p.add_argument("--device", default=d.device, choices=list(DEVICES), help="where fixed point runs")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint file, written atomically every epoch (never over a file that is not one)")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every,
                   help="also every N iterations (0: only at epoch ends)")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--report", action="store_true",
                   help="after training, the performance model's cycles per layer and phase on --board")
    p.add_argument("--board", default=d.board, choices=boards.BOARDS,
                   help="board configuration the program is compiled for (--sparse-exec auto) and --report "
                        "models (PE array, clock, DDR bandwidth)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _print_report(trainer, board):
    """The performance report (ctrain.tools.perfreport) of the final program, and
    for a pruned one its cycles against the same network dense."""
    from .tools import perfreport
    from .compiler import compile_model
    if not trainer.fixed:
        print("--report: no fixed-point program ran (float run), nothing to model")
        return
    program = trainer.runtime.program
    rep = perfreport.build(program, board, trainer.cfg.model_name())
    print(perfreport.format_report(rep))
    if any(L.mask is not None for L in program.layers):
        dense = perfreport.build(compile_model(trainer.model, trainer.cfg.batch_size), board,
                                 trainer.cfg.model_name())
        print("\n".join(perfreport.compare(rep, dense)))


def _option(field):
    """The `ctrain train` option of a TrainConfig field."""
    return {"warmup_epochs": "--warmup", "window_log2": "--window",
            "fixed_point": "--float"}.get(field, "--" + field.replace("_", "-"))


def train_config(args):
    """The TrainConfig of parsed `ctrain train` options (also each `ctrain sweep` trial's)."""
    from .train import TrainConfig
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    try:
        return TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
    except ConfigError as exc:
        raise CTrainError(f"{_option(exc.field)} {exc.detail}") from None


def _cmd_train(args):
    from .train import train
    cfg = train_config(args)
    try:
        trainer, acc = train(cfg, progress=not args.no_progress, resume=args.resume)
    except ConfigError as exc:
        raise CTrainError(f"{_option(exc.field)} {exc.detail}") from None
    if args.report:
        _print_report(trainer, args.board)
    if trainer.fixed:
        mode = "8-bit fixed point"
    elif cfg.fixed_point:
        mode = f"float32: the run ended within its {cfg.warmup_epochs:g}-epoch float warm-up"
    else:
        mode = "float32"
    print(f"test accuracy: {100 * acc:.2f}% ({mode}, {cfg.model_name()} on {cfg.dataset}, "
          f"{len(trainer.ds.test_y)} held-out images)")
    return 0


def _verify_parser(sub):
    from .engine import ENGINES
    p = sub.add_parser("verify", help="compare an engine with the numpy engine on random instructions")
    p.add_argument("--engine", default="csim", choices=list(ENGINES))
    p.add_argument("--cases", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    return p


def _cmd_verify(args):
    from .tools.cross_check import format_report, verify
    report = verify(args.engine, args.cases, args.seed, progress=not args.no_progress)
    print(format_report(report))
    return 0 if report["mismatches"] == 0 else 1


def _fuzz_parser(sub):
    from .engine import ENGINES
    from .tools.fuzz import ENGINES as FUZZED, STREAMS
    p = sub.add_parser("fuzz", help="fuzz the instruction decoder with random and mutated streams")
    p.add_argument("--engine", action="append", choices=list(ENGINES),
                   help=f"engine to fuzz (repeat for both; with two, their results are compared; "
                        f"default {', '.join(FUZZED)})")
    p.add_argument("--streams", type=int, default=STREAMS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    return p


def _cmd_fuzz(args):
    from .tools.fuzz import clean, format_report, fuzz
    from .tools.fuzz import ENGINES as FUZZED
    report = fuzz(tuple(args.engine or FUZZED), args.streams, args.seed, progress=not args.no_progress)
    print(format_report(report))
    return 0 if clean(report) else 1


def _export_parser(sub):
    from .onnx_export import STYLES
    p = sub.add_parser("export", help="export a trained model (checkpoint) to a CTrain model file and ONNX")
    p.add_argument("checkpoint", help="a checkpoint written by `ctrain train --checkpoint`")
    p.add_argument("-o", "--output", required=True, help="model file to write (.npz, docs/export.md)")
    p.add_argument("--onnx", default=None, metavar="FILE", help="also write an ONNX model")
    p.add_argument("--onnx-style", default=STYLES[0], choices=list(STYLES),
                   help="exact: dequantized weights + explicit requantization (bit-exact); "
                        "qdq: QuantizeLinear/DequantizeLinear nodes")
    return p


def _cmd_export(args):
    from .export import check_export_targets, export_checkpoint
    check_export_targets(args.checkpoint, args.output, args.onnx)
    trainer = export_checkpoint(args.checkpoint, args.output, args.onnx, args.onnx_style)
    print(f"wrote {args.output}" + (f" and {args.onnx}" if args.onnx else "")
          + f" ({trainer.cfg.model_name()}, iteration {trainer.it}, "
          + ("8-bit fixed point)" if trainer.fixed else "float32)"))
    return 0


def _bench_parser(sub):
    from .tools.bench import bench_parser
    return bench_parser(sub.add_parser(
        "bench", help="training speed of any named model: bit-exact emulation vs the host float model, "
                 "PyTorch fp32 and PyTorch int8 fake-quant"))


def _cmd_bench(args):
    from .tools.bench import main_args
    return main_args(args)


def _perf_parser(sub):
    from .model import MODELS
    from .boards import BOARDS, DEFAULT_BOARD
    from .tools.perfreport import DEFAULT_BATCH
    from .compiler import DEFAULT_SPARSE_EXEC, SPARSE_EXEC
    p = sub.add_parser("perf", help="modeled cycles, efficiency, roofs and resources of a model on a board "
                                    "(compiled, not trained)")
    p.add_argument("--model", default=None, help=f"a named model: {', '.join(MODELS)}")
    p.add_argument("--batch", type=int, default=None,
                   help=f"batch size (default: the checkpoint's, else {DEFAULT_BATCH})")
    p.add_argument("--board", default=DEFAULT_BOARD, help=f"{', '.join(BOARDS)} (default {DEFAULT_BOARD})")
    masks = p.add_mutually_exclusive_group()
    masks.add_argument("--sparsity", type=float, default=0.0,
                       help="fraction of weights pruned by random element-wise masks (default 0: dense)")
    masks.add_argument("--checkpoint", default=None, metavar="FILE",
                       help="the model and pruning masks of a training checkpoint")
    p.add_argument("--prune-scope", default="layer",
                   help="random masks: the sparsity in every layer (layer, default), or one magnitude threshold "
                        "over all layers' random initial weights (global, empties the widest layers)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights the masks prune")
    p.add_argument("--sparse-exec", default=DEFAULT_SPARSE_EXEC, choices=SPARSE_EXEC,
                   help="pruned layers: sparse or dense, whichever the cycle model finds cheaper on --board "
                        "(auto, default), always sparse, or never")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the report as JSON")
    return p


def _cmd_perf(args):
    from .tools import perfreport
    perfreport.check_options(args.model, args.batch, args.board, args.sparsity, args.checkpoint,
                             args.prune_scope, args.json)
    program, name, sparsity, per_layer = perfreport.perf_program(args.model, args.batch, args.sparsity,
                                                                 args.checkpoint, args.seed, args.prune_scope,
                                                                 args.sparse_exec, args.board)
    rep = perfreport.build(program, args.board, name, sparsity, per_layer)
    print(perfreport.format_report(rep))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            fh.write(perfreport.to_json(rep) + "\n")
    return 0


def _terminate(signum, frame):
    raise KeyboardInterrupt  # unwinds through the same clean-up as Ctrl-C


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
    parser = _Parser(prog="ctrain", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ctrain {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _verify_parser(sub)
    _fuzz_parser(sub)
    _export_parser(sub)
    _bench_parser(sub)
    _perf_parser(sub)
    _sweep_parser(sub)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (already printed)
        return exc.code
    previous = signal.signal(signal.SIGTERM, _terminate) if _main_thread() else None
    try:
        commands = {"train": _cmd_train, "verify": _cmd_verify, "fuzz": _cmd_fuzz, "export": _cmd_export,
                    "bench": _cmd_bench, "perf": _cmd_perf,
                    "sweep": _cmd_sweep}
        return commands[args.command](args)
    except CTrainError as exc:  # one line, whatever the message's layout
        print("ctrain: error: " + " ".join(line.strip() for line in str(exc).splitlines() if line.strip()),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ctrain: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread():
    import threading
    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
