"""The boards CTrain builds for: one list, read from the config headers.

Every fact of a board (part, clock, PE array, buffers, DDR port and
bandwidth, chip resources, the name PYNQ reports) is a `#define` in
overlay/hls/config/<board>.h, the header the HLS build compiles; this module
parses them, so adding a board is adding a header (and its line in board.h).
`BOARDS` is ordered by chip size (DSP slices, then name).
"""
import os
import re
from dataclasses import dataclass
from functools import lru_cache

from .errors import CTrainError
from .overlay_src import config_dir

_DEFINE = re.compile(r"^\s*#define\s+CTRAIN_(\w+)[ \t]+(\"[^\"]*\"|\S+)", re.M)
#: Headers in config/ that are not boards.
_NOT_BOARDS = ("board.h",)


class UnknownBoard(CTrainError, ValueError):
    """A board name no config header defines."""


@dataclass(frozen=True)
class BoardConfig:
    name: str             # header name, overlay directory name, make BOARD=
    pynq_name: str        # $BOARD on the board's PYNQ image
    pynq_aliases: tuple   # other names PYNQ images have used for it
    part: str
    board_part: str       # Vivado board files with the PS preset
    ps: str               # "zynq7" or "zynqmp"
    hp_port: str          # PS slave port of the accelerator's m_axi
    clock_mhz: int
    pe_rows: int
    pe_cols: int
    pe_lanes: int         # batch lanes sharing each weight (CTRAIN_PE_LANES, 1 when absent)
    chunk: int            # elements per burst of the element-wise units
    sparse_entries: int   # kept weights per PE row on chip
    sparse_win: int       # window positions per batch lane
    sparse_xt: int        # output positions per x tile of the sparse unit
    ddr_beat: int         # bytes per beat of the m_axi port
    ddr_gbps: float       # peak GB/s of the board's DDR behind that port
    chip_dsp: int
    chip_bram36: int
    chip_uram: int
    chip_lut: int
    dsp_kind: str         # DSP48E1 (7-series) or DSP48E2 (UltraScale+)
    defines: tuple        # every CTRAIN_* #define of the header, (name, text) pairs

    @property
    def macs(self):
        """int8 multipliers of the dense PE array: lanes x rows x columns."""
        return self.pe_lanes * self.pe_rows * self.pe_cols

    @property
    def ddr_ports(self):
        """m_axi data ports of the accelerator (CTRAIN_DDR_PORTS, 1 when absent):
        gmem into hp_port, gmem1 into hp_port1."""
        return int(self.macros.get("DDR_PORTS", "1"))

    @property
    def hp_port1(self):
        """The PS slave port of the second data port (CTRAIN_HP_PORT1), or None."""
        return self.macros.get("HP_PORT1")

    @property
    def macros(self):
        """The header's #defines as {name without CTRAIN_: text}."""
        return dict(self.defines)


def parse_header(path):
    """{NAME: value} of the CTRAIN_* #defines in a header (strings unquoted)."""
    with open(path, encoding="utf-8") as fh:
        return {k: v.strip('"') for k, v in _DEFINE.findall(fh.read())}


def _header_names(directory):
    return sorted(f[:-2] for f in os.listdir(directory) if f.endswith(".h") and f not in _NOT_BOARDS)


def load(path):
    """The BoardConfig of one config header."""
    d = parse_header(path)
    name = os.path.basename(path)[:-2]
    try:
        if d["BOARD_NAME"] != name:
            raise ValueError(f"CTRAIN_BOARD_NAME {d['BOARD_NAME']!r} is not the file name")
        return BoardConfig(
            name=name, pynq_name=d["PYNQ_NAME"], pynq_aliases=tuple(d.get("PYNQ_ALIASES", "").split()),
            part=d["PART"], board_part=d["BOARD_PART"], ps=d["PS"], hp_port=d["HP_PORT"],
            clock_mhz=int(d["CLOCK_MHZ"]), pe_rows=int(d["PE_ROWS"]), pe_cols=int(d["PE_COLS"]),
            pe_lanes=int(d.get("PE_LANES", "1")),
            chunk=int(d["CHUNK"]), sparse_entries=int(d["SPARSE_ENTRIES"]),
            sparse_win=int(d["SPARSE_WIN"]), sparse_xt=int(d["SPARSE_XT"]),
            ddr_beat=int(d["DDR_BEAT"]), ddr_gbps=float(d["DDR_GBPS"]),
            chip_dsp=int(d["CHIP_DSP"]), chip_bram36=int(d["CHIP_BRAM36"]),
            chip_uram=int(d["CHIP_URAM"]), chip_lut=int(d["CHIP_LUT"]), dsp_kind=d["DSP_KIND"],
            defines=tuple(sorted(d.items())))
    except KeyError as exc:
        raise CTrainError(f"{path}: no CTRAIN_{exc.args[0]} #define") from None
    except ValueError as exc:
        raise CTrainError(f"{path}: {exc}") from None


@lru_cache(maxsize=None)
def _all(directory):
    configs = [load(os.path.join(directory, f"{n}.h")) for n in _header_names(directory)]
    return tuple(sorted(configs, key=lambda b: (b.chip_dsp, b.name)))


def all_boards():
    """Every BoardConfig, in BOARDS order."""
    return _all(config_dir())


BOARDS = tuple(b.name for b in all_boards())


def _default_board(directory):
    """The board config/board.h compiles when no CTRAIN_BOARD_<NAME> is given
    (its #else branch): the default of every build and command."""
    with open(os.path.join(directory, "board.h"), encoding="utf-8") as fh:
        m = re.search(r"#else\s+#include\s+\"(\w+)\.h\"", fh.read())
    if m is None or m.group(1) not in BOARDS:
        raise CTrainError(f"{directory}/board.h: no #else branch including a board header")
    return m.group(1)


#: The default board (config/board.h's fallback).
DEFAULT_BOARD = _default_board(config_dir())


def get(name):
    """The BoardConfig of `name` (a header name such as "kv260")."""
    for b in all_boards():
        if b.name == name:
            return b
    raise UnknownBoard(f"unknown board {name!r}; choose one of {', '.join(BOARDS)}")


def by_pynq_name(name):
    """The BoardConfig of a name as PYNQ reports it ($BOARD, e.g. "Pynq-Z2"), case-insensitive;
    the board's own name is accepted too."""
    key = str(name).lower()
    for b in all_boards():
        if key in (b.name, b.pynq_name.lower(), *(a.lower() for a in b.pynq_aliases)):
            return b
    names = ", ".join(b.pynq_name for b in all_boards())
    raise UnknownBoard(f"unknown PYNQ board {name!r}; CTrain supports {names}")
