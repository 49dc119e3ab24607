"""Where the board device finds its overlay: ctrain.bit and ctrain.hwh.

PYNQ loads a bitstream `<name>.bit` together with the hardware handoff
`<name>.hwh` beside it. The search order, first hit wins (docs/board.md):

1. an explicit path: `BoardDevice(overlay=...)`, `find_overlay(path)`; a
   `.bit` file, or a directory holding `ctrain.bit`;
2. the environment variable `CTRAIN_OVERLAY` (a `.bit` file or a directory);
3. package data: `ctrain/overlays/<board>/ctrain.bit`, where `make -C overlay
   bitstream BOARD=<board>` copies its output. `<board>` is the `board`
   argument, else `$CTRAIN_BOARD`, else the PYNQ image's `$BOARD` (Pynq-Z2,
   ZCU104), else the only board directory holding a bitstream.

An explicit path or `CTRAIN_OVERLAY` that does not hold the files is an error
(no silent fallback to another overlay). When nothing is found the error lists
every place looked at and what was missing there.

Importing this module never imports pynq.
"""
import os
from pathlib import Path

from . import boards
from .errors import CTrainError

ENV_OVERLAY = "CTRAIN_OVERLAY"
ENV_BOARD = "CTRAIN_BOARD"
BIT_NAME = "ctrain.bit"
PACKAGE_DIR = Path(__file__).resolve().parent / "overlays"


class OverlayError(CTrainError):
    """The overlay does not match the driver (register map, IP, part)."""


class OverlayNotFound(OverlayError, FileNotFoundError):
    """No ctrain.bit with its ctrain.hwh where the search order looked."""

    def __init__(self, message, looked=()):
        super().__init__(message)
        self.looked = list(looked)


def _candidate(path):
    """(bit, hwh) for a .bit file or a directory holding ctrain.bit."""
    p = Path(path).expanduser()
    bit = p if p.suffix == ".bit" or p.is_file() else p / BIT_NAME
    return bit, bit.with_suffix(".hwh")


def _problem(bit, hwh):
    """None when both files exist, else what is missing."""
    if not bit.is_file():
        return "not found" if bit.parent.is_dir() else f"no directory {bit.parent}"
    if not hwh.is_file():
        return f"found, but no {hwh.name} beside it (PYNQ needs the .hwh next to the .bit)"
    return None


def board_name(board=None):
    """The overlay directory name of the board: argument, $CTRAIN_BOARD, then PYNQ's $BOARD
    (a name as PYNQ reports it, ctrain.boards.by_pynq_name); a name no board has stays as given."""
    for value in (board, os.environ.get(ENV_BOARD), os.environ.get("BOARD")):
        if value:
            try:
                return boards.by_pynq_name(value).name
            except boards.UnknownBoard:
                return value.lower()
    return None


def search_places(path=None, board=None, package_dir=None):
    """The places the search order looks at, as (label, bit, hwh)."""
    places = []
    if path is not None:
        bit, hwh = _candidate(path)
        places.append(("explicit path", bit, hwh))
        return places
    env = os.environ.get(ENV_OVERLAY)
    if env:
        bit, hwh = _candidate(env)
        places.append((f"${ENV_OVERLAY}", bit, hwh))
        return places
    pkg = Path(package_dir) if package_dir is not None else PACKAGE_DIR
    name = board_name(board)
    if name:
        boards = [name]
    else:
        boards = sorted(d.name for d in pkg.iterdir() if d.is_dir()) if pkg.is_dir() else []
    label = "package data" + ("" if name else " (no board given: set CTRAIN_BOARD or pass board=)")
    if not boards:
        places.append((label, pkg / "<board>" / BIT_NAME, pkg / "<board>" / "ctrain.hwh"))
    for b in boards:
        places.append((label, pkg / b / BIT_NAME, pkg / b / "ctrain.hwh"))
    return places


def find_overlay(path=None, board=None, package_dir=None):
    """(bit, hwh) paths of the overlay by the search order, or OverlayNotFound naming where it looked."""
    places = search_places(path, board, package_dir)
    hits, looked = [], []
    for label, bit, hwh in places:
        problem = _problem(bit, hwh)
        if problem is None:
            hits.append((bit, hwh))
        else:
            looked.append(f"{label}: {bit} ({problem})")
    if len(hits) == 1 or (hits and board_name(board)):
        return hits[0]
    if len(hits) > 1:
        raise OverlayNotFound("several overlays in the package data, choose one with CTRAIN_BOARD or board=: "
                              + ", ".join(str(b) for b, _ in hits), [str(b) for b, _ in hits])
    if path is None and not os.environ.get(ENV_OVERLAY):
        looked = ["explicit path: none given", f"${ENV_OVERLAY}: not set"] + looked
    lines = "\n  ".join(looked)
    raise OverlayNotFound(
        f"no CTrain overlay ({BIT_NAME} with ctrain.hwh) found; looked at:\n  {lines}\n"
        f"Build it with `make -C overlay bitstream BOARD=<board>` (Vivado), or point {ENV_OVERLAY} "
        f"at a directory holding {BIT_NAME} and ctrain.hwh.", looked)
