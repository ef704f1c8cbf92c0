"""The image pool: what may enter it (validation), the pool itself, and its patient-level split.

Layouts read (see docs/design.md, "Dataset layout"):

* Kaggle: ``<root>/{train,val,test}/{NORMAL,PNEUMONIA}/*`` — train and val go into the pool;
  the official ``test`` split is kept aside (never imported) but still used to reject duplicates.
* Incoming batch: ``<batch>/{NORMAL,PNEUMONIA}/*``.

Every file found is either accepted or rejected with a reason; nothing is dropped silently.
The pool (``$PNEUMO_HOME/pool/<LABEL>/<file>`` + ``MANIFEST.tsv``) is the training data the hub
owns; it only grows, is DVC-tracked, and is split by *patient* into train / val / gold test.
The split is persisted in ``splits.json``: once made, the gold set never moves; patients that
arrive later go to train or val, never to gold.

Longer than most modules: validation, the pool and the split share one record of an image
(sha256, label, patient) and are read together when a batch is judged.
"""

from __future__ import annotations

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

from contract.atomic import replacing, write_atomic
from contract.package import CLASSES, sha256_of
from contract.preprocess import ImageError, read_image

logger = logging.getLogger(__name__)

LABELS = CLASSES  # label folders: NORMAL/, PNEUMONIA/
KAGGLE_SPLITS = ("train", "val", "test")
POOL_SPLITS = ("train", "val")  # the official test split is kept aside by the project
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
GOLD, VAL, TRAIN = "gold", "val", "train"

_PATIENT_PATTERNS = [
    re.compile(r"^(person\d+)_(?:bacteria|virus)_\d+$"),
    # IM-0115-0001 and NORMAL2-IM-0115-0001: grouped together, which can only over-group
    re.compile(r"^(?:NORMAL2-)?(IM-\d+)-\d+$"),
]


class DataError(RuntimeError):
    """A data problem the user must fix (bad path, empty pool, split missing)."""


def patient_id(filename: str) -> str:
    """Patient id from a Kermany file name; an unknown pattern makes each file its own patient."""
    stem = Path(filename).stem.split("__")[0]
    for pat in _PATIENT_PATTERNS:
        m = pat.match(stem)
        if m:
            return m.group(1)
    return stem


@dataclasses.dataclass(frozen=True)
class ImageRecord:
    path: Path  # absolute path of the file as found
    rel: str  # path relative to the scanned root, for reports
    split: str  # train / val / test (Kaggle) or "batch"
    label: str
    sha256: str
    patient: str
    width: int
    height: int


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


_SPLIT_PRIORITY = {"test": 0, "val": 1, "train": 2, "batch": 3}


def scan(root: str | os.PathLike, known: dict[str, tuple[str, str]] | None = None) -> ValidationReport:
    """Validate every file under ``root``.

    ``known`` maps sha256 → (place, label) of images already owned (the pool); a file with the same
    content is rejected as a duplicate, or as a label conflict when its label differs. Across splits,
    the copy in the most protected split (test, then val, then train) is kept. The same content
    under both labels rejects every copy.
    """
    root = Path(root).resolve()
    layout = detect_layout(root)
    known = known or {}
    rejected: list[Rejection] = []
    candidates: list[ImageRecord] = []
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = f.relative_to(root).as_posix()
        split, label, reason = _classify(root, f, layout)
        if reason is None:
            try:
                img = read_image(f)
            except ImageError as e:
                reason = str(e)
        if reason is not None:
            rejected.append(Rejection(rel, reason))
            continue
        candidates.append(ImageRecord(f, rel, split, label, sha256_of(f), patient_id(f.name), img.width, img.height))

    groups: dict[str, list[ImageRecord]] = defaultdict(list)
    for rec in candidates:
        groups[rec.sha256].append(rec)
    keep: list[ImageRecord] = []
    for sha, recs in groups.items():
        recs.sort(key=lambda r: (_SPLIT_PRIORITY[r.split], r.rel))
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
        keep.append(recs[0])
        rejected += [Rejection(r.rel, f"duplicate of {recs[0].rel} (same content)") for r in recs[1:]]

    keep.sort(key=lambda r: r.rel)
    rejected.sort(key=lambda r: r.rel)
    accepted = [r for r in keep if r.split != "test"]
    kept_aside = [r for r in keep if r.split == "test"]
    return ValidationReport(root, layout, accepted, rejected, kept_aside)


# ---------------------------------------------------------------------------------------------
# Pool
# ---------------------------------------------------------------------------------------------
MANIFEST_FIELDS = ("file", "label", "sha256", "patient", "source", "width", "height")


@dataclasses.dataclass(frozen=True)
class PoolEntry:
    file: str  # relative to the pool root: <LABEL>/<name>
    label: str
    sha256: str
    patient: str
    source: str  # where it came from (import root or batch id)
    width: int
    height: int


class Pool:
    """The hub's own copy of every accepted image, with a manifest. Append-only."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.manifest = self.root / "MANIFEST.tsv"

    def entries(self) -> list[PoolEntry]:
        if not self.manifest.exists():
            return []
        with open(self.manifest, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        return [
            PoolEntry(r["file"], r["label"], r["sha256"], r["patient"], r["source"], int(r["width"]), int(r["height"]))
            for r in rows
        ]

    def known_hashes(self) -> dict[str, tuple[str, str]]:
        """sha256 → (where in the pool, label)."""
        return {e.sha256: (f"pool/{e.file}", e.label) for e in self.entries()}

    def add(self, records: list[ImageRecord], source: str) -> list[PoolEntry]:
        """Copy accepted images in, then publish them by rewriting the manifest atomically.

        A crash mid-way leaves at most unreferenced files, never a manifest naming a missing file.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as lock:
            # one writer at a time: the DAG, `data import` and `cycle` may run side by side
            fcntl.flock(lock, fcntl.LOCK_EX)
            return self._add(records, source)

    def _add(self, records: list[ImageRecord], source: str) -> list[PoolEntry]:
        entries = self.entries()
        taken = {e.file for e in entries}
        added = []
        for rec in records:
            name = rec.path.name
            if f"{rec.label}/{name}" in taken:  # same name, different content: keep both
                name = f"{rec.path.stem}__{rec.sha256[:8]}{rec.path.suffix}"
            dest = self.root / rec.label / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            with replacing(dest) as tmp:
                shutil.copyfile(rec.path, tmp)
            entry = PoolEntry(f"{rec.label}/{name}", rec.label, rec.sha256, rec.patient, source, rec.width, rec.height)
            taken.add(entry.file)
            added.append(entry)
        if added:
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS, delimiter="\t", lineterminator="\n")
            w.writeheader()
            for e in entries + added:
                w.writerow(dataclasses.asdict(e))
            write_atomic(self.manifest, buf.getvalue())
        return added


# ---------------------------------------------------------------------------------------------
# Patient-level split
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Split:
    """Patient → split assignment plus the frozen gold set (by content hash)."""

    seed: int
    gold_frac: float
    val_frac: float
    patients: dict[str, str]
    gold: list[str]  # sha256 of every gold image, sorted
    created_at: str

    def save(self, path: Path) -> None:
        write_atomic(path, json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> Split:
        if not path.exists():
            raise DataError(f"No split yet at {path}: run `pneumo-hub data split` first")
        return cls(**json.loads(path.read_text(encoding="utf-8")))

    def assign(self, entries: list[PoolEntry]) -> dict[str, list[PoolEntry]]:
        """Entries by split; images of gold patients that are not in the frozen gold set are held out."""
        gold = set(self.gold)
        out: dict[str, list[PoolEntry]] = {TRAIN: [], VAL: [], GOLD: [], "held_out": []}
        for e in entries:
            s = self.patients.get(e.patient) or _late_split(e.patient, self.seed, self.val_frac)
            if s == GOLD:
                s = GOLD if e.sha256 in gold else "held_out"
            elif e.sha256 in gold:  # cannot happen unless splits.json was edited by hand
                s = GOLD
            out[s].append(e)
        return out


def _late_split(patient: str, seed: int, val_frac: float) -> str:
    """Deterministic train/val place for a patient that arrived after the split was made."""
    h = int(hashlib.sha256(f"{seed}:{patient}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return VAL if h < val_frac else TRAIN


def make_split(entries: list[PoolEntry], gold_frac: float = 0.15, val_frac: float = 0.15, seed: int = 42) -> Split:
    """Stratified (by the patient's majority label) patient-level split, deterministic by seed."""
    if not entries:
        raise DataError("The pool is empty: import data first (`pneumo-hub data import <folder>`)")
    if not (0 < gold_frac < 1 and 0 < val_frac < 1 and gold_frac + val_frac < 1):
        raise DataError(f"Invalid fractions gold={gold_frac}, val={val_frac}: each in (0, 1), sum < 1")
    labels_of: dict[str, Counter] = defaultdict(Counter)
    for e in entries:
        labels_of[e.patient][e.label] += 1
    strata: dict[str, list[str]] = defaultdict(list)
    for p, c in labels_of.items():
        strata["PNEUMONIA" if c["PNEUMONIA"] >= c["NORMAL"] else "NORMAL"].append(p)
    patients: dict[str, str] = {}
    for label in sorted(strata):
        ps = sorted(strata[label])
        random.Random(f"{seed}:{label}").shuffle(ps)
        n_gold = max(1, round(len(ps) * gold_frac))
        n_val = max(1, round(len(ps) * val_frac)) if len(ps) > 2 else 0
        for i, p in enumerate(ps):
            patients[p] = GOLD if i < n_gold else VAL if i < n_gold + n_val else TRAIN
    gold = sorted(e.sha256 for e in entries if patients[e.patient] == GOLD)
    return Split(seed, gold_frac, val_frac, patients, gold, datetime.now(UTC).isoformat(timespec="seconds"))


def dataset_version(assigned: dict[str, list[PoolEntry]]) -> str:
    """Content fingerprint of exactly the images a run sees, with their labels and splits."""
    lines = sorted(f"{s}\t{e.label}\t{e.sha256}" for s in (TRAIN, VAL, GOLD) for e in assigned[s])
    return "ds-" + hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
