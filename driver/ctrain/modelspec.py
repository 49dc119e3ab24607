"""A model's architecture as JSON-able data, and back: what the model file
(docs/export.md) records so a model can be rebuilt without the code that
built it, and the per-stage descriptions its metadata lists."""
import dataclasses

from . import model as model_module
from .errors import ExportError
from .model import Conv2d, Sequential, geometry, has_bias, weight_shape


def model_spec(model):
    """The architecture: input shape and the layer list, each layer its class
    name and constructor arguments ({"type": "Conv2d", "in_channels": 1, ...})."""
    layers = []
    for layer in model.layers:
        if not dataclasses.is_dataclass(layer):
            raise ExportError(f"cannot describe layer {layer!r}")
        layers.append({"type": type(layer).__name__, **dataclasses.asdict(layer)})
    return {"input_shape": list(model.input_shape), "layers": layers}


def model_from_spec(spec):
    """Rebuild the Sequential that model_spec described."""
    layers = []
    for d in spec["layers"]:
        d = dict(d)
        cls = getattr(model_module, d.pop("type"), None)
        if cls is None or not dataclasses.is_dataclass(cls):
            raise ExportError(f"unknown layer type in model spec: {d}")
        layers.append(cls(**d))
    return Sequential(*layers, input_shape=tuple(spec["input_shape"]))


def param_stage_spec(st):
    """A Conv2d/Linear stage's geometry, as the model file's `layers` entries list it."""
    k, s, p = geometry(st)
    return {"index": st.param_index, "stage": st.index, "kind": "conv" if isinstance(st.layer, Conv2d) else "linear",
            "w_shape": list(weight_shape(st)), "bias": has_bias(st), "relu": bool(st.relu),
            "kernel": k, "stride": s, "pad": p, "in_shape": list(st.in_shape), "out_shape": list(st.out_shape)}


def bn_stage_spec(st):
    """A batch-norm stage, as the model file's `bn` entries list it."""
    return {"index": st.bn_index, "stage": st.index, "channels": int(st.in_shape[0]), "relu": bool(st.relu)}
