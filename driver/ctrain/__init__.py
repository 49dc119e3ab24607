"""CTrain: compressed CNN training on a PYNQ FPGA accelerator, or its emulator.

The user API, importable from here (`from ctrain import Trainer, TrainConfig`):

- training: TrainConfig, Trainer (ctrain.train)
- data: get_dataset (ctrain.datasets), Dataset (ctrain.data)
- models: MODELS, build_model, register_model, Sequential and its layers
  (Residual and basic_block for skip connections), stage_labels (ctrain.model);
  from_torch (ctrain.torch_import: a PyTorch nn.Module of supported layers)
- compiling: compile_model (ctrain.compiler)
- devices: EmulatedDevice (ctrain.device.emulated), BoardDevice (ctrain.device.board, needs pynq when made)
- engines: ENGINES, get_engine (ctrain.engine)
- interop: save_model, load_model, to_onnx, onnx_predict, warm_start (ctrain.export)

Each name is imported when first used, so `import ctrain` stays instant and
pulls in neither numpy nor pynq. docs/architecture.md says where the rest is.
"""
import importlib

__version__ = "0.1.0"

#: public name -> the module that defines it
_API = {
    "TrainConfig": "train", "Trainer": "train",
    "get_dataset": "datasets", "Dataset": "data",
    "MODELS": "model", "build_model": "model", "register_model": "model", "stage_labels": "model",
    "Sequential": "model", "Conv2d": "model", "Linear": "model", "ReLU": "model", "MaxPool2d": "model",
    "AvgPool2d": "model", "GlobalAvgPool2d": "model", "Flatten": "model", "BatchNorm2d": "model",
    "Residual": "model", "basic_block": "model",
    "from_torch": "torch_import",
    "compile_model": "compiler",
    "EmulatedDevice": "device.emulated", "BoardDevice": "device.board",
    "ENGINES": "engine", "get_engine": "engine",
    "save_model": "export", "load_model": "export", "to_onnx": "export", "onnx_predict": "export",
    "warm_start": "export",
}

__all__ = sorted(_API)


def __getattr__(name):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'ctrain' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(_API))
