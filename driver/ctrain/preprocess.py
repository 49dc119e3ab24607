"""Host-side input preparation: per-channel normalisation of a Dataset, and
on-the-fly augmentation of training batches (random crop with zero padding,
horizontal flip) for CIFAR-style data.  docs/data.md describes both.

Augmentation draws from a stream keyed by (seed, iteration), like the batch
order: iteration `it` always sees the same crops and flips, so a resumed run
is bit-identical to an uninterrupted one with nothing extra in the checkpoint.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Tuple

import numpy as np

from . import hostlib
from .compiler import INPUT_EXP
from .data import Dataset
from .errors import DatasetError

__all__ = ["NORM_STD", "normalise", "Augment"]

#: the standard deviation normalised channels get: the accelerator's input
#: format (int8, exponent INPUT_EXP = -7) holds [-1, 127/128], i.e. +-4 such
#: standard deviations, where unit variance would saturate everything past +-1.
NORM_STD = 0.25

#: third entry of the augmentation stream's key, apart from the batch order's (seed, epoch)
_AUG_STREAM = 0xA06


def normalise(ds: Dataset) -> Tuple[Dataset, dict]:
    """Per channel: (x - mean) / std * NORM_STD, mean and std over the training split.

    Returns the new Dataset and the statistics (mean, std, scale, and the
    fraction of training values the input format saturates), which inference
    must reuse.  A constant channel (std 0) is only centred.
    """
    x = ds.train_x
    if len(x) == 0:
        raise DatasetError(f"{ds.name}: cannot normalise an empty training split")
    mean = x.mean(axis=(0, 2, 3), dtype=np.float64)
    std = x.std(axis=(0, 2, 3), dtype=np.float64)
    std = np.where(std > 0, std, 1.0)
    shift = mean.astype(np.float32)[None, :, None, None]
    gain = (NORM_STD / std).astype(np.float32)[None, :, None, None]
    train_x = (x - shift) * gain
    test_x = (ds.test_x - shift) * gain
    saturated = hostlib.quantize(train_x, INPUT_EXP)[1] / train_x.size
    stats = {"mean": [float(v) for v in mean], "std": [float(v) for v in std], "scale": NORM_STD,
             "saturated": float(saturated)}
    return dataclasses.replace(ds, train_x=train_x, test_x=test_x), stats


class Augment:
    """Per-sample random crop (after zero padding by `pad`) and horizontal flip.

    `spec` is a comma list: ``flip``, ``crop`` (pad 4) or ``crop=P``; e.g.
    ``crop=4,flip``, the usual CIFAR-10 recipe.  The padding value is 0 of the
    stored images: black for [0, 1] images, the channel mean after
    normalisation; 0 also quantizes to 0, so augmenting a quantized batch
    with the same draws equals quantizing the augmented float batch.
    """

    def __init__(self, spec: str, seed: int):
        self.spec, self.seed = spec, int(seed)
        self.pad, self.flip = 0, False
        for item in (s.strip() for s in str(spec).split(",")):
            m = re.fullmatch(r"crop(?:=(\d+))?", item)
            if item == "flip":
                self.flip = True
            elif m:
                self.pad = int(m[1]) if m[1] is not None else 4
            else:
                raise DatasetError(f"augment {spec!r}: unknown item {item!r}; use flip, crop or crop=P "
                                   f"(e.g. crop=4,flip)")
        if not (self.pad or self.flip):
            raise DatasetError(f"augment {spec!r}: nothing to do (crop=0 and no flip)")

    def draws(self, it: int, n: int):
        """(row offsets, column offsets, flip flags) for the n samples of iteration `it`."""
        rng = np.random.default_rng([self.seed, _AUG_STREAM, int(it)])
        dy = rng.integers(0, 2 * self.pad + 1, n) if self.pad else np.zeros(n, np.int64)
        dx = rng.integers(0, 2 * self.pad + 1, n) if self.pad else np.zeros(n, np.int64)
        flip = rng.random(n) < 0.5 if self.flip else np.zeros(n, bool)
        return dy, dx, flip

    def __call__(self, x: np.ndarray, it: int) -> np.ndarray:
        """The batch x [N, C, H, W] (any dtype) augmented with iteration `it`'s draws."""
        n, c, h, w = x.shape
        dy, dx, flip = self.draws(it, n)
        p = self.pad
        padded = np.zeros((n, c, h + 2 * p, w + 2 * p), x.dtype)
        padded[:, :, p:p + h, p:p + w] = x
        rows = dy[:, None] + np.arange(h)
        cols = dx[:, None] + np.where(flip[:, None], np.arange(w)[::-1], np.arange(w))
        return padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None],
                      rows[:, None, :, None], cols[:, None, None, :]]
