"""A copied hub home refuses to work until re-rooted, and then reads and writes only its own files."""

from __future__ import annotations

import json
import shutil

import pytest

from hub import home
from hub.cli import main
from hub.config import HubPaths


def _embedded_home_with_a_run(paths: HubPaths) -> str:
    """An embedded MLflow store (SQLite, artifacts under the home) with one run and its artifact, and a cycle record."""
    import mlflow

    from hub.tracking import setup

    with mlflow.start_run(experiment_id=setup(paths)) as run:
        note = paths.home / "note.txt"
        note.write_text("gold metrics")
        mlflow.log_artifact(str(note))
    paths.cycles.mkdir(parents=True)
    (paths.cycles / "ds-1.json").write_text(json.dumps({"package": str(paths.home / "packages" / "1")}))
    return run.info.run_id


def test_a_copied_home_is_refused_then_rehomed_and_uses_only_itself(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    original = HubPaths(tmp_path / "original")
    assert main(["--home", str(original.home), "settings"]) == 0  # first use records where it is
    run_id = _embedded_home_with_a_run(original)
    assert home.recorded(original) == original.home.resolve()

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # mlflow.set_tracking_uri exported the original's
    copy = HubPaths(tmp_path / "restored")
    shutil.copytree(original.home, copy.home)
    capsys.readouterr()
    assert main(["--home", str(copy.home), "settings"]) == 1
    err = capsys.readouterr().err
    assert f"was at {original.home}" in err and "rehome" in err

    assert main(["--home", str(copy.home), "rehome"]) == 0
    assert "re-rooted" in capsys.readouterr().out
    shutil.rmtree(original.home)  # from now on nothing may need the original

    from mlflow import MlflowClient

    client = MlflowClient(copy.tracking_uri())
    run = client.get_run(run_id)
    assert run.info.artifact_uri.startswith(copy.mlflow_artifacts.as_uri())
    assert client.get_experiment(run.info.experiment_id).artifact_location.startswith(copy.mlflow_artifacts.as_uri())
    got = client.download_artifacts(run_id, "note.txt", str(tmp_path / "dl"))
    assert open(got).read() == "gold metrics"
    cycle = json.loads((copy.cycles / "ds-1.json").read_text())
    assert cycle["package"] == str(copy.home / "packages" / "1")
    assert main(["--home", str(copy.home), "settings"]) == 0  # works again, here


def test_rehome_needs_to_know_where_from(tmp_path):
    paths = HubPaths(tmp_path / "h")
    paths.home.mkdir()
    with pytest.raises(home.SettingsError, match="--from"):
        home.rehome(paths)
