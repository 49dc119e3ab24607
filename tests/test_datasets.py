"""Data sets beyond digits and MNIST: CIFAR-10 binary batches, Fashion-MNIST,
a user's .npz file and image folders, and the registry that names them.
Every file is generated here; the shared real data is only used when present."""
import gzip
import sys
from pathlib import Path

import numpy as np
import pytest

from ctrain.cli import main
from ctrain.datasets import get_dataset
from ctrain.data_cifar import CLASS_NAMES, RECORD_BYTES, load_cifar10_dir, read_cifar_batch
from ctrain.data_user import load_image_folder, load_npz, parse_image_size
from ctrain.datasets import DATASETS, FASHION_CLASS_NAMES
from ctrain.errors import DatasetError

from conftest import shared_data
from test_data import make_mnist


# ---------------------------------------------------------------- CIFAR-10

def cifar_images(n, start=0):
    """uint8 [n, 3, 32, 32] where every pixel value encodes (image, channel, row, col)."""
    i, c, r, k = np.meshgrid(np.arange(start, start + n), np.arange(3), np.arange(32), np.arange(32),
                             indexing="ij")
    return ((i * 7 + c * 50 + r * 3 + k) % 256).astype(np.uint8)


def write_cifar(path, images, labels, gz=False):
    recs = np.concatenate([np.asarray(labels, np.uint8)[:, None], images.reshape(len(images), -1)], axis=1)
    data = recs.tobytes()
    Path(path).write_bytes(gzip.compress(data) if gz else data)
    return Path(path)


def test_cifar_record_layout_is_label_then_rgb_planes(tmp_path):
    x = cifar_images(3)
    write_cifar(tmp_path / "b.bin", x, [9, 0, 4])
    images, labels = read_cifar_batch(tmp_path / "b.bin")
    assert images.dtype == np.uint8 and images.shape == (3, 3, 32, 32)
    np.testing.assert_array_equal(images, x)
    np.testing.assert_array_equal(labels, [9, 0, 4])
    # the first pixel byte of record 1 is its red (0, 0) pixel, the 1025th its green (0, 0)
    raw = (tmp_path / "b.bin").read_bytes()
    assert images[1, 0, 0, 0] == raw[RECORD_BYTES + 1] and images[1, 1, 0, 0] == raw[RECORD_BYTES + 1 + 1024]


def test_cifar_train_batches_in_order_and_test_batch(tmp_path):
    write_cifar(tmp_path / "data_batch_2.bin.gz", cifar_images(4, start=4), [4, 5, 6, 7], gz=True)
    write_cifar(tmp_path / "data_batch_1.bin", cifar_images(4), [0, 1, 2, 3])
    write_cifar(tmp_path / "test_batch.bin", cifar_images(2, start=100), [8, 9])
    ds = get_dataset("cifar10", tmp_path)
    assert ds.name == "cifar10" and ds.class_names == CLASS_NAMES and ds.num_classes == 10
    assert ds.train_x.dtype == np.float32 and ds.input_shape == (3, 32, 32)
    np.testing.assert_array_equal(ds.train_y, np.arange(8))
    np.testing.assert_array_equal(ds.test_y, [8, 9])
    np.testing.assert_array_equal(np.rint(ds.train_x * 255).astype(np.uint8), cifar_images(8))
    np.testing.assert_array_equal(np.rint(ds.test_x * 255).astype(np.uint8), cifar_images(2, start=100))
    capped = load_cifar10_dir(tmp_path, train_count=5, test_count=1)
    np.testing.assert_array_equal(capped.train_y, np.arange(5))
    np.testing.assert_array_equal(capped.test_y, [8])


def test_cifar_test_batch_alone_splits_first_train_last_test(tmp_path):
    labels = np.arange(12) % 10
    write_cifar(tmp_path / "test_batch.bin.gz", cifar_images(12), labels, gz=True)
    ds = load_cifar10_dir(tmp_path, train_count=8, test_count=3)
    np.testing.assert_array_equal(ds.train_y, labels[:8])
    np.testing.assert_array_equal(ds.test_y, labels[-3:])
    np.testing.assert_array_equal(np.rint(ds.test_x * 255).astype(np.uint8), cifar_images(12)[-3:])
    with pytest.raises(DatasetError, match="cannot split 12 samples into 8000 train"):
        load_cifar10_dir(tmp_path)  # the 8000/2000 default needs the full 10,000


def test_cifar_raw_file_wins_over_gzip(tmp_path):
    write_cifar(tmp_path / "test_batch.bin", cifar_images(2), [1, 1])
    write_cifar(tmp_path / "test_batch.bin.gz", cifar_images(2), [2, 2], gz=True)
    assert list(load_cifar10_dir(tmp_path, train_count=1, test_count=1).test_y) == [1]


@pytest.mark.parametrize("cut", [1, RECORD_BYTES - 1, -1])
def test_cifar_wrong_record_size(tmp_path, cut):
    data = write_cifar(tmp_path / "test_batch.bin", cifar_images(2), [0, 1]).read_bytes()
    (tmp_path / "test_batch.bin").write_bytes(data[:cut] if cut > 0 else data + b"x")
    with pytest.raises(DatasetError, match="not a whole number of 3073-byte CIFAR-10 records") as e:
        load_cifar10_dir(tmp_path, train_count=1, test_count=1)
    assert str(tmp_path / "test_batch.bin") in str(e.value)


def test_cifar_label_out_of_range(tmp_path):
    write_cifar(tmp_path / "test_batch.bin", cifar_images(3), [0, 9, 10])
    with pytest.raises(DatasetError, match=r"record 2 has label 10, outside 0..9"):
        load_cifar10_dir(tmp_path, train_count=1, test_count=1)


def test_cifar_missing_test_batch(tmp_path):
    write_cifar(tmp_path / "data_batch_1.bin", cifar_images(2), [0, 1])
    with pytest.raises(DatasetError, match="no CIFAR-10 test_batch.*found batches: data_batch_1.bin"):
        load_cifar10_dir(tmp_path)


def test_cifar_real_test_batch():
    d = shared_data("cifar10")
    if d is None:
        pytest.skip("../shared/data/cifar10 not present")
    ds = get_dataset("cifar10", d)
    assert ds.train_x.shape == (8000, 3, 32, 32) and ds.test_x.shape == (2000, 3, 32, 32)
    np.testing.assert_array_equal(ds.test_y[:0], [])
    # the published test set: labels begin cat, ship, ship, airplane, frog; 1000 images per class
    np.testing.assert_array_equal(ds.train_y[:5], [3, 8, 8, 0, 6])
    np.testing.assert_array_equal(np.bincount(np.concatenate([ds.train_y, ds.test_y])), [1000] * 10)


# ---------------------------------------------------------------- Fashion-MNIST

def test_fashion_mnist_reads_idx_files(tmp_path):
    make_mnist(tmp_path, "t10k", 20)
    ds = get_dataset("fashion-mnist", tmp_path, train_count=15, test_count=5)
    assert ds.name == "fashion-mnist" and ds.class_names == FASHION_CLASS_NAMES
    assert ds.input_shape == (1, 28, 28) and len(ds.train_y) == 15 and len(ds.test_y) == 5


def test_fashion_mnist_real_test_set():
    d = shared_data("fashion-mnist")
    if d is None:
        pytest.skip("../shared/data/fashion-mnist not present")
    ds = get_dataset("fashion-mnist", d)
    assert ds.train_x.shape == (8000, 1, 28, 28) and ds.test_x.shape == (2000, 1, 28, 28)
    np.testing.assert_array_equal(np.bincount(np.concatenate([ds.train_y, ds.test_y])), [1000] * 10)


# ---------------------------------------------------------------- .npz

def test_npz_nchw_uint8_with_test_arrays(tmp_path):
    x = np.arange(5 * 3 * 4 * 4, dtype=np.uint8).reshape(5, 3, 4, 4)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.array([0, 1, 2, 1, 0]), x_test=x[:2],
             y_test=np.array([2, 2], np.uint8), class_names=np.array(["a", "b", "c", "unused"]))
    ds = get_dataset("npz", tmp_path / "d.npz")
    assert ds.name == "npz" and ds.class_names == ("a", "b", "c", "unused") and ds.num_classes == 4
    assert ds.train_x.dtype == np.float32 and ds.train_y.dtype == np.int64 and ds.test_y.dtype == np.int64
    np.testing.assert_array_equal(ds.train_x, x.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(ds.test_y, [2, 2])


def test_npz_nhwc_float_is_transposed(tmp_path):
    x = np.random.default_rng(0).random((6, 5, 7, 3)).astype(np.float64)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(6))
    ds = load_npz(tmp_path / "d.npz", train_count=4, test_count=2)
    assert ds.input_shape == (3, 5, 7)
    np.testing.assert_array_equal(ds.train_x, x[:4].transpose(0, 3, 1, 2).astype(np.float32))
    np.testing.assert_array_equal(ds.test_y, [4, 5])
    assert ds.num_classes == 6


def test_npz_grey_and_explicit_layout(tmp_path):
    np.savez(tmp_path / "g.npz", x_train=np.zeros((10, 8, 8), np.uint8), y_train=np.zeros(10, np.int32))
    ds = load_npz(tmp_path / "g.npz")
    assert ds.input_shape == (1, 8, 8) and len(ds.train_y) == 8 and len(ds.test_y) == 2  # 20% held out
    x = np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3)  # ambiguous: 3 at both ends
    np.savez(tmp_path / "a.npz", x_train=x, y_train=[0, 1])
    with pytest.raises(DatasetError, match="unknown layout.*layout='NCHW' or 'NHWC'"):
        load_npz(tmp_path / "a.npz")
    np.savez(tmp_path / "l.npz", x_train=x, y_train=[0, 1], layout="nhwc")
    assert load_npz(tmp_path / "l.npz", test_count=0).input_shape == (3, 3, 4)
    np.savez(tmp_path / "c.npz", x_train=x, y_train=[0, 1], layout="NCHW")
    assert load_npz(tmp_path / "c.npz", test_count=0).input_shape == (3, 4, 3)


@pytest.mark.parametrize("arrays, match", [
    ({"x_train": np.zeros((4, 1, 2, 2))}, "missing array y_train"),
    ({"x_train": np.zeros((4, 1, 2, 2)), "y_train": np.zeros(4, int), "x_test": np.zeros((1, 1, 2, 2))},
     "missing array y_test"),
    ({"x_train": np.zeros((4, 1, 2, 2)), "y_train": np.zeros(3, int)}, "4 images but 3 labels"),
    ({"x_train": np.zeros((4, 1, 2, 2)), "y_train": np.zeros(4, int), "x_test": np.zeros((2, 1, 2, 2)),
      "y_test": np.zeros(1, int)}, "y_test: 2 images but 1 labels"),
    ({"x_train": np.zeros((2, 1, 2, 2)), "y_train": [0, 2], "class_names": np.array(["a", "b"])},
     "label 2 out of range for the 2 class names"),
    ({"x_train": np.zeros((2, 1, 2, 2)), "y_train": [0, -1]}, "label -1 is negative"),
    ({"x_train": np.zeros((2, 1, 2, 2)), "y_train": [0.0, 1.0]}, "labels must be a 1-D integer array"),
    ({"x_train": np.zeros((2, 1, 2, 2), np.int16), "y_train": [0, 1]}, "must be uint8.*or float"),
    ({"x_train": np.full((2, 1, 2, 2), np.nan), "y_train": [0, 1]}, "NaN or infinite"),
    ({"x_train": np.zeros((2, 2)), "y_train": [0, 1]}, r"must be \[N, H, W\]"),
    ({"x_train": np.zeros((2, 1, 2, 2)), "y_train": [0, 1], "x_test": np.zeros((1, 1, 4, 4)),
      "y_test": [0]}, r"train images are \[1, 2, 2\] but test images are \[1, 4, 4\]"),
    ({"x_train": np.zeros((2, 1, 2, 2)), "y_train": [0, 1], "images": np.zeros(1)}, "unknown array images"),
    ({"x_train": np.zeros((2, 1, 2, 2)), "y_train": [0, 1], "layout": "CHWN"}, "layout must be one of"),
])
def test_npz_bad_input_is_one_line(tmp_path, arrays, match):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DatasetError, match=match) as e:
        load_npz(tmp_path / "bad.npz", test_count=0)
    assert "\n" not in str(e.value) and str(tmp_path / "bad.npz") in str(e.value)


def test_npz_not_an_archive(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(DatasetError, match="not a readable .npz"):
        load_npz(tmp_path / "junk.npz")
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(DatasetError, match="single .npy array"):
        load_npz(tmp_path / "one.npy")
    with pytest.raises(DatasetError, match="file not found"):
        load_npz(tmp_path / "none.npz")
    with pytest.raises(DatasetError, match="is a directory"):
        load_npz(tmp_path)
    np.savez(tmp_path / "obj.npz", x_train=np.zeros((2, 1, 2, 2)), y_train=[0, 1],
             class_names=np.array(["a", None], dtype=object))
    with pytest.raises(DatasetError, match="object arrays"):
        load_npz(tmp_path / "obj.npz")


# ---------------------------------------------------------------- image folders

PIL = pytest.importorskip("PIL.Image", reason="image folders need Pillow (pip install 'ctrain[images]')")


def write_folder(root, per_class, names=("dog", "cat", "ant"), size=(6, 5), mode="L", seed=0):
    """PNG files root/<name>/<i>.png with random pixels; returns {path: (array, name)}."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in names:
        (Path(root) / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape = size if mode == "L" else size + (3,)
            a = rng.integers(0, 256, shape, dtype=np.uint8)
            path = Path(root) / name / f"{i:03d}.png"
            PIL.fromarray(a, mode).save(path)
            out[str(path)] = (a, name)
    return out


def _as_uint8(x):
    return np.rint(x * 255).astype(np.uint8)


def test_folder_classes_are_sorted_names_and_pixels_exact(tmp_path):
    files = write_folder(tmp_path, 5)
    (tmp_path / "README.txt").write_text("not a class")  # files beside the class folders are ignored
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    ds = get_dataset("folder", tmp_path)
    assert ds.name == "folder" and ds.class_names == ("ant", "cat", "dog") and ds.num_classes == 3
    assert ds.input_shape == (1, 6, 5) and len(ds.train_y) == 12 and len(ds.test_y) == 3
    # every image lands exactly once, with its folder's label
    want = sorted((a.tobytes(), ds.class_names.index(n)) for a, n in files.values())
    got = sorted((img[0].tobytes(), int(lab)) for img, lab in
                 zip(_as_uint8(np.concatenate([ds.train_x, ds.test_x])), np.concatenate([ds.train_y, ds.test_y])))
    assert got == want
    assert len(set(ds.train_y[:6])) > 1  # classes are mixed before the split, not in folder order
    again = load_image_folder(tmp_path)
    np.testing.assert_array_equal(again.train_x, ds.train_x)
    small = load_image_folder(tmp_path, train_count=4, test_count=2)
    np.testing.assert_array_equal(small.train_x, ds.train_x[:4])
    np.testing.assert_array_equal(small.test_x, ds.test_x[-2:])


def test_folder_train_test_subfolders(tmp_path):
    write_folder(tmp_path / "train", 3, names=("b", "a"))
    write_folder(tmp_path / "test", 2, names=("b",), seed=1)
    ds = load_image_folder(tmp_path)
    assert ds.class_names == ("a", "b") and len(ds.train_y) == 6 and len(ds.test_y) == 2
    assert list(ds.test_y) == [1, 1]
    write_folder(tmp_path / "test", 1, names=("zebra",))
    with pytest.raises(DatasetError, match="class folder 'zebra' is not in"):
        load_image_folder(tmp_path)


def test_folder_grey_and_rgb_mix_to_three_channels(tmp_path):
    grey = write_folder(tmp_path, 1, names=("g",))
    rgb = write_folder(tmp_path, 1, names=("r",), mode="RGB")
    ds = load_image_folder(tmp_path, test_count=0)
    assert ds.input_shape == (3, 6, 5)
    (g,), (r,) = grey.values(), rgb.values()
    x = _as_uint8(ds.train_x)
    gi, ri = list(ds.train_y).index(0), list(ds.train_y).index(1)
    for c in range(3):
        np.testing.assert_array_equal(x[gi, c], g[0])
    np.testing.assert_array_equal(x[ri], r[0].transpose(2, 0, 1))


def test_folder_sizes_must_match_or_be_resized(tmp_path):
    write_folder(tmp_path, 2, names=("a",), size=(6, 6))
    write_folder(tmp_path, 2, names=("b",), size=(8, 4))
    with pytest.raises(DatasetError, match=r"image is \d+x\d+ but .* is \d+x\d+ \(HxW\); .*--image-size HxW"):
        load_image_folder(tmp_path)
    ds = load_image_folder(tmp_path, image_size="5x7", test_count=0)
    assert ds.input_shape == (1, 5, 7)
    assert load_image_folder(tmp_path, image_size="6", test_count=0).input_shape == (1, 6, 6)


def test_folder_rgba_drops_alpha_and_16_bit_is_refused(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (4, 4, 4), dtype=np.uint8)
    (tmp_path / "x").mkdir()
    PIL.fromarray(a, "RGBA").save(tmp_path / "x" / "a.png")
    ds = load_image_folder(tmp_path, test_count=0)
    np.testing.assert_array_equal(_as_uint8(ds.train_x[0]), a[..., :3].transpose(2, 0, 1))
    PIL.fromarray(np.zeros((4, 4), np.uint16) + 300).save(tmp_path / "x" / "b.png")
    with pytest.raises(DatasetError, match="b.png: image mode I.* not supported"):
        load_image_folder(tmp_path, test_count=0)


def test_folder_bad_input(tmp_path, monkeypatch):
    with pytest.raises(DatasetError, match="image folder not found"):
        load_image_folder(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no class folders"):
        load_image_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty: class folder has no images"):
        load_image_folder(tmp_path)
    (tmp_path / "empty" / "broken.png").write_bytes(b"\x89PNG but not really")
    with pytest.raises(DatasetError, match="broken.png: cannot decode image"):
        load_image_folder(tmp_path, test_count=0)
    with pytest.raises(DatasetError, match="expected N or HxW"):
        parse_image_size("32x")
    monkeypatch.setitem(sys.modules, "PIL", None)  # as if Pillow were not installed
    with pytest.raises(DatasetError, match=r"needs Pillow: pip install 'ctrain\[images\]'"):
        load_image_folder(tmp_path, test_count=0)


# ---------------------------------------------------------------- registry

def test_registry_is_the_cli_choice_list(capsys):
    for name in [n for n in DATASETS if DATASETS[n].needs_path]:
        assert main(["train", "--dataset", name, "--data-dir", "/nonexistent", "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("ctrain: error: /nonexistent") and err.count("\n") == 1, err
    assert main(["train", "--dataset", "imagenet"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_registry_options_and_paths(tmp_path):
    with pytest.raises(DatasetError, match="npz: data_dir is required"):
        get_dataset("npz")
    with pytest.raises(DatasetError, match="option 'image_size' does not apply"):
        get_dataset("mnist", tmp_path, image_size="8")
    with pytest.raises(DatasetError, match="unknown dataset 'imagenet'; choose one of digits, mnist"):
        get_dataset("imagenet")
    assert parse_image_size("28x32") == (28, 32) and parse_image_size(None) is None
