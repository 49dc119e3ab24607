"""The model file (docs/export.md): a trained model written for use outside
training, and read back.

It is a CTrain checkpoint container (an .npz with JSON metadata and a SHA-256
digest, ctrain.checkpoint) whose metadata says `"format": "ctrain-model"`. It
holds per Conv2d/Linear layer the int8 weights the PE array computes with and
their exponent, the int32 master weights and biases and theirs, the pruning
mask, and every activation exponent, so the fixed-point forward pass can be
reproduced exactly without CTrain; plus dequantized float weights (a warm
start for another run, ctrain.weights_in) and the architecture
(ctrain.modelspec). Frozen batch norms are there as their int32 affine."""
import os

import numpy as np

from . import checkpoint
from .compiler import INPUT_EXP
from .errors import ExportError
from .model import has_bias
from .modelspec import bn_stage_spec, model_from_spec, model_spec, param_stage_spec

FORMAT = "ctrain-model"
VERSION = 1


def export_state(trainer):
    """(arrays, meta) of a Trainer's current model, in the model-file layout.

    Fixed point: Runtime.state() (the device's int8 copies, master weights
    and masks, the host table's exponents) and its dequantisation; nothing
    is written to the device or the runtime."""
    model = trainer.model
    meta = {"format": FORMAT, "version": VERSION, "model": model_spec(model),
            "num_classes": model.num_classes, "input_exp": INPUT_EXP,
            "fixed_point": bool(trainer.fixed), "iteration": int(trainer.it),
            "dataset": getattr(trainer.cfg, "dataset", None), "layers": [], "bn": []}
    arrays = {}
    for k, b in enumerate(getattr(trainer.net, "bn", [])):  # float statistics: a warm start for another run
        for name in ("gamma", "beta", "mean", "var"):
            arrays[f"float_bn_{name}{k}"] = np.asarray(b[name], np.float32)
    if not trainer.fixed:
        for st, p in zip(model.param_stages, trainer.net.params):
            j = st.param_index
            arrays[f"float_w{j}"] = np.asarray(p["w"], np.float32)
            if p["b"] is not None:
                arrays[f"float_b{j}"] = np.asarray(p["b"], np.float32)
            meta["layers"].append(param_stage_spec(st))
        for st in model.bn_stages:
            k = st.bn_index
            scale, shift = trainer.net.bn_affine(k)
            arrays[f"float_bn_scale{k}"] = np.asarray(scale, np.float32)
            arrays[f"float_bn_shift{k}"] = np.asarray(shift, np.float32)
            meta["bn"].append(bn_stage_spec(st))
        return arrays, meta
    rt = trainer.runtime
    state = rt.state()
    act_exp = meta["act_exp"] = state["act_exp"]
    for st, d, fp in zip(model.param_stages, state["layers"], rt.float_params(state)):
        j = st.param_index
        arrays[f"w{j}"], arrays[f"mask{j}"], arrays[f"master{j}"] = d["w"], d["mask"], d["master"]
        if d["bias"] is not None:
            arrays[f"bias{j}"] = d["bias"]
        arrays[f"float_w{j}"] = fp["w"]
        if fp["b"] is not None:
            arrays[f"float_b{j}"] = fp["b"]
        meta["layers"].append(dict(param_stage_spec(st), e_w=d["e_w"], e_m=d["e_m"], e_in=act_exp[st.index],
                                   e_out=act_exp[st.index + 1],
                                   nonzero=float(np.count_nonzero(d["w"]) / d["w"].size)))
    for st, d, (scale, shift) in zip(model.bn_stages, state["bn"], rt.float_bn(state)):
        k = st.bn_index
        arrays[f"bnA{k}"], arrays[f"bnB{k}"] = d["a"], d["b"]
        arrays[f"float_bn_scale{k}"], arrays[f"float_bn_shift{k}"] = scale, shift
        meta["bn"].append(dict(bn_stage_spec(st), e_a=d["e_a"], e_b=d["e_b"], e_in=act_exp[st.index],
                               e_out=act_exp[st.index + 1]))
    return arrays, meta


def save_model(trainer, path):
    """Write the model file (atomically); returns the path."""
    arrays, meta = export_state(trainer)
    checkpoint.save(path, arrays, meta)
    return path


class ExportedModel:
    """A model file read back: `meta`, `arrays`, `model` (the Sequential)."""

    def __init__(self, arrays, meta, path=None):
        if meta.get("format") != FORMAT:
            raise ExportError(f"{path or 'data'}: not a CTrain model file (format {meta.get('format')!r}); "
                              "a training checkpoint is exported with `ctrain export`")
        if int(meta.get("version", 0)) > VERSION:
            raise ExportError(f"{path}: model file version {meta['version']} is newer than this CTrain's {VERSION}")
        self.arrays, self.meta, self.path = arrays, meta, path
        self.model = model_from_spec(meta["model"])

    @property
    def fixed_point(self):
        return bool(self.meta["fixed_point"])

    def float_params(self):
        """Float weights per layer ({"w", "b"}), dequantized master copies for a fixed-point model."""
        out = []
        for st in self.model.param_stages:
            j = st.param_index
            out.append({"w": self.arrays[f"float_w{j}"],
                        "b": self.arrays.get(f"float_b{j}") if has_bias(st) else None})
        return out


def load_model(path):
    arrays, meta = checkpoint.load(path)
    return ExportedModel(arrays, meta, os.fspath(path))
