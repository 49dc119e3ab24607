"""Compression: pruning criteria, pruned weights staying exactly zero, sparse
execution bit-identical to dense execution with the mask, memory saved, and
batch norm frozen into the fixed-point stream."""
import numpy as np
import pytest

from ctrain import hostlib
from ctrain.model import BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential
from ctrain.errors import ConfigError
from ctrain.pruning import prune_masks, sparsity_of
from ctrain.train import TrainConfig, Trainer
from conftest import checkpoint_without


def test_prune_masks_hit_targets_and_only_shrink():
    rng = np.random.default_rng(0)
    ws = [rng.normal(size=(6, 1, 5, 5)), rng.normal(size=(16, 6, 5, 5)) * 0.1, rng.normal(size=(10, 84, 1, 1))]
    m = prune_masks(ws, 0.8, scope="layer")
    assert [round(s, 3) for s in sparsity_of(m)[0]] == [0.8, 0.8, 0.8]
    kept = np.abs(ws[1][m[1]]).min()
    assert kept >= np.abs(ws[1][~m[1]]).max()  # the smallest kept beats the largest pruned
    f = prune_masks(ws, 0.5, mode="filter", scope="layer")
    for w, mk in zip(ws, f):  # whole filters go
        per = mk.reshape(w.shape[0], -1)
        assert np.all(per.all(axis=1) | ~per.any(axis=1))
    g = prune_masks(ws, 0.8, scope="global")
    per, total = sparsity_of(g)
    assert abs(total - 0.8) < 1e-3 and all(mk.any() for mk in g)
    assert per[1] > 0.99 and per[0] < 0.8  # the small-magnitude layer goes first
    again = prune_masks(ws, 0.9, masks=m, scope="layer")
    assert all((a <= b).all() for a, b in zip(again, m))


def test_a_spared_first_layer_keeps_every_weight_and_the_others_carry_its_share():
    rng = np.random.default_rng(0)
    ws = [rng.normal(size=(6, 1, 5, 5)), rng.normal(size=(16, 6, 5, 5)), rng.normal(size=(10, 84, 1, 1))]
    n = [w.size for w in ws]                                   # 150, 2400, 840
    rate = 0.8 * sum(n) / (n[1] + n[2])                        # 0.8376...
    for scope in ("layer", "global"):
        m = prune_masks(ws, 0.8, scope=scope, spare=1)
        assert m[0].all()
        pruned = [int((~mk).sum()) for mk in m]
        if scope == "layer":
            assert pruned == [0, round(rate * n[1]), round(rate * n[2])]
        else:
            assert sum(pruned) == round(rate * (n[1] + n[2]))
        assert abs(sparsity_of(m)[1] - 0.8) < 1e-3
    with pytest.raises(ValueError, match=r"first 2 layer\(s\) dense needs 323% of the other layers'"):
        prune_masks(ws, 0.8, spare=2)                          # 0.8 * 3390 of 840: more than all of them


def test_dense_first_compiles_the_first_layer_dense_and_refuses_an_impossible_share(digits, tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=32, warmup_epochs=1, prune=0.8, prune_scope="layer",
                      sparse_exec="always", dense_first=True)
    t = Trainer(cfg, dataset=digits, model=_bn_model())
    while t.it <= t.prune_it:
        t.step(t.batch_indices())
    assert t.masks[0].all() and not t.masks[1].all()
    assert "layers 0% " in t.messages[-1] and "pruned 80.0% of weights" in t.messages[-1]
    form = [(L.mask is not None, L.sparse) for L in t.runtime.program.layers]
    assert form == [(False, False), (True, True)]              # the spared layer unmasked and dense, the other sparse
    _assert_resumes_identically(t, digits, str(tmp_path / "d.ckpt"), 3)   # a run resumed after the prune
    wide = Sequential(Flatten(), Linear(64, 100), ReLU(), Linear(100, 10), input_shape=(1, 8, 8))
    with pytest.raises(ConfigError, match="dense_first: pruning 0.5 of all elements with the first 1 layer"):
        Trainer(TrainConfig(epochs=1, batch_size=32, prune=0.5, dense_first=True), dataset=digits, model=wide)


def test_gradual_pruning_follows_the_cubic_schedule_and_resumes_between_steps(digits, tmp_path):
    """Three steps from 0.3 to 0.6 of the run, 0.8 (1 - (1 - k/3)^3) pruned
    after step k, each on the last one's masks: the first in the float
    warm-up, the others in fixed point; a run saved between two steps
    resumes into the same bits."""
    cfg = TrainConfig(epochs=3, batch_size=32, warmup_epochs=1, prune=0.8, prune_steps=3, prune_from=0.3,
                      prune_at=0.6, prune_scope="layer")
    t = Trainer(cfg, dataset=digits, model=_bn_model())
    its = [it for it, _ in t.prune_schedule]
    assert its == [round(f * t.total) for f in (0.3, 0.45, 0.6)] and its[0] < t.warm < its[1]
    assert [s for _, s in t.prune_schedule] == pytest.approx([0.8 * 19 / 27, 0.8 * 26 / 27, 0.8], abs=1e-12)
    masks, saved = [], str(tmp_path / "between.ckpt")
    while t.it <= its[-1]:
        t.step(t.batch_indices())
        if t.it - 1 in its:
            masks.append([m.copy() for m in t.masks])
        if t.it == its[1] - 3:
            t.save(saved)
    assert [r["it"] for r in t.history.pruning] == its
    for (_, target), rec, ms in zip(t.prune_schedule, t.history.pruning, masks):
        assert [int((~m).sum()) for m in ms] == [round(target * m.size) for m in ms]   # per layer, as asked
        assert rec["total"] == pytest.approx(target, abs=1e-3)
    for a, b in zip(masks, masks[1:]):                          # a pruned weight never comes back
        assert all(not (n & ~o).any() for o, n in zip(a, b))
    r = Trainer(cfg, dataset=digits, model=_bn_model())
    r.load(saved)
    while r.it < t.it:
        r.step(r.batch_indices())
    a, b = t.runtime.layer_arrays(), r.runtime.layer_arrays()
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert [x["it"] for x in r.history.pruning] == its
    with pytest.raises(ConfigError, match="prune_from: 0.6 is not before prune_at 0.5"):
        TrainConfig(prune_steps=2, prune_from=0.6, prune_at=0.5).validate()
    with pytest.raises(ConfigError, match="prune_steps: 20 steps from iteration"):
        Trainer(TrainConfig(epochs=1, batch_size=32, prune=0.5, prune_steps=20, prune_from=0.45), dataset=digits,
                model=_bn_model())


def test_lr_restart_starts_the_cosine_again_at_the_last_pruning_step(digits):
    """Up to the last pruning step the rate is the plain cosine's; from it the
    cosine starts again at lr and anneals over the rest of the run; a
    run without pruning or with the constant schedule refuses the option."""
    from ctrain.train import learning_rate
    cfg = TrainConfig(epochs=4, batch_size=32, prune=0.8, prune_steps=3, prune_from=0.2, prune_at=0.5)
    plain = TrainConfig(**{**cfg.__dict__, "lr_restart": False})
    cfg = TrainConfig(**{**cfg.__dict__, "lr_restart": True}).validate()
    t = Trainer(cfg, dataset=digits, model=_bn_model())
    last, total = t.prune_schedule[-1][0], t.total
    assert last == round(0.5 * total)
    for it in range(last):
        assert learning_rate(cfg, it, total) == learning_rate(plain, it, total)
    assert learning_rate(cfg, last, total) == cfg.lr > learning_rate(plain, last, total)
    assert learning_rate(cfg, last + (total - last) // 2, total) == pytest.approx(cfg.lr / 2, rel=0.02)
    rates = [learning_rate(cfg, it, total) for it in range(last, total)]
    assert all(a > b for a, b in zip(rates, rates[1:])) and rates[-1] < 0.01 * cfg.lr
    with pytest.raises(ConfigError, match="lr_restart: restarts the cosine .*have prune 0, schedule cosine"):
        TrainConfig(lr_restart=True, prune=0).validate()
    with pytest.raises(ConfigError, match="have prune 0.5, schedule constant"):
        TrainConfig(lr_restart=True, prune=0.5, schedule="constant").validate()


def test_index_block_is_consistent():
    rng = np.random.default_rng(1)
    mask = rng.random((7, 30)) < 0.3
    mask[2] = False  # an empty row
    mask[:, 5] = False  # an empty column
    block, nnz = hostlib.build_index(mask)
    rowptr, col, tptr, tpos, trow = hostlib.split_index(block, 7, 30, nnz)
    rows = np.repeat(np.arange(7), np.diff(rowptr))
    assert nnz == mask.sum() and mask[rows, col].all()
    for c in range(30):
        q = slice(tptr[c], tptr[c + 1])
        assert np.array_equal(col[tpos[q]], np.full(tptr[c + 1] - tptr[c], c))
        assert np.array_equal(rows[tpos[q]], trow[q])


def _trainer(digits, sparse, **kw):
    cfg = TrainConfig(epochs=2, batch_size=32, warmup_epochs=0.5, prune=0.8, prune_at=0.5,
                      sparse_exec="always" if sparse else "never", **kw)
    return Trainer(cfg, dataset=digits)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["element", "filter"])
def test_sparse_execution_equals_dense_with_mask(digits, mode):
    a, b = _trainer(digits, True, prune_mode=mode), _trainer(digits, False, prune_mode=mode)
    a.run(progress=False)
    b.run(progress=False)
    sa, sb = a.runtime.layer_arrays(), b.runtime.layer_arrays()
    for La, Lb in zip(a.runtime.program.layers, b.runtime.program.layers):
        assert La.sparse and not Lb.sparse
        keep = Lb.mask if Lb.sparse else sb[Lb.region("mask")].astype(bool).reshape(-1)
        assert np.array_equal(La.mask.reshape(-1), keep)
        for kind in ("master", "mom"):
            dense = sb[Lb.region(kind)]
            assert not dense[:Lb.n_w][~keep].any()  # pruned weights and momentum stay exactly zero
            assert np.array_equal(sa[La.region(kind)][:La.n_w], dense[:Lb.n_w][keep])
            assert np.array_equal(sa[La.region(kind)][La.n_w:], dense[Lb.n_w:])
        assert np.array_equal(sa[La.region("w")], sb[Lb.region("w")].reshape(-1)[keep])
    assert np.array_equal(sa["table"], sb["table"])


def test_pruning_saves_memory(digits):
    t = _trainer(digits, True)
    while t.it <= t.prune_it:   # pruned in fixed point: its line gives the DDR state and each layer's form
        t.step(t.batch_indices())
    forms = "".join("s" if L.sparse else "d" for L in t.runtime.program.layers)
    assert t.messages[-1].endswith(f" KiB; layers run {forms}") and forms == "ssss"   # always, on the Pynq-Z2
    t.run(progress=False)
    rec = t.history.pruning[0]
    before, after = rec["ddr_bytes"]
    assert rec["it"] == round(0.5 * t.total) and abs(rec["total"] - 0.8) < 0.01
    assert after < 0.5 * before
    sat = t.history.epochs[-1]["saturation"]  # sparse opcodes still report per phase
    assert {"L0 FP", "L0 WG", "L0 UPDATE", "L1 EB"} <= set(sat)


def test_batchnorm_runs_frozen_in_fixed_point(digits):
    model = Sequential(Conv2d(1, 8, 3, padding=1, bias=False), BatchNorm2d(8), ReLU(), MaxPool2d(2),
                       Flatten(), Linear(8 * 4 * 4, 10), input_shape=(1, 8, 8))
    cfg = TrainConfig(epochs=3, batch_size=32, warmup_epochs=1, prune=0)
    t = Trainer(cfg, dataset=digits)
    t.model = model
    from ctrain.floatnet import FloatNet
    t.net = FloatNet(model, model.init_params(np.random.default_rng(0)))
    acc = t.run(progress=False)
    assert t.fixed and acc > 0.85
    ops = [int(i["op"]) for i in t.runtime.program.insns]
    from ctrain.isa import Op
    assert Op.BN_FP in ops and Op.BN_BP in ops
    # frozen statistics: the float phase's running mean/var, unchanged by fixed-point training
    a_float, b_float = t.net.bn_affine(0)
    arrays = t.runtime.layer_arrays()
    e_a = int(arrays["table"][t.runtime.program.bn_slots[0][0]])
    assert np.allclose(arrays["bnA0"] * 2.0 ** e_a, a_float, rtol=1e-4)


def _bn_model():
    return Sequential(Conv2d(1, 8, 3, padding=1, bias=False), BatchNorm2d(8), ReLU(), MaxPool2d(2),
                      Flatten(), Linear(8 * 4 * 4, 10), input_shape=(1, 8, 8))


def _to_pruning(digits, **kw):
    """A BN model in fixed point (batch norms frozen after 1 of 3 epochs),
    stepped to the iteration that prunes 80% and then through it."""
    cfg = TrainConfig(epochs=3, batch_size=32, warmup_epochs=1, prune=0.8, prune_at=0.5, **kw)
    t = Trainer(cfg, dataset=digits, model=_bn_model())
    while t.it < t.prune_it:
        t.step(t.batch_indices())
    before = t.runtime.float_params()
    t.step(t.batch_indices())
    return t, before


def test_pruning_re_estimates_the_frozen_batch_norms(digits):
    """After pruning, the device's frozen batch norm is (gamma, beta) over the
    statistics of the pruned network on cfg.bn_recal batches: per batch mean
    and unbiased variance of the first convolution's outputs, averaged."""
    t, before = _to_pruning(digits, bn_recal=3)
    idx = t._recal_indices()
    assert len(idx) == 3 * 32 and len(set(idx.tolist())) == len(idx)
    fresh = Trainer(t.cfg, dataset=digits, model=_bn_model())   # drawn by the seed alone, not the run so far
    assert np.array_equal(idx, fresh._recal_indices())
    assert "batch norms re-estimated on 96 images" in t.messages[-1]
    w = before[0]["w"] * t.masks[0]                             # (8, 1, 3, 3), the pruned master weights
    means, vars_ = [], []
    for i in range(0, 96, 32):
        x = np.pad(digits.train_x[np.sort(idx[i:i + 32])], ((0, 0), (0, 0), (1, 1), (1, 1)))
        win = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(2, 3))    # (32, 1, 8, 8, 3, 3)
        y = np.einsum("bchwij,ocij->bohw", win.astype(np.float64), w.astype(np.float64))
        means.append(y.mean(axis=(0, 2, 3)))
        vars_.append(y.var(axis=(0, 2, 3)) * y[:, 0].size / (y[:, 0].size - 1))
    bn = t.net.bn[0]
    want_a = bn["gamma"] / np.sqrt(np.mean(vars_, axis=0) + 1e-5)
    want_b = bn["beta"] - np.mean(means, axis=0) * want_a
    a, b = t.runtime.float_bn()[0]
    # A holds 16 significant bits and B 24 of the channel with the largest magnitude (runtime._load_bn)
    assert np.allclose(a, want_a, rtol=0, atol=np.abs(want_a).max() * 2.0 ** -14)
    assert np.allclose(b, want_b, rtol=0, atol=np.abs(want_b).max() * 2.0 ** -20)
    kept = _to_pruning(digits, bn_recal=0)[0].runtime.float_bn()[0][0]   # the unpruned network's A
    assert not np.allclose(a, kept, rtol=0.01)


def test_without_re_estimation_pruning_keeps_the_batch_norms(digits):
    t, _ = _to_pruning(digits, bn_recal=0)
    arrays = t.runtime.layer_arrays()
    a_float, _ = t.net.bn_affine(0)   # the float phase's statistics, frozen at the switch
    e_a = int(arrays["table"][t.runtime.program.bn_slots[0][0]])
    assert np.allclose(arrays["bnA0"] * 2.0 ** e_a, a_float, rtol=1e-4)
    assert "re-estimated" not in t.messages[-1]


def _assert_resumes_identically(t, digits, path, steps):
    """Saved now and resumed, `steps` more iterations leave the same device state as running on."""
    t.save(path)
    r = Trainer(t.cfg, dataset=digits, model=_bn_model())
    r.load(path)
    for _ in range(steps):
        t.step(t.batch_indices())
        r.step(r.batch_indices())
    a, b = t.runtime.layer_arrays(), r.runtime.layer_arrays()
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_a_run_resumed_after_re_estimation_is_bit_identical(digits, tmp_path):
    _assert_resumes_identically(_to_pruning(digits, bn_recal=3)[0], digits, str(tmp_path / "p.ckpt"), 5)


def test_a_checkpoint_from_before_re_estimation_resumes_without_it(digits, tmp_path):
    """Checkpoints written before --bn-recal existed ran without it: their
    run comes back with bn_recal 0, and the same run resumes from them."""
    path = checkpoint_without(TrainConfig(epochs=1, batch_size=32, warmup_epochs=0, bn_recal=0), digits,
                              tmp_path / "old.ckpt", "bn_recal")
    assert Trainer.from_checkpoint(path, dataset=digits).cfg.bn_recal == 0
