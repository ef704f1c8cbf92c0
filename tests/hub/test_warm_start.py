"""A challenger can start from the champion's weights instead of ImageNet/random (configurable)."""

from __future__ import annotations

import pytest

from hub import cycle, dataset, registry
from hub.config import TrainConfig
from hub.experiment import train_and_evaluate

pytestmark = pytest.mark.slow
TINY = {"epochs": 1, "batch_size": 16, "image_size": 64, "weights": "none", "num_workers": 0, "max_train_images": 48}


def test_warm_start_trains_from_the_champion(hub_paths, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first = train_and_evaluate(hub_paths, TrainConfig(**TINY), run_name="first")
    registry.set_champion(first.registered_version)
    cfg = cycle.CycleConfig.from_env(hub_paths, {**TINY, "warm_start": True})
    version = dataset.training_view(hub_paths).version
    run_id = cycle.train_challenger(hub_paths, cfg, version)
    from mlflow import MlflowClient

    run = MlflowClient().get_run(run_id)
    assert run.data.tags["cycle.warm_start_from"] == first.registered_version
    assert run.data.params["weights"].endswith("model.pt")
    assert cycle.train_challenger(hub_paths, cfg, version) == run_id, "a retry reuses the trained challenger"
