"""The model: torchvision ResNet18 with a 2-class head, and where its initial weights come from."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision import models

from hub.config import SettingsError

logger = logging.getLogger(__name__)

NUM_CLASSES = 2
WEIGHT_CHOICES = "imagenet, none, or a path to a .pt/.pth state dict"


class WeightsError(SettingsError, RuntimeError):
    """Initial weights that cannot be loaded; the message says what to do."""


def imagenet_cache_file() -> Path:
    """Where torchvision's weights API looks for ResNet18 ImageNet weights (honours TORCH_HOME)."""
    url = models.ResNet18_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def build_model(weights: str = "imagenet") -> nn.Module:
    """ResNet18 with a fresh 2-class head.

    ``weights``: ``imagenet`` (torchvision's weights API; it reads its cache and would download
    otherwise, so offline we check the cache first and say where the file goes), ``none``
    (random init), or a path to a state dict (an ImageNet ResNet18 or one of our checkpoints).
    """
    if weights == "imagenet":
        cache = imagenet_cache_file()
        if not cache.is_file():
            raise WeightsError(
                f"ImageNet weights for ResNet18 are not in torchvision's cache ({cache}) and this "
                f"machine is offline. Copy resnet18-f37072fd.pth there (TORCH_HOME moves the cache), "
                f"pass --weights <path-to-file>, or use --weights none."
            )
        model = models.resnet18(weights=models.ResNet18_Weights.IMAGENET1K_V1)
        model.fc = nn.Linear(model.fc.in_features, NUM_CLASSES)
        return model
    model = models.resnet18(weights=None, num_classes=NUM_CLASSES)
    if weights == "none":
        return model
    path = Path(weights)
    if not path.is_file():
        raise WeightsError(f"Invalid weights {weights!r}: not a file. Supported: {WEIGHT_CHOICES}.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, truncated files, not a torch file at all
        raise WeightsError(f"Cannot read weights from {path}: {e}") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # one of our training checkpoints
    if not isinstance(state, dict):
        raise WeightsError(f"{path} does not hold a state dict")
    head_mismatch = state.get("fc.weight") is not None and state["fc.weight"].shape[0] != NUM_CLASSES
    if head_mismatch:  # an ImageNet (1000-class) or other backbone: keep it, start a new head
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    bad_missing = [k for k in missing if not (head_mismatch and k.startswith("fc."))]
    if bad_missing or unexpected:
        raise WeightsError(
            f"{path} is not a ResNet18 state dict (missing {bad_missing[:3]}, unexpected {list(unexpected)[:3]})"
        )
    return model


def set_trainable(model: nn.Module, trainable: str) -> None:
    """``all`` (the seed recipe), ``layer4`` (last block + head) or ``head``."""
    if trainable not in ("all", "layer4", "head"):
        raise ValueError(f"Invalid trainable {trainable!r}. Supported: all, layer4, head.")
    for name, p in model.named_parameters():
        p.requires_grad = (
            trainable == "all" or name.startswith("fc.") or (trainable == "layer4" and name.startswith("layer4."))
        )
