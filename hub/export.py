"""The export stage: a trained model → a verified ONNX model package (``hub.onnx_export`` converts,
verifies and cards it; the package format is ``contract.package``)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from hub import tracking
from hub.config import REGISTERED_MODEL, HubPaths
from hub.dataset import training_view
from hub.pool import GOLD, TRAIN, VAL
from hub.trained_model import TrainedModel

logger = logging.getLogger(__name__)


def _registered_version(run_id: str | None) -> str | None:
    if not run_id:
        return None
    try:
        from mlflow import MlflowClient

        versions = MlflowClient().search_model_versions(f"name = '{REGISTERED_MODEL}' and run_id = '{run_id}'")
        return str(versions[0].version) if versions else None
    except Exception as e:  # a tracking server that is down must not block an export
        logger.warning("Could not look up the registered version of run %s: %s", run_id, e)
        return None


def export_model(
    paths: HubPaths,
    model: str,
    version: int,
    out_dir: Path | None = None,
    int8: bool = True,
    n_verify: int = 32,
    n_calibration: int = 128,
    seed: int = 0,
    registered_version: str | None = None,
) -> Path:
    """Export ``model`` (trained-model folder or MLflow URI) as package ``version``; refused if verification fails."""
    from hub.onnx_export import build_package

    view = training_view(paths)
    tracking.setup(paths)
    out_dir = Path(out_dir or paths.packages / str(version))
    with tempfile.TemporaryDirectory() as tmp:
        trained = TrainedModel.load(tracking.resolve_trained_model(model, Path(tmp)))
        info = trained.info
        gold_files, gold_labels = view.files(GOLD)
        train_files, train_labels = view.files(TRAIN)
        val_files, _ = view.files(VAL)
        rng = np.random.default_rng(seed)
        calibration = [
            train_files[i]
            for i in sorted(rng.choice(len(train_files), min(n_calibration, len(train_files)), replace=False))
        ]
        provenance = {
            "mlflow_run_id": info.mlflow_run_id,
            "registered_model": REGISTERED_MODEL,
            "registered_version": registered_version or _registered_version(info.mlflow_run_id),
            "dataset_version": info.dataset_version,
            "dvc_md5": info.dvc_hash,
            "git_commit": tracking.git_commit(),
        }
        return build_package(
            trained.model,
            temperature=info.temperature,
            threshold=info.threshold,
            spec=info.spec,
            version=version,
            out_dir=out_dir,
            metrics=info.gold_metrics,
            provenance=provenance,
            verify_files=gold_files[:n_verify],
            gold_files=gold_files,
            gold_labels=gold_labels,
            calibration_files=calibration,
            operating_points=info.operating_points,
            fit_files=train_files,
            fit_labels=train_labels,
            val_files=val_files,
            int8=int8,
        )
