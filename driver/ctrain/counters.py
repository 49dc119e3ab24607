"""The per-instruction counters the C-sim build of the HLS keeps
(ctrain_iters_t in overlay/hls/csim_api.h): what the C-sim engine returns and
what the performance model reproduces. Defined here, below both, because the
compiler's cost model (ctrain.perfmodel) must not reach an engine."""
import os
import re
from collections import namedtuple

from .errors import CTrainError
from .overlay_src import cdef_block, hls_dir


def _iters_fields():
    """The fields of ctrain_iters_t, read from csim_api.h (its one definition)."""
    block = re.sub(r"/\*.*?\*/", "", cdef_block(os.path.join(hls_dir(), "csim_api.h")), flags=re.S)
    body = re.search(r"typedef\s+struct\s*\{(.*?)\}\s*ctrain_iters_t\s*;", block, re.S)
    if body is None:
        raise CTrainError("csim_api.h: no ctrain_iters_t struct in its cdef block")
    return re.findall(r"\w+\s+(\w+)\s*;", body.group(1))


#: Counters of one instruction, the fields of ctrain_iters_t in csim_api.h in
#: order (docs/overlay.md "Performance model"; the C-sim engine checks the
#: compiled module has the same).
_FIELDS = _iters_fields()
#: Every field defaults to 0 (a counter nothing added to; the port-1 fields
#: of a one-port build).
Iters = namedtuple("Iters", _FIELDS, defaults=(0,) * len(_FIELDS))
