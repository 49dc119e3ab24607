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

#: the stage kinds (model.lower) the graph builder below writes
STAGES = ("param", "pool", "relu", "bn")


def to_onnx(source, path=None, style="exact", opset=13):
    """An ONNX model of the forward pass (the module docstring says what the
    two styles compute). `source`: an
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
    unsupported = sorted({st.kind for st in model.stages} - set(STAGES))
    if unsupported:
        raise ExportError(f"ONNX export covers {', '.join(STAGES)} stages; this model has "
                          f"{' and '.join(unsupported)} stages: export the model file instead")
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
                    < FLOAT32_EXACT
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
            d_exact = worst < FLOAT32_EXACT
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


