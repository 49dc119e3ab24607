"""Per-channel normalisation and on-the-fly augmentation: exact statistics,
exact crops and flips, quantization commutes with augmentation, and a run
with augmentation resumes bit for bit from a checkpoint."""
import numpy as np
import pytest

from ctrain import checkpoint, hostlib
from ctrain.compiler import INPUT_EXP
from ctrain.data import Dataset
from ctrain.errors import CheckpointError, DatasetError
from ctrain.preprocess import NORM_STD, Augment, normalise
from ctrain.train import TrainConfig, Trainer

from test_user_data_training import band_images


def _ds(train_x, test_x):
    return Dataset(train_x, np.zeros(len(train_x), np.int64), test_x, np.zeros(len(test_x), np.int64), "t")


def test_normalise_per_channel_from_the_training_split():
    rng = np.random.default_rng(0)
    train = np.stack([rng.random((50, 6, 6)), 0.2 * rng.random((50, 6, 6)) + 0.5,
                      np.full((50, 6, 6), 0.3)], axis=1).astype(np.float32)
    test = rng.random((7, 3, 6, 6)).astype(np.float32)
    ds, stats = normalise(_ds(train, test))
    assert ds.train_x.dtype == np.float32 and ds.test_x.shape == test.shape
    np.testing.assert_allclose(ds.train_x.mean(axis=(0, 2, 3)), 0.0, atol=1e-6)
    np.testing.assert_allclose(ds.train_x[:, :2].std(axis=(0, 2, 3)), NORM_STD, rtol=1e-5)
    assert not ds.train_x[:, 2].any()  # a constant channel is only centred
    mean = train.astype(np.float64).mean(axis=(0, 2, 3))
    np.testing.assert_allclose(stats["mean"], mean, rtol=1e-12)
    assert stats["std"][2] == 1.0 and stats["scale"] == NORM_STD
    # the test split uses the training statistics
    np.testing.assert_allclose(ds.test_x[:, 0], (test[:, 0] - mean[0]) / stats["std"][0] * NORM_STD, atol=1e-6)


def test_normalise_counts_what_the_input_format_saturates():
    x = np.zeros((100, 1, 1, 1), np.float32)
    x[0] = 1.0  # mean 0.01, std 0.0995: the outlier lands at +2.49, past the format's 127/128
    ds, stats = normalise(_ds(x, x[:1]))
    assert stats["saturated"] == 0.01
    assert hostlib.quantize(ds.train_x, INPUT_EXP)[1] == 1


def test_crop_and_flip_are_windows_of_the_zero_padded_batch():
    x = np.random.default_rng(1).integers(1, 100, (64, 2, 5, 7)).astype(np.float32)
    aug = Augment("crop=2,flip", seed=5)
    out = aug(x, it=3)
    dy, dx, flip = aug.draws(3, len(x))
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for i in range(len(x)):
        want = padded[i, :, dy[i]:dy[i] + 5, dx[i]:dx[i] + 7]
        np.testing.assert_array_equal(out[i], want[:, :, ::-1] if flip[i] else want)
    assert 0 < flip.sum() < len(x) and set(dy) == set(range(5)) == set(dx)
    np.testing.assert_array_equal(aug(x, it=3), out)  # the same iteration draws the same
    assert not np.array_equal(aug(x, it=4), out)
    assert not np.array_equal(Augment("crop=2,flip", seed=6)(x, it=3), out)


def test_flip_only_and_crop_only():
    x = np.arange(2 * 1 * 3 * 4, dtype=np.int8).reshape(2, 1, 3, 4)
    out = Augment("flip", 0)(np.tile(x, (50, 1, 1, 1)), 0)
    same = [np.array_equal(f, x[i % 2]) for i, f in enumerate(out)]
    mirrored = [np.array_equal(f, x[i % 2][:, :, ::-1]) for i, f in enumerate(out)]
    assert all(a != b for a, b in zip(same, mirrored)) and 25 <= sum(mirrored) <= 75
    assert Augment("crop", 0).pad == 4 and not Augment("crop", 0).flip


def test_augmenting_quantized_inputs_equals_quantizing_augmented_ones():
    x = np.random.default_rng(2).normal(0, 0.4, (32, 3, 8, 8)).astype(np.float32)
    aug = Augment("crop=3,flip", seed=0)
    q = hostlib.quantize(x, INPUT_EXP)[0]
    np.testing.assert_array_equal(aug(q, 7), hostlib.quantize(aug(x, 7), INPUT_EXP)[0])


@pytest.mark.parametrize("spec, match", [("rotate", "unknown item 'rotate'"), ("crop=0", "nothing to do"),
                                         ("crop=-1", "unknown item"), ("flip,,", "unknown item ''")])
def test_bad_augment_spec(spec, match):
    with pytest.raises(DatasetError, match=match):
        Augment(spec, 0)


# ---------------------------------------------------------------- in the trainer

@pytest.fixture(scope="module")
def bands(tmp_path_factory):
    x, y = band_images(200, size=8, seed=3)
    path = tmp_path_factory.mktemp("bands") / "bands.npz"
    np.savez(path, x_train=x[:160], y_train=y[:160], x_test=x[160:], y_test=y[160:])
    return str(path)


def _cfg(path, **kw):
    base = dict(dataset="npz", data_dir=path, model="digits-cnn", epochs=3, batch_size=16, warmup_epochs=1,
                prune=0.5, prune_at=0.5, seed=4, normalize=True, augment="crop=1,flip")
    base.update(kw)
    return TrainConfig(**base)


def _state(path):
    arrays, meta = checkpoint.load(path)
    return {k: v for k, v in arrays.items() if k.startswith(("ddr_", "float_", "mask"))}, meta


def test_augmented_run_resumes_bit_identical(bands, tmp_path):
    whole = Trainer(_cfg(bands))
    whole.run(progress=False, verbose=False)
    whole.save(tmp_path / "whole.ckpt")

    cut = Trainer(_cfg(bands))
    while cut.it < 13:  # into the fixed-point phase (10 iterations an epoch), before pruning at 15
        cut.step(cut.batch_indices())
    assert cut.fixed
    cut.save(tmp_path / "cut.ckpt")
    resumed = Trainer(_cfg(bands))
    resumed.load(tmp_path / "cut.ckpt")
    resumed.run(progress=False, verbose=False)
    resumed.save(tmp_path / "resumed.ckpt")

    a, meta_a = _state(tmp_path / "whole.ckpt")
    b, meta_b = _state(tmp_path / "resumed.ckpt")
    assert meta_a["it"] == meta_b["it"] == 30 and a.keys() == b.keys() and "mask0" in a
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert meta_a["exponents"] == meta_b["exponents"]
    assert meta_a["data"]["normalize"] == whole.norm and len(meta_a["data"]["normalize"]["mean"]) == 1

    plain = Trainer(_cfg(bands, augment=None))
    plain.run(progress=False, verbose=False)
    plain.save(tmp_path / "plain.ckpt")
    c, _ = _state(tmp_path / "plain.ckpt")
    assert not np.array_equal(a["float_w0"], c["float_w0"])  # augmentation changed what was trained


def test_resume_refuses_other_augmentation_or_normalisation(bands, tmp_path):
    t = Trainer(_cfg(bands))
    t.step(t.batch_indices())
    t.save(tmp_path / "a.ckpt")
    with pytest.raises(CheckpointError, match="augment 'crop=1,flip' \\(this run: 'flip'\\)"):
        Trainer(_cfg(bands, augment="flip")).load(tmp_path / "a.ckpt")
    with pytest.raises(CheckpointError, match="normalize True \\(this run: False\\)"):
        Trainer(_cfg(bands, normalize=False)).load(tmp_path / "a.ckpt")
