"""Datasets: digits split, strict IDX reader, MNIST directory layouts, batching."""
import gzip
from pathlib import Path

import numpy as np
import pytest

from ctrain.data import Dataset, batches, load_digits, load_mnist_dir, read_idx
from ctrain.datasets import get_dataset
from ctrain.errors import DatasetError

from conftest import shared_data

REAL_MNIST = shared_data("mnist")

_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def idx_bytes(arr):
    """Encode `arr` as IDX (big-endian data, as the format specifies)."""
    arr = np.asarray(arr)
    code = _CODES[f"{arr.dtype.kind}{arr.dtype.itemsize}"]
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes()
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx(path, arr, gz=False):
    data = idx_bytes(arr)
    Path(path).write_bytes(gzip.compress(data) if gz else data)
    return Path(path)


# ---------------------------------------------------------------- digits

def test_digits_shapes_and_ranges(digits):
    n = len(digits.train_x) + len(digits.test_x)
    assert n == 1797
    assert len(digits.test_x) == pytest.approx(0.2 * n, abs=1)
    assert digits.train_x.dtype == np.float32 and digits.train_y.dtype == np.int64
    assert digits.train_x.shape[1:] == (1, 8, 8) == digits.input_shape
    assert 0.0 <= digits.train_x.min() and digits.train_x.max() == 1.0
    assert digits.num_classes == 10 and digits.name == "digits"
    assert len(digits.train_x) == len(digits.train_y)


def test_digits_split_is_stratified(digits):
    train_frac = np.bincount(digits.train_y, minlength=10) / len(digits.train_y)
    test_frac = np.bincount(digits.test_y, minlength=10) / len(digits.test_y)
    np.testing.assert_allclose(train_frac, test_frac, atol=0.01)


def test_digits_split_is_disjoint(digits):
    train = {r.tobytes() for r in digits.train_x}
    overlap = sum(r.tobytes() in train for r in digits.test_x)
    assert overlap <= 5  # the UCI set has a handful of duplicate images, no more


def test_digits_deterministic_per_seed(digits):
    again = load_digits(seed=0)
    np.testing.assert_array_equal(again.train_x, digits.train_x)
    np.testing.assert_array_equal(again.test_y, digits.test_y)
    other = load_digits(seed=1)
    assert not np.array_equal(other.test_y, digits.test_y)


def test_digits_counts_cap_the_split(digits):
    small = get_dataset("digits", None, train_count=100, test_count=None)
    np.testing.assert_array_equal(small.train_x, digits.train_x[:100])
    assert len(small.test_y) == len(digits.test_y)
    with pytest.raises(DatasetError, match="only 360 available"):
        load_digits(test_count=361)


def test_digits_rejects_bad_fraction():
    with pytest.raises(DatasetError, match="test_fraction"):
        load_digits(test_fraction=1.0)


# ---------------------------------------------------------------- read_idx

@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8"])
def test_read_idx_roundtrip(tmp_path, gz, dtype):
    arr = (np.arange(2 * 3 * 4) - 7).reshape(2, 3, 4)
    if dtype == "u1":
        arr = arr + 7
    arr = arr.astype(dtype)
    out = read_idx(write_idx(tmp_path / "a.idx", arr, gz=gz))
    assert out.shape == (2, 3, 4)
    assert out.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(out, arr)


def test_read_idx_detects_gzip_by_magic_not_name(tmp_path):
    arr = np.arange(10, dtype=np.uint8)
    path = tmp_path / "labels-no-gz-suffix"
    path.write_bytes(gzip.compress(idx_bytes(arr)))
    np.testing.assert_array_equal(read_idx(path), arr)
    raw = tmp_path / "raw.gz"  # misleading name, raw content
    raw.write_bytes(idx_bytes(arr))
    np.testing.assert_array_equal(read_idx(raw), arr)


@pytest.mark.parametrize("header", [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01",
                                    b"\x00\x00\x08\x00", b"PK\x03\x04"])
def test_read_idx_wrong_magic(tmp_path, header):
    path = tmp_path / "bad.idx"
    path.write_bytes(header + b"\x00\x00\x00\x01" + b"\x00" * 8)
    with pytest.raises(DatasetError, match="magic") as e:
        read_idx(path)
    assert str(path) in str(e.value)


def test_read_idx_truncated_data_reports_sizes(tmp_path):
    path = tmp_path / "short.idx"
    path.write_bytes(idx_bytes(np.zeros((3, 4), np.uint8))[:-5])
    with pytest.raises(DatasetError, match=r"truncated.*needs 12 bytes, found 7") as e:
        read_idx(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("n", [0, 3, 6])
def test_read_idx_truncated_header(tmp_path, n):
    path = tmp_path / "hdr.idx"
    path.write_bytes(idx_bytes(np.zeros((3, 4), np.uint8))[:n])
    with pytest.raises(DatasetError, match="truncated"):
        read_idx(path)


def test_read_idx_truncated_inside_gzip(tmp_path):
    path = tmp_path / "short.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((5, 5), np.uint8))[:-1]))
    with pytest.raises(DatasetError, match="truncated"):
        read_idx(path)


def test_read_idx_trailing_bytes(tmp_path):
    path = tmp_path / "long.idx"
    path.write_bytes(idx_bytes(np.zeros(4, np.uint8)) + b"junk")
    with pytest.raises(DatasetError, match="4 trailing bytes") as e:
        read_idx(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_read_idx_corrupt_gzip(tmp_path, damage):
    blob = bytearray(gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8))))
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    else:
        blob[-6] ^= 0xFF  # inside the CRC32/size trailer
    path = tmp_path / "bad.gz"
    path.write_bytes(bytes(blob))
    with pytest.raises(DatasetError, match="corrupt gzip") as e:
        read_idx(path)
    assert str(path) in str(e.value)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="cannot read"):
        read_idx(tmp_path / "nope")


# ---------------------------------------------------------------- MNIST dir

def make_mnist(directory, split, n, gz=True, style="-", seed=0):
    """Synthetic IDX pair whose pixel[0,0] encodes the sample index (for order checks)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = np.arange(n) % 256
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    suffix = ".gz" if gz else ""
    write_idx(directory / f"{split}-images{style}idx3-ubyte{suffix}", images, gz=gz)
    write_idx(directory / f"{split}-labels{style}idx1-ubyte{suffix}", labels, gz=gz)
    return images, labels


def test_mnist_dir_test_set_only_is_split(tmp_path):
    images, labels = make_mnist(tmp_path, "t10k", 50)
    ds = load_mnist_dir(tmp_path, train_count=30, test_count=15)
    assert ds.name == "mnist" and isinstance(ds, Dataset)
    assert ds.train_x.shape == (30, 1, 28, 28) and ds.test_x.shape == (15, 1, 28, 28)
    assert ds.train_x.dtype == np.float32 and ds.train_y.dtype == np.int64
    np.testing.assert_allclose(ds.train_x[:, 0], images[:30] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(ds.test_x[:, 0], images[-15:] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.train_y, labels[:30])
    np.testing.assert_array_equal(ds.test_y, labels[-15:])
    assert ds.input_shape == (1, 28, 28)


def test_mnist_dir_default_counts_need_10000(tmp_path):
    make_mnist(tmp_path, "t10k", 20)
    with pytest.raises(DatasetError, match=r"cannot split 20 samples into 8000 train \+ 2000"):
        load_mnist_dir(tmp_path)


def test_mnist_dir_train_and_test_files(tmp_path):
    tr_x, tr_y = make_mnist(tmp_path, "train", 12, gz=False, style=".", seed=1)
    te_x, te_y = make_mnist(tmp_path, "t10k", 7, gz=False, style=".", seed=2)
    ds = load_mnist_dir(tmp_path)
    np.testing.assert_array_equal(ds.train_y, tr_y)
    np.testing.assert_array_equal(ds.test_y, te_y)
    np.testing.assert_allclose(ds.test_x[:, 0] * 255.0, te_x, atol=1e-3)
    capped = load_mnist_dir(tmp_path, train_count=5, test_count=3)
    assert len(capped.train_x) == 5 and len(capped.test_y) == 3
    with pytest.raises(DatasetError, match="only 12 available"):
        load_mnist_dir(tmp_path, train_count=13)


def test_mnist_dir_missing_files_names_directory(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte") as e:
        load_mnist_dir(tmp_path)
    assert str(tmp_path) in str(e.value)


def test_mnist_dir_images_without_labels(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DatasetError, match="found: t10k-images-idx3-ubyte"):
        load_mnist_dir(tmp_path)


def test_mnist_dir_count_mismatch(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(DatasetError, match="3 images but .* 4 labels"):
        load_mnist_dir(tmp_path, train_count=1, test_count=1)


def test_mnist_dir_label_out_of_range(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([1, 10, 2], np.uint8))
    with pytest.raises(DatasetError, match="label 10 outside 0..9"):
        load_mnist_dir(tmp_path, train_count=1, test_count=1)


def test_mnist_dir_wrong_image_size(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 8, 8), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(DatasetError, match=r"\[N, 28, 28\]"):
        load_mnist_dir(tmp_path, train_count=1, test_count=1)


def test_mnist_dir_not_a_directory(tmp_path):
    with pytest.raises(DatasetError, match="cannot list"):
        load_mnist_dir(tmp_path / "absent")


@pytest.mark.skipif(REAL_MNIST is None, reason="../shared/data/mnist not present")
def test_real_mnist_test_set():
    ds = get_dataset("mnist", data_dir=REAL_MNIST)
    assert ds.train_x.shape == (8000, 1, 28, 28) and ds.test_x.shape == (2000, 1, 28, 28)
    assert ds.train_y.min() >= 0 and max(ds.train_y.max(), ds.test_y.max()) == 9
    assert ds.num_classes == 10
    assert 0.0 <= ds.train_x.min() and ds.train_x.max() <= 1.0


# ---------------------------------------------------------------- get_dataset / batches

def test_get_dataset_dispatch(tmp_path):
    assert get_dataset().name == "digits"
    assert get_dataset("DIGITS", seed=3).name == "digits"
    with pytest.raises(DatasetError, match="data_dir"):
        get_dataset("mnist")
    with pytest.raises(DatasetError, match="unknown dataset"):
        get_dataset("cifar")


def test_batches_shuffled_epoch_covers_each_sample_once():
    x = np.arange(23, dtype=np.float32)[:, None]
    y = np.arange(23)
    got = list(batches(x, y, 5, np.random.default_rng(0)))
    assert [len(b[1]) for b in got] == [5, 5, 5, 5]
    seen = np.concatenate([b[1] for b in got])
    assert len(set(seen)) == 20 and not np.array_equal(seen, np.arange(20))
    for bx, by in got:
        np.testing.assert_array_equal(bx[:, 0], by)  # x and y stay paired
    again = np.concatenate([b[1] for b in batches(x, y, 5, np.random.default_rng(0))])
    np.testing.assert_array_equal(seen, again)


def test_batches_unshuffled_keep_last():
    x, y = np.arange(7), np.arange(7)
    got = [b[1].tolist() for b in batches(x, y, 3, None, shuffle=False, drop_last=False)]
    assert got == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(list(batches(x, y, 3, None, shuffle=False))) == 2


def test_batches_rejects_bad_args():
    with pytest.raises(ValueError):
        list(batches(np.zeros(3), np.zeros(4), 2, None))
    with pytest.raises(ValueError):
        list(batches(np.zeros(3), np.zeros(3), 0, None))
