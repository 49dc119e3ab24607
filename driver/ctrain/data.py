"""Datasets for CTrain as in-memory (images, labels) splits.

Images are float32 [N, C, H, W] (in [0, 1] unless a source says otherwise) and labels int64 [N], so the
training loop never has to care where the data came from.  Here:

* ``digits``: the UCI 8x8 digits as scikit-learn ships them, bundled with
  ctrain (data_files/digits.npz, no download), the default because it is small
  enough for the emulator.
* ``mnist``: MNIST-format IDX files in a local directory (no download either;
  the caller points us at the files).

The other sources (CIFAR-10, Fashion-MNIST, a user's .npz or image folder)
live in their own modules; ``datasets.DATASETS`` names them all (docs/data.md).
"""
from __future__ import annotations

import gzip
import math
import os
import re
import zlib
from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

import numpy as np

from .errors import DatasetError

__all__ = [
    "Dataset",
    "load_digits",
    "read_idx",
    "load_mnist_dir",
    "batches",
]


@dataclass(frozen=True)
class Dataset:
    """A named train/test split; arrays follow the module's layout contract."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    name: str
    class_names: Optional[Tuple[str, ...]] = None  # label i is class_names[i], when the source names them

    @property
    def num_classes(self) -> int:
        """len(class_names) when named, else highest label + 1 over both splits."""
        if self.class_names:
            return len(self.class_names)
        return int(max(self.train_y.max(initial=-1), self.test_y.max(initial=-1))) + 1

    @property
    def input_shape(self) -> Tuple[int, ...]:
        """Per-sample shape (C, H, W), what the model's first layer must accept."""
        return tuple(self.train_x.shape[1:])


# --------------------------------------------------------------------------
# digits (shipped: data_files/digits.npz, see data_files/README.md)
# --------------------------------------------------------------------------

_DIGITS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data_files", "digits.npz")


def _apportion(counts, total, rng):
    """Split `total` draws over classes in proportion to `counts`: floor of the
    exact share, then one more for the largest remainders (ties drawn by rng)."""
    share = counts / counts.sum() * total
    taken = np.floor(share)
    left = int(total - taken.sum())
    rest = share - taken
    for value in np.sort(np.unique(rest))[::-1]:
        if left <= 0:
            break
        (tied,) = np.where(rest == value)
        n = min(len(tied), left)
        taken[rng.choice(tied, size=n, replace=False)] += 1
        left -= n
    return taken.astype(np.int64)


def _stratified_split(y, n_test, seed):
    """(train, test) indices, stratified by class, drawn with the same
    RandomState calls in the same order as scikit-learn's
    train_test_split(stratify=y, random_state=seed), so the split (and every
    figure measured with it) stays what it was when scikit-learn made it."""
    rng = np.random.RandomState(seed)
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    members = np.split(np.argsort(inverse.reshape(-1), kind="stable"), np.cumsum(counts)[:-1])
    n_train = len(y) - n_test
    take_train = _apportion(counts, n_train, rng)
    take_test = _apportion(counts - take_train, n_test, rng)
    train, test = [], []
    for idx, a, b in zip(members, take_train, take_test):
        shuffled = idx[rng.permutation(len(idx))]
        train.append(shuffled[:a])
        test.append(shuffled[a:a + b])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def digits_arrays():
    """The shipped digits: (images uint8 [1797, 8, 8] in 0..16, labels uint8 [1797])."""
    with np.load(_DIGITS_FILE) as f:
        return f["images"], f["labels"]


def load_digits(test_fraction: float = 0.2, seed: int = 0,
                train_count: Optional[int] = None, test_count: Optional[int] = None) -> Dataset:
    """UCI 8x8 digits, split stratified by class so small test sets stay balanced.

    train_count/test_count (optional) keep only the first N of each shuffled
    split, for quick runs; the same keywords work for every dataset.
    """
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"digits: test_fraction must be in (0, 1), got {test_fraction!r}")
    images, labels = digits_arrays()
    x = (images.astype(np.float32) / np.float32(16.0))[:, None, :, :]
    y = labels.astype(np.int64)
    train, test = _stratified_split(y, math.ceil(test_fraction * len(y)), seed)
    train_x, train_y = _cap("digits", x[train], y[train], train_count)
    test_x, test_y = _cap("digits", x[test], y[test], test_count)
    return Dataset(np.ascontiguousarray(train_x), train_y,
                   np.ascontiguousarray(test_x), test_y, "digits")


# --------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------

# IDX type code -> big-endian numpy dtype (as specified by the MNIST format).
_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


#: numpy's smallest limit on dimensions (32 in numpy 1.x)
IDX_MAX_DIMS = 32
_CHUNK = 1 << 20


def _open_idx(path: str):
    """A binary stream of the file's IDX bytes, gunzipped when it starts with
    the gzip magic (names can lie)."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise DatasetError(f"{path}: cannot read file: {e.strerror or e}") from e
    if f.read(2) == _GZIP_MAGIC:
        f.seek(0)
        return gzip.GzipFile(fileobj=f, mode="rb"), f
    f.seek(0)
    return f, f


def _read_at_most(path: str, stream, n: int) -> bytes:
    """Up to n bytes, in chunks, so memory follows what the stream really
    holds (a header's size is a claim, not an allocation)."""
    out = bytearray()
    try:
        while len(out) < n:
            chunk = stream.read(min(_CHUNK, n - len(out)))
            if not chunk:
                break
            out += chunk
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"{path}: corrupt gzip stream: {e}") from e
    return bytes(out)


def _read_bytes(path: str, limit: int = 1 << 31) -> bytes:
    """Whole file (gunzipped when it starts with the gzip magic), refused past
    `limit` bytes before more than that is held."""
    stream, raw = _open_idx(path)
    with raw, stream:
        data = _read_at_most(path, stream, limit + 1)
    if len(data) > limit:
        raise DatasetError(f"{path}: more than {limit} bytes (inflated); not a data set file")
    return data


def _parse_idx_header(path: str, data: bytes) -> Tuple[np.dtype, Tuple[int, ...], int]:
    """Validate the magic (first 4 bytes of `data`) and return (dtype, ndim, header length)."""
    if len(data) < 4:
        raise DatasetError(
            f"{path}: truncated IDX file: expected at least 4 header bytes, found {len(data)}")
    zero0, zero1, code, ndim = data[0], data[1], data[2], data[3]
    if zero0 or zero1 or code not in _IDX_DTYPES or ndim == 0:
        raise DatasetError(
            f"{path}: not an IDX file: bad magic number 0x{data[:4].hex()} "
            f"(expected 00 00 <type 08/09/0B/0C/0D/0E> <ndim >= 1>)")
    if ndim > IDX_MAX_DIMS:
        raise DatasetError(f"{path}: IDX header declares {ndim} dimensions; at most {IDX_MAX_DIMS} are supported")
    return _IDX_DTYPES[code], ndim, 4 + 4 * ndim


def read_idx(path) -> np.ndarray:
    """Read an MNIST-format IDX file (raw or gzip) strictly into a native-endian array.

    Strict because a silently short or padded file would otherwise surface
    later as a baffling reshape error or as wrong labels.  Sizes are Python
    integers (no overflow), and the data is read against the size the header
    declares: at most that many bytes plus one are ever inflated or held.
    """
    path = os.fspath(path)
    stream, raw = _open_idx(path)
    with raw, stream:
        head = _read_at_most(path, stream, 4)
        dtype, ndim, header_len = _parse_idx_header(path, head)
        dims = _read_at_most(path, stream, header_len - 4)
        if len(dims) < header_len - 4:
            raise DatasetError(
                f"{path}: truncated IDX header: {ndim} dims need {header_len} bytes, "
                f"found {4 + len(dims)}")
        shape = tuple(int.from_bytes(dims[4 * i:4 * i + 4], "big") for i in range(ndim))
        expected = math.prod(shape) * dtype.itemsize
        if stream is raw:  # a plain file: its size says it all before any read
            found = os.fstat(raw.fileno()).st_size - header_len
            body = _read_at_most(path, stream, expected) if found == expected else b""
        else:
            body = _read_at_most(path, stream, expected + 1)
            found = len(body)
    if found < expected:
        raise DatasetError(
            f"{path}: truncated IDX data: shape {shape} needs {expected} bytes, found {found}")
    if found > expected:
        extra = f"{found - expected}" if stream is raw else "at least 1"  # gzip: not inflated further
        raise DatasetError(
            f"{path}: {extra} trailing bytes after the IDX data (shape {shape} needs {expected} bytes)")
    arr = np.frombuffer(body, dtype=dtype, count=expected // dtype.itemsize)
    return arr.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


# --------------------------------------------------------------------------
# MNIST directory
# --------------------------------------------------------------------------

# e.g. t10k-images-idx3-ubyte.gz, train-labels.idx1-ubyte
_MNIST_NAME = re.compile(
    r"^(?P<split>train|t10k)-(?P<kind>images|labels)[-.]idx(?P<nd>[13])-ubyte(?:\.gz)?$")
_MNIST_LOOKED_FOR = ("t10k-images-idx3-ubyte[.gz] + t10k-labels-idx1-ubyte[.gz] and/or "
                     "train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz] "
                     "(also spelled *-images.idx3-ubyte / *-labels.idx1-ubyte)")
_MNIST_DEFAULT_TRAIN, _MNIST_DEFAULT_TEST = 8000, 2000


def _find_mnist_files(directory: str) -> dict:
    """Map (split, kind) -> path; raw files win over .gz for determinism."""
    try:
        names = sorted(os.listdir(directory))
    except OSError as e:
        raise DatasetError(
            f"{directory}: cannot list MNIST directory: {e.strerror or e}") from e
    found = {}
    for name in names:
        m = _MNIST_NAME.match(name)
        if not m or (m["kind"] == "images") != (m["nd"] == "3"):
            continue
        found.setdefault((m["split"], m["kind"]), os.path.join(directory, name))
    return found


def _load_mnist_pair(images_path: str, labels_path: str) -> Tuple[np.ndarray, np.ndarray]:
    """Images [N,1,28,28] float32 in [0,1] and labels int64, cross-checked."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DatasetError(
            f"{images_path}: expected uint8 images of shape [N, 28, 28], "
            f"got {images.dtype} {list(images.shape)}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DatasetError(
            f"{labels_path}: expected a 1-D uint8 label vector, got {labels.dtype} "
            f"{list(labels.shape)}")
    if len(images) != len(labels):
        raise DatasetError(
            f"{images_path} has {len(images)} images but {labels_path} has "
            f"{len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise DatasetError(f"{labels_path}: label {int(labels.max())} outside 0..9")
    x = (images.astype(np.float32) / np.float32(255.0))[:, None, :, :]
    return x, labels.astype(np.int64)


def _split_single_set(directory, x, y, train_count, test_count):
    """First train_count samples train, last test_count test (no overlap)."""
    n_train = _MNIST_DEFAULT_TRAIN if train_count is None else int(train_count)
    n_test = _MNIST_DEFAULT_TEST if test_count is None else int(test_count)
    if n_train < 0 or n_test < 0 or n_train + n_test > len(x):
        raise DatasetError(
            f"{directory}: cannot split {len(x)} samples into {n_train} train + "
            f"{n_test} test; pass smaller train_count/test_count")
    return x[:n_train], y[:n_train], x[len(x) - n_test:], y[len(y) - n_test:]


def _cap(source, x, y, count):
    """First `count` samples (all when None); asking for more than exist is an error."""
    if count is None:
        return x, y
    if not 0 <= int(count) <= len(x):
        raise DatasetError(f"{source}: asked for {count} samples, only {len(x)} available")
    return x[:int(count)], y[:int(count)]


def load_mnist_dir(directory, train_count: Optional[int] = None,
                   test_count: Optional[int] = None) -> Dataset:
    """MNIST from IDX files in `directory`.

    With both train and t10k sets the files define the split (counts, when
    given, keep the first N of each).  With only one set (e.g. just the
    10,000-image test set) it is split: first `train_count` (default 8000)
    for training, last `test_count` (default 2000) held out.
    """
    directory = os.fspath(directory)
    files = _find_mnist_files(directory)
    complete = [s for s in ("train", "t10k")
                if (s, "images") in files and (s, "labels") in files]
    if not complete:
        have = ", ".join(sorted(os.path.basename(p) for p in files.values())) or "none"
        raise DatasetError(
            f"{directory}: no complete MNIST images+labels pair; looked for "
            f"{_MNIST_LOOKED_FOR}; found: {have}")
    pairs = {s: _load_mnist_pair(files[(s, "images")], files[(s, "labels")])
             for s in complete}
    if len(pairs) == 2:
        train_x, train_y = _cap(files[("train", "images")], *pairs["train"], train_count)
        test_x, test_y = _cap(files[("t10k", "images")], *pairs["t10k"], test_count)
    else:
        train_x, train_y, test_x, test_y = _split_single_set(
            directory, *pairs[complete[0]], train_count, test_count)
    return Dataset(train_x, train_y, test_x, test_y, "mnist")


# --------------------------------------------------------------------------
# Batching
# --------------------------------------------------------------------------

def batches(x: np.ndarray, y: np.ndarray, batch_size: int, rng=None, shuffle: bool = True,
            drop_last: bool = True) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """Yield (x, y) minibatches; one epoch per call.

    `rng` is a numpy Generator (or a seed) so shuffling is reproducible.
    Unshuffled batches are views (cheap); shuffled ones are gathered copies.
    drop_last keeps every batch the same size, which the fixed-shape
    accelerator program needs.
    """
    n = len(x)
    if len(y) != n:
        raise ValueError(f"batches: x has {n} samples but y has {len(y)}")
    if batch_size <= 0:
        raise ValueError(f"batches: batch_size must be positive, got {batch_size}")
    stop = n - n % batch_size if drop_last else n
    if not shuffle:
        for s in range(0, stop, batch_size):
            yield x[s:s + batch_size], y[s:s + batch_size]
        return
    order = np.random.default_rng(rng).permutation(n)
    for s in range(0, stop, batch_size):
        idx = order[s:s + batch_size]
        yield x[idx], y[idx]
