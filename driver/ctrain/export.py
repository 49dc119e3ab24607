"""`ctrain export` (a training checkpoint to a model file and ONNX) and
interop in one namespace, the names the notebooks and older scripts use.
Each job has its own module:

- ctrain.modelspec: the architecture as JSON-able data, and back;
- ctrain.model_file: the model file (docs/export.md) written and read back;
- ctrain.onnx_export: the ONNX model and onnxruntime predictions;
- ctrain.weights_in: float weights in (warm start, PyTorch state_dicts).
"""
import importlib.util
import os

from . import checkpoint
from .errors import ExportError
from .model_file import FORMAT, VERSION, ExportedModel, export_state, load_model, save_model
from .modelspec import model_from_spec, model_spec
from .onnx_export import onnx_predict, to_onnx
from .train import Trainer
from .weights_in import load_float_params, load_float_state, read_torch_state_dict, read_weights, warm_start

__all__ = ["ExportError", "FORMAT", "VERSION", "ExportedModel", "check_export_targets", "export_checkpoint",
           "export_state", "load_model", "save_model", "model_from_spec", "model_spec", "onnx_predict", "to_onnx",
           "load_float_params", "load_float_state", "read_torch_state_dict", "read_weights", "warm_start"]


def check_export_targets(checkpoint_path, output, onnx_path=None):
    """`ctrain export`'s paths before any work: the output is writable and is
    not an unrelated file, the ONNX path's directory exists and onnx is
    installed when an ONNX model is asked for."""
    if not os.path.isfile(checkpoint_path):
        raise ExportError(f"{checkpoint_path}: checkpoint not found")
    if os.path.abspath(output) == os.path.abspath(checkpoint_path):
        raise ExportError(f"{output}: the model file would replace the checkpoint it is exported from")
    checkpoint.check_target(output, "model file")
    if onnx_path is not None:
        if importlib.util.find_spec("onnx") is None:
            raise ExportError("--onnx needs the onnx package (pip install onnx); nothing was written")
        directory = os.path.dirname(os.path.abspath(onnx_path))
        if os.path.isdir(onnx_path):
            raise ExportError(f"{onnx_path}: ONNX path is a directory; give a file name")
        if not os.path.isdir(directory) or not os.access(directory, os.W_OK | os.X_OK):
            raise ExportError(f"{onnx_path}: directory {directory} does not exist or is not writable")
        if os.path.abspath(onnx_path) in (os.path.abspath(output), os.path.abspath(checkpoint_path)):
            raise ExportError(f"{onnx_path}: the ONNX model would overwrite the model file or the checkpoint")


def export_checkpoint(checkpoint_path, output, onnx_path=None, style="exact", dataset=None):
    """`ctrain export`: rebuild the run of a training checkpoint on the
    emulated device (the checkpoint holds the whole state) and write the
    model file, and the ONNX model when onnx_path is given; returns the Trainer."""
    trainer = Trainer.from_checkpoint(checkpoint_path, dataset=dataset,
                                      settings={"device": "emulated", "checkpoint": None, "checkpoint_every": 0})
    save_model(trainer, output)
    if onnx_path is not None:
        to_onnx(load_model(output), onnx_path, style=style)
    return trainer
