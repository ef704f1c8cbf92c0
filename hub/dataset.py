"""The data steps over the pool (import, split, status) and the dataset a run sees (``TrainingView``):
exactly its images, labels and splits, under one content fingerprint."""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from hub import dvc
from hub.config import HubPaths
from hub.lock import exclusive
from hub.pool import (
    GOLD,
    LABELS,
    TRAIN,
    VAL,
    DataError,
    Pool,
    PoolEntry,
    Split,
    ValidationReport,
    dataset_version,
    make_split,
    scan,
)

logger = logging.getLogger(__name__)


def validate_folder(root: Path, paths: HubPaths | None = None, site: str | None = None) -> ValidationReport:
    """Validate a folder (against the pool's content too, when a hub home is given)."""
    if paths is None:
        return scan(root, site=site)
    pool = Pool(paths.pool)
    return scan(root, known=pool.known_hashes(), site=site, near=pool.near_index(), retracted=pool.retracted())


@exclusive
def import_data(
    paths: HubPaths, root: Path, source: str | None = None, site: str | None = None
) -> tuple[ValidationReport, list[PoolEntry]]:
    """Validate ``root`` (images of ``site``, else its ``batch.json``'s, else the default site) and copy
    what is accepted into the pool; DVC-track the new pool version."""
    report = validate_folder(root, paths, site)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report.write(paths.reports / f"import-{stamp}-{Path(root).name}.json")
    added = Pool(paths.pool).add(report.accepted, source or Path(root).resolve().name)
    if added or Pool(paths.pool).manifest.exists():
        # also when nothing was added: a retry after a crash between copy and `dvc add` catches up
        dvc.track(paths.home, "pool")
    return report, added


@exclusive
def retract(paths: HubPaths, batch: str, reason: str, by: str) -> dict:
    """Take batch ``batch``'s images out of the pool, on record, as a new DVC version of the pool.

    Returns what was done: the images taken out (0 when a retraction was already complete, which
    then only makes sure the DVC version is up to date), how many of them were in the gold set, and
    the dataset version before and after. Raises ``DataError`` for a batch the pool never had.
    """
    pool = Pool(paths.pool)
    before = _version_or_none(paths)
    gold = set()
    if paths.splits.exists():
        gold = {e.sha256 for e in Split.load(paths.splits).assign(pool.entries())[GOLD]}
    taken = pool.retract(batch, reason, by)
    earlier = [r for r in pool.retractions() if r.source == batch]
    if not taken and not earlier:
        sources = sorted({e.source for e in pool.entries()})
        raise DataError(
            f"No image in the pool came with batch {batch!r}; the pool's batches and imports are: "
            + (", ".join(sources[-20:]) or "none")
        )
    dvc.track(paths.home, "pool")  # also on a re-run after a crash: the DVC version catches up
    after = _version_or_none(paths)
    logger.warning("Retracted batch %s: %d image(s) out of the pool (%s)", batch, len(taken), reason)
    return {
        "batch": batch,
        "images": len(taken),
        "gold_images": sum(e.sha256 in gold for e in taken),
        "already_retracted": not taken,
        "at": earlier[0].at,
        "by": earlier[0].by,
        "reason": earlier[0].reason,
        "dataset_before": before,
        "dataset_after": after,
        "dvc_hash": dvc.tracked_hash(paths.home),
    }


def _version_or_none(paths: HubPaths) -> str | None:
    try:
        return training_view(paths).version
    except DataError:
        return None


def retractions(paths: HubPaths) -> list[dict]:
    """Each retracted batch once: when, by whom, why, how many images (``data status``, lineage)."""
    out: dict[str, dict] = {}
    for r in Pool(paths.pool).retractions():
        row = out.setdefault(r.source, {"batch": r.source, "at": r.at, "by": r.by, "reason": r.reason, "images": 0})
        row["images"] += 1
    return list(out.values())


@exclusive
def split(
    paths: HubPaths, gold_frac: float = 0.15, val_frac: float = 0.15, seed: int = 42, reset: bool = False
) -> tuple[Split, bool]:
    """Create the persisted split if there is none (or ``reset``); return it and whether it changed.

    An existing split is kept, and a site that now has enough patients gets its gold share carved
    (``Split.carve_sites``): the gold set of every site carved before never moves.
    """
    entries = Pool(paths.pool).entries()
    if paths.splits.exists() and not reset:
        s = Split.load(paths.splits)
        carved = s.carve_sites(entries)
        if carved:
            logger.info("Carved the gold share of site(s) %s", ", ".join(carved))
            s.save(paths.splits)
        if carved or dvc.tracked_hash(paths.home, SPLITS) is None:
            dvc.track(paths.home, SPLITS)
        return s, bool(carved)
    s = make_split(entries, gold_frac, val_frac, seed)
    s.save(paths.splits)
    dvc.track(paths.home, SPLITS)  # versioned like the pool: what a worker elsewhere pulls (``checkout``)
    return s, True


SPLITS = "splits.json"  # the persisted split's DVC target (``HubPaths.splits``)


def ref(paths: HubPaths, push: bool = True) -> dict:
    """The current dataset version as it travels between workers: its content fingerprint and the DVC
    hashes of the pool and the split, pushed to the DVC remote when one is set (``push``)."""
    view = training_view(paths)
    if dvc.tracked_hash(paths.home, SPLITS) is None:  # a split made before the split was DVC-tracked
        dvc.track(paths.home, SPLITS)
    out = {"version": view.version, "pool": view.dvc_hash, "splits": dvc.tracked_hash(paths.home, SPLITS)}
    if push:
        dvc.push(paths.home, "pool", SPLITS)
    return out


@exclusive
def checkout(paths: HubPaths, dataset: dict) -> TrainingView:
    """Exactly the dataset version ``dataset`` (a ``ref``) in this home: already here, or pulled from the
    DVC remote by its hashes and checked by content fingerprint. Never anything else: a worker whose
    pool differs and that cannot fetch the version, or fetches other content, raises ``DataError``."""
    try:
        view = training_view(paths)
    except DataError:
        view = None  # a worker's empty home: everything comes from the remote
    if view is not None and view.version == dataset["version"]:
        return view
    have = view.version if view else "no dataset"
    url = dvc.remote_url()
    if not url:
        raise DataError(
            f"This worker's hub home {paths.home} holds {have}, the run is for {dataset['version']}, and no "
            "DVC remote is set to fetch it: set PNEUMO_DVC_REMOTE (the same on every worker) or share PNEUMO_HOME"
        )
    if not (dataset.get("pool") and dataset.get("splits")):
        raise DataError(f"Dataset {dataset['version']} names no DVC hashes to fetch it by: {dataset}")
    logger.info("Fetching dataset %s (pool %s) from %s", dataset["version"], dataset["pool"], url)
    dvc.pull(paths.home, {"pool": dataset["pool"], SPLITS: dataset["splits"]})
    view = training_view(paths)
    if view.version != dataset["version"]:
        raise DataError(
            f"The pool fetched from {url} by DVC hash {dataset['pool']} is dataset {view.version}, not "
            f"{dataset['version']}: refusing to train or score on it"
        )
    return view


@dataclasses.dataclass
class TrainingView:
    """Exactly what a run trains and scores on, with the names of that data."""

    pool_root: Path
    assigned: dict[str, list[PoolEntry]]
    version: str
    dvc_hash: str | None

    def files(self, split: str) -> tuple[list[Path], list[int]]:
        entries = self.assigned[split]
        return ([self.pool_root / e.file for e in entries], [LABELS.index(e.label) for e in entries])

    def sites(self, split: str) -> list[str]:
        """The site of each file of ``split``, in the order of ``files``."""
        return [e.site for e in self.assigned[split]]

    def patients(self, split: str) -> list[str]:
        """The (site-scoped) patient of each file of ``split``, in the order of ``files``."""
        return [e.patient for e in self.assigned[split]]

    def counts(self) -> dict[str, dict[str, int]]:
        return {s: dict(Counter(e.label for e in v)) for s, v in self.assigned.items()}

    def counts_by_site(self) -> dict[str, dict[str, dict[str, int]]]:
        """site → split → label → images."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for split, entries in self.assigned.items():
            for e in entries:
                out.setdefault(e.site, {}).setdefault(split, {}).setdefault(e.label, 0)
                out[e.site][split][e.label] += 1
        return out


def training_view(paths: HubPaths) -> TrainingView:
    entries = Pool(paths.pool).entries()
    if not entries:
        raise DataError(f"The pool at {paths.pool} is empty: run `pneumo-hub data import <folder>` first")
    assigned = Split.load(paths.splits).assign(entries)
    for s in (TRAIN, VAL, GOLD):
        if not assigned[s]:
            raise DataError(f"The {s} split is empty: import more data or re-split with other fractions")
    return TrainingView(paths.pool, assigned, dataset_version(assigned), dvc.tracked_hash(paths.home))


def status(paths: HubPaths) -> dict:
    entries = Pool(paths.pool).entries()
    out: dict = {
        "home": str(paths.home),
        "pool_images": len(entries),
        "pool_by_label": dict(Counter(e.label for e in entries)),
        "pool_by_site": dict(Counter(e.site for e in entries)),
        "dvc_hash": dvc.tracked_hash(paths.home),
        "retracted": retractions(paths),
        "split": None,
    }
    if entries and paths.splits.exists():
        view = training_view(paths)
        out["split"] = view.counts()
        out["split_by_site"] = view.counts_by_site()
        out["sites_carved"] = Split.load(paths.splits).sites
        out["dataset_version"] = view.version
    return out
