"""Sites in the data: a second hospital's batches, their patients, and a gold share carved per site.

Real files: the bundled Kermany sample (the first site, imported by the ``hub_paths`` fixture) and
the bundled NIH sample (sample_data/site_b, 89 films of 72 patients, NIH file names).
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import pytest
from PIL import Image

from hub import cycle, dataset
from hub.pool import BATCH_MANIFEST, DEFAULT_SITE, GOLD, NO_PATIENT, PENDING, TRAIN, VAL, DataError, Pool, Split
from tests.conftest import ROOT

SITE_B = ROOT / "sample_data" / "site_b"


def nih_batch(dest: Path, patients: set[str] | None = None, site: str | None = "nih-cc") -> Path:
    """A batch of the bundled NIH films (only ``patients``' when given), with a batch.json naming the site."""
    for f in sorted(SITE_B.glob("*/*.jpeg")):
        if patients is None or f.name[:8] in patients:
            (dest / f.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dest / f.parent.name / f.name)
    if site:
        (dest / BATCH_MANIFEST).write_text(json.dumps({"site": site}))
    return dest


def nih_patients(label: str) -> list[str]:
    return sorted({f.name[:8] for f in (SITE_B / label).glob("*.jpeg")})


def patients_in(split: Split, entries, site: str) -> dict[str, set[str]]:
    out = defaultdict(set)
    for s, es in split.assign(entries).items():
        out[s] |= {e.patient for e in es if e.site == site}
    return out


def test_a_second_sites_batch_is_scoped_by_site_and_patient(hub_paths, tmp_path):
    report, added = dataset.import_data(hub_paths, nih_batch(tmp_path / "b1"))
    assert not report.rejected and len(added) == 89
    assert {e.site for e in added} == {"nih-cc"}
    assert {e.patient for e in added if e.file.endswith("00001281_000.jpeg")} <= {"nih-cc:00001281"}
    assert len({e.patient for e in added}) == 72, "NIH names give the patient: 89 films, 72 patients"
    kermany = [e for e in Pool(hub_paths.pool).entries() if e.site == DEFAULT_SITE]
    assert kermany and not any(":" in e.patient for e in kermany), "the first site's keys are unchanged"


def test_a_batch_without_patient_information_is_refused_not_split_by_image(hub_paths, tmp_path):
    batch = tmp_path / "incoming" / "anon"
    for i, f in enumerate(sorted(SITE_B.glob("NORMAL/*.jpeg"))[:4]):
        (batch / "NORMAL").mkdir(parents=True, exist_ok=True)
        shutil.copy(f, batch / "NORMAL" / f"image{i}.jpeg")  # no known pattern, no manifest
    report = dataset.validate_folder(batch, hub_paths)
    assert not report.accepted and {r.reason for r in report.rejected} == {NO_PATIENT}

    cfg = cycle.CycleConfig.from_env(hub_paths, {"incoming": str(tmp_path / "incoming"), "settle_seconds": 0})
    assert cycle.validate(hub_paths, cfg, ["anon"]) == []
    record = json.loads((hub_paths.batches / "anon.json").read_text())
    assert record["status"] == "quarantined" and "no patient" in record["problems"][0]["reason"]

    # the same files with their patients in batch.json: accepted, two films of one patient together
    shutil.move(hub_paths.quarantine / "anon", batch)
    patients = {"NORMAL/image0.jpeg": "p-1", "NORMAL/image1.jpeg": "p-1", "NORMAL/image2.jpeg": "p-2"}
    patients["NORMAL/image3.jpeg"] = "p-3"
    (batch / BATCH_MANIFEST).write_text(json.dumps({"site": "clinic-7", "patients": patients}))
    report = dataset.validate_folder(batch, hub_paths)
    assert not report.rejected
    assert sorted(r.patient for r in report.accepted) == [
        "clinic-7:p-1",
        "clinic-7:p-1",
        "clinic-7:p-2",
        "clinic-7:p-3",
    ]


@pytest.mark.parametrize(
    "manifest,message",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"patients": {}}), 'must be an object with a "site"'),
        (json.dumps({"site": "Bad Site"}), "Invalid site name"),
        (json.dumps({"site": "ok", "patients": {"NORMAL/x.jpeg": ""}}), "non-empty patient key"),
    ],
)
def test_a_bad_batch_manifest_is_a_clear_error(hub_paths, tmp_path, manifest, message):
    batch = nih_batch(tmp_path / "b", site=None)
    (batch / BATCH_MANIFEST).write_text(manifest)
    with pytest.raises(DataError, match=message):
        dataset.validate_folder(batch, hub_paths)


def test_a_new_sites_gold_is_carved_once_it_has_enough_patients_and_then_frozen(hub_paths, tmp_path):
    split0 = Split.load(hub_paths.splits)
    kermany_gold = list(split0.gold)
    normal, pneumonia = nih_patients("NORMAL"), nih_patients("PNEUMONIA")
    assert len(normal) == len(pneumonia) == 36

    # batch 1: 20 patients per class, under the 25 needed: pending, not trained on, not gold
    first = set(normal[:20] + pneumonia[:20])
    dataset.import_data(hub_paths, nih_batch(tmp_path / "b1", first))
    split1, changed = dataset.split(hub_paths)
    assert not changed and "nih-cc" not in split1.sites
    view = dataset.training_view(hub_paths)
    assert {e.site for e in view.assigned[PENDING]} == {"nih-cc"} and len(view.assigned[PENDING]) > 40
    assert all(e.site == DEFAULT_SITE for s in (TRAIN, VAL, GOLD) for e in view.assigned[s])
    status = dataset.status(hub_paths)
    assert status["pool_by_site"]["nih-cc"] == len(view.assigned[PENDING])
    assert PENDING in status["split_by_site"]["nih-cc"] and "nih-cc" not in status["sites_carved"]

    # batch 2: the rest (36 per class): carved now, from all of its patients; the first site's gold unchanged
    dataset.import_data(hub_paths, nih_batch(tmp_path / "b2", set(normal[20:] + pneumonia[20:])))
    split2, changed = dataset.split(hub_paths)
    assert changed and "nih-cc" in split2.sites
    entries = Pool(hub_paths.pool).entries()
    by = patients_in(split2, entries, "nih-cc")
    assert not by[PENDING] and len(by[GOLD]) == round(36 * 0.15) * 2
    assert set(kermany_gold) <= set(split2.gold)
    assert [g for g in split2.gold if g in kermany_gold] == sorted(kermany_gold)
    for site in (DEFAULT_SITE, "nih-cc"):  # no patient in two splits
        b = patients_in(split2, entries, site)
        assert not (b[TRAIN] & b[VAL] or b[TRAIN] & b[GOLD] or b[VAL] & b[GOLD])

    # re-running changes nothing; a later batch of new patients of that site goes to train/val, never gold
    again, changed = dataset.split(hub_paths)
    assert not changed and again.gold == split2.gold and again.patients == split2.patients
    late = tmp_path / "b3"
    (late / "PNEUMONIA").mkdir(parents=True)
    Image.open(next(SITE_B.glob("PNEUMONIA/*.jpeg"))).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(
        late / "PNEUMONIA" / "99999999_000.jpeg"
    )  # new content: a copy would be a duplicate
    (late / BATCH_MANIFEST).write_text(json.dumps({"site": "nih-cc"}))
    dataset.import_data(hub_paths, late)
    after = dataset.training_view(hub_paths)
    (new,) = [e for e in Pool(hub_paths.pool).entries() if e.patient == "nih-cc:99999999"]
    assert new in after.assigned[TRAIN] + after.assigned[VAL]
    assert Split.load(hub_paths.splits).gold == split2.gold
