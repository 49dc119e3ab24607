"""cffi build of host_lib: the host's hot-path helpers, compiled together with
the ISA header so cffi checks the struct layout against the C compiler."""
import os
import shlex
import shutil
import sys
import sysconfig

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "driver"))
from ctrain.overlay_src import cdef_block  # noqa: E402  (ctrain/__init__ imports nothing eagerly)

ISA_DIR = os.path.join(ROOT, "overlay", "include")


def _rel(path):
    # setuptools wants sources relative to setup.py
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


def toolchain_problem(cc=None, include_dir=None):
    """None if a C compiler and Python.h are present, else one line saying what
    is missing and how to get it (setuptools would only print a raw compiler
    error). cc: the compiler command (default: $CC, else the interpreter's);
    include_dir: where Python.h should be (default: the interpreter's)."""
    cc = cc or os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    include_dir = include_dir or sysconfig.get_paths()["include"]
    missing = []
    words = shlex.split(cc)
    if not words or shutil.which(words[0]) is None:
        missing.append(f"the C compiler {cc!r} is not on PATH")
    if not os.path.isfile(os.path.join(include_dir, "Python.h")):
        missing.append(f"the Python headers are missing (no Python.h in {include_dir})")
    if not missing:
        return None
    return ("ctrain: cannot build its C host library: " + " and ".join(missing) +
            "; install what is missing (Debian/Ubuntu: apt-get install gcc python3-dev; Fedora: dnf install gcc "
            "python3-devel) or set CC to a working compiler")


ffibuilder = FFI()
ffibuilder.cdef(cdef_block(os.path.join(ISA_DIR, "ctrain_isa.h")))
ffibuilder.cdef(cdef_block(os.path.join(HERE, "ctrain_host.h")))
ffibuilder.cdef(cdef_block(os.path.join(HERE, "ctrain_kernels.h")))
ffibuilder.set_source(
    "ctrain._host",
    '#include "ctrain_isa.h"\n#include "ctrain_host.h"\n#include "ctrain_kernels.h"\n',
    sources=[_rel(os.path.join(HERE, name)) for name in ("ctrain_host.c", "ctrain_kernels.c", "ctrain_gemm.c", "ctrain_float.c")],
    include_dirs=[ISA_DIR, HERE],
    extra_compile_args=["-O3", "-std=c99"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
