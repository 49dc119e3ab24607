"""Interop: export a trained model, to a documented file and to ONNX; load
float weights (a numpy file or a PyTorch state_dict) as a warm start.

The model file (docs/export.md) is a CTrain checkpoint container (an .npz
with JSON metadata and a SHA-256 digest, ctrain.checkpoint) whose metadata
says `"format": "ctrain-model"`. It holds per Conv2d/Linear layer the int8
weights the PE array computes with and their exponent, the int32 master
weights and biases and theirs, the pruning mask, and every activation
exponent, so the fixed-point forward pass can be reproduced exactly without
CTrain; plus dequantized float weights (a warm start for another run) and
the architecture. Frozen batch-norm constants have a reserved place
(`bn`, empty until the model has BN layers).

ONNX (`to_onnx`): opset 13, one float32 input `image` [N, C, H, W] in [0, 1]
and one output `logits` [N, classes] equal to the emulator's dequantized int8
logits. Two encodings of the same network, both documented:

- `exact` (default): plain ONNX with dequantized weights (int8 * 2^e as
  float32) and the accelerator's requantization spelled out after every layer
  as Mul(2^-s), Add(0.5), Floor, Clip(-127, 127), Mul(2^e): round half up and
  symmetric saturation exactly as docs/numeric.md. Every sum of int8 products
  is an integer below 2^24 in units of 2^e_acc, so float32 holds it exactly
  in any order (checked per layer; `exact_float32` in the metadata).
- `qdq`: the standard ONNX quantization format (QONNX/QDQ style):
  int8 weight initializers through DequantizeLinear, activations through
  QuantizeLinear/DequantizeLinear pairs with power-of-two scales and zero
  point 0. Runtimes may fuse these into integer kernels; QuantizeLinear
  rounds half to even and saturates at -128, so an exact tie can differ from
  the accelerator by one LSB.
"""
import collections
import dataclasses
import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np

from . import checkpoint, hostlib, model as model_module
from .compiler import INPUT_EXP
from .errors import ConfigError, CTrainError
from .fixedpoint import rshift_round
from .model import Conv2d, Sequential, geometry, has_bias, weight_shape

FORMAT = "ctrain-model"
VERSION = 1
EXACT_SUM_LIMIT = 1 << 24  # float32 holds every integer below this exactly


class ExportError(CTrainError, ValueError):
    """A model cannot be exported or a weight file cannot be read as this model's weights."""


# -- architecture -------------------------------------------------------------

def _layer_specs(layers):
    """JSON-able layer list; a Residual's branches are layer lists of their own."""
    out = []
    for layer in layers:
        if not dataclasses.is_dataclass(layer):
            raise ExportError(f"cannot describe layer {layer!r}")
        if isinstance(layer, model_module.Residual):
            out.append({"type": "Residual", "body": _layer_specs(layer.body),
                        "shortcut": _layer_specs(layer.shortcut)})
        else:
            out.append({"type": type(layer).__name__, **dataclasses.asdict(layer)})
    return out


def _layers_of(specs):
    layers = []
    for d in specs:
        d = dict(d)
        cls = getattr(model_module, d.pop("type"), None)
        if cls is None or not dataclasses.is_dataclass(cls):
            raise ExportError(f"unknown layer type in model spec: {d}")
        if cls is model_module.Residual:
            layers.append(cls(_layers_of(d.get("body", [])), _layers_of(d.get("shortcut", []))))
        else:
            layers.append(cls(**d))
    return layers


def model_spec(model):
    """The architecture as JSON-able data: input shape and the layer list."""
    return {"input_shape": list(model.input_shape), "layers": _layer_specs(model.layers)}


def model_from_spec(spec):
    """Rebuild the Sequential that model_spec described."""
    return Sequential(*_layers_of(spec["layers"]), input_shape=tuple(spec["input_shape"]))


# -- the model file -----------------------------------------------------------

def _sync_from(view):
    sync = getattr(view, "sync_from_device", None)
    if sync is not None:
        sync()
    return np.array(view)


def export_state(trainer):
    """(arrays, meta) of a Trainer's current model, in the model-file layout.

    Fixed point: the DDR-resident int8 copies, master weights and masks (read
    back from the device) with the exponents of the host's parameter table,
    which is authoritative (the runtime rewrites the DDR table from it before
    every training step); nothing is written to the device or the runtime."""
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
            meta["layers"].append(_layer_meta(st))
        for st in _bn_stages(model):
            k = st.bn_index
            scale, shift = trainer.net.bn_affine(k)
            arrays[f"float_bn_scale{k}"] = np.asarray(scale, np.float32)
            arrays[f"float_bn_shift{k}"] = np.asarray(shift, np.float32)
            meta["bn"].append(_bn_meta(st))
        return arrays, meta
    rt = trainer.runtime
    prog = rt.program
    table = np.array(rt.table)
    act_exp = [int(table[s]) for s in prog.act_slots]
    meta["act_exp"] = act_exp
    for L in prog.layers:
        st, j = L.stage, L.stage.param_index
        scatter = getattr(L, "scatter", lambda a, fill=0: a)
        w_stored = _sync_from(rt.views[L.region("w")]).reshape(-1)
        master = _sync_from(rt.views[L.region("master")])
        mask = _sync_from(rt.views[L.region("mask")])
        arrays[f"w{j}"] = scatter(w_stored).reshape(L.w_shape).astype(np.int8)
        arrays[f"mask{j}"] = scatter(mask).reshape(L.w_shape).astype(np.uint8)
        arrays[f"master{j}"] = scatter(master[:L.n_w]).reshape(L.w_shape).astype(np.int32)
        if L.n_b:
            arrays[f"bias{j}"] = master[L.n_w:].astype(np.int32)
        e_w, e_m = int(table[L.slot_w8]), int(table[L.slot_m])
        arrays[f"float_w{j}"] = hostlib.from_master(arrays[f"master{j}"], e_m)
        if L.n_b:
            arrays[f"float_b{j}"] = hostlib.from_master(arrays[f"bias{j}"], e_m)
        meta["layers"].append(dict(_layer_meta(st), e_w=e_w, e_m=e_m, e_in=act_exp[st.index],
                                   e_out=act_exp[st.index + 1],
                                   nonzero=float(np.count_nonzero(arrays[f"w{j}"]) / arrays[f"w{j}"].size)))
    for st, (slot_a, slot_b) in zip(_bn_stages(model), getattr(prog, "bn_slots", [])):
        k = st.bn_index
        a = _sync_from(rt.views[f"bnA{k}"]).astype(np.int32)
        b = _sync_from(rt.views[f"bnB{k}"]).astype(np.int32)
        e_a, e_b = int(table[slot_a]), int(table[slot_b])
        arrays[f"bnA{k}"], arrays[f"bnB{k}"] = a, b
        arrays[f"float_bn_scale{k}"] = hostlib.from_master(a, e_a)
        arrays[f"float_bn_shift{k}"] = hostlib.from_master(b, e_b)
        meta["bn"].append(dict(_bn_meta(st), e_a=e_a, e_b=e_b, e_in=act_exp[st.index], e_out=act_exp[st.index + 1]))
    return arrays, meta


def _bn_stages(model):
    return [s for s in model.stages if s.kind == "bn"]


def _bn_meta(st):
    return {"index": st.bn_index, "stage": st.index, "channels": int(st.in_shape[0]), "relu": bool(st.relu)}


def _layer_meta(st):
    k, s, p = geometry(st)
    return {"index": st.param_index, "stage": st.index, "kind": "conv" if isinstance(st.layer, Conv2d) else "linear",
            "w_shape": list(weight_shape(st)), "bias": has_bias(st), "relu": bool(st.relu),
            "kernel": k, "stride": s, "pad": p, "in_shape": list(st.in_shape), "out_shape": list(st.out_shape)}


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


def check_export_targets(checkpoint_path, output, onnx_path=None):
    """`ctrain export`'s paths before any work: the output is writable and is
    not an unrelated file, the ONNX path's directory exists and onnx is
    installed when an ONNX model is asked for."""
    if not os.path.isfile(checkpoint_path):
        raise ExportError(f"{checkpoint_path}: checkpoint not found")
    if os.path.abspath(output) == os.path.abspath(checkpoint_path):
        raise ExportError(f"{output}: the model file would replace the checkpoint it is exported from")
    checkpoint.check_target(output, "model file")
    if onnx_path is not None:
        import importlib.util
        if importlib.util.find_spec("onnx") is None:
            raise ExportError("--onnx needs the onnx package (pip install onnx); nothing was written")
        directory = os.path.dirname(os.path.abspath(onnx_path))
        if os.path.isdir(onnx_path):
            raise ExportError(f"{onnx_path}: ONNX path is a directory; give a file name")
        if not os.path.isdir(directory) or not os.access(directory, os.W_OK | os.X_OK):
            raise ExportError(f"{onnx_path}: directory {directory} does not exist or is not writable")
        if os.path.abspath(onnx_path) in (os.path.abspath(output), os.path.abspath(checkpoint_path)):
            raise ExportError(f"{onnx_path}: the ONNX model would overwrite the model file or the checkpoint")


def export_checkpoint(checkpoint_path, output, onnx_path=None, style="exact", dataset=None):
    """`ctrain export`: rebuild the run of a training checkpoint (on the
    emulated device, the checkpoint holds the whole state) and write the
    model file, and the ONNX model when onnx_path is given."""
    from .train import TrainConfig, Trainer
    _, meta = checkpoint.load(checkpoint_path)
    saved = meta.get("config")
    if not isinstance(saved, dict):
        raise ExportError(f"{checkpoint_path}: not a training checkpoint (no run configuration); "
                          "a model file is already exported")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    kept = {k: v for k, v in saved.items() if k in fields}
    kept.update(device="emulated", checkpoint=None, checkpoint_every=0, warm_start=None)
    try:
        cfg = TrainConfig(**kept)
    except (ConfigError, TypeError) as exc:
        raise ExportError(f"{checkpoint_path}: invalid run settings in the checkpoint: {exc}") from None
    trainer = Trainer(cfg, dataset=dataset)
    trainer.load(checkpoint_path)
    save_model(trainer, output)
    if onnx_path is not None:
        to_onnx(load_model(output), onnx_path, style=style)
    return trainer


# -- ONNX -----------------------------------------------------------------------

def to_onnx(source, path=None, style="exact", opset=13):
    """An ONNX model of the forward pass (see the module docstring for the two
    styles; a float model exports as a plain float graph). `source`: an
    ExportedModel, a model-file path or a Trainer. Returns the
    onnx.ModelProto, also written to `path` when given."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if style not in ("exact", "qdq"):
        raise ExportError(f"unknown ONNX style {style!r}; choose exact or qdq")
    if not isinstance(source, ExportedModel):
        if isinstance(source, (str, os.PathLike)):
            source = load_model(source)
        else:
            arrays, meta = export_state(source)
            source = ExportedModel(arrays, meta)
    em, meta, arrays = source, source.meta, source.arrays
    model = em.model
    graph = sorted({st.kind for st in model.stages} & {"add", "avgpool"})
    if graph:
        raise ExportError(f"ONNX export covers Sequential models only; this one has {' and '.join(graph)} "
                          "stages (residual adds, average pooling): export the model file instead")
    fixed = em.fixed_point
    nodes, inits = [], []
    counter = collections.Counter()

    def name(base):
        counter[base] += 1
        return f"{base}_{counter[base]}"

    def const(base, value, dtype=np.float32):
        n = name(base)
        inits.append(numpy_helper.from_array(np.asarray(value, dtype), n))
        return n

    def node(op, inputs, base, **attrs):
        out = name(base)
        nodes.append(helper.make_node(op, inputs, [out], name=out + "_node", **attrs))
        return out

    def requant(x, e, base):
        """x (float, multiples of some 2^e_acc) -> int8 grid at exponent e, dequantized."""
        if style == "qdq":
            scale, zp = const(base + "_scale", 2.0 ** e), const(base + "_zp", 0, np.int8)
            q = node("QuantizeLinear", [x, scale, zp], base + "_q")
            return node("DequantizeLinear", [q, scale, zp], base + "_dq")
        y = node("Mul", [x, const(base + "_inv", 2.0 ** -e)], base + "_scaled")
        y = node("Add", [y, const("half", 0.5)], base + "_biased")
        y = node("Floor", [y], base + "_floor")
        y = node("Clip", [y, const("qmin", -127.0), const("qmax", 127.0)], base + "_sat")
        return node("Mul", [y, const(base + "_step", 2.0 ** e)], base + "_deq")

    x = "image"
    exact = True
    if fixed:
        x = requant(x, meta["input_exp"], "input")
    layers = {d["index"]: d for d in meta["layers"]}
    bn_meta = {d["index"]: d for d in meta.get("bn", [])}
    for st in model.stages:
        if st.kind == "pool":
            k, s, _ = geometry(st)
            x = node("MaxPool", [x], f"pool{st.index}", kernel_shape=[k, k], strides=[s, s])
            continue
        if st.kind == "relu":
            x = node("Relu", [x], f"relu{st.index}")
            continue
        if st.kind == "bn":
            d = bn_meta[st.bn_index]
            k, c = d["index"], d["channels"]
            if fixed:
                e_acc = d["e_in"] + d["e_a"]
                a_q = arrays[f"bnA{k}"].astype(np.int64)
                b_q = rshift_round(arrays[f"bnB{k}"].astype(np.int64), e_acc - d["e_b"])
                exact &= 127 * int(np.max(np.abs(a_q), initial=0)) + int(np.max(np.abs(b_q), initial=0)) \
                    < EXACT_SUM_LIMIT
                if style == "qdq":
                    a = node("DequantizeLinear", [const(f"bnA{k}_int32", a_q.reshape(c, 1, 1), np.int32),
                                                  const(f"bnA{k}_scale", 2.0 ** d["e_a"]),
                                                  const(f"bnA{k}_zp", 0, np.int32)], f"bnA{k}")
                    b = node("DequantizeLinear", [const(f"bnB{k}_int32", np.clip(b_q, -2**31 + 1, 2**31 - 1)
                                                        .reshape(c, 1, 1), np.int32),
                                                  const(f"bnB{k}_scale", 2.0 ** e_acc),
                                                  const(f"bnB{k}_zp", 0, np.int32)], f"bnB{k}")
                else:
                    a = const(f"bnA{k}", (a_q * 2.0 ** d["e_a"]).reshape(c, 1, 1))
                    b = const(f"bnB{k}", (b_q * 2.0 ** e_acc).reshape(c, 1, 1))
            else:
                a = const(f"bn_scale{k}", arrays[f"float_bn_scale{k}"].reshape(c, 1, 1))
                b = const(f"bn_shift{k}", arrays[f"float_bn_shift{k}"].reshape(c, 1, 1))
            y = node("Add", [node("Mul", [x, a], f"bn{k}_mul"), b], f"bn{k}")
            if d["relu"]:
                y = node("Relu", [y], f"relu{st.index}")
            x = requant(y, d["e_out"], f"act{st.index + 1}") if fixed else y
            continue
        j = st.param_index
        d = layers[j]
        ws = tuple(d["w_shape"])
        if fixed:
            e_w, e_m, e_acc = d["e_w"], d["e_m"], d["e_in"] + d["e_w"]
            q = arrays[f"w{j}"].astype(np.int64)
            terms = int(np.prod(ws[1:]))
            bias_q = (rshift_round(arrays[f"bias{j}"].astype(np.int64), e_acc - e_m)
                      if d["bias"] else np.zeros(ws[0], np.int64))
            worst = terms * 127 * 127 + int(np.max(np.abs(bias_q), initial=0))
            d_exact = worst < EXACT_SUM_LIMIT
            exact &= d_exact
            if style == "qdq":
                w_scale = const(f"w{j}_scale", 2.0 ** e_w)
                w_q = const(f"w{j}_int8", q.reshape(ws if d["kind"] == "conv" else ws[:2]), np.int8)
                w = node("DequantizeLinear", [w_q, w_scale, const(f"w{j}_zp", 0, np.int8)], f"w{j}")
                b_scale = const(f"b{j}_scale", 2.0 ** e_acc)
                b_q = const(f"b{j}_int32", np.clip(bias_q, -2**31 + 1, 2**31 - 1), np.int32)
                b = node("DequantizeLinear", [b_q, b_scale, const(f"b{j}_zp", 0, np.int32)], f"b{j}")
            else:
                w = const(f"w{j}", (q * 2.0 ** e_w).reshape(ws if d["kind"] == "conv" else ws[:2]))
                b = const(f"b{j}", bias_q * 2.0 ** e_acc)
        else:
            wf = arrays[f"float_w{j}"]
            w = const(f"w{j}", wf.reshape(ws if d["kind"] == "conv" else ws[:2]))
            bf = arrays.get(f"float_b{j}")
            b = const(f"b{j}", bf if bf is not None else np.zeros(ws[0], np.float32))
        if d["kind"] == "conv":
            k, s, p = d["kernel"], d["stride"], d["pad"]
            y = node("Conv", [x, w, b], f"conv{j}", kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p])
        else:
            flat = node("Flatten", [x], f"flatten{j}", axis=1)
            y = node("Gemm", [flat, w, b], f"fc{j}", transB=1)
            y = node("Reshape", [y, const(f"shape{j}", [-1, ws[0], 1, 1], np.int64)], f"fc{j}_4d")
        if d["relu"]:
            y = node("Relu", [y], f"relu{st.index}")
        if fixed:
            y = requant(y, d["e_out"], f"act{st.index + 1}")
        x = y
    out = node("Flatten", [x], "logits_flat", axis=1)
    nodes.append(helper.make_node("Identity", [out], ["logits"], name="logits_node"))
    c, h, w_ = model.input_shape
    graph = helper.make_graph(
        nodes, "ctrain",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", c, h, w_])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", model.num_classes])],
        initializer=inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                   producer_name="ctrain", producer_version=str(VERSION))
    onnx_model.ir_version = 8  # readable by onnxruntime >= 1.10 (older boards' images)
    props = {"ctrain_format": FORMAT, "ctrain_style": style if fixed else "float",
             "ctrain_fixed_point": str(fixed), "ctrain_exact_float32": str(bool(exact) if fixed else "n/a"),
             "ctrain_model": json.dumps(meta["model"])}
    if fixed:
        props["ctrain_act_exp"] = json.dumps(meta["act_exp"])
    for k, v in props.items():
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(onnx_model)
    if path is not None:
        onnx.save(onnx_model, os.fspath(path))
    return onnx_model


def onnx_predict(onnx_model_or_path, images, batch_size=1024):
    """Logits from onnxruntime for float images [N, C, H, W] in [0, 1]."""
    import onnxruntime as ort
    data = onnx_model_or_path
    if not isinstance(data, (str, os.PathLike)):
        data = data.SerializeToString()
    sess = ort.InferenceSession(data if isinstance(data, bytes) else os.fspath(data),
                                providers=["CPUExecutionProvider"])
    x = np.ascontiguousarray(images, np.float32)
    out = [sess.run(["logits"], {"image": x[i:i + batch_size]})[0] for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


# -- warm start -------------------------------------------------------------------

def warm_start(net, source):
    """Load float weights (and batch-norm statistics, when the model has
    BatchNorm2d layers) from `source` into a FloatNet, in place; the
    Trainer calls this for TrainConfig.warm_start / `ctrain train --warm-start`."""
    params, bn = load_float_state(source, net.model)
    for dst, src in zip(net.params, params):
        for k in ("w", "b"):
            if dst[k] is not None:
                dst[k][...] = src[k]
    for dst, src in zip(getattr(net, "bn", []), bn):
        for k, v in src.items():
            dst[k][...] = v
    return params


def load_float_params(source, model):
    """The float weights of load_float_state (without batch-norm statistics)."""
    return load_float_state(source, model)[0]


def load_float_state(source, model):
    """Float weights for every Conv2d/Linear layer of `model`, as
    [{"w": float32 [c_out, c_in, k, k], "b": float32 [c_out] or None}].

    source: a path to an .npz (a CTrain model file or checkpoint, arrays named
    w0/b0..., or a PyTorch-style state_dict saved with numpy), a PyTorch
    state_dict file (.pt/.pth/.bin, read without torch), or a mapping of names
    to arrays/tensors. Layers are matched in order. A PyTorch BatchNorm2d
    becomes the model's BatchNorm2d when it has them (gamma, beta, running
    mean and variance), else it is folded into the Conv2d/Linear before it.
    Returns (params, bn) with bn a list of {"gamma", "beta", "mean", "var"}.
    Errors name the layer and shapes."""
    arrays = _read_weights(source)
    bn_stages = _bn_stages(model)
    pairs, bns = _weight_pairs(arrays, source, fold_bn=not bn_stages)
    if bn_stages and len(bns) != len(bn_stages):
        raise ExportError(f"{_label(source)}: {len(bns)} BatchNorm layers for a model with {len(bn_stages)}")
    bn_out = []
    for st, (prefix, leaves) in zip(bn_stages, bns):
        c = st.in_shape[0]
        entry = {"gamma": leaves.get("weight", np.ones(c)), "beta": leaves.get("bias", np.zeros(c)),
                 "mean": leaves["running_mean"], "var": leaves["running_var"]}
        for k, v in entry.items():
            v = np.asarray(v, np.float32).reshape(-1)
            if v.shape != (c,):
                raise ExportError(f"{_label(source)}: BatchNorm {prefix} has {v.size} channels, "
                                  f"layer {st.names[0]} has {c}")
            entry[k] = v
        bn_out.append(entry)
    stages = model.param_stages
    if len(pairs) != len(stages):
        raise ExportError(f"{_label(source)}: {len(pairs)} weight tensors ({', '.join(p[0] for p in pairs)}) "
                          f"for a model with {len(stages)} Conv2d/Linear layers")
    params = []
    for st, (wname, w, bname, b) in zip(stages, pairs):
        ws = weight_shape(st)
        w = np.asarray(w, np.float32)
        if w.size != int(np.prod(ws)) or w.shape[0] != ws[0] or (w.ndim == 4 and w.shape != ws):
            raise ExportError(f"{_label(source)}: {wname} has shape {tuple(w.shape)}, layer {st.names[0]} "
                              f"({type(st.layer).__name__}) needs {ws if w.ndim == 4 else ws[:2]}")
        w = np.ascontiguousarray(w.reshape(ws))
        if has_bias(st):
            b = np.zeros(ws[0], np.float32) if b is None else np.asarray(b, np.float32).reshape(-1)
            if b.shape != (ws[0],):
                raise ExportError(f"{_label(source)}: {bname} has {b.size} values, layer {st.names[0]} needs {ws[0]}")
            b = np.ascontiguousarray(b)
        elif b is not None and np.any(b):
            raise ExportError(f"{_label(source)}: {bname} is a nonzero bias but layer {st.names[0]} has bias=False")
        else:
            b = None
        if not (np.all(np.isfinite(w)) and (b is None or np.all(np.isfinite(b)))):
            raise ExportError(f"{_label(source)}: {wname} holds non-finite values")
        params.append({"w": w, "b": b})
    return params, bn_out


def _label(source):
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else "weights"


def _to_numpy(v):
    if hasattr(v, "detach"):  # a torch tensor
        v = v.detach().cpu().numpy()
    return np.asarray(v)


def _read_weights(source):
    if not isinstance(source, (str, os.PathLike)):
        return collections.OrderedDict((str(k), _to_numpy(v)) for k, v in source.items())
    p = Path(source)
    if not p.is_file():
        raise ExportError(f"{p}: weight file not found")
    with open(p, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":
        raise ExportError(f"{p}: not a weight file (expected an .npz or a PyTorch state_dict zip); "
                          "PyTorch's legacy non-zip format needs torch: re-save it with torch.save")
    with zipfile.ZipFile(p) as z:
        names = z.namelist()
    if any(n.endswith("data.pkl") for n in names):
        return read_torch_state_dict(p)
    if "__ctrain_meta__.npy" in names:
        arrays, _ = checkpoint.load(p)
        return collections.OrderedDict(sorted(arrays.items(), key=lambda kv: _natural(kv[0])))
    with np.load(p, allow_pickle=False) as z:
        return collections.OrderedDict((k, z[k]) for k in z.files)


def _natural(s):
    import re
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _weight_pairs(arrays, source, fold_bn=True):
    """([(weight name, weight, bias name, bias)] in layer order, [(BN prefix, BN leaves)])."""
    keys = list(arrays)
    for wfmt, bfmt in (("float_w{}", "float_b{}"), ("w{}", "b{}")):
        if wfmt.format(0) in arrays and all(np.issubdtype(arrays[k].dtype, np.floating)
                                            for k in keys if k.startswith(wfmt[:-2])):
            out, j = [], 0
            while wfmt.format(j) in arrays:
                bn = bfmt.format(j)
                out.append((wfmt.format(j), arrays[wfmt.format(j)], bn, arrays.get(bn)))
                j += 1
            bns, k = [], 0
            while f"float_bn_mean{k}" in arrays:
                bns.append((f"bn{k}", {leaf: arrays[f"float_bn_{name}{k}"] for leaf, name in
                                        (("weight", "gamma"), ("bias", "beta"), ("running_mean", "mean"),
                                         ("running_var", "var")) if f"float_bn_{name}{k}" in arrays}))
                k += 1
            return out, bns
    # PyTorch-style: group by module prefix in state_dict order
    modules = collections.OrderedDict()
    for k in keys:
        prefix, _, leaf = k.rpartition(".")
        modules.setdefault(prefix, {})[leaf] = arrays[k]
    out, bns = [], []
    for prefix, leaves in modules.items():
        if "running_mean" in leaves:  # BatchNorm: the model's own, or folded into the layer before it
            if not fold_bn:
                bns.append((prefix, leaves))
            elif not out:
                raise ExportError(f"{_label(source)}: BatchNorm {prefix} comes before any Conv2d/Linear")
            else:
                out[-1] = _fold_bn(out[-1], leaves, prefix, source)
            continue
        w = leaves.get("weight")
        if w is None or np.asarray(w).ndim not in (2, 4):
            if w is not None:
                raise ExportError(f"{_label(source)}: {prefix}.weight has shape {np.shape(w)}; "
                                  "only Conv2d (4-D) and Linear (2-D) weights map onto the accelerator")
            continue
        out.append((f"{prefix}.weight", w, f"{prefix}.bias", leaves.get("bias")))
    return out, bns


def _fold_bn(pair, bn, prefix, source, eps=1e-5):
    wname, w, bname, b = pair
    w = np.asarray(w, np.float64)
    gamma = np.asarray(bn.get("weight", np.ones_like(bn["running_mean"])), np.float64)
    beta = np.asarray(bn.get("bias", np.zeros_like(bn["running_mean"])), np.float64)
    mean, var = np.asarray(bn["running_mean"], np.float64), np.asarray(bn["running_var"], np.float64)
    if mean.shape != (w.shape[0],):
        raise ExportError(f"{_label(source)}: BatchNorm {prefix} has {mean.size} channels after "
                          f"{wname} with {w.shape[0]}")
    scale = gamma / np.sqrt(var + eps)
    b = np.zeros(w.shape[0]) if b is None else np.asarray(b, np.float64)
    w = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
    return (f"{wname}+{prefix}", w.astype(np.float32), bname, ((b - mean) * scale + beta).astype(np.float32))


# -- PyTorch state_dict without torch -----------------------------------------------

_TORCH_DTYPES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "LongStorage": "<i8",
                 "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1",
                 "BoolStorage": "?", "BFloat16Storage": "bfloat16"}


class _StorageType:
    def __init__(self, name):
        self.name = name


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    size, stride = tuple(size), tuple(stride)
    if not size:
        return np.array(storage[offset])
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size, strides=[s * item for s in stride])
    return np.array(view)


def _rebuild_parameter(data, requires_grad=False, hooks=None, *rest):
    return data


class _TorchUnpickler(pickle.Unpickler):
    """Reads torch.save's data.pkl allowing only what a state_dict holds
    (OrderedDict, tensors, storages): nothing else from the file can run."""

    ALLOWED = {("collections", "OrderedDict"): collections.OrderedDict,
               ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
               ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
               ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter}

    def __init__(self, data, zf, prefix):
        super().__init__(io.BytesIO(data))
        self.zf, self.prefix = zf, prefix

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return self.ALLOWED[(module, name)]
        if module == "torch" and name in _TORCH_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a state_dict; refusing to load it "
                                     "(load the file with torch and pass the state_dict instead)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, stype, key, _location, numel = pid
        raw = self.zf.read(f"{self.prefix}data/{key}")
        dt = _TORCH_DTYPES[stype.name]
        if dt == "bfloat16":
            return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        return np.frombuffer(raw, dt)


def read_torch_state_dict(path):
    """A state_dict saved by torch.save (zip format, torch >= 1.6), as an
    OrderedDict of numpy arrays, without importing torch."""
    with zipfile.ZipFile(path) as zf:
        pkl = [n for n in zf.namelist() if n.endswith("data.pkl")]
        if len(pkl) != 1:
            raise ExportError(f"{path}: not a torch.save archive (no single data.pkl)")
        prefix = pkl[0][:-len("data.pkl")]
        try:
            byteorder = zf.read(prefix + "byteorder").decode()
        except KeyError:
            byteorder = "little"
        if byteorder != "little":
            raise ExportError(f"{path}: big-endian torch archives are not supported")
        try:
            obj = _TorchUnpickler(zf.read(pkl[0]), zf, prefix).load()
        except (pickle.UnpicklingError, KeyError, ValueError, EOFError) as exc:
            raise ExportError(f"{path}: cannot read as a PyTorch state_dict: {exc}") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ExportError(f"{path}: holds a {type(obj).__name__}, not a state_dict")
    return collections.OrderedDict((str(k), np.asarray(v)) for k, v in obj.items()
                                   if isinstance(v, np.ndarray))
