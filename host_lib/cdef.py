"""Extracts the cffi-parsable declarations of a C header (between the
`@cdef-begin` / `@cdef-end` markers), so Python never retypes the ISA."""
import re

_BLOCK = re.compile(r"/\*\s*@cdef-begin\s*\*/(.*?)/\*\s*@cdef-end\s*\*/", re.S)


def cdef_block(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    blocks = _BLOCK.findall(text)
    if not blocks:
        raise ValueError(f"{path}: no /* @cdef-begin */ ... /* @cdef-end */ block")
    return "\n".join(blocks)
