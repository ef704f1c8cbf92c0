"""Rebuild the bundled sample from the full data set (run by a developer, not at run time).

    python sample_data/make_sample.py ../shared/data/chest_xray sample_data/chest_xray

Picks whole patients deterministically (seeded), so the sample keeps the patient structure
(some patients have several images), and downsizes each image so its shorter side is 128 px.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
from collections import defaultdict
from pathlib import Path

from PIL import Image

PATIENT = re.compile(r"^(person\d+|(?:NORMAL2-)?IM-\d+)[-_]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path, help="full data root with train/{NORMAL,PNEUMONIA}")
    ap.add_argument("dest", type=Path)
    ap.add_argument("--per-class", type=int, default=150, help="images per class (default 150)")
    ap.add_argument("--side", type=int, default=128, help="shorter side in px (default 128)")
    ap.add_argument("--seed", type=int, default=2018)
    args = ap.parse_args()

    if args.dest.exists():
        shutil.rmtree(args.dest)
    rng = random.Random(args.seed)
    for label in ("NORMAL", "PNEUMONIA"):
        by_patient: dict[str, list[Path]] = defaultdict(list)
        for f in sorted((args.source / "train" / label).glob("*.jpeg")):
            m = PATIENT.match(f.stem)
            by_patient[m.group(1) if m else f.stem].append(f)
        patients = sorted(by_patient)
        rng.shuffle(patients)
        chosen: list[Path] = []
        for p in patients:
            if len(chosen) >= args.per_class:
                break
            chosen.extend(by_patient[p][: args.per_class - len(chosen)])
        out = args.dest / "train" / label
        out.mkdir(parents=True)
        for f in chosen:
            img = Image.open(f).convert("L")
            scale = args.side / min(img.size)
            img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
            img.save(out / f.name, quality=85, optimize=True)
        print(f"{label}: {len(chosen)} images from {len({PATIENT.match(c.stem).group(1) for c in chosen})} patients")


if __name__ == "__main__":
    main()
