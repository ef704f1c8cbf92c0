"""The one seam to MLflow: where runs go, and how a training run is recorded and registered."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

from hub.config import EXPERIMENT, REGISTERED_MODEL, HubPaths, telemetry_off

logger = logging.getLogger(__name__)


def setup(paths: HubPaths, experiment: str = EXPERIMENT) -> str:
    """Point MLflow at the server in MLFLOW_TRACKING_URI, or the embedded SQLite store; return its id."""
    telemetry_off()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in logs and CLI output
    import mlflow

    paths.home.mkdir(parents=True, exist_ok=True)
    uri = paths.tracking_uri()
    mlflow.set_tracking_uri(uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        # Embedded store: keep artifacts under PNEUMO_HOME, not in the current directory.
        location = None if uri.startswith("http") else paths.mlflow_artifacts.as_uri()
        return mlflow.create_experiment(experiment, artifact_location=location)
    return exp.experiment_id


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
            timeout=10,
        )
        if out.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
            timeout=10,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def log_dataset(view, context: str = "training") -> None:
    """The exact data a run saw, as an MLflow dataset input (digest = content fingerprint)."""
    import mlflow
    import pandas as pd

    rows = [
        {"split": s, "file": e.file, "label": e.label, "sha256": e.sha256, "patient": e.patient, "site": e.site}
        for s in ("train", "val", "gold")
        for e in view.assigned[s]
    ]
    ds = mlflow.data.from_pandas(
        pd.DataFrame(rows), source=str(view.pool_root), name="pneumoscan-pool", digest=view.version, targets="label"
    )
    mlflow.log_input(ds, context=context, tags={"dvc_md5": view.dvc_hash or ""})


def log_model(model, example, registered: bool = True) -> str | None:
    """Log the torch model with an input example; register it; return the registered version."""
    import mlflow

    info = mlflow.pytorch.log_model(
        model,
        name="model",
        input_example=example,
        serialization_format="pickle",
        registered_model_name=REGISTERED_MODEL if registered else None,
    )
    version = getattr(info, "registered_model_version", None)
    return str(version) if version is not None else None


def resolve_trained_model(uri: str, dst: Path) -> Path:
    """A trained-model folder from a local path, ``runs:/<id>`` (that run's trained model),
    ``runs:/<id>/<artifact path>`` or ``models:/<name>/<version|@alias>``.

    Runs logged before the artifact folder was named ``trained_model`` keep it as ``bundle``; both
    are read.
    """
    if Path(uri).is_dir():
        return Path(uri)
    import mlflow
    from mlflow import MlflowClient

    from hub.trained_model import ARTIFACT, LEGACY_ARTIFACT

    run_id = None
    if uri.startswith("models:/"):
        name, _, ref = uri[len("models:/") :].partition("/")
        if not ref and "@" in name:
            name, ref = name.split("@", 1)
            ref = "@" + ref
        client = MlflowClient()
        mv = (
            client.get_model_version_by_alias(name, ref[1:])
            if ref.startswith("@")
            else client.get_model_version(name, ref)
        )
        run_id = mv.run_id
    elif uri.startswith("runs:/") and "/" not in uri[len("runs:/") :].strip("/"):
        run_id = uri[len("runs:/") :].strip("/")
    if run_id is not None:
        listed = {a.path for a in MlflowClient().list_artifacts(run_id)}
        uri = f"runs:/{run_id}/{ARTIFACT if ARTIFACT in listed or LEGACY_ARTIFACT not in listed else LEGACY_ARTIFACT}"
    if not uri.startswith("runs:/"):
        raise ValueError(
            f"Invalid model {uri!r}. Supported: a trained-model folder, runs:/<run_id>, "
            f"models:/<name>/<version>, models:/<name>@<alias>."
        )
    return Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(dst)))
