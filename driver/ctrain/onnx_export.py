"""ONNX export of a trained model (docs/export.md, "ONNX"): opset 13, one
float32 input `image` [N, C, H, W] in [0, 1] and one output `logits`
[N, classes] equal to the emulator's dequantized int8 logits. Two encodings
of the same network:

- `exact` (default): plain ONNX with dequantized weights (int8 * 2^e as
  float32) and the accelerator's requantization spelled out after every layer
  as Mul(2^-s), Add(0.5), Floor, Clip(-127, 127), Mul(2^e): round half up and
  symmetric saturation exactly as docs/numeric.md. Every sum of int8 products
  is an integer in units of 2^e_acc; where each stays below FLOAT32_EXACT
  float32 holds it exactly in any order (checked per layer; `exact_float32`
  in the metadata).
- `qdq`: the standard ONNX quantization format (QONNX/QDQ style):
  int8 weight initializers through DequantizeLinear, activations through
  QuantizeLinear/DequantizeLinear pairs with power-of-two scales and zero
  point 0. Runtimes may fuse these into integer kernels; QuantizeLinear
  rounds half to even and saturates at -128, so an exact tie can differ from
  the accelerator by one LSB.

A float model exports as a plain float graph."""
import collections
import json
import os

import numpy as np

from .errors import ExportError
from .fixedpoint import FLOAT32_EXACT, rshift_round
from .model import geometry
from .model_file import FORMAT, VERSION, ExportedModel, export_state, load_model

__all__ = ["to_onnx", "onnx_predict"]

#: The two encodings (the module docstring), the default first.
STYLES = ("exact", "qdq")

def to_onnx(source, path=None, style=STYLES[0], opset=13):
    """An ONNX model of the forward pass (the module docstring says what the
    two styles compute). `source`: an
    ExportedModel, a model-file path or a Trainer. Returns the
    onnx.ModelProto, also written to `path` when given."""
    import onnx

    if style not in STYLES:
        raise ExportError(f"unknown ONNX style {style!r}; choose {' or '.join(STYLES)}")
    em = _exported(source)
    model = em.model
    unsupported = sorted({st.kind for st in model.stages} - set(STAGES))
    if unsupported:
        raise ExportError(f"ONNX export covers {', '.join(STAGES)} stages; this model has "
                          f"{' and '.join(unsupported)} stages: export the model file instead")
    g = _Graph(em, style)
    x = g.requant("image", em.meta["input_exp"], "input") if g.fixed else "image"
    for st in model.stages:
        x = ONNX_WRITERS[st.kind](g, st, x)
    onnx_model = g.finish(x, opset)
    onnx.checker.check_model(onnx_model)
    if path is not None:
        onnx.save(onnx_model, os.fspath(path))
    return onnx_model


def _exported(source):
    if isinstance(source, ExportedModel):
        return source
    if isinstance(source, (str, os.PathLike)):
        return load_model(source)
    arrays, meta = export_state(source)
    return ExportedModel(arrays, meta)


class _Graph:
    """The ONNX graph being written: nodes and initializers with unique
    names, the requantization of the chosen style, and whether every sum
    stays exact in float32 (`exact`)."""

    def __init__(self, em, style):
        from onnx import helper, numpy_helper
        self.helper, self.numpy_helper = helper, numpy_helper
        self.em, self.meta, self.arrays, self.style = em, em.meta, em.arrays, style
        self.fixed = em.fixed_point
        self.layers = {d["index"]: d for d in self.meta["layers"]}
        self.bn_meta = {d["index"]: d for d in self.meta.get("bn", [])}
        self.nodes, self.inits = [], []
        self.counter = collections.Counter()
        self.exact = True

    def name(self, base):
        self.counter[base] += 1
        return f"{base}_{self.counter[base]}"

    def const(self, base, value, dtype=np.float32):
        n = self.name(base)
        self.inits.append(self.numpy_helper.from_array(np.asarray(value, dtype), n))
        return n

    def node(self, op, inputs, base, **attrs):
        out = self.name(base)
        self.nodes.append(self.helper.make_node(op, inputs, [out], name=out + "_node", **attrs))
        return out

    def requant(self, x, e, base):
        """x (float, multiples of some 2^e_acc) -> int8 grid at exponent e, dequantized."""
        if self.style == "qdq":
            scale, zp = self.const(base + "_scale", 2.0 ** e), self.const(base + "_zp", 0, np.int8)
            q = self.node("QuantizeLinear", [x, scale, zp], base + "_q")
            return self.node("DequantizeLinear", [q, scale, zp], base + "_dq")
        y = self.node("Mul", [x, self.const(base + "_inv", 2.0 ** -e)], base + "_scaled")
        y = self.node("Add", [y, self.const("half", 0.5)], base + "_biased")
        y = self.node("Floor", [y], base + "_floor")
        y = self.node("Clip", [y, self.const("qmin", -127.0), self.const("qmax", 127.0)], base + "_sat")
        return self.node("Mul", [y, self.const(base + "_step", 2.0 ** e)], base + "_deq")

    def dequant(self, base, q, scale_exp, dtype):
        """An integer initializer `q` through DequantizeLinear at scale 2^scale_exp (qdq)."""
        return self.node("DequantizeLinear", [self.const(f"{base}_int{np.dtype(dtype).itemsize * 8}", q, dtype),
                                              self.const(f"{base}_scale", 2.0 ** scale_exp),
                                              self.const(f"{base}_zp", 0, dtype)], base)

    def finish(self, x, opset):
        """The model: `x` flattened as `logits`, the graph's metadata."""
        from onnx import TensorProto
        helper, model, meta = self.helper, self.em.model, self.meta
        out = self.node("Flatten", [x], "logits_flat", axis=1)
        self.nodes.append(helper.make_node("Identity", [out], ["logits"], name="logits_node"))
        c, h, w_ = model.input_shape
        graph = helper.make_graph(
            self.nodes, "ctrain",
            [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", c, h, w_])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", model.num_classes])],
            initializer=self.inits)
        onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                       producer_name="ctrain", producer_version=str(VERSION))
        onnx_model.ir_version = 8  # readable by onnxruntime >= 1.10 (older boards' images)
        fixed = self.fixed
        props = {"ctrain_format": FORMAT, "ctrain_style": self.style if fixed else "float",
                 "ctrain_fixed_point": str(fixed),
                 "ctrain_exact_float32": str(bool(self.exact) if fixed else "n/a"),
                 "ctrain_model": json.dumps(meta["model"])}
        if fixed:
            props["ctrain_act_exp"] = json.dumps(meta["act_exp"])
        for k, v in props.items():
            entry = onnx_model.metadata_props.add()
            entry.key, entry.value = k, v
        return onnx_model


# --- per stage kind: its nodes, from the tensor x; returns the output tensor ---

def _write_pool(g, st, x):
    k, s, _ = geometry(st)
    return g.node("MaxPool", [x], f"pool{st.index}", kernel_shape=[k, k], strides=[s, s])


def _write_relu(g, st, x):
    return g.node("Relu", [x], f"relu{st.index}")


def _write_bn(g, st, x):
    d = g.bn_meta[st.bn_index]
    k, c = d["index"], d["channels"]
    if g.fixed:
        e_acc = d["e_in"] + d["e_a"]
        a_q = g.arrays[f"bnA{k}"].astype(np.int64)
        b_q = rshift_round(g.arrays[f"bnB{k}"].astype(np.int64), e_acc - d["e_b"])
        g.exact &= 127 * int(np.max(np.abs(a_q), initial=0)) + int(np.max(np.abs(b_q), initial=0)) \
            < FLOAT32_EXACT
        if g.style == "qdq":
            a = g.dequant(f"bnA{k}", a_q.reshape(c, 1, 1), d["e_a"], np.int32)
            b = g.dequant(f"bnB{k}", np.clip(b_q, -2**31 + 1, 2**31 - 1).reshape(c, 1, 1), e_acc, np.int32)
        else:
            a = g.const(f"bnA{k}", (a_q * 2.0 ** d["e_a"]).reshape(c, 1, 1))
            b = g.const(f"bnB{k}", (b_q * 2.0 ** e_acc).reshape(c, 1, 1))
    else:
        a = g.const(f"bn_scale{k}", g.arrays[f"float_bn_scale{k}"].reshape(c, 1, 1))
        b = g.const(f"bn_shift{k}", g.arrays[f"float_bn_shift{k}"].reshape(c, 1, 1))
    y = g.node("Add", [g.node("Mul", [x, a], f"bn{k}_mul"), b], f"bn{k}")
    if d["relu"]:
        y = g.node("Relu", [y], f"relu{st.index}")
    return g.requant(y, d["e_out"], f"act{st.index + 1}") if g.fixed else y


def _param_tensors(g, j, d):
    """(weights, bias) tensor names of param layer j: the int8 weights and the
    int32 bias at their exponents (fixed point), else the float weights."""
    ws = tuple(d["w_shape"])
    # a Linear is [out, c, h, w] (tiled when c*h*w exceeds an instruction's
    # channels, else h = w = 1): Gemm's [out, c*h*w], in Flatten's order
    shape = ws if d["kind"] == "conv" else (ws[0], int(np.prod(ws[1:])))
    if not g.fixed:
        bf = g.arrays.get(f"float_b{j}")
        return (g.const(f"w{j}", g.arrays[f"float_w{j}"].reshape(shape)),
                g.const(f"b{j}", bf if bf is not None else np.zeros(ws[0], np.float32)))
    e_w, e_m, e_acc = d["e_w"], d["e_m"], d["e_in"] + d["e_w"]
    q = g.arrays[f"w{j}"].astype(np.int64)
    bias_q = (rshift_round(g.arrays[f"bias{j}"].astype(np.int64), e_acc - e_m)
              if d["bias"] else np.zeros(ws[0], np.int64))
    worst = int(np.prod(ws[1:])) * 127 * 127 + int(np.max(np.abs(bias_q), initial=0))
    g.exact &= worst < FLOAT32_EXACT
    if g.style == "qdq":  # (the scale's initializer before the integers', as the graphs always had)
        w_scale = g.const(f"w{j}_scale", 2.0 ** e_w)
        w_q = g.const(f"w{j}_int8", q.reshape(shape), np.int8)
        w = g.node("DequantizeLinear", [w_q, w_scale, g.const(f"w{j}_zp", 0, np.int8)], f"w{j}")
        b_scale = g.const(f"b{j}_scale", 2.0 ** e_acc)
        b_q = g.const(f"b{j}_int32", np.clip(bias_q, -2**31 + 1, 2**31 - 1), np.int32)
        return w, g.node("DequantizeLinear", [b_q, b_scale, g.const(f"b{j}_zp", 0, np.int32)], f"b{j}")
    return g.const(f"w{j}", (q * 2.0 ** e_w).reshape(shape)), g.const(f"b{j}", bias_q * 2.0 ** e_acc)


def _write_param(g, st, x):
    j = st.param_index
    d = g.layers[j]
    w, b = _param_tensors(g, j, d)
    if d["kind"] == "conv":
        k, s, p = d["kernel"], d["stride"], d["pad"]
        y = g.node("Conv", [x, w, b], f"conv{j}", kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p])
    else:
        flat = g.node("Flatten", [x], f"flatten{j}", axis=1)
        y = g.node("Gemm", [flat, w, b], f"fc{j}", transB=1)
        y = g.node("Reshape", [y, g.const(f"shape{j}", [-1, d["w_shape"][0], 1, 1], np.int64)], f"fc{j}_4d")
    if d["relu"]:
        y = g.node("Relu", [y], f"relu{st.index}")
    return g.requant(y, d["e_out"], f"act{st.index + 1}") if g.fixed else y


#: Stage kind (model.lower) -> its ONNX writer(graph, stage, x) -> output tensor.
#: A stage kind without a row is refused with a message naming it.
ONNX_WRITERS = {"param": _write_param, "pool": _write_pool, "relu": _write_relu, "bn": _write_bn}
#: the stage kinds the graph builder writes
STAGES = tuple(ONNX_WRITERS)


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


