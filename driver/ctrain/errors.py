"""Every error CTrain raises on purpose derives from CTrainError, and names the
thing that is wrong (file, layer, instruction, address)."""


class CTrainError(Exception):
    """Base of CTrain's own errors."""


class MappingError(CTrainError, ValueError):
    """The model cannot be mapped onto the accelerator (shape beyond its limits)."""


class ConfigError(CTrainError, ValueError):
    """A training setting is out of its range; `field` names the TrainConfig
    field, so the CLI can name its option instead."""

    def __init__(self, field, message):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message


class DatasetError(CTrainError, ValueError):
    """A dataset file is missing, corrupt or of the wrong format."""


class CheckpointError(CTrainError, ValueError):
    """A checkpoint file is missing, truncated or inconsistent with the model."""


class ExportError(CTrainError, ValueError):
    """A model cannot be exported, or a weight file cannot be read as this model's weights."""


class MemoryFault(CTrainError):
    """A host access to device memory outside what was allocated."""


class DeviceFault(CTrainError):
    """The accelerator stopped with a fault; carries the index, opcode and address."""

    def __init__(self, message, code=None, pc=None, opcode=None, address=None):
        super().__init__(message)
        self.code = code
        self.pc = pc
        self.opcode = opcode
        self.address = address


class DeviceTimeout(CTrainError, TimeoutError):
    """The accelerator did not finish in time; says which instruction it reached."""


class TrainingDiverged(CTrainError):
    """Loss or weights became NaN/inf or diverged."""
