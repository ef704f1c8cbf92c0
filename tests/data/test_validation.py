"""Every bad file is reported with its reason and excluded; the rest is used."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from hub import dataset
from hub.config import HubPaths
from hub.pool import DataError, Pool, scan
from tests.conftest import SAMPLE, sample_files


@pytest.fixture
def messy_root(tmp_path):
    root = tmp_path / "kaggle"
    good = []
    for split, label, files in (
        ("train", "NORMAL", sample_files("NORMAL", 6)),
        ("train", "PNEUMONIA", sample_files("PNEUMONIA", 6)),
        ("val", "NORMAL", sample_files("NORMAL", 2, offset=10)),
        ("test", "PNEUMONIA", sample_files("PNEUMONIA", 2, offset=20)),
    ):
        d = root / split / label
        d.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy(f, d / f.name)
            good.append(f"{split}/{label}/{f.name}")
    n = root / "train" / "NORMAL"
    real = sample_files("NORMAL", 1, offset=30)[0].read_bytes()
    (n / "truncated.jpeg").write_bytes(real[: len(real) // 2])
    (n / "corrupt.jpeg").write_bytes(
        b"\xff\xd8\xff\xe0" + bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8))
    )
    (n / "empty.jpeg").write_bytes(b"")
    (n / "notes.txt").write_text("radiologist notes")
    (n / "text-named.png").write_text("not a png at all")
    Image.new("L", (8, 8)).save(n / "tiny.png")
    Image.new("CMYK", (64, 64)).save(n / "cmyk.jpeg")
    (root / "train" / "COVID").mkdir()
    shutil.copy(sample_files("NORMAL", 1, offset=40)[0], root / "train" / "COVID" / "x.jpeg")
    # the same image in train and val: the val copy is kept, the train copy rejected
    shutil.copy(root / "val" / "NORMAL" / sample_files("NORMAL", 1, offset=10)[0].name, n / "copy-of-val.jpeg")
    # the same image under both labels: every copy rejected
    conflict = sample_files("PNEUMONIA", 1, offset=40)[0]
    shutil.copy(conflict, n / "conflict.jpeg")
    shutil.copy(conflict, root / "train" / "PNEUMONIA" / "conflict.jpeg")
    return root, good


def test_each_bad_file_is_reported_with_its_reason(messy_root):
    root, good = messy_root
    report = scan(root)
    reasons = {r.rel: r.reason for r in report.rejected}
    assert "truncated" in reasons["train/NORMAL/truncated.jpeg"]
    assert "corrupt" in reasons["train/NORMAL/corrupt.jpeg"] or "not an image" in reasons["train/NORMAL/corrupt.jpeg"]
    assert "empty" in reasons["train/NORMAL/empty.jpeg"]
    assert "not an image file" in reasons["train/NORMAL/notes.txt"]
    assert "not an image file" in reasons["train/NORMAL/text-named.png"]
    assert "too small" in reasons["train/NORMAL/tiny.png"]
    assert "colour mode" in reasons["train/NORMAL/cmyk.jpeg"]
    assert "unknown label folder 'COVID'" in reasons["train/COVID/x.jpeg"]
    assert "duplicate of val/NORMAL/" in reasons["train/NORMAL/copy-of-val.jpeg"]
    assert "both NORMAL and PNEUMONIA" in reasons["train/NORMAL/conflict.jpeg"]
    assert "both NORMAL and PNEUMONIA" in reasons["train/PNEUMONIA/conflict.jpeg"]
    assert len(reasons) == 11
    # the rest is used: every good train/val image accepted, the official test split kept aside
    accepted = sorted(r.rel for r in report.accepted)
    assert accepted == sorted(g for g in good if not g.startswith("test/"))
    assert sorted(r.rel for r in report.kept_aside) == sorted(g for g in good if g.startswith("test/"))
    assert "11 rejected" in report.summary()


def test_duplicate_of_official_test_image_is_not_imported(tmp_path):
    root = tmp_path / "k"
    f = sample_files("PNEUMONIA", 1)[0]
    for split in ("train", "test"):
        (root / split / "PNEUMONIA").mkdir(parents=True)
        shutil.copy(f, root / split / "PNEUMONIA" / f.name)
    report = scan(root)
    assert report.accepted == []
    assert "duplicate of test/PNEUMONIA/" in report.rejected[0].reason


def test_import_adds_only_accepted_images_and_reimport_adds_nothing(messy_root, tmp_path):
    root, good = messy_root
    paths = HubPaths(tmp_path / "home")
    report, added = dataset.import_data(paths, root)
    assert len(added) == len(report.accepted) == len([g for g in good if not g.startswith("test/")])
    pool_files = sorted(p.relative_to(paths.pool).as_posix() for p in paths.pool.glob("*/*.jpeg"))
    assert pool_files == sorted(e.file for e in Pool(paths.pool).entries())
    assert (paths.home / "pool.dvc").exists(), "pool version tracked by DVC"
    assert list(paths.reports.glob("import-*.json")), "report written"
    report2, added2 = dataset.import_data(paths, root)
    assert added2 == []
    assert all("already in the pool" in r.reason or r.rel in {x.rel for x in report.rejected} for r in report2.rejected)


def test_batch_layout_and_missing_folder(tmp_path):
    batch = tmp_path / "batch-7"
    (batch / "PNEUMONIA").mkdir(parents=True)
    for f in sample_files("PNEUMONIA", 3):
        shutil.copy(f, batch / "PNEUMONIA" / f.name)
    (batch / "stray.jpeg").write_bytes(sample_files("NORMAL", 1)[0].read_bytes())
    report = scan(batch)
    assert report.layout == "batch" and len(report.accepted) == 3
    assert report.rejected[0].reason == "not inside a label folder"
    with pytest.raises(DataError, match="not found"):
        scan(tmp_path / "nope")


def test_image_relabelled_against_the_pool_is_a_conflict_not_a_duplicate(hub_paths, tmp_path):
    entry = Pool(hub_paths.pool).entries()[0]
    other = "PNEUMONIA" if entry.label == "NORMAL" else "NORMAL"
    batch = tmp_path / "batch"
    (batch / other).mkdir(parents=True)
    (batch / entry.label).mkdir(parents=True)
    shutil.copy(hub_paths.pool / entry.file, batch / other / "relabelled.jpeg")
    shutil.copy(hub_paths.pool / entry.file, batch / entry.label / "same.jpeg")
    reasons = {r.rel: r.reason for r in dataset.validate_folder(batch, hub_paths).rejected}
    assert "labelled both NORMAL and PNEUMONIA" in reasons[f"{other}/relabelled.jpeg"]
    assert reasons[f"{entry.label}/same.jpeg"].startswith("duplicate of pool/")


def test_links_inside_a_batch_are_refused_and_never_followed(hub_paths, tmp_path):
    """A link to a file (or folder) outside the batch would copy whatever it points at into the pool."""
    secret = tmp_path / "elsewhere"
    (secret / "dir").mkdir(parents=True)
    shutil.copy(sample_files("NORMAL", 1, offset=50)[0], secret / "outside.jpeg")
    shutil.copy(sample_files("NORMAL", 1, offset=51)[0], secret / "dir" / "inner.jpeg")
    batch = tmp_path / "batch-links"
    (batch / "NORMAL").mkdir(parents=True)
    (batch / "PNEUMONIA").mkdir()
    good = sample_files("PNEUMONIA", 1, offset=50)[0]
    shutil.copy(good, batch / "PNEUMONIA" / good.name)
    (batch / "NORMAL" / "person9999_link.jpeg").symlink_to(secret / "outside.jpeg")
    (batch / "NORMAL" / "linked-dir").symlink_to(secret / "dir", target_is_directory=True)

    report = scan(batch)
    reasons = {r.rel: r.reason for r in report.rejected}
    assert set(reasons) == {"NORMAL/person9999_link.jpeg", "NORMAL/linked-dir"}
    assert all("symbolic link" in r for r in reasons.values())
    assert [r.rel for r in report.accepted] == [f"PNEUMONIA/{good.name}"]

    (tmp_path / "manifest.json").write_text('{"site": "x"}')
    (batch / "batch.json").symlink_to(tmp_path / "manifest.json")
    with pytest.raises(DataError, match="batch.json is a symbolic link"):
        scan(batch)


def test_the_hub_refuses_what_the_app_would_withhold_and_keeps_real_xrays(tmp_path):
    """Colour noise, a blank film and a thumbnail are no X-rays for the model: the batch validator refuses
    them with the app's reason (contract.suitability), so they never train a model; an X-ray stored as
    an RGB JPEG is still an X-ray."""
    rng = np.random.default_rng(0)
    batch = tmp_path / "batch-unfit"
    (batch / "NORMAL").mkdir(parents=True)
    (batch / "PNEUMONIA").mkdir()
    Image.fromarray(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)).save(batch / "NORMAL" / "person9001_a.png")
    Image.fromarray(np.full((300, 300), 200, np.uint8)).save(batch / "NORMAL" / "person9002_a.png")
    xray = sample_files("PNEUMONIA", 1, offset=60)[0]
    Image.open(xray).resize((100, 100)).save(batch / "PNEUMONIA" / "person9003_bacteria_1.jpeg")
    Image.open(xray).convert("RGB").save(batch / "PNEUMONIA" / xray.name, quality=95)

    report = scan(batch)
    reasons = {r.rel: r.reason for r in report.rejected}
    assert "a colour image" in reasons["NORMAL/person9001_a.png"]
    assert "almost no contrast" in reasons["NORMAL/person9002_a.png"]
    assert "too small to read: 100×100" in reasons["PNEUMONIA/person9003_bacteria_1.jpeg"]
    assert all(r.startswith("not fit for the model: ") for r in reasons.values())
    assert [r.rel for r in report.accepted] == [f"PNEUMONIA/{xray.name}"]


def test_a_reencoded_or_cropped_copy_of_a_gold_image_never_enters_the_pool(hub_paths, tmp_path):
    """Before: a gold image saved again at JPEG quality 70 (or cropped by a pixel) and renamed went into
    train, so the model was then judged on an image it had trained on."""
    import io

    from hub.pool import Split

    split = Split.load(hub_paths.splits)
    by_sha = {e.sha256: e for e in Pool(hub_paths.pool).entries()}
    gold = [by_sha[sha] for sha in sorted(split.gold)][:2]
    batch = tmp_path / "clinic-9"
    for i, entry in enumerate(gold):
        img = Image.open(hub_paths.pool / entry.file).convert("L")
        (batch / entry.label).mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=70)
        (batch / entry.label / f"person{90000 + i}_virus_1.jpeg").write_bytes(buf.getvalue())
        img.crop((1, 1, img.width - 1, img.height - 1)).save(batch / entry.label / f"person{90100 + i}_virus_1.png")
    other = "PNEUMONIA" if gold[0].label == "NORMAL" else "NORMAL"
    (batch / other).mkdir(exist_ok=True)
    Image.open(hub_paths.pool / gold[0].file).convert("L").save(batch / other / "person90200_virus_1.jpeg", quality=80)
    # a film the pool does not hold (another hospital's) is still taken
    new = sorted((SAMPLE.parent / "site_b" / "NORMAL").iterdir())[0]
    (batch / "NORMAL").mkdir(exist_ok=True)
    shutil.copy(new, batch / "NORMAL" / "person90300_virus_1.jpeg")

    report = dataset.validate_folder(batch, hub_paths)
    reasons = {r.rel: r.reason for r in report.rejected}
    for i, entry in enumerate(gold):
        for name in (f"person{90000 + i}_virus_1.jpeg", f"person{90100 + i}_virus_1.png"):
            reason = reasons[f"{entry.label}/{name}"]
            assert reason.startswith(f"duplicate of pool/{entry.file}") and "re-encoded, resized" in reason, reason
    assert "label conflict" in reasons[f"{other}/person90200_virus_1.jpeg"]
    assert [r.rel for r in report.accepted] == ["NORMAL/person90300_virus_1.jpeg"]
    before = len(Pool(hub_paths.pool).entries())
    _, added = dataset.import_data(hub_paths, batch)
    assert [e.file for e in added] == ["NORMAL/person90300_virus_1.jpeg"]
    assert len(Pool(hub_paths.pool).entries()) == before + 1
    assert Pool(hub_paths.pool).phash_file.is_file()  # the pool's hashes are kept, not recomputed per batch
