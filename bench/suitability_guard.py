"""How well the suitability guard separates chest X-rays from other images, per kind (issue 11).

    .venv/bin/python bench/suitability_guard.py --package DIR --trained-model DIR \\
        --chest NAME=FOLDER [--chest NAME=FOLDER ...] [--max-per-set 400]

Part 1 (the app, onnxruntime only): the package's ``Engine`` on every chest X-ray set given (share
accepted, and why the rest were withheld) and on the non-chest images the tests use
(``tests/export/test_trained_guard.non_chest_images``: scikit-image's photographs, pydicom's CT slice,
a lateral DX, a crop, noise, blank and white films): share refused, and by which check.

Part 2 (the hub, torch): the candidate OOD scores on the same trained model: the energy score
(−logsumexp of the logits) and the Mahalanobis distance at layer3, layer4 and both (the shipped
one), each as ROC AUC of the first chest set against the non-chest images that are grayscale, with
the statistics fitted as the hub fits them (``hub.suitability``). This is how the method was chosen.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def images_in(folder: Path, n: int, seed: int = 0) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    random.Random(seed).shuffle(files)
    return sorted(files[:n])


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(an outside score > an inside score), ties count half."""
    a, b = np.asarray(inside)[None, :], np.asarray(outside)[:, None]
    return float((b > a).mean() + 0.5 * (b == a).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", type=Path, required=True)
    ap.add_argument("--trained-model", type=Path, help="the package's trained-model folder (part 2)")
    ap.add_argument("--chest", action="append", required=True, metavar="NAME=FOLDER")
    ap.add_argument("--max-per-set", type=int, default=400)
    args = ap.parse_args()

    from desktop_app.engine import Engine
    from desktop_app.images import load_image
    from tests.export.test_trained_guard import non_chest_images

    engine = Engine(args.package)
    sets = {k: images_in(Path(v), args.max_per_set) for k, v in (c.split("=", 1) for c in args.chest)}
    print(f"package version {engine.version}, OOD threshold {engine.ood_threshold:.3f}")
    print("chest X-rays (should be accepted):")
    for name, files in sets.items():
        preds = [engine.predict(load_image(f)) for f in files]
        why = collections.Counter(p.reason_code for p in preds if not p.suitable)
        ok = sum(p.suitable for p in preds)
        print(f"  {name:24} {ok}/{len(preds)} accepted ({ok / len(preds):.1%}); withheld by {dict(why)}")
    with tempfile.TemporaryDirectory() as tmp:
        others = non_chest_images(Path(tmp), next(iter(sets.values()))[0])
        print("other images (should be withheld):")
        refused = 0
        for name, (path, _) in others.items():
            p = engine.predict(load_image(path))
            refused += not p.suitable
            print(f"  {name:24} {'withheld: ' + p.reason_code if not p.suitable else 'ACCEPTED'} (OOD {p.ood:.2f})")
        print(f"  refused {refused}/{len(others)}")
        if args.trained_model:
            compare(args, sets, others)


def compare(args, sets: dict, others: dict) -> None:
    import torch

    from contract.preprocess import preprocess
    from hub.suitability import distances, fit_stats, pooled_features
    from hub.trained_model import TrainedModel

    trained = TrainedModel.load(args.trained_model)
    model, spec = trained.model.eval(), trained.info.spec
    first = next(iter(sets.values()))
    half = len(first) // 2
    fit, held = first[:half], first[half:]
    labels = [int("PNEUMONIA" in str(f)) for f in fit]
    stats = fit_stats(model, spec, fit, labels, held[: len(held) // 2])
    test_in = held[len(held) // 2 :]
    gray_out = [p for name, (p, codes) in others.items() if not name.startswith("colour")]

    def feats(paths):
        batch = np.stack([preprocess(_gray(p), spec) for p in paths])
        with torch.no_grad():
            pooled, _ = pooled_features(model, torch.from_numpy(batch))
            logits = model.fc(pooled[-1])
        return [f.numpy().astype(np.float64) for f in pooled], logits.numpy().astype(np.float64)

    (fi, li), (fo, lo) = feats(test_in), feats(gray_out)
    di, do = distances(stats, fi), distances(stats, fo)
    energy = lambda lg: -np.log(np.exp(lg).sum(1))  # noqa: E731
    print(f"method comparison: {len(test_in)} held-out chest X-rays of the first set, {len(gray_out)} grayscale others")
    for name, a, b in (
        ("energy (-logsumexp logits)", energy(li), energy(lo)),
        ("Mahalanobis layer3", di[0], do[0]),
        ("Mahalanobis layer4", di[1], do[1]),
        ("Mahalanobis layer3+layer4", np.maximum(*di), np.maximum(*do)),
    ):
        print(f"  {name:28} ROC AUC {auroc(a, b):.3f}")


def _gray(path: Path):
    """The model's gray image of ``path`` as Pillow "L": DICOM by the app's rule, else decoded."""
    from PIL import Image

    from desktop_app.images import load_image

    return Image.fromarray((load_image(path).model_gray * 255).astype(np.uint8))


if __name__ == "__main__":
    main()
