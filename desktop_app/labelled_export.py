"""“Export labelled batch”: the radiologist's confirmed images, de-identified, as a hub incoming batch.

What is written under ``out_dir`` (the names are the hub's contract, see ``hub/data.py``):

* ``<batch-id>/{NORMAL,PNEUMONIA}/<sha256[:16]>.{png,jpeg}`` — the batch itself, labelled with the
  radiologist's label (not the model's). It holds images and nothing else: the hub's validator
  rejects any other file in a batch (and a manifest there would quarantine the whole batch), and it
  reads PNG and JPEG only, so a DICOM goes in as a PNG of the pixels the app showed and the model saw.
  File names are the content hash of the original, never its name (which often carries the patient's).
* ``<batch-id>.manifest.csv`` — beside the batch (a file, which the hub's folder watcher ignores): one
  row per image with its label, hash, source format, the model's result and the audit row.
* ``<batch-id>.dicom.zip`` — when there were DICOMs: each one de-identified (below), full bit depth,
  for archives and any later hub that reads DICOM. A zip, not a folder, so that copying everything into
  the hub's incoming folder cannot make it look like a second batch.

De-identification, in the spirit of the DICOM PS3.15 basic profile: private tags, overlays and curves
removed; person names and dates/times removed, the Type 2 ones the IOD needs (patient name, id, birth
date, sex, study date...) blanked instead; identifying attributes (other ids, address, age, size,
institution, device serial, descriptions, comments...) removed; instance/series/study/frame UIDs
replaced by new ones (consistently within one export); ``PatientIdentityRemoved = YES`` and
``DeidentificationMethod`` set. A DICOM that declares burned-in annotation is skipped: its pixels may
show the patient's name. PNG/JPEG are copied byte for byte except their metadata: PNG text, EXIF and
time chunks and JPEG APPn/COM segments (EXIF, XMP, IPTC, comments) are dropped, the pixel data is not
re-encoded, and every written image is decoded again and compared with the original's pixels.

The batch appears atomically: everything is written into a hidden staging folder in ``out_dir``
(which the hub's watcher skips) and the batch folder is renamed into place last.
"""
from __future__ import annotations

import csv
import dataclasses
import logging
import os
import re
import shutil
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from desktop_app.audit import LABELS
from desktop_app.images import is_dicom, load_image
from export.package import sha256_of
from export.preprocess import ImageError, read_image

logger = logging.getLogger(__name__)

MANIFEST_FIELDS = ("file", "label", "sha256", "source_format", "source_sha256", "dicom", "model_label",
                   "model_probability", "model_version", "audit_id")
DEIDENTIFICATION_METHOD = "PneumoScan, PS3.15 basic profile"  # LO: at most 64 characters
_BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

# Type 2 attributes (present, may be empty) that identify: blanked so the file stays valid.
_BLANK = {"PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID",
          "AccessionNumber", "ReferringPhysicianName", "ContentDate", "ContentTime"}
# Identifying attributes that are not person names, dates or UIDs (those are handled by their VR).
_REMOVE = {"OtherPatientIDs", "OtherPatientIDsSequence", "IssuerOfPatientID", "PatientAddress",
           "PatientTelephoneNumbers", "PatientAge", "PatientSize", "PatientWeight", "PatientMotherBirthName",
           "MedicalRecordLocator", "MilitaryRank", "BranchOfService", "EthnicGroup", "Occupation",
           "CountryOfResidence", "RegionOfResidence", "PatientReligiousPreference", "AdditionalPatientHistory",
           "PatientComments", "PatientState", "ResponsibleOrganization", "InstitutionName", "InstitutionAddress",
           "InstitutionalDepartmentName", "InstitutionCodeSequence", "StationName", "DeviceSerialNumber",
           "PlateID", "CassetteID", "DetectorID", "StudyDescription", "SeriesDescription", "ImageComments",
           "RequestAttributesSequence", "ReferencedPatientSequence", "ReferencedStudySequence",
           "RequestedProcedureDescription", "RequestedProcedureID", "PerformedProcedureStepID",
           "PerformedProcedureStepDescription", "ScheduledProcedureStepID", "AdmissionID",
           "AdmittingDiagnosesDescription", "DerivationDescription", "IdentifyingComments",
           "PersonIdentificationCodeSequence", "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers",
           "ReferringPhysicianIdentificationSequence", "PhysiciansOfRecordIdentificationSequence",
           "PerformingPhysicianIdentificationSequence", "OperatorIdentificationSequence", "TextString",
           "TextComments", "InterpretationText", "ImagePresentationComments", "FillerOrderNumberImagingServiceRequest",
           "PlacerOrderNumberImagingServiceRequest", "ReferencedImageSequence", "SourceImageSequence"}
# UIDs that name a kind of thing, not an instance: kept.
_KEEP_UIDS = {"TransferSyntaxUID", "ImplementationClassUID", "CodingSchemeUID", "ContextGroupExtensionCreatorUID",
              "MappingResourceUID"}


class ExportError(RuntimeError):
    """The export as a whole cannot be done (nothing confirmed, bad folder or batch id, disk error)."""


# Why an image was skipped: code → English reason (the app shows its own translation of the code).
SKIP_REASONS = {
    "missing": "the file is no longer there",
    "changed": "the file changed since it was analysed (its sha256 differs)",
    "burned_in": "the DICOM declares burned-in annotation: its pixels may identify the patient",
    "unreadable": "the file cannot be read or de-identified",
    "check_failed": "the exported copy does not decode to the same pixels",
    "conflict": "the same image was confirmed as NORMAL for one file and PNEUMONIA for another",
    "duplicate": "the same image as another exported file",
}


class _Skip(Exception):
    """One image cannot be exported, for the reason ``code`` (a key of ``SKIP_REASONS``)."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(code)
        self.code, self.detail = code, detail


@dataclasses.dataclass(frozen=True)
class Skipped:
    file_name: str  # the original's name: shown to the user at the clinic, never written into the batch
    audit_id: int
    code: str  # a key of SKIP_REASONS
    detail: str = ""

    @property
    def reason(self) -> str:
        return SKIP_REASONS[self.code] + (f" ({self.detail})" if self.detail else "")


@dataclasses.dataclass
class ExportResult:
    batch_id: str
    batch_dir: Path | None  # None when nothing could be written (then nothing was created)
    manifest: Path | None
    dicom_archive: Path | None
    written: list[dict]  # manifest rows
    skipped: list[Skipped]

    def counts(self) -> dict[str, int]:
        return {label: sum(r["label"] == label for r in self.written) for label in LABELS}


def default_batch_id(now: datetime | None = None) -> str:
    return "pneumoscan-" + (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def latest_confirmations(rows: list[dict]) -> list[dict]:
    """One row per image content (sha256): the one confirmed last, i.e. the radiologist's latest read."""
    by_sha: dict[str, dict] = {}
    for r in sorted(rows, key=lambda r: (r["confirmed_at"] or "", r["id"])):
        by_sha[r["sha256"]] = r
    return sorted(by_sha.values(), key=lambda r: r["id"])


# ---------------------------------------------------------------------------------------------
# Metadata removal
# ---------------------------------------------------------------------------------------------
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_KEEP = {b"PLTE", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"pHYs", b"bKGD"}


def strip_png(data: bytes) -> bytes:
    """The PNG without ancillary chunks that can carry text (tEXt, zTXt, iTXt, eXIf, tIME, iCCP, unknown)."""
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG")
    out, i = bytearray(_PNG_SIGNATURE), len(_PNG_SIGNATURE)
    while i + 12 <= len(data):
        n = int.from_bytes(data[i:i + 4], "big")
        kind, end = data[i + 4:i + 8], i + 12 + n
        if end > len(data):
            break
        if kind[:1].isupper() or kind in _PNG_KEEP:  # critical chunks (IHDR, PLTE, IDAT, IEND) and safe ones
            out += data[i:end]
        if kind == b"IEND":
            return bytes(out)
        i = end
    raise ValueError("truncated PNG (no IEND chunk)")


def _keep_jpeg_segment(marker: int, segment: bytes) -> bool:
    payload = segment[4:]
    if marker == 0xFE:  # COM
        return False
    if 0xE0 <= marker <= 0xEF:  # APPn: JFIF, ICC profile and Adobe colour transform only
        return (marker == 0xE0 and payload[:5] in (b"JFIF\0", b"JFXX\0")
                or marker == 0xE2 and payload.startswith(b"ICC_PROFILE\0")
                or marker == 0xEE and payload.startswith(b"Adobe"))
    return True


def strip_jpeg(data: bytes) -> bytes:
    """The JPEG without comments and APPn metadata (EXIF, XMP, IPTC...) or anything after its end marker;
    the compressed scans are copied untouched."""
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG")
    out, i = bytearray(b"\xff\xd8"), 2
    try:
        while i < len(data):
            if data[i] != 0xFF:
                raise ValueError(f"corrupt JPEG (no marker at byte {i})")
            marker = data[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
            elif marker == 0xD9:  # EOI: drop any trailing bytes
                return bytes(out + b"\xff\xd9")
            elif marker == 0x01 or 0xD0 <= marker <= 0xD7:  # standalone markers
                out += data[i:i + 2]
                i += 2
            else:
                end = i + 2 + int.from_bytes(data[i + 2:i + 4], "big")
                if marker == 0xDA:  # SOS: the entropy-coded data runs to the next real marker
                    while True:
                        end = data.find(b"\xff", end)
                        if end < 0:
                            raise IndexError(end)
                        if data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7:
                            end += 2
                        else:
                            break
                    out += data[i:end]
                elif _keep_jpeg_segment(marker, data[i:end]):
                    out += data[i:end]
                i = end
    except IndexError:
        pass
    raise ValueError("truncated JPEG (no end marker)")


def deidentify_dicom(ds, uid_map: dict[str, str]) -> None:
    """De-identify a pydicom dataset in place (see the module docstring); ``uid_map`` maps old → new UIDs."""
    from pydicom.uid import generate_uid

    def new_uid(old: str) -> str:
        if old not in uid_map:
            uid_map[old] = generate_uid()
        return uid_map[old]

    def clean(dataset, elem) -> None:
        kw = elem.keyword
        if elem.tag.is_private or 0x6000 <= elem.tag.group <= 0x60FF or 0x5000 <= elem.tag.group <= 0x50FF:
            del dataset[elem.tag]  # private data, overlays (may be burned-in text), curves
        elif kw in _BLANK:
            elem.value = None
        elif kw in _REMOVE or elem.VR in ("PN", "DA", "DT", "TM"):
            del dataset[elem.tag]
        elif elem.VR == "UI" and elem.value and not kw.endswith("ClassUID") and kw not in _KEEP_UIDS:
            elem.value = ([new_uid(str(v)) for v in elem.value] if elem.VM > 1 else new_uid(str(elem.value)))

    ds.walk(clean)
    for kw in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"):
        setattr(ds, kw, None)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = DEIDENTIFICATION_METHOD
    ds.LongitudinalTemporalInformationModified = "REMOVED"
    meta = ds.file_meta
    if "MediaStorageSOPInstanceUID" in meta:
        meta.MediaStorageSOPInstanceUID = new_uid(str(meta.MediaStorageSOPInstanceUID))


# ---------------------------------------------------------------------------------------------
# One image
# ---------------------------------------------------------------------------------------------
def _same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and a.mode == b.mode and np.array_equal(np.asarray(a), np.asarray(b))


def _export_raster(src: Path, dest_stem: Path) -> tuple[Path, str]:
    """Copy a PNG/JPEG without its metadata (another raster format is re-encoded as PNG); check the pixels."""
    data = src.read_bytes()
    original = read_image(src)
    if data.startswith(_PNG_SIGNATURE):
        dest, kind = dest_stem.with_suffix(".png"), "png"
        dest.write_bytes(strip_png(data))
    elif data.startswith(b"\xff\xd8"):
        dest, kind = dest_stem.with_suffix(".jpeg"), "jpeg"
        dest.write_bytes(strip_jpeg(data))
    else:
        dest, kind = dest_stem.with_suffix(".png"), (original.format or "image").lower()
        original.save(dest, format="PNG")
    if not _same_pixels(original, read_image(dest)):
        raise _Skip("check_failed")
    return dest, kind


def _export_dicom(src: Path, dest_stem: Path, dicom_dest: Path, uid_map: dict[str, str]) -> Path:
    """De-identify into ``dicom_dest``; write the pixels the app shows as an 8-bit PNG for the hub."""
    import pydicom

    ds = pydicom.dcmread(src)
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        raise _Skip("burned_in")
    deidentify_dicom(ds, uid_map)
    dicom_dest.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dicom_dest, enforce_file_format=True)
    gray = load_image(dicom_dest).gray
    if not np.array_equal(gray, load_image(src).gray):
        raise _Skip("check_failed", "de-identified DICOM")
    dest = dest_stem.with_suffix(".png")
    Image.fromarray(np.round(gray * 255.0).astype(np.uint8), mode="L").save(dest, format="PNG")
    read_image(dest)  # the hub's own reader must accept it
    return dest


# ---------------------------------------------------------------------------------------------
# The batch
# ---------------------------------------------------------------------------------------------
def _check_batch_id(out_dir: Path, batch_id: str | None) -> str:
    if batch_id is None:
        base = batch_id = default_batch_id()
        n = 1
        while any(p.exists() for p in _outputs(out_dir, batch_id)):
            n += 1
            batch_id = f"{base}-{n}"
    if not _BATCH_ID.match(batch_id):
        raise ExportError(f"Invalid batch id {batch_id!r}: letters, digits, '.', '_' and '-' only, "
                          "not starting with a dot")
    for p in _outputs(out_dir, batch_id):
        if p.exists():
            raise ExportError(f"{p} already exists: choose another folder or batch id")
    return batch_id


def _outputs(out_dir: Path, batch_id: str) -> tuple[Path, Path, Path]:
    return out_dir / batch_id, out_dir / f"{batch_id}.manifest.csv", out_dir / f"{batch_id}.dicom.zip"


def export_labelled_batch(audit, out_dir: str | os.PathLike, batch_id: str | None = None,
                          progress: Callable[[int, int], None] | None = None) -> ExportResult:
    """Write every confirmed image of ``audit`` as a hub incoming batch under ``out_dir`` (module docstring).

    An image whose file is gone or no longer has the audited sha256, or cannot be de-identified, is
    skipped and reported; the others are exported. Raises ``ExportError`` when nothing is confirmed or
    the output cannot be written; then nothing is left behind. ``progress(done, total)`` is called after
    each image (on this thread).
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise ExportError(f"Export folder not found: {out_dir}")
    rows = latest_confirmations(audit.confirmed())
    if not rows:
        raise ExportError("No confirmed results to export: confirm or correct results first")
    batch_id = _check_batch_id(out_dir, batch_id)
    batch_dir, manifest, archive = _outputs(out_dir, batch_id)
    staging = out_dir / f".{batch_id}.partial"
    shutil.rmtree(staging, ignore_errors=True)  # left by a crash: never published, safe to discard
    try:
        written, skipped = _write_staging(rows, staging, progress)
        if not written:
            return ExportResult(batch_id, None, None, None, [], skipped)
        has_dicom = any(r["dicom"] for r in written)
        if has_dicom:
            _zip_folder(staging / "dicom", staging / "dicom.zip")
        os.replace(staging / "manifest.csv", manifest)
        if has_dicom:
            os.replace(staging / "dicom.zip", archive)
        os.rename(staging / "batch", batch_dir)  # last: the hub sees the whole batch or none of it
    except OSError as e:
        if not batch_dir.exists():  # not published: take back what was
            manifest.unlink(missing_ok=True)
            archive.unlink(missing_ok=True)
        raise ExportError(f"Cannot write the batch in {out_dir}: {e.strerror or e}") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("Exported labelled batch %s: %d images, %d skipped", batch_dir, len(written), len(skipped))
    return ExportResult(batch_id, batch_dir, manifest, archive if has_dicom else None, written, skipped)


def _write_staging(rows: list[dict], staging: Path,
                   progress: Callable[[int, int], None] | None) -> tuple[list[dict], list[Skipped]]:
    for label in LABELS:
        (staging / "batch" / label).mkdir(parents=True)
    uid_map: dict[str, str] = {}
    written: list[dict] = []
    skipped: list[Skipped] = []
    for done, r in enumerate(rows, 1):
        try:
            written.append(_export_one(r, staging, uid_map))
        except Exception as e:  # every failure skips that image only; pydicom raises many types
            skip = e if isinstance(e, _Skip) else _Skip("unreadable", (
                str(e) if isinstance(e, (ImageError, ValueError)) else e.strerror or str(e) if isinstance(e, OSError)
                else f"{type(e).__name__}: {e}"))
            skipped.append(Skipped(r["file_name"], r["id"], skip.code, skip.detail))
            logger.warning("Export: skipped %s (audit row %s): %s", r["file_path"], r["id"], skipped[-1].reason)
        if progress is not None:
            progress(done, len(rows))
    names = {r["id"]: r["file_name"] for r in rows}
    kept = []
    for row in written:  # different files can give the same image (e.g. only their metadata differed)
        twins = [w for w in written if w["sha256"] == row["sha256"]]
        if len({w["label"] for w in twins}) > 1:
            code = "conflict"
        elif twins[0] is not row:
            code = "duplicate"
        else:
            kept.append(row)
            continue
        _remove_outputs(staging, row)
        skipped.append(Skipped(names[row["audit_id"]], row["audit_id"], code))
    _write_manifest(staging / "manifest.csv", kept)
    return kept, skipped


def _export_one(r: dict, staging: Path, uid_map: dict[str, str]) -> dict:
    """Export one audit row into ``staging``; return its manifest row. Leaves nothing behind on failure."""
    src, label, stem = Path(r["file_path"]), r["confirmed_label"], r["sha256"][:16]
    if not src.is_file():
        raise _Skip("missing")
    if sha256_of(src) != r["sha256"]:
        raise _Skip("changed")
    row = {"label": label, "source_sha256": r["sha256"], "model_label": r["label"],
           "model_probability": repr(float(r["probability"])), "model_version": r["model_version"],
           "audit_id": r["id"], "dicom": f"{label}/{stem}.dcm" if is_dicom(src) else ""}
    dest_stem = staging / "batch" / label / stem
    try:
        if row["dicom"]:
            dest, kind = _export_dicom(src, dest_stem, staging / "dicom" / row["dicom"], uid_map), "dicom"
        else:
            dest, kind = _export_raster(src, dest_stem)
    except BaseException:
        _remove_outputs(staging, {**row, "file": ""}, dest_stem)
        raise
    return {**row, "file": f"{label}/{dest.name}", "sha256": sha256_of(dest), "source_format": kind}


def _remove_outputs(staging: Path, row: dict, dest_stem: Path | None = None) -> None:
    files = [staging / "batch" / row["file"]] if row["file"] else []
    if dest_stem is not None:
        files += [dest_stem.with_suffix(s) for s in (".png", ".jpeg")]
    if row["dicom"]:
        files.append(staging / "dicom" / row["dicom"])
    for f in files:
        f.unlink(missing_ok=True)


def _write_manifest(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def _zip_folder(folder: Path, dest: Path) -> None:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(p for p in folder.rglob("*") if p.is_file()):
            z.write(f, f.relative_to(folder).as_posix())
