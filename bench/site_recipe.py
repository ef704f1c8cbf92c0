"""Intensity standardisation and recipe, chosen on the second site's validation images (issue 10).

    .venv/bin/python bench/site_recipe.py --kermany ../shared/data/chest_xray --site-b ../shared/data/site_b \\
        --work /tmp/site-recipe [--image-size 96] [--epochs 4] [--kermany-train 1000]  (the defaults: the recorded run)

The pool is built exactly as ``bench/two_site_loop.py`` builds it (Kermany as site ``kermany``, split;
then site B as the same two patient-split batches of site ``nih-cc``, each followed by a split, which
carves site B's gold the first time): so the gold sets are the loop's, and this bench never reads a
gold image. Every candidate is trained on the pool's train split (a seeded, stratified subset of the
Kermany train images, all of site B's) and scored after every epoch on the val split, per site:

* ``kermany-only`` runs (no site-B training image) measure how much each standardisation narrows the
  gap between sites by itself: the site-B val ROC AUC of a model that never saw site B;
* ``two-site`` runs (site-balanced sampling, as the cycle trains) from random weights at two
  augmentation strengths, and ``two-site, warm`` from the kermany-only model (the cycle's
  ``warm_start``: the challenger starts from the champion), measure what the loop would get.

The printed table gives, per candidate, the epoch with the best site-averaged val ROC AUC and the
site-B val AUC there with a 95 % patient-level bootstrap CI; ``--work``/recipe.json holds every epoch.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from two_site_loop import SITE_B, site_b_batches  # noqa: E402


def build_pool(kermany: Path, site_b: Path, work: Path):
    from hub import dataset
    from hub.config import HubPaths

    paths = HubPaths(work / "home")
    dataset.import_data(paths, kermany, site="kermany")
    dataset.split(paths)
    for batch in site_b_batches(site_b, work / "incoming", 2):
        dataset.import_data(paths, batch)
        dataset.split(paths)
    return dataset.training_view(paths)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kermany", type=Path, required=True)
    ap.add_argument("--site-b", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--kermany-train", type=int, default=1000, help="Kermany train images per run (stratified)")
    ap.add_argument("--kermany-val", type=int, default=300, help="Kermany val images scored (stratified)")
    ap.add_argument("--methods", default="none,percentile,equalize")
    ap.add_argument("--strengths", default="1,2")
    args = ap.parse_args()

    import numpy as np
    import torch
    from torch import nn

    from hub import evaluate as ev
    from hub.config import TrainConfig
    from hub.model import build_model
    from hub.pool import TRAIN, VAL
    from hub.train import (
        XrayDataset,
        _subsample,
        make_loader,
        predict_logits,
        recalibrate_batchnorm,
        site_balanced_weights,
        train_one_epoch,
    )

    shutil.rmtree(args.work, ignore_errors=True)
    view = build_pool(args.kermany, args.site_b, args.work)
    print("pool:", json.dumps(view.counts_by_site()), flush=True)

    def part(split, site):
        files, labels = view.files(split)
        sites, patients = view.sites(split), view.patients(split)
        keep = [i for i, s in enumerate(sites) if s == site]
        return [files[i] for i in keep], [labels[i] for i in keep], [patients[i] for i in keep]

    k_train, k_train_y, _ = part(TRAIN, "kermany")
    k_train, k_train_y, _ = _subsample(k_train, k_train_y, args.kermany_train, 42)
    b_train, b_train_y, _ = part(TRAIN, SITE_B)
    k_val, k_val_y, k_val_p = part(VAL, "kermany")
    pick = np.sort(np.random.default_rng(0).permutation(len(k_val))[: args.kermany_val])
    k_val, k_val_y, k_val_p = ([x[i] for i in pick] for x in (k_val, k_val_y, k_val_p))
    b_val, b_val_y, b_val_p = part(VAL, SITE_B)
    print(f"train: kermany {len(k_train)}, {SITE_B} {len(b_train)}; val: kermany {len(k_val)}, {SITE_B} {len(b_val)}")

    torch.set_num_threads(max(1, torch.get_num_threads()))
    device = torch.device("cpu")
    candidates = []
    for m in args.methods.split(","):
        candidates.append((m, "kermany-only", 1.0))
        candidates += [(m, "two-site", float(k)) for k in args.strengths.split(",")]
        candidates.append((m, "two-site, warm", 1.0))  # fine-tuned from this method's kermany-only model
    kermany_only_state = {}
    results = []
    t_all = time.perf_counter()
    for method, data, strength in candidates:
        cfg = TrainConfig(image_size=args.image_size, weights="none", intensity=method, augment_strength=strength)
        spec = cfg.spec()
        if data == "kermany-only":
            files, labels, groups = k_train, k_train_y, None
        else:
            files, labels = k_train + b_train, k_train_y + b_train_y
            groups = ["kermany"] * len(k_train) + [SITE_B] * len(b_train)
        weights = site_balanced_weights(groups, labels) if groups else None
        train_ds = XrayDataset(files, labels, spec, augment=True, strength=strength)
        bn_ds = XrayDataset(files[:: max(1, len(files) // 512)], labels[:: max(1, len(files) // 512)], spec)
        vals = {"kermany": XrayDataset(k_val, k_val_y, spec), SITE_B: XrayDataset(b_val, b_val_y, spec)}
        torch.manual_seed(cfg.seed)
        model = build_model("none").to(device)
        if data == "two-site, warm":
            model.load_state_dict(kermany_only_state[method])
        counts = np.bincount(labels, minlength=2)
        class_w = None if weights is not None else torch.tensor(len(labels) / (2 * counts), dtype=torch.float32)
        criterion = nn.CrossEntropyLoss(weight=class_w)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        epochs = []
        t0 = time.perf_counter()
        for epoch in range(1, args.epochs + 1):
            loader = make_loader(train_ds, cfg.batch_size, True, seed=epoch, drop_last=True, weights=weights)
            train_one_epoch(model, criterion, optimizer, loader, device, progress=False)
            recalibrate_batchnorm(model, make_loader(bn_ds, cfg.batch_size, False), device)
            row = {"epoch": epoch}
            for site, ds in vals.items():
                logits, y = predict_logits(model, make_loader(ds, 64, False), device, progress=False)
                p = ev.softmax(logits)[:, 1]
                row[site] = {
                    "auc": ev.roc_auc(y, p),
                    "loss": float(nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y).long())),
                    "p": p.tolist(),
                }
            row["mean_auc"] = float(np.mean([row[s]["auc"] for s in vals]))
            epochs.append(row)
            print(
                f"  {method:10s} {data:14s} aug {strength:g} epoch {epoch}: AUC kermany {row['kermany']['auc']:.3f}"
                f" {SITE_B} {row[SITE_B]['auc']:.3f}  ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
        if data == "kermany-only":
            kermany_only_state[method] = copy.deepcopy(model.state_dict())
        best = max(epochs, key=lambda r: r["mean_auc"])
        ci = ev.bootstrap_ci(np.asarray(b_val_y), np.asarray(best[SITE_B]["p"]), b_val_p, 0.5)["roc_auc"]
        results.append(
            {
                "intensity": method,
                "data": data,
                "augment_strength": strength,
                "best_epoch": best["epoch"],
                "kermany_val_auc": best["kermany"]["auc"],
                "site_b_val_auc": best[SITE_B]["auc"],
                "site_b_val_auc_ci": list(ci),
                "last_epoch_site_b_val_auc": epochs[-1][SITE_B]["auc"],
                "seconds": time.perf_counter() - t0,
                "epochs": epochs,
            }
        )
    (args.work / "recipe.json").write_text(json.dumps(results, indent=1))
    lines = [
        f"{args.image_size} px, {args.epochs} epochs from random weights, Kermany train {len(k_train)}, "
        f"{SITE_B} train {len(b_train)}; val kermany {len(k_val)}, {SITE_B} {len(b_val)} images "
        f"({len(set(b_val_p))} patients); {time.perf_counter() - t_all:.0f} s in all",
        "",
        "| intensity | training data | augmentation | best epoch | Kermany val AUC | site B val AUC (95 % CI) "
        "| site B val AUC, last epoch |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lo, hi = r["site_b_val_auc_ci"]
        lines.append(
            f"| {r['intensity']} | {r['data']} | {r['augment_strength']:g} | {r['best_epoch']} | "
            f"{r['kermany_val_auc']:.3f} | {r['site_b_val_auc']:.3f} ({lo:.3f}–{hi:.3f}) | "
            f"{r['last_epoch_site_b_val_auc']:.3f} |"
        )
    (args.work / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
