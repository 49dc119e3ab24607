"""The training loop: float warm-up on the host, then fixed-point training on
the (emulated or real) accelerator, evaluation, checkpoints and resume."""
import math
import os
from array import array
import dataclasses
from dataclasses import asdict, dataclass

import numpy as np
from tqdm.auto import tqdm

from . import boards, checkpoint, hostlib, isa, preprocess
from .datasets import get_dataset
from .compiler import DEFAULT_SPARSE_EXEC, INPUT_EXP, SPARSE_EXEC, compile_model
from .errors import CheckpointError, ConfigError, TrainingDiverged
from .exponents import EXPONENT_LIMIT, WINDOW_LOG2_MAX
from .floatnet import FloatNet
from .model import build_model, stage_labels
from .pruning import MODES as PRUNE_MODES, SCOPES as PRUNE_SCOPES, prune_masks, sparsity_of, spared_rate
from .runtime import LOSS_ROUNDING, Runtime, board_mismatch
from . import torch_import  # noqa: F401  (registers the PyTorch converter; torch itself loads only when used)

DIVERGE_WINDOW = 20
DIVERGE_FACTOR = 4
#: batches of training images that re-estimate the frozen batch norms after
#: pruning (docs/compression.md "Batch norm after pruning"), and the salt that
#: keeps their draw apart from the per-epoch orders (seeded by [seed, epoch])
BN_RECAL_BATCHES = 20
BN_RECAL_SALT = 0xB7

DEFAULT_MODEL = {"digits": "digits-cnn", "mnist": "lenet5", "fashion-mnist": "lenet5", "cifar10": "cnv"}
#: epochs and batch size per dataset when the user gives none
DEFAULTS = {"digits": {"epochs": 30, "batch_size": 16}, "mnist": {"epochs": 8, "batch_size": 64},
            "cifar10": {"epochs": 8, "batch_size": 64, "normalize": True, "augment": "crop=4,flip"}}
#: per model, the peak learning rate and float warm-up (epochs) its default
#: command trains with, measured as docs/models.md "Defaults" shows; a model
#: not listed (a user's own) gets BASE_DEFAULTS
MODEL_DEFAULTS = {
    "digits-cnn": {"lr": 0.05, "warmup_epochs": 1.0},
    "lenet5": {"lr": 0.05, "warmup_epochs": 1.0},
    "lenet5-bn": {"lr": 0.05, "warmup_epochs": 1.0},
    "mlp": {"lr": 0.05, "warmup_epochs": 1.0},
    "cnv": {"lr": 0.05, "warmup_epochs": 1.0},
    "vgg-small": {"lr": 0.02, "warmup_epochs": 1.0},
    "resnet20": {"lr": 0.02, "warmup_epochs": 1.0},
}
BASE_DEFAULTS = {"lr": 0.02, "warmup_epochs": 1.0}
SCHEDULES = ("cosine", "constant")
DEVICES = ("emulated", "board")
MAX_EPOCHS = 100_000
#: gradual pruning's steps at most (each recompiles the program)
MAX_PRUNE_STEPS = 100
#: hyper-parameters become 15-bit mantissas m * 2^-s (docs/numeric.md); the
#: update shifts by s plus exponent differences and the hardware clamps shifts
#: at 62, so rates much below 2^-30 (~1e-9) would silently round to nothing
LR_RANGE = (1e-9, 1024.0)


def _int_rule(lo, hi=None):
    """An int (not a bool, not a float) in [lo, hi]."""
    def check(v):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            return False
        return lo <= v and (hi is None or v <= hi)
    return check, f"an integer in {lo}..{hi}" if hi is not None else f"an integer >= {lo}"


def _real_rule(lo, hi, hi_open=False, lo_open=False):
    """A finite number in the interval (NaN and infinities never are)."""
    def check(v):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            return False
        if not math.isfinite(v):
            return False
        return (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)
    return check, f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


def _choice_rule(choices, optional=False):
    """A name from a registry (looked up when checked, so registrations count)."""
    def check(v):
        return (optional and v is None) or (isinstance(v, str) and v in choices())
    return check, lambda: "one of " + ", ".join(choices()) + (" (or None)" if optional else "")


def _bool_rule():
    return (lambda v: isinstance(v, (bool, np.bool_))), "True or False"


def _path_rule():
    return (lambda v: v is None or (isinstance(v, (str, os.PathLike)) and os.fspath(v) != "")), \
        "None or a non-empty path"


def _model_rule():
    """None, a registered name, or package.module:function (imported when the config is validated)."""
    from .model import MODELS, is_model_spec

    def check(v):
        return v is None or (isinstance(v, str) and (v in MODELS or is_model_spec(v)))
    return check, lambda: "one of " + ", ".join(MODELS) + ", or package.module:function (or None)"


def _engines():
    from .engine import ENGINES
    return ENGINES


#: the range of every TrainConfig field, checked by TrainConfig.validate
RULES = {
    "dataset": ((lambda v: isinstance(v, str) and v != ""), "a dataset name"),
    "data_dir": _path_rule(),
    "model": _model_rule(),
    "epochs": _int_rule(1, MAX_EPOCHS),
    "batch_size": _int_rule(1),
    "lr": _real_rule(*LR_RANGE),
    "momentum": _real_rule(0.0, 1.0, hi_open=True),
    "weight_decay": _real_rule(0.0, 1.0, hi_open=True),
    "schedule": _choice_rule(lambda: SCHEDULES),
    "warmup_epochs": _real_rule(0.0, float(MAX_EPOCHS)),
    "fixed_point": _bool_rule(),
    "window_log2": _int_rule(0, WINDOW_LOG2_MAX),
    "seed": _int_rule(0, 2 ** 32 - 1),
    "engine": _choice_rule(_engines),
    "device": _choice_rule(lambda: DEVICES),
    "train_count": (lambda v: v is None or _int_rule(1)[0](v), "an integer >= 1 (None: all)"),
    "test_count": (lambda v: v is None or _int_rule(1)[0](v), "an integer >= 1 (None: all)"),
    "checkpoint": _path_rule(),
    "checkpoint_every": _int_rule(0),
    "prune": _real_rule(0.0, 1.0, hi_open=True),
    "prune_at": _real_rule(0.0, 1.0, hi_open=True),
    "prune_mode": _choice_rule(lambda: PRUNE_MODES),
    "prune_scope": _choice_rule(lambda: PRUNE_SCOPES),
    "dense_first": _bool_rule(),
    "prune_steps": _int_rule(1, MAX_PRUNE_STEPS),
    "prune_from": (lambda v: v is None or _real_rule(0.0, 1.0, hi_open=True)[0](v), "a number in [0, 1) (or None)"),
    "lr_restart": _bool_rule(),
    "loss_rounding": _choice_rule(lambda: LOSS_ROUNDING),
    "sparse_exec": _choice_rule(lambda: SPARSE_EXEC),
    "board": _choice_rule(lambda: boards.BOARDS),
    "warm_start": _path_rule(),
    "freeze": _int_rule(0),
    "bn_recal": _int_rule(0),
}
#: settings that change what a run computes: a resume must match them all
RESULT_FIELDS = ("dataset", "model", "epochs", "batch_size", "lr", "momentum", "weight_decay", "schedule",
                 "warmup_epochs", "fixed_point", "window_log2", "seed", "train_count", "test_count", "prune",
                 "prune_at", "prune_mode", "prune_scope", "dense_first", "prune_steps", "prune_from", "lr_restart",
                 "loss_rounding", "image_size", "normalize", "augment", "freeze", "bn_recal")
#: result fields added after the first checkpoints: absent means what runs did then
_LATER_FIELDS = {"image_size": None, "normalize": False, "augment": None, "freeze": 0, "bn_recal": 0,
                 "dense_first": False, "prune_steps": 1, "prune_from": None, "lr_restart": False,
                 "loss_rounding": "nearest"}
#: sparse_exec was a bool before the compiler chose per layer: True ran every
#: pruned layer sparse, False dense with the mask
_LEGACY_SPARSE_EXEC = {True: "always", False: "never"}


@dataclass
class TrainConfig:
    """One run's settings. Every field is checked against RULES when the
    config is made (and again by the Trainer), raising ConfigError."""
    dataset: str = "digits"
    data_dir: str = None
    model: str = None
    epochs: int = None
    batch_size: int = None
    lr: float = None               # None: the model's (MODEL_DEFAULTS)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"       # or "constant"
    warmup_epochs: float = None    # float training before fixed point; None: the model's, at most epochs
    fixed_point: bool = True
    window_log2: int = 2
    seed: int = 0
    engine: str = "numpy"
    device: str = "emulated"
    train_count: int = None
    test_count: int = None
    checkpoint: str = None
    checkpoint_every: int = 0      # iterations; 0 = at the end of every epoch only
    prune: float = 0.5             # fraction of weights (or filters) pruned; 0 = no pruning
    prune_at: float = 0.5          # when, as a fraction of all iterations (the poster: half-way)
    prune_mode: str = "element"    # or "filter" (structured: whole output filters)
    prune_scope: str = "global"    # one magnitude threshold across layers, or "layer": the target per layer
    dense_first: bool = False      # never prune the first Conv2d/Linear; the others carry its share (pruning.spared_rate)
    prune_steps: int = 1           # 1: all at prune_at (the poster); N: gradual, N steps ending there (prune_schedule)
    prune_from: float = None       # the first of prune_steps > 1, as a fraction of the run; None: prune_at / 2
    lr_restart: bool = False       # the cosine starts again from lr at the last pruning step (learning_rate)
    loss_rounding: str = "nearest"  # or "stochastic": the int8 loss gradient (runtime.stochastic_quantize)
    sparse_exec: str = DEFAULT_SPARSE_EXEC  # pruned layers sparse or dense (compiler.SPARSE_EXEC); same bits
    board: str = boards.DEFAULT_BOARD  # compiled for (tiling, "auto"), emulated, and modeled by --report
    warm_start: str = None         # float weights (.npz or PyTorch state_dict) to start from (ctrain.weights_in)
    image_size: str = None         # folder data set: resize every image to "HxW" (docs/data.md)
    normalize: bool = None         # per-channel normalisation (preprocess.normalise); None: the data set's
    augment: str = None            # e.g. "crop=4,flip" (preprocess.Augment); None: the data set's; "none": off
    freeze: int = 0                # the first N Conv2d/Linear layers stay fixed (fine-tuning)
    bn_recal: int = BN_RECAL_BATCHES  # batches that re-estimate frozen batch norms after pruning; 0: none

    def __post_init__(self):
        """Options left None take the data set's (DEFAULTS) and the model's
        (MODEL_DEFAULTS) values; the warm-up default never exceeds the epochs."""
        if isinstance(self.dataset, str):
            for key, value in DEFAULTS.get(self.dataset, DEFAULTS["mnist"]).items():
                if getattr(self, key) is None:
                    setattr(self, key, value)
        if self.normalize is None:
            self.normalize = False
        if self.augment == "none":
            self.augment = None
        if RULES["model"][0](self.model):
            model_defaults = MODEL_DEFAULTS.get(self.model_name(), BASE_DEFAULTS)
            if self.lr is None:
                self.lr = model_defaults["lr"]
            if self.warmup_epochs is None:
                self.warmup_epochs = model_defaults["warmup_epochs"]
                if RULES["epochs"][0](self.epochs):
                    self.warmup_epochs = float(min(self.warmup_epochs, self.epochs))
        self.validate()

    def validate(self):
        """Every field in its range, and the fields consistent with each other."""
        for name, (check, rule) in RULES.items():
            value = getattr(self, name)
            if not check(value):
                raise ConfigError(name, f"{value!r} is out of range: must be {rule() if callable(rule) else rule}")
        if self.warmup_epochs > self.epochs:
            raise ConfigError("warmup_epochs", f"{self.warmup_epochs:g} epochs of float warm-up exceed the "
                                               f"{self.epochs} epochs of the run: must be in [0, {self.epochs}]")
        if self.fixed_point and self.batch_size > isa.LIMITS["BATCH"]:
            raise ConfigError("batch_size", f"{self.batch_size} is beyond the accelerator's 1..{isa.LIMITS['BATCH']}"
                                            " (or train in float32)")
        self._check_schedule()
        if self.checkpoint_every and not self.checkpoint:
            raise ConfigError("checkpoint_every", f"{self.checkpoint_every} needs a checkpoint path to write to")
        if self.model is not None and self.model not in _registered():
            from .errors import MappingError
            from .model import resolve_factory
            try:
                resolve_factory(self.model)
            except MappingError as exc:
                msg = str(exc)
                raise ConfigError("model", msg[len("model "):] if msg.startswith("model ") else msg) from None
        return self

    def _check_schedule(self):
        """The pruning, learning-rate and rounding options against the rest."""
        if self.prune_steps > 1 and self.prune_from is not None and self.prune_from >= self.prune_at:
            raise ConfigError("prune_from", f"{self.prune_from:g} is not before prune_at {self.prune_at:g}: gradual "
                                            "pruning starts before it ends")
        if self.lr_restart and (self.prune <= 0 or self.schedule != "cosine"):
            raise ConfigError("lr_restart", "restarts the cosine schedule at the last pruning step: it needs "
                                            f"prune > 0 and schedule cosine (have prune {self.prune:g}, "
                                            f"schedule {self.schedule})")
        if self.loss_rounding != "nearest" and not self.fixed_point:
            raise ConfigError("loss_rounding", f"{self.loss_rounding} rounds the 8-bit loss gradient: the run has "
                                               "no fixed point (--float)")

    def model_name(self):
        return self.model or DEFAULT_MODEL.get(self.dataset, "lenet5")


def _registered():
    from .model import MODELS
    return MODELS


def prune_schedule(cfg, total):
    """(iteration, fraction pruned) of each pruning step of a `total`-iteration
    run: one at prune_at (the poster's), or prune_steps evenly spaced from
    prune_from (default prune_at / 2) to prune_at, the fraction rising as
    prune (1 - (1 - k/N)^3), k = 1..N (gradual magnitude pruning, Zhu and
    Gupta, "To prune, or not to prune", 2017): big steps while the network
    is plastic, small ones near the end, the whole target by prune_at."""
    if cfg.prune <= 0:
        return []
    n, end = cfg.prune_steps, cfg.prune_at
    if n == 1:
        return [(round(end * total), cfg.prune)]
    start = end / 2 if cfg.prune_from is None else cfg.prune_from
    return [(round((start + (end - start) * k / (n - 1)) * total), cfg.prune * (1.0 - (1.0 - (k + 1) / n) ** 3))
            for k in range(n)]


def learning_rate(cfg, it, total):
    """The rate of iteration `it`. With lr_restart the cosine starts again
    from lr at the last pruning step and anneals over the rest of the run
    (learning-rate rewinding, Renda et al., ICLR 2020): the pruned network
    recovers at the full rate instead of in the schedule's tail."""
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.lr_restart and cfg.prune > 0:
        last = prune_schedule(cfg, total)[-1][0]
        if it >= last:
            it, total = it - last, total - last
    if cfg.schedule == "cosine":
        return 0.5 * cfg.lr * (1.0 + math.cos(math.pi * it / max(total, 1)))
    raise ValueError(f"unknown schedule {cfg.schedule!r}; choose cosine or constant")


def make_device(cfg):
    if cfg.device == "emulated":
        from .device.emulated import EmulatedDevice
        return EmulatedDevice(engine=cfg.engine, board=cfg.board)   # the board compiled for
    if cfg.device == "board":
        from .device.board import BoardDevice
        return BoardDevice()
    raise ValueError(f"unknown device {cfg.device!r}; choose emulated or board")


_PHASES = ("FP", "EB", "WG", "UPDATE")


def format_saturation(sat):
    """'L0 FP 0.00% WG 0.00% UPDATE 0.00% | L1 ...' from saturation_by_layer()."""
    layers = sorted({k.split()[0] for k in sat}, key=lambda n: int(n[1:]))
    return " | ".join(
        f"{L} " + " ".join(f"{ph} {100 * sat[f'{L} {ph}']:.2f}%" for ph in _PHASES if f"{L} {ph}" in sat)
        for L in layers)


def accuracy(logits, labels):
    return float(np.mean(np.argmax(logits, axis=1) == labels)) if len(labels) else 0.0


class History:
    """Per-iteration loss, batch accuracy and phase in flat arrays (9 bytes an
    iteration, so a 20,000-iteration run stays flat in memory), and one record
    per epoch (test accuracy, saturation, exponent table)."""

    def __init__(self):
        self.loss, self.acc, self.fixed = array("f"), array("f"), bytearray()
        self.epochs = []
        self.pruning = []

    def add(self, loss, acc, fixed):
        self.loss.append(loss)
        self.acc.append(acc)
        self.fixed.append(bool(fixed))

    def __len__(self):
        return len(self.loss)

    def state(self):
        return {"loss": self.loss.tolist(), "acc": self.acc.tolist(), "fixed": list(self.fixed),
                "epochs": self.epochs, "pruning": self.pruning}

    @classmethod
    def from_state(cls, state):
        h = cls()
        h.loss.extend(state.get("loss", []))
        h.acc.extend(state.get("acc", []))
        h.fixed.extend(int(v) for v in state.get("fixed", []))
        h.epochs = list(state.get("epochs", []))
        h.pruning = list(state.get("pruning", []))
        return h


def _is_int(v, lo=0, hi=None):
    """A checkpoint integer: a true int (no bool, no float) within lo..hi."""
    return type(v) is int and lo <= v and (hi is None or v <= hi)


def _is_top(v):
    """A saved magnitude: None (not seen yet) or an int within the exponent range."""
    return v is None or _is_int(v, -(1 << 16), 1 << 16)


def _tops_ok(v, size, n_out):
    """The window of observed magnitudes: up to `size` [activation, error]
    pairs, each a list of n_out magnitudes."""
    return isinstance(v, list) and len(v) <= size and all(
        isinstance(t, list) and len(t) == 2 and all(
            isinstance(part, list) and len(part) == n_out and all(_is_top(x) for x in part)
            for part in t) for t in v)


def _exponents_ok(v, size):
    """The runtime's exponent windows: slot (a digit string) -> up to `size` magnitudes, none missing."""
    return isinstance(v, dict) and all(
        k.isdigit() and isinstance(w, list) and len(w) <= size and all(_is_top(x) and x is not None for x in w)
        for k, w in v.items())


def _history_lists_ok(h, it):
    """The per-iteration loss/acc/fixed lists: equal lengths, at most one entry per iteration done."""
    n = len(h["loss"]) if isinstance(h["loss"], list) else -1
    return (0 <= n <= it and all(isinstance(h[k], list) and len(h[k]) == n for k in ("acc", "fixed"))
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in h["loss"] + h["acc"])
            and all(x in (0, 1) for x in h["fixed"]))


def _history_records_ok(h, it, epochs):
    """The epoch and pruning records: dicts whose epoch and iteration fit the run so far."""
    return (isinstance(h["epochs"], list) and isinstance(h["pruning"], list)
            and all(isinstance(e, dict) and _is_int(e.get("epoch"), 0, epochs)
                    and _is_int(e.get("it"), 0, it) for e in h["epochs"])
            and all(isinstance(r, dict) and _is_int(r.get("it"), 0, it) for r in h["pruning"]))


def _history_ok(h, it, epochs):
    """A saved History at iteration `it` of a run of `epochs` epochs."""
    if not isinstance(h, dict) or not {"loss", "acc", "fixed", "epochs", "pruning"} <= set(h):
        return False
    return _history_lists_ok(h, it) and _history_records_ok(h, it, epochs)


def _layer_forms(program):
    """Each param layer's form in `program` (compiler.choose_execution), s
    sparse or d dense: on a board without the row-tile path even
    sparse_exec `always` leaves some layers dense."""
    return "".join("s" if L.sparse else "d" for L in program.layers)


class Trainer:
    """Holds one training run's state so it can be checkpointed and resumed."""

    def __init__(self, cfg, dataset=None, device=None, model=None):
        """Everything that can be checked is checked here, before any training:
        the settings, the data, the model's mapping onto the accelerator, the
        checkpoint path and the device. `model` (a ctrain model, or a
        torch.nn.Module converted by ctrain.torch_import) replaces the one
        cfg.model names; cfg.model then only labels the run."""
        self.cfg = cfg.validate()
        self.augment = preprocess.Augment(cfg.augment, cfg.seed) if cfg.augment else None
        self.ds = dataset or get_dataset(cfg.dataset, cfg.data_dir, train_count=cfg.train_count,
                                              test_count=cfg.test_count, image_size=cfg.image_size)
        self.norm = None  # normalisation statistics, saved with checkpoints for inference
        if cfg.normalize:
            self.ds, self.norm = preprocess.normalise(self.ds)
        self._build_net(model)
        self._plan_iterations()
        self._check_programs()
        if cfg.checkpoint:
            checkpoint.check_target(cfg.checkpoint)
        self.xq_train = hostlib.quantize(self.ds.train_x, INPUT_EXP)[0]
        self.xq_test = hostlib.quantize(self.ds.test_x, INPUT_EXP)[0]
        # made now, so a missing board or overlay is reported before any training
        self._device = device or (make_device(cfg) if cfg.fixed_point else None)
        mismatch = board_mismatch(cfg.board, self._device)   # Runtime checks it too, after the warm-up
        if mismatch:
            raise ConfigError("board", f"{mismatch}: give the device board={cfg.board!r} or the config "
                                       f"board={self._device.board!r}")
        self.runtime = None
        self.it = 0
        self.history = History()
        self._tops = []
        self._order = None
        self._recent = []
        self.masks = None
        self.messages = []  # notable events (pruning) for the log
        # batch norm statistics freeze where fixed point starts (in a float run too, for comparison)
        self.bn_freeze_it = round(cfg.warmup_epochs * self.iters_per_epoch)

    def _build_net(self, model):
        """The model (cfg.model's, or `model` converted) and its float network
        with initial weights: a converted model's own, then a warm start's."""
        cfg = self.cfg
        self.model = (build_model(cfg.model_name(), self.ds.input_shape, self.ds.num_classes) if model is None
                      else _given_model(model, self.ds))
        n_param = len(self.model.param_stages)
        if cfg.freeze >= n_param:
            raise ConfigError("freeze", f"{cfg.freeze} would freeze all {n_param} Conv2d/Linear layers of "
                                        f"{cfg.model_name()}: must be in 0..{n_param - 1}")
        self.rng = np.random.default_rng(cfg.seed)
        self.net = FloatNet(self.model, self.model.init_params(self.rng), freeze=cfg.freeze)
        if self.model.initial_state is not None:  # a converted model's own weights
            params, bn = self.model.initial_state
            self.net.load_state(params, bn)
        if cfg.warm_start:  # load_float_params call site: the file's weights replace the initial ones
            from .weights_in import warm_start
            warm_start(self.net, cfg.warm_start)

    def _plan_iterations(self):
        """Iterations per epoch and in all, where fixed point starts and where
        pruning happens; refuses a batch larger than the data, an empty test
        set and pruning after the last iteration."""
        cfg = self.cfg
        n_train = len(self.ds.train_y)
        self.iters_per_epoch = n_train // cfg.batch_size
        if self.iters_per_epoch < 1:
            raise ConfigError("batch_size", f"{cfg.batch_size} exceeds the {n_train} training images: "
                                            f"must be in 1..{n_train}")
        if len(self.ds.test_y) < 1:
            raise ConfigError("test_count", "no held-out images to evaluate on: need at least 1")
        self.total = cfg.epochs * self.iters_per_epoch
        self.warm = round(cfg.warmup_epochs * self.iters_per_epoch) if cfg.fixed_point else self.total
        self.prune_schedule = prune_schedule(cfg, self.total)
        self.prune_it = self.prune_schedule[0][0] if self.prune_schedule else None   # the first step
        its = [it for it, _ in self.prune_schedule]
        if its and its[-1] >= self.total:
            raise ConfigError("prune_at", f"{cfg.prune_at:g} of a {self.total}-iteration run rounds to iteration "
                                          f"{its[-1]}, after the last: must be below "
                                          f"{(self.total - 0.5) / self.total:.4g}")
        if len(set(its)) < len(its):
            raise ConfigError("prune_steps", f"{cfg.prune_steps} steps from iteration {its[0]} to {its[-1]} of a "
                                             f"{self.total}-iteration run share iterations: fewer steps, an earlier "
                                             "prune_from or a longer run")
        if self.prune_it is not None and self.spared > cfg.freeze:
            try:
                spared_rate([p["w"] for p in self.net.params[cfg.freeze:]], cfg.prune, self.spared - cfg.freeze,
                            cfg.prune_mode)
            except ValueError as exc:
                raise ConfigError("dense_first", str(exc)) from None

    def _check_programs(self):
        """Compiles, before any training, the programs a fixed-point phase will
        run (dense, and sparse with every weight kept), so a model the
        accelerator cannot map is refused now."""
        cfg = self.cfg
        if cfg.fixed_point and self.warm < self.total:
            compile_model(self.model, cfg.batch_size, freeze=cfg.freeze)
            if self.prune_it is not None and cfg.sparse_exec != "never":
                compile_model(self.model, cfg.batch_size, self._compiled_masks(
                    [np.ones(p["w"].shape, bool) for p in self.net.params]), freeze=cfg.freeze,
                    sparse_exec=cfg.sparse_exec, board=cfg.board)

    # -- phases ---------------------------------------------------------------
    @property
    def fixed(self):
        return self.runtime is not None

    @property
    def spared(self):
        """Leading Conv2d/Linear layers never pruned: the frozen ones, or the
        first with cfg.dense_first."""
        return max(self.cfg.freeze, int(self.cfg.dense_first))

    def _compiled_masks(self, masks):
        """The masks the program is compiled with: frozen and spared layers are never pruned and stay dense."""
        return [None if j < self.spared else m for j, m in enumerate(masks)]

    def _compile(self, execution=None):
        """The program for the current masks; each pruned layer's form chosen
        by cfg.sparse_exec for cfg.board, or as `execution` (a checkpoint's
        per-layer choice) says."""
        masks = self._compiled_masks(self.masks) if self.masks else None
        return compile_model(self.model, self.cfg.batch_size, masks, freeze=self.cfg.freeze,
                             sparse_exec=self.cfg.sparse_exec if execution is None else execution,
                             board=self.cfg.board)

    def _runtime(self, program, device):
        """A Runtime of `program` with the run's fixed-point settings."""
        cfg = self.cfg
        return Runtime(program, device, window_log2=cfg.window_log2, loss_rounding=cfg.loss_rounding, seed=cfg.seed)

    def _switch(self, execution=None):
        program = self._compile(execution)
        device = self._device
        self.runtime = rt = self._runtime(program, device)
        if not self._tops:  # no warm-up: calibrate ranges on one batch without a step
            idx = np.arange(self.cfg.batch_size)
            self._tops.append(self.net.calibrate(self.ds.train_x[idx], self.ds.train_y[idx]))
        self.net.bn_frozen = True
        rt.load_float(self.net.params, [t[0] for t in self._tops], [t[1] for t in self._tops], self.masks,
                      [self.net.bn_affine(k) for k in range(len(self.net.bn))])

    def prune(self, target=None):
        """Prune to `target` (default cfg.prune) of the weights by L2 norm; in
        fixed point the program is recompiled with the pruned layers sparse
        and the state moves over."""
        cfg = self.cfg
        target = cfg.prune if target is None else target
        params = self.runtime.float_params() if self.fixed else self.net.params
        old = self.runtime.masks() if self.fixed else self.masks
        n = cfg.freeze  # frozen layers keep every weight: the target is of the trained layers
        trained = prune_masks([p["w"] for p in params[n:]], target, cfg.prune_mode, cfg.prune_scope,
                              old[n:] if old else None, spare=self.spared - n)
        self.masks = [np.ones(p["w"].shape, bool) for p in params[:n]] + trained
        self.net.prune(self.masks)
        recal = cfg.bn_recal > 0 and len(self.net.bn) > 0 and self.it >= self.bn_freeze_it
        if self.fixed:
            before = sum(u for _, u, _ in self.runtime.memory_report())
            rt = self._runtime(self._compile(), self.runtime.device)
            rt.adopt(self.runtime, self.masks)
            self.runtime.close()
            self.runtime = rt
            after = sum(u for _, u, _ in rt.memory_report())
            if recal:  # on the device's own (master) weights, pruned; the float net's are the switch's
                pruned = [{"w": p["w"] * m, "b": p["b"]} for p, m in zip(params, self.masks)]
                shadow = FloatNet(self.model, pruned, freeze=cfg.freeze)
                shadow.bn = self.net.bn
                shadow.recalibrate_bn(self._recal_batches())
                rt.load_bn([self.net.bn_affine(k) for k in range(len(self.net.bn))])
        elif recal:
            self.net.recalibrate_bn(self._recal_batches())
        per, total = sparsity_of(self.masks)
        record = {"it": self.it, "sparsity": per, "total": total}
        msg = (f"pruned {100 * total:.1f}% of weights ({cfg.prune_mode}, per {cfg.prune_scope}) at iteration "
               f"{self.it}: layers " + " ".join(f"{100 * s:.0f}%" for s in per))
        if recal:
            msg += f"; batch norms re-estimated on {len(self._recal_indices())} images"
        if self.fixed:
            record["ddr_bytes"] = (before, after)
            msg += f"; layer state in DDR {before / 1024:.1f} KiB -> {after / 1024:.1f} KiB"
            msg += "; layers run " + _layer_forms(self.runtime.program)
        self.history.pruning.append(record)
        return msg

    def _recal_indices(self):
        """The training images (un-augmented) that re-estimate the batch norms
        after pruning: cfg.bn_recal batches drawn by the seed alone, so a
        resumed run draws the same ones and a class-sorted data set (an image
        folder) is not read one class at a time."""
        n = len(self.ds.train_y)
        count = min(self.cfg.bn_recal * self.cfg.batch_size, n)
        return np.random.default_rng([self.cfg.seed, BN_RECAL_SALT]).permutation(n)[:count]

    def _recal_batches(self):
        idx, b = self._recal_indices(), self.cfg.batch_size
        return (self.ds.train_x[np.sort(idx[i:i + b])] for i in range(0, len(idx), b))

    def step(self, idx):
        cfg = self.cfg
        done = len(self.history.pruning)   # steps taken (a resumed run's history counts them)
        if done < len(self.prune_schedule) and self.it == self.prune_schedule[done][0]:
            self.messages.append(self.prune(self.prune_schedule[done][1]))
        lr = learning_rate(cfg, self.it, self.total)
        y = self.ds.train_y[idx]
        if self.it < self.warm:
            self.net.bn_frozen = self.it >= self.bn_freeze_it
            try:
                loss, logits = self.net.train_batch(self._inputs(self.ds.train_x, idx), y, lr, cfg.momentum,
                                                    cfg.weight_decay)
            except FloatingPointError as exc:
                raise TrainingDiverged(f"float phase, iteration {self.it}: {exc}; stopped instead of "
                                       f"training on garbage (try a learning rate below {cfg.lr})") from None
            self._tops.append(self.net.tensor_tops())
            del self._tops[:-(1 << cfg.window_log2)]
        else:
            if not self.fixed:
                self._switch()
            self.runtime.set_hyper(lr, cfg.momentum, cfg.weight_decay)
            loss, logits = self.runtime.train_step(self._inputs(self.xq_train, idx), y)
        self._check_divergence(loss)
        self.it += 1
        return loss, accuracy(logits, y)

    def _inputs(self, images, idx):
        """The batch `idx` of `images` (float or quantized), augmented when configured:
        the draws depend on (seed, iteration) only, so resume stays bit-identical."""
        return self.augment(images[idx], self.it) if self.augment else images[idx]

    def _check_divergence(self, loss):
        """Stop on a non-finite loss, or when the last DIVERGE_WINDOW losses average
        DIVERGE_FACTOR times what guessing uniformly would cost."""
        phase = "fixed-point" if self.fixed else "float"
        if not math.isfinite(loss):
            raise TrainingDiverged(f"{phase} phase, iteration {self.it}: loss is {loss}; stopped instead of "
                                   f"training on garbage (try a learning rate below {self.cfg.lr})")
        self._recent.append(float(loss))
        del self._recent[:-DIVERGE_WINDOW]
        chance = math.log(self.ds.num_classes)
        limit = DIVERGE_FACTOR * chance
        # the mean is at most the largest loss: below the limit (with margin for
        # the mean's rounding) the check cannot fire, and numpy's mean is skipped
        if (len(self._recent) == DIVERGE_WINDOW and max(self._recent) >= limit * (1 - 1e-9)
                and np.mean(self._recent) > limit):
            raise TrainingDiverged(
                f"{phase} phase, iteration {self.it}: the loss averaged {np.mean(self._recent):.3g} over the last "
                f"{DIVERGE_WINDOW} iterations, {DIVERGE_FACTOR}x worse than chance ({chance:.2f}): training "
                f"diverged (try a learning rate below {self.cfg.lr})")

    def saturation_by_layer(self):
        """Fraction of int8/int32 stores that saturated since the last call,
        per layer and phase, e.g. {'L0 FP': 0.001, 'L0 WG': 0.0, ...}."""
        out = {}
        for stage, op, rate in self.runtime.saturation_report():
            st = self.model.stages[stage]
            if st.kind != "param":
                continue
            key = f"{stage_labels(self.model)[stage]} {op[3:].split('CONV_')[-1]}"  # OP_SCONV_FP -> FP
            out[key] = max(out.get(key, 0.0), float(rate))
        return out

    def batch_indices(self):
        """The images of iteration `it`: a permutation per epoch seeded by (seed, epoch),
        so a resumed run sees the same batches as an uninterrupted one."""
        epoch, pos = divmod(self.it, self.iters_per_epoch)
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng([self.cfg.seed, epoch]).permutation(len(self.ds.train_y)))
        b = self.cfg.batch_size
        return self._order[1][pos * b:(pos + 1) * b]

    def evaluate(self, split="test"):
        x, xq, y = ((self.ds.test_x, self.xq_test, self.ds.test_y) if split == "test"
                    else (self.ds.train_x, self.xq_train, self.ds.train_y))
        logits = self.runtime.predict_logits(xq) if self.fixed else self.net.predict(x)
        return accuracy(logits, y)

    def run(self, progress=True, verbose=True):
        """Train to the end; `progress` shows the bar, `verbose` the per-epoch lines."""
        cfg = self.cfg
        say = tqdm.write if verbose else (lambda *_: None)
        bar = tqdm(total=self.total, initial=self.it, disable=not progress, unit="it",
                   desc=f"{cfg.model_name()} on {cfg.dataset}")
        try:
            while self.it < self.total:
                loss, acc = self.step(self.batch_indices())
                while self.messages:
                    say(self.messages.pop(0))
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", phase="fixed" if self.fixed else "float")
                self.history.add(loss, acc, self.fixed)
                if self.it % self.iters_per_epoch == 0:
                    test_acc = self.evaluate("test")
                    record = {"epoch": self.it // self.iters_per_epoch, "it": self.it, "loss": loss,
                              "test_acc": test_acc, "fixed": self.fixed}
                    say(f"epoch {record['epoch']}/{cfg.epochs}: loss {loss:.4f} "
                              f"test accuracy {100 * test_acc:.2f}% ({'fixed point' if self.fixed else 'float'})")
                    if self.fixed:
                        record["saturation"] = sat = self.saturation_by_layer()
                        record["exponents"] = {name: int(self.runtime.table[slot])
                                               for name, slot in self.runtime.program.slot_names.items()
                                               if not name.startswith("par")}
                        say("  saturated stores: " + format_saturation(sat))
                    self.history.epochs.append(record)
                    if cfg.checkpoint:
                        self.save(cfg.checkpoint)
                elif cfg.checkpoint and cfg.checkpoint_every and self.it % cfg.checkpoint_every == 0:
                    self.save(cfg.checkpoint)
        finally:
            bar.close()
        last = self.history.epochs[-1] if self.history.epochs else None
        return last["test_acc"] if last and last["it"] == self.it else self.evaluate("test")

    # -- checkpoints -----------------------------------------------------------
    def save(self, path):
        arrays = {}
        for j, (p, v) in enumerate(zip(self.net.params, self.net.velocity)):
            for k in ("w", "b"):
                if p[k] is not None:
                    arrays[f"float_{k}{j}"] = p[k]
                    arrays[f"float_v{k}{j}"] = v[k]
        for j, m in enumerate(self.masks or []):
            arrays[f"mask{j}"] = m.astype(np.uint8)
        for k, (b, v) in enumerate(zip(self.net.bn, self.net.bn_velocity)):
            arrays.update({f"float_bn_{key}{k}": val for key, val in b.items()})
            arrays.update({f"float_bn_v{key}{k}": val for key, val in v.items()})
        meta = {"config": asdict(self.cfg), "it": self.it, "fixed": self.fixed,
                "tops": [[list(a), list(e)] for a, e in self._tops], "history": self.history.state(),
                "images": [len(self.ds.train_y), len(self.ds.test_y)],
                "data": {"class_names": list(self.ds.class_names or []), "input_shape": list(self.ds.input_shape),
                         "normalize": self.norm}}
        if self.fixed:
            arrays.update({f"ddr_{k}": v for k, v in self.runtime.layer_arrays().items()})
            meta["exponents"] = {str(k): v for k, v in self.runtime.exps.state().items()}
            meta["runtime_it"] = self.runtime.iteration
            # the layout of the ddr_ arrays: per layer sparse (true: pruned, or unpruned with every weight
            # kept), dense with a mask (false), dense unpruned (null)
            meta["execution"] = [L.sparse if L.mask is not None else None for L in self.runtime.program.layers]
        checkpoint.save(path, arrays, meta)

    @classmethod
    def from_checkpoint(cls, path, dataset=None, device=None, settings=None):
        """The run a training checkpoint holds, at its iteration: its saved
        settings with `settings` (TrainConfig fields) replacing some, e.g.
        {"device": "emulated"}, and no warm start (the checkpoint's weights
        replace it); then load(path)."""
        _, meta = checkpoint.load(path)
        saved = meta.get("config")
        if not isinstance(saved, dict):
            raise CheckpointError(f"{path}: not a training checkpoint (no run configuration); "
                                  "a model file is already exported")
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        kept = {**_LATER_FIELDS, **{k: v for k, v in saved.items() if k in fields}}
        if type(kept.get("sparse_exec")) is bool:
            kept["sparse_exec"] = _LEGACY_SPARSE_EXEC[kept["sparse_exec"]]
        kept.update(warm_start=None, **(settings or {}))
        try:
            cfg = TrainConfig(**kept)
        except (ConfigError, TypeError) as exc:
            raise CheckpointError(f"{path}: invalid run settings in the checkpoint: {exc}") from None
        trainer = cls(cfg, dataset=dataset, device=device)
        trainer.load(path)
        return trainer

    def load(self, path):
        """Continue from a checkpoint of the same run. The whole checkpoint is
        checked against this model and configuration (settings, metadata
        schema and ranges, every array's presence, shape, dtype and values)
        before the state is used; any mismatch is a CheckpointError."""
        arrays, meta = checkpoint.load(path)
        self._check_settings(path, meta)
        it, fixed = self._check_meta(path, meta)
        masks = self._check_float_arrays(path, arrays, it)
        for j, (p, v) in enumerate(zip(self.net.params, self.net.velocity)):
            for k in ("w", "b"):
                if p[k] is not None:
                    p[k][...] = arrays[f"float_{k}{j}"]
                    v[k][...] = arrays[f"float_v{k}{j}"]
        for k, (b, v) in enumerate(zip(self.net.bn, self.net.bn_velocity)):
            for key in b:
                b[key][...] = arrays[f"float_bn_{key}{k}"]
            for key in v:
                v[key][...] = arrays[f"float_bn_v{key}{k}"]
        if masks is not None:
            self.masks = masks
            self.net.masks = self.masks
        self.it = it
        self._tops = [tuple(t) for t in meta["tops"]]
        self.history = History.from_state(meta["history"])
        if fixed:
            self._switch(self._saved_execution(path, meta, masks))
            self._check_device_arrays(path, arrays, meta)
            self.runtime.load_layer_arrays({k[4:]: v for k, v in arrays.items() if k.startswith("ddr_")})
            if masks is not None and not all(np.array_equal(a, b) for a, b in zip(self.runtime.masks(), masks)):
                raise CheckpointError(f"{path}: the device's masks differ from the pruning masks")
            self.runtime.exps.load_state({int(k): v for k, v in meta["exponents"].items()})
            self.runtime.iteration = meta["runtime_it"]

    def _check_settings(self, path, meta):
        """The checkpoint's run settings equal this run's in everything that
        changes the result; all differences are named at once."""
        saved = checkpoint.expect_meta(path, meta, "config", lambda v: isinstance(v, dict),
                                       "the run's settings (a JSON object)")
        diffs = []
        for key in RESULT_FIELDS:
            mine = getattr(self.cfg, key)
            theirs = saved.get(key, _LATER_FIELDS.get(key, "(missing)"))
            if key == "model":  # the model that ran, not whether it was named
                mine = self.cfg.model_name()
                theirs = theirs or DEFAULT_MODEL.get(saved.get("dataset"), "lenet5")
            if key in ("train_count", "test_count") and "images" in meta:
                mine = len(self.ds.train_y if key == "train_count" else self.ds.test_y)
                theirs = meta["images"][0 if key == "train_count" else 1]
            if mine != theirs or type(mine) is bool and type(theirs) is not bool:
                diffs.append(f"{key} {theirs!r} (this run: {mine!r})")
        if diffs:
            raise CheckpointError(f"{path}: checkpoint was made with different settings: " + ", ".join(diffs))

    def _check_meta(self, path, meta):
        """Schema and ranges of the metadata; returns (it, fixed)."""
        it = checkpoint.expect_meta(path, meta, "it", lambda v: _is_int(v, 0, self.total),
                                    f"an iteration in 0..{self.total}")
        fixed = checkpoint.expect_meta(path, meta, "fixed", lambda v: v is (it > self.warm),
                                       f"{it > self.warm} (iteration {it}, fixed point from {self.warm})")
        n_out = len(self.model.stages) + 1
        checkpoint.expect_meta(path, meta, "tops",
                               lambda v: _tops_ok(v, max(1, 1 << self.cfg.window_log2), n_out),
                               f"up to 2^window_log2 pairs of {n_out} activation and error magnitudes")
        if "images" in meta:
            checkpoint.expect_meta(path, meta, "images",
                                   lambda v: isinstance(v, list) and len(v) == 2 and all(_is_int(x) for x in v),
                                   "[training images, test images]")
        checkpoint.expect_meta(path, meta, "history", lambda h: _history_ok(h, it, self.cfg.epochs),
                               "per-iteration loss/acc/fixed lists (at most one per iteration done) and "
                               "epoch and pruning records")
        if fixed:
            size = 1 << self.cfg.window_log2
            checkpoint.expect_meta(path, meta, "exponents", lambda v: _exponents_ok(v, size),
                                   f"slot -> list of up to {size} magnitudes")
            checkpoint.expect_meta(path, meta, "runtime_it", lambda v: _is_int(v, 0, it),
                                   f"an iteration count in 0..{it}")
        return it, fixed

    def _check_float_arrays(self, path, arrays, it):
        """The float weights, momenta, batch norms and masks; returns the masks (or None)."""
        def finite(a):
            return bool(np.isfinite(a).all())
        for j, (p, v) in enumerate(zip(self.net.params, self.net.velocity)):
            for k in ("w", "b"):
                if p[k] is not None:
                    for name, ref in ((f"float_{k}{j}", p[k]), (f"float_v{k}{j}", v[k])):
                        checkpoint.expect_array(path, arrays, name, ref.shape, ref.dtype, f"layer {j}",
                                                finite, "finite numbers")
        for k, (b, v) in enumerate(zip(self.net.bn, self.net.bn_velocity)):
            for prefix, group in (("float_bn_", b), ("float_bn_v", v)):
                for key, ref in group.items():
                    checkpoint.expect_array(path, arrays, f"{prefix}{key}{k}", ref.shape, ref.dtype,
                                            f"batch norm {k}", finite, "finite numbers")
        pruned = self.prune_it is not None and it > self.prune_it
        if not pruned:
            stray = sorted(n for n in arrays if n.startswith("mask"))
            if stray:
                raise CheckpointError(f"{path}: has pruning masks ({', '.join(stray)}) but this run prunes "
                                      f"{'never' if self.prune_it is None else f'at iteration {self.prune_it}'}"
                                      f" and the checkpoint is at iteration {it}")
            return None
        masks = []
        for j, p in enumerate(self.net.params):
            m = checkpoint.expect_array(path, arrays, f"mask{j}", p["w"].shape, np.uint8, f"pruning mask of layer {j}",
                                        lambda a: bool(((a == 0) | (a == 1)).all() and a.any()),
                                        "0 (pruned) or 1 (kept), at least one kept")
            masks.append(m.astype(bool))
        return masks

    def _saved_execution(self, path, meta, masks):
        """Each pruned layer's form in the checkpoint's device state (its
        "execution", or for a checkpoint from before the per-layer choice its
        boolean sparse_exec), so its ddr_ arrays load into the same layout."""
        n = len(self.model.param_stages)
        pruned = [m is not None for m in (self._compiled_masks(masks) if masks is not None else [None] * n)]
        if "execution" not in meta:
            mode = meta["config"].get("sparse_exec", True)
            return [_LEGACY_SPARSE_EXEC.get(mode, mode) != "never" if p else None for p in pruned] \
                if type(mode) is bool else None
        return checkpoint.expect_meta(
            path, meta, "execution",
            lambda v: isinstance(v, list) and len(v) == n and all(
                (e is None or e is True) if not p else type(e) is bool for e, p in zip(v, pruned)),
            f"per Conv2d/Linear layer true/false when pruned, null (dense) or true (sparse, every weight "
            f"kept) when not ({n} layers)")

    def _check_device_arrays(self, path, arrays, meta):
        """Every DDR state region the compiled program has, and no other; its
        exponent table in range; masks 0/1; exponent slots within the table."""
        rt = self.runtime
        regions = rt._state_regions() + ["table"]
        extra = sorted(k for k in arrays if k.startswith("ddr_") and k[4:] not in regions)
        if extra:
            raise CheckpointError(f"{path}: arrays {', '.join(extra)} are not state of this program")
        par = range(rt.program.par_slot, rt.program.par_slot + isa.PAR["COUNT"])
        table_ok = np.ones(rt.program.table_len, bool)
        table_ok[list(par)] = False

        def table_in_range(a):
            a = a.astype(np.int64)
            return bool((np.abs(a[table_ok]) <= EXPONENT_LIMIT).all() and (np.abs(a[~table_ok]) < 1 << 16).all())
        for name in regions:
            view = rt.views[name]
            check, rule = None, ""
            if name == "table":
                check, rule = table_in_range, f"exponents within +-{EXPONENT_LIMIT}"
            elif name.startswith("mask"):
                check, rule = (lambda a: bool(((a == 0) | (a == 1)).all())), "0 or 1"
            checkpoint.expect_array(path, arrays, "ddr_" + name, view.shape, view.dtype, "device state", check, rule)
        bad = [k for k in meta["exponents"] if int(k) >= rt.program.table_len]
        if bad:
            raise CheckpointError(f"{path}: exponent windows for slots {', '.join(bad)} beyond the "
                                  f"{rt.program.table_len}-slot table")


def _given_model(model, ds):
    """A model handed to the Trainer: a ctrain model for this data, or a torch.nn.Module to convert."""
    from .model import Sequential, as_model
    model = as_model(model, ds.input_shape)
    if not isinstance(model, Sequential):
        raise ConfigError("model", f"{type(model).__name__} is not a ctrain model (ctrain.model.Sequential) "
                                   "or a torch.nn.Module")
    if tuple(model.input_shape) != tuple(ds.input_shape) or model.num_classes != ds.num_classes:
        raise ConfigError("model", f"built for input {tuple(model.input_shape)} and {model.num_classes} classes, "
                                   f"the data has {tuple(ds.input_shape)} and {ds.num_classes}")
    return model


def train(cfg, progress=True, resume=False, model=None):
    """Check everything (settings, data, checkpoint), then train; returns (trainer, test accuracy).
    `model`: as for Trainer."""
    if resume and not cfg.checkpoint:
        raise ConfigError("checkpoint", "is required to resume (the checkpoint to continue from)")
    if resume and not os.path.isfile(cfg.checkpoint):
        raise CheckpointError(f"{cfg.checkpoint}: resume needs an existing checkpoint, not found")
    trainer = Trainer(cfg, model=model)
    if resume:
        trainer.load(cfg.checkpoint)
    acc = trainer.run(progress=progress)
    return trainer, acc
