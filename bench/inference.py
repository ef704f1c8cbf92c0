"""Inference speed: torch eager vs onnxruntime fp32 vs onnxruntime int8, on real X-rays.

    .venv/bin/python bench/inference.py [--trained-model DIR] [--repeats 15]

Each timing includes decoding the JPEG and the shared numpy preprocessing, as the app does.
Batch-1 latency is the median over the repeats (interleaved across variants so machine noise
hits them alike); batch-16 throughput is the median over repeats of a 16-image batch.
Targets on the 2-core CPU: fp32 >= 1.9x torch eager, int8 >= 3x torch eager.
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
from contract.preprocess import PreprocessSpec, preprocess_file  # noqa: E402
from hub.model import build_model  # noqa: E402
from hub.onnx_export import CamResNet, to_onnx  # noqa: E402
from hub.quantize import quantize_int8  # noqa: E402
from hub.suitability import fit_stats  # noqa: E402

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "chest_xray" / "train"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--trained-model", type=Path, help="a hub trained-model folder (default: random-init ResNet18, same cost)"
    )
    ap.add_argument("--images", type=Path, default=SAMPLE, help="folder of X-rays (searched recursively)")
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    spec = PreprocessSpec(size=224)
    files = sorted(args.images.rglob("*.jpeg"))[:64]
    if args.trained_model:
        from hub.trained_model import TrainedModel

        b = TrainedModel.load(args.trained_model)
        resnet, temperature = b.model, b.info.temperature
    else:
        torch.manual_seed(0)
        resnet, temperature = build_model("none").eval(), 1.0
    # the graph the app runs, OOD output included (statistics from sample images; the cost is the same)
    every = sorted(args.images.rglob("*.jpeg"))
    ood = fit_stats(resnet, spec, every, [int(f.parent.name == "PNEUMONIA") for f in every], files[:16])
    eager = CamResNet(resnet, temperature, ood).eval()

    with tempfile.TemporaryDirectory() as tmp:
        fp32 = to_onnx(resnet, temperature, spec, Path(tmp) / "model.onnx", ood)
        int8 = quantize_int8(fp32, Path(tmp) / "model.int8.onnx", files[:64], spec)
        ort32, ort8 = OnnxModel(fp32), OnnxModel(int8)

        def batch_of(fs):
            return np.stack([preprocess_file(f, spec) for f in fs])

        def torch_run(fs):
            with torch.inference_mode():
                return eager(torch.from_numpy(batch_of(fs)))

        variants = {
            "torch eager fp32": torch_run,
            "onnxruntime fp32": lambda fs: ort32.run(batch_of(fs)),
            "onnxruntime int8": lambda fs: ort8.run(batch_of(fs)),
        }
        lat = {k: [] for k in variants}
        thr = {k: [] for k in variants}
        for fn in variants.values():  # warm-up
            fn(files[:1]), fn(files[:16])
        for r in range(args.repeats):
            one = [files[r % len(files)]]
            sixteen = [files[(r * 16 + i) % len(files)] for i in range(16)]
            for name, fn in variants.items():
                t0 = time.perf_counter()
                fn(one)
                lat[name].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                fn(sixteen)
                thr[name].append(16 / (time.perf_counter() - t0))

    base_lat = statistics.median(lat["torch eager fp32"])
    base_thr = statistics.median(thr["torch eager fp32"])
    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads); {len(files)} real images, decode + "
        f"preprocess included; median of {args.repeats}"
    )
    print(f"{'variant':18} {'batch-1 ms':>10} {'speed-up':>9} {'batch-16 img/s':>15} {'speed-up':>9}")
    for name in variants:
        ms, ips = 1000 * statistics.median(lat[name]), statistics.median(thr[name])
        print(f"{name:18} {ms:10.1f} {base_lat * 1000 / ms:8.2f}x {ips:15.1f} {ips / base_thr:8.2f}x")
    print("targets: onnxruntime fp32 >= 1.9x, int8 >= 3x torch eager")


if __name__ == "__main__":
    main()
