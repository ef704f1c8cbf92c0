"""Inference speed: torch eager vs onnxruntime fp32 vs onnxruntime int8, on real X-rays.

    .venv/bin/python bench/inference.py [--trained-model DIR] [--repeats 15]

Each timing includes decoding the JPEG and the shared numpy preprocessing, as the app does.
Batch-1 latency is the median over the repeats (interleaved across variants so machine noise
hits them alike); batch-16 throughput is the median over repeats of a 16-image batch.

fp32 is judged against this CPU's measured peak, not against torch: in the same run, one large
fp32 MatMul in onnxruntime (the same MLAS kernels and threads the model's convolutions use) gives
the GFLOP/s this CPU reaches at best, and ``session.run`` on a ready batch of 16 must reach
>= 60 % of it (counting the model's convolution and linear FLOPs). Torch eager is at half the
peak on some CPUs and near it on others, so a ratio to torch says more about torch than about the
app. int8 keeps its target against torch eager: >= 3x where the CPU has fast int8 dot products
(AVX512_VNNI, AVX_VNNI or AMX); on other CPUs the ratio is printed, not judged.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_speed import cpu_features  # noqa: E402

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "chest_xray" / "train"
PEAK_SHARE = 0.60  # session.run fp32 batch-16 GFLOP/s over the measured MatMul peak
INT8_VS_TORCH = 3.0


def model_flops(model: torch.nn.Module, size: int) -> float:
    """FLOPs (2 per multiply-add) of one image through the model's convolutions and linear layers."""
    macs = []

    def count(mod, _inp, out):
        if isinstance(mod, torch.nn.Conv2d):
            k = mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
            macs.append(out.numel() * k)
        elif isinstance(mod, torch.nn.Linear):
            macs.append(out.numel() * mod.in_features)

    hooks = [
        m.register_forward_hook(count) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
    ]
    try:
        with torch.inference_mode():
            model(torch.zeros(1, 3, size, size))
    finally:
        for h in hooks:
            h.remove()
    return 2.0 * sum(macs)


def matmul_peak(tmp: Path, repeats: int, n: int = 1536) -> float:
    """GFLOP/s of one n x n x n fp32 MatMul in onnxruntime, the best of ``repeats`` runs."""
    import onnx
    from onnx import TensorProto, helper

    b = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "peak",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
        [onnx.numpy_helper.from_array(b, "b")],
    )
    path = tmp / "matmul.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    sess = OnnxModel(path, outputs=("c",)).session
    a = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    sess.run(None, {"a": a})
    best = min(_timed(lambda: sess.run(None, {"a": a})) for _ in range(repeats))
    return 2.0 * n**3 / best / 1e9


def fast_int8() -> bool:
    """Whether the CPU has int8 dot-product instructions (AVX512_VNNI / AVX_VNNI, or AMX)."""
    return any(getattr(torch.cpu, p, lambda: False)() for p in ("_is_vnni_supported", "_is_amx_tile_supported"))


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


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
        ready = batch_of(files[:16])
        run_only = []
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
            run_only.append(16 / _timed(lambda: ort32.run(ready)))
        peak = matmul_peak(Path(tmp), args.repeats)

    print(cpu_features())
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
    flops = model_flops(resnet, spec.size)
    ips = statistics.median(run_only)
    share = ips * flops / 1e9 / peak
    print(
        f"\nfp32 against this CPU's peak: model {flops / 1e9:.2f} GFLOP/image; session.run on a ready batch of 16 "
        f"{ips:.1f} img/s = {ips * flops / 1e9:.0f} GFLOP/s; onnxruntime fp32 MatMul peak {peak:.0f} GFLOP/s; "
        f"share {share:.2f} (target >= {PEAK_SHARE:.2f}: {'met' if share >= PEAK_SHARE else 'NOT met'})"
    )
    int8 = statistics.median(thr["onnxruntime int8"]) / base_thr
    if fast_int8():
        verdict = f"target >= {INT8_VS_TORCH:.0f}x: {'met' if int8 >= INT8_VS_TORCH else 'NOT met'}"
    else:
        verdict = "no VNNI/AMX on this CPU: int8 runs on plain AVX2 multiply-adds, not judged"
    print(f"int8 batch-16 vs torch eager {int8:.2f}x ({verdict})")


if __name__ == "__main__":
    main()
