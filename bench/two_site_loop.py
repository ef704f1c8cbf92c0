"""The loop fixes a new site, measured (issue 10): the first site's champion, then a second hospital's batches.

    .venv/bin/python bench/two_site_loop.py --kermany ../shared/data/chest_xray --site-b ../shared/data/site_b \\
        --work /tmp/two-sites [--batches 2] [--image-size 128] [--epochs 3]

1. The Kermany pool (train + val copies) is imported as site ``kermany`` and split; one cycle
   (``hub.cycle.run_once``, what the DAG runs) trains the first champion.
2. Site B's films arrive as ``--batches`` labelled batches of site ``nih-cc`` (split by patient, with a
   batch.json); a cycle runs after each: it carves site B's gold the first time it has enough
   patients, trains with site-balanced sampling, scores challenger and champion per site, and judges.
3. At the end the first champion and the final champion are scored on the same final gold set, per
   site with 95 % patient-level bootstrap CIs; the table is printed and written to ``--work``/report.md.

The promotion policy is given here (``POLICY``): floors a 128 px model trained from random weights can
reach, the per-site rules of ``hub.policy`` unchanged.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SITE_B = "nih-cc"


def site_b_batches(site_b: Path, incoming: Path, n: int):
    """Yield site B's films as ``n`` labelled batch folders of site ``nih-cc``, split by patient (a
    patient's hash picks the batch), each written into ``incoming`` just before it is yielded."""
    import csv
    import hashlib
    import json
    import shutil

    from hub.pool import BATCH_MANIFEST

    rows = list(csv.DictReader(open(site_b / "MANIFEST.tsv"), delimiter="\t"))
    for i in range(n):
        batch = incoming / f"nih-{i + 1}"
        for r in rows:
            if int(hashlib.sha256(r["patient"].encode()).hexdigest()[:8], 16) % n == i:
                dest = batch / r["file"]
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(site_b / r["file"], dest)
        (batch / BATCH_MANIFEST).write_text(json.dumps({"site": SITE_B}))
        yield batch


POLICY = {"min_recall": 0.80, "min_accuracy": 0.60, "recall_tolerance": 0.02}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kermany", type=Path, required=True)
    ap.add_argument("--site-b", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--batches", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--intensity", default="none", help="intensity standardisation (bench/site_recipe.py chose)")
    ap.add_argument("--augment-strength", type=float, default=1.0)
    ap.add_argument("--warm-start", action="store_true", help="site-B challengers start from the champion")
    ap.add_argument("--target-sensitivity", type=float, default=0.95, help="operating points fitted on val for it")
    args = ap.parse_args()

    from hub import cycle, dataset
    from hub.config import HubPaths
    from hub.evaluate import site_table
    from hub.experiment import score
    from hub.pool import GOLD
    from hub.tracking import resolve_trained_model, setup
    from hub.trained_model import TrainedModel

    shutil.rmtree(args.work, ignore_errors=True)
    paths = HubPaths(args.work / "home")
    incoming = args.work / "incoming"
    incoming.mkdir(parents=True)
    settings = {
        "image_size": args.image_size,
        "epochs": args.epochs,
        "weights": "none",
        "num_workers": 1,
        "settle_seconds": 0,
        "incoming": str(incoming),
        "policy": POLICY,
        "intensity": args.intensity,
        "augment_strength": args.augment_strength,
        "target_sensitivity": args.target_sensitivity,
    }
    cfg = cycle.CycleConfig.from_env(paths, settings)
    log = []
    t0 = time.perf_counter()
    dataset.import_data(paths, args.kermany, site="kermany")
    dataset.split(paths)
    out = cycle.run_once(paths, cfg)
    log.append(("kermany", out))
    first_run = out["run_id"]
    print(f"cycle 1 (kermany): promote {out.get('promote')}, {time.perf_counter() - t0:.0f} s", flush=True)

    if args.warm_start:
        cfg = cycle.CycleConfig.from_env(paths, {**settings, "warm_start": True})
    for i, batch in enumerate(site_b_batches(args.site_b, incoming, args.batches)):
        out = cycle.run_once(paths, cfg)
        log.append((batch.name, out))
        print(f"cycle {i + 2} ({batch.name}): promote {out.get('promote')}, {time.perf_counter() - t0:.0f} s")
        for reason in out.get("decision", {}).get("reasons", []):
            print("   ", reason)

    from hub import registry

    setup(paths)
    view = dataset.training_view(paths)
    final = registry.get_alias(registry.CHAMPION)
    report = [f"Settings: {json.dumps({**settings, 'warm_start': args.warm_start})}", ""]
    report += [f"Final gold set: {view.counts_by_site()}", ""]
    with tempfile.TemporaryDirectory() as tmp:
        for name, run in (("first champion (kermany only)", first_run), ("final champion", final.run_id)):
            trained = TrainedModel.load(resolve_trained_model(f"runs:/{run}", Path(tmp) / run))
            table = site_table(score(trained, view, GOLD).by_site())
            report += [f"### {name}: run {run}", "", table, ""]
    report.append("Decisions:")
    for name, out in log:
        report.append(f"* {name}: {'promoted' if out.get('promote') else 'rejected'}")
        report += [f"  * {r}" for r in out.get("decision", {}).get("reasons", [])]
    report.append(f"\nTotal {time.perf_counter() - t0:.0f} s")
    (args.work / "report.md").write_text("\n".join(report))
    print("\n".join(report))


if __name__ == "__main__":
    main()
