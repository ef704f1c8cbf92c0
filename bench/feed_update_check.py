"""What an app's update check costs on the wire: requests and bytes against a real local feed server.

    .venv/bin/python bench/feed_update_check.py [--model-mb 45] [--int8-mb 11.3] [--repeats 5]

Builds a throw-away feed (init + publish version 1 with an fp32 model file of --model-mb random
bytes and an int8 one of --int8-mb, standing in for real ONNX models), serves it on loopback and
counts what the server sends (file bodies; HTTP headers and error pages not included) for: the
first check of a fresh install, the download by an fp32 app and by an int8 app, a check when
nothing changed (expect timestamp.json plus a 404 probe for a newer root), a check after version
2 is published, its download by each variant, and an int8 app switched to fp32 (only the fp32
file comes). The no-change time is the median of --repeats checks. Ends with the bytes per
update by variant against the whole package (issue 17: an int8 clinic at most 13 MB).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from contract.package import VARIANTS, write_card  # noqa: E402
from feed.client import FeedClient  # noqa: E402
from feed.repository import init_feed, publish  # noqa: E402
from feed.server import serve  # noqa: E402


def make_package(directory: Path, version: int, model_bytes: int, int8_bytes: int) -> Path:
    directory.mkdir(parents=True)
    (directory / "model.onnx").write_bytes(os.urandom(model_bytes))  # stands in for the real ONNX model
    (directory / "model.int8.onnx").write_bytes(os.urandom(int8_bytes))
    (directory / "reference.png").write_bytes(os.urandom(30_000))
    write_card(
        directory,
        {
            "version": version,
            "created_at": "2026-11-27T12:00:00+00:00",
            "classes": ["NORMAL", "PNEUMONIA"],
            "metrics": {"accuracy": 0.93, "recall": 0.97, "specificity": 0.88, "roc_auc": 0.97, "n": 802},
            "preprocessing": {"size": 224, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
            "threshold": 0.42,
            "temperature": 1.31,
            "onnx": {"opset": 20, "input": "image", "outputs": ["logits", "probabilities", "cam", "ood"]},
            "suitability": {"method": "mahalanobis", "threshold": 2.1, "threshold_int8": 2.2},
            "cam": {"units": "log-odds", "scale": 3.0},
            "files": {"model.onnx": {}, "model.int8.onnx": {}, "reference.png": {}},
            "reference": {"file": "reference.png", "probabilities": [0.12, 0.88], "ood": 0.9, "tolerance": 1e-4},
        },
    )
    return directory


def measure(server, fn) -> tuple[list, float]:
    server.clear_requests()
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    return server.wait_idle(), seconds


def row(label: str, requests: list, seconds: float) -> str:
    ok = [r for r in requests if r.status == 200]
    names = [re.sub(r"^[0-9a-f]{64}\.", "", r.path.rsplit("/", 1)[-1]) for r in requests]  # drop the hash prefix
    paths = ", ".join(n + ("" if r.status == 200 else f" ({r.status})") for n, r in zip(names, requests))
    return (
        f"{label:<28} {len(requests):>4} req {len(ok):>4} ok {sum(r.bytes for r in requests):>11,} B "
        f"{seconds * 1000:>8.1f} ms   {paths}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-mb", type=float, default=45.0, help="size of the stand-in model.onnx (45 MB ≈ ResNet18)")
    ap.add_argument("--int8-mb", type=float, default=11.3, help="size of the stand-in model.int8.onnx (11.3 MB)")
    ap.add_argument("--repeats", type=int, default=5, help="repeats of the no-change check for the median time (5)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        feed, keys = tmp / "feed", tmp / "keys"
        root = init_feed(feed, keys)
        size, int8 = int(args.model_mb * 1e6), int(args.int8_mb * 1e6)
        publish(feed, keys, make_package(tmp / "p1", 1, size, int8))
        whole = sum(p.stat().st_size for p in (tmp / "p1").iterdir())
        with serve(feed, "127.0.0.1", 0) as server:
            apps = {v: FeedClient(root, server.url, tmp / f"app-{v}") for v in VARIANTS}
            print(
                f"feed at {server.url}, model.onnx {size:,} B, model.int8.onnx {int8:,} B, whole package "
                f"{whole:,} B; bytes = file bodies sent (no headers, no error pages)\n"
            )
            print(row("first check (fresh install)", *measure(server, apps["fp32"].check)))
            for v, app in apps.items():
                print(row(f"download v1 as {v}", *measure(server, lambda app=app, v=v: app.download(variant=v))))
            runs = [measure(server, apps["fp32"].check) for _ in range(args.repeats)]
            reqs = runs[0][0]
            print(row("check, nothing changed", reqs, statistics.median(s for _, s in runs)))
            publish(feed, keys, make_package(tmp / "p2", 2, size, int8))
            print(row("check after v2 published", *measure(server, lambda: apps["fp32"].check(1))))
            update = {}
            for v, app in apps.items():
                reqs, seconds = measure(server, lambda app=app, v=v: app.download(installed_version=1, variant=v))
                update[v] = sum(r.bytes for r in reqs)
                print(row(f"download v2 as {v}", reqs, seconds))
            print(row("int8 app switched to fp32", *measure(server, lambda: apps["int8"].download(1, "fp32"))))
        print("\nbytes per update (v1 -> v2), by variant, against the whole package:")
        for v, sent in update.items():
            print(f"  {v:<5} {sent / 1e6:7.2f} MB  = {sent / whole:.2f} x the whole package ({whole / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
