"""How far apart are copies of one film, and how close are different films? Sets hub.near_dup.MAX_DISTANCE.

For a sample of films from DATA folders (NORMAL/ and PNEUMONIA/ images, e.g. ../shared/data/chest_xray/train
and ../shared/data/site_b), prints, in one run:

* the distance from each film to its copies: JPEG re-encoded at quality 50/75/95, cropped by 1 px,
  resized to 80 %, brightened by 5 % (and, not caught, cropped by 3 % and mirrored);
* the distance from each film to its nearest film of *another patient*, and of the same patient
  (a patient's films are in one split whatever happens; the Kermany set holds some exact copies);
* the threshold's margins: the largest copy distance and the smallest distinct distance.

    .venv/bin/python bench/near_duplicates.py ../shared/data/chest_xray/train ../shared/data/site_b --n 300
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub.near_dup import BITS, MAX_DISTANCE, distances, index, perceptual_hash  # noqa: E402
from hub.pool import patient_id  # noqa: E402

SUFFIXES = {".jpeg", ".jpg", ".png"}


def jpeg(img: Image.Image, q: int) -> Image.Image:
    buf = io.BytesIO()
    img.convert("L").save(buf, "JPEG", quality=q)
    buf.seek(0)
    return Image.open(buf)


COPIES = {
    "jpeg q50": lambda im: jpeg(im, 50),
    "jpeg q75": lambda im: jpeg(im, 75),
    "jpeg q95": lambda im: jpeg(im, 95),
    "crop 1 px": lambda im: im.crop((1, 1, im.width - 1, im.height - 1)),
    "resize 80 %": lambda im: im.resize((im.width * 4 // 5, im.height * 4 // 5), Image.Resampling.BILINEAR),
    "brighter 5 %": lambda im: ImageEnhance.Brightness(im.convert("L")).enhance(1.05),
}
# Not caught, listed to show where the hash stops: it is not shift- or mirror-invariant.
NOT_COPIES = {
    "crop 3 %": lambda im: im.crop(
        (im.width * 3 // 100, im.height * 3 // 100, im.width * 97 // 100, im.height * 97 // 100)
    ),
    "mirrored": ImageOps.mirror,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="+", type=Path)
    ap.add_argument("--n", type=int, default=300, help="films whose copies are made")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    files = sorted(f for d in args.data for f in d.rglob("*") if f.suffix.lower() in SUFFIXES)
    print(f"{len(files)} films in {', '.join(map(str, args.data))}; hash {BITS} bits, MAX_DISTANCE {MAX_DISTANCE}")
    hashes = []
    for f in files:
        with Image.open(f) as im:
            hashes.append(perceptual_hash(im))
    idx = index(hashes)
    patients = np.array([f"{f.parent.parent.name}:{patient_id(f.name)}" for f in files])
    other, same = [], []
    for i, h in enumerate(hashes):
        d = distances(h, idx)
        d[i] = BITS + 1
        mine = patients == patients[i]
        other.append(int(d[~mine].min()))
        if mine.sum() > 1:
            same.append(int(d[mine].min()))
    other, same = np.array(other), np.array(same)
    rng = np.random.default_rng(args.seed)
    picked = rng.choice(len(files), size=min(args.n, len(files)), replace=False)
    rows = {name: [] for name in {**COPIES, **NOT_COPIES}}
    for i in picked:
        with Image.open(files[i]) as im:
            im.load()
            for name, make in {**COPIES, **NOT_COPIES}.items():
                rows[name].append(int(distances(perceptual_hash(make(im)), idx[i : i + 1])[0]))
    print(f"\n{'copy':<14}{'median':>8}{'p99':>6}{'max':>6}  caught at {MAX_DISTANCE}")
    worst_copy = 0
    for name, d in rows.items():
        d = np.array(d)
        if name in COPIES:
            worst_copy = max(worst_copy, int(d.max()))
        print(
            f"{name:<14}{np.median(d):>8.0f}{np.percentile(d, 99):>6.0f}{d.max():>6}"
            f"  {np.mean(d <= MAX_DISTANCE):>8.1%}"
        )
    print(
        f"\nnearest film of another patient: min {other.min()}, p0.1 {np.percentile(other, 0.1):.0f}, "
        f"p1 {np.percentile(other, 1):.0f}, median {np.median(other):.0f}; "
        f"within MAX_DISTANCE: {int((other <= MAX_DISTANCE).sum())} of {len(files)}"
    )
    print(
        f"nearest film of the same patient ({len(same)} films with another): min {same.min()}, median "
        f"{np.median(same):.0f}; within MAX_DISTANCE: {int((same <= MAX_DISTANCE).sum())}, identical hash: "
        f"{int((same == 0).sum())}"
    )
    print(
        f"margins: worst caught copy {worst_copy} <= MAX_DISTANCE {MAX_DISTANCE} < nearest other patient {other.min()}"
    )


if __name__ == "__main__":
    main()
