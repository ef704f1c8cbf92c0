"""Where the hub keeps its state, and the environment variables that move it.

Also the training settings (``TrainConfig``), which the cycle, the CLI and the DAG read without
loading torch.

Embedded default: everything under ``PNEUMO_HOME`` (default ``./.pneumo``): the image pool
(DVC-tracked), the persisted split, reports, checkpoints, and the MLflow SQLite store with
its artifacts. ``MLFLOW_TRACKING_URI`` points tracking at a server instead (production).
The same names are used in the README and docker-compose.yml.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from export.preprocess import PreprocessSpec

REGISTERED_MODEL = os.environ.get("PNEUMO_REGISTERED_MODEL", "pneumoscan-resnet18")
EXPERIMENT = os.environ.get("PNEUMO_EXPERIMENT", "pneumoscan")

# The network is closed on hub machines more often than not; telemetry calls only slow things down.
TELEMETRY_OFF = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
    "SCARF_ANALYTICS": "false",
    "DVC_NO_ANALYTICS": "1",
}


def telemetry_off() -> None:
    for k, v in TELEMETRY_OFF.items():
        os.environ.setdefault(k, v)


@dataclasses.dataclass(frozen=True)
class HubPaths:
    home: Path

    @classmethod
    def from_env(cls, home: str | os.PathLike | None = None) -> HubPaths:
        return cls(Path(home or os.environ.get("PNEUMO_HOME", ".pneumo")).expanduser().resolve())

    @property
    def pool(self) -> Path:
        return self.home / "pool"

    @property
    def splits(self) -> Path:
        return self.home / "splits.json"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    @property
    def runs(self) -> Path:
        return self.home / "runs"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.home / "mlartifacts"

    def tracking_uri(self) -> str:
        return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.home / 'mlflow.db'}"


@dataclasses.dataclass
class TrainConfig:
    """Training settings (hub.train.fit); torch-free, so that reading a configuration loads no torch."""

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3  # seed recipe: Adam, lr 0.001
    weight_decay: float = 0.0
    image_size: int = 224
    weights: str = "imagenet"
    trainable: str = "all"
    seed: int = 42
    patience: int = 3  # epochs without a better val loss before stopping
    augment: bool = True
    class_weights: bool = True  # inverse-frequency weights in the loss (3:1 PNEUMONIA:NORMAL)
    num_workers: int = 1
    device: str = "auto"
    max_train_images: int | None = None  # subsample (stratified, seeded) for quick runs
    precise_bn_images: int = 512  # train images to re-estimate BatchNorm statistics on before each val (0: off)

    def spec(self) -> PreprocessSpec:
        return PreprocessSpec(size=self.image_size)

    def validate(self) -> TrainConfig:
        """Raise ValueError naming the first setting of the wrong type or out of range."""
        for name, lowest in (
            ("epochs", 1),
            ("batch_size", 1),
            ("image_size", 1),
            ("patience", 1),
            ("precise_bn_images", 0),
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < lowest:
                raise ValueError(
                    f"Invalid {name} {v!r}: must be " + ("a positive integer" if lowest else "0 (off) or more")
                )
        if not isinstance(self.lr, (int, float)) or not self.lr > 0:
            raise ValueError(f"Invalid lr {self.lr!r}: must be a positive number")
        if not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise ValueError(f"Invalid num_workers {self.num_workers!r}: must be 0 or more")
        if not isinstance(self.weights, str):
            raise ValueError(f"Invalid weights {self.weights!r}: imagenet, none, or a path")
        return self
