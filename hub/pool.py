"""The image pool: what may enter it (validation), the pool itself, and its patient-level split.

Layouts read (see docs/design.md, "Dataset layout"):

* Kaggle: ``<root>/{train,val,test}/{NORMAL,PNEUMONIA}/*`` — train and val go into the pool;
  the official ``test`` split is kept aside (never imported) but still used to reject duplicates.
* Incoming batch: ``<batch>/{NORMAL,PNEUMONIA}/*``, optionally with ``<batch>/batch.json``, the
  batch manifest: ``{"site": "nih-cc", "patients": {"NORMAL/a1b2.png": "p-7f3a…", …}}`` (the site
  the images come from, and the patient of each file whose name does not say it).

Every image belongs to a **site** (the hospital it came from; the Kermany set is ``DEFAULT_SITE``)
and a **patient**, from the manifest or from a known file-name pattern (Kermany ``person123_…``,
``IM-0115-…``; NIH ``00001281_000``). A file with neither is rejected: splitting it as its own
patient could put one patient's films in train and gold at once. Patient keys are scoped by site
(``<site>:<patient>`` outside the default site), so two hospitals' patient 42 never meet.

Every file found is either accepted or rejected with a reason; nothing is dropped silently. A
near-duplicate (a copy re-encoded, resized or cropped by a pixel: ``hub.near_dup``) of a pooled image,
or of another file of the same import, is a duplicate too; labelled otherwise, a label conflict.
The pool (``$PNEUMO_HOME/pool/<LABEL>/<file>`` + ``MANIFEST.tsv``) is the training data the hub
owns; it only grows, is DVC-tracked, and is split by *patient* into train / val / gold test.
The split is persisted in ``splits.json``: once made, the gold set never moves; patients that
arrive later go to train or val, never to gold.

Longer than most modules: validation, the pool and the split share one record of an image
(sha256, label, patient) and are read together when a batch is judged.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import fcntl
import hashlib
import io
import json
import logging
import os
import random
import re
import shutil
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

from contract.atomic import replacing, sync_folder_entries, write_atomic
from contract.package import CLASSES, sha256_of
from contract.preprocess import ImageError, read_image
from contract.suitability import raster_problem
from hub import near_dup

logger = logging.getLogger(__name__)

LABELS = CLASSES  # label folders: NORMAL/, PNEUMONIA/
KAGGLE_SPLITS = ("train", "val", "test")
POOL_SPLITS = ("train", "val")  # the official test split is kept aside by the project
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
GOLD, VAL, TRAIN = "gold", "val", "train"

_PATIENT_PATTERNS = [
    re.compile(r"^(person\d+)_(?:bacteria|virus)_\d+(?:_\d+)?$"),  # also person447_virus_921_1
    # IM-0115-0001, NORMAL2-IM-0115-0001 and IM-0533-0001-0002: grouped together, which can only over-group
    re.compile(r"^(?:NORMAL2-)?(IM-\d+)(?:-\d+)+$"),
    # NIH ChestX-ray8: <8-digit patient>_<3-digit follow-up>
    re.compile(r"^(\d{8})_\d{3}$"),
]
DEFAULT_SITE = "kermany"  # the first hospital (Guangzhou Women and Children's Medical Center)
BATCH_MANIFEST = "batch.json"
_SITE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
NO_PATIENT = (
    "no patient: the file name is not a known pattern (person123_…, IM-0115-…, 00001281_000) and "
    f"{BATCH_MANIFEST} gives no patient for it; add it there so one patient's films stay in one split"
)
MIN_SITE_PATIENTS = 25  # per class, before a site's gold share is carved (``Split.carve_sites``)


class DataError(RuntimeError):
    """A data problem the user must fix (bad path, empty pool, split missing)."""


def patient_id(filename: str) -> str | None:
    """Patient id from a known file-name pattern (Kermany, NIH), or None."""
    stem = Path(filename).stem.split("__")[0]
    for pat in _PATIENT_PATTERNS:
        m = pat.match(stem)
        if m:
            return m.group(1)
    return None


def check_site(site: str) -> str:
    if not isinstance(site, str) or not _SITE.match(site):
        raise DataError(
            f"Invalid site name {site!r}: lower-case letters, digits, '.', '_' or '-', at most 64 (e.g. nih-cc)"
        )
    return site


def patient_key(site: str, patient: str) -> str:
    """The split's key of a patient: site-scoped, unprefixed for the default site (older splits kept)."""
    return patient if site == DEFAULT_SITE else f"{site}:{patient}"


@dataclasses.dataclass(frozen=True)
class BatchManifest:
    """``batch.json``: the batch's site and the patient of each listed file (``<LABEL>/<name>``)."""

    site: str
    patients: dict[str, str]

    @classmethod
    def read(cls, root: Path, site: str | None = None) -> BatchManifest:
        """The manifest at ``root`` (if any); ``site`` (``data import --site``) must agree with it."""
        path = root / BATCH_MANIFEST
        if path.is_symlink():
            raise DataError(f"{path} is a symbolic link: links are refused, put the file itself in the batch")
        if not path.is_file():
            return cls(check_site(site or DEFAULT_SITE), {})
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DataError(f"{path} is not valid JSON ({e})") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("site"), str):
            raise DataError(f'{path} must be an object with a "site" (and "patients": {{file: patient}})')
        patients = raw.get("patients", {})
        if not isinstance(patients, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in patients.items()
        ):
            raise DataError(f'{path}: "patients" must map each file (LABEL/name) to a non-empty patient key')
        if site and site != raw["site"]:
            raise DataError(f"{path} says site {raw['site']!r}, the command says {site!r}")
        return cls(check_site(raw["site"]), {k: v.strip() for k, v in patients.items()})


@dataclasses.dataclass(frozen=True)
class ImageRecord:
    path: Path  # absolute path of the file as found
    rel: str  # path relative to the scanned root, for reports
    split: str  # train / val / test (Kaggle) or "batch"
    label: str
    sha256: str
    patient: str  # the site-scoped key (``patient_key``)
    width: int
    height: int
    site: str = DEFAULT_SITE
    phash: int = 0  # ``near_dup.perceptual_hash`` of the decoded image


@dataclasses.dataclass(frozen=True)
class Rejection:
    rel: str
    reason: str


@dataclasses.dataclass
class ValidationReport:
    root: Path
    layout: str
    accepted: list[ImageRecord]
    rejected: list[Rejection]
    kept_aside: list[ImageRecord]  # valid images of the official test split: never imported

    def summary(self) -> str:
        by_label = Counter(r.label for r in self.accepted)
        lines = [
            f"{self.root} ({self.layout} layout): {len(self.accepted)} accepted "
            f"({', '.join(f'{k} {by_label.get(k, 0)}' for k in LABELS)}), "
            f"{len(self.rejected)} rejected"
            + (f", {len(self.kept_aside)} official test images kept aside" if self.kept_aside else "")
        ]
        for rej in self.rejected:
            lines.append(f"  rejected {rej.rel}: {rej.reason}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "root": str(self.root),
            "layout": self.layout,
            "accepted": len(self.accepted),
            "accepted_by_label": dict(Counter(r.label for r in self.accepted)),
            "kept_aside": len(self.kept_aside),
            "rejected": [dataclasses.asdict(r) for r in self.rejected],
        }

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(self.to_dict(), indent=2))
        return path


def detect_layout(root: Path) -> str:
    if not root.is_dir():
        raise DataError(f"Data folder not found: {root}")
    names = {p.name for p in root.iterdir() if p.is_dir()}
    if names & set(KAGGLE_SPLITS):
        return "kaggle"
    if names & set(LABELS):
        return "batch"
    raise DataError(
        f"{root} has neither split folders ({', '.join(KAGGLE_SPLITS)}) nor label folders ({', '.join(LABELS)})"
    )


def _classify(root: Path, f: Path, layout: str) -> tuple[str | None, str | None, str | None]:
    """(split, label, reason-if-rejected) from a file's place in the tree."""
    parts = f.relative_to(root).parts
    if layout == "kaggle":
        if len(parts) != 3:
            return (
                None,
                None,
                (
                    "not inside <split>/<label>/"
                    if len(parts) < 3
                    else "nested too deep (expected <split>/<label>/<file>)"
                ),
            )
        split, label = parts[0], parts[1]
        if split not in KAGGLE_SPLITS:
            return None, None, f"unknown split folder {split!r} (expected {', '.join(KAGGLE_SPLITS)})"
    else:
        if len(parts) != 2:
            return (
                None,
                None,
                ("not inside a label folder" if len(parts) < 2 else "nested too deep (expected <label>/<file>)"),
            )
        split, label = "batch", parts[0]
    if label not in LABELS:
        return split, None, f"unknown label folder {label!r} (expected {', '.join(LABELS)})"
    if f.suffix.lower() not in IMAGE_SUFFIXES:
        return split, label, f"not an image file (extension {f.suffix or 'none'!r}; expected .jpeg, .jpg, .png)"
    return split, label, None


LINK_REFUSED = "a symbolic link: links are refused (never followed), put the file itself in the batch"
_SPLIT_PRIORITY = {"test": 0, "val": 1, "train": 2, "batch": 3}


def scan(
    root: str | os.PathLike,
    known: dict[str, tuple[str, str]] | None = None,
    site: str | None = None,
    near: near_dup.NearIndex | None = None,
    retracted: dict[str, str] | None = None,
) -> ValidationReport:
    """Validate every file under ``root`` (its images come from ``site``, or the manifest's).

    ``known`` maps sha256 → (place, label) of images already owned (the pool); a file with the same
    content is rejected as a duplicate, or as a label conflict when its label differs. Across splits,
    the copy in the most protected split (test, then val, then train) is kept. The same content
    under both labels rejects every copy. ``near`` (the pool's perceptual hashes) does the same for
    near-duplicates, which are also looked for among the files of ``root`` themselves. ``retracted``
    (sha256 → why, ``Pool.retracted``) refuses what was taken out of the pool before: never again.
    """
    root = Path(root).resolve()
    layout = detect_layout(root)
    manifest = BatchManifest.read(root, site)
    known = known or {}
    rejected: list[Rejection] = []
    candidates: list[ImageRecord] = []
    for f in sorted(p for p in root.rglob("*") if p != root / BATCH_MANIFEST):
        rel = f.relative_to(root).as_posix()
        if f.is_symlink():  # never followed: its target may be anywhere on the hub's disk
            rejected.append(Rejection(rel, LINK_REFUSED))
            continue
        if not f.is_file():
            continue
        split, label, reason = _classify(root, f, layout)
        if reason is None:
            try:
                img = read_image(f)
            except ImageError as e:
                reason = str(e)
            else:
                unfit = raster_problem(img)  # what the app would withhold never trains a model
                reason = f"not fit for the model: {unfit.reason}" if unfit else None
        if reason is not None:
            rejected.append(Rejection(rel, reason))
            continue
        patient = manifest.patients.get(rel) or patient_id(f.name)
        key = patient_key(manifest.site, patient) if patient else ""  # "": none (rejected below unless a duplicate)
        candidates.append(
            ImageRecord(
                f,
                rel,
                split,
                label,
                sha256_of(f),
                key,
                img.width,
                img.height,
                site=manifest.site,
                phash=near_dup.perceptual_hash(img),
            )
        )
    listed = set(manifest.patients) - {c.rel for c in candidates} - {r.rel for r in rejected}
    rejected += [Rejection(rel, f"listed in {BATCH_MANIFEST} but not in the batch") for rel in sorted(listed)]

    groups: dict[str, list[ImageRecord]] = defaultdict(list)
    for rec in candidates:
        groups[rec.sha256].append(rec)
    keep: list[ImageRecord] = []
    retracted = retracted or {}
    for sha, recs in groups.items():
        recs.sort(key=lambda r: (_SPLIT_PRIORITY[r.split], r.rel))
        if sha in retracted:
            rejected += [Rejection(r.rel, retracted[sha]) for r in recs]
            continue
        if sha in known:
            place, pool_label = known[sha]
            rejected += [
                Rejection(r.rel, f"duplicate of {place} already in the pool")
                if r.label == pool_label
                else Rejection(
                    r.rel, f"same image content labelled both NORMAL and PNEUMONIA ({place} is {pool_label})"
                )
                for r in recs
            ]
            continue
        labels = {r.label for r in recs}
        if len(labels) > 1:
            others = ", ".join(r.rel for r in recs)
            rejected += [
                Rejection(r.rel, f"same image content labelled both NORMAL and PNEUMONIA ({others})") for r in recs
            ]
            continue
        if recs[0].patient:
            keep.append(recs[0])
        else:
            rejected.append(Rejection(recs[0].rel, NO_PATIENT))
        rejected += [Rejection(r.rel, f"duplicate of {recs[0].rel} (same content)") for r in recs[1:]]

    keep, near_rejected = _drop_near_duplicates(keep, near or near_dup.NearIndex())
    rejected += near_rejected
    keep.sort(key=lambda r: r.rel)
    rejected.sort(key=lambda r: r.rel)
    accepted = [r for r in keep if r.split != "test"]
    kept_aside = [r for r in keep if r.split == "test"]
    return ValidationReport(root, layout, accepted, rejected, kept_aside)


def _drop_near_duplicates(
    records: list[ImageRecord], near: near_dup.NearIndex
) -> tuple[list[ImageRecord], list[Rejection]]:
    """``records`` without near-duplicates of ``near`` (the pool) or of each other; the most protected
    split's copy is kept, as for exact duplicates. Same label: a duplicate (skipped, the batch stays
    good); the other label: a label conflict."""
    near = near_dup.NearIndex(list(near.hashes), list(near.places), list(near.labels))  # the caller's stays
    keep, rejected = [], []
    for rec in sorted(records, key=lambda r: (_SPLIT_PRIORITY[r.split], r.rel)):
        hit = near.nearest(rec.phash)
        if hit is None:
            keep.append(rec)
            near.add(rec.phash, rec.rel, rec.label)
            continue
        d, place, label = hit
        how = f"{d} of {near_dup.BITS} bits apart: a re-encoded, resized or slightly cropped copy"
        if label == rec.label:
            where = "already in the pool" if place.startswith("pool/") else "(same image, not byte for byte)"
            rejected.append(Rejection(rec.rel, f"duplicate of {place} {where}; {how}"))
        else:
            rejected.append(
                Rejection(rec.rel, f"near-copy of {place}, which is labelled {label}: a label conflict ({how})")
            )
    return keep, rejected


# ---------------------------------------------------------------------------------------------
# Pool
# ---------------------------------------------------------------------------------------------
MANIFEST_FIELDS = ("file", "label", "sha256", "patient", "source", "width", "height", "site")


@dataclasses.dataclass(frozen=True)
class PoolEntry:
    file: str  # relative to the pool root: <LABEL>/<name>
    label: str
    sha256: str
    patient: str
    source: str  # where it came from (import root or batch id)
    width: int
    height: int
    site: str = DEFAULT_SITE  # pools written before sites existed: every image is the first site's


RETRACTION_FIELDS = ("sha256", "file", "label", "patient", "site", "source", "at", "by", "reason")


@dataclasses.dataclass(frozen=True)
class Retraction:
    """One image taken out of the pool with its batch (``Pool.retract``), kept on record for good."""

    sha256: str
    file: str
    label: str
    patient: str
    site: str
    source: str  # the batch (or import) it came with
    at: str  # UTC, ISO 8601
    by: str
    reason: str


class Pool:
    """The hub's own copy of every accepted image, with a manifest. It only grows, except by
    ``retract``: a whole batch taken out again, on record in ``RETRACTED.tsv`` (inside the pool, so
    each retraction is part of the pool's next DVC version) and refused if it is ever sent again."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.manifest = self.root / "MANIFEST.tsv"
        self.retraction_file = self.root / "RETRACTED.tsv"

    def entries(self) -> list[PoolEntry]:
        """The pooled images, less any retracted (a retraction is recorded before the manifest changes)."""
        gone = {r.sha256 for r in self.retractions()}
        return [e for e in self._manifest_entries() if e.sha256 not in gone]

    def retractions(self) -> list[Retraction]:
        if not self.retraction_file.exists():
            return []
        with open(self.retraction_file, newline="", encoding="utf-8") as f:
            return [
                Retraction(**{k: r.get(k) or "" for k in RETRACTION_FIELDS}) for r in csv.DictReader(f, delimiter="\t")
            ]

    def retracted(self) -> dict[str, str]:
        """sha256 → why that image is refused (``scan``'s ``retracted``)."""
        return {
            r.sha256: f"retracted from the pool on {r.at[:10]} with batch {r.source} ({r.reason}): not taken again"
            for r in self.retractions()
        }

    def retract(self, source: str, reason: str, by: str) -> list[PoolEntry]:
        """Take every image that came with ``source`` (a batch) out of the pool; return them.

        Recorded first (``RETRACTED.tsv``), then the manifest is rewritten without them, then their
        files are deleted: killed at any point, the images are already out of every training view, and
        running it again finishes the job. Returns ``[]`` when nothing of ``source`` is left in the pool.
        """
        with self._locked():
            listed = [e for e in self._manifest_entries() if e.source == source]
            done = {r.sha256 for r in self.retractions()}
            at = datetime.now(UTC).isoformat(timespec="seconds")
            new = [
                Retraction(e.sha256, e.file, e.label, e.patient, e.site, e.source, at, by, reason)
                for e in listed
                if e.sha256 not in done
            ]
            if new:
                self._write_tsv(self.retraction_file, RETRACTION_FIELDS, self.retractions() + new)
            keep = [e for e in self._manifest_entries() if e.source != source]
            if listed:
                self._write_tsv(self.manifest, MANIFEST_FIELDS, keep)
            # its files, also those a killed earlier try left (else DVC would version them again)
            named = {e.file for e in keep}
            files = {r.file for r in self.retractions() if r.source == source} - named
            for rel in files:
                (self.root / rel).unlink(missing_ok=True)
            for folder in {(self.root / rel).parent for rel in files}:
                if folder.is_dir():
                    sync_folder_entries(folder)
            return listed

    @contextlib.contextmanager
    def _locked(self):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as lock:
            # one writer at a time: the DAG, `data import` and `cycle` may run side by side
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    @staticmethod
    def _write_tsv(path: Path, fields: tuple[str, ...], rows: list) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields, delimiter="\t", lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow(dataclasses.asdict(row))
        write_atomic(path, buf.getvalue())

    def _manifest_entries(self) -> list[PoolEntry]:
        if not self.manifest.exists():
            return []
        with open(self.manifest, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        return [
            PoolEntry(
                r["file"],
                r["label"],
                r["sha256"],
                r["patient"],
                r["source"],
                int(r["width"]),
                int(r["height"]),
                r.get("site") or DEFAULT_SITE,
            )
            for r in rows
        ]

    def known_hashes(self) -> dict[str, tuple[str, str]]:
        """sha256 → (where in the pool, label)."""
        return {e.sha256: (f"pool/{e.file}", e.label) for e in self.entries()}

    @property
    def phash_file(self) -> Path:
        """sha256 → perceptual hash of every pooled image: derived data beside the pool (not in it, so
        not part of its DVC version), rebuilt from the images for any entry it lacks."""
        return self.root.parent / f"{self.root.name}.phash.tsv"

    def _read_phashes(self) -> dict[str, int]:
        try:
            lines = self.phash_file.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return {}
        out = {}
        for line in lines:
            sha, _, h = line.partition("\t")
            try:
                out[sha] = near_dup.from_hex(h)
            except ValueError:
                continue  # a damaged line: that image is hashed again
        return out

    def _write_phashes(self, hashes: dict[str, int]) -> None:
        write_atomic(self.phash_file, "".join(f"{k}\t{near_dup.to_hex(v)}\n" for k, v in sorted(hashes.items())))

    def near_index(self) -> near_dup.NearIndex:
        """The perceptual hashes of the pool (``scan``'s ``near``); images not hashed yet are, once."""
        entries = self.entries()
        hashes = self._read_phashes()
        missing = [e for e in entries if e.sha256 not in hashes]
        for e in missing:
            try:
                hashes[e.sha256] = near_dup.perceptual_hash(read_image(self.root / e.file))
            except (ImageError, OSError) as err:
                logger.warning("Cannot hash pooled image %s for near-duplicates: %s", e.file, err)
        if missing:
            try:
                self._write_phashes(hashes)
            except OSError as err:
                logger.warning("Cannot save %s: %s", self.phash_file, err)
        have = [e for e in entries if e.sha256 in hashes]
        return near_dup.NearIndex(
            [hashes[e.sha256] for e in have], [f"pool/{e.file}" for e in have], [e.label for e in have]
        )

    def add(self, records: list[ImageRecord], source: str) -> list[PoolEntry]:
        """Copy accepted images in, then publish them by rewriting the manifest atomically.

        A crash mid-way leaves at most unreferenced files, never a manifest naming a missing file.
        """
        with self._locked():
            return self._add(records, source)

    def _add(self, records: list[ImageRecord], source: str) -> list[PoolEntry]:
        taken = {e.file for e in self._manifest_entries()}
        added = []
        for rec in records:
            name = rec.path.name
            if f"{rec.label}/{name}" in taken:  # same name, different content: keep both
                name = f"{rec.path.stem}__{rec.sha256[:8]}{rec.path.suffix}"
            dest = self.root / rec.label / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            # thousands per import: each folder is synced once below, before the manifest names the files
            with replacing(dest, sync_folder=False) as tmp:
                shutil.copyfile(rec.path, tmp)
            entry = PoolEntry(
                f"{rec.label}/{name}", rec.label, rec.sha256, rec.patient, source, rec.width, rec.height, rec.site
            )
            taken.add(entry.file)
            added.append(entry)
        for folder in {(self.root / e.file).parent for e in added}:
            sync_folder_entries(folder)
        if added:
            self._write_tsv(self.manifest, MANIFEST_FIELDS, self._manifest_entries() + added)
            hashes = self._read_phashes()
            hashes.update({rec.sha256: rec.phash for rec in records if rec.phash})
            try:
                self._write_phashes(hashes)
            except OSError as err:  # derived data: rebuilt by the next near_index
                logger.warning("Cannot save %s: %s", self.phash_file, err)
        return added


# ---------------------------------------------------------------------------------------------
# Patient-level split
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Split:
    """Patient → split assignment plus the frozen gold set (by content hash), carved site by site.

    ``sites`` records each site whose gold share has been carved (when, from how many patients).
    A site's patients that arrive before it has ``MIN_SITE_PATIENTS`` per class are *pending*: not
    trained on, so that they can still become that site's gold; the first time the site has enough,
    ``carve_sites`` splits them like the first split (gold, val, train by patient, stratified by the
    patient's majority label) and freezes its gold. Later patients of a carved site go to train or
    val, never to gold. The gold set is the union of the sites' gold sets.
    """

    seed: int
    gold_frac: float
    val_frac: float
    patients: dict[str, str]
    gold: list[str]  # sha256 of every gold image, sorted
    created_at: str
    sites: dict[str, dict] = dataclasses.field(default_factory=dict)
    min_patients: int = MIN_SITE_PATIENTS

    def save(self, path: Path) -> None:
        write_atomic(path, json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> Split:
        if not path.exists():
            raise DataError(f"No split yet at {path}: run `pneumo-hub data split` first")
        raw = json.loads(path.read_text(encoding="utf-8"))
        if "sites" not in raw:  # made before sites existed: all of it was the first site, carved then
            raw["sites"] = {DEFAULT_SITE: {"carved_at": raw["created_at"], "patients": len(raw["patients"])}}
        return cls(**raw)

    def assign(self, entries: list[PoolEntry]) -> dict[str, list[PoolEntry]]:
        """Entries by split; images of gold patients that are not in the frozen gold set are held out,
        and those of a site not carved yet are pending."""
        gold = set(self.gold)
        out: dict[str, list[PoolEntry]] = {TRAIN: [], VAL: [], GOLD: [], "held_out": [], PENDING: []}
        for e in entries:
            s = self.patients.get(e.patient)
            if s is None:
                s = _late_split(e.patient, self.seed, self.val_frac) if e.site in self.sites else PENDING
            if s == GOLD:
                s = GOLD if e.sha256 in gold else "held_out"
            elif e.sha256 in gold:  # cannot happen unless splits.json was edited by hand
                s = GOLD
            out[s].append(e)
        return out

    def carve_sites(self, entries: list[PoolEntry], force: str | None = None) -> list[str]:
        """Carve the gold, val and train shares of every uncarved site that now has enough patients
        (``force``: that site whatever its size). Returns the sites carved; the caller saves."""
        by_site: dict[str, list[PoolEntry]] = defaultdict(list)
        for e in entries:
            if e.site not in self.sites:
                by_site[e.site].append(e)
        carved = []
        for site in sorted(by_site):
            strata = _strata(by_site[site])
            if site != force and min(len(strata.get(lb, [])) for lb in LABELS) < self.min_patients:
                continue
            for label in sorted(strata):
                ps = sorted(strata[label])
                random.Random(
                    f"{self.seed}:{label}" if site == DEFAULT_SITE else f"{self.seed}:{site}:{label}"
                ).shuffle(ps)
                n_gold = max(1, round(len(ps) * self.gold_frac))
                n_val = max(1, round(len(ps) * self.val_frac)) if len(ps) > 2 else 0
                for i, p in enumerate(ps):
                    self.patients[p] = GOLD if i < n_gold else VAL if i < n_gold + n_val else TRAIN
            self.gold = sorted(set(self.gold) | {e.sha256 for e in by_site[site] if self.patients[e.patient] == GOLD})
            n = sum(len(v) for v in strata.values())
            self.sites[site] = {"carved_at": datetime.now(UTC).isoformat(timespec="seconds"), "patients": n}
            carved.append(site)
        return carved


PENDING = "pending"  # a site's images before its gold share is carved (``Split.carve_sites``)


def _strata(entries: list[PoolEntry]) -> dict[str, list[str]]:
    """Patients by their majority label (ties: PNEUMONIA)."""
    labels_of: dict[str, Counter] = defaultdict(Counter)
    for e in entries:
        labels_of[e.patient][e.label] += 1
    strata: dict[str, list[str]] = defaultdict(list)
    for p, c in labels_of.items():
        strata["PNEUMONIA" if c["PNEUMONIA"] >= c["NORMAL"] else "NORMAL"].append(p)
    return strata


def _late_split(patient: str, seed: int, val_frac: float) -> str:
    """Deterministic train/val place for a patient that arrived after the split was made."""
    h = int(hashlib.sha256(f"{seed}:{patient}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return VAL if h < val_frac else TRAIN


def make_split(
    entries: list[PoolEntry],
    gold_frac: float = 0.15,
    val_frac: float = 0.15,
    seed: int = 42,
    min_patients: int = MIN_SITE_PATIENTS,
) -> Split:
    """The first split: every site with ``min_patients`` per class carved (``Split.carve_sites``); when
    none has that many yet, the largest site anyway, so a new hub has a gold set to score on."""
    if not entries:
        raise DataError("The pool is empty: import data first (`pneumo-hub data import <folder>`)")
    if not (0 < gold_frac < 1 and 0 < val_frac < 1 and gold_frac + val_frac < 1):
        raise DataError(f"Invalid fractions gold={gold_frac}, val={val_frac}: each in (0, 1), sum < 1")
    split = Split(seed, gold_frac, val_frac, {}, [], datetime.now(UTC).isoformat(timespec="seconds"), {}, min_patients)
    if not split.carve_sites(entries):
        largest = Counter(e.site for e in entries).most_common(1)[0][0]
        logger.warning("No site has %d patients of each class yet: carving %s anyway", min_patients, largest)
        split.carve_sites(entries, force=largest)
    return split


def dataset_version(assigned: dict[str, list[PoolEntry]]) -> str:
    """Content fingerprint of exactly the images a run sees, with their labels and splits."""
    lines = sorted(f"{s}\t{e.label}\t{e.sha256}" for s in (TRAIN, VAL, GOLD) for e in assigned[s])
    return "ds-" + hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
