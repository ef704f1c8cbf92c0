"""A real cycle on the bundled two-site sample: a second hospital's batch arrives, its gold is carved,
the challenger is scored per site (in MLflow and in the decision), and the decision names both sites.

The hub's own steps (``hub.cycle.run_once``, what the DAG's tasks call) with a real MLflow server.
"""

from __future__ import annotations

import json
import shutil

import pytest

from hub import cycle, dataset
from hub.config import HubPaths
from hub.demo import stage_site_batch
from hub.pool import BATCH_MANIFEST, GOLD
from tests.conftest import ROOT, SAMPLE

pytestmark = pytest.mark.slow
SETTINGS = {
    "image_size": 64,
    "epochs": 2,
    "batch_size": 16,
    "weights": "none",
    "num_workers": 0,
    "settle_seconds": 0,
    # floors low enough for 64 px models of a few hundred images: this test is about the sites
    "policy": {"min_recall": 0.0, "min_accuracy": 0.0, "recall_tolerance": 1.0, "min_accuracy_gain": -1.0},
}


def test_a_second_site_arrives_is_carved_and_judged_per_site(tmp_path, mlflow_server, monkeypatch):
    import mlflow
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    mlflow.set_tracking_uri(mlflow_server)
    paths = HubPaths(tmp_path / "home")
    incoming = tmp_path / "incoming"
    cfg = cycle.CycleConfig.from_env(paths, {**SETTINGS, "incoming": str(incoming)})

    shutil.copytree(SAMPLE / "train", incoming / "kermany-1")  # the first hospital: no manifest needed
    first = cycle.run_once(paths, cfg)
    assert first["promote"] and first["feed_version"] == 1
    assert set(dataset.training_view(paths).counts_by_site()) == {"kermany"}

    stage_site_batch(ROOT / "sample_data" / "site_b", incoming, "nih-cc", "nih-1")  # as `make demo` sends it
    assert json.loads((incoming / "nih-1" / BATCH_MANIFEST).read_text()) == {"site": "nih-cc"}
    second = cycle.run_once(paths, cfg)
    assert second["good"] == ["nih-1"] and second["quarantined"] == []
    view = dataset.training_view(paths)
    gold_sites = set(view.sites(GOLD))
    assert gold_sites == {"kermany", "nih-cc"}, "the new site's gold share was carved"

    reasons = "\n".join(second["decision"]["reasons"])
    assert "kermany:" in reasons and "nih-cc:" in reasons, reasons
    sites = second["decision"]["inputs"]["challenger"]["sites"]
    assert set(sites) == {"pooled", "kermany", "nih-cc"}
    for m in sites.values():
        lo, hi = m["ci"]["accuracy"]
        assert lo <= m["accuracy"] <= hi
    run = MlflowClient().get_run(second["run_id"])
    assert {"gold_site_kermany_accuracy", "gold_site_nih-cc_recall_ci_low"} <= set(run.data.metrics)
    assert "champion_gold_site_nih-cc_accuracy" in run.data.metrics, "the champion scored per site too"
    artifacts = {a.path for a in MlflowClient().list_artifacts(second["run_id"])}
    assert {"gold_by_site.json", "gold_by_site.md"} <= artifacts
    told = cycle.describe(second)  # what the demo and `pneumo-hub cycle` print
    assert "per site on gold" in told and "\n    nih-cc (" in told and "; champion " in told, told
