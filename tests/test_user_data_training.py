"""A user's own data trains from the command line: a generated .npz file, an
image folder and CIFAR-10-format batches (with normalisation and
augmentation), each reporting test accuracy."""
import re

import numpy as np

from ctrain.cli import main

from test_datasets import write_cifar

CLASSES = ("north-west", "north-east", "south-west", "south-east")


def quadrant_images(n, size=8, seed=0):
    """uint8 [n, size, size]: dim noise, and a bright quadrant that is the label."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % len(CLASSES))
    x = rng.integers(0, 60, (n, size, size), dtype=np.uint8)
    h = size // 2
    for i, c in enumerate(y):
        r, k = divmod(int(c), 2)
        x[i, r * h:(r + 1) * h, k * h:(k + 1) * h] = rng.integers(180, 256, (h, h), dtype=np.uint8)
    return x, y


def band_images(n, size=32, bands=4, seed=0):
    """uint8 [n, size, size]: dim noise, and one bright horizontal band, the label
    (unchanged by a horizontal flip, and by a crop of a few pixels)."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % bands)
    x = rng.integers(0, 60, (n, size, size), dtype=np.uint8)
    h = size // bands
    for i, c in enumerate(y):
        x[i, c * h:(c + 1) * h] = rng.integers(180, 256, (h, size), dtype=np.uint8)
    return x, y


def _train(capsys, *args):
    code = main(["train", *args, "--epochs", "3", "--batch-size", "16", "--prune", "0", "--warmup", "1",
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    m = re.search(r"test accuracy: ([\d.]+)% \(8-bit fixed point, (\S+) on (\S+), (\d+) held-out images\)", out)
    assert m, out
    return float(m[1]), m[2], m[3], int(m[4])


def test_npz_trains_from_the_cli(tmp_path, capsys):
    x, y = quadrant_images(300)
    np.savez(tmp_path / "quadrants.npz", x_train=x[:240], y_train=y[:240], x_test=x[240:], y_test=y[240:],
             class_names=np.array(CLASSES))
    acc, model, dataset, n_test = _train(capsys, "--dataset", "npz", "--data-dir", str(tmp_path / "quadrants.npz"),
                                         "--model", "digits-cnn")
    assert (model, dataset, n_test) == ("digits-cnn", "npz", 60)
    assert acc >= 90.0  # chance is 25%


def test_image_folder_trains_from_the_cli(tmp_path, capsys):
    from PIL import Image
    x, y = quadrant_images(300, seed=1)
    for i, (a, c) in enumerate(zip(x, y)):
        folder = tmp_path / CLASSES[c]
        folder.mkdir(exist_ok=True)
        Image.fromarray(a, "L").save(folder / f"{i:04d}.png")
    acc, model, dataset, n_test = _train(capsys, "--dataset", "folder", "--data-dir", str(tmp_path),
                                         "--model", "digits-cnn")
    assert (model, dataset, n_test) == ("digits-cnn", "folder", 60)  # 20% of 300 held out
    assert acc >= 90.0


def test_cifar_batches_train_with_normalisation_and_augmentation(tmp_path, capsys):
    """3x32x32 colour data, channel-normalised and randomly cropped/flipped on the host."""
    grey, y = band_images(160, seed=2)
    x = np.repeat(grey[:, None], 3, axis=1)
    x[:, 2] //= 2  # unequal channel statistics
    write_cifar(tmp_path / "data_batch_1.bin", x[:128], y[:128])
    write_cifar(tmp_path / "test_batch.bin", x[128:], y[128:])
    acc, model, dataset, n_test = _train(capsys, "--dataset", "cifar10", "--data-dir", str(tmp_path),
                                         "--model", "digits-cnn", "--normalize", "--augment", "crop=2,flip",
                                         "--lr", "0.02")
    assert (model, dataset, n_test) == ("digits-cnn", "cifar10", 32)
    assert acc >= 90.0


def test_bad_augment_spec_is_one_line(capsys):
    assert main(["train", "--augment", "rotate", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err == "ctrain: error: augment 'rotate': unknown item 'rotate'; use flip, crop or crop=P (e.g. crop=4,flip)\n"
