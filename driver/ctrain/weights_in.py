"""Weight import: float weights from a numpy file, a CTrain model file or
checkpoint, or a PyTorch state_dict (read without torch, by a restricted
unpickler), matched in order onto a model's Conv2d/Linear (and BatchNorm2d)
layers; the Trainer's warm start (TrainConfig.warm_start). docs/export.md,
"Warm starts", says what is accepted and how it maps."""
import collections
import io
import os
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np

from . import checkpoint
from .errors import ExportError
from .model import has_bias, weight_shape

__all__ = ["warm_start", "load_float_state", "load_float_params", "read_weights", "read_torch_state_dict",
           "ExportError"]


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
    arrays = read_weights(source)
    bn_stages = model.bn_stages
    pairs, bns = _weight_pairs(arrays, source, fold_bn=not bn_stages)
    if bn_stages and len(bns) != len(bn_stages):
        raise ExportError(f"{_label(source)}: {len(bns)} BatchNorm layers for a model with {len(bn_stages)}")
    bn_out = [_bn_entry(source, st, prefix, leaves) for st, (prefix, leaves) in zip(bn_stages, bns)]
    stages = model.param_stages
    if len(pairs) != len(stages):
        raise ExportError(f"{_label(source)}: {len(pairs)} weight tensors ({', '.join(p[0] for p in pairs)}) "
                          f"for a model with {len(stages)} Conv2d/Linear layers")
    params = [_layer_params(source, st, *pair) for st, pair in zip(stages, pairs)]
    return params, bn_out


def _bn_entry(source, st, prefix, leaves):
    """One BatchNorm's {"gamma", "beta", "mean", "var"} as float32 per channel
    of stage `st` (identity affine parameters when the file has none)."""
    c = st.in_shape[0]
    entry = {"gamma": leaves.get("weight", np.ones(c)), "beta": leaves.get("bias", np.zeros(c)),
             "mean": leaves["running_mean"], "var": leaves["running_var"]}
    for k, v in entry.items():
        v = np.asarray(v, np.float32).reshape(-1)
        if v.shape != (c,):
            raise ExportError(f"{_label(source)}: BatchNorm {prefix} has {v.size} channels, "
                              f"layer {st.names[0]} has {c}")
        entry[k] = v
    return entry


def _layer_params(source, st, wname, w, bname, b):
    """One Conv2d/Linear layer's {"w", "b"} in the model's shapes (a Linear's
    2-D weight gains unit axes; a missing bias is zero where the layer has
    one), refusing wrong shapes, a nonzero bias the layer lacks and
    non-finite values."""
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
    return {"w": w, "b": b}


def _label(source):
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else "weights"


def _to_numpy(v):
    if hasattr(v, "detach"):  # a torch tensor
        v = v.detach().cpu().numpy()
    return np.asarray(v)


def read_weights(source):
    """The named arrays of `source` (a path, or a mapping of names to arrays
    or torch tensors), in the order their layers come."""
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
    """Sort key that orders w2 before w10."""
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
