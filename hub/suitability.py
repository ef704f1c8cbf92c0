"""The model's own suitability score: how unlike its training images an input is, from its features.

The score is the Mahalanobis distance (Lee et al. 2018, "A simple unified framework for detecting
out-of-distribution samples") of the image's globally pooled features to the nearer class mean of the
training images, with one covariance shared by the classes, at two depths of the network
(``layer3``, 256 features, and ``layer4``, 512). Each layer's distance is divided by its median over
the validation images, so the layers count alike, and the score is the larger of the two: 1.0 is a
typical validation image. The covariance is shrunk towards a multiple of the identity by the
Ledoit-Wolf estimate, so a few hundred training images give an invertible, well-conditioned matrix.

Chosen by measurement (docs/benchmarks.md "Suitability"): on the demo's model, an energy score
(−logsumexp of the logits) separated photographs from chest X-rays worse than chance (AUROC 0.31),
while the Mahalanobis distance did at 0.99–1.00 at every depth; ``layer4`` alone missed a grey
gradient and a photograph that ``layer3`` caught, ``layer3`` alone an upside-down chest film that
``layer4`` caught.

The threshold is fitted on the validation images: a tolerance bound under which, with 90 %
confidence, at least ``target_accept`` (99 %) of in-distribution images fall (:func:`fit_threshold`).
Everything here runs in torch at export time; the ONNX graph
(:class:`OodHead` inside ``hub.onnx_export.CamResNet``) computes the same score, so the app needs
nothing but onnxruntime.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from statistics import NormalDist

import numpy as np
import torch
from torch import nn

from contract.preprocess import PreprocessSpec, preprocess_file

logger = logging.getLogger(__name__)

LAYERS = ("layer3", "layer4")
TARGET_ACCEPT = 0.99
CONFIDENCE = 0.90  # of the tolerance bound that gives the threshold (:func:`fit_threshold`)
MAX_FIT_PER_CLASS = 500  # 1,000 images fit 256- and 512-dimensional statistics well; ~20 s on 2 cores at 224 px


def pooled_features(resnet: nn.Module, image: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The pooled features at each of :data:`LAYERS` ([N, C] each) and the last feature map [N, 512, h, w]."""
    x = resnet.maxpool(resnet.relu(resnet.bn1(resnet.conv1(image))))
    x = resnet.layer2(resnet.layer1(x))
    x3 = resnet.layer3(x)
    x4 = resnet.layer4(x3)
    return [x3.mean(dim=(2, 3)), x4.mean(dim=(2, 3))], x4


@dataclasses.dataclass
class OodStats:
    """Per layer: class means [2, C], the Cholesky factor L of the precision (P = L Lᵀ) [C, C], a scale."""

    means: list[np.ndarray]
    precision_chol: list[np.ndarray]
    scales: list[float]
    shrinkage: list[float]
    n_fit: int

    def card(self) -> dict:
        return {
            "method": "mahalanobis",
            "layers": list(LAYERS),
            "shrinkage": [round(s, 6) for s in self.shrinkage],
            "n_fit": self.n_fit,
        }


class OodHead(nn.Module):
    """The score in the graph: max over layers of min over classes ‖(f − μ_c) L‖² / scale."""

    def __init__(self, stats: OodStats):
        super().__init__()
        for i, (mu, chol, scale) in enumerate(zip(stats.means, stats.precision_chol, stats.scales)):
            chol32 = torch.tensor(chol, dtype=torch.float32)
            self.register_buffer(f"chol{i}", chol32)
            self.register_buffer(f"centres{i}", torch.tensor(mu, dtype=torch.float32) @ chol32)
            self.register_buffer(f"inv_scale{i}", torch.tensor(1.0 / scale, dtype=torch.float32))
        self.n = len(stats.means)

    def forward(self, pooled: list[torch.Tensor]) -> torch.Tensor:
        per_layer = []
        for i in range(self.n):
            z = pooled[i] @ getattr(self, f"chol{i}")  # [N, C]
            d = ((z[:, None, :] - getattr(self, f"centres{i}")[None, :, :]) ** 2).sum(dim=2)  # [N, 2]
            per_layer.append(d.amin(dim=1) * getattr(self, f"inv_scale{i}"))
        return torch.stack(per_layer, dim=0).amax(dim=0)  # [N]


def _features(resnet: nn.Module, files: list[Path], spec: PreprocessSpec, batch: int = 32) -> list[np.ndarray]:
    resnet = resnet.cpu().eval()
    out: list[list[np.ndarray]] = [[] for _ in LAYERS]
    with torch.no_grad():
        for i in range(0, len(files), batch):
            x = torch.from_numpy(np.stack([preprocess_file(f, spec) for f in files[i : i + batch]]))
            pooled, _ = pooled_features(resnet, x)
            for acc, f in zip(out, pooled):
                acc.append(f.numpy().astype(np.float64))
    return [np.concatenate(a) for a in out]


def ledoit_wolf(residuals: np.ndarray) -> tuple[np.ndarray, float]:
    """Shrunk covariance (1 − s)·S + s·(tr S / p)·I of centred rows, s by Ledoit & Wolf (2004)."""
    n, p = residuals.shape
    s = residuals.T @ residuals / n
    mu = float(np.trace(s)) / p
    delta = float(((s - mu * np.eye(p)) ** 2).sum())
    beta = float(((residuals**2).sum(axis=1) ** 2).sum() - n * (s**2).sum()) / n**2
    shrink = 1.0 if delta <= 0 else min(max(beta, 0.0), delta) / delta
    return (1.0 - shrink) * s + shrink * mu * np.eye(p), shrink


def _select(files: list[Path], labels: list[int], per_class: int, seed: int) -> tuple[list[Path], np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.asarray(labels)
    keep = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class] for c in (0, 1)])
    keep.sort()
    return [files[i] for i in keep], y[keep]


def fit_stats(
    resnet: nn.Module,
    spec: PreprocessSpec,
    files: list[Path],
    labels: list[int],
    val_files: list[Path],
    max_per_class: int = MAX_FIT_PER_CLASS,
    seed: int = 0,
) -> OodStats:
    """Class means and shared shrunk covariance on training images; each layer's scale from validation images."""
    files, y = _select(files, labels, max_per_class, seed)
    if min((y == 0).sum(), (y == 1).sum()) < 2:
        raise ValueError("the suitability statistics need at least 2 training images of each class")
    if not val_files:
        raise ValueError("the suitability threshold needs validation images")
    means, chols, shrinks = [], [], []
    for feats in _features(resnet, files, spec):
        mu = np.stack([feats[y == c].mean(axis=0) for c in (0, 1)])
        cov, shrink = ledoit_wolf(np.concatenate([feats[y == c] - mu[c] for c in (0, 1)]))
        means.append(mu)
        chols.append(np.linalg.cholesky(np.linalg.inv(cov)))
        shrinks.append(shrink)
    stats = OodStats(means, chols, [1.0] * len(LAYERS), shrinks, len(files))
    val_per_layer = distances(stats, _features(resnet, val_files, spec))
    stats.scales = [max(float(np.median(d)), 1e-12) for d in val_per_layer]
    return stats


def distances(stats: OodStats, feats: list[np.ndarray]) -> list[np.ndarray]:
    """Per layer, each image's scaled distance to the nearer class mean (float64; the graph computes it in float32)."""
    out = []
    for f, mu, chol, scale in zip(feats, stats.means, stats.precision_chol, stats.scales):
        z = f @ chol
        out.append((((z[:, None, :] - (mu @ chol)[None]) ** 2).sum(axis=2)).min(axis=1) / scale)
    return out


def tolerance_factor(n: int, coverage: float, confidence: float) -> float:
    """k of the one-sided normal tolerance bound mean + k·sd that covers ``coverage`` of the population
    with ``confidence``, for a sample of ``n`` (Natrella 1963, NIST/SEMATECH e-Handbook 7.2.6.3)."""
    zp, zg = NormalDist().inv_cdf(coverage), NormalDist().inv_cdf(confidence)
    a = 1.0 - zg * zg / (2.0 * (n - 1))
    b = zp * zp - zg * zg / n
    return (zp + math.sqrt(max(zp * zp - a * b, 0.0))) / a


def fit_threshold(
    val_scores: np.ndarray, target_accept: float = TARGET_ACCEPT, confidence: float = CONFIDENCE
) -> float:
    """A score threshold that accepts at least ``target_accept`` of in-distribution images, with ``confidence``.

    With a hundred validation images the empirical 99th percentile is one image's score; with thirty
    it does not exist. So the threshold is the larger of the empirical quantile and a one-sided
    tolerance bound of a log-normal fitted to the scores (distances of in-distribution images are
    close to log-normal): with 90 % confidence, at least 99 % of such images score below it. The
    bound widens as the validation set shrinks, instead of stopping at the largest score seen.
    """
    s = np.asarray(val_scores, dtype=np.float64)
    s = s[np.isfinite(s) & (s > 0)]
    if len(s) < 3:
        raise ValueError("the suitability threshold needs at least 3 validation images with finite scores")
    empirical = float(np.quantile(s, target_accept, method="higher"))
    logs = np.log(s)
    k = tolerance_factor(len(s), target_accept, confidence)
    return max(empirical, float(math.exp(logs.mean() + k * logs.std(ddof=1))))
