"""Training speed (issue 17): the training step in fp32 vs the mode ``auto`` picks on this machine, the
data loading with and without the decoded-image cache, and (``--quality``) gold metrics of the two.

    .venv/bin/python bench/train_speed.py [--image-size 224] [--batches 6] [--repeats 3] [--large-side 2048]
    .venv/bin/python bench/train_speed.py --quality --kermany ../shared/data/chest_xray \\
        --site-b ../shared/data/site_b --work /tmp/train-speed [--epochs 4] [--image-size 224]

1. Step: ``hub.train.train_one_epoch`` on the same pre-made batches (the bundled sample through the
   project's dataset, augmentation on), from the same weights: the loop as it was (fp32, contiguous),
   fp32 + channels_last, and the mode ``hub.precision.choose`` picks (bf16 autocast + channels_last
   where the CPU has bf16 in hardware). The modes alternate, medians of ``--repeats``. Target: >= 2.5x
   where bf16 hardware exists, >= 1.0x where it does not.
2. Loading: images/s of the training dataset (decode, grey, resize, augment, normalise) over the
   sample, as stored and upscaled to ``--large-side`` px JPEGs (clinic resolution): no cache, the
   cache's first epoch (decode + write) and its later epochs (read).
3. ``--quality``: the two-site pool of ``bench/two_site_loop.py`` (Kermany as ``kermany``, site B's
   films as two ``nih-cc`` batches); ``hub.experiment.train_and_evaluate`` (what the cycle runs) twice
   with the same seed and settings, ``--precision fp32`` and ``auto``; per-site gold metrics with 95 %
   patient-level bootstrap CIs side by side, and each run's training images/s.

The machine's CPU features are printed first; the machine is noisy, so compare ratios within a run.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
SAMPLE = ROOT / "sample_data" / "chest_xray"


def cpu_features() -> str:
    import torch

    from hub.precision import cpu_bf16_hardware
    from hub.train import compute_environment

    env = compute_environment(torch.device("cpu"))
    flags = [
        name
        for name, probe in (
            ("AVX2", "_is_avx2_supported"),
            ("AVX512", "_is_avx512_supported"),
            ("AVX512_BF16", "_is_avx512_bf16_supported"),
            ("AMX", "_is_amx_tile_supported"),
        )
        if getattr(torch.cpu, probe, lambda: False)()
    ]
    return (
        f"{env['cpu']}; {env['threads']} threads; torch kernels {env['cpu_capability']}; "
        f"CPU flags {' '.join(flags) or 'none'}; bf16 hardware: {cpu_bf16_hardware()[1]}"
    )


def step_bench(args) -> None:
    import torch
    from torch import nn

    from hub.config import TrainConfig
    from hub.model import build_model
    from hub.precision import StepMode, choose
    from hub.train import XrayDataset, make_loader, train_one_epoch

    files = sorted((SAMPLE / "train").rglob("*.jpeg"))
    labels = [int(f.parent.name == "PNEUMONIA") for f in files]
    spec = TrainConfig(image_size=args.image_size).spec()
    loader = make_loader(XrayDataset(files, labels, spec, augment=True), args.batch_size, True, drop_last=True)
    batches = [b for _, b in zip(range(args.batches), loader)]
    while len(batches) < args.batches:  # a small sample: reuse its batches
        batches += batches[: args.batches - len(batches)]
    n_images = sum(len(y) for _, y in batches)
    cpu = torch.device("cpu")
    auto = choose(cpu, "auto")
    modes = {
        "fp32 (the loop before)": None,
        "fp32 + channels_last": StepMode("fp32", True, "cpu", "bench"),
        f"auto: {auto.precision}{' + channels_last' if auto.channels_last else ''}": auto,
    }
    torch.manual_seed(0)
    base = build_model("none")
    criterion = nn.CrossEntropyLoss(weight=torch.tensor([1.5, 0.75]))

    def timed(mode) -> float:
        model = copy.deepcopy(base).to(memory_format=mode.memory_format if mode else torch.contiguous_format)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        train_one_epoch(model, criterion, opt, batches[:1], cpu, progress=False, mode=mode)  # warm-up
        t0 = time.perf_counter()
        train_one_epoch(model, criterion, opt, batches, cpu, progress=False, mode=mode)
        return n_images / (time.perf_counter() - t0)

    rates: dict[str, list[float]] = {k: [] for k in modes}
    for r in range(args.repeats):
        names = list(modes)
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate the order
            rates[name].append(timed(modes[name]))
    base_rate = statistics.median(rates["fp32 (the loop before)"])
    print(
        f"\n## Training step: ResNet18, batch {args.batch_size}, {args.image_size} px, {n_images} images x "
        f"{args.repeats} (medians)\n"
    )
    print("| step | images/s | vs the loop before |\n|---|---|---|")
    for name, rs in rates.items():
        print(f"| {name} | {statistics.median(rs):.1f} | {statistics.median(rs) / base_rate:.2f}x |")
    print(f"\nauto picked: {auto.precision}, channels_last {auto.channels_last} ({auto.reason})")


def loading_bench(args) -> None:
    from PIL import Image

    from hub.config import TrainConfig
    from hub.decode_cache import DecodeCache
    from hub.train import XrayDataset

    spec = TrainConfig(image_size=args.image_size).spec()
    files = sorted((SAMPLE / "train").rglob("*.jpeg"))
    with tempfile.TemporaryDirectory() as tmp:
        large = []
        for f in files:
            dst = Path(tmp) / "large" / f.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            img = Image.open(f).convert("L")
            w, h = img.size
            img.resize((args.large_side * w // max(w, h), args.large_side * h // max(w, h)), Image.BICUBIC).save(
                dst, quality=92
            )
            large.append(dst)
        print(f"\n## Loading: training dataset images/s ({len(files)} images, {args.image_size} px, augmented)\n")
        print(
            "| files | no cache | cache, first epoch | cache, later epochs | later / no cache |\n|---|---|---|---|---|"
        )
        for label, group in (
            (f"sample ({Image.open(files[0]).size[1]} px)", files),
            (f"{args.large_side} px JPEG", large),
        ):
            y = [0] * len(group)

            def epoch(ds) -> float:
                t0 = time.perf_counter()
                for i in range(len(ds)):
                    ds[i]
                return len(ds) / (time.perf_counter() - t0)

            plain = epoch(XrayDataset(group, y, spec, augment=True))
            cache = DecodeCache(Path(tmp) / f"cache-{len(label)}")
            cached = XrayDataset(group, y, spec, augment=True, cache=cache)
            first = epoch(cached)
            later = statistics.median(epoch(cached) for _ in range(3))
            print(f"| {label} | {plain:.0f} | {first:.0f} | {later:.0f} | {later / plain:.2f}x |")


def quality_bench(args) -> None:
    import json
    import shutil

    import mlflow
    from site_recipe import build_pool

    from hub.config import HubPaths, TrainConfig
    from hub.evaluate import site_table
    from hub.experiment import train_and_evaluate

    shutil.rmtree(args.work, ignore_errors=True)
    view = build_pool(args.kermany, args.site_b, args.work)
    paths = HubPaths(args.work / "home")
    print(f"\n## Gold metrics, fp32 vs auto, same seed ({args.epochs} epochs, {args.image_size} px, random init)\n")
    print("pool:", view.counts_by_site())
    base = TrainConfig(epochs=args.epochs, image_size=args.image_size, weights="none", patience=args.epochs)
    for precision in ("fp32", "auto"):
        cfg = dataclasses.replace(base, precision=precision)
        t0 = time.perf_counter()
        result = train_and_evaluate(paths, cfg, register=False, run_name=f"precision-{precision}", progress=False)
        run = mlflow.get_run(result.run_id)
        rates = [m.value for m in mlflow.MlflowClient().get_metric_history(result.run_id, "train_images_per_second")]
        info = (result.model_dir / "model_info.json").read_text()
        sites = json.loads(info)["gold_metrics"]["sites"]
        print(
            f"\n### precision {precision} → {run.data.tags['compute.precision']}, channels_last "
            f"{run.data.tags['compute.channels_last']}: training {statistics.median(rates):.1f} images/s "
            f"(median of epochs), run {time.perf_counter() - t0:.0f} s, best epoch {json.loads(info)['best_epoch']}\n"
        )
        print(site_table(sites))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--batches", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--large-side", type=int, default=2048)
    ap.add_argument("--quality", action="store_true", help="train fp32 and auto on the two-site pool, gold per site")
    ap.add_argument("--kermany", type=Path)
    ap.add_argument("--site-b", type=Path)
    ap.add_argument("--work", type=Path)
    ap.add_argument("--epochs", type=int, default=4)
    args = ap.parse_args()
    print("machine:", cpu_features())
    if args.quality:
        if not (args.kermany and args.site_b and args.work):
            ap.error("--quality needs --kermany, --site-b and --work")
        quality_bench(args)
        return
    step_bench(args)
    loading_bench(args)


if __name__ == "__main__":
    main()
