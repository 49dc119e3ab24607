"""20 iterations of ResNet-20 training (batch 2, CIFAR-shaped data) leave
byte-identical DDR under the numpy and the csim engine: residual adds, the
forks' error sums, global average pooling, batch norm and projection
shortcuts (dense: the sparse units are covered by test_engines_agree.py).
Slow: the C-sim runs a ResNet-20 iteration at batch 2 in 15-30 s, so the
accelerator's timeout is raised for it."""
import numpy as np
import pytest

from ctrain.data import Dataset
from ctrain.device.emulated import EmulatedDevice
from ctrain.isa import Op
from ctrain.train import TrainConfig, Trainer
from conftest import csim_or_skip


def _cifar_like(rng, n):
    """3x32x32 images with a class-dependent colour patch: learnable, no files."""
    y = rng.integers(0, 10, n)
    x = rng.random((n, 3, 32, 32), dtype=np.float32) * 0.3
    for i, c in enumerate(y):
        r, q = divmod(int(c), 4)
        x[i, int(c) % 3, 2 + 9 * r:9 + 9 * r, 1 + 7 * q:8 + 7 * q] += 0.7
    return np.clip(x, 0, 1), y.astype(np.int64)


def _arena(engine, ds):
    cfg = TrainConfig(dataset="synthetic", model="resnet20", epochs=1, batch_size=2, warmup_epochs=0.1,
                      prune=0.0, lr=0.02, seed=3)
    t = Trainer(cfg, dataset=ds, device=EmulatedDevice(ddr_bytes=64 << 20, engine=engine))
    while t.it < 20:
        t.step(t.batch_indices())
    rt = t.runtime
    return np.array(rt.device.read_ddr(rt.arena.physical_address, rt.arena.nbytes)), rt


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_resnet20_training_ddr_identical_numpy_vs_csim(monkeypatch):
    csim_or_skip()
    from ctrain import runtime
    defaults = list(runtime.Runtime.__init__.__defaults__)   # window_log2, timeout, ...
    defaults[1] = 3600.0
    monkeypatch.setattr(runtime.Runtime.__init__, "__defaults__", tuple(defaults))
    rng = np.random.default_rng(1)
    tx, ty = _cifar_like(rng, 40)
    vx, vy = _cifar_like(rng, 8)
    ds = Dataset(tx, ty, vx, vy, "synthetic")
    a, rt = _arena("numpy", ds)
    b, _ = _arena("csim", ds)
    ops = {int(i["op"]) for i in rt.program.insns}
    assert {Op.ADD, Op.AVGPOOL_FP, Op.AVGPOOL_BP} <= ops
    assert a.size == b.size and np.count_nonzero(a) > a.size // 10
    diff = np.flatnonzero(a != b)
    where = [name for name, r in rt.program.plan.regions.items()
             if diff.size and r.offset <= diff[0] < r.offset + r.nbytes]
    assert diff.size == 0, f"{diff.size} bytes differ, first in region {where}"
