"""Training: dataset, loaders, one epoch, prediction, and the fit loop with early stopping.

Reproducible by seed on one machine: the model's initial weights, each epoch's shuffle and
augmentation are drawn from generators seeded by (seed, epoch), so a resumed run continues exactly
as an uninterrupted one would. Across CPUs (AVX2 vs AVX-512 kernels), thread counts and library
versions the floating-point results differ, and a run diverges from there: see
docs/training.md, "Reproducibility".

Before each validation the BatchNorm statistics are re-estimated on un-augmented training images
("precise BN", Wu & Johnson 2021). The running averages kept during training lag behind weights
that change fast: with a few optimizer steps per epoch (a small pool, a new site) they were so far
off that eval-mode predictions, and so the val loss that picks the best epoch, were noise.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from contract.atomic import replacing
from contract.package import sha256_of
from contract.preprocess import PreprocessSpec, normalize, read_image, resize_gray, standardize, to_gray
from hub.config import TrainConfig
from hub.decode_cache import DecodeCache
from hub.model import build_model, set_trainable
from hub.precision import StepMode, choose

logger = logging.getLogger(__name__)


class XrayDataset(Dataset):
    """Images → the model's input, through the shared preprocessing; augmentation after the resize, before
    the intensity standardisation (``contract.preprocess``).

    ``cache``: decode each file once, ever (``hub.decode_cache``); the content digests it is keyed by are
    computed here, once, when the dataset is made (``digests`` when the caller has them).
    """

    def __init__(
        self,
        files: list[Path],
        labels: list[int],
        spec: PreprocessSpec,
        augment: bool = False,
        strength: float = 1.0,
        cache: DecodeCache | None = None,
        digests: list[str] | None = None,
    ):
        self.files, self.labels, self.spec = list(files), list(labels), spec
        self.augment = _augmentation(strength) if augment else None
        self.cache = cache
        self.digests = None
        if cache is not None:
            self.digests = list(digests) if digests is not None else [sha256_of(f) for f in self.files]

    def __len__(self) -> int:
        return len(self.files)

    def subset(self, indices) -> XrayDataset:
        """The images at ``indices``, sharing the cache and digests, without augmentation."""
        return XrayDataset(
            [self.files[i] for i in indices],
            [self.labels[i] for i in indices],
            self.spec,
            cache=self.cache,
            digests=[self.digests[i] for i in indices] if self.digests is not None else None,
        )

    def __getitem__(self, i: int):
        if self.cache is not None:
            gray = self.cache.gray(self.files[i], self.digests[i], self.spec.size)
        else:
            gray = resize_gray(to_gray(read_image(self.files[i], reduce_for=self.spec.size)), self.spec.size)
        if self.augment is not None:
            gray = self.augment(torch.tensor(gray)[None])[0].numpy()
        return torch.from_numpy(normalize(standardize(gray, self.spec.intensity), self.spec)), self.labels[i]


def _augmentation(strength: float = 1.0):
    """Geometry and exposure changes seen between X-ray machines; no flips (anatomy is sided).

    ``strength`` scales every range: 1 is the seed's mild recipe (±7°, ±5 % shift, ±10 % zoom, ±15 %
    brightness and contrast), 2 doubles each.
    """
    from torchvision.transforms import v2

    k = float(strength)
    return v2.Compose(
        [
            v2.RandomAffine(degrees=7 * k, translate=(0.05 * k, 0.05 * k), scale=(1 - 0.1 * k, 1 + 0.1 * k)),
            v2.ColorJitter(brightness=0.15 * k, contrast=0.15 * k),
        ]
    )


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"Invalid device {name!r}: no CUDA GPU here. Supported: auto, cpu, cuda.")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ValueError(f"Invalid device {name!r}. Supported: auto, cpu, cuda, cuda:N.") from None


def compute_environment(device: torch.device) -> dict[str, str]:
    """What the numerics of a run depend on besides its seed and data (recorded on every MLflow run).

    Two runs that differ can be told apart by these: the kernel set torch dispatches to (DEFAULT,
    AVX2, AVX512; ``ATEN_CPU_CAPABILITY`` caps it), the thread count, the CPU, and the versions.
    """
    import platform

    import torchvision

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    env = {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": str(torch.get_num_threads()),
        "cpu": cpu,
        "device": str(device),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 1000 + epoch


def make_loader(
    ds: Dataset,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
    weights: np.ndarray | None = None,
) -> DataLoader:
    """``weights``: draw ``len(ds)`` images with replacement by these weights (seeded) instead of shuffling."""
    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if weights is not None:
        sampler = torch.utils.data.WeightedRandomSampler(
            torch.as_tensor(weights, dtype=torch.double), len(ds), replacement=True, generator=generator
        )
    if num_workers and multiprocessing.current_process().daemon:
        # a daemonic process (a Celery prefork worker, a multiprocessing pool) may not start children:
        # load in this process instead of crashing with "daemonic processes are not allowed to have children"
        logger.warning("Running in a daemonic process: loading images in-process (num_workers %d -> 0)", num_workers)
        num_workers = 0
    return DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=num_workers,
        generator=generator,
        drop_last=drop_last,
    )


def train_one_epoch(
    model: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader,
    device: torch.device,
    desc: str = "train",
    progress: bool | None = None,
    mode: StepMode | None = None,
) -> float:
    """One pass over ``loader``; returns the mean training loss. ``mode``: precision and memory layout
    (``hub.precision``); None is float32, contiguous."""
    mode = mode or StepMode("fp32", False, device.type, "default")  # autocast a no-op, batches as they come
    scaler = mode.scaler()
    model.train()
    total, n = torch.zeros((), device=device), 0
    bar = tqdm(loader, desc=desc, leave=False, disable=not progress if progress is not None else None)
    for images, labels in bar:
        images, labels = mode.batch(images, device), labels.to(device, non_blocking=True)
        with mode.autocast():
            loss = criterion(model(images).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        total += loss.detach() * len(labels)
        n += len(labels)
    return float(total) / max(n, 1)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, loader, device: torch.device, mode: StepMode | None = None) -> None:
    """Replace every BatchNorm layer's running statistics by their average over ``loader``.

    The layers run in training mode (batch statistics, as during training) with a cumulative
    average (momentum ``None``); the weights are not touched. Each layer's momentum is restored.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    try:
        mode = mode or StepMode("fp32", False, device.type, "default")
        for images, _ in loader:
            with mode.autocast():
                model(mode.batch(images, device))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    loader,
    device: torch.device,
    desc: str = "predict",
    progress: bool | None = None,
    mode: StepMode | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Logits (N, 2) and labels (N,) over ``loader``, in its order; float32 unless ``mode`` says otherwise
    (``fit``'s val pass only: calibration and gold scores are float32, as the exported model is)."""
    model.eval()
    outs, ys = [], []
    mode = mode or StepMode("fp32", False, device.type, "default")
    for images, labels in tqdm(loader, desc=desc, leave=False, disable=not progress if progress is not None else None):
        with mode.autocast():
            out = model(mode.batch(images, device))
        outs.append(out.float().cpu())
        ys.append(torch.as_tensor(labels))
    return torch.cat(outs).numpy(), torch.cat(ys).numpy()


@dataclasses.dataclass
class FitResult:
    model: nn.Module  # with the best epoch's weights
    history: list[dict]
    best_epoch: int
    stopped_early: bool
    mode: StepMode | None = None  # the precision and memory layout it trained in


def site_balanced_weights(groups: list[str], labels: list[int]) -> np.ndarray | None:
    """Sampling weights that make every (site, class) cell equally likely, or None for a single site.

    A small new site is not drowned by thousands of the first site's images: with sites A (5,000
    images) and B (200), an epoch draws each about equally, and within each, both classes equally.
    """
    if len(set(groups)) < 2:
        return None
    cells = list(zip(groups, labels))
    count: dict = {}
    for c in cells:
        count[c] = count.get(c, 0) + 1
    w = np.array([1.0 / count[c] for c in cells])
    return w / w.sum()


def _site_losses(criterion, logits: np.ndarray, y: np.ndarray, groups: list[str] | None) -> dict[str, float]:
    """Each site's mean val loss, or {} when there are fewer than two sites."""
    if not groups or len(set(groups)) < 2:
        return {}
    g = np.asarray(groups)
    return {
        site: float(criterion(torch.from_numpy(logits[g == site]), torch.from_numpy(y[g == site]).long()))
        for site in sorted(set(groups))
    }


def _subsample(files: list[Path], labels: list[int], n: int | None, seed: int, groups: list[str] | None = None):
    groups = groups or [""] * len(files)
    if n is None or n >= len(files):
        return files, labels, groups
    rng = np.random.default_rng(seed)
    idx = []
    for c in (0, 1):  # stratified: keep the class ratio
        members = np.flatnonzero(np.asarray(labels) == c)
        k = round(n * len(members) / len(files))
        idx += list(rng.choice(members, size=min(k, len(members)), replace=False))
    idx.sort()
    return [files[i] for i in idx], [labels[i] for i in idx], [groups[i] for i in idx]


def fit(
    config: TrainConfig,
    train: tuple[list[Path], list[int]],
    val: tuple[list[Path], list[int]],
    out_dir: Path,
    resume: bool = False,
    progress: bool | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    groups: list[str] | None = None,
    val_groups: list[str] | None = None,
    cache_dir: Path | None = None,
) -> FitResult:
    """Train with early stopping on val loss; checkpoints ``last.pt`` every epoch in ``out_dir``.

    ``groups``: the site of each training image. With more than one site, each epoch draws its images
    with replacement so that every (site, class) cell is equally likely (``site_balanced_weights``),
    and the loss is unweighted (the sampler already balances the classes).

    ``cache_dir``: where decoded images are kept between epochs and runs (``hub.decode_cache``); None
    decodes every image every epoch.

    ``val_groups``: the site of each val image. With more than one site, the val loss that picks the
    best epoch is the *site average* of each site's val loss (each also in the history as
    ``val_loss_site_<site>``), so that the first site's many val images do not choose the epoch alone.
    """
    device = resolve_device(config.device)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = config.spec()
    train_files, train_labels, train_groups = _subsample(*train, config.max_train_images, config.seed, groups)
    balance = site_balanced_weights(train_groups, train_labels)
    if len(set(train_labels)) < 2:
        raise ValueError("The training split needs images of both classes")
    cache = DecodeCache(cache_dir) if cache_dir is not None else None
    train_ds = XrayDataset(
        train_files, train_labels, spec, augment=config.augment, strength=config.augment_strength, cache=cache
    )
    val_ds = XrayDataset(*val, spec, cache=cache)
    bn_ds = None
    if config.precise_bn_images:
        pick = np.sort(np.random.default_rng(config.seed).permutation(len(train_files))[: config.precise_bn_images])
        bn_ds = train_ds.subset(pick)

    torch.manual_seed(config.seed)
    model = build_model(config.weights)
    set_trainable(model, config.trainable)
    mode = choose(device, config.precision)
    logger.info("Training in %s%s (%s)", mode.precision, ", channels_last" if mode.channels_last else "", mode.reason)
    model.to(device, memory_format=mode.memory_format)
    counts = np.bincount(train_labels, minlength=2)
    weighted = config.class_weights and balance is None
    weight = torch.tensor(len(train_labels) / (2 * counts), dtype=torch.float32) if weighted else None
    criterion = nn.CrossEntropyLoss(weight=weight.to(device) if weight is not None else None)
    val_criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=config.lr, weight_decay=config.weight_decay
    )

    start, history = 1, []
    best = {"val_loss": float("inf"), "epoch": 0, "state": copy.deepcopy(model.state_dict())}
    last = out_dir / "last.pt"
    if resume and last.exists():
        ck = torch.load(last, map_location=device, weights_only=False)
        if ck["config"] != dataclasses.asdict(config) | {"epochs": ck["config"]["epochs"]}:
            logger.warning("Resuming with a different configuration than the checkpoint's")
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        start, history = ck["epoch"] + 1, ck["history"]
        best = ck["best"]
        logger.info("Resumed from %s at epoch %d", last, start)
        if ck.get("stopped_early"):
            start = config.epochs + 1

    stopped_early = False
    for epoch in range(start, config.epochs + 1):
        t0 = time.perf_counter()
        torch.manual_seed(_epoch_seed(config.seed, epoch))
        loader = make_loader(
            train_ds,
            config.batch_size,
            shuffle=True,
            seed=_epoch_seed(config.seed, epoch),
            num_workers=config.num_workers,
            drop_last=len(train_ds) > config.batch_size,
            weights=balance,
        )
        train_loss = train_one_epoch(
            model,
            criterion,
            optimizer,
            loader,
            device,
            desc=f"epoch {epoch}/{config.epochs}",
            progress=progress,
            mode=mode,
        )
        train_s = time.perf_counter() - t0
        if bn_ds is not None:
            recalibrate_batchnorm(
                model, make_loader(bn_ds, config.batch_size, False, num_workers=config.num_workers), device, mode
            )
        logits, y = predict_logits(
            model,
            make_loader(val_ds, 64, False, num_workers=config.num_workers),
            device,
            desc="val",
            progress=progress,
            mode=mode,
        )
        per_site = _site_losses(val_criterion, logits, y, val_groups)
        val_loss = (
            float(np.mean(list(per_site.values())))
            if per_site
            else float(val_criterion(torch.from_numpy(logits), torch.from_numpy(y).long()))
        )
        val_acc = float((logits.argmax(1) == y).mean())
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "epoch_seconds": time.perf_counter() - t0,
            "train_images_per_second": len(loader) * config.batch_size / train_s if config.batch_size else 0.0,
            **{f"val_loss_site_{site}": v for site, v in per_site.items()},
        }
        history.append(row)
        if val_loss < best["val_loss"]:
            best = {"val_loss": val_loss, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
        stopped_early = epoch - best["epoch"] >= config.patience
        checkpoint = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "history": history,
            "best": best,
            "config": dataclasses.asdict(config),
            "stopped_early": stopped_early,
        }
        with replacing(last) as tmp:  # a run killed mid-save resumes from the previous epoch
            torch.save(checkpoint, tmp)
        logger.info(
            "epoch %d: train loss %.4f, val loss %.4f, val acc %.3f (%.0f s)",
            epoch,
            train_loss,
            val_loss,
            val_acc,
            row["epoch_seconds"],
        )
        if on_epoch:
            on_epoch(row)
        if stopped_early:
            logger.info("Early stop: val loss has not improved for %d epochs", config.patience)
            break
    model.load_state_dict(best["state"])
    model.to(memory_format=torch.contiguous_format)  # what export and scoring expect
    return FitResult(model, history, best["epoch"], stopped_early, mode)
