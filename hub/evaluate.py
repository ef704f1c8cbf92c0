"""Metrics, calibration and plots, in numpy: pure functions of labels and scores.

Label 1 is PNEUMONIA (the positive class); ``p`` is the probability of PNEUMONIA.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from contract.package import CLASSES


@dataclasses.dataclass(frozen=True)
class Metrics:
    n: int
    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    accuracy: float
    precision: float
    recall: float  # sensitivity
    specificity: float
    f1: float
    roc_auc: float
    ece: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def confusion(self) -> np.ndarray:
        """Rows = true (NORMAL, PNEUMONIA), columns = predicted."""
        return np.array([[self.tn, self.fp], [self.fn, self.tp]])

    def summary(self) -> str:
        return (
            f"accuracy {self.accuracy:.3f}  precision {self.precision:.3f}  recall {self.recall:.3f}  "
            f"specificity {self.specificity:.3f}  F1 {self.f1:.3f}  ROC AUC {self.roc_auc:.3f}  "
            f"ECE {self.ece:.3f}  (n={self.n}, threshold {self.threshold:.3f})"
        )


def _div(a: float, b: float) -> float:
    return float(a / b) if b else 0.0


def roc_curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False/true positive rates at every distinct score, from the top score down."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=np.float64)
    order = np.argsort(-p, kind="mergesort")
    p, y = p[order], y[order]
    last_of_tie = np.r_[np.nonzero(np.diff(p))[0], len(p) - 1]
    tps = np.cumsum(y)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    pos, neg = y.sum(), len(y) - y.sum()
    tpr = np.r_[0.0, tps / pos] if pos else np.zeros(len(tps) + 1)
    fpr = np.r_[0.0, fps / neg] if neg else np.zeros(len(fps) + 1)
    return fpr, tpr, np.r_[np.inf, p[last_of_tie]]


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half); NaN when only one class is present."""
    y = np.asarray(y).astype(int)
    if len(np.unique(y)) < 2:
        return float("nan")
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.trapezoid(tpr, fpr))


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 15) -> float:
    """ECE over equal-width confidence bins of the predicted class (Guo et al. 2017)."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=np.float64)
    pred = (p >= 0.5).astype(int)
    conf = np.where(pred == 1, p, 1 - p)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs((pred[m] == y[m]).mean() - conf[m].mean())
    return float(ece)


def compute_metrics(
    y: np.ndarray, p: np.ndarray, threshold: float = 0.5, n_bins: int = 15, thresholds: np.ndarray | None = None
) -> Metrics:
    """``thresholds``: one per image (each site's operating point), else ``threshold`` for all."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=np.float64)
    pred = (p >= (threshold if thresholds is None else np.asarray(thresholds))).astype(int)
    tp = int(((pred == 1) & (y == 1)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    precision, recall = _div(tp, tp + fp), _div(tp, tp + fn)
    return Metrics(
        n=len(y),
        threshold=float(threshold),
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        accuracy=_div(tp + tn, len(y)),
        precision=precision,
        recall=recall,
        specificity=_div(tn, tn + fp),
        f1=_div(2 * precision * recall, precision + recall),
        roc_auc=roc_auc(y, p),
        ece=expected_calibration_error(y, p, n_bins),
    )


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    probs = softmax(logits, temperature)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), np.asarray(y).astype(int)], 1e-12, 1))))


def fit_temperature(logits: np.ndarray, y: np.ndarray, lo: float = 0.05, hi: float = 20.0) -> float:
    """Temperature minimising the negative log-likelihood (golden-section search on log T)."""
    a, b = math.log(lo), math.log(hi)
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(logits, y, math.exp(c)), nll(logits, y, math.exp(d))
    for _ in range(80):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(logits, y, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(logits, y, math.exp(d))
    return float(math.exp((a + b) / 2))


def threshold_for_sensitivity(y: np.ndarray, p: np.ndarray, target: float) -> float:
    """The highest threshold whose sensitivity (recall) on (y, p) is at least ``target``."""
    if not 0 < target <= 1:
        raise ValueError(f"Invalid target sensitivity {target}: must be in (0, 1]")
    pos = np.sort(np.asarray(p, dtype=np.float64)[np.asarray(y).astype(int) == 1])[::-1]
    if len(pos) == 0:
        return 0.5
    k = math.ceil(target * len(pos) - 1e-9)
    return float(pos[max(k, 1) - 1])


# ---------------------------------------------------------------------------------------------
# Per site, with confidence intervals
# ---------------------------------------------------------------------------------------------
CI_METRICS = ("accuracy", "recall", "specificity", "roc_auc")
POOLED = "pooled"


def _rates(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    tp, tn = float(((pred == 1) & (y == 1)).sum()), float(((pred == 0) & (y == 0)).sum())
    pos, neg = float((y == 1).sum()), float((y == 0).sum())
    return {
        "accuracy": _div(tp + tn, len(y)),
        "recall": _div(tp, pos),
        "specificity": _div(tn, neg),
    }


def bootstrap_ci(
    y: np.ndarray,
    p: np.ndarray,
    patients: list[str],
    threshold: float | np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, list[float]]:
    """Percentile CIs of accuracy, recall, specificity and ROC AUC, resampling *patients* (with all their
    images) with replacement: images of one patient are not independent, so resampling images would
    give intervals too narrow."""
    y, p = np.asarray(y).astype(int), np.asarray(p, dtype=np.float64)
    thr = np.broadcast_to(np.asarray(threshold, dtype=np.float64), y.shape)
    _, pid = np.unique(np.asarray(patients), return_inverse=True)
    groups = [np.flatnonzero(pid == i) for i in range(pid.max() + 1)] if len(pid) else []
    if not groups:
        return {}
    rng = np.random.default_rng(seed)
    draws = {m: [] for m in CI_METRICS}
    for _ in range(n_boot):
        idx = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        yy, pp = y[idx], p[idx]
        for k, v in _rates(yy, (pp >= thr[idx]).astype(int)).items():
            draws[k].append(v)
        if 0 < yy.sum() < len(yy):
            draws["roc_auc"].append(roc_auc(yy, pp))
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    return {m: [float(np.quantile(v, lo)), float(np.quantile(v, hi))] for m, v in draws.items() if v}


def metrics_by_site(
    y: np.ndarray,
    p: np.ndarray,
    sites: list[str],
    patients: list[str],
    threshold: float | np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, dict]:
    """``{"pooled": {...}, "<site>": {...}}``: each the ``Metrics`` fields, ``patients`` (gold patients per
    class) and ``ci`` (95 % patient-level bootstrap intervals of ``CI_METRICS``). ``threshold``: one for
    all, or one per image (each site's operating point)."""
    y, p = np.asarray(y).astype(int), np.asarray(p, dtype=np.float64)
    thr = np.broadcast_to(np.asarray(threshold, dtype=np.float64), y.shape)
    sites_arr, patients_arr = np.asarray(sites), np.asarray(patients)
    out: dict[str, dict] = {}
    for site in [POOLED, *sorted(set(sites))]:
        m = np.ones(len(y), bool) if site == POOLED else sites_arr == site
        if not m.any():
            continue
        pats = patients_arr[m]
        per_class = {label: len({pt for pt, yy in zip(pats, y[m]) if yy == i}) for i, label in enumerate(CLASSES)}
        t = thr[m]
        out[site] = {
            **compute_metrics(
                y[m], p[m], float(t[0]) if np.all(t == t[0]) else float(np.median(t)), thresholds=t
            ).to_dict(),
            "patients": per_class,
            "ci": bootstrap_ci(y[m], p[m], list(pats), t, n_boot, seed),
        }
    return out


def site_table(by_site: dict[str, dict]) -> str:
    """A Markdown table of ``metrics_by_site``: each metric with its 95 % CI."""
    head = "| site | images | patients (N/P) | " + " | ".join(CI_METRICS) + " |"
    lines = [head, "|" + " --- |" * (3 + len(CI_METRICS))]
    for site, m in by_site.items():
        cells = []
        for k in CI_METRICS:
            ci = m.get("ci", {}).get(k)
            cells.append(f"{m[k]:.3f}" + (f" ({ci[0]:.3f}–{ci[1]:.3f})" if ci else ""))
        pts = m.get("patients", {})
        lines.append(
            f"| {site} | {m['n']} | {pts.get('NORMAL', 0)}/{pts.get('PNEUMONIA', 0)} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(m: Metrics, path: Path, classes=CLASSES) -> Path:
    plt = _plt()
    cm = m.confusion()
    fig, ax = plt.subplots(figsize=(4.2, 3.8), dpi=120)
    ax.imshow(cm, cmap="Blues")
    for i in range(2):
        for j in range(2):
            ax.text(
                j,
                i,
                str(cm[i, j]),
                ha="center",
                va="center",
                color="white" if cm[i, j] > cm.max() / 2 else "black",
                fontsize=14,
            )
    ax.set_xticks([0, 1], classes)
    ax.set_yticks([0, 1], classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix (threshold {m.threshold:.2f})")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_roc(y: np.ndarray, p: np.ndarray, path: Path, operating: Metrics | None = None) -> Path:
    plt = _plt()
    fpr, tpr, _ = roc_curve(y, p)
    fig, ax = plt.subplots(figsize=(4.2, 4.0), dpi=120)
    ax.plot(fpr, tpr, lw=2, label=f"AUC {roc_auc(y, p):.3f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
    if operating is not None:
        ax.plot(
            1 - operating.specificity,
            operating.recall,
            "o",
            color="red",
            label=f"operating point (t={operating.threshold:.2f})",
        )
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title("ROC, gold test set")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_reliability(
    y: np.ndarray, p: np.ndarray, path: Path, n_bins: int = 10, p_uncalibrated: np.ndarray | None = None
) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 4.0), dpi=120)
    edges = np.linspace(0, 1, n_bins + 1)
    for probs, name, style in ((p_uncalibrated, "before scaling", "s--"), (p, "calibrated", "o-")):
        if probs is None:
            continue
        idx = np.minimum(np.digitize(probs, edges) - 1, n_bins - 1)
        xs, ys = [], []
        for b in range(n_bins):
            m = idx == b
            if m.any():
                xs.append(probs[m].mean())
                ys.append(np.asarray(y)[m].mean())
        ax.plot(xs, ys, style, label=f"{name} (ECE {expected_calibration_error(y, probs):.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("predicted P(PNEUMONIA)")
    ax.set_ylabel("observed fraction PNEUMONIA")
    ax.set_title("Reliability, gold test set")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
