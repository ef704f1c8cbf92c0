"""`pneumo-hub demo`: the whole loop on the bundled sample, on the embedded default, in a few minutes.

Cycle 1 makes the first champion from the first site's first batch, cycle 2 judges a challenger on
its second batch, cycle 3 (with the bundled second-site sample) shows a new hospital arriving: its
gold share carved, both sites learned and each judged on its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from hub import cycle
from hub.config import HubPaths
from hub.pool import BATCH_MANIFEST, LABELS, patient_id

MARKER = ".pneumoscan-demo"
DEMO_SITE = "nih-cc"
# Floors a model trained for a few minutes on 300 small images clears on any CPU; production uses
# Policy(). Gold recall of such runs spread over 0.76-1.0 across seeds, threads and kernel sets
# (docs/training.md): on ~16 gold positives one image is 6 points.
DEMO_POLICY = {"min_recall": 0.75, "min_accuracy": 0.6, "recall_tolerance": 0.02}


def stage_batches(data: Path, incoming: Path, names=("demo-batch-1", "demo-batch-2")) -> list[Path]:
    """Cut a labelled folder into two incoming batches by patient (about 2/3 and 1/3 of the patients)."""
    out = [incoming / n for n in names]
    for label in LABELS:
        for f in sorted(data.rglob(f"{label}/*")):
            if not f.is_file():
                continue
            part = int(hashlib.sha256(patient_id(f.name).encode()).hexdigest()[:4], 16) % 3 == 2
            dest = out[int(part)] / label / f.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dest)
    return out


def stage_site_batch(data: Path, incoming: Path, site: str, name: str) -> Path:
    """A second hospital's labelled folder as one incoming batch that names its site (``batch.json``)."""
    batch = incoming / name
    for label in LABELS:
        for f in sorted((data / label).glob("*")):
            if f.is_file():
                (batch / label).mkdir(parents=True, exist_ok=True)
                shutil.copy(f, batch / label / f.name)
    (batch / BATCH_MANIFEST).write_text(json.dumps({"site": site}))
    return batch


def demo(
    paths: HubPaths,
    data: Path,
    epochs: int = 4,
    image_size: int = 128,
    out=sys.stdout,
    site_b: Path | None = None,
) -> int:
    """Two batches of ``data`` (the first site), then, when ``site_b`` is given, that second hospital's
    batch (site ``nih-cc``): each through one cycle."""
    home = paths.home
    if home.exists() and any(home.iterdir()):
        if not (home / MARKER).exists():
            print(
                f"pneumo-hub: error: {home} already holds hub data; the demo needs its own folder "
                f"(use --home or PNEUMO_HOME)",
                file=sys.stderr,
            )
            return 1
        shutil.rmtree(home)  # an earlier demo: start over
    home.mkdir(parents=True)
    (home / MARKER).write_text("created by `pneumo-hub demo`; safe to delete\n")

    from hub.settings import default_weights

    weights, why = default_weights()
    # everything inside the demo's folder, whatever MLFLOW_TRACKING_URI or PNEUMO_INCOMING/FEED_* say
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    paths = HubPaths(home)
    settings = {
        "epochs": epochs,
        "image_size": image_size,
        "weights": weights,
        "settle_seconds": 0,
        "target_sensitivity": 0.9,
        "policy": DEMO_POLICY,
    }
    os.environ.pop("PNEUMO_POLICY", None)
    cfg = cycle.CycleConfig.from_env(paths, settings)
    print(f"PneumoScan demo in {home}", file=out)
    if weights == "none":
        print(f"  ({why})", file=out)
    print(f"  demo promotion floors: {DEMO_POLICY}", file=out)
    batches = stage_batches(data, paths.incoming)
    staging = home / "demo-staging"
    shutil.move(str(batches[1]), staging)  # the second batch arrives after the first cycle
    for i in (1, 2):
        if i == 2:
            shutil.move(str(staging), batches[1])
        print(f"\n== cycle {i}: batch {batches[i - 1].name} arrives ==", file=out, flush=True)
        print(cycle.describe(cycle.run_once(paths, cfg)), file=out, flush=True)
    if site_b is not None:
        batch = stage_site_batch(site_b, paths.incoming, DEMO_SITE, "demo-site-b")
        print(
            f"\n== cycle 3: a second hospital ({DEMO_SITE}, adults) sends its labelled batch {batch.name} ==\n"
            "  its gold share is carved once it has enough patients; the challenger trains on both sites\n"
            "  (site-balanced) and is judged at each site on its own",
            file=out,
            flush=True,
        )
        print(cycle.describe(cycle.run_once(paths, cfg)), file=out, flush=True)

    print("\nWhere to look:", file=out)
    print(f"  runs, metrics, plots, registry: mlflow ui --backend-store-uri {paths.tracking_uri()}", file=out)
    print(
        f"  model packages: {paths.packages}   signed feed: {cfg.feed_dir} "
        f"(serve it: pneumo-hub --home {home} feed serve)",
        file=out,
    )
    print(f"  data pool (DVC): {paths.pool}   decisions: {paths.cycles}", file=out)
    print("  the same cycle runs daily and on new batches under Airflow: pneumo-hub up", file=out)
    return 0
