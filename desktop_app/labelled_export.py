"""“Export labelled batch”: the radiologist's confirmed images, de-identified, as a hub incoming batch.

What is written under ``out_dir`` (the names are the hub's contract, see ``hub/pool.py``):

* ``<batch-id>/{NORMAL,PNEUMONIA}/<sha256[:16]>.{png,jpeg}`` — the batch itself, labelled with the
  radiologist's label (not the model's), and ``<batch-id>/batch.json``, the hub's batch manifest
  (``hub.pool.BatchManifest``): the site (admin config ``site``) and each file's patient. The patient
  is a pseudonym, ``p-`` + HMAC-SHA256 of the DICOM Patient ID under the site's key (admin config
  ``patient_key_secret``, the same on every PC of the site; without one, a key made once for this
  PC's data folder), never the ID itself; a file without a Patient ID (PNG, JPEG, a DICOM lacking
  it) is its own patient, ``file-<sha256[:16]>``, and is listed under ``own_patient``. Besides that
  file the batch holds images only: the hub's validator rejects any other file, and it reads PNG and
  JPEG only, so a DICOM goes in as a 16-bit PNG of exactly what the app's model read
  (``LoadedImage.model_gray``, the rule in ``desktop_app.images``; the hub's ``to_gray`` reads it back
  as /65535, within 1/131070 of it), not of the window it was displayed at.
  File names are the content hash of the original, never its name (which often carries the patient's).
* ``<batch-id>.manifest.csv`` — beside the batch (a file, which the hub's folder watcher ignores): one
  row per image with its label, hash, source format, the model's result and the audit row.
* ``<batch-id>.dicom.zip`` — when there were DICOMs: each one de-identified (below), full bit depth,
  for archives and any later hub that reads DICOM. A zip, not a folder, so that copying everything into
  the hub's incoming folder cannot make it look like a second batch.

Each image is sent once. The hub quarantines a whole batch that holds nothing new, or an image it
already has under the other label, so the audit log records which batch sent each row (with the label
sent and the sha256 of the file written), and an export takes only confirmed images not sent before: an
image sent before with the same label is left out (counted in ``already_sent``); one sent before and
since corrected to the other label is reported (``sent_as_other``), for the ML team to fix in the pool.
The rows are marked once the batch is in place; if that fails the batch is still complete (the failure
is logged and returned in ``mark_error``). With nothing new, nothing is written.

De-identification (DICOM by an allow-list, PNG/JPEG metadata stripped) is ``desktop_app.deidentify``,
kept apart so that a privacy officer can review it alone.

The batch appears atomically: everything is written into a hidden staging folder in ``out_dir``
(which the hub's watcher skips) and the batch folder is renamed into place last.

Longer than most modules: planning the export, writing each image and staging the batch are one
atomic operation; the de-identification it relies on is ``desktop_app.deidentify``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import hmac
import json
import logging
import os
import re
import shutil
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from contract.package import sha256_of
from contract.preprocess import ImageError, read_image
from desktop_app.audit import LABELS
from desktop_app.deidentify import PNG_SIGNATURE, deidentify_dicom, strip_jpeg, strip_png
from desktop_app.images import is_dicom, load_image

logger = logging.getLogger(__name__)

MANIFEST_FIELDS = (
    "file",
    "label",
    "sha256",
    "source_format",
    "source_sha256",
    "dicom",
    "model_label",
    "model_probability",
    "model_version",
    "audit_id",
    "patient",
)
BATCH_MANIFEST = "batch.json"  # the hub's name (hub.pool.BATCH_MANIFEST): the app does not import the hub
_BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class BatchExportError(RuntimeError):
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
    "sent_as_other": "already sent to the hub as {label} (batch {batch}): not sent again; tell the ML team so "
    "that they correct the label there",
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
    sent_label: str = ""  # sent_as_other: the label and batch the hub got the image with
    sent_batch: str = ""

    @property
    def reason(self) -> str:
        text = SKIP_REASONS[self.code].format(label=self.sent_label, batch=self.sent_batch)
        return text + (f" ({self.detail})" if self.detail else "")


@dataclasses.dataclass
class ExportResult:
    batch_id: str
    batch_dir: Path | None  # None when nothing could be written (then nothing was created)
    manifest: Path | None
    dicom_archive: Path | None
    written: list[dict]  # manifest rows
    skipped: list[Skipped]
    already_sent: int = 0  # confirmed images left out because the hub already has them with that label
    mark_error: str | None = None  # the batch was written but the audit log could not record it

    def counts(self) -> dict[str, int]:
        return {label: sum(r["label"] == label for r in self.written) for label in LABELS}


def default_batch_id(now: datetime | None = None) -> str:
    return "pneumoscan-" + (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def latest_confirmations(rows: list[dict]) -> list[dict]:
    """One row per image content (sha256): the one confirmed last, i.e. the radiologist's latest read."""
    by_sha: dict[str, dict] = {}
    for r in sorted(rows, key=lambda r: (r["confirmed_at"] or "", r["id"])):
        by_sha[r["sha256"]] = r
    return sorted(by_sha.values(), key=lambda r: r["id"])


@dataclasses.dataclass
class ExportPlan:
    """What the next export would do, from the audit log alone (no file is read)."""

    rows: list[dict]  # the latest confirmations not sent yet
    skipped: list[Skipped]  # confirmations that contradict what was sent (sent_as_other)
    already_sent: int  # confirmations the hub already has, with the same label
    confirmed: int  # images confirmed in all


def _sent_as_other(r: dict, sent: dict) -> Skipped:
    return Skipped(
        r["file_name"], r["id"], "sent_as_other", sent_label=sent["exported_label"], sent_batch=sent["exported_batch"]
    )


def plan_export(audit) -> ExportPlan:
    """Split the latest confirmations into new ones, ones already sent, and ones corrected since sent."""
    latest = latest_confirmations(audit.confirmed())
    sent = {r["sha256"]: r for r in audit.exported()}  # by the original's content, as the rows are
    rows, skipped, already = [], [], 0
    for r in latest:
        before = sent.get(r["sha256"])
        if before is None:
            rows.append(r)
        elif before["exported_label"] == r["confirmed_label"]:
            already += 1
        else:
            skipped.append(_sent_as_other(r, before))
    return ExportPlan(rows, skipped, already, len(latest))


# ---------------------------------------------------------------------------------------------
# One image
# ---------------------------------------------------------------------------------------------
def _same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and a.mode == b.mode and np.array_equal(np.asarray(a), np.asarray(b))


def _export_raster(src: Path, dest_stem: Path) -> tuple[Path, str]:
    """Copy a PNG/JPEG without its metadata (another raster format is re-encoded as PNG); check the pixels."""
    data = src.read_bytes()
    original = read_image(src)
    if data.startswith(PNG_SIGNATURE):
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
    """De-identify into ``dicom_dest``; write the model's input (``model_gray``) as a 16-bit PNG for the hub."""
    import pydicom

    ds = pydicom.dcmread(src)
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        raise _Skip("burned_in")
    dicom_dest.parent.mkdir(parents=True, exist_ok=True)
    deidentify_dicom(ds, uid_map).save_as(dicom_dest, enforce_file_format=True)
    copy, original = load_image(dicom_dest), load_image(src)
    if not (
        np.array_equal(copy.model_gray, original.model_gray)
        and np.array_equal(copy.gray, original.gray)
        and copy.display_window == original.display_window
    ):
        raise _Skip("check_failed", "de-identified DICOM")
    dest = dest_stem.with_suffix(".png")
    Image.fromarray(np.round(original.model_gray * 65535.0).astype(np.uint16)).save(dest, format="PNG")
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
        raise BatchExportError(
            f"Invalid batch id {batch_id!r}: letters, digits, '.', '_' and '-' only, not starting with a dot"
        )
    for p in _outputs(out_dir, batch_id):
        if p.exists():
            raise BatchExportError(f"{p} already exists: choose another folder or batch id")
    return batch_id


def _outputs(out_dir: Path, batch_id: str) -> tuple[Path, Path, Path]:
    return out_dir / batch_id, out_dir / f"{batch_id}.manifest.csv", out_dir / f"{batch_id}.dicom.zip"


def patient_secret(settings) -> bytes:
    """The key of the batch's patient pseudonyms: the admin config's, else this data folder's own
    (made on first use, readable by this user only)."""
    if settings.patient_key_secret:
        return settings.patient_key_secret.encode()
    path = settings.paths().patient_key_file
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        path.parent.mkdir(parents=True, exist_ok=True)
        key = os.urandom(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key.hex())
        logger.warning(
            "No patient_key_secret in the admin config: made %s; other PCs of this site will give the same "
            "patient other keys",
            path,
        )
        return key


def pseudonym(patient_id: str, secret: bytes) -> str:
    """``p-`` + the first 16 bytes of HMAC-SHA256(secret, Patient ID), hex: stable per site, not reversible."""
    return "p-" + hmac.new(secret, patient_id.strip().encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def export_labelled_batch(
    audit,
    out_dir: str | os.PathLike,
    batch_id: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    site: str = "clinic",
    secret: bytes | None = None,
) -> ExportResult:
    """Write the confirmed images of ``audit`` not sent before as a hub incoming batch under ``out_dir``,
    then record them in ``audit`` as sent (module docstring).

    An image whose file is gone or no longer has the audited sha256, or cannot be de-identified, is
    skipped and reported; the others are exported. With nothing new to send, nothing is written
    (``batch_dir`` is None). Raises ``BatchExportError`` when nothing is confirmed or the output cannot be
    written; then nothing is left behind. ``progress(done, total)`` is called after each image (on this
    thread).
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise BatchExportError(f"Export folder not found: {out_dir}")
    plan = plan_export(audit)
    if not plan.confirmed:
        raise BatchExportError("No confirmed results to export: confirm or correct results first")
    if not plan.rows:
        logger.info(
            "Export: nothing new (%d confirmed images already sent, %d corrected since)",
            plan.already_sent,
            len(plan.skipped),
        )
        return ExportResult(batch_id or "", None, None, None, [], plan.skipped, plan.already_sent)
    batch_id = _check_batch_id(out_dir, batch_id)
    batch_dir, manifest, archive = _outputs(out_dir, batch_id)
    staging = out_dir / f".{batch_id}.partial"
    shutil.rmtree(staging, ignore_errors=True)  # left by a crash: never published, safe to discard
    sent = {r["exported_sha256"]: r for r in audit.exported()}  # by the content of the file the hub got
    try:
        written, skipped, already = _write_staging(plan.rows, staging, progress, sent, secret or os.urandom(32))
        skipped, already = plan.skipped + skipped, plan.already_sent + already
        if not written:
            return ExportResult(batch_id, None, None, None, [], skipped, already)
        _write_batch_manifest(staging / "batch" / BATCH_MANIFEST, site, written)
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
        raise BatchExportError(f"Cannot write the batch in {out_dir}: {e.strerror or e}") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info(
        "Exported labelled batch %s: %d images, %d skipped, %d already sent",
        batch_dir,
        len(written),
        len(skipped),
        already,
    )
    result = ExportResult(batch_id, batch_dir, manifest, archive if has_dicom else None, written, skipped, already)
    try:
        audit.mark_exported(batch_id, [(r["audit_id"], r["label"], r["sha256"]) for r in written])
    except Exception as e:  # the batch is complete whatever happens here; a broken audit DB raises many types
        result.mark_error = str(e) or type(e).__name__
        logger.error(
            "Batch %s is complete, but the audit log could not record it (%s): the next export will "
            "send its %d images again",
            batch_dir,
            result.mark_error,
            len(written),
        )
    return result


def _write_batch_manifest(path: Path, site: str, written: list[dict]) -> None:
    own = sorted(r["file"] for r in written if r["patient"].startswith("file-"))
    body = {"site": site, "patients": {r["file"]: r["patient"] for r in written}, "own_patient": own}
    path.write_text(json.dumps(body, indent=1, sort_keys=True), encoding="utf-8")


def _write_staging(
    rows: list[dict],
    staging: Path,
    progress: Callable[[int, int], None] | None,
    sent: dict[str, dict],
    secret: bytes,
) -> tuple[list[dict], list[Skipped], int]:
    """Export ``rows`` into ``staging``; return the manifest rows, the skipped images and how many images
    turned out to be files the hub already has (``sent``: audit rows by the sha256 of the file sent)."""
    for label in LABELS:
        (staging / "batch" / label).mkdir(parents=True)
    uid_map: dict[str, str] = {}
    written: list[dict] = []
    skipped: list[Skipped] = []
    for done, r in enumerate(rows, 1):
        try:
            written.append(_export_one(r, staging, uid_map, secret))
        except Exception as e:  # every failure skips that image only; pydicom raises many types
            skip = (
                e
                if isinstance(e, _Skip)
                else _Skip(
                    "unreadable",
                    (
                        str(e)
                        if isinstance(e, (ImageError, ValueError))
                        else e.strerror or str(e)
                        if isinstance(e, OSError)
                        else f"{type(e).__name__}: {e}"
                    ),
                )
            )
            skipped.append(Skipped(r["file_name"], r["id"], skip.code, skip.detail))
            logger.warning("Export: skipped %s (audit row %s): %s", r["file_path"], r["id"], skipped[-1].reason)
        if progress is not None:
            progress(done, len(rows))
    by_id = {r["id"]: r for r in rows}
    # Different files can give the same image (e.g. only their metadata differed), sent before or now.
    fresh, already = [], 0
    for row in written:
        before = sent.get(row["sha256"])
        if before is None:
            fresh.append(row)
            continue
        _remove_outputs(staging, row)
        if before["exported_label"] == row["label"]:
            already += 1
        else:
            skipped.append(_sent_as_other(by_id[row["audit_id"]], before))
    kept = []
    for row in fresh:
        twins = [w for w in fresh if w["sha256"] == row["sha256"]]
        if len({w["label"] for w in twins}) > 1:
            code = "conflict"
        elif twins[0] is not row:
            code = "duplicate"
        else:
            kept.append(row)
            continue
        _remove_outputs(staging, row)
        skipped.append(Skipped(by_id[row["audit_id"]]["file_name"], row["audit_id"], code))
    _write_manifest(staging / "manifest.csv", kept)
    return kept, skipped, already


def _export_one(r: dict, staging: Path, uid_map: dict[str, str], secret: bytes) -> dict:
    """Export one audit row into ``staging``; return its manifest row. Leaves nothing behind on failure."""
    src, label, stem = Path(r["file_path"]), r["confirmed_label"], r["sha256"][:16]
    if not src.is_file():
        raise _Skip("missing")
    if sha256_of(src) != r["sha256"]:
        raise _Skip("changed")
    row = {
        "label": label,
        "source_sha256": r["sha256"],
        "model_label": r["label"],
        "model_probability": repr(float(r["probability"])),
        "model_version": r["model_version"],
        "audit_id": r["id"],
        "dicom": f"{label}/{stem}.dcm" if is_dicom(src) else "",
    }
    patient = _dicom_patient_id(src) if row["dicom"] else None
    row["patient"] = pseudonym(patient, secret) if patient else f"file-{stem}"
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


def _dicom_patient_id(src: Path) -> str | None:
    import pydicom

    value = pydicom.dcmread(src, stop_before_pixels=True).get("PatientID")
    text = str(value).strip() if value is not None else ""
    return text or None


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
