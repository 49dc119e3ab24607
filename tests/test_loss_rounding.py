"""The loss gradient's rounding to int8 (TrainConfig.loss_rounding): stochastic
rounding is unbiased, exact where the value is already a multiple of the LSB,
saturating, drawn the same for the same (seed, iteration), and a run that uses
it trains, repeats and resumes to the same bytes."""
import numpy as np
import pytest

from conftest import checkpoint_without
from ctrain.errors import ConfigError
from ctrain.runtime import stochastic_quantize
from ctrain.train import TrainConfig, Trainer


def test_multiples_of_the_lsb_are_exact_and_the_ends_saturate():
    e = -9
    k = np.arange(-128, 128)
    assert np.array_equal(stochastic_quantize(k * 2.0 ** e, e, 0, 0), k.astype(np.int8))
    # 127.5 LSB rounds to 127 or 128, which saturates: always 127; -127.5 to -128 or -127
    q = stochastic_quantize(np.full(1000, 127.5 * 2.0 ** e), e, 1, 2)
    assert np.all(q == 127)
    q = stochastic_quantize(np.full(1000, -127.5 * 2.0 ** e), e, 1, 2)
    assert set(q.tolist()) == {-128, -127}


def test_stochastic_rounding_is_unbiased_where_nearest_is_not():
    e = -7
    g = np.full(40000, 0.3 * 2.0 ** e)  # 0.3 LSB: nearest gives 0 every time
    q = stochastic_quantize(g, e, 5, 17).astype(np.float64)
    assert set(np.unique(q).tolist()) == {0.0, 1.0}
    # a mean of 40,000 Bernoulli(0.3) draws: standard deviation 0.0023, 0.01 is 4.4 of them
    assert abs(q.mean() - 0.3) < 0.01
    g = np.full(40000, -2.75 * 2.0 ** e)
    assert abs(stochastic_quantize(g, e, 5, 18).mean() + 2.75) < 0.01


def test_draws_repeat_for_the_same_seed_and_iteration_only():
    g = np.random.default_rng(0).normal(0, 0.01, (64, 10))
    a = stochastic_quantize(g, -12, 3, 7)
    assert np.array_equal(a, stochastic_quantize(g, -12, 3, 7))
    assert not np.array_equal(a, stochastic_quantize(g, -12, 3, 8))
    assert not np.array_equal(a, stochastic_quantize(g, -12, 4, 7))


def test_a_float_run_refuses_it():
    with pytest.raises(ConfigError, match="loss_rounding: stochastic rounds the 8-bit loss gradient.*--float"):
        TrainConfig(fixed_point=False, loss_rounding="stochastic").validate()
    with pytest.raises(ConfigError, match="loss_rounding"):
        TrainConfig(loss_rounding="up").validate()


def _layers(t):
    return {k: v.copy() for k, v in t.runtime.layer_arrays().items()}


def test_a_stochastic_run_repeats_differs_from_nearest_and_resumes(digits, tmp_path):
    cfg = dict(epochs=1, batch_size=32, warmup_epochs=0, seed=2, loss_rounding="stochastic")
    a, b = Trainer(TrainConfig(**cfg), dataset=digits), Trainer(TrainConfig(**cfg), dataset=digits)
    near = Trainer(TrainConfig(**{**cfg, "loss_rounding": "nearest"}), dataset=digits)
    for t in (a, b, near):
        for _ in range(4):
            t.step(t.batch_indices())
        assert t.fixed
    # cut: save after 4 steps, resume, and go on in step with the uninterrupted run
    path = str(tmp_path / "run.ckpt")
    b.save(path)
    r = Trainer.from_checkpoint(path, dataset=digits)
    assert r.cfg.loss_rounding == "stochastic"
    for t in (a, r, near):
        for _ in range(3):
            t.step(t.batch_indices())
    la, lr_, ln = _layers(a), _layers(r), _layers(near)
    assert la.keys() == lr_.keys()
    for k in la:
        assert np.array_equal(la[k], lr_[k]), k
    assert any(not np.array_equal(la[k], ln[k]) for k in la)


def test_a_checkpoint_from_before_the_option_resumes_rounding_to_nearest(digits, tmp_path):
    path = checkpoint_without(TrainConfig(epochs=1, batch_size=32, warmup_epochs=0), digits,
                              tmp_path / "old.ckpt", "loss_rounding")
    assert Trainer.from_checkpoint(path, dataset=digits).cfg.loss_rounding == "nearest"
