"""Where the accelerator's sources are: the repo's overlay/ or the installed copy.

A repo checkout has overlay/ beside driver/; a plain install carries the same
files in ctrain/overlay_src (setup.py copies overlay/include, overlay/hls and
overlay/tools/shim there). Everything that reads the HLS sources or the board headers (board
list, resource estimate, performance model, C-sim build) finds them here.
"""
import os
import re

_PKG = os.path.dirname(os.path.abspath(__file__))


def _candidates():
    return [os.path.join(os.path.dirname(os.path.dirname(_PKG)), "overlay"),
            os.path.join(_PKG, "overlay_src")]


def overlay_dir():
    """The directory holding include/ctrain_isa.h and hls/ctrain_top.cpp."""
    for cand in _candidates():
        if (os.path.isfile(os.path.join(cand, "include", "ctrain_isa.h"))
                and os.path.isfile(os.path.join(cand, "hls", "ctrain_top.cpp"))):
            return cand
    raise FileNotFoundError("CTrain overlay sources not found (looked in: " + ", ".join(_candidates())
                            + "); reinstall ctrain so that ctrain/overlay_src is present")


def hls_dir():
    return os.path.join(overlay_dir(), "hls")


def config_dir():
    """overlay/hls/config: one header per board, plus the selector board.h."""
    return os.path.join(hls_dir(), "config")


def isa_header():
    return os.path.join(overlay_dir(), "include", "ctrain_isa.h")


_BLOCK = re.compile(r"/\*\s*@cdef-begin\s*\*/(.*?)/\*\s*@cdef-end\s*\*/", re.S)


def cdef_block(path):
    """The cffi-parsable declarations of a C header (between its `@cdef-begin`
    / `@cdef-end` markers), so Python never retypes the ISA or the C-sim API."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    blocks = _BLOCK.findall(text)
    if not blocks:
        raise ValueError(f"{path}: no /* @cdef-begin */ ... /* @cdef-end */ block")
    return "\n".join(blocks)
