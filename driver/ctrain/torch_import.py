"""PyTorch <-> CTrain models (torch is optional: imported only when called).

`from_torch` converts an nn.Module built from the layers the accelerator maps
into a CTrain model plus its float weights (a warm start); `to_torch` builds
the PyTorch twin of a CTrain model (the fp32 reference of benchmarks/cifar.py
and of the conversion tests)."""
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
