"""The continuous_training DAG end to end with a real `dag.test()`, a real MLflow server and a real feed."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pendulum
import pytest
from PIL import Image

from feed.client import FeedClient
from feed.server import FeedServer
from hub import dataset
from hub.config import HubPaths
from hub.pool import Pool, patient_id
from tests.conftest import SAMPLE

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {
    "image_size": 64,
    "epochs": 3,
    "batch_size": 16,
    "weights": "none",
    "num_workers": 0,
    "settle_seconds": 0,
    "policy": {"min_recall": 0.6, "min_accuracy": 0.5, "recall_tolerance": 0.05},
}


def _sample_by_patient(part: int) -> list[tuple[Path, str]]:
    """The bundled sample cut in two by patient: part 0 ≈ 2/3 of the patients, part 1 the rest."""
    out = []
    for label in ("NORMAL", "PNEUMONIA"):
        for f in sorted((SAMPLE / "train" / label).glob("*.jpeg")):
            h = int(hashlib.sha256(patient_id(f.name).encode()).hexdigest()[:4], 16) % 3
            if (h < 2) == (part == 0):
                out.append((f, label))
    return out


def make_batch(incoming: Path, name: str, items: list[tuple[Path, str]]) -> Path:
    for f, label in items:
        (incoming / name / label).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, incoming / name / label / f.name)
    return incoming / name


def make_flipped_batch(incoming: Path, name: str, items: list[tuple[Path, str]], copies: int = 2) -> Path:
    """Labels flipped on cropped, re-encoded copies (new content, new patient ids): outnumbers the true
    labels. Cropped by 5 % and more, so that no validation catches them (a re-encoded copy alone is a
    near-duplicate, and relabelled a label conflict: tests/data/test_validation.py): the gate must."""
    for i, (f, label) in enumerate(items):
        flipped = "NORMAL" if label == "PNEUMONIA" else "PNEUMONIA"
        (incoming / name / flipped).mkdir(parents=True, exist_ok=True)
        img = Image.open(f)
        for c in range(copies):
            m = 5 + 4 * c  # per cent cut from each side: each copy another crop
            box = (
                img.width * m // 100,
                img.height * m // 100,
                img.width * (100 - m) // 100,
                img.height * (100 - m) // 100,
            )
            copy = img.crop(box).resize(img.size, Image.Resampling.BILINEAR)  # the size the sample films have
            copy.save(incoming / name / flipped / f"person{70000 + i * copies + c}_bacteria_1.jpeg", quality=80)
    return incoming / name


def run_dag(settings=SETTINGS, logical_date=None):
    import importlib.util

    spec = importlib.util.spec_from_file_location("continuous_training_dag", ROOT / "dags" / "continuous_training.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    dag = mod.continuous_training()
    dr = dag.test(logical_date=logical_date or pendulum.now("UTC"), run_conf={"settings": settings})
    return dr, {ti.task_id: ti.state for ti in dr.get_task_instances()}


def _feed_status(capsys) -> tuple[int, str]:
    """``pneumo-hub feed status``: its exit code and the registry line (the last one)."""
    from hub.cli import main

    capsys.readouterr()
    code = main(["feed", "status"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    return code, last.split(" (")[0].split(":")[0] if last.startswith("DIFFERS") else last.split(" (")[0]


def feed_offer(paths: HubPaths, tmp: Path):
    with FeedServer(paths.home / "feed", "127.0.0.1", 0).start() as server:
        client = FeedClient(paths.home / "feed" / "metadata" / "root.json", server.url, tmp)
        return client.check()


@pytest.fixture
def cycle_env(tmp_path, monkeypatch, airflow_db):
    home = tmp_path / "home"
    monkeypatch.setenv("PNEUMO_HOME", str(home))
    monkeypatch.setenv("PNEUMO_INCOMING", str(tmp_path / "incoming"))
    (tmp_path / "incoming").mkdir()
    return HubPaths(home), tmp_path / "incoming"


def _mlflow():
    from mlflow import MlflowClient

    from hub.config import REGISTERED_MODEL

    return MlflowClient(), REGISTERED_MODEL


def test_cycles_champion_then_challenger_then_harmful_batch(
    cycle_env, mlflow_server, monkeypatch, tmp_path, capsys, alert_sink
):
    paths, incoming = cycle_env
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    import mlflow

    mlflow.set_tracking_uri(mlflow_server)
    client, name = _mlflow()

    # -- cycle 1: first batch makes the first champion, exported and published as feed v1
    make_batch(incoming, "batch-1", _sample_by_patient(0))
    first = pendulum.now("UTC")
    dr, states = run_dag(logical_date=first)
    assert dr.state == "success", states
    assert set(states.values()) == {"success"}
    champ = client.get_model_version_by_alias(name, "champion")
    offer = feed_offer(paths, tmp_path / "c1")
    assert offer.version == 1
    card = json.loads((paths.home / "packages" / "1" / "model.json").read_text())
    assert card["provenance"]["registered_version"] == champ.version
    decision = client.get_run(champ.run_id).data.tags
    assert decision["promotion.decision"] == "promoted" and "no champion yet" in decision["promotion.reasons"]
    # the registry version says what the pipeline did with it: decision, dataset version, feed version
    tags = client.get_model_version(name, champ.version).tags
    assert tags["pneumoscan.decision"] == "promoted" and tags["pneumoscan.feed_version"] == "1"
    assert tags["pneumoscan.dataset_version"].startswith("ds-")
    assert "promoted on ds-" in client.get_model_version(name, champ.version).description
    assert _feed_status(capsys) == (0, "registry: its champion alias is the feed's model")

    # -- re-running the finished run (same logical date) changes nothing
    dvc_before = (paths.home / "pool.dvc").read_text()
    n_versions = len(client.search_model_versions(f"name = '{name}'"))
    dr, states = run_dag(logical_date=first)
    assert dr.state == "success" and states["has_work"] == "success" and states["train"] == "skipped", states
    assert (paths.home / "pool.dvc").read_text() == dvc_before
    assert len(client.search_model_versions(f"name = '{name}'")) == n_versions
    assert feed_offer(paths, tmp_path / "c1b").version == 1

    # -- cycle 2: a genuine new batch; challenger and champion scored on the same gold set. On this gold
    # set (about 27 images, 12 positive) one image moves recall by 8 points and accuracy by 4, so two
    # good models' order is a coin toss that differs between CPUs (docs/training.md). The policy here
    # keeps the floors and waives the comparisons (configurable margins; the rules themselves are
    # tested in tests/hub/test_policy.py): the cycle must promote and the feed move on.
    make_batch(incoming, "batch-2", _sample_by_patient(1))
    lenient = {**SETTINGS, "policy": {**SETTINGS["policy"], "min_accuracy_gain": -1.0, "recall_tolerance": 1.0}}
    dr, states = run_dag(lenient)
    assert dr.state == "success", states
    cycles = [json.loads(c.read_text()) for c in (paths.home / "cycles").glob("ds-*.json")]
    (c2,) = [c for c in cycles if c["challenger_run_id"] != champ.run_id]
    run2 = client.get_run(c2["challenger_run_id"])
    assert "champion_gold_accuracy" in run2.data.metrics and "gold_accuracy" in run2.data.metrics
    assert run2.data.tags["cycle.champion_version"] == champ.version
    scores = json.loads(Path(c2["scores"]).read_text())
    assert len(scores["champion"]["correct"]) == len(scores["challenger"]["correct"]) == scores["gold_images"]
    decision2 = json.loads(
        Path(client.download_artifacts(run2.info.run_id, "decision.json", str(tmp_path))).read_text()
    )
    assert decision2["promote"] is True and decision2 == c2["decision"]
    assert states["publish"] == "success"
    assert client.get_model_version_by_alias(name, "champion").run_id == run2.info.run_id
    assert client.get_model_version_by_alias(name, "previous").version == champ.version
    assert feed_offer(paths, tmp_path / "c2").version == 2
    champ_after_2 = client.get_model_version_by_alias(name, "champion")
    feed_after_2 = feed_offer(paths, tmp_path / "c2b").version

    # -- a harmful batch (labels flipped) → challenger rejected, reasons recorded, champion and feed unchanged
    make_flipped_batch(incoming, "batch-flipped", _sample_by_patient(0) + _sample_by_patient(1))
    dr, states = run_dag()
    assert dr.state == "success", states
    assert states["judge"] == "success" and states["promote"] == "skipped" and states["publish"] == "skipped"
    c3 = [json.loads(c.read_text()) for c in sorted((paths.home / "cycles").glob("ds-*.json"))]
    rejected = [c for c in c3 if not c["decision"]["promote"]]
    assert rejected and any("fail:" in r for r in rejected[-1]["decision"]["reasons"])
    assert client.get_run(rejected[-1]["challenger_run_id"]).data.tags["promotion.decision"] == "rejected"
    rejected_tags = client.get_model_version(name, rejected[-1]["challenger_version"]).tags
    assert rejected_tags["pneumoscan.decision"] == "rejected" and "pneumoscan.feed_version" not in rejected_tags
    # someone moves the alias in the MLflow UI: nothing is published, and feed status says they differ
    client.set_registered_model_alias(name, "champion", rejected[-1]["challenger_version"])
    assert _feed_status(capsys) == (1, "DIFFERS")
    client.set_registered_model_alias(name, "champion", champ_after_2.version)
    assert _feed_status(capsys)[0] == 0
    assert client.get_model_version_by_alias(name, "champion").version == champ_after_2.version
    assert feed_offer(paths, tmp_path / "c3").version == feed_after_2
    # -- rollback: the previous champion comes back and is republished as a new feed version
    from hub.cli import main

    assert main(["promote", "--rollback"]) == 0
    assert client.get_model_version_by_alias(name, "champion").version == champ.version
    assert client.get_model_version_by_alias(name, "previous").run_id == run2.info.run_id
    assert feed_offer(paths, tmp_path / "c4").version == feed_after_2 + 1
    card = json.loads((paths.home / "packages" / str(feed_after_2 + 1) / "model.json").read_text())
    assert card["provenance"]["registered_version"] == champ.version
    back = client.get_model_version(name, champ.version).tags
    assert back["pneumoscan.feed_version"] == str(feed_after_2 + 1) and "pneumoscan.rollback" in back
    assert _feed_status(capsys)[0] == 0

    # -- the harmful batch retracted after the fact, as the refusal's alert suggests: out of the pool as
    # a new DVC version; the pool is cycle 2's data again, which has its decision, so nothing retrains
    (refused,) = [a for a in alert_sink if a["event"] == "challenger_rejected"]
    assert "batch-flipped" in refused["summary"] and "pneumo-hub data retract" in refused["summary"]
    dvc_before = (paths.home / "pool.dvc").read_text()
    assert main(["data", "retract", "batch-flipped", "--reason", "labels flipped"]) == 0
    assert not [e for e in Pool(paths.pool).entries() if e.source == "batch-flipped"]
    assert (paths.home / "pool.dvc").read_text() != dvc_before
    assert dataset.training_view(paths).version == c2["dataset_version"]
    dr, states = run_dag()
    assert dr.state == "success" and states["train"] == "skipped", states


def test_corrupt_batch_is_quarantined_and_nothing_trains(cycle_env, tmp_path, alert_sink):
    paths, incoming = cycle_env
    batch = make_batch(incoming, "batch-bad", _sample_by_patient(0)[:20])
    (batch / "NORMAL" / "broken.jpeg").write_bytes(b"\xff\xd8\xff" + b"\x00" * 100)
    dr, states = run_dag()
    assert dr.state == "success"
    assert states["has_work"] == "success" and states["train"] == "skipped", states
    assert Pool(paths.pool).entries() == []
    assert (paths.home / "quarantine" / "batch-bad" / "NORMAL").is_dir() and not batch.exists()
    report = json.loads((paths.home / "quarantine" / "batch-bad.report.json").read_text())
    assert any(r["rel"] == "NORMAL/broken.jpeg" for r in report["rejected"])
    assert not (paths.home / "cycles").exists(), "no training run was started"
    # a green run, but the team hears of it
    assert [a["event"] for a in alert_sink] == ["batch_quarantined"]
    assert alert_sink[0]["details"]["batch"] == "batch-bad"
    assert any("broken.jpeg" in p for p in alert_sink[0]["details"]["problems"])


def test_failing_training_promotes_and_publishes_nothing(cycle_env, tmp_path, monkeypatch, alert_sink):
    """A bad setting fails at once, retries or not, and before an MLflow run exists (no FAILED run per retry)."""
    from mlflow import MlflowClient

    paths, incoming = cycle_env
    monkeypatch.setenv("PNEUMO_DAG_RETRIES", "3")
    make_batch(incoming, "batch-1", _sample_by_patient(0))
    dr, states = run_dag({**SETTINGS, "weights": str(tmp_path / "missing-weights.pt")})
    assert dr.state == "failed"
    assert states["train"] == "failed"  # not up_for_retry: a retry cannot make the file appear
    assert {ti.task_id: ti.try_number for ti in dr.get_task_instances()}["train"] == 1
    client = MlflowClient(paths.tracking_uri())
    assert not [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert states["promote"] in ("upstream_failed", None) and states["publish"] in ("upstream_failed", None)
    assert not (paths.home / "feed").exists() and not (paths.home / "packages").exists()
    assert len(Pool(paths.pool).entries()) > 0, "the batch itself was fine and stays ingested"
    # the failure reaches the team's webhook once, naming the task and what to change
    failed = [a for a in alert_sink if a["event"] == "task_failed"]
    assert [a["details"]["task_id"] for a in failed] == ["train"], alert_sink
    assert "missing-weights.pt" in failed[0]["summary"]


def test_one_cycle_with_mlflow_on_postgresql(cycle_env, monkeypatch, tmp_path):
    """The DAG once against MLflow whose metadata store is a real PostgreSQL server, as in docker-compose."""
    from tests.deploy.test_postgres import _mlflow_server, fresh_database

    paths, incoming = cycle_env
    with fresh_database() as (url, connect):
        (tmp_path / "mlflow-pg").mkdir()
        server_gen = _mlflow_server(url, connect, tmp_path / "mlflow-pg")
        server, _, _ = next(server_gen)
        try:
            monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
            make_batch(incoming, "batch-1", _sample_by_patient(0))
            dr, states = run_dag()
            assert dr.state == "success" and set(states.values()) == {"success"}, states
            client, name = _mlflow()
            client = type(client)(server)
            champ = client.get_model_version_by_alias(name, "champion")
            assert client.get_run(champ.run_id).data.tags["promotion.decision"] == "promoted"
            assert feed_offer(paths, tmp_path / "c").version == 1
            import psycopg2

            with psycopg2.connect(**connect) as conn, conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM registered_model_aliases WHERE alias = 'champion'")
                assert cur.fetchone()[0] == 1, "the alias lives in PostgreSQL"
        finally:
            server_gen.close()
