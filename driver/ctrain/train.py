"""The training loop: float warm-up on the host, then fixed-point training on
the (emulated or real) accelerator, evaluation, checkpoints and resume."""
import math
import os
from array import array
from dataclasses import asdict, dataclass

import numpy as np
from tqdm.auto import tqdm

from . import checkpoint, data, hostlib, preprocess
from .compiler import INPUT_EXP, compile_model
from .errors import CheckpointError, TrainingDiverged
from .floatnet import FloatNet
from .model import build_model
from .pruning import prune_masks, sparsity_of
from .runtime import Runtime

DIVERGE_WINDOW = 20
DIVERGE_FACTOR = 4

DEFAULT_MODEL = {"digits": "digits-cnn", "mnist": "lenet5"}
#: epochs and batch size per dataset when the user gives none
DEFAULTS = {"digits": {"epochs": 30, "batch_size": 16}, "mnist": {"epochs": 8, "batch_size": 64}}


@dataclass
class TrainConfig:
    dataset: str = "digits"
    data_dir: str = None
    model: str = None
    epochs: int = None
    batch_size: int = None
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"       # or "constant"
    warmup_epochs: float = 1.0     # float training before the switch to fixed point
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
    sparse_exec: bool = True       # pruned layers run sparse (compressed in DDR); False: dense + mask
    warm_start: str = None         # float weights (.npz or PyTorch state_dict) to start from (ctrain.export)
    image_size: str = None         # folder data set: resize every image to "HxW" (docs/data.md)
    normalize: bool = False        # per-channel normalisation of the inputs (preprocess.normalise)
    augment: str = None            # e.g. "crop=4,flip": on-the-fly augmentation (preprocess.Augment)

    def __post_init__(self):
        for key, value in DEFAULTS.get(self.dataset, DEFAULTS["mnist"]).items():
            if getattr(self, key) is None:
                setattr(self, key, value)

    def model_name(self):
        return self.model or DEFAULT_MODEL.get(self.dataset, "lenet5")


def learning_rate(cfg, it, total):
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "cosine":
        return 0.5 * cfg.lr * (1.0 + math.cos(math.pi * it / max(total, 1)))
    raise ValueError(f"unknown schedule {cfg.schedule!r}; choose cosine or constant")


def make_device(cfg):
    if cfg.device == "emulated":
        from .device.emulated import EmulatedDevice
        return EmulatedDevice(engine=cfg.engine)
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


class Trainer:
    """Holds one training run's state so it can be checkpointed and resumed."""

    def __init__(self, cfg, dataset=None, device=None):
        self.cfg = cfg
        self.augment = preprocess.Augment(cfg.augment, cfg.seed) if cfg.augment else None
        self.ds = dataset or data.get_dataset(cfg.dataset, cfg.data_dir, train_count=cfg.train_count,
                                              test_count=cfg.test_count, image_size=cfg.image_size)
        self.norm = None  # normalisation statistics, saved with checkpoints for inference
        if cfg.normalize:
            self.ds, self.norm = preprocess.normalise(self.ds)
        self.model = build_model(cfg.model_name(), self.ds.input_shape, self.ds.num_classes)
        self.rng = np.random.default_rng(cfg.seed)
        self.net = FloatNet(self.model, self.model.init_params(self.rng))
        if cfg.warm_start:  # load_float_params call site: the file's weights replace the initial ones
            from .export import warm_start
            warm_start(self.net, cfg.warm_start)
        self.iters_per_epoch = len(self.ds.train_y) // cfg.batch_size
        if self.iters_per_epoch < 1:
            raise ValueError(f"batch size {cfg.batch_size} exceeds the {len(self.ds.train_y)} training images")
        self.total = cfg.epochs * self.iters_per_epoch
        self.warm = round(cfg.warmup_epochs * self.iters_per_epoch) if cfg.fixed_point else self.total
        self.xq_train = hostlib.quantize(self.ds.train_x, INPUT_EXP)[0]
        self.xq_test = hostlib.quantize(self.ds.test_x, INPUT_EXP)[0]
        # made now, so a missing board or overlay is reported before any training
        self._device = device or (make_device(cfg) if cfg.fixed_point else None)
        self.runtime = None
        self.it = 0
        self.history = History()
        self._tops = []
        self._order = None
        self._recent = []
        self.masks = None
        self.messages = []  # notable events (pruning) for the log
        self.prune_it = round(cfg.prune_at * self.total) if cfg.prune > 0 else None
        # batch norm statistics freeze where fixed point starts (in a float run too, for comparison)
        self.bn_freeze_it = round(cfg.warmup_epochs * self.iters_per_epoch)

    # -- phases ---------------------------------------------------------------
    @property
    def fixed(self):
        return self.runtime is not None

    def _compile(self):
        return compile_model(self.model, self.cfg.batch_size, self.masks if self.cfg.sparse_exec else None)

    def _switch(self):
        program = self._compile()
        device = self._device
        self.runtime = rt = Runtime(program, device, window_log2=self.cfg.window_log2)
        if not self._tops:  # no warm-up: calibrate ranges on one batch without a step
            idx = np.arange(self.cfg.batch_size)
            self._tops.append(self.net.calibrate(self.ds.train_x[idx], self.ds.train_y[idx]))
        self.net.bn_frozen = True
        rt.load_float(self.net.params, [t[0] for t in self._tops], [t[1] for t in self._tops], self.masks,
                      [self.net.bn_affine(k) for k in range(len(self.net.bn))])

    def prune(self):
        """Prune to cfg.prune by L2 norm; in fixed point the program is
        recompiled with the pruned layers sparse and the state moves over."""
        cfg = self.cfg
        params = self.runtime.float_params() if self.fixed else self.net.params
        old = self.runtime.masks() if self.fixed else self.masks
        self.masks = prune_masks([p["w"] for p in params], cfg.prune, cfg.prune_mode, cfg.prune_scope, old)
        self.net.prune(self.masks)
        if self.fixed:
            before = sum(u for _, u, _ in self.runtime.memory_report())
            rt = Runtime(self._compile(), self.runtime.device, window_log2=cfg.window_log2)
            rt.adopt(self.runtime, self.masks)
            self.runtime.close()
            self.runtime = rt
            after = sum(u for _, u, _ in rt.memory_report())
        per, total = sparsity_of(self.masks)
        record = {"it": self.it, "sparsity": per, "total": total}
        msg = (f"pruned {100 * total:.1f}% of weights ({cfg.prune_mode}, per {cfg.prune_scope}) at iteration "
               f"{self.it}: layers " + " ".join(f"{100 * s:.0f}%" for s in per))
        if self.fixed:
            record["ddr_bytes"] = (before, after)
            msg += f"; layer state in DDR {before / 1024:.1f} KiB -> {after / 1024:.1f} KiB"
        self.history.pruning.append(record)
        return msg

    def step(self, idx):
        cfg = self.cfg
        if self.it == self.prune_it and not self.history.pruning:
            self.messages.append(self.prune())
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
        if not np.isfinite(loss):
            raise TrainingDiverged(f"{phase} phase, iteration {self.it}: loss is {loss}; stopped instead of "
                                   f"training on garbage (try a learning rate below {self.cfg.lr})")
        self._recent.append(float(loss))
        del self._recent[:-DIVERGE_WINDOW]
        chance = math.log(self.ds.num_classes)
        if len(self._recent) == DIVERGE_WINDOW and np.mean(self._recent) > DIVERGE_FACTOR * chance:
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
            key = f"L{st.param_index} {op[3:].split('CONV_')[-1]}"  # OP_SCONV_FP -> FP
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
                "tops": self._tops, "history": self.history.state(),
                "data": {"class_names": list(self.ds.class_names or []), "input_shape": list(self.ds.input_shape),
                         "normalize": self.norm}}
        if self.fixed:
            arrays.update({f"ddr_{k}": v for k, v in self.runtime.layer_arrays().items()})
            meta["exponents"] = {str(k): v for k, v in self.runtime.exps.state().items()}
            meta["runtime_it"] = self.runtime.iteration
        checkpoint.save(path, arrays, meta)

    def load(self, path):
        arrays, meta = checkpoint.load(path)
        saved = meta.get("config", {})
        for key in ("dataset", "batch_size", "seed", "epochs", "prune", "prune_at", "prune_mode",
                    "prune_scope", "sparse_exec", "fixed_point", "normalize", "augment"):
            if saved.get(key, getattr(TrainConfig, key)) != getattr(self.cfg, key):
                raise CheckpointError(f"{path}: checkpoint was made with {key}={saved.get(key)!r}, "
                                      f"this run has {getattr(self.cfg, key)!r}")
        if saved.get("model") != self.cfg.model and (saved.get("model") or self.cfg.model):
            raise CheckpointError(f"{path}: checkpoint is of model {saved.get('model')!r}, not {self.cfg.model!r}")
        try:
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
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"{path}: float weights do not match the model: {exc}") from None
        if "mask0" in arrays:
            try:
                self.masks = [arrays[f"mask{j}"].astype(bool).reshape(p["w"].shape)
                              for j, p in enumerate(self.net.params)]
            except (KeyError, ValueError) as exc:
                raise CheckpointError(f"{path}: pruning masks do not match the model: {exc}") from None
            self.net.masks = self.masks
        self.it = int(meta["it"])
        self._tops = [tuple(t) for t in meta.get("tops", [])]
        self.history = History.from_state(meta.get("history", {}))
        if meta.get("fixed"):
            self._switch()
            try:
                self.runtime.load_layer_arrays({k[4:]: v for k, v in arrays.items() if k.startswith("ddr_")})
            except (KeyError, ValueError) as exc:
                raise CheckpointError(f"{path}: device state does not match the model: {exc}") from None
            self.runtime.exps.load_state({int(k): v for k, v in meta["exponents"].items()})
            self.runtime.iteration = int(meta.get("runtime_it", 0))


def train(cfg, progress=True, resume=False):
    trainer = Trainer(cfg)
    if resume:
        if not cfg.checkpoint or not os.path.exists(cfg.checkpoint):
            raise CheckpointError(f"--resume needs an existing checkpoint, {cfg.checkpoint!r} not found")
        trainer.load(cfg.checkpoint)
    acc = trainer.run(progress=progress)
    return trainer, acc
