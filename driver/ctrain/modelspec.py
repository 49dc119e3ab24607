"""A model's architecture as JSON-able data, and back: what the model file
(docs/export.md) records so a model can be rebuilt without the code that
built it, and the per-stage descriptions its metadata lists."""
import dataclasses

from . import model as model_module
from .errors import ExportError
from .model import Conv2d, Sequential, geometry, has_bias, weight_shape


def model_spec(model):
    """The architecture: input shape and the layer list, each layer its class
    name and constructor arguments ({"type": "Conv2d", "in_channels": 1, ...});
    a field holding layers (a branch of a container layer) holds their specs."""
    return {"input_shape": list(model.input_shape), "layers": [_layer_spec(layer) for layer in model.layers]}


def model_from_spec(spec):
    """Rebuild the Sequential that model_spec described."""
    return Sequential(*[_layer_from(d) for d in spec["layers"]], input_shape=tuple(spec["input_shape"]))


def _layer_spec(layer):
    if not dataclasses.is_dataclass(layer) or isinstance(layer, type):
        raise ExportError(f"cannot describe layer {layer!r}")
    out = {"type": type(layer).__name__}
    for f in dataclasses.fields(layer):
        v = getattr(layer, f.name)
        if isinstance(v, (list, tuple)):
            v = [_layer_spec(x) if dataclasses.is_dataclass(x) else x for x in v]
        out[f.name] = v
    return out


def _layer_from(d):
    d = dict(d)
    cls = getattr(model_module, d.pop("type", None) or "", None)
    if cls is None or not dataclasses.is_dataclass(cls):
        raise ExportError(f"unknown layer type in model spec: {d}")
    for k, v in d.items():
        if isinstance(v, list):
            d[k] = [_layer_from(x) if isinstance(x, dict) and "type" in x else x for x in v]
    return cls(**d)


def param_stage_spec(st):
    """A Conv2d/Linear stage's geometry, as the model file's `layers` entries list it."""
    k, s, p = geometry(st)
    return {"index": st.param_index, "stage": st.index, "kind": "conv" if isinstance(st.layer, Conv2d) else "linear",
            "w_shape": list(weight_shape(st)), "bias": has_bias(st), "relu": bool(st.relu),
            "kernel": k, "stride": s, "pad": p, "in_shape": list(st.in_shape), "out_shape": list(st.out_shape)}


def bn_stage_spec(st):
    """A batch-norm stage, as the model file's `bn` entries list it."""
    return {"index": st.bn_index, "stage": st.index, "channels": int(st.in_shape[0]), "relu": bool(st.relu)}
