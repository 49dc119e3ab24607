"""Engines execute instruction streams against a DDR window, exactly as the
accelerator would: numpy (fast, bit-exact) or csim (the HLS sources via g++)."""
from collections import namedtuple

#: What a run reports, mirroring the STATUS, PC and FAULT_ADDR registers.
RunResult = namedtuple("RunResult", "status pc fault_addr")

ENGINES = ("numpy", "csim")


def get_engine(name, **options):
    if name == "numpy":
        from .numpy_engine import NumpyEngine
        return NumpyEngine(**options)
    if name == "csim":
        from .csim_engine import CsimEngine
        return CsimEngine(**options)
    raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
