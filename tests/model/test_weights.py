"""Initial weights: torchvision's ImageNet API through its cache, none, a file; clear errors offline."""

from __future__ import annotations

import pytest
import torch
from torchvision import models

from hub.cli import main
from hub.model import WeightsError, build_model, imagenet_cache_file


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


def test_imagenet_weights_load_from_torchvision_cache(torch_home):
    reference = models.resnet18(weights=None)  # stands in for the real file: same format, made here
    cache = imagenet_cache_file()
    assert cache.parent == torch_home / "hub" / "checkpoints"
    cache.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), cache)
    model = build_model("imagenet")
    assert torch.equal(model.conv1.weight, reference.conv1.weight)
    assert torch.equal(model.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var)
    assert model.fc.out_features == 2


def test_imagenet_weights_missing_says_where_to_put_them(torch_home, capsys):
    with pytest.raises(WeightsError, match="resnet18-f37072fd.pth"):
        build_model("imagenet")
    assert main(["--home", str(torch_home.parent / "h"), "train", "--weights", "imagenet"]) == 1
    err = capsys.readouterr().err.strip()
    # the pool is empty here, so that is reported first; with data, the weights message comes
    assert err.count("\n") == 0 and err.startswith("pneumo-hub: error:")


def test_weights_from_a_file(tmp_path):
    imagenet_like = models.resnet18(weights=None)
    torch.save(imagenet_like.state_dict(), tmp_path / "backbone.pth")
    model = build_model(str(tmp_path / "backbone.pth"))
    assert torch.equal(model.layer1[0].conv1.weight, imagenet_like.layer1[0].conv1.weight)
    ours = build_model("none")
    torch.save({"model": ours.state_dict()}, tmp_path / "ckpt.pt")  # a training checkpoint
    assert torch.equal(build_model(str(tmp_path / "ckpt.pt")).fc.weight, ours.fc.weight)


@pytest.mark.parametrize("content,match", [(b"garbage", "Cannot read weights"), (None, "not a file")])
def test_bad_weights_file(tmp_path, content, match):
    f = tmp_path / "w.pt"
    if content is not None:
        f.write_bytes(content)
    with pytest.raises(WeightsError, match=match):
        build_model(str(f))
