"""The hub's trained model: saved and loaded as a pair, and found in MLflow under its current and its old name."""

from __future__ import annotations

import pytest
import torch

from hub.model import build_model
from hub.tracking import resolve_trained_model
from hub.trained_model import ARTIFACT, LEGACY_ARTIFACT, ModelInfo, TrainedModel


@pytest.mark.parametrize("artifact", [ARTIFACT, LEGACY_ARTIFACT])
def test_a_runs_trained_model_is_found_under_its_name_and_under_the_old_one(tmp_path, monkeypatch, artifact):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    torch.manual_seed(3)
    info = ModelInfo(
        preprocess={"size": 64, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        temperature=1.4,
        threshold=0.3,
        target_sensitivity=0.95,
        dataset_version="ds-test",
    )
    saved = TrainedModel(build_model("none").eval(), info).save(tmp_path / "saved")
    exp = mlflow.create_experiment("t", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_artifacts(str(saved), artifact)  # LEGACY_ARTIFACT: a run logged before the rename
    got = TrainedModel.load(resolve_trained_model(f"runs:/{run.info.run_id}", tmp_path / "download"))
    assert got.info == info
    assert all(
        torch.equal(a, b)
        for a, b in zip(got.model.state_dict().values(), TrainedModel.load(saved).model.state_dict().values())
    )
