"""Installs the `ctrain` package from driver/ and builds host_lib through cffi.

The overlay sources (ISA header, HLS C++, and the ap_types shim through which
the synthesis branch compiles with g++, overlay/tools/shim) are copied into
the package (ctrain/overlay_src) so the C-sim engine (ctrain.engine.csim.build)
and the primitives' testbenches can compile them after a plain (non-editable)
install.
"""
import os
import shutil
import sys

from setuptools import find_packages, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(ROOT, "host_lib"))
from build_host import toolchain_problem  # noqa: E402


class BuildExtChecked(build_ext):
    """Stops with one line naming the missing compiler or Python headers
    before setuptools tries (and fails with a raw compiler error)."""

    def run(self):
        problem = toolchain_problem()
        if problem:
            sys.exit(problem)
        super().run()


class BuildPyWithOverlay(build_py):
    def run(self):
        super().run()
        dst = os.path.join(self.build_lib, "ctrain", "overlay_src")
        for sub in ("include", "hls", os.path.join("tools", "shim")):
            src = os.path.join(ROOT, "overlay", sub)
            if os.path.isdir(src):
                shutil.copytree(src, os.path.join(dst, sub), dirs_exist_ok=True)


setup(
    package_dir={"": "driver"},
    packages=find_packages("driver"),
    cffi_modules=["host_lib/build_host.py:ffibuilder"],
    cmdclass={"build_py": BuildPyWithOverlay, "build_ext": BuildExtChecked},
    zip_safe=False,
)
