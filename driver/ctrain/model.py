"""Model definition: the layers the accelerator maps, composed into a layer
graph, and the named networks the CLI offers.

A model is a `Sequential` of layers; a `Residual` layer inside it (a body and
a shortcut, summed) makes the layer list a graph: lowering turns it into
stages in topological order, each reading the tensors named by its `inputs`
(tensor t is the network input for t = 0, else the output of stage t - 1).
Parameters live in float32 numpy arrays; the compiler lowers the stages
(conv/linear with fused ReLU, batch norm, pools, ReLU, residual add) to
instructions and the fixed-point runtime owns the int copies.

A user's own network is a function returning a model (docs/models.md):
`register_model(name, factory)`, or `--model package.module:function`."""
import importlib
import inspect
import os
import re
import sys
from dataclasses import dataclass, field

import numpy as np

from .errors import MappingError
from . import isa


@dataclass
class Conv2d:
    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    bias: bool = True


@dataclass
class Linear:
    in_features: int
    out_features: int
    bias: bool = True


@dataclass
class ReLU:
    pass


@dataclass
class _Window:
    """A k x k pooling window; the stride defaults to the window (PyTorch's rule)."""
    kernel_size: int = 2
    stride: int = None

    def __post_init__(self):
        if self.stride is None:
            self.stride = self.kernel_size


@dataclass
class MaxPool2d(_Window):
    """Max pooling, no padding."""


@dataclass
class AvgPool2d(_Window):
    """Average pooling, no padding: the mean of each k x k window (docs/numeric.md)."""


@dataclass
class GlobalAvgPool2d:
    """The mean of each channel's whole map (C x H x W -> C x 1 x 1), as
    PyTorch's AdaptiveAvgPool2d(1)."""


@dataclass
class Flatten:
    pass


@dataclass
class Residual:
    """out = body(x) + shortcut(x): the layer graph's branch and join.

    `body` and `shortcut` are lists of layers run on the same input; an empty
    shortcut is the identity. Both must give the same shape. A ReLU right
    after the Residual fuses into the add, as in a ResNet basic block. The
    backward pass needs no instruction for the add itself (both branches
    receive its output error); the error of the shared input is the sum of
    the two branches' errors (an ADD instruction, compiler.py)."""
    body: list
    shortcut: list = field(default_factory=list)


@dataclass
class BatchNorm2d:
    """Batch norm over channels. Trained with batch statistics in the float
    warm-up, then frozen: the accelerator applies it as a per-channel affine."""
    num_features: int
    eps: float = 1e-5
    momentum: float = 0.1


@dataclass
class Stage:
    """One unit of work on the accelerator after lowering.

    kind is "param" (Conv2d/Linear, ReLU fused when `relu`), "bn", "pool"
    (max), "avgpool", "relu" or "add" (ReLU fused when `relu`); in_shape /
    out_shape are per-sample (C, H, W); `inputs` are the tensors it reads
    (one; two for "add"); `geom` is (k_h, k_w, stride, pad) of a param or
    pool stage (a Linear runs as a convolution whose kernel covers its input
    map, 1x1 unless its width needs tiling)."""
    kind: str
    layer: object
    relu: bool
    in_shape: tuple
    out_shape: tuple
    index: int = 0          # position among stages
    param_index: int = -1   # position among param stages
    bn_index: int = -1      # position among batch-norm stages
    names: list = field(default_factory=list)  # source layer indices, for messages
    inputs: tuple = ()
    geom: tuple = (1, 1, 1, 0)


class Sequential:
    """A CNN as a list of layers (Residual layers make it a graph);
    `input_shape` is (C, H, W)."""

    def __init__(self, *layers, input_shape):
        self.layers = list(layers)
        self.input_shape = tuple(int(v) for v in input_shape)
        self.stages = lower(self.layers, self.input_shape)
        #: float weights and batch-norm state to start from instead of a random
        #: initialisation, ([{"w", "b"}], [{"gamma", "beta", "mean", "var"}])
        #: (set by ctrain.torch_import.from_torch)
        self.initial_state = None

    @property
    def param_stages(self):
        return [s for s in self.stages if s.kind == "param"]

    @property
    def bn_stages(self):
        return [s for s in self.stages if s.kind == "bn"]

    @property
    def num_classes(self):
        return int(np.prod(self.stages[-1].out_shape))

    def init_params(self, rng):
        """He-uniform weights, zero biases (what PyTorch's default approximates)."""
        params = []
        for st in self.param_stages:
            shape = weight_shape(st)
            fan_in = int(np.prod(shape[1:]))
            bound = np.sqrt(6.0 / fan_in)
            w = rng.uniform(-bound, bound, size=shape).astype(np.float32)
            b = np.zeros(shape[0], np.float32) if has_bias(st) else None
            params.append({"w": w, "b": b})
        return params

    def describe(self):
        rows = []
        for st in self.stages:
            name = type(st.layer).__name__ if st.layer is not None else st.kind
            if st.relu:
                name += "+ReLU"
            src = "" if st.inputs == (st.index,) else f"  <- {', '.join(f't{t}' for t in st.inputs)}"
            rows.append(f"{st.index:2d} {name:<14} {str(st.in_shape):>14} -> {st.out_shape}{src}")
        return "\n".join(rows)

    def consumers(self, t):
        """Stages reading tensor t, in order."""
        return [st for st in self.stages if t in st.inputs]


def has_bias(stage):
    return bool(stage.layer.bias)


def weight_shape(stage):
    """[c_out, c_in, k_h, k_w]; a Linear layer is a convolution whose kernel
    covers its input map (stage.in_shape): 1x1 on a 1x1 map unless tiled."""
    layer = stage.layer
    if isinstance(layer, Conv2d):
        k = layer.kernel_size
        return (layer.out_channels, layer.in_channels, k, k)
    return (layer.out_features,) + tuple(stage.in_shape)


def geometry(stage):
    """(k, stride, pad) of a param or pool stage with a square kernel (k_h
    for a tiled Linear, whose kernel is stage.geom)."""
    return stage.geom[0], stage.geom[2], stage.geom[3]


def linear_map(in_features, after_flatten=None):
    """(c, k_h, k_w) the features of a Linear are read as: a c x k_h x k_w map
    with a k_h x k_w kernel, so c*k_h*k_w carries the width (same bytes, same
    weights, row-major). 1x1 while the width fits the PE array's channels;
    beyond, the map that was flattened when it fits, else the factorisation
    with the smallest kernel. None when no factorisation fits the limits."""
    lim = isa.LIMITS
    if in_features <= lim["CH"]:
        return (in_features, 1, 1)
    if after_flatten is not None:
        c, h, w = after_flatten
        if c <= lim["CH"] and h <= lim["KERNEL"] and w <= lim["KERNEL"]:
            return tuple(after_flatten)
    best = None
    for kh in range(1, lim["KERNEL"] + 1):
        for kw in range(1, kh + 1):
            if in_features % (kh * kw) == 0 and in_features // (kh * kw) <= lim["CH"]:
                if best is None or kh * kw < best[1] * best[2]:
                    best = (in_features // (kh * kw), kh, kw)
    return best


def _normalise(layers):
    """Conv/Linear -> MaxPool -> ReLU becomes Conv/Linear -> ReLU -> MaxPool
    (max-pool and ReLU commute) so the ReLU fuses into the PE array's output."""
    out = list(layers)
    i = 0
    while i + 2 < len(out):
        a, b, c = out[i:i + 3]
        if isinstance(a, (Conv2d, Linear)) and isinstance(b, MaxPool2d) and isinstance(c, ReLU):
            out[i + 1], out[i + 2] = c, b
        i += 1
    return out


def _check_window(where, k, s, h, w, unit, k_max):
    lim = isa.LIMITS
    if not 1 <= k <= k_max or not 1 <= s <= lim["STRIDE"]:
        raise MappingError(f"{where}: {unit} {k}x{k} stride {s} is beyond the accelerator's "
                           f"1..{k_max} and 1..{lim['STRIDE']}")
    if h < k or w < k:
        raise MappingError(f"{where}: pool window {k}x{k} is larger than its input {h}x{w}")


class _Lowering:
    """Builds the stage list of a layer graph in topological order: each
    layer class's lowering (LOWERINGS) checks it against its input and the
    accelerator's limits and appends its stage."""

    def __init__(self):
        self.stages = []
        self.shapes = {}   # tensor -> (C, H, W)

    def stage(self, kind, layer, inputs, out, names, geom=(1, 1, 1, 0)):
        st = Stage(kind, layer, False, self.shapes[inputs[0]], tuple(out), names=[names],
                   inputs=tuple(inputs), geom=geom)
        st.index = len(self.stages)
        self.stages.append(st)
        self.shapes[st.index + 1] = st.out_shape
        return st.index + 1

    def sequence(self, layers, t, path):
        """Lower `layers` on tensor t; returns the output tensor. A ReLU fuses
        into the stage before it only when that stage was made here (at the
        start of a branch the input tensor feeds other consumers too)."""
        lim = isa.LIMITS
        at = _At(made_here=False, flat_from=None)
        for i, layer in enumerate(_normalise(layers)):
            name = f"{path}{i}"
            where = f"layer {name} ({type(layer).__name__})"
            lowering = next((LOWERINGS[c] for c in type(layer).__mro__ if c in LOWERINGS), None)
            if lowering is None:
                raise MappingError(f"{where}: the accelerator has no mapping for {type(layer).__name__}")
            t = lowering(self, layer, t, name, where, at)
            if isinstance(layer, Flatten):
                continue  # a flattened map keeps its tensor: Flatten moves no byte
            at.made_here, at.flat_from = True, None
            out = self.shapes[t]
            if max(out[1:]) > lim["DIM"] or out[0] > lim["CH"]:
                raise MappingError(f"{where}: output {out} is beyond the accelerator's limits")
        return t


@dataclass
class _At:
    """Where a sequence's lowering stands: whether the last stage was made in
    this sequence (a ReLU may fuse into it) and the map a Flatten just
    flattened (a Linear after it may read it back as a tiled map)."""
    made_here: bool
    flat_from: tuple


def _lower_conv(lo, layer, t, name, where, at):
    lim = isa.LIMITS
    c, h, w = lo.shapes[t]
    k, s, p = layer.kernel_size, layer.stride, layer.padding
    if layer.in_channels != c:
        raise MappingError(f"{where}: expects {layer.in_channels} input channels, gets {c}")
    if not 1 <= k <= lim["KERNEL"]:
        raise MappingError(f"{where}: kernel {k} is beyond the PE array's 1..{lim['KERNEL']}")
    if not 1 <= s <= lim["STRIDE"]:
        raise MappingError(f"{where}: stride {s} is beyond the PE array's 1..{lim['STRIDE']}")
    if not 0 <= p <= lim["PAD"] or p >= k:
        raise MappingError(f"{where}: padding {p} must be below the kernel size {k} and at most {lim['PAD']}")
    if h + 2 * p < k or w + 2 * p < k:
        raise MappingError(f"{where}: kernel {k}x{k} is larger than its padded input {h + 2 * p}x{w + 2 * p}")
    if not 1 <= layer.out_channels <= lim["CH"]:
        raise MappingError(f"{where}: {layer.out_channels} output channels beyond the limit {lim['CH']}")
    if c > lim["CH"]:
        raise MappingError(f"{where}: {c} input channels beyond the limit {lim['CH']}")
    out = (layer.out_channels, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
    return lo.stage("param", layer, (t,), out, name, (k, k, s, p))


def _lower_linear(lo, layer, t, name, where, at):
    lim = isa.LIMITS
    c, h, w = lo.shapes[t]
    if layer.in_features != c * h * w:
        raise MappingError(f"{where}: expects {layer.in_features} input features, gets {c}x{h}x{w} = {c * h * w}")
    if not 1 <= layer.out_features <= lim["CH"]:
        raise MappingError(f"{where}: {layer.out_features} outputs beyond the PE array's {lim['CH']} channels")
    m = linear_map(layer.in_features, at.flat_from if (h, w) == (1, 1) else (c, h, w))
    if m is None:
        raise MappingError(
            f"{where}: {layer.in_features} input features cannot be tiled as channels x k_h x k_w "
            f"within {lim['CH']} x {lim['KERNEL']} x {lim['KERNEL']}: no channel count up to {lim['CH']} "
            f"leaves a kernel of at most {lim['KERNEL']}x{lim['KERNEL']}")
    t_in, lo.shapes[t] = t, m  # the same bytes, read as the map the kernel covers
    t = lo.stage("param", layer, (t,), (layer.out_features, 1, 1), name, (m[1], m[2], 1, 0))
    lo.shapes[t_in] = (c, h, w)
    return t


def _lower_bn(lo, layer, t, name, where, at):
    c, h, w = lo.shapes[t]
    if layer.num_features != c:
        raise MappingError(f"{where}: normalises {layer.num_features} channels, gets {c}")
    return lo.stage("bn", layer, (t,), (c, h, w), name)


def _lower_relu(lo, layer, t, name, where, at):
    prev = lo.stages[-1] if at.made_here else None
    if prev is not None and prev.kind in FUSES_RELU and not prev.relu:
        prev.relu = True
        prev.names.append(name)
        return t
    return lo.stage("relu", layer, (t,), lo.shapes[t], name)


def _lower_maxpool(lo, layer, t, name, where, at):
    c, h, w = lo.shapes[t]
    k, s = layer.kernel_size, layer.stride
    _check_window(where, k, s, h, w, "pool", isa.LIMITS["KERNEL"])
    return lo.stage("pool", layer, (t,), (c, (h - k) // s + 1, (w - k) // s + 1), name, (k, k, s, 0))


def _lower_avgpool(lo, layer, t, name, where, at):
    c, h, w = lo.shapes[t]
    k, s = layer.kernel_size, layer.stride
    _check_window(where, k, s, h, w, "pool", isa.LIMITS["DIM"])
    return lo.stage("avgpool", layer, (t,), (c, (h - k) // s + 1, (w - k) // s + 1), name, (k, k, s, 0))


def _lower_global_avgpool(lo, layer, t, name, where, at):
    c, h, w = lo.shapes[t]
    return lo.stage("avgpool", layer, (t,), (c, 1, 1), name, (h, w, 1, 0))


def _lower_flatten(lo, layer, t, name, where, at):
    c, h, w = lo.shapes[t]
    if (h, w) != (1, 1):
        at.flat_from = (c, h, w)
    lo.shapes[t] = (c * h * w, 1, 1) if (h, w) != (1, 1) else (c, h, w)
    return t


def _lower_residual(lo, layer, t, name, where, at):
    if not layer.body:
        raise MappingError(f"{where}: the body is empty (the sum would add a tensor to itself)")
    t_body = lo.sequence(layer.body, t, f"{name}.body.")
    t_short = lo.sequence(layer.shortcut, t, f"{name}.shortcut.") if layer.shortcut else t
    if t_short == t and t_body == t:
        raise MappingError(f"{where}: both branches are the identity")
    if lo.shapes[t_body] != lo.shapes[t_short]:
        raise MappingError(f"{where}: body gives {lo.shapes[t_body]}, shortcut "
                           f"{lo.shapes[t_short]}: the sum needs equal shapes")
    return lo.stage("add", layer, (t_body, t_short), lo.shapes[t_body], name)


#: Layer class -> its lowering(lo, layer, t, name, where, at) -> output tensor:
#: checks the layer against its input shape and the accelerator's limits and
#: appends its stage (or fuses into the last one). A new layer kind is a row
#: here, and its stage kind a row of compiler.STAGE_EMITTERS.
LOWERINGS = {Conv2d: _lower_conv, Linear: _lower_linear, BatchNorm2d: _lower_bn, ReLU: _lower_relu,
             MaxPool2d: _lower_maxpool, AvgPool2d: _lower_avgpool, GlobalAvgPool2d: _lower_global_avgpool,
             Flatten: _lower_flatten, Residual: _lower_residual}
#: Stage kinds a following ReLU fuses into (their output goes through it).
FUSES_RELU = ("param", "bn", "add")


def lower(layers, input_shape):
    """Check every layer against its input shape and the accelerator's limits,
    and produce the stage list (topological order). Errors name the layer
    (its index; inside a Residual e.g. "3.body.1") and the problem."""
    shape = tuple(input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise MappingError(f"input shape {shape} must be (channels, height, width), all >= 1")
    lo = _Lowering()
    lo.shapes[0] = shape
    lo.sequence(layers, 0, "")
    stages = lo.stages
    if not stages or stages[-1].kind != "param":
        raise MappingError("the model must end with a Conv2d or Linear layer producing the logits")
    for j, st in enumerate(s for s in stages if s.kind == "param"):
        st.param_index = j
    for j, st in enumerate(s for s in stages if s.kind == "bn"):
        st.bn_index = j
    return stages


def error_needed(stages, freeze=0):
    """Per tensor: whether its error is needed, i.e. some stage producing it or
    an ancestor has trained parameters (the network input's never is; nor are
    those of the first `freeze` param layers, which stay fixed)."""
    needed = [False] * (len(stages) + 1)
    for st in stages:
        needed[st.index + 1] = ((st.kind == "param" and st.param_index >= freeze)
                                or any(needed[t] for t in st.inputs))
    return needed


def fused_relu(stage):
    """Whether a stage's output went through a fused ReLU (its errors need the mask)."""
    return stage is not None and stage.kind in FUSES_RELU and stage.relu


# --- named networks -------------------------------------------------------

def lenet5(input_shape=(1, 28, 28), num_classes=10):
    """LeNet-5 (LeCun et al. 1998) with ReLU and max-pooling, padded first conv."""
    c, h, w = input_shape
    pad = 2 if h == 28 else 0
    hh = ((h + 2 * pad - 4) // 2 - 4) // 2
    return Sequential(
        Conv2d(c, 6, 5, padding=pad), ReLU(), MaxPool2d(2),
        Conv2d(6, 16, 5), ReLU(), MaxPool2d(2),
        Flatten(),
        Linear(16 * hh * hh, 120), ReLU(),
        Linear(120, 84), ReLU(),
        Linear(84, num_classes),
        input_shape=input_shape)


def digits_cnn(input_shape=(1, 8, 8), num_classes=10):
    """A small CNN for the 8x8 digits: two 3x3 conv blocks and a classifier."""
    c, h, w = input_shape
    return Sequential(
        Conv2d(c, 16, 3, padding=1), ReLU(), MaxPool2d(2),
        Conv2d(16, 32, 3, padding=1), ReLU(), MaxPool2d(2),
        Flatten(),
        Linear(32 * (h // 4) * (w // 4), 64), ReLU(),
        Linear(64, num_classes),
        input_shape=input_shape)


def lenet5_bn(input_shape=(1, 28, 28), num_classes=10):
    """LeNet-5 with batch norm after each convolution."""
    c, h, w = input_shape
    pad = 2 if h == 28 else 0
    hh = ((h + 2 * pad - 4) // 2 - 4) // 2
    return Sequential(
        Conv2d(c, 6, 5, padding=pad, bias=False), BatchNorm2d(6), ReLU(), MaxPool2d(2),
        Conv2d(6, 16, 5, bias=False), BatchNorm2d(16), ReLU(), MaxPool2d(2),
        Flatten(),
        Linear(16 * hh * hh, 120), ReLU(),
        Linear(120, 84), ReLU(),
        Linear(84, num_classes),
        input_shape=input_shape)


def cnv(input_shape=(3, 32, 32), num_classes=10):
    """FINN's CNV topology (Umuroglu et al. 2017) with batch norm after each
    convolution: unpadded 3x3 convolutions 64, 64, max-pool, 128, 128,
    max-pool, 256, 256 (32x32 -> 1x1), then fully connected 512, 512 and the
    classifier."""
    c, h, w = input_shape

    def block(c_in, c_out):
        return [Conv2d(c_in, c_out, 3, bias=False), BatchNorm2d(c_out), ReLU()]
    layers = (block(c, 64) + block(64, 64) + [MaxPool2d(2)] + block(64, 128) + block(128, 128)
              + [MaxPool2d(2)] + block(128, 256) + block(256, 256))
    hh, ww = (((h - 4) // 2 - 4) // 2 - 4), (((w - 4) // 2 - 4) // 2 - 4)
    return Sequential(
        *layers, Flatten(),
        Linear(256 * hh * ww, 512), ReLU(),
        Linear(512, 512), ReLU(),
        Linear(512, num_classes),
        input_shape=input_shape)


def mlp(input_shape=(1, 28, 28), num_classes=10, hidden=128):
    c, h, w = input_shape
    return Sequential(Flatten(), Linear(c * h * w, hidden), ReLU(), Linear(hidden, num_classes),
                      input_shape=input_shape)


def vgg_small(input_shape=(3, 32, 32), num_classes=10):
    """A VGG-style network for 3x32x32 images: three blocks of two padded 3x3
    convolutions (64, 128, 256 channels) with batch norm and ReLU, each block
    ending in a 2x2 max-pool (32 -> 4), then fully connected 4096 -> 256 (a
    Linear wider than the PE array's channels: tiled as a 4x4 kernel over the
    256-channel map) and the classifier."""
    c, h, w = input_shape

    def block(c_in, c_out):
        return [Conv2d(c_in, c_out, 3, padding=1, bias=False), BatchNorm2d(c_out), ReLU()]
    layers = (block(c, 64) + block(64, 64) + [MaxPool2d(2)] + block(64, 128) + block(128, 128)
              + [MaxPool2d(2)] + block(128, 256) + block(256, 256) + [MaxPool2d(2)])
    return Sequential(*layers, Flatten(), Linear(256 * (h // 8) * (w // 8), 256), ReLU(),
                      Linear(256, num_classes), input_shape=input_shape)


def basic_block(c_in, c_out, stride=1):
    """ResNet's basic block (He et al. 2016): two 3x3 convolutions with batch
    norm, the first strided, added to the shortcut, then ReLU. The shortcut is
    the identity when the shape is kept, else a strided 1x1 convolution with
    batch norm (option B: the accelerator has no channel-padding op for
    option A's zero channels)."""
    body = [Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), BatchNorm2d(c_out), ReLU(),
            Conv2d(c_out, c_out, 3, padding=1, bias=False), BatchNorm2d(c_out)]
    shortcut = [] if stride == 1 and c_in == c_out else [
        Conv2d(c_in, c_out, 1, stride=stride, bias=False), BatchNorm2d(c_out)]
    return [Residual(body, shortcut), ReLU()]


def resnet20(input_shape=(3, 32, 32), num_classes=10):
    """The CIFAR ResNet-20 (He et al. 2016, section 4.2): a 3x3 convolution to
    16 channels, three stages of three basic blocks (16, 32, 64 channels; the
    first block of stages 2 and 3 halves the map), global average pooling and
    the classifier. 1x1 projection shortcuts where the shape changes (option
    B, see basic_block): 0.27M parameters."""
    c, h, w = input_shape
    layers = [Conv2d(c, 16, 3, padding=1, bias=False), BatchNorm2d(16), ReLU()]
    c_in = 16
    for c_out, stride in ((16, 1), (32, 2), (64, 2)):
        for b in range(3):
            layers += basic_block(c_in, c_out, stride if b == 0 else 1)
            c_in = c_out
    return Sequential(*layers, GlobalAvgPool2d(), Flatten(), Linear(64, num_classes),
                      input_shape=input_shape)


MODELS = {"lenet5": lenet5, "lenet5-bn": lenet5_bn, "digits-cnn": digits_cnn, "cnv": cnv, "mlp": mlp,
          "vgg-small": vgg_small, "resnet20": resnet20}

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
_SPEC = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*\Z")


def register_model(name, factory):
    """Make `factory(input_shape=..., num_classes=...)` -> model available as
    TrainConfig(model=name) and `ctrain perf --model name` in this process."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise MappingError(f"model name {name!r}: use lower-case letters, digits, '-' and '_'")
    if not callable(factory):
        raise MappingError(f"model {name!r}: {factory!r} is not callable (a function returning a model)")
    MODELS[name] = factory
    return factory


def is_model_spec(name):
    """Whether `name` has the form package.module:function."""
    return isinstance(name, str) and bool(_SPEC.match(name))


def resolve_factory(name):
    """The factory of a registered name, or of `package.module:function`
    (imported from sys.path and the current directory)."""
    if name in MODELS:
        return MODELS[name]
    if not is_model_spec(name):
        raise MappingError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}, "
                           "or give package.module:function")
    module_name, _, attr = name.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())  # as `python -m` does, for a module next to the user
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise MappingError(f"model {name}: cannot import {module_name}: {exc}") from None
    except Exception as exc:  # the module itself failed
        raise MappingError(f"model {name}: importing {module_name} raised {type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise MappingError(f"model {name}: {module_name} has no attribute {attr}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise MappingError(f"model {name}: {attr} ({type(obj).__name__}) is not a function returning a model")
    return obj


def _call_factory(name, factory, input_shape, num_classes):
    """factory(input_shape=..., num_classes=...), passing only the keywords it takes."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kw = {k: v for k, v in (("input_shape", tuple(input_shape)), ("num_classes", num_classes))
          if takes_all or k in params}
    try:
        return factory(**kw)
    except MappingError as exc:
        raise MappingError(f"model {name}: {exc}") from None
    except Exception as exc:
        raise MappingError(f"model {name}: {getattr(factory, '__name__', 'the factory')}"
                           f"({', '.join(f'{k}={v!r}' for k, v in kw.items())}) raised "
                           f"{type(exc).__name__}: {exc}") from None


def build_model(name, input_shape, num_classes=10):
    """The model `name` (registered, or package.module:function) for this data.
    A factory may return a ctrain model or a torch.nn.Module, which is
    converted with its weights (ctrain.torch_import.from_torch)."""
    factory = resolve_factory(name)
    model = as_model(_call_factory(name, factory, input_shape, num_classes), input_shape)
    if not isinstance(model, Sequential):
        raise MappingError(f"model {name}: the factory returned {type(model).__name__}, not a ctrain model "
                           "(ctrain.model.Sequential) or a torch.nn.Module")
    if tuple(model.input_shape) != tuple(input_shape):
        raise MappingError(f"model {name}: built for input {tuple(model.input_shape)}, the data is "
                           f"{tuple(input_shape)}")
    if model.num_classes != num_classes:
        raise MappingError(f"model {name}: {model.num_classes} outputs for {num_classes} classes")
    return model


#: converters of other frameworks' models, tried on what a factory returns:
#: f(obj, input_shape) -> a ctrain model, or None when obj is not theirs
#: (ctrain.torch_import adds PyTorch's when imported, as ctrain.train does)
CONVERTERS = []


def as_model(obj, input_shape):
    """`obj` itself, or its conversion by the first converter that takes it."""
    for convert in CONVERTERS:
        model = convert(obj, input_shape)
        if model is not None:
            return model
    return obj


def stage_labels(model):
    """One numbering of layers for every printout (epoch lines, --report,
    notebooks): Conv2d/Linear layer j is "Lj" (the index of its weights in
    checkpoints and model files); another stage is named by its kind after
    the layer it follows, e.g. "L0 pool"."""
    labels, last = [], None
    for st in model.stages:
        if st.kind == "param":
            last = f"L{st.param_index}"
            labels.append(last)
        else:
            labels.append(f"{last or 'input'} {st.kind}")
    return labels
