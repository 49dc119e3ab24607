"""A user's own network from Python: `--model package.module:function` on the
command line (one clear line for a missing module or attribute, or a factory
that returns no model), register_model and Trainer(model=...) in a notebook,
and the per-model defaults (MODEL_DEFAULTS) that fill unset options."""
import sys
import uuid

import pytest

from ctrain import data
from ctrain.cli import main
from ctrain.errors import ConfigError, MappingError
from ctrain.model import MODELS, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, build_model, register_model
from ctrain.train import BASE_DEFAULTS, DEFAULT_MODEL, MODEL_DEFAULTS, TrainConfig, Trainer

QUICK = ["--epochs", "1", "--batch-size", "32", "--train-count", "320", "--warmup", "0.5", "--no-progress"]
NETS = '''
from ctrain.model import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential

def small(input_shape=(1, 8, 8), num_classes=10):
    c, h, w = input_shape
    return Sequential(Conv2d(c, 8, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(),
                      Linear(8 * (h // 2) * (w // 2), num_classes), input_shape=input_shape)

def fixed_shape():
    return small((1, 8, 8), 10)

def not_a_model(input_shape, num_classes):
    return [input_shape, num_classes]

def too_wide(input_shape, num_classes):
    return Sequential(Conv2d(input_shape[0], 4096, 3), input_shape=input_shape)

class Holder:
    net = staticmethod(small)

NUMBER = 3
'''


@pytest.fixture
def nets(tmp_path, monkeypatch):
    """A module of factories in a fresh directory on sys.path, under a unique name."""
    name = "user_nets_" + uuid.uuid4().hex[:8]
    (tmp_path / f"{name}.py").write_text(NETS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def one_line_error(capsys, argv):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and err.startswith("ctrain: error: "), err
    return err.strip()


def test_cli_trains_a_model_from_a_module(capsys, nets):
    assert main(["train", "--model", f"{nets}:small"] + QUICK) == 0
    assert f"{nets}:small on digits" in capsys.readouterr().out
    assert main(["train", "--model", f"{nets}:Holder.net", "--float"] + QUICK) == 0  # a dotted attribute
    assert main(["train", "--model", f"{nets}:fixed_shape", "--float"] + QUICK) == 0  # takes no arguments


def test_cli_finds_a_module_in_the_current_directory(capsys, tmp_path, monkeypatch):
    name = "cwd_nets_" + uuid.uuid4().hex[:8]
    (tmp_path / f"{name}.py").write_text(NETS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        assert main(["train", "--model", f"{name}:small", "--float"] + QUICK) == 0
    finally:
        sys.modules.pop(name, None)


@pytest.mark.parametrize("spec, expected", [
    ("no_such_module_xyz:net", ["--model no_such_module_xyz:net: cannot import no_such_module_xyz",
                                "No module named 'no_such_module_xyz'"]),
    ("{nets}:missing", ["--model {nets}:missing: {nets} has no attribute missing"]),
    ("{nets}:NUMBER", ["--model {nets}:NUMBER: NUMBER (int) is not a function returning a model"]),
    ("{nets}:not_a_model", ["model {nets}:not_a_model: the factory returned list, not a ctrain model"]),
    ("{nets}:too_wide", ["model {nets}:too_wide:", "4096 output channels beyond the limit"]),
    ("{nets}", ["--model '{nets}' is out of range", "package.module:function"]),
])
def test_cli_bad_model_spec_is_one_line(capsys, nets, spec, expected):
    err = one_line_error(capsys, ["train", "--model", spec.format(nets=nets)] + QUICK)
    for text in expected:
        assert text.format(nets=nets) in err, err


def test_register_model_and_trainer_with_a_model_object():
    ds = data.load_digits()

    def tiny(input_shape, num_classes):
        return Sequential(Flatten(), Linear(64, 32), ReLU(), Linear(32, num_classes), input_shape=input_shape)
    try:
        register_model("tiny-test", tiny)
        cfg = TrainConfig(model="tiny-test", epochs=1, batch_size=32, train_count=320, warmup_epochs=0.5)
        t = Trainer(cfg, dataset=ds)
        assert [type(s.layer).__name__ for s in t.model.param_stages] == ["Linear", "Linear"]
        assert 0.0 <= t.run(progress=False, verbose=False) <= 1.0 and t.fixed
    finally:
        MODELS.pop("tiny-test", None)
    model = Sequential(Conv2d(1, 4, 3), ReLU(), MaxPool2d(2), Flatten(), Linear(36, 10), input_shape=(1, 8, 8))
    t = Trainer(TrainConfig(epochs=1, batch_size=32, train_count=320, fixed_point=False), dataset=ds, model=model)
    assert t.model is model
    with pytest.raises(ConfigError, match="built for input .1, 28, 28. and 10 classes, the data has .1, 8, 8."):
        Trainer(TrainConfig(epochs=1), dataset=ds, model=build_model("lenet5", (1, 28, 28)))
    with pytest.raises(MappingError, match="model name 'Bad Name'"):
        register_model("Bad Name", tiny)


def test_defaults_come_from_the_model_then_the_base():
    for name, defaults in MODEL_DEFAULTS.items():
        assert name in MODELS
        cfg = TrainConfig(model=name, dataset="cifar10" if name == "cnv" else "digits")
        assert (cfg.lr, cfg.warmup_epochs) == (defaults["lr"], min(defaults["warmup_epochs"], cfg.epochs))
    assert TrainConfig(dataset="cifar10").model_name() == DEFAULT_MODEL["cifar10"] == "cnv"
    assert TrainConfig(model="cnv", lr=0.01, warmup_epochs=0.0).lr == 0.01  # given values win
    assert TrainConfig(model="cnv", warmup_epochs=0.0).warmup_epochs == 0.0


def test_a_users_model_gets_the_base_defaults(nets):
    cfg = TrainConfig(model=f"{nets}:small")
    assert (cfg.lr, cfg.warmup_epochs) == (BASE_DEFAULTS["lr"], BASE_DEFAULTS["warmup_epochs"])
