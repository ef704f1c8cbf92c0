"""Cost of the suitability output: the same ResNet18 graph with and without the ``ood`` output.

    .venv/bin/python bench/suitability.py [--repeats 30] [--size 224]

Both graphs are exported from one random-init ResNet18 (the cost does not depend on the weights);
the OOD statistics are fitted on bundled sample images. Times ``session.run`` only, on prepared
batches (1 and 16 images), interleaved so machine noise hits both alike; prints the median ratio
with / without. Target: at most 1.05 (the OOD head is two matrix products on pooled features,
~0.4 MFLOP against the backbone's 1.8 GFLOP per image at 224 px).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from contract.inference import OnnxModel  # noqa: E402
from contract.package import ONNX_OUTPUTS  # noqa: E402
from contract.preprocess import PreprocessSpec, preprocess_file  # noqa: E402
from hub.model import build_model  # noqa: E402
from hub.onnx_export import to_onnx  # noqa: E402
from hub.suitability import fit_stats  # noqa: E402

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "chest_xray" / "train"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args()
    spec = PreprocessSpec(size=args.size)
    normal, pneumonia = (
        sorted((SAMPLE / "NORMAL").glob("*.jpeg"))[:24],
        sorted((SAMPLE / "PNEUMONIA").glob("*.jpeg"))[:24],
    )
    torch.manual_seed(0)
    resnet = build_model("none").eval()
    stats = fit_stats(resnet, spec, normal + pneumonia, [0] * 24 + [1] * 24, normal[:8] + pneumonia[:8])
    files = normal + pneumonia
    batches = {n: np.stack([preprocess_file(f, spec) for f in files[:n]]) for n in (1, 16)}
    with tempfile.TemporaryDirectory() as tmp:
        models = {
            "without ood": OnnxModel(to_onnx(resnet, 1.0, spec, Path(tmp) / "plain.onnx"), outputs=ONNX_OUTPUTS[:3]),
            "with ood": OnnxModel(to_onnx(resnet, 1.0, spec, Path(tmp) / "ood.onnx", stats)),
        }
        times = {(name, n): [] for name in models for n in batches}
        for m in models.values():  # warm-up
            for b in batches.values():
                m.run(b)
        for _ in range(args.repeats):
            for n, b in batches.items():
                for name, m in models.items():
                    t0 = time.perf_counter()
                    m.run(b)
                    times[(name, n)].append(time.perf_counter() - t0)
    print(f"onnxruntime fp32, {args.size} px, session.run only, median of {args.repeats}")
    for n in batches:
        plain, ood = (statistics.median(times[(k, n)]) for k in models)
        print(
            f"batch {n:2}: without ood {plain * 1000 / n:7.2f} ms/img, with ood {ood * 1000 / n:7.2f} ms/img, "
            f"ratio {ood / plain:.3f} (target <= 1.05)"
        )


if __name__ == "__main__":
    main()
