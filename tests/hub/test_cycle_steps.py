"""Cycle steps that need no training: bad batches never block the queue or touch the pool."""

from __future__ import annotations

import json
import shutil

import pytest

from hub import cycle
from hub.pool import Pool
from tests.conftest import sample_files


@pytest.fixture
def cfg(hub_paths, tmp_path):
    return cycle.CycleConfig.from_env(hub_paths, {"incoming": str(tmp_path / "incoming"), "settle_seconds": 0})


def test_folder_that_is_not_a_batch_is_quarantined_and_good_batches_still_go_in(hub_paths, cfg):
    before = len(Pool(hub_paths.pool).entries())
    (cfg.incoming / "loose").mkdir(parents=True)
    shutil.copy(sample_files("NORMAL", 1)[0], cfg.incoming / "loose" / "x.jpeg")  # no label folder
    good = cfg.incoming / "good"
    (good / "PNEUMONIA").mkdir(parents=True)
    from PIL import Image, ImageOps

    for i, f in enumerate(sample_files("PNEUMONIA", 3)):
        ImageOps.mirror(Image.open(f)).save(good / "PNEUMONIA" / f"person{80000 + i}_virus_1.jpeg")
    batches = cycle.detect(hub_paths, cfg)
    assert batches == ["good", "loose"]
    assert cycle.validate(hub_paths, cfg, batches) == ["good"]
    record = json.loads((hub_paths.home / "batches" / "loose.json").read_text())
    assert record["status"] == "quarantined" and "neither split folders" in record["problems"][0]["reason"]
    cycle.ingest(hub_paths, cfg, ["good"])
    assert len(Pool(hub_paths.pool).entries()) == before + 3
    # a retry of both steps finds the work done and changes nothing
    assert cycle.validate(hub_paths, cfg, batches) == []
    cycle.ingest(hub_paths, cfg, ["good"])
    assert len(Pool(hub_paths.pool).entries()) == before + 3
    assert cycle.detect(hub_paths, cfg) == []


def test_bad_settings_are_refused_with_the_setting_named(hub_paths):
    for bad, needle in (
        ({"epochs": 0}, "Invalid epochs 0"),
        ({"epochs": "x"}, "Invalid epochs 'x'"),
        ({"bogus": 1}, "Unknown cycle settings ['bogus']"),
        ({"policy": {"min_recal": 1}}, "Unknown promotion policy keys"),
    ):
        with pytest.raises(ValueError) as e:
            cycle.CycleConfig.from_env(hub_paths, bad)
        assert needle in str(e.value)
    assert cycle.CycleConfig.from_env(hub_paths, {"warm_start": "false"}).warm_start is False
