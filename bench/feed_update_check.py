"""What an app's update check costs on the wire: requests and bytes against a real local feed server.

    .venv/bin/python bench/feed_update_check.py [--model-mb 45] [--repeats 5]

Builds a throw-away feed (init + publish version 1 with a model file of --model-mb random bytes
standing in for a real ONNX model), serves it on loopback and counts what the server sends (file
bodies; HTTP headers and error pages not included) for: the first check of a fresh install, the
download, a check when nothing changed (expect timestamp.json plus a 404 probe for a newer
root), a check after version 2 is published, and its download. The no-change time is the median
of --repeats checks.
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
from contract.package import write_card  # noqa: E402
from feed.client import FeedClient  # noqa: E402
from feed.repository import init_feed, publish  # noqa: E402
from feed.server import serve  # noqa: E402


def make_package(directory: Path, version: int, model_bytes: int) -> Path:
    directory.mkdir(parents=True)
    (directory / "model.onnx").write_bytes(os.urandom(model_bytes))  # stands in for the real ONNX model
    (directory / "reference.png").write_bytes(os.urandom(30_000))
    write_card(
        directory,
        {
            "version": version,
            "created_at": "2026-11-27T12:00:00+00:00",
            "classes": ["NORMAL", "PNEUMONIA"],
            "metrics": {
                "accuracy": 0.93,
                "recall": 0.97,
                "specificity": 0.88,
                "f1": 0.94,
                "roc_auc": 0.97,
                "ece": 0.02,
                "n": 802,
                "threshold": 0.42,
            },
            "preprocessing": {"size": 224},
            "threshold": 0.42,
            "temperature": 1.31,
            "onnx": {"opset": 20},
            "files": {"model.onnx": {}, "reference.png": {}},
            "reference": {"file": "reference.png"},
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
    ap.add_argument("--repeats", type=int, default=5, help="repeats of the no-change check for the median time (5)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        feed, keys = tmp / "feed", tmp / "keys"
        root = init_feed(feed, keys)
        size = int(args.model_mb * 1e6)
        publish(feed, keys, make_package(tmp / "p1", 1, size))
        with serve(feed, "127.0.0.1", 0) as server:
            app = FeedClient(root, server.url, tmp / "app")
            print(
                f"feed at {server.url}, model.onnx {size:,} B; bytes = file bodies sent (no headers, no error pages)\n"
            )
            print(row("first check (fresh install)", *measure(server, app.check)))
            print(row("download v1", *measure(server, app.download)))
            runs = [measure(server, app.check) for _ in range(args.repeats)]
            reqs = runs[0][0]
            print(row("check, nothing changed", reqs, statistics.median(s for _, s in runs)))
            publish(feed, keys, make_package(tmp / "p2", 2, size))
            print(row("check after v2 published", *measure(server, app.check)))
            print(row("download v2", *measure(server, lambda: app.download(installed_version=1))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
