"""`pneumo-hub data retract`: a harmful batch taken out of the pool after the fact, on record, as a
new DVC version; refused if it comes again; an interrupted retraction finishes when run again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from hub import cycle, dataset, dvc
from hub.pool import Pool
from tests.conftest import ROOT, sample_files


@pytest.fixture
def ingested(hub_paths, tmp_path):
    """The sample hub with one more batch, clinic-9 (3 new images), ingested by the cycle's steps."""
    from PIL import Image, ImageOps

    cfg = cycle.CycleConfig.from_env(hub_paths, {"incoming": str(tmp_path / "incoming"), "settle_seconds": 0})
    before = dataset.training_view(hub_paths).version
    batch = cfg.incoming / "clinic-9" / "NORMAL"
    batch.mkdir(parents=True)
    for i, f in enumerate(sample_files("NORMAL", 3, offset=2)):
        ImageOps.mirror(Image.open(f)).save(batch / f"person{82000 + i}_virus_1.jpeg")
    good = cycle.validate(hub_paths, cfg, cycle.detect(hub_paths, cfg))
    assert good == ["clinic-9"]
    version = cycle.ingest(hub_paths, cfg, good)
    assert version != before
    return hub_paths, cfg, before, version


def _hub(home, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", "--home", str(home), *args],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_retracted_batch_leaves_the_pool_on_record_and_is_refused_when_sent_again(ingested, alert_sink):
    paths, cfg, before, version = ingested
    pool = Pool(paths.pool)
    files = [paths.pool / e.file for e in pool.entries() if e.source == "clinic-9"]
    assert len(files) == 3 and all(f.is_file() for f in files)
    dvc_before = dvc.tracked_hash(paths.home)
    # the cycle that ingested it says which batches made the version (what a refused challenger points at)
    assert cycle.read_cycle(paths, version)["batches"] == ["clinic-9"]

    out = _hub(paths.home, "data", "retract", "clinic-9", "--reason", "labels flipped", "--by", "dr-ml")
    assert out.returncode == 0, out.stderr
    assert "retracted batch clinic-9: 3 images out of the pool (labels flipped)" in out.stdout
    # out of every later training: the pool is back to the version before the batch, as a new DVC version
    assert [e for e in Pool(paths.pool).entries() if e.source == "clinic-9"] == []
    assert not any(f.exists() for f in files)
    assert dataset.training_view(paths).version == before
    assert dvc.tracked_hash(paths.home) not in (None, dvc_before)
    assert "up to date" in dvc._dvc(paths.home, "status", "pool.dvc")
    # on record, inside the pool's DVC version, and visible in `data status` and the batch's record
    rows = Pool(paths.pool).retractions()
    assert len(rows) == 3 and {(r.source, r.by, r.reason) for r in rows} == {("clinic-9", "dr-ml", "labels flipped")}
    status = _hub(paths.home, "data", "status")
    assert "retracted: batch clinic-9 (3 images)" in status.stdout and "by dr-ml: labels flipped" in status.stdout
    record = json.loads((paths.batches / "clinic-9.json").read_text())
    assert record["status"] == "retracted" and record["retracted"]["dataset_after"] == before
    assert (paths.quarantine / "clinic-9" / "NORMAL").is_dir() and not (paths.ingested / "clinic-9").exists()
    assert [a["event"] for a in alert_sink] == ["batch_retracted"]
    assert "3 image(s) out of the pool (labels flipped)" in alert_sink[0]["summary"]

    # the same images sent again (a clinic re-sends its export): refused with the reason, batch quarantined
    shutil.copytree(paths.quarantine / "clinic-9", cfg.incoming / "clinic-9-again")
    assert cycle.validate(paths, cfg, cycle.detect(paths, cfg)) == []
    again = json.loads((paths.batches / "clinic-9-again.json").read_text())
    assert again["status"] == "quarantined"
    assert all(
        "retracted from the pool on" in p["reason"] and "labels flipped" in p["reason"] for p in again["problems"]
    )
    assert len(again["problems"]) == 3

    # running it again says so and changes nothing; a batch the pool never had is an error that says why
    dvc_after = dvc.tracked_hash(paths.home)
    out = _hub(paths.home, "data", "retract", "clinic-9", "--reason", "again")
    assert out.returncode == 0 and "already retracted" in out.stdout and "by dr-ml: labels flipped" in out.stdout
    assert dvc.tracked_hash(paths.home) == dvc_after and len(Pool(paths.pool).retractions()) == 3
    out = _hub(paths.home, "data", "retract", "no-such-batch", "--reason", "x")
    assert out.returncode != 0 and "No image in the pool came with batch 'no-such-batch'" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_retraction_interrupted_after_its_record_is_finished_by_running_it_again(ingested, monkeypatch):
    """A crash between the record and the manifest (the window a kill can hit): the images are already
    out of every training view, and the next run removes them from the manifest, the disk and DVC."""
    paths, _, before, _ = ingested
    pool = Pool(paths.pool)
    files = [paths.pool / e.file for e in pool.entries() if e.source == "clinic-9"]
    real = Pool._write_tsv

    def crash_on_manifest(path, fields, rows):
        if path.name == "MANIFEST.tsv":
            raise OSError(28, "No space left on device")
        real(path, fields, rows)

    monkeypatch.setattr(Pool, "_write_tsv", staticmethod(crash_on_manifest))
    with pytest.raises(OSError):
        dataset.retract(paths, "clinic-9", "bad labels", "it")
    monkeypatch.setattr(Pool, "_write_tsv", staticmethod(real))
    assert "clinic-9" in pool.manifest.read_text()  # the manifest still names them ...
    assert dataset.training_view(paths).version == before  # ... but no training sees them
    assert all(f.exists() for f in files)

    done = dataset.retract(paths, "clinic-9", "bad labels", "it")
    assert done["images"] == 3 and not done["already_retracted"]
    assert "clinic-9" not in pool.manifest.read_text() and not any(f.exists() for f in files)
    assert len(pool.retractions()) == 3  # recorded once
    assert "up to date" in dvc._dvc(paths.home, "status", "pool.dvc")
