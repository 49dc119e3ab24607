"""The `ctrain train` options and their TrainConfig: shared by the CLI
(`ctrain train`) and the sweeps (each trial is a `ctrain train` command line),
so neither front end imports the other."""
import argparse
import dataclasses

from . import boards
from .errors import ConfigError, CTrainError


class DefaultsFormatter(argparse.HelpFormatter):
    """Appends '(default: X)' to options that take a value and have one, and
    whose help does not already say it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, argparse.SUPPRESS) and action.nargs != 0 and "default" not in text:
            text += " (default: %(default)s)"
        return text


def add_train_parser(sub):
    """The `train` subcommand on subparsers `sub`; every default from TrainConfig and the registries."""
    from .datasets import DATASETS
    from .engine import ENGINES
    from .model import MODELS
    from .pruning import MODES, SCOPES
    from .train import BASE_DEFAULTS, DEFAULT_MODEL, DEFAULTS, DEVICES, MODEL_DEFAULTS, SCHEDULES, TrainConfig
    from .compiler import SPARSE_EXEC
    from .runtime import LOSS_ROUNDING
    d = TrainConfig()  # the defaults, from the one place that defines them

    def per_dataset(key):
        return ", ".join(f"{v[key]} for {k}" for k, v in DEFAULTS.items())

    def per_model(key):
        return (", ".join(f"{v[key]:g} for {k}" for k, v in MODEL_DEFAULTS.items())
                + f", else {BASE_DEFAULTS[key]:g}")
    p = sub.add_parser("train", help="train a CNN on the (emulated) accelerator",
                       formatter_class=DefaultsFormatter)
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
    p.add_argument("--prune-steps", type=int, default=d.prune_steps, metavar="N",
                   help="1: prune once at --prune-at; N: gradually, in N steps from --prune-from to --prune-at "
                        "(cubic, Zhu and Gupta 2017)")
    p.add_argument("--prune-from", type=float, default=None, metavar="F",
                   help="the first of --prune-steps, as a fraction of the run (default: half of --prune-at)")
    p.add_argument("--lr-restart", action="store_true", default=d.lr_restart,
                   help="restart the cosine learning rate from --lr at the last pruning step, so the pruned "
                        "network recovers at the full rate (learning-rate rewinding, Renda et al. 2020)")
    p.add_argument("--loss-rounding", default=d.loss_rounding, choices=list(LOSS_ROUNDING),
                   help="how the host rounds the loss gradient to 8 bits: to nearest, or stochastically "
                        "(unbiased; drawn from the run's seed and the iteration, so a resume draws the same)")
    p.add_argument("--dense-first", action="store_true", default=d.dense_first,
                   help="never prune the first Conv2d/Linear layer; the others are pruned harder so that "
                        "--prune of all weights still go")
    p.add_argument("--bn-recal", type=int, default=d.bn_recal, metavar="N",
                   help="after pruning, re-estimate the frozen batch norms' statistics on N batches of training "
                        f"images (default {d.bn_recal}; 0: keep the unpruned network's)")
    p.add_argument("--sparse-exec", default=d.sparse_exec, choices=list(SPARSE_EXEC),
                   help="pruned layers: sparse or dense, whichever the cycle model of --board finds cheaper "
                        "(auto; where the sparse unit is the larger array, unpruned layers too, every weight "
                        "kept), always sparse, or never (dense with the mask); all compute the same bits")
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
                   help="board configuration the program is compiled for (its dense tiling, --sparse-exec "
                        "auto), the emulated device emulates (its buffers) and --report models (PE array, "
                        "clock, DDR bandwidth)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def option_name(field):
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
        raise CTrainError(f"{option_name(exc.field)} {exc.detail}") from None
