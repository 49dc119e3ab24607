"""`ctrain` command line: train, verify, fuzz, export, bench, perf, sweep."""
import argparse
import signal
import sys

from . import __version__
from .errors import ConfigError, CTrainError
from .train_options import add_train_parser, option_name, train_config


class _Parser(argparse.ArgumentParser):
    """Usage mistakes as one line `ctrain: error: ...` and exit status 2
    (argparse's default prints the whole usage block first)."""

    def error(self, message):
        print(f"ctrain: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


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
        dense = perfreport.build(compile_model(trainer.model, trainer.cfg.batch_size, board=board), board,
                                 trainer.cfg.model_name())
        print("\n".join(perfreport.compare(rep, dense)))


def _cmd_train(args):
    from .train import train
    cfg = train_config(args)
    try:
        trainer, acc = train(cfg, progress=not args.no_progress, resume=args.resume)
    except ConfigError as exc:
        raise CTrainError(f"{option_name(exc.field)} {exc.detail}") from None
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
    from .boards import BOARDS, DEFAULT_BOARD
    p.add_argument("--board", default=DEFAULT_BOARD, choices=(*BOARDS, "all"),
                   help=f"the board configuration the engine is built for and the cases drawn for: "
                        f"{', '.join(BOARDS)}, or all of them in turn (default {DEFAULT_BOARD})")
    return p


def _cmd_verify(args):
    from .boards import BOARDS
    from .tools.cross_check import format_report, verify
    failed = 0
    for board in (BOARDS if args.board == "all" else (args.board,)):
        report = verify(args.engine, args.cases, args.seed, progress=not args.no_progress, board=board)
        print(format_report(report))
        failed += report["mismatches"] != 0
    return 0 if failed == 0 else 1


def _fuzz_parser(sub):
    from .engine import ENGINES
    from .boards import BOARDS, DEFAULT_BOARD
    from .tools.fuzz import ENGINES as FUZZED, STREAMS
    p = sub.add_parser("fuzz", help="fuzz the instruction decoder with random and mutated streams")
    p.add_argument("--engine", action="append", choices=list(ENGINES),
                   help=f"engine to fuzz (repeat for both; with two, their results are compared; "
                        f"default {', '.join(FUZZED)})")
    p.add_argument("--streams", type=int, default=STREAMS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--board", default=DEFAULT_BOARD, choices=BOARDS,
                   help=f"board configuration the engines emulate ({', '.join(BOARDS)}; default "
                        f"{DEFAULT_BOARD}): its dense tilings and, without the row-tile path, its refusals")
    p.add_argument("--no-progress", action="store_true")
    return p


def _cmd_fuzz(args):
    from .tools.fuzz import clean, format_report, fuzz
    from .tools.fuzz import ENGINES as FUZZED
    report = fuzz(tuple(args.engine or FUZZED), args.streams, args.seed, progress=not args.no_progress,
                  board=args.board)
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
                        "(auto, default; where the sparse unit is the larger array, unpruned layers too, every "
                        "weight kept), always sparse, or never")
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
    add_train_parser(sub)
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
