"""CIFAR-10 in its *binary version*: ``data_batch_1.bin`` ... ``data_batch_5.bin``
and ``test_batch.bin``, each raw or gzip-compressed.

A file is a run of 3073-byte records: one label byte (0-9), then 3072 pixel
bytes (1024 red, 1024 green, 1024 blue, each plane 32x32 row-major), so the
pixels are already NCHW.  Readers are strict about the record size because a
short or padded file would otherwise shift every later image by some bytes.
"""
from __future__ import annotations

import os
import re
from typing import Optional, Tuple

import numpy as np

from .data import Dataset, _cap, _read_bytes, _split_single_set
from .errors import DatasetError

__all__ = ["CLASS_NAMES", "RECORD_BYTES", "read_cifar_batch", "load_cifar10_dir"]

SHAPE = (3, 32, 32)
RECORD_BYTES = 1 + int(np.prod(SHAPE))
#: label order of the published data set (its batches.meta.txt)
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck")

_NAME = re.compile(r"^(?:data_batch_(?P<n>[1-9][0-9]*)|(?P<test>test_batch))\.bin(?P<gz>\.gz)?$")


def read_cifar_batch(path) -> Tuple[np.ndarray, np.ndarray]:
    """One batch file as (uint8 images [N, 3, 32, 32], int64 labels [N])."""
    path = os.fspath(path)
    data = _read_bytes(path, limit=60000 * RECORD_BYTES)  # the whole data set in one file at most
    if not data or len(data) % RECORD_BYTES:
        raise DatasetError(
            f"{path}: {len(data)} bytes is not a whole number of {RECORD_BYTES}-byte CIFAR-10 "
            f"records (1 label byte + 3x32x32 pixel bytes)")
    records = np.frombuffer(data, np.uint8).reshape(-1, RECORD_BYTES)
    labels = records[:, 0]
    bad = np.flatnonzero(labels >= len(CLASS_NAMES))
    if bad.size:
        raise DatasetError(f"{path}: record {int(bad[0])} has label {int(labels[bad[0]])}, "
                           f"outside 0..{len(CLASS_NAMES) - 1}")
    return records[:, 1:].reshape((-1,) + SHAPE), labels.astype(np.int64)


def _find_batches(directory: str):
    """(train paths in batch order, test path or None); raw files win over .gz."""
    try:
        names = sorted(os.listdir(directory), key=lambda s: (s.endswith(".gz"), s))  # raw first
    except OSError as e:
        raise DatasetError(f"{directory}: cannot list CIFAR-10 directory: {e.strerror or e}") from e
    train, test = {}, None
    for name in names:
        m = _NAME.match(name)
        if not m:
            continue
        path = os.path.join(directory, name)
        if m["test"]:
            test = test or path
        else:
            train.setdefault(int(m["n"]), path)
    return [train[k] for k in sorted(train)], test


def _unit(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) / np.float32(255.0)


def load_cifar10_dir(directory, train_count: Optional[int] = None,
                     test_count: Optional[int] = None) -> Dataset:
    """CIFAR-10 from the binary batches in `directory`.

    With training batches, all of them (in batch order) train and
    ``test_batch`` tests; counts keep the first N of each.  With only
    ``test_batch`` (as in ../shared/data/cifar10) it is split like the MNIST
    test set: the first `train_count` (8000) train, the last `test_count`
    (2000) test.
    """
    directory = os.fspath(directory)
    train_paths, test_path = _find_batches(directory)
    if test_path is None:
        found = ", ".join(os.path.basename(p) for p in train_paths) or "none"
        raise DatasetError(
            f"{directory}: no CIFAR-10 test_batch.bin[.gz]; looked for data_batch_1.bin ... "
            f"data_batch_5.bin and test_batch.bin (raw or .gz); found batches: {found}")
    test_x, test_y = read_cifar_batch(test_path)
    if train_paths:
        parts = [read_cifar_batch(p) for p in train_paths]
        train_x, train_y = _cap(directory, np.concatenate([p[0] for p in parts]),
                                np.concatenate([p[1] for p in parts]), train_count)
        test_x, test_y = _cap(test_path, test_x, test_y, test_count)
    else:
        train_x, train_y, test_x, test_y = _split_single_set(
            directory, test_x, test_y, train_count, test_count)
    return Dataset(_unit(train_x), train_y, _unit(test_x), test_y, "cifar10",
                   class_names=CLASS_NAMES)
