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

from contract.preprocess import INTENSITY_METHODS, PreprocessSpec

PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # hub.precision's (that module imports torch; this one must not)


class SettingsError(ValueError):
    """A setting or input that a retry cannot fix; the message says what to change (the DAG fails such a
    task at once instead of retrying it)."""


def env_value(name: str, default: str | None = None) -> str | None:
    """An environment setting. One rule for every name: set but empty (or blank) counts as unset."""
    value = os.environ.get(name, "").strip()
    return value or default


REGISTERED_MODEL = env_value("PNEUMO_REGISTERED_MODEL", "pneumoscan-resnet18")
EXPERIMENT = env_value("PNEUMO_EXPERIMENT", "pneumoscan")

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
    """Every folder and file the hub keeps, resolved once; everything else receives this.

    ``home`` holds the rest unless ``PNEUMO_INCOMING``, ``PNEUMO_FEED_DIR`` or ``PNEUMO_FEED_KEYS``
    move those three elsewhere (read by ``from_env``; a run's settings may still override them).
    """

    home: Path
    incoming: Path = None  # type: ignore[assignment]  # filled in from home when not given
    feed: Path = None  # type: ignore[assignment]
    feed_keys: Path = None  # type: ignore[assignment]

    def __post_init__(self):
        object.__setattr__(self, "home", Path(self.home))
        for name, default in (("incoming", "incoming"), ("feed", "feed"), ("feed_keys", "feed-keys")):
            value = getattr(self, name)
            object.__setattr__(self, name, self.home / default if value is None else Path(value))

    @classmethod
    def from_env(cls, home: str | os.PathLike | None = None) -> HubPaths:
        def path(name: str) -> Path | None:
            value = env_value(name)
            return Path(value).expanduser() if value else None

        return cls(
            Path(home or env_value("PNEUMO_HOME", ".pneumo")).expanduser().resolve(),
            incoming=path("PNEUMO_INCOMING"),
            feed=path("PNEUMO_FEED_DIR"),
            feed_keys=path("PNEUMO_FEED_KEYS"),
        )

    def env(self) -> dict[str, str]:
        """The same places as environment variables, for the services and tasks the hub starts."""
        return {
            "PNEUMO_HOME": str(self.home),
            "PNEUMO_INCOMING": str(self.incoming),
            "PNEUMO_FEED_DIR": str(self.feed),
            "PNEUMO_FEED_KEYS": str(self.feed_keys),
        }

    pool = property(lambda self: self.home / "pool", doc="the image pool (DVC-tracked)")
    splits = property(lambda self: self.home / "splits.json", doc="the persisted patient-level split")
    reports = property(lambda self: self.home / "reports", doc="validation reports of imports")
    runs = property(lambda self: self.home / "runs", doc="training checkpoints, one folder per dataset and seed")
    batches = property(lambda self: self.home / "batches", doc="one record per incoming batch seen")
    cycles = property(lambda self: self.home / "cycles", doc="one state file per retraining cycle")
    quarantine = property(lambda self: self.home / "quarantine", doc="rejected batches with their reports")
    ingested = property(lambda self: self.home / "ingested", doc="batches moved here once in the pool")
    decoded = property(lambda self: self.home / "cache" / "decoded", doc="decoded training images (hub.decode_cache)")
    packages = property(lambda self: self.home / "packages", doc="exported model packages, one folder per version")
    rollback_intent = property(lambda self: self.home / "rollback.json", doc="a rollback in progress")
    logs = property(lambda self: self.home / "logs", doc="service logs of `pneumo-hub up`")
    mlflow_db = property(lambda self: self.home / "mlflow.db", doc="the embedded MLflow store")
    mlflow_artifacts = property(lambda self: self.home / "mlartifacts", doc="the embedded MLflow artifacts")

    def airflow_home(self) -> Path:
        return Path(env_value("AIRFLOW_HOME") or self.home / "airflow")

    def tracking_uri(self) -> str:
        return env_value("MLFLOW_TRACKING_URI") or f"sqlite:///{self.mlflow_db}"


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
    augment_strength: float = 1.0  # scales the augmentation ranges (hub.train._augmentation); 1 is the seed's
    class_weights: bool = True  # inverse-frequency weights in the loss (3:1 PNEUMONIA:NORMAL)
    num_workers: int = 1
    device: str = "auto"
    max_train_images: int | None = None  # subsample (stratified, seeded) for quick runs
    precise_bn_images: int = 512  # train images to re-estimate BatchNorm statistics on before each val (0: off)
    intensity: str = "none"  # contract.preprocess.INTENSITY_METHODS, recorded in the card
    precision: str = "auto"  # hub.precision.PRECISIONS: auto picks bf16 where the CPU has it in hardware

    def spec(self) -> PreprocessSpec:
        return PreprocessSpec(size=self.image_size, intensity=self.intensity)

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
        if not isinstance(self.augment_strength, (int, float)) or not 0 < self.augment_strength <= 4:
            raise ValueError(f"Invalid augment_strength {self.augment_strength!r}: a number above 0, at most 4")
        if not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise ValueError(f"Invalid num_workers {self.num_workers!r}: must be 0 or more")
        if not isinstance(self.weights, str):
            raise ValueError(f"Invalid weights {self.weights!r}: imagenet, none, or a path")
        if self.precision not in PRECISIONS:
            raise ValueError(f"Invalid precision {self.precision!r}: supported are {', '.join(PRECISIONS)}")
        if self.intensity not in INTENSITY_METHODS:
            raise ValueError(f"Invalid intensity {self.intensity!r}: supported are {', '.join(INTENSITY_METHODS)}")
        return self
