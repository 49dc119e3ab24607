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
    if isinstance(layer, M.AvgPool2d):
        return nn.AvgPool2d(layer.kernel_size, layer.stride)
    if isinstance(layer, M.GlobalAvgPool2d):
        return nn.AdaptiveAvgPool2d(1)
    if isinstance(layer, M.Residual):
        return _residual(nn)(nn.Sequential(*[_torch_layer(nn, x) for x in layer.body]),
                             nn.Sequential(*[_torch_layer(nn, x) for x in layer.shortcut]))
    raise MappingError(f"to_torch: no PyTorch twin for {type(layer).__name__}")


def _residual(nn):
    """body(x) + shortcut(x), the shortcut empty for the identity; body's
    modules come first, as the model's stages do."""
    class Residual(nn.Module):
        def __init__(self, body, shortcut):
            super().__init__()
            self.body, self.shortcut = body, shortcut

        def forward(self, x):
            return self.body(x) + self.shortcut(x)
    return Residual


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
             "Flatten", "Identity", "residual additions (torchvision's BasicBlock)")


def _pair(v, what, where):
    """An int from an int or a pair of equal ints (the accelerator's windows are square)."""
    if isinstance(v, (tuple, list)):
        if len(set(v)) != 1:
            raise MappingError(f"{where}: {what} {tuple(v)} is not square; the accelerator maps square windows")
        v = v[0]
    if not isinstance(v, int):
        raise MappingError(f"{where}: {what} {v!r} is not supported (an int is)")
    return v


def _np(t):
    return t.detach().cpu().numpy().astype(np.float32).copy()


class _Converter:
    """Walks the torch.fx graph of a module from its input, turning each node
    into a CTrain layer (weights kept by layer, ordered by the model's stages
    at the end) and each fork joined by an addition into a Residual."""

    def __init__(self, torch, gm):
        import operator
        self.torch, self.nn, self.gm = torch, torch.nn, gm
        self.weights, self.bn = {}, {}   # id(layer) -> {"w", "b"} / batch-norm state
        self.adds = {operator.add, operator.iadd, torch.add, "add", "add_"}

    # -- one node -------------------------------------------------------------
    def layer(self, node):
        """The CTrain layer of a node (None for an identity)."""
        if node.op == "call_module":
            return self.module(node.target, self.gm.get_submodule(node.target), node)
        if node.op in ("call_function", "call_method"):
            return self.function(node)
        raise MappingError(f"operation {node.name!r}: {node.op} {node.target} is not supported in forward")

    #: (torch.nn class name, the method mapping it), tried in this order; the
    #: methods return the CTrain layer, or None for one that computes nothing.
    _MODULES = (("Conv2d", "_conv2d"), ("Linear", "_linear"), ("BatchNorm2d", "_batchnorm2d"),
                ("ReLU", "_relu"), ("MaxPool2d", "_maxpool2d"), ("AdaptiveAvgPool2d", "_adaptive_avgpool2d"),
                ("AvgPool2d", "_avgpool2d"), ("Flatten", "_flatten"), ("Identity", "_identity"))

    def module(self, name, mod, node):
        """The CTrain layer for a call of module `mod`, by its class (_MODULES)."""
        where = f"layer {name!r} ({type(mod).__name__})"
        in_shape = _shape(node.args[0])
        for cls, method in self._MODULES:
            if isinstance(mod, getattr(self.nn, cls)):
                return getattr(self, method)(mod, where, in_shape)
        raise MappingError(f"{where}: not supported; the accelerator maps {', '.join(SUPPORTED)}")

    def _conv2d(self, mod, where, in_shape):
        """Zero-padded, ungrouped, undilated convolutions only: what the conv unit computes."""
        if mod.groups != 1 or _pair(mod.dilation, "dilation", where) != 1:
            raise MappingError(f"{where}: grouped or dilated convolution is not supported")
        if mod.padding_mode != "zeros" or isinstance(mod.padding, str):
            raise MappingError(f"{where}: padding {mod.padding!r} ({mod.padding_mode}) is not supported; "
                               "use an int (zero padding)")
        layer = M.Conv2d(mod.in_channels, mod.out_channels, _pair(mod.kernel_size, "kernel", where),
                         _pair(mod.stride, "stride", where), _pair(mod.padding, "padding", where),
                         bias=mod.bias is not None)
        self._weights(layer, mod, tuple(mod.weight.shape))
        return layer

    def _linear(self, mod, where, in_shape):
        """A Linear layer runs as a 1x1 convolution, so its weights gain two unit axes."""
        layer = M.Linear(mod.in_features, mod.out_features, bias=mod.bias is not None)
        self._weights(layer, mod, (mod.out_features, mod.in_features, 1, 1))
        return layer

    def _batchnorm2d(self, mod, where, in_shape):
        """Batch norm with its running statistics (needed for inference) and
        its affine parameters, identity ones when it has none."""
        if not mod.track_running_stats or mod.running_mean is None:
            raise MappingError(f"{where}: needs running statistics (track_running_stats=True)")
        c = mod.num_features
        layer = M.BatchNorm2d(c, eps=float(mod.eps), momentum=float(mod.momentum or 0.1))
        self.bn[id(layer)] = {"gamma": _np(mod.weight) if mod.affine else np.ones(c, np.float32),
                              "beta": _np(mod.bias) if mod.affine else np.zeros(c, np.float32),
                              "mean": _np(mod.running_mean), "var": _np(mod.running_var)}
        return layer

    def _relu(self, mod, where, in_shape):
        """ReLU has no settings to check."""
        return M.ReLU()

    def _maxpool2d(self, mod, where, in_shape):
        """Unpadded, undilated, floor-mode max pooling: what the pool unit computes."""
        if (_pair(mod.padding, "padding", where) or _pair(mod.dilation, "dilation", where) != 1
                or mod.ceil_mode):
            raise MappingError(f"{where}: padding, dilation and ceil_mode are not supported")
        k = _pair(mod.kernel_size, "kernel", where)
        return M.MaxPool2d(k, _pair(mod.stride if mod.stride is not None else k, "stride", where))

    def _adaptive_avgpool2d(self, mod, where, in_shape):
        """Global average pooling only; none at all on a 1x1 input, where it computes nothing."""
        if _pair(mod.output_size, "output size", where) != 1:
            raise MappingError(f"{where}: only AdaptiveAvgPool2d(1) (global average pooling) is supported")
        return None if in_shape[-2:] == (1, 1) else M.GlobalAvgPool2d()

    def _avgpool2d(self, mod, where, in_shape):
        """Unpadded, floor-mode average pooling; none at all for a 1x1 window of stride 1."""
        if _pair(mod.padding, "padding", where) or mod.ceil_mode:
            raise MappingError(f"{where}: padding and ceil_mode are not supported")
        k = _pair(mod.kernel_size, "kernel", where)
        stride = _pair(mod.stride if mod.stride is not None else k, "stride", where)
        return None if (k, stride) == (1, 1) else M.AvgPool2d(k, stride)

    def _flatten(self, mod, where, in_shape):
        """Flatten of everything but the batch: the only one a CTrain model has."""
        if mod.start_dim != 1 or mod.end_dim != -1:
            raise MappingError(f"{where}: only Flatten(start_dim=1) is supported")
        return M.Flatten()

    def _identity(self, mod, where, in_shape):
        """Identity computes nothing: no layer."""
        return None

    def function(self, node):
        torch, F = self.torch, self.torch.nn.functional
        fn = node.target
        where = f"operation {node.name!r} ({fn if isinstance(fn, str) else getattr(fn, '__name__', fn)})"
        if fn in (torch.relu, F.relu, "relu", "relu_"):
            return M.ReLU()
        if fn in (torch.flatten, "flatten"):
            start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            if start != 1 or len(node.args) > 2 or node.kwargs.get("end_dim", -1) != -1:
                raise MappingError(f"{where}: only flatten from dimension 1 is supported")
            return M.Flatten()
        if fn in ("view", "reshape", torch.reshape) and len(_shape(node) or ()) == 1:
            return M.Flatten()
        raise MappingError(f"{where}: not supported; the accelerator maps {', '.join(SUPPORTED)}")

    def _weights(self, layer, mod, shape):
        self.weights[id(layer)] = {"w": np.ascontiguousarray(_np(mod.weight).reshape(shape)),
                                   "b": None if mod.bias is None else _np(mod.bias)}

    # -- the graph ------------------------------------------------------------
    def is_add(self, node):
        return node.op in ("call_function", "call_method") and node.target in self.adds

    def users(self, node):
        """The nodes reading `node`, except x.size(...) calls (part of a view)."""
        return [u for u in node.users if not (u.op == "call_method" and u.target == "size")]

    def walk(self, cur, layers):
        """Append the layers after `cur` to `layers` until the chain reaches an
        addition it does not open (returned, with the node that feeds it) or
        the output (returned as (None, last node))."""
        while True:
            users = self.users(cur)
            if len(users) == 1:
                u = users[0]
                if u.op == "output" or self.is_add(u):
                    return (None if u.op == "output" else u), cur
                for arg in u.args[1:]:
                    if hasattr(arg, "op") and not (arg.op == "call_method" and arg.target == "size"):
                        raise MappingError(f"operation {u.name!r}: reads a second tensor ({arg.name}); "
                                           "only chains and residual additions convert")
                layer = self.layer(u)
                if layer is not None:
                    layers.append(layer)
                cur = u
            elif len(users) == 2:
                cur = self.fork(cur, users, layers)
            else:
                raise MappingError(f"operation {cur.name!r}: its output is read by {len(users)} operations; "
                                   "only chains and two-way residual forks convert")

    def fork(self, node, users, layers):
        """Two branches from `node` joined by one addition: a Residual."""
        branches = []
        for u in users:
            if self.is_add(u):
                branches.append(([], u, node))
                continue
            sub = []
            layer = self.layer(u)
            if layer is not None:
                sub.append(layer)
            join, last = self.walk(u, sub)
            branches.append((sub, join, last))
        (a, join_a, end_a), (b, join_b, end_b) = branches
        if join_a is None or join_a is not join_b or {id(x) for x in join_a.args[:2]} != {id(end_a), id(end_b)}:
            raise MappingError(f"operation {node.name!r}: a fork whose branches do not meet in one addition")
        body, shortcut = (a, b) if len(a) >= len(b) else (b, a)
        layers.append(M.Residual(body, shortcut))
        return join_a


def _shape(node):
    meta = getattr(node, "meta", {}).get("tensor_meta")
    return tuple(meta.shape[1:]) if meta is not None and hasattr(meta, "shape") else None


def from_torch(module, input_shape):
    """A CTrain model computing what `module` computes (in eval mode), with
    its weights and batch-norm statistics as the initial state (a warm start).

    `module` may be any nn.Module whose forward torch.fx can trace into a
    chain of the supported layers (SUPPORTED; torch.flatten, x.view(n, -1) and
    F.relu count as Flatten and ReLU), with two-way forks joined by an
    addition (a ResNet basic block, its shortcut the identity or a
    projection) becoming Residual layers. `input_shape` is (C, H, W).
    Anything else is refused with one line naming the layer."""
    torch = _torch()
    from torch import fx
    from torch.fx.passes.shape_prop import ShapeProp
    input_shape = tuple(int(v) for v in input_shape)
    if not isinstance(module, torch.nn.Module):
        raise MappingError(f"from_torch: {type(module).__name__} is not a torch.nn.Module")
    try:
        gm = fx.symbolic_trace(module)
    except Exception as exc:
        raise MappingError(f"from_torch: cannot trace {type(module).__name__}'s forward with torch.fx: "
                           f"{type(exc).__name__}: {exc}".splitlines()[0]) from None
    was_training = module.training
    try:
        module.eval()
        gm.eval()
        with torch.no_grad():
            ShapeProp(gm).propagate(torch.zeros((1,) + input_shape))
    except Exception as exc:
        raise MappingError(f"from_torch: {type(module).__name__} does not run on input {input_shape}: "
                           f"{type(exc).__name__}: {exc}".splitlines()[0]) from None
    finally:
        module.train(was_training)
    inputs = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        raise MappingError(f"from_torch: the model takes {len(inputs)} inputs; one image tensor is supported")
    conv = _Converter(torch, gm)
    layers = []
    join, last = conv.walk(inputs[0], layers)
    if join is not None:
        raise MappingError(f"operation {join.name!r}: an addition of tensors that are not two branches of a fork")
    out = next(n for n in gm.graph.nodes if n.op == "output")
    if out.args[0] is not last:
        raise MappingError("from_torch: the output is not the last layer's (one tensor, the logits)")
    model = M.Sequential(*layers, input_shape=input_shape)
    params = [conv.weights[id(st.layer)] for st in model.param_stages]
    bn = [conv.bn[id(st.layer)] for st in model.bn_stages]
    model.initial_state = (params, bn)
    return model


def _convert(obj, input_shape):
    """model.CONVERTERS entry: an nn.Module converts, anything else is not ours."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(obj, torch.nn.Module):
        return None
    return from_torch(obj, input_shape)


M.CONVERTERS.append(_convert)
