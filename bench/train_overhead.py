"""Training-step throughput: the project's `train_one_epoch` vs a bare torch loop, same batches.

    .venv/bin/python bench/train_overhead.py [--image-size 224] [--batches 6] [--repeats 3]

Both loops see the same pre-decoded batches (from the bundled sample through the project's
dataset, augmentation on) and start from the same weights; they alternate, and the median of
the repeats is compared, so machine noise hits both alike. Also prints the end-to-end rate with
the project's DataLoader (decode + augment + workers) for context. Target: overhead <= 10%.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hub import dataset  # noqa: E402
from hub.config import HubPaths, TrainConfig  # noqa: E402
from hub.model import build_model  # noqa: E402
from hub.pool import TRAIN  # noqa: E402
from hub.train import XrayDataset, make_loader, train_one_epoch  # noqa: E402

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "chest_xray"


def bare_loop(model, criterion, optimizer, batches):
    model.train()
    for x, y in batches:
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SAMPLE)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--batches", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as tmp:
        paths = HubPaths(Path(tmp))
        dataset.import_data(paths, args.data, "bench")
        dataset.split(paths)
        files, labels = dataset.training_view(paths).files(TRAIN)
        cfg = TrainConfig(image_size=args.image_size, batch_size=args.batch_size, weights="none")
        ds = XrayDataset(files, labels, cfg.spec(), augment=True)
        loader = make_loader(ds, args.batch_size, shuffle=True, seed=0, num_workers=0, drop_last=True)
        batches = [b for _, b in zip(range(args.batches), loader)]
        n_images = sum(len(y) for _, y in batches)

        base = build_model("none")
        criterion = nn.CrossEntropyLoss(weight=torch.tensor([1.5, 0.75]))

        def timed(fn):
            model = copy.deepcopy(base)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            fn(model, criterion, opt, batches[:1])  # warm-up step, not timed
            t0 = time.perf_counter()
            fn(model, criterion, opt, batches)
            return n_images / (time.perf_counter() - t0)

        project = lambda m, c, o, b: train_one_epoch(m, c, o, b, torch.device("cpu"), progress=True)  # noqa: E731
        bare, ours = [], []
        for _ in range(args.repeats):
            bare.append(timed(bare_loop))
            ours.append(timed(project))
        b, o = statistics.median(bare), statistics.median(ours)

        model = copy.deepcopy(base)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        full_loader = make_loader(ds, args.batch_size, shuffle=True, seed=1, num_workers=1, drop_last=True)
        t0 = time.perf_counter()
        train_one_epoch(
            model,
            criterion,
            opt,
            [x for _, x in zip(range(args.batches), full_loader)],
            torch.device("cpu"),
            progress=False,
        )
        e2e = n_images / (time.perf_counter() - t0)

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, image {args.image_size}px, "
        f"batch {args.batch_size}, {args.batches} batches x {args.repeats} repeats"
    )
    print(f"bare torch loop      : {b:7.2f} images/s  (runs: {', '.join(f'{x:.2f}' for x in bare)})")
    print(f"project train loop   : {o:7.2f} images/s  (runs: {', '.join(f'{x:.2f}' for x in ours)})")
    print(f"project / bare       : {o / b:.3f}   overhead {100 * (1 - o / b):+.1f}%  (target <= 10%)")
    print(f"with decode+augment DataLoader (1 worker, for context): {e2e:.2f} images/s ({e2e / b:.2f}x bare)")


if __name__ == "__main__":
    main()
