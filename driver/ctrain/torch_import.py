"""PyTorch <-> CTrain models (torch is optional: imported only when called).

`from_torch` converts an nn.Module built from the layers the accelerator maps
into a CTrain model plus its float weights (a warm start); `to_torch` builds
the PyTorch twin of a CTrain model (the fp32 reference of benchmarks/cifar.py
and of the conversion tests)."""
import sys

import numpy as np

from .errors import MappingError
from . import model as M


def _torch():
    try:
        import torch
    except ImportError:
        raise MappingError("PyTorch is not installed: pip install torch (an optional dependency)") from None
    return torch


# -- CTrain -> PyTorch ---------------------------------------------------------------

def _torch_layer(nn, layer):
    if isinstance(layer, M.Conv2d):
        return nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                         layer.padding, bias=layer.bias)
    if isinstance(layer, M.Linear):
        return nn.Linear(layer.in_features, layer.out_features, bias=layer.bias)
    if isinstance(layer, M.BatchNorm2d):
        return nn.BatchNorm2d(layer.num_features, eps=layer.eps, momentum=layer.momentum)
    if isinstance(layer, M.ReLU):
        return nn.ReLU()
    if isinstance(layer, M.MaxPool2d):
        return nn.MaxPool2d(layer.kernel_size, layer.stride)
    if isinstance(layer, M.Flatten):
        return nn.Flatten()
    raise MappingError(f"to_torch: no PyTorch twin for {type(layer).__name__}")


def to_torch(model, net=None):
    """The PyTorch nn.Module computing what `model` computes in float, with the
    weights and batch-norm state of `net` (a FloatNet) when given."""
    torch = _torch()
    nn = torch.nn
    mods = [_torch_layer(nn, layer) for layer in model.layers]
    seq = nn.Sequential(*mods)
    if net is not None:
        load_into_torch(seq, model, net)
    return seq


def param_modules(module):
    """The Conv2d/Linear and BatchNorm2d modules of a to_torch module, in order."""
    torch = _torch()
    nn = torch.nn
    params = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    bns = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    return params, bns


def load_into_torch(module, model, net):
    """Copy a FloatNet's weights and batch-norm state into a to_torch module."""
    torch = _torch()
    params, bns = param_modules(module)
    with torch.no_grad():
        for m, p in zip(params, net.params):
            m.weight.copy_(torch.from_numpy(p["w"].reshape(m.weight.shape)))
            if p["b"] is not None:
                m.bias.copy_(torch.from_numpy(p["b"]))
        for m, b in zip(bns, net.bn):
            m.weight.copy_(torch.from_numpy(b["gamma"]))
            m.bias.copy_(torch.from_numpy(b["beta"]))
            m.running_mean.copy_(torch.from_numpy(b["mean"]))
            m.running_var.copy_(torch.from_numpy(b["var"]))


# -- PyTorch -> CTrain ---------------------------------------------------------------

SUPPORTED = ("Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d(1)", "Linear",
             "Flatten", "Identity", "torchvision BasicBlock")


def _pair(v, what, where):
    """An int from an int or a pair of equal ints (the accelerator's windows are square)."""
    if isinstance(v, (tuple, list)):
        if len(set(v)) != 1:
            raise MappingError(f"{where}: {what} {tuple(v)} is not square; the accelerator maps square windows")
        v = v[0]
    if not isinstance(v, int):
        raise MappingError(f"{where}: {what} {v!r} is not supported (an int is)")
    return v


class _Converter:
    """Walks the traced graph of a module, building CTrain layers and their weights."""

    def __init__(self, torch, gm):
        self.torch, self.nn, self.gm = torch, torch.nn, gm
        self.layers, self.params, self.bn = [], [], []

    def module(self, name, mod, in_shape, out_shape):
        nn = self.nn
        where = f"layer {name!r} ({type(mod).__name__})"
        if isinstance(mod, nn.Conv2d):
            if mod.groups != 1 or _pair(mod.dilation, "dilation", where) != 1:
                raise MappingError(f"{where}: grouped or dilated convolution is not supported")
            if mod.padding_mode != "zeros" or isinstance(mod.padding, str):
                raise MappingError(f"{where}: padding {mod.padding!r} ({mod.padding_mode}) is not supported; "
                                   "use an int (zero padding)")
            layer = M.Conv2d(mod.in_channels, mod.out_channels, _pair(mod.kernel_size, "kernel", where),
                             _pair(mod.stride, "stride", where), _pair(mod.padding, "padding", where),
                             bias=mod.bias is not None)
            self._weights(mod, mod.weight.shape)
        elif isinstance(mod, nn.Linear):
            layer = M.Linear(mod.in_features, mod.out_features, bias=mod.bias is not None)
            self._weights(mod, (mod.out_features, mod.in_features, 1, 1))
        elif isinstance(mod, nn.BatchNorm2d):
            if not mod.track_running_stats or mod.running_mean is None:
                raise MappingError(f"{where}: needs running statistics (track_running_stats=True)")
            c = mod.num_features
            layer = M.BatchNorm2d(c, eps=float(mod.eps), momentum=float(mod.momentum or 0.1))
            self.bn.append({"gamma": _np(mod.weight) if mod.affine else np.ones(c, np.float32),
                            "beta": _np(mod.bias) if mod.affine else np.zeros(c, np.float32),
                            "mean": _np(mod.running_mean), "var": _np(mod.running_var)})
        elif isinstance(mod, nn.ReLU):
            layer = M.ReLU()
        elif isinstance(mod, nn.MaxPool2d):
            if (_pair(mod.padding, "padding", where) or _pair(mod.dilation, "dilation", where) != 1
                    or mod.ceil_mode):
                raise MappingError(f"{where}: padding, dilation and ceil_mode are not supported")
            k = _pair(mod.kernel_size, "kernel", where)
            layer = M.MaxPool2d(k, _pair(mod.stride if mod.stride is not None else k, "stride", where))
        elif isinstance(mod, nn.AdaptiveAvgPool2d):
            if _pair(mod.output_size, "output size", where) != 1:
                raise MappingError(f"{where}: only AdaptiveAvgPool2d(1) (global average pooling) is supported")
            layer = self._avgpool(where, in_shape[-1], in_shape[-1], in_shape)
        elif isinstance(mod, nn.AvgPool2d):
            if _pair(mod.padding, "padding", where) or mod.ceil_mode:
                raise MappingError(f"{where}: padding and ceil_mode are not supported")
            k = _pair(mod.kernel_size, "kernel", where)
            layer = self._avgpool(where, k, _pair(mod.stride if mod.stride is not None else k, "stride", where),
                                  in_shape)
        elif isinstance(mod, nn.Flatten):
            if mod.start_dim != 1 or mod.end_dim != -1:
                raise MappingError(f"{where}: only Flatten(start_dim=1) is supported")
            layer = M.Flatten()
        elif isinstance(mod, nn.Identity):
            return
        else:
            raise MappingError(f"{where}: not supported; the accelerator maps {', '.join(SUPPORTED)}")
        if layer is not None:
            self.layers.append(layer)

    def _avgpool(self, where, k, stride, in_shape):
        if k == 1 and stride == 1 or tuple(in_shape[-2:]) == (1, 1):
            return None  # a 1x1 average is the identity
        avg = getattr(M, "AvgPool2d", None)
        if avg is None:
            raise MappingError(f"{where}: average pooling over {k}x{k} needs the AVGPOOL operation, "
                               "not in this version")
        return avg(k, stride)

    def _weights(self, mod, shape):
        self.params.append({"w": np.ascontiguousarray(_np(mod.weight).reshape(shape)),
                            "b": None if mod.bias is None else _np(mod.bias)})


def _np(t):
    return t.detach().cpu().numpy().astype(np.float32).copy()


def from_torch(module, input_shape):
    """A CTrain model computing what `module` computes (in eval mode), with
    its weights and batch-norm statistics as the initial state (a warm start).

    `module` may be any nn.Module whose forward torch.fx can trace into a
    chain of the supported layers (SUPPORTED; torch.flatten/x.view(n, -1) and
    F.relu count as Flatten and ReLU). `input_shape` is (C, H, W). Anything
    else is refused with one line naming the layer."""
    torch = _torch()
    import operator
    from torch import fx
    from torch.fx.passes.shape_prop import ShapeProp
    F = torch.nn.functional
    input_shape = tuple(int(v) for v in input_shape)
    if not isinstance(module, torch.nn.Module):
        raise MappingError(f"from_torch: {type(module).__name__} is not a torch.nn.Module")
    try:
        gm = fx.symbolic_trace(module)
    except Exception as exc:
        raise MappingError(f"from_torch: cannot trace {type(module).__name__}'s forward with torch.fx: "
                           f"{type(exc).__name__}: {exc}") from None
    was_training = module.training
    try:
        module.eval()
        ShapeProp(gm).propagate(torch.zeros((1,) + input_shape))
    except Exception as exc:
        raise MappingError(f"from_torch: {type(module).__name__} does not run on input {input_shape}: "
                           f"{type(exc).__name__}: {exc}") from None
    finally:
        module.train(was_training)
    conv = _Converter(torch, gm)
    tail = None

    def shape(node):
        meta = node.meta.get("tensor_meta")
        return tuple(meta.shape[1:]) if meta is not None and hasattr(meta, "shape") else None

    def chained(node, where):
        if not node.args or node.args[0] is not tail:
            raise MappingError(f"{where}: not a chain of layers (its input is {node.args[0] if node.args else None}"
                               f", the previous layer's output is {tail}); only sequential models convert")
    for node in gm.graph.nodes:
        where = f"operation {node.name!r} ({node.target if isinstance(node.target, str) else getattr(node.target, '__name__', node.target)})"
        if node.op == "placeholder":
            if tail is not None:
                raise MappingError(f"from_torch: the model takes more than one input ({node.name})")
            tail = node
        elif node.op == "call_module":
            chained(node, f"layer {node.target!r}")
            conv.module(node.target, gm.get_submodule(node.target), shape(node.args[0]), shape(node))
            tail = node
        elif node.op == "call_method" and node.target == "size":
            continue  # x.size(0) of a view(x.size(0), -1)
        elif node.op in ("call_function", "call_method"):
            chained(node, where)
            fn = node.target
            if fn in (torch.relu, F.relu, "relu"):
                conv.layers.append(M.ReLU())
            elif fn in (torch.flatten, "flatten"):
                start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
                if start != 1 or len(node.args) > 2 or node.kwargs.get("end_dim", -1) != -1:
                    raise MappingError(f"{where}: only flatten from dimension 1 is supported")
                conv.layers.append(M.Flatten())
            elif fn in ("view", "reshape", torch.reshape) and len(shape(node) or ()) == 1:
                conv.layers.append(M.Flatten())
            elif fn in (operator.getitem,):
                raise MappingError(f"{where}: indexing is not supported")
            else:
                raise MappingError(f"{where}: not supported; the accelerator maps {', '.join(SUPPORTED)}")
            tail = node
        elif node.op == "output":
            if node.args[0] is not tail:
                raise MappingError("from_torch: the output is not the last layer's (one tensor, the logits)")
        else:
            raise MappingError(f"{where}: {node.op} is not supported in forward")
    model = M.Sequential(*conv.layers, input_shape=input_shape)
    model.initial_state = (conv.params, conv.bn)
    return model


def _convert(obj, input_shape):
    """model.CONVERTERS entry: an nn.Module converts, anything else is not ours."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(obj, torch.nn.Module):
        return None
    return from_torch(obj, input_shape)


M.CONVERTERS.append(_convert)
