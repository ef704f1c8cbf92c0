"""Where the hub keeps its state, and the environment variables that move it.

Embedded default: everything under ``PNEUMO_HOME`` (default ``./.pneumo``): the image pool
(DVC-tracked), the persisted split, reports, checkpoints, and the MLflow SQLite store with
its artifacts. ``MLFLOW_TRACKING_URI`` points tracking at a server instead (production).
The same names are used in the README and docker-compose.yml.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

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
