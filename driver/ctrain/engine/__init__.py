"""Engines execute instruction streams against a DDR window, exactly as the
accelerator would: numpy (fast, bit-exact) or csim (the HLS sources via g++)."""
from .result import RunResult

__all__ = ["ENGINES", "RunResult", "get_engine"]

ENGINES = ("numpy", "csim")


def get_engine(name, **options):
    if name == "numpy":
        from .numpy import NumpyEngine
        return NumpyEngine(**options)
    if name == "csim":
        from .csim import CsimEngine
        return CsimEngine(**options)
    raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
