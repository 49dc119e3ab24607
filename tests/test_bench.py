"""Smoke test of `ctrain bench` on a few iterations of synthetic data: no
MNIST files, no PyTorch needed (the torch path runs when it is installed)."""
import json

import numpy as np
import pytest

from ctrain import cli
from ctrain.tools import bench

SMALL = dict(iters=2, rounds=2, warmup=1, threads=1, synthetic=True, memory=False, log=None)


def test_bench_times_ctrain_on_synthetic_data():
    report = bench.run_bench(batch_sizes=(8, 16), use_torch=False, **SMALL)
    assert report["frameworks"] == ["fixed", "float"] and report["dataset"] == "synthetic"
    for b in (8, 16):
        fixed = report["results"][b]["fixed"]
        assert fixed["images_per_s"] > 0 and fixed["engine_ms"] > 0 and fixed["host_ms"] >= 0
        assert fixed["engine_ms"] + fixed["host_ms"] == pytest.approx(fixed["ms_per_iter"])
        assert len(fixed["rounds_images_per_s"]) == 2
        assert report["results"][b]["float"]["engine_ms"] is None
    text = bench.format_report(report)
    assert "ctrain fixed-point (emulated)" in text and "host ms" in text and "no ratio" not in text


def test_cli_bench_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["bench", "--synthetic", "--no-torch", "--no-float", "--no-memory", "--batch-sizes", "8",
            "--iters", "2", "--rounds", "1", "--warmup", "1", "--threads", "1", "--quiet", "--json", str(out)]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "ctrain fixed-point" in text and "images/s" in text
    saved = json.loads(out.read_text())
    assert saved["frameworks"] == ["fixed"] and saved["env"]["threads"] == 1


def test_memory_probe_reports_a_peak():
    m = bench.memory_probe("fixed", 8, 1, bench.Spec(synthetic=True), 2)
    assert m["peak_kib"] >= m["before_kib"] > 0


def test_batches_are_shuffled_epochs():
    order = bench.batch_order(20, 8, 5, seed=1)
    assert len(order) == 5 and all(len(b) == 8 for b in order)
    assert len(set(np.concatenate(order[:2]))) == 16  # one epoch: no image twice


@pytest.mark.slow
def test_ratio_against_torch_when_installed():
    pytest.importorskip("torch")
    report = bench.run_bench(batch_sizes=(8,), use_torch=True, use_float=False, **SMALL)
    assert report["frameworks"] == ["fixed", "torch", "torch-int8"]
    text = bench.format_report(report)
    assert "ratio ctrain fixed-point (bit-exact emulation) / torch fp32 images/s: batch 8: " in text
    assert "/ torch int8 fake-quant images/s: batch 8: " in text


def test_any_model_and_dataset_by_name():
    pytest.importorskip("torch")
    report = bench.run_bench(batch_sizes=(4,), use_torch=True, model="digits-cnn", dataset="digits",
                             **{**SMALL, "synthetic": False})
    assert report["model"] == "digits-cnn" and report["dataset"] == "digits"
    assert report["frameworks"] == ["fixed", "float", "torch", "torch-int8"]
    text = bench.format_report(report)
    assert text.startswith("digits-cnn training on digits")
    assert "ratio ctrain float32 (warm-up) / torch fp32 images/s: batch 4: " in text


def test_torch_twin_computes_the_float_models_logits():
    """The torch network is the ctrain model with the same weights: the same
    logits as FloatNet (float32 sums in another order: close, not equal)."""
    torch = pytest.importorskip("torch")
    from ctrain.floatnet import FloatNet
    from ctrain.model import build_model
    model = build_model("lenet5-bn", (1, 28, 28))
    params = model.init_params(np.random.default_rng(3))
    x = np.random.default_rng(4).random((5, 1, 28, 28), dtype=np.float32)
    net = bench.torch_network(model, params, torch).eval()
    want = FloatNet(model, params).forward(x)
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_int8_fake_quant_fuses_and_quantizes_cnv():
    torch = pytest.importorskip("torch")
    from ctrain.model import build_model
    model = build_model("cnv", (3, 32, 32))
    net = bench._qat_prepare(bench.torch_network(model, model.init_params(np.random.default_rng(0)), torch), torch)
    kinds = [type(m).__name__ for m in net]
    assert kinds.count("ConvBnReLU2d") == 6 and kinds.count("LinearReLU") == 2 and kinds.count("Linear") == 1
    assert all(hasattr(m, "weight_fake_quant") for m in net if hasattr(m, "weight"))


def test_synthetic_images_take_the_datasets_shape():
    ds = bench.load_dataset(bench.Spec(dataset="cifar10", synthetic=True))
    assert ds.train_x.shape[1:] == (3, 32, 32)


def test_memory_is_measured_in_a_fresh_process():
    m = bench.measure_memory("fixed", 8, 1, bench.Spec(synthetic=True), 2)
    assert m["peak_kib"] >= m["before_kib"] > 0


def test_torch_twin_of_resnet20_computes_the_float_models_logits():
    torch = pytest.importorskip("torch")
    from ctrain.floatnet import FloatNet
    from ctrain.model import build_model
    model = build_model("resnet20", (3, 32, 32))
    params = model.init_params(np.random.default_rng(5))
    x = np.random.default_rng(6).random((2, 3, 32, 32), dtype=np.float32)
    net = bench.torch_network(model, params, torch).eval()
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, FloatNet(model, params).forward(x), rtol=1e-3, atol=1e-3)
    qat = bench._qat_prepare(net, torch)
    assert sum(type(mod).__name__ == "ConvBnReLU2d" for mod in qat.modules()) == 10


def test_host_cpu_share():
    """The fixed-point run's host share of CPU time: the engine's process CPU
    time in run() (busy_cpu_seconds) subtracted from the round's."""
    from ctrain.tools import bench
    report = bench.run_bench(batch_sizes=(8,), iters=2, rounds=1, warmup=1, synthetic=True, use_torch=False,
                             use_float=False, memory=False, log=None)
    pct = report["results"][8]["fixed"]["host_cpu_pct"]
    assert 0 < pct < 100
    assert "host share of ctrain fixed-point's CPU time" in bench.format_report(report)
