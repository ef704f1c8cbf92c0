"""A trained model as the hub keeps it: weights plus everything needed to use them right.

Folder layout (``save``/``load`` pair): ``model.pt`` (state dict of the 2-class ResNet18) and
``model_info.json`` (architecture, classes, preprocessing spec, temperature and operating
threshold fitted on val, the dataset version it saw, training config, gold-test metrics).
The ONNX model package (``contract.package``; built by ``hub.export``) is made from this.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from torch import nn

from contract.atomic import replacing, write_atomic
from contract.preprocess import PreprocessSpec
from hub.model import build_model
from hub.pool import LABELS

ARTIFACT = "trained_model"  # the folder in every training run's MLflow artifacts
LEGACY_ARTIFACT = "bundle"  # its name in runs logged before; still read


@dataclasses.dataclass
class ModelInfo:
    preprocess: dict
    temperature: float
    threshold: float
    target_sensitivity: float
    dataset_version: str
    dvc_hash: str | None = None
    train_config: dict = dataclasses.field(default_factory=dict)
    best_epoch: int = 0
    gold_metrics: dict = dataclasses.field(default_factory=dict)
    mlflow_run_id: str | None = None
    # per-site temperature and threshold fitted on that site's val images (hub.experiment.calibrate)
    operating_points: dict = dataclasses.field(default_factory=dict)
    arch: str = "resnet18"
    classes: tuple[str, ...] = LABELS

    @property
    def spec(self) -> PreprocessSpec:
        return PreprocessSpec.from_dict(self.preprocess)


@dataclasses.dataclass
class TrainedModel:
    model: nn.Module
    info: ModelInfo

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        with replacing(directory / "model.pt") as tmp:
            torch.save(self.model.state_dict(), tmp)
        write_atomic(directory / "model_info.json", json.dumps(dataclasses.asdict(self.info), indent=2))
        return directory

    @classmethod
    def load(cls, directory: Path, device: str | torch.device = "cpu") -> TrainedModel:
        directory = Path(directory)
        if not (directory / "model_info.json").is_file() or not (directory / "model.pt").is_file():
            raise FileNotFoundError(f"{directory} is not a trained model (needs model.pt and model_info.json)")
        d = json.loads((directory / "model_info.json").read_text())
        d["classes"] = tuple(d.get("classes", LABELS))
        info = ModelInfo(**d)
        model = build_model("none")
        model.load_state_dict(torch.load(directory / "model.pt", map_location=device, weights_only=True))
        return cls(model.to(device).eval(), info)
