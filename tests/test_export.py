"""Interop: the model file, ONNX export run by onnxruntime against the
emulator's predictions, warm starts from numpy files and PyTorch state_dicts."""
import collections
import dataclasses
import json
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest

from ctrain import checkpoint, cli, export, modelspec
from ctrain import model as model_module
from ctrain.device.emulated import EmulatedDevice
from ctrain.errors import CheckpointError
from ctrain.export import ExportError
from ctrain.floatnet import FloatNet
from ctrain.model import Conv2d, ReLU, build_model
from ctrain.train import TrainConfig, Trainer


@pytest.fixture(scope="module")
def trained(digits):
    """digits-cnn after a float warm-up and fixed-point training on the emulator."""
    cfg = TrainConfig(dataset="digits", epochs=2, batch_size=16, warmup_epochs=0.5, seed=0, prune=0)
    tr = Trainer(cfg, dataset=digits, device=EmulatedDevice(ddr_bytes=32 << 20))
    tr.run(progress=False)
    assert tr.fixed
    return tr


def test_model_file(trained, tmp_path):
    path = export.save_model(trained, tmp_path / "model.npz")
    em = export.load_model(path)
    m = em.meta
    assert m["format"] == "ctrain-model" and m["fixed_point"] and m["input_exp"] == -7
    assert m["model"]["layers"][0] == {"type": "Conv2d", "in_channels": 1, "out_channels": 16, "kernel_size": 3,
                                       "stride": 1, "padding": 1, "bias": True}
    assert em.model.describe() == trained.model.describe()
    assert len(m["act_exp"]) == len(trained.model.stages) + 1 and m["bn"] == []
    rt = trained.runtime
    for L, d in zip(rt.program.layers, m["layers"]):
        j = d["index"]
        w = em.arrays[f"w{j}"]
        assert w.dtype == np.int8 and w.shape == L.w_shape and w.min() >= -127
        assert em.arrays[f"mask{j}"].dtype == np.uint8 and em.arrays[f"master{j}"].dtype == np.int32
        assert d["e_w"] == int(rt.table[L.slot_w8]) and d["e_m"] == int(rt.table[L.slot_m])
        # the int8 copy is the master copy rounded to the int8 exponent, as UPDATE derives it
        from ctrain.fixedpoint import rshift_round, sat8
        assert np.array_equal(sat8(rshift_round(em.arrays[f"master{j}"], d["e_w"] - d["e_m"]))[0], w)
        assert np.allclose(em.float_params()[j]["w"], em.arrays[f"master{j}"] * 2.0 ** d["e_m"])
    # the file is a checkpoint container: corruption is detected
    raw = bytearray((tmp_path / "model.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (tmp_path / "bad.npz").write_bytes(bytes(raw))
    with pytest.raises(Exception):
        export.load_model(tmp_path / "bad.npz")


def test_runtime_state_is_what_the_model_file_holds(trained):
    """Runtime.state(): dense int8/master/mask arrays and the host table's
    exponents; float_params dequantises exactly that state."""
    rt = trained.runtime
    state = rt.state()
    assert state["act_exp"] == [int(rt.table[s]) for s in rt.program.act_slots] and state["bn"] == []
    for L, d, fp in zip(rt.program.layers, state["layers"], rt.float_params(state)):
        assert d["w"].dtype == np.int8 and d["master"].dtype == np.int32 and d["w"].shape == L.w_shape
        assert (d["e_w"], d["e_m"]) == (int(rt.table[L.slot_w8]), int(rt.table[L.slot_m]))
        assert np.array_equal(fp["w"], d["master"] * np.float32(2.0 ** d["e_m"]))
        assert np.array_equal(fp["b"], d["bias"] * np.float32(2.0 ** d["e_m"]))


def test_trainer_from_checkpoint_continues_the_saved_run(trained, digits, tmp_path):
    trained.save(tmp_path / "run.ckpt")
    again = Trainer.from_checkpoint(tmp_path / "run.ckpt", dataset=digits, settings={"engine": "numpy"})
    assert again.it == trained.it and again.fixed and again.cfg.warm_start is None
    want, got = trained.runtime.state(), again.runtime.state()
    assert want["act_exp"] == got["act_exp"]
    for a, b in zip(want["layers"], got["layers"]):
        assert all(np.array_equal(a[k], b[k]) for k in ("w", "mask", "master", "bias", "e_w", "e_m"))
    assert np.array_equal(again.runtime.predict_logits(again.xq_test), trained.runtime.predict_logits(trained.xq_test))
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        Trainer.from_checkpoint(export.save_model(trained, tmp_path / "m.npz"), dataset=digits)
    with pytest.raises(CheckpointError, match="invalid run settings"):
        Trainer.from_checkpoint(tmp_path / "run.ckpt", dataset=digits, settings={"epochs": 0})


def test_onnx_agrees_with_emulator(trained, digits, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    em = export.load_model(export.save_model(trained, tmp_path / "model.npz"))
    emu = trained.runtime.predict_logits(trained.xq_test)
    n = len(digits.test_y)
    for style in ("exact", "qdq"):
        model = export.to_onnx(em, tmp_path / f"{style}.onnx", style=style)
        props = {p.key: p.value for p in model.metadata_props}
        assert props["ctrain_style"] == style and props["ctrain_exact_float32"] == "True"
        logits = export.onnx_predict(tmp_path / f"{style}.onnx", digits.test_x)
        agree = float(np.mean(logits.argmax(1) == emu.argmax(1)))
        with capsys.disabled():
            print(f"\nONNX ({style}) vs emulator: {100 * agree:.2f}% of {n} test predictions agree, "
                  f"accuracy {100 * np.mean(logits.argmax(1) == digits.test_y):.2f}% "
                  f"(emulator {100 * np.mean(emu.argmax(1) == digits.test_y):.2f}%), onnxruntime {ort.__version__}")
        assert agree >= 0.99
        if style == "exact":  # the requantization is spelled out: bit-identical logits
            assert np.array_equal(logits, emu.astype(np.float32))
        else:
            # QuantizeLinear rounds ties to even, the emulator half up: an output differs by one
            # LSB where its own rounding met a tie, and by a few where a hidden activation's tie
            # went the other way and the next layers carried it on; most logits agree exactly.
            lsb, diff = 2.0 ** em.meta["act_exp"][-1], np.abs(logits - emu)
            assert np.mean(diff <= lsb) >= 0.99 and np.max(diff) <= 4 * lsb


def test_onnx_refuses_stage_kinds_it_does_not_write(trained, tmp_path):
    pytest.importorskip("onnx")
    em = export.load_model(export.save_model(trained, tmp_path / "model.npz"))
    em.model.stages[1].kind = "avgpool"  # as a layer graph's stages would be
    with pytest.raises(ExportError, match="this model has avgpool stages: export the model file instead"):
        export.to_onnx(em)


def test_model_spec_describes_layers_inside_container_layers(monkeypatch):
    """A layer whose fields hold layers (a branch, as a residual block's) is
    written with their specs and rebuilt from them."""
    @dataclasses.dataclass
    class Branch:
        body: list
        shortcut: list = dataclasses.field(default_factory=list)

    monkeypatch.setattr(model_module, "Branch", Branch, raising=False)
    layer = Branch([Conv2d(1, 2, 3, padding=1), ReLU()])
    spec = modelspec._layer_spec(layer)
    assert spec == {"type": "Branch", "body": [{"type": "Conv2d", "in_channels": 1, "out_channels": 2,
                                                "kernel_size": 3, "stride": 1, "padding": 1, "bias": True},
                                               {"type": "ReLU"}], "shortcut": []}
    assert modelspec._layer_from(json.loads(json.dumps(spec))) == layer
    with pytest.raises(ExportError, match="unknown layer type"):
        modelspec._layer_from({"type": "Nope"})


def test_onnx_float_model(digits, tmp_path):
    pytest.importorskip("onnxruntime")
    cfg = TrainConfig(dataset="digits", epochs=1, batch_size=16, fixed_point=False, seed=1, prune=0)
    tr = Trainer(cfg, dataset=digits)
    for _ in range(30):
        tr.step(tr.batch_indices())
    model = export.to_onnx(tr, tmp_path / "f.onnx")
    logits = export.onnx_predict(model, digits.test_x)
    ref = tr.net.predict(digits.test_x)
    assert np.allclose(logits, ref, atol=1e-4) and np.mean(logits.argmax(1) == ref.argmax(1)) >= 0.99


def test_cli_export_from_checkpoint(digits, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    ckpt = tmp_path / "run.ckpt"
    assert cli.main(["train", "--epochs", "1", "--warmup", "0.5", "--prune", "0", "--checkpoint", str(ckpt),
                     "--no-progress"]) == 0
    assert cli.main(["export", str(ckpt), "-o", str(tmp_path / "m.npz"), "--onnx", str(tmp_path / "m.onnx"),
                     "--onnx-style", "qdq"]) == 0
    assert "wrote" in capsys.readouterr().out
    em = export.load_model(tmp_path / "m.npz")
    assert em.fixed_point and em.meta["iteration"] == 89
    logits = export.onnx_predict(tmp_path / "m.onnx", digits.test_x)
    assert np.mean(logits.argmax(1) == digits.test_y) > 0.5
    assert cli.main(["export", str(tmp_path / "m.npz"), "-o", str(tmp_path / "x.npz")]) == 2
    assert "not a training checkpoint" in capsys.readouterr().err


# -- warm start -------------------------------------------------------------------

def _model():
    return build_model("digits-cnn", (1, 8, 8), 10)


def _random_params(model, seed=7):
    return model.init_params(np.random.default_rng(seed))


def _torch_names(params):
    """PyTorch nn.Sequential naming of digits-cnn: 0 conv, 3 conv, 7 linear, 9 linear."""
    sd = collections.OrderedDict()
    for idx, p in zip((0, 3, 7, 9), params):
        w = p["w"] if p["w"].shape[2:] != (1, 1) else p["w"][:, :, 0, 0]
        sd[f"{idx}.weight"] = w
        sd[f"{idx}.bias"] = p["b"]
    return sd


def test_warm_start_from_numpy_files(tmp_path, digits):
    model = _model()
    params = _random_params(model)
    np.savez(tmp_path / "plain.npz", **{f"w{j}": p["w"] for j, p in enumerate(params)},
             **{f"b{j}": p["b"] for j, p in enumerate(params)})
    np.savez(tmp_path / "torchstyle.npz", **_torch_names(params))
    for f in ("plain.npz", "torchstyle.npz"):
        got = export.load_float_params(tmp_path / f, model)
        for a, b in zip(got, params):
            assert np.array_equal(a["w"], b["w"]) and np.array_equal(a["b"], b["b"])
    # through the Trainer (TrainConfig.warm_start / --warm-start): the float net starts from the file
    cfg = TrainConfig(dataset="digits", epochs=1, batch_size=16, warm_start=str(tmp_path / "torchstyle.npz"))
    tr = Trainer(cfg, dataset=digits)
    assert np.array_equal(tr.net.predict(digits.test_x[:20]), FloatNet(model, params).predict(digits.test_x[:20]))


def test_warm_start_from_exported_model(trained, tmp_path, digits):
    path = export.save_model(trained, tmp_path / "m.npz")
    cfg = TrainConfig(dataset="digits", epochs=1, batch_size=16, fixed_point=False, warm_start=str(path))
    tr = Trainer(cfg, dataset=digits)
    acc = float(np.mean(tr.net.predict(digits.test_x).argmax(1) == digits.test_y))
    assert acc > 0.85  # the dequantized master weights of the fixed-point run, before any step


def test_warm_start_errors(tmp_path):
    model = _model()
    params = _random_params(model)
    sd = _torch_names(params)
    sd["3.weight"] = sd["3.weight"][:, :8]
    with pytest.raises(ExportError, match=r"3.weight has shape \(32, 8, 3, 3\), layer 3 \(Conv2d\) needs "
                                          r"\(32, 16, 3, 3\)"):
        export.load_float_params(sd, model)
    del sd["9.weight"]
    with pytest.raises(ExportError, match="3 weight tensors .* for a model with 4 Conv2d/Linear layers"):
        export.load_float_params(sd, model)
    with pytest.raises(ExportError, match="weight file not found"):
        export.load_float_params(tmp_path / "nope.npz", model)
    (tmp_path / "junk.pt").write_bytes(b"\x80\x02legacy")
    with pytest.raises(ExportError, match="legacy non-zip format needs torch"):
        export.load_float_params(tmp_path / "junk.pt", model)


def test_batchnorm_is_folded():
    model = _model()
    params = _random_params(model)
    sd = _torch_names(params)
    rng = np.random.default_rng(0)
    bn = {"weight": rng.uniform(0.5, 2, 16), "bias": rng.normal(size=16), "running_mean": rng.normal(size=16),
          "running_var": rng.uniform(0.5, 2, 16), "num_batches_tracked": np.array(5)}
    folded_sd = collections.OrderedDict()
    for k, v in sd.items():
        folded_sd[k] = v
        if k == "0.bias":
            folded_sd.update({f"1.{n}": x for n, x in bn.items()})
    got = export.load_float_params(folded_sd, model)[0]
    x = rng.normal(size=(2, 1, 8, 8)).astype(np.float32)
    from ctrain.conv_ops import conv2d
    ref = conv2d(x, params[0]["w"], 1, 1) + params[0]["b"][None, :, None, None]
    s = (bn["weight"] / np.sqrt(bn["running_var"] + 1e-5))[None, :, None, None]
    ref = (ref - bn["running_mean"][None, :, None, None]) * s + bn["bias"][None, :, None, None]
    out = conv2d(x, got["w"], 1, 1) + got["b"][None, :, None, None]
    assert np.allclose(out, ref, atol=1e-4)


# -- PyTorch state_dict files, read without torch ------------------------------------

def _write_torch_zip(path, state_dict):
    """A state_dict in torch.save's zip layout (archive/data.pkl with persistent
    storage ids, archive/data/<key>, archive/byteorder), pickled the way torch's
    _save does, by a stand-in `torch` module so the test needs no torch."""
    fake = types.ModuleType("torch")
    fake_utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only pickled, never called")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    fake.FloatStorage, fake_utils._rebuild_tensor_v2, fake._utils = FloatStorage, _rebuild_tensor_v2, fake_utils

    class Tensor:
        def __init__(self, key, arr):
            self.key, self.arr = key, arr

        def __reduce_ex__(self, proto):
            storage = ("storage", self.arr)
            strides = tuple(s // self.arr.itemsize for s in self.arr.strides)
            return (_rebuild_tensor_v2, (storage, 0, self.arr.shape, strides, False, collections.OrderedDict()))

    storages = {}

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, tuple) and len(obj) == 2 and obj[0] == "storage":
                key = str(len(storages))
                storages[key] = obj[1]
                return ("storage", FloatStorage, key, "cpu", obj[1].size)
            return None

    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules["torch"], sys.modules["torch._utils"] = fake, fake_utils
    try:
        import io
        buf = io.BytesIO()
        od = collections.OrderedDict((k, Tensor(k, np.ascontiguousarray(v, np.float32)))
                                     for k, v in state_dict.items())
        Pickler(buf, protocol=2).dump(od)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/byteorder", "little")
        for key, arr in storages.items():
            z.writestr(f"archive/data/{key}", arr.tobytes())
        z.writestr("archive/version", "3\n")


def test_torch_state_dict_without_torch(tmp_path):
    model = _model()
    params = _random_params(model)
    _write_torch_zip(tmp_path / "sd.pt", _torch_names(params))
    got = export.load_float_params(tmp_path / "sd.pt", model)
    for a, b in zip(got, params):
        assert np.array_equal(a["w"], b["w"]) and np.array_equal(a["b"], b["b"])


def test_torch_state_dict_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with zipfile.ZipFile(tmp_path / "evil.pt", "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"0.weight": Evil()}, protocol=2))
    with pytest.raises(ExportError, match=r"(__builtin__|builtins).print is not part of a state_dict; refusing"):
        export.load_float_params(tmp_path / "evil.pt", _model())


def test_torch_state_dict_with_torch(tmp_path):
    torch = pytest.importorskip("torch")
    model = _model()
    params = _random_params(model)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(128, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    with torch.no_grad():
        for mod, p in zip([net[0], net[3], net[7], net[9]], params):
            mod.weight.copy_(torch.from_numpy(p["w"].reshape(mod.weight.shape)))
            mod.bias.copy_(torch.from_numpy(p["b"]))
    torch.save(net.state_dict(), tmp_path / "sd.pt")
    for source in (tmp_path / "sd.pt", net.state_dict()):
        got = export.load_float_params(source, model)
        for a, b in zip(got, params):
            assert np.array_equal(a["w"], b["w"]) and np.array_equal(a["b"], b["b"])
    x = np.random.default_rng(0).random((4, 1, 8, 8), np.float32)
    ref = net(torch.from_numpy(x)).detach().numpy()
    assert np.allclose(FloatNet(model, got).predict(x), ref, atol=1e-4)


def test_checkpoint_container_is_documented_npz(trained, tmp_path):
    """docs/export.md: readable with numpy alone (meta JSON in __ctrain_meta__)."""
    import json
    path = export.save_model(trained, tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z["__ctrain_meta__"].tobytes())
        assert meta["format"] == "ctrain-model" and z["w0"].dtype == np.int8
    arrays, meta2 = checkpoint.load(path)
    assert meta2 == meta


def test_batchnorm_model_export_and_warm_start(digits, tmp_path, monkeypatch):
    """A model with BatchNorm2d: the frozen affine (bnA/bnB) is exported, the ONNX
    graph reproduces BN_FP exactly, and the model file warm-starts its statistics."""
    pytest.importorskip("onnxruntime")
    from ctrain import model as M

    def digits_bn(input_shape=(1, 8, 8), num_classes=10):
        c, h, w = input_shape
        return M.Sequential(M.Conv2d(c, 16, 3, padding=1, bias=False), M.BatchNorm2d(16), M.ReLU(),
                            M.MaxPool2d(2), M.Conv2d(16, 32, 3, padding=1), M.ReLU(), M.MaxPool2d(2),
                            M.Flatten(), M.Linear(32 * (h // 4) * (w // 4), num_classes), input_shape=input_shape)

    monkeypatch.setitem(M.MODELS, "digits-bn", digits_bn)
    cfg = TrainConfig(dataset="digits", model="digits-bn", epochs=1, batch_size=16, warmup_epochs=0.5, seed=0,
                      prune=0)
    tr = Trainer(cfg, dataset=digits, device=EmulatedDevice(ddr_bytes=32 << 20))
    tr.run(progress=False)
    em = export.load_model(export.save_model(tr, tmp_path / "bn.npz"))
    (bn,) = em.meta["bn"]
    assert bn["channels"] == 16 and bn["relu"] and em.arrays["bnA0"].dtype == np.int32
    emu = tr.runtime.predict_logits(tr.xq_test)
    logits = export.onnx_predict(export.to_onnx(em), digits.test_x)
    assert np.array_equal(logits, emu.astype(np.float32))
    cfg2 = TrainConfig(dataset="digits", model="digits-bn", epochs=1, batch_size=16, fixed_point=False,
                       warm_start=str(tmp_path / "bn.npz"))
    t2 = Trainer(cfg2, dataset=digits)
    for name in ("gamma", "beta", "mean", "var"):
        assert np.array_equal(t2.net.bn[0][name], tr.net.bn[0][name])


def test_pruned_sparse_model_export(digits, tmp_path):
    """Pruned layers stored sparse in DDR export dense, with their masks, and
    the ONNX graph still reproduces the emulator's logits exactly."""
    pytest.importorskip("onnxruntime")
    cfg = TrainConfig(dataset="digits", epochs=2, batch_size=16, warmup_epochs=0.5, seed=0, prune=0.5, prune_scope="layer",
                      prune_at=0.5)
    tr = Trainer(cfg, dataset=digits, device=EmulatedDevice(ddr_bytes=32 << 20))
    tr.run(progress=False)
    em = export.load_model(export.save_model(tr, tmp_path / "sparse.npz"))
    for L, d in zip(tr.runtime.program.layers, em.meta["layers"]):
        j = d["index"]
        mask = em.arrays[f"mask{j}"].astype(bool)
        assert em.arrays[f"w{j}"].shape == L.w_shape and not em.arrays[f"w{j}"][~mask].any()
        assert abs(mask.mean() - 0.5) < 0.01 and d["nonzero"] <= mask.mean()
    emu = tr.runtime.predict_logits(tr.xq_test)
    assert np.array_equal(export.onnx_predict(export.to_onnx(em), digits.test_x), emu.astype(np.float32))


def test_tiled_linear_exports(digits, tmp_path, monkeypatch):
    """A Linear with more inputs than an instruction has channels (vgg-small's
    4096 -> 256) runs as a convolution whose kernel covers its input map; its
    weights [out, c, h, w] go to ONNX as Gemm's [out, c*h*w], in Flatten's
    order: the exact graph reproduces the emulator's logits bit for bit, the
    float graph the float model's."""
    pytest.importorskip("onnxruntime")
    from ctrain import model as M
    from ctrain.isa import LIMITS

    def digits_wide(input_shape=(1, 8, 8), num_classes=10):
        c, h, w = input_shape
        return M.Sequential(M.Conv2d(c, 48, 3, padding=1), M.ReLU(), M.Flatten(),
                            M.Linear(48 * h * w, num_classes), input_shape=input_shape)

    monkeypatch.setitem(M.MODELS, "digits-wide", digits_wide)
    cfg = TrainConfig(dataset="digits", model="digits-wide", epochs=1, batch_size=16, warmup_epochs=0.5,
                      seed=0, prune=0)
    tr = Trainer(cfg, dataset=digits, device=EmulatedDevice(ddr_bytes=32 << 20))
    fc = [d for d in export.export_state(tr)[1]["layers"] if d["kind"] == "linear"]
    assert fc and fc[0]["w_shape"][1:] == [48, 8, 8] and 48 * 64 > LIMITS["CH"]   # tiled
    tr.run(progress=False)
    emu = tr.runtime.predict_logits(tr.xq_test)
    logits = export.onnx_predict(export.to_onnx(tr, tmp_path / "wide.onnx"), digits.test_x)
    assert np.array_equal(logits, emu.astype(np.float32))
