"""PyTorch models convert (ctrain.torch_import.from_torch) with their weights
as a warm start: the converted float forward equals PyTorch's (eval mode)
within 1e-5, the model trains from Python and from `--model
module:function`, and an unsupported layer is refused in one line naming it.
Skipped without torch (an optional dependency), except the message saying so."""
import sys
import uuid

import numpy as np
import pytest

from ctrain import data
from ctrain.cli import main
from ctrain.errors import MappingError
from ctrain.floatnet import FloatNet
from ctrain.train import TrainConfig, Trainer

#: |ctrain float - torch| over the logits, relative to their largest magnitude
#: (float32 sums in a different order: a few ulps per layer)
TOLERANCE = 1e-5

NETS = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    """A user's module with its own forward: torch.fx traces it."""
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, stride=1, padding=(1, 1)),
                                      nn.MaxPool2d(kernel_size=2, stride=2))
        self.fc1 = nn.Linear(16 * 2 * 2, 32)
        self.fc2 = nn.Linear(32, num_classes)

    def forward(self, x):
        x = F.relu(self.features(x))
        x = x.view(x.size(0), -1)
        return self.fc2(F.relu(self.fc1(x)))


def net(num_classes=10):
    return Net(num_classes)


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock, as written there."""
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class TinyResNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        down = nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.BatchNorm2d(16))
        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 16, 2, down))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.layer1(self.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def tiny_resnet(num_classes=10):
    return TinyResNet(num_classes)


def with_dropout():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Dropout(0.5), nn.Linear(144, 10))
'''


@pytest.fixture
def nets(tmp_path, monkeypatch):
    name = "torch_nets_" + uuid.uuid4().hex[:8]
    (tmp_path / f"{name}.py").write_text(NETS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_without_torch_the_message_says_so(monkeypatch):
    from ctrain.torch_import import from_torch
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    with pytest.raises(MappingError, match="PyTorch is not installed"):
        from_torch(object(), (1, 8, 8))


def _trained_bn(torch, module, x):
    """Running statistics away from their initial 0/1, so batch norm matters."""
    module.train()
    with torch.no_grad():
        for _ in range(3):
            module(x * 3 + 0.5)
    module.eval()


def test_converted_forward_matches_torch(nets):
    torch = pytest.importorskip("torch")
    from ctrain.torch_import import from_torch
    net = __import__(nets).net()
    x = np.random.default_rng(0).random((16, 1, 8, 8), dtype=np.float32)
    _trained_bn(torch, net, torch.from_numpy(x))
    model = from_torch(net, (1, 8, 8))
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Conv2d", "MaxPool2d", "ReLU", "Flatten", "Linear", "ReLU",
        "Linear"]
    params, bn = model.initial_state
    fnet = FloatNet(model, [{k: None if v is None else v * 0 for k, v in p.items()} for p in params])
    fnet.load_state(params, bn)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    got = fnet.predict(x)
    assert np.abs(got - ref).max() <= TOLERANCE * np.abs(ref).max()
    assert net.training is False  # from_torch restores the mode it found (eval here)


def test_basic_blocks_convert_to_residual_layers(nets):
    torch = pytest.importorskip("torch")
    from ctrain.model import GlobalAvgPool2d, Residual
    from ctrain.torch_import import from_torch
    net = __import__(nets).tiny_resnet()
    x = np.random.default_rng(1).random((16, 1, 8, 8), dtype=np.float32)
    _trained_bn(torch, net, torch.from_numpy(x))
    model = from_torch(net, (1, 8, 8))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "Residual", "ReLU", "Residual", "ReLU", "GlobalAvgPool2d",
                     "Flatten", "Linear"]
    first, second = model.layers[3], model.layers[5]
    assert isinstance(first, Residual) and first.shortcut == []  # identity shortcut
    assert [type(layer).__name__ for layer in second.shortcut] == ["Conv2d", "BatchNorm2d"]  # the downsample
    assert isinstance(model.layers[7], GlobalAvgPool2d)
    params, bn = model.initial_state
    assert len(params) == 7 and len(bn) == 6
    fnet = FloatNet(model, [{k: None if v is None else v * 0 for k, v in p.items()} for p in params])
    fnet.load_state(params, bn)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    assert np.abs(fnet.predict(x) - ref).max() <= TOLERANCE * np.abs(ref).max()


def test_converted_resnet_trains_from_the_cli(capsys, nets):
    pytest.importorskip("torch")
    assert main(["train", "--model", f"{nets}:tiny_resnet", "--epochs", "1", "--batch-size", "16",
                 "--train-count", "160", "--warmup", "0.5", "--prune", "0.5", "--lr", "0.02", "--no-progress"]) == 0
    assert "8-bit fixed point" in capsys.readouterr().out


def test_converted_model_trains_from_python_with_its_weights(nets):
    pytest.importorskip("torch")
    net = __import__(nets).net()
    ds = data.load_digits()
    cfg = TrainConfig(epochs=3, batch_size=32, train_count=640, warmup_epochs=0.5, prune=0.5, lr=0.05)
    t = Trainer(cfg, dataset=ds, model=net)
    assert np.array_equal(t.net.params[0]["w"], net.features[0].weight.detach().numpy())  # the warm start
    assert np.array_equal(t.net.bn[0]["var"], net.features[1].running_var.detach().numpy())
    acc = t.run(progress=False, verbose=False)
    assert t.fixed and t.history.pruning and acc > 0.5


def test_cli_trains_a_torch_model(capsys, nets):
    pytest.importorskip("torch")
    assert main(["train", "--model", f"{nets}:net", "--epochs", "1", "--batch-size", "32", "--train-count", "320",
                 "--warmup", "0.5", "--no-progress"]) == 0
    assert f"{nets}:net on digits" in capsys.readouterr().out


def test_unsupported_layer_is_one_line(capsys, nets):
    pytest.importorskip("torch")
    assert main(["train", "--model", f"{nets}:with_dropout", "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert "layer '3' (Dropout): not supported; the accelerator maps Conv2d" in err


@pytest.mark.parametrize("build, expected", [
    (lambda nn: nn.Sequential(nn.Conv2d(1, 4, 3, groups=1, dilation=2), nn.Flatten(), nn.Linear(64, 10)),
     "layer '0' (Conv2d): grouped or dilated convolution is not supported"),
    (lambda nn: nn.Sequential(nn.Conv2d(1, 4, (3, 1)), nn.Flatten(), nn.Linear(192, 10)),
     "layer '0' (Conv2d): kernel (3, 1) is not square"),
    (lambda nn: nn.Sequential(nn.Conv2d(1, 4, 3), nn.Sigmoid(), nn.Flatten(), nn.Linear(144, 10)),
     "layer '1' (Sigmoid): not supported"),
    (lambda nn: nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.LogSoftmax(dim=1)),
     "layer '2' (LogSoftmax): not supported"),
])
def test_unsupported_pytorch_constructs(build, expected):
    torch = pytest.importorskip("torch")
    from ctrain.torch_import import from_torch
    with pytest.raises(MappingError) as info:
        from_torch(build(torch.nn), (1, 8, 8))
    assert expected in str(info.value) and "\n" not in str(info.value)
