"""Patient-level split: no patient in two splits, stable across runs, gold never moves."""

from __future__ import annotations

import pytest

from hub import dataset
from hub.pool import GOLD, TRAIN, VAL, Pool, Split, make_split, patient_id
from tests.conftest import sample_files


@pytest.mark.parametrize(
    "name,patient",
    [
        ("person1000_bacteria_2931.jpeg", "person1000"),
        ("person1000_virus_1681.jpeg", "person1000"),
        ("IM-0115-0001.jpeg", "IM-0115"),
        ("NORMAL2-IM-0115-0002.jpeg", "IM-0115"),
        ("person12_bacteria_3__1a2b3c4d.jpeg", "person12"),
        ("IM-0533-0001-0002.jpeg", "IM-0533"),  # a second film of that study: the same patient
        ("NORMAL2-IM-1020-0001-0001.jpeg", "IM-1020"),
        ("person447_virus_921_1.jpeg", "person447"),
        ("00001281_000.jpeg", "00001281"),  # NIH ChestX-ray8
        ("00001281_012.png", "00001281"),
        ("scan_2026_11.png", None),  # no known pattern: the batch must say (batch.json), or it is refused
        ("a1b2c3d4e5f60718.png", None),
    ],
)
def test_patient_id_from_file_name(name, patient):
    assert patient_id(name) == patient


def _patients_by_split(view):
    return {s: {e.patient for e in view.assigned[s]} for s in (TRAIN, VAL, GOLD)}


def test_no_patient_in_two_splits(hub_paths):
    view = dataset.training_view(hub_paths)
    by = _patients_by_split(view)
    assert not (by[TRAIN] & by[VAL]) and not (by[TRAIN] & by[GOLD]) and not (by[VAL] & by[GOLD])
    # the sample has patients with several images, so this is a real constraint
    multi = [
        p
        for p in by[TRAIN] | by[VAL] | by[GOLD]
        if sum(e.patient == p for s in (TRAIN, VAL, GOLD) for e in view.assigned[s]) > 1
    ]
    assert multi
    counts = view.counts()
    assert all(counts[s].get("NORMAL") and counts[s].get("PNEUMONIA") for s in (TRAIN, VAL, GOLD))


def test_split_is_persisted_and_deterministic(hub_paths):
    first = Split.load(hub_paths.splits)
    again, new = dataset.split(hub_paths, seed=7)  # an existing split is kept, whatever the arguments
    assert not new and again.gold == first.gold
    hub_paths.splits.unlink()
    remade, new = dataset.split(hub_paths, seed=first.seed)
    assert new and remade.patients == first.patients and remade.gold == first.gold
    other = make_split(Pool(hub_paths.pool).entries(), seed=first.seed + 1)
    assert other.gold != first.gold


def test_new_batch_never_moves_gold(hub_paths, tmp_path):
    before = dataset.training_view(hub_paths)
    gold_patient = before.assigned[GOLD][0].patient
    batch = tmp_path / "batch-2"
    (batch / "PNEUMONIA").mkdir(parents=True)
    (batch / "NORMAL").mkdir(parents=True)
    # new patients (renamed copies would be duplicates, so flip pixels to make new content)
    from PIL import Image, ImageOps

    for i, f in enumerate(sample_files("PNEUMONIA", 8)):
        ImageOps.mirror(Image.open(f)).save(batch / "PNEUMONIA" / f"person{90000 + i}_bacteria_1.jpeg")
    gold_file = hub_paths.pool / before.assigned[GOLD][0].file
    ImageOps.mirror(Image.open(gold_file)).save(
        batch / "NORMAL" / f"{gold_patient}-9999.jpeg"
        if gold_patient.startswith("IM-")
        else batch / "NORMAL" / f"{gold_patient}_virus_9999.jpeg"
    )
    _, added = dataset.import_data(hub_paths, batch)
    assert len(added) == 9
    after = dataset.training_view(hub_paths)
    assert sorted(e.sha256 for e in after.assigned[GOLD]) == sorted(e.sha256 for e in before.assigned[GOLD])
    new_patients = {f"person{90000 + i}" for i in range(8)}
    assert new_patients <= {e.patient for s in (TRAIN, VAL) for e in after.assigned[s]}
    assert [e.patient for e in after.assigned["held_out"]] == [gold_patient]
    assert after.version != before.version
    assert after.dvc_hash and after.dvc_hash != before.dvc_hash, "a new DVC version of the pool"
