"""Feedback to the hub: confirm/correct results, the audit log dialog, and "Export labelled batch".

Real files (sample X-rays, DICOMs with identifying tags written by pydicom, PNG/JPEG with metadata),
real onnxruntime predictions, real Qt (offscreen), and the hub's own validator on the exported batch.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any Qt import

import csv
import io
import json
import shutil
import sqlite3
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, PngImagePlugin
from PySide6.QtCore import Qt

from contract.package import sha256_of
from contract.preprocess import read_image, to_gray
from desktop_app.audit import AuditLog
from desktop_app.engine import Engine
from desktop_app.images import load_image
from desktop_app.labelled_export import BatchExportError, export_labelled_batch, pseudonym
from desktop_app.ui import audit_view, feedback
from desktop_app.ui.audit_model import CORRECTED, UNCONFIRMED, AuditModel
from desktop_app.ui.window import MainWindow
from hub.pool import scan
from tests.conftest import ROOT, sample_files
from tests.desktop.conftest import write_dicom

ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT_MS = 30_000
PATIENT = {
    "PatientName": "Doe^Jane",
    "PatientID": "MRN-778899",
    "PatientBirthDate": "19580214",
    "PatientSex": "F",
    "PatientAddress": "12 Rue Exemple, Lyon",
    "OtherPatientIDs": "ALT-5566",
    "AccessionNumber": "ACC-424242",
    "InstitutionName": "Clinique Saint-Exemple",
    "ReferringPhysicianName": "House^Gregory",
    "PerformingPhysicianName": "Grey^Meredith",
    "StudyDate": "20260301",
    "StudyTime": "101500",
    "AcquisitionDate": "20260301",
    "StudyInstanceUID": "1.2.826.0.1.3680043.9.7777.1",
    "SeriesInstanceUID": "1.2.826.0.1.3680043.9.7777.2",
}
SECRETS = (
    b"Doe^Jane",
    b"MRN-778899",
    b"19580214",
    b"Rue Exemple",
    b"Saint-Exemple",
    b"ALT-5566",
    b"ACC-424242",
    b"House^Gregory",
    b"Grey^Meredith",
    b"20260301",
    b"9.7777",
)


@pytest.fixture(scope="module")
def engine(package_dir) -> Engine:
    return Engine(package_dir)


def identified_dicom(path: Path, pixels: np.ndarray, **extra) -> Path:
    """A DICOM full of identifying tags, including a private one."""
    write_dicom(path, pixels, **{**PATIENT, **extra})
    ds = pydicom.dcmread(path)
    block = ds.private_block(0x0011, "ACME RIS", create=True)
    block.add_new(0x01, "LO", "Doe^Jane MRN-778899")
    ds.save_as(path)
    return path


@pytest.fixture
def clinic(tmp_path) -> dict[str, Path]:
    """The files a radiologist opened: sample JPEGs, a PNG and a JPEG carrying patient metadata,
    an 8-bit and a 16-bit MONOCHROME1 DICOM with identifying tags, named after the patient."""
    d = tmp_path / "clinic"
    d.mkdir()
    normal, pneumonia = sample_files("NORMAL", 3, offset=20), sample_files("PNEUMONIA", 3, offset=20)
    files = {
        f"jpeg{i}": Path(shutil.copy(f, d / f"Doe_Jane_{i}.jpeg")) for i, f in enumerate(normal[:2] + pneumonia[:2])
    }
    info = PngImagePlugin.PngInfo()
    info.add_text("Patient", "Doe^Jane MRN-778899")
    info.add_itxt("Comment", "born 19580214, Clinique Saint-Exemple")
    Image.open(normal[2]).convert("L").save(d / "Doe_Jane_scan.png", pnginfo=info)
    files["png"] = d / "Doe_Jane_scan.png"
    exif = Image.Exif()
    exif[0x010E] = "Doe^Jane MRN-778899"  # ImageDescription
    exif[0x013B] = "House^Gregory"  # Artist
    Image.open(pneumonia[2]).convert("L").save(d / "Doe_Jane_exif.jpg", exif=exif, comment=b"Doe^Jane 19580214")
    files["exif"] = d / "Doe_Jane_exif.jpg"
    px8 = np.asarray(Image.open(sample_files("PNEUMONIA", 1, offset=30)[0]).convert("L"))
    files["dicom"] = identified_dicom(d / "Doe_Jane.dcm", px8)
    px16 = np.asarray(Image.open(sample_files("NORMAL", 1, offset=30)[0]).convert("L"), np.uint16) * 16
    files["dicom16"] = identified_dicom(d / "Doe_Jane_16.dcm", px16, photometric="MONOCHROME1", bits_stored=12)
    return files


def hub_validate(batch: Path) -> dict:
    """`pneumo-hub data validate --json` on the batch: what the hub would do with it."""
    out = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "pneumo-hub"), "data", "validate", "--json", str(batch)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)


def exported_dicoms(archive: Path) -> dict[str, pydicom.Dataset]:
    with zipfile.ZipFile(archive) as z:
        return {n: pydicom.dcmread(io.BytesIO(z.read(n))) for n in z.namelist()}


def test_labelled_batch_has_the_hub_layout_confirmed_labels_and_no_patient_data(engine, clinic, tmp_path):
    audit = AuditLog(tmp_path / "audit.db")
    rows = {k: audit.record(engine.predict(load_image(f)), f) for k, f in clinic.items()}
    # The radiologist's reads; jpeg1 and jpeg3 certainly correct the model, so the batch must use the reads.
    flip = {"NORMAL": "PNEUMONIA", "PNEUMONIA": "NORMAL"}
    wanted = {
        "jpeg0": "NORMAL",
        "jpeg1": flip[rows["jpeg1"]["label"]],
        "jpeg2": "PNEUMONIA",
        "jpeg3": flip[rows["jpeg3"]["label"]],
        "png": "NORMAL",
        "exif": "PNEUMONIA",
        "dicom": "PNEUMONIA",
        "dicom16": "NORMAL",
    }
    for k, label in wanted.items():
        audit.confirm(rows[k]["id"], flip[label])  # a first, wrong read...
        audit.confirm(rows[k]["id"], label)  # ...corrected: the last read counts
    # The same file opened again and read again: one copy, with the latest read.
    again = audit.record(engine.predict(load_image(clinic["jpeg0"])), clinic["jpeg0"])
    audit.confirm(again["id"], "PNEUMONIA")
    wanted["jpeg0"] = "PNEUMONIA"
    # Not confirmed: not exported. Confirmed, then deleted or changed on disk: skipped and reported.
    extra = tmp_path / "extra"
    extra.mkdir()
    unread, gone, changed = (Path(shutil.copy(f, extra / f.name)) for f in sample_files("NORMAL", 3, offset=40))
    audit.record(engine.predict(load_image(unread)), unread)
    for f in (gone, changed):
        audit.confirm(audit.record(engine.predict(load_image(f)), f)["id"], "NORMAL")
    gone.unlink()
    changed.write_bytes(changed.read_bytes() + b"\0")

    out = tmp_path / "outbox"
    out.mkdir()
    secret = b"this site's patient key"
    result = export_labelled_batch(audit, out, "clinic-42", site="clinic-a", secret=secret)
    batch = out / "clinic-42"

    # Layout: the batch holds NORMAL/ and PNEUMONIA/ with one image per confirmed file, and batch.json;
    # the manifest and the DICOM archive sit beside it; no staging folder is left.
    assert result.batch_dir == batch
    assert sorted(p.name for p in out.iterdir()) == ["clinic-42", "clinic-42.dicom.zip", "clinic-42.manifest.csv"]
    assert sorted(p.name for p in batch.iterdir()) == ["NORMAL", "PNEUMONIA", "batch.json"]
    files = sorted(p.relative_to(batch).as_posix() for p in batch.rglob("*") if p.is_file() and p.suffix != ".json")
    assert len(files) == len(wanted) == len(result.written)
    by_source = {r["source_sha256"]: r for r in result.written}
    for k, label in wanted.items():
        row = by_source[rows[k]["sha256"]]
        assert row["label"] == label and row["file"].startswith(f"{label}/")
        # File names are content hashes, never the original names (which carry the patient's).
        assert Path(row["file"]).stem == rows[k]["sha256"][:16]
    assert not any("doe" in f.lower() or "jane" in f.lower() for f in files)
    assert {by_source[rows[k]["sha256"]]["model_label"] for k in ("jpeg1", "jpeg3")} == {
        flip[wanted["jpeg1"]],
        flip[wanted["jpeg3"]],
    }  # the model's result is kept beside the read
    assert sorted((s.code, s.file_name) for s in result.skipped) == [("changed", changed.name), ("missing", gone.name)]

    with open(out / "clinic-42.manifest.csv", newline="") as f:
        manifest = list(csv.DictReader(f))
    assert sorted(r["file"] for r in manifest) == files
    for r in manifest:
        assert sha256_of(batch / r["file"]) == r["sha256"] and r["file"].split("/")[0] == r["label"]
    assert not any(s in (out / "clinic-42.manifest.csv").read_bytes() for s in SECRETS)

    # PNG and JPEG: metadata gone, pixels identical to the originals.
    for k in ("png", "exif", "jpeg2"):
        exported = batch / by_source[rows[k]["sha256"]]["file"]
        data = exported.read_bytes()
        assert not any(s in data for s in SECRETS), k
        img = Image.open(exported)
        assert not img.info.get("comment") and not getattr(img, "text", {}) and not img.getexif()
        assert np.array_equal(np.asarray(img), np.asarray(Image.open(clinic[k])))
    assert Image.open(clinic["png"]).text and Image.open(clinic["exif"]).getexif()  # the originals did have some

    # DICOM: in the archive, de-identified; in the batch, a 16-bit PNG of what the app's model read.
    dicoms = exported_dicoms(out / "clinic-42.dicom.zip")
    assert sorted(dicoms) == sorted(by_source[rows[k]["sha256"]]["dicom"] for k in ("dicom", "dicom16"))
    with zipfile.ZipFile(out / "clinic-42.dicom.zip") as z:
        assert not any(s in z.read(n) for n in z.namelist() for s in SECRETS)
    for k in ("dicom", "dicom16"):
        row = by_source[rows[k]["sha256"]]
        ds, original = dicoms[row["dicom"]], pydicom.dcmread(clinic[k])
        for kw in (
            "PatientName",
            "PatientID",
            "PatientBirthDate",
            "PatientSex",
            "AccessionNumber",
            "ReferringPhysicianName",
            "StudyDate",
            "StudyTime",
        ):
            assert not ds.get(kw), kw  # blanked (Type 2) or gone
        for kw in (
            "PatientAddress",
            "OtherPatientIDs",
            "InstitutionName",
            "PerformingPhysicianName",
            "AcquisitionDate",
        ):
            assert kw not in ds, kw
        assert not any(e.tag.is_private for e in ds.iterall())
        for kw in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            assert ds[kw].value != original[kw].value
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.PatientIdentityRemoved == "YES" and ds.DeidentificationMethod
        assert ds.SOPClassUID == original.SOPClassUID
        assert np.array_equal(ds.pixel_array, original.pixel_array)
        assert row["file"].endswith(".png") and row["source_format"] == "dicom"
        seen = load_image(clinic[k]).model_gray
        png = Image.open(batch / row["file"])
        assert png.mode == "I;16" and np.array_equal(np.asarray(png), np.round(seen * 65535).astype(np.uint16))
        # The hub's reader gives back what the model saw, to 16-bit precision.
        np.testing.assert_allclose(to_gray(read_image(batch / row["file"])), seen, rtol=0, atol=0.5 / 65535 + 1e-7)

    # batch.json: the site, and each file's patient as a keyed pseudonym of the DICOM Patient ID (never
    # the ID); a file without one is its own patient, and says so
    body = json.loads((batch / "batch.json").read_text())
    assert body["site"] == "clinic-a" and sorted(body["patients"]) == files
    assert not any(s in (batch / "batch.json").read_bytes() for s in SECRETS)
    for k in ("dicom", "dicom16"):
        file = by_source[rows[k]["sha256"]]["file"]
        assert body["patients"][file] == pseudonym(str(pydicom.dcmread(clinic[k]).PatientID), secret)
        assert file not in body["own_patient"]
    for k in ("png", "exif", "jpeg2"):
        file = by_source[rows[k]["sha256"]]["file"]
        assert body["patients"][file] == f"file-{rows[k]['sha256'][:16]}" and file in body["own_patient"]

    # The hub accepts every image, with the radiologist's labels, at the clinic's site and patients.
    report = scan(batch)
    assert report.layout == "batch" and report.rejected == []
    assert {r.site for r in report.accepted} == {"clinic-a"}
    assert {r.rel: r.patient for r in report.accepted} == {f: f"clinic-a:{p}" for f, p in body["patients"].items()}
    assert sorted((r.rel, r.label) for r in report.accepted) == sorted((r["file"], r["label"]) for r in manifest)
    cli = hub_validate(batch)
    assert cli["accepted"] == len(wanted) and cli["rejected"] == []
    n_pneumonia = sum(v == "PNEUMONIA" for v in wanted.values())
    assert cli["accepted_by_label"] == {"NORMAL": len(wanted) - n_pneumonia, "PNEUMONIA": n_pneumonia}

    # The same batch id again is refused, leaving what is there untouched.
    with pytest.raises(BatchExportError, match="already exists"):
        export_labelled_batch(audit, out, "clinic-42")
    assert len([p for p in batch.rglob("*.*") if p.name != "batch.json"]) == len(wanted)
    audit.close()


def test_export_refusals_and_skips_leave_no_half_batch(engine, tmp_path):
    audit = AuditLog(tmp_path / "audit.db")
    out = tmp_path / "outbox"
    out.mkdir()
    with pytest.raises(BatchExportError, match="No confirmed"):
        export_labelled_batch(audit, out)
    # A DICOM that says its pixels carry burned-in text, and a copy of the same image read the other way.
    px = np.asarray(Image.open(sample_files("NORMAL", 1, offset=50)[0]).convert("L"))
    burned = identified_dicom(tmp_path / "burned.dcm", px, BurnedInAnnotation="YES")
    a = write_dicom(tmp_path / "a.dcm", px, PatientName="A^A")
    b = write_dicom(tmp_path / "b.dcm", px, PatientName="B^B")  # other header, same pixels
    for f, label in ((burned, "NORMAL"), (a, "NORMAL"), (b, "PNEUMONIA")):
        audit.confirm(audit.record(engine.predict(load_image(f)), f)["id"], label)
    with pytest.raises(BatchExportError, match="Invalid batch id"):
        export_labelled_batch(audit, out, "../escape")
    result = export_labelled_batch(audit, out)
    assert result.batch_dir is None and result.written == []
    assert sorted((s.file_name, s.code) for s in result.skipped) == [
        ("a.dcm", "conflict"),
        ("b.dcm", "conflict"),
        ("burned.dcm", "burned_in"),
    ]
    assert list(out.iterdir()) == []  # nothing half-written, no staging folder
    audit.close()


# Every identifying attribute a reviewer found surviving a removal list, and more: each gets its own secret.
SECRET_TEXT = (
    "CurrentPatientLocation",
    "PatientInstitutionResidence",
    "ReasonForStudy",
    "ReasonForTheRequestedProcedure",
    "RequestingService",
    "MedicalAlerts",
    "Allergies",
    "SpecialNeeds",
    "PatientTransportArrangements",
    "StudyComments",
    "VisitComments",
    "FrameComments",
    "ProtocolName",
    "PerformedStationName",
    "ScheduledStationName",
    "PerformedLocation",
    "ClinicalTrialSubjectID",
    "ServiceEpisodeDescription",
    "PatientName",
    "PatientID",
    "PatientAddress",
    "OtherPatientIDs",
    "AccessionNumber",
    "InstitutionName",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "StudyDescription",
    "SeriesDescription",
    "ImageComments",
    "StationName",
    "DeviceSerialNumber",
    "InstitutionalDepartmentName",
    "PatientComments",
    "AdditionalPatientHistory",
    "RequestedProcedureDescription",
    "StudyID",
    "WindowCenterWidthExplanation",
    "RescaleType",
)  # the last two sit in modules that are kept


def dicom_full_of_secrets(path: Path, pixels: np.ndarray) -> dict[bytes, str]:
    """A 16-bit implicit-VR DICOM displayed through a VOI LUT, where every identifying place holds a unique
    secret: text attributes, dates, UIDs, nested sequences, private tags, an overlay, the file meta
    information and the preamble. Returns secret → where it is."""
    from pydicom.dataset import Dataset
    from pydicom.uid import ImplicitVRLittleEndian

    write_dicom(path, pixels, bits_stored=12)
    ds = pydicom.dcmread(path)
    secrets: dict[bytes, str] = {}

    def secret(where: str) -> str:
        value = f"Secret-{len(secrets):03d}"  # short enough for SH and AE, and not a code (the hyphen)
        secrets[value.encode()] = where
        return value

    for kw in SECRET_TEXT:
        setattr(ds, kw, secret(kw))
    for kw, value in (
        ("PatientBirthDate", "19580214"),
        ("StudyDate", "20260301"),
        ("AcquisitionDate", "20260302"),
        ("ContentDate", "20260303"),
        ("StudyTime", "101523.123456"),
    ):
        setattr(ds, kw, value)
        secrets[value.encode()] = kw
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.826.0.1.3680043.9.7777.1", "1.2.826.0.1.3680043.9.7777.2"
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.9.7777.4"
    secrets[b"9.7777"] = "study, series, frame of reference UIDs"
    request, referenced = Dataset(), Dataset()
    request.CurrentPatientLocation = secret("RequestAttributesSequence/CurrentPatientLocation")
    request.ScheduledPerformingPhysicianName = secret("RequestAttributesSequence/ScheduledPerformingPhysicianName")
    request.RequestedProcedureID = secret("RequestAttributesSequence/RequestedProcedureID")
    referenced.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    referenced.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.9.7777.3"
    request.ReferencedStudySequence = [referenced]
    request.private_block(0x0029, "ACME RIS", create=True).add_new(0x01, "LO", secret("nested private tag"))
    ds.RequestAttributesSequence = [request]
    voi = Dataset()  # a real display table (the exported file must still use it) with a free-text explanation
    voi.LUTDescriptor = [4096, 0, 16]
    voi.add_new(0x00283006, "US", [min(65535, v * 20) for v in range(4096)])  # LUTData
    voi.LUTExplanation = secret("VOILUTSequence/LUTExplanation")
    voi.private_block(0x0029, "ACME RIS", create=True).add_new(0x02, "LO", secret("private tag in the VOI LUT"))
    ds.VOILUTSequence = [voi]
    ds.private_block(0x0011, "ACME RIS", create=True).add_new(0x01, "LO", secret("private tag"))
    ds.add_new(0x60000022, "LO", secret("OverlayDescription"))
    ds.file_meta.SourceApplicationEntityTitle = secret("file_meta.SourceApplicationEntityTitle")
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    preamble = secret("preamble").encode()
    ds.preamble = preamble.ljust(128, b"\0")
    ds.save_as(path, enforce_file_format=True)
    return secrets


def test_dicom_export_keeps_only_the_image_and_no_secret_anywhere(engine, tmp_path):
    px = np.asarray(Image.open(sample_files("PNEUMONIA", 1, offset=80)[0]).convert("L"), np.uint16) * 16
    src = tmp_path / "Secret-name.dcm"
    secrets = dicom_full_of_secrets(src, px)
    raw = src.read_bytes()
    assert all(s in raw for s in secrets), [w for s, w in secrets.items() if s not in raw]  # the test can fail
    secrets[b"Secret-name"] = "file name"
    audit = AuditLog(tmp_path / "audit.db")
    audit.confirm(audit.record(engine.predict(load_image(src)), src)["id"], "PNEUMONIA")
    out = tmp_path / "outbox"
    out.mkdir()
    result = export_labelled_batch(audit, out, "clinic-7")
    assert result.skipped == [] and len(result.written) == 1

    def leaks(data: bytes) -> list[str]:
        return [where for s, where in secrets.items() if s in data or s.lower() in data.lower()]

    members = {}
    with zipfile.ZipFile(out / "clinic-7.dicom.zip") as z:
        for name in z.namelist():
            members[name] = z.read(name)
    assert len(members) == 1
    names = "\n".join([*members, *(p.relative_to(out).as_posix() for p in out.rglob("*"))]).encode()
    assert leaks(names) == []
    for data in (
        *members.values(),
        (out / "clinic-7.dicom.zip").read_bytes(),
        (out / "clinic-7.manifest.csv").read_bytes(),
        *(p.read_bytes() for p in (out / "clinic-7").rglob("*") if p.is_file()),
    ):
        assert leaks(data) == []

    # What is left is a valid DICOM the app reads exactly as the original and opens at the same window, the
    # VOI LUT's: the LUT (LUTData = 20 v, up to 65535) rises over the stored values 0..3277 of 0..4095.
    exported = tmp_path / "exported.dcm"
    exported.write_bytes(next(iter(members.values())))
    shown, original = load_image(exported), load_image(src)
    assert np.array_equal(shown.gray, original.gray) and np.array_equal(shown.model_gray, original.model_gray)
    assert shown.display_window == original.display_window == pytest.approx((3277 / 2 / 4095, 3277 / 4095))
    ds = pydicom.dcmread(exported)
    assert np.array_equal(ds.pixel_array, px)
    for kw in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyDate",
        "StudyTime",
        "ReferringPhysicianName",
        "StudyID",
        "AccessionNumber",
    ):
        assert kw in ds and not ds[kw].value, kw  # Type 2: present, empty
    assert ds.PatientIdentityRemoved == "YES" and ds.DeidentificationMethod
    assert "RescaleType" not in ds and "LUTExplanation" not in ds.VOILUTSequence[0]
    assert not any(e.tag.is_private for e in ds.iterall())
    assert {e.keyword for e in ds.file_meta} <= {
        "FileMetaInformationGroupLength",
        "FileMetaInformationVersion",
        "MediaStorageSOPClassUID",
        "MediaStorageSOPInstanceUID",
        "TransferSyntaxUID",
        "ImplementationClassUID",
        "ImplementationVersionName",
    }
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID != pydicom.dcmread(src).SOPInstanceUID
    assert scan(out / "clinic-7").rejected == []
    audit.close()


OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    file_name TEXT NOT NULL,
    file_path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    label TEXT NOT NULL,
    probability REAL NOT NULL,
    threshold REAL NOT NULL,
    model_version INTEGER NOT NULL,
    confirmed_label TEXT,
    confirmed_at TEXT
)"""


def hub_accepts(batch: Path, pool: dict[str, tuple[str, str]]) -> list[str]:
    """What the hub's cycle does with ``batch`` when its pool holds ``pool``: the files it would ingest
    (it quarantines the whole batch when nothing is new or an image conflicts with the pool)."""
    report = scan(batch, known=pool)
    problems = [r for r in report.rejected if not r.reason.startswith("duplicate of")]
    assert report.accepted and not problems, ("quarantined", report.rejected)
    pool.update({r.sha256: (r.rel, r.label) for r in report.accepted})
    return sorted(r.rel for r in report.accepted)


def test_each_image_is_sent_once_and_a_correction_after_sending_is_reported(engine, tmp_path, monkeypatch, caplog):
    d = tmp_path / "clinic"
    d.mkdir()
    files = [
        Path(shutil.copy(f, d / f.name))
        for f in sample_files("NORMAL", 3, offset=90) + sample_files("PNEUMONIA", 3, offset=90)
    ]
    # An audit log written by the first release (no export columns), with a confirmed row already in it.
    db = tmp_path / "audit.db"
    old = sqlite3.connect(db)
    first = engine.predict(load_image(files[0]))
    old.execute(OLD_SCHEMA)
    old.execute(
        "INSERT INTO results (time, file_name, file_path, sha256, label, probability, threshold, model_version,"
        " confirmed_label, confirmed_at) VALUES ('2026-01-01T10:00:00+00:00', ?, ?, ?, ?, ?, ?, ?, 'NORMAL',"
        " '2026-01-01T10:05:00+00:00')",
        (
            files[0].name,
            str(files[0]),
            sha256_of(files[0]),
            first.label,
            float(first.probability),
            float(first.threshold),
            7,
        ),
    )
    old.commit()
    old.close()
    audit = AuditLog(db)
    columns = {r[1] for r in sqlite3.connect(db).execute("PRAGMA table_info(results)")}
    assert columns >= {"exported_batch", "exported_at", "exported_label", "exported_sha256"}
    assert audit.rows()[0]["confirmed_label"] == "NORMAL" and audit.rows()[0]["exported_batch"] is None
    rows = [audit.rows()[0]] + [audit.record(engine.predict(load_image(f)), f) for f in files[1:]]
    for r, label in zip(rows[1:4], ("NORMAL", "NORMAL", "PNEUMONIA")):
        audit.confirm(r["id"], label)
    out = tmp_path / "outbox"
    out.mkdir()
    pool: dict[str, tuple[str, str]] = {}

    one = export_labelled_batch(audit, out, "batch-1")
    assert len(one.written) == 4 and one.skipped == [] and one.mark_error is None
    assert len(hub_accepts(one.batch_dir, pool)) == 4
    assert {r["id"]: r["exported_batch"] for r in audit.rows()} == {
        r["id"]: "batch-1" if i < 4 else None for i, r in enumerate(rows)
    }

    # Nothing new: said so, nothing written.
    before = sorted(p.name for p in out.iterdir())
    again = export_labelled_batch(audit, out)
    assert again.batch_dir is None and again.written == [] and again.skipped == [] and again.already_sent == 4
    assert sorted(p.name for p in out.iterdir()) == before

    # New reads; the same image opened again and read the same way; a sent image corrected afterwards.
    for r, label in zip(rows[4:], ("PNEUMONIA", "NORMAL")):
        audit.confirm(r["id"], label)
    audit.confirm(audit.record(engine.predict(load_image(files[1])), files[1])["id"], "NORMAL")
    audit.confirm(rows[3]["id"], "NORMAL")  # was sent as PNEUMONIA
    two = export_labelled_batch(audit, out, "batch-2")
    assert sorted(r["audit_id"] for r in two.written) == [rows[4]["id"], rows[5]["id"]]
    assert hub_accepts(two.batch_dir, pool) == sorted(r["file"] for r in two.written)  # not quarantined
    assert two.already_sent == 3
    [skip] = two.skipped
    assert (skip.file_name, skip.code, skip.sent_label, skip.sent_batch) == (
        files[3].name,
        "sent_as_other",
        "PNEUMONIA",
        "batch-1",
    )
    assert skip.reason.startswith("already sent to the hub as PNEUMONIA (batch batch-1)") and "ML team" in skip.reason
    assert audit.row(rows[3]["id"])["exported_label"] == "PNEUMONIA"  # what the hub has, whatever the read is now

    # The batch is complete even when the audit log cannot record it; the next export sends it again.
    extra = Path(shutil.copy(sample_files("NORMAL", 1, offset=96)[0], d / "extra.jpeg"))
    audit.confirm(audit.record(engine.predict(load_image(extra)), extra)["id"], "NORMAL")

    def locked(*_args):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(audit, "mark_exported", locked)
    three = export_labelled_batch(audit, out, "batch-3")
    assert three.mark_error == "database is locked" and len(three.written) == 1
    assert hub_accepts(three.batch_dir, pool) == [three.written[0]["file"]]
    assert "could not record it" in caplog.text
    monkeypatch.undo()
    assert len(export_labelled_batch(audit, out, "batch-4").written) == 1
    audit.close()


# ---------------------------------------------------------------------------------------------
# GUI: the feedback box in the viewer, the audit log dialog
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def window(qtbot, engine, tmp_path):
    audit = AuditLog(tmp_path / "audit.db")
    w = MainWindow(engine, audit)
    qtbot.addWidget(w)
    w.box = feedback.attach(w, audit)
    w.tools = audit_view.attach(w, audit)
    w.resize(1280, 860)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()
    audit.close()


def open_and_wait(qtbot, window, path):
    with qtbot.waitSignal(window.resultShown, timeout=TIMEOUT_MS) as blocker:
        assert window.open_file(path)
    return blocker.args[0]


def checked(box) -> list[str]:
    return [label for label, b in box.buttons.items() if b.isChecked()]


def test_feedback_box_confirms_and_corrects_the_shown_result(qtbot, window, jpeg, tmp_path):
    box = window.box
    assert window.feedback_layout.indexOf(box) >= 0 and box.isVisible()
    assert not any(b.isEnabled() for b in box.buttons.values())  # nothing shown yet

    result = open_and_wait(qtbot, window, jpeg)
    model_label = result.prediction.label
    other = "NORMAL" if model_label == "PNEUMONIA" else "PNEUMONIA"
    assert all(b.isEnabled() for b in box.buttons.values()) and checked(box) == []
    assert "Not confirmed" in box.state_label.text()

    with qtbot.waitSignal(box.confirmed):
        box.buttons[model_label].click()
    assert window.audit.row(result.audit_row["id"])["confirmed_label"] == model_label
    assert checked(box) == [model_label] and "agreeing with the model" in box.state_label.text()

    box.buttons[other].click()  # a correction replaces the first read
    row = window.audit.row(result.audit_row["id"])
    assert row["confirmed_label"] == other and row["confirmed_at"]
    assert checked(box) == [other] and "corrected to" in box.state_label.text()
    ARTIFACTS.mkdir(exist_ok=True)
    assert window.grab().save(str(ARTIFACTS / "viewer-feedback.png"))

    # A new result starts afresh; a failed file leaves nothing to confirm.
    second = open_and_wait(qtbot, window, sample_files("NORMAL", 1, offset=60)[0])
    assert second.audit_row["id"] != row["id"] and checked(box) == [] and box.buttons[other].isEnabled()
    bad = tmp_path / "broken.jpeg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg" * 20)
    with qtbot.waitSignal(window.errorShown, timeout=TIMEOUT_MS):
        window.open_file(bad)
    assert not any(b.isEnabled() for b in box.buttons.values())
    assert window.audit.row(second.audit_row["id"])["confirmed_label"] is None


def test_a_file_viewed_again_is_one_audit_row_with_its_views_counted_and_its_read_kept(qtbot, window, jpeg):
    """Before: every re-view added a row (one file had 3 rows, 1 of them confirmed)."""
    first = open_and_wait(qtbot, window, jpeg)
    assert window.box.confirm("PNEUMONIA")
    open_and_wait(qtbot, window, sample_files("NORMAL", 1, offset=61)[0])
    again = open_and_wait(qtbot, window, jpeg)
    again = open_and_wait(qtbot, window, jpeg)
    assert again.audit_row["id"] == first.audit_row["id"] and again.audit_row["views"] == 3
    assert checked(window.box) == ["PNEUMONIA"] and "Recorded" in window.box.state_label.text()
    assert len(window.audit.rows()) == 2
    dialog = window.tools.dialog()
    m = dialog.model
    r = next(i for i, row in enumerate(m.rows) if row["id"] == first.audit_row["id"])
    assert m.index(r, m.COL_VIEWS).data() == "3" and m.index(r, m.COL_MODEL).data() == "7 (fp32)"


def test_ctrl_1_and_ctrl_2_confirm_in_the_main_window_as_in_the_audit_log(qtbot, window, jpeg):
    """Before: Ctrl+1 meant "confirm NORMAL" in the audit dialog but "actual size" in the main window."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QKeySequence

    titles = [a.text() for a in window.menuBar().actions()]
    assert titles.index("&Result") == titles.index("&Model") - 1
    shown = {a.text(): a.shortcut().toString() for a in window.result_menu.actions()}
    assert shown == {"Confirm NORMAL": "Ctrl+1", "Confirm PNEUMONIA": "Ctrl+2"}
    assert window.actual_action.shortcut() == QKeySequence("1")
    dialog_keys = {a.text(): a.shortcut().toString() for a in window.tools.dialog().confirm_actions.values()}
    assert dialog_keys == shown  # the audit log: the same keys for the same reads
    assert not any(a.isEnabled() for a in window.result_menu.actions())  # nothing to confirm yet

    result = open_and_wait(qtbot, window, jpeg)
    window.view.zoom(2.0)
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.audit.row(result.audit_row["id"])["confirmed_label"] == "PNEUMONIA"
    assert checked(window.box) == ["PNEUMONIA"] and window.view.scale_factor() != 1.0  # no zoom change
    qtbot.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert window.audit.row(result.audit_row["id"])["confirmed_label"] == "NORMAL"
    qtbot.keyClick(window, Qt.Key.Key_1)
    assert window.view.scale_factor() == 1.0  # "1": actual size


def test_audit_dialog_lists_confirms_filters_and_exports_a_batch_the_hub_accepts(qtbot, window, tmp_path):
    files = sample_files("NORMAL", 2, offset=70) + sample_files("PNEUMONIA", 2, offset=70)
    for f in files[:3]:
        open_and_wait(qtbot, window, f)

    assert window.tools.log_action in window.tools_menu.actions()
    assert window.tools.log_action.shortcut().toString() == "Ctrl+L"
    assert window.tools.export_action in window.tools_menu.actions()
    window.tools.log_action.trigger()
    dialog = window.tools.dialog()
    qtbot.waitExposed(dialog)
    assert not dialog.isModal()
    assert [r["file_name"] for r in dialog.displayed_rows()] == [f.name for f in reversed(files[:3])]  # newest first

    # A result shown in the viewer while the dialog is open appears on top, live.
    last = open_and_wait(qtbot, window, files[3])
    qtbot.waitUntil(lambda: len(dialog.displayed_rows()) == 4)
    assert dialog.displayed_rows()[0]["id"] == last.audit_row["id"]

    # Confirm two rows at once, correct another; the viewer's box shows a read made here.
    ids = [r["id"] for r in dialog.displayed_rows()]
    dialog.select_ids(ids[:2])
    assert dialog.confirm_buttons["NORMAL"].isEnabled()
    dialog.confirm_buttons["NORMAL"].click()
    wrong = dialog.displayed_rows()[2]
    dialog.select_ids([wrong["id"]])
    correction = "PNEUMONIA" if wrong["label"] == "NORMAL" else "NORMAL"
    dialog.confirm_actions[correction].trigger()
    reads = {r["id"]: r["confirmed_label"] for r in window.audit.rows()}
    assert reads[ids[0]] == reads[ids[1]] == "NORMAL" and reads[wrong["id"]] == correction
    assert sum(v is None for v in reads.values()) == 1
    assert checked(window.box) == ["NORMAL"]  # ids[0] is the result on screen
    texts = [dialog.proxy.index(r, AuditModel.COL_READ).data() for r in range(dialog.proxy.rowCount())]
    assert "PNEUMONIA (corrected)" in texts or "NORMAL (corrected)" in texts
    assert dialog.count_label.text() == "4 results, 3 confirmed"

    # Filters: by file name, by status; sorting by probability.
    dialog.filter_edit.setText(files[1].name.upper())  # case-insensitive
    assert [r["file_name"] for r in dialog.displayed_rows()] == [files[1].name]
    dialog.filter_edit.clear()
    dialog.status_combo.setCurrentIndex(UNCONFIRMED)
    assert [r["confirmed_label"] for r in dialog.displayed_rows()] == [None]
    dialog.status_combo.setCurrentIndex(CORRECTED)
    assert [r["id"] for r in dialog.displayed_rows()] == [wrong["id"]]
    dialog.status_combo.setCurrentIndex(0)
    dialog.view.sortByColumn(AuditModel.COL_PROBABILITY, Qt.SortOrder.AscendingOrder)
    probs = [r["probability"] for r in dialog.displayed_rows()]
    assert probs == sorted(probs)
    dialog.view.sortByColumn(AuditModel.COL_TIME, Qt.SortOrder.DescendingOrder)

    # CSV export holds every row with the reads.
    with open(dialog.export_csv(tmp_path / "audit.csv"), newline="") as f:
        assert f.readline().startswith("# For investigational use — not a diagnosis. PneumoScan ")
        exported = {int(r["id"]): r["confirmed_label"] for r in csv.DictReader(f)}
    assert exported == {k: v or "" for k, v in reads.items()}

    dialog.select_ids([wrong["id"]])
    dialog.resize(1100, 420)
    qtbot.wait(50)
    ARTIFACTS.mkdir(exist_ok=True)
    assert dialog.grab().save(str(ARTIFACTS / "audit-log.png"))

    # Export labelled batch, off the GUI thread; the summary says what was written.
    out = tmp_path / "outbox"
    out.mkdir()
    with qtbot.waitSignal(dialog.exportFinished, timeout=TIMEOUT_MS) as blocker:
        assert dialog.export_batch(out, "from-dialog")
        assert dialog.is_exporting() and not dialog.batch_button.isEnabled()
    result = blocker.args[0]
    assert result.batch_dir == out / "from-dialog" and len(result.written) == 3
    n = result.counts()
    assert dialog.status_label.text().startswith(f"Wrote 3 images (NORMAL {n['NORMAL']}, PNEUMONIA {n['PNEUMONIA']})")
    assert dialog.batch_button.isEnabled()
    report = scan(result.batch_dir)
    assert report.rejected == [] and len(report.accepted) == 3
    expected = {window.audit.row(i)["sha256"][:16]: reads[i] for i in reads if reads[i]}
    assert {Path(r.rel).stem: r.label for r in report.accepted} == expected

    # The table says which batch sent each row.
    qtbot.waitUntil(lambda: sum(bool(r["exported_batch"]) for r in dialog.displayed_rows()) == 3)
    sent = {
        r["id"]: dialog.proxy.index(i, AuditModel.COL_EXPORTED).data() for i, r in enumerate(dialog.displayed_rows())
    }
    assert sent == {i: "from-dialog" if reads[i] else "" for i in reads}

    # Exporting again sends nothing: said so, nothing written.
    before = sorted(p.name for p in out.iterdir())
    with qtbot.waitSignal(dialog.exportFinished, timeout=TIMEOUT_MS):
        assert not dialog.export_batch(out)
    assert dialog.status_label.text().startswith("Nothing new to export")
    assert sorted(p.name for p in out.iterdir()) == before

    # A read corrected after it was sent is not sent again; the user is told whom to tell.
    now = "PNEUMONIA" if reads[wrong["id"]] == "NORMAL" else "NORMAL"
    window.audit.confirm(wrong["id"], now)
    with qtbot.waitSignal(dialog.exportFinished, timeout=TIMEOUT_MS):
        assert not dialog.export_batch(out)
    assert (
        f"{wrong['file_name']}: already sent to the hub as {reads[wrong['id']]} (batch from-dialog)"
        in dialog.status_label.text()
    ) and "tell the ML team" in dialog.status_label.text()
    assert sorted(p.name for p in out.iterdir()) == before

    # A new read is exported; a batch id already used is refused with a message, changing nothing.
    unread = next(r for r in dialog.displayed_rows() if not r["confirmed_label"])
    window.audit.confirm(unread["id"], "NORMAL")
    with qtbot.waitSignal(dialog.exportFinished, timeout=TIMEOUT_MS) as blocker:
        dialog.export_batch(out, "from-dialog")
    assert isinstance(blocker.args[0], str) and dialog.status_label.text().startswith("Export failed")
    assert sorted(p.name for p in out.iterdir()) == before


def test_patient_key_comes_from_the_admin_config_or_is_made_once_for_this_data_folder(tmp_path):
    from desktop_app.config import load_settings
    from desktop_app.labelled_export import patient_secret

    settings = load_settings()
    key = patient_secret(settings)
    path = settings.paths().patient_key_file
    assert len(key) == 32 and path.stat().st_mode & 0o077 == 0, "readable by this user only"
    assert patient_secret(settings) == key, "the same key next time: the same patient, the same pseudonym"
    assert pseudonym("P123", key) == pseudonym(" P123 ", key) != pseudonym("P124", key)
    assert "P123" not in pseudonym("P123", key)

    admin = tmp_path / "admin" / "config.toml"
    admin.write_text('site = "nih-cc"\npatient_key_secret = "one key for every PC of the site"\n')
    settings = load_settings()
    assert settings.site == "nih-cc" and patient_secret(settings) == b"one key for every PC of the site"
    admin.write_text('site = "Not A Site"\n')
    assert any("site must be" in p for p in load_settings().problems)
