"""20 iterations of LeNet-5 training leave byte-identical DDR (int8 weights,
master weights, momentum, gradients, activations, errors, statistics, table)
under the numpy and the csim engine, through dense and, after pruning at
iteration 10, sparse execution."""
import numpy as np
import pytest

from ctrain.data import Dataset
from ctrain.device.emulated import EmulatedDevice
from ctrain.train import TrainConfig, Trainer
from conftest import csim_or_skip


def _digits_like(rng, n):
    """28x28 images with class-dependent blobs: learnable, no files needed."""
    y = rng.integers(0, 10, n)
    x = rng.random((n, 1, 28, 28), dtype=np.float32) * 0.2
    for i, c in enumerate(y):
        r, q = divmod(int(c), 4)
        x[i, 0, 4 + 7 * r:10 + 7 * r, 2 + 6 * q:8 + 6 * q] += 0.8
    return np.clip(x, 0, 1), y.astype(np.int64)


def _arena(engine, ds):
    cfg = TrainConfig(dataset="synthetic", model="lenet5", epochs=1, batch_size=16, warmup_epochs=0.1,
                      prune=0.6, prune_at=0.5, lr=0.05, seed=4, sparse_exec="always")
    t = Trainer(cfg, dataset=ds, device=EmulatedDevice(ddr_bytes=32 << 20, engine=engine))
    while t.it < 20:
        t.step(t.batch_indices())
    rt = t.runtime
    assert any(L.sparse for L in rt.program.layers)
    return np.array(rt.device.read_ddr(rt.arena.physical_address, rt.arena.nbytes)), rt


@pytest.mark.slow
def test_lenet5_training_ddr_identical_numpy_vs_csim():
    csim_or_skip()
    rng = np.random.default_rng(0)
    tx, ty = _digits_like(rng, 320)
    vx, vy = _digits_like(rng, 32)
    ds = Dataset(tx, ty, vx, vy, "synthetic")
    a, rt = _arena("numpy", ds)
    b, _ = _arena("csim", ds)
    assert a.size == b.size and np.count_nonzero(a) > a.size // 10
    diff = np.flatnonzero(a != b)
    where = [name for name, r in rt.program.plan.regions.items()
             if diff.size and r.offset <= diff[0] < r.offset + r.nbytes]
    assert diff.size == 0, f"{diff.size} bytes differ, first in region {where}"
    stats = rt.views["stats"]
    assert stats["count"].sum() > 0  # the statistics were written (and compared)
