"""cffi build of host_lib: the host's hot-path helpers, compiled together with
the ISA header so cffi checks the struct layout against the C compiler."""
import os
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from cdef import cdef_block  # noqa: E402

ISA_DIR = os.path.join(ROOT, "overlay", "include")


def _rel(path):
    # setuptools wants sources relative to setup.py
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


ffibuilder = FFI()
ffibuilder.cdef(cdef_block(os.path.join(ISA_DIR, "ctrain_isa.h")))
ffibuilder.cdef(cdef_block(os.path.join(HERE, "ctrain_host.h")))
ffibuilder.set_source(
    "ctrain._host",
    '#include "ctrain_isa.h"\n#include "ctrain_host.h"\n',
    sources=[_rel(os.path.join(HERE, "ctrain_host.c"))],
    include_dirs=[ISA_DIR, HERE],
    extra_compile_args=["-O3", "-std=c99"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
