"""CTrain's Jupyter notebooks, shipped as package data.

Registered under the `pynq.notebooks` entry point, so on a PYNQ board
`pynq get-notebooks ctrain` copies them into the Jupyter home:

1. 1-quick-start-emulation.ipynb: 8-bit training on the emulated accelerator;
2. 2-compressed-training.ipynb: pruning and fixed point, with plots;
3. 3-training-on-the-board.ipynb: the same training on the board with the overlay
   (emulated through pynq off a board);
4. 4-sweeps.ipynb: a sweep of training runs (seeds x sparsities) on Ray, its table and plots.
"""
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parent


def notebooks():
    """Paths of the notebooks, in order."""
    return sorted(NOTEBOOK_DIR.glob("*.ipynb"))
