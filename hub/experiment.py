"""One tracked training run: train, calibrate on val, score on gold, record and register in MLflow
(``train_and_evaluate``); ``evaluate_model`` scores a registered model the same way. Called by the
CLI and by the cycle's train step."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from hub import evaluate as ev
from hub import tracking
from hub.config import HubPaths, TrainConfig
from hub.dataset import TrainingView, training_view
from hub.pool import GOLD, TRAIN, VAL, Pool
from hub.precision import choose
from hub.train import XrayDataset, compute_environment, fit, make_loader, predict_logits, resolve_device
from hub.trained_model import ARTIFACT, ModelInfo, TrainedModel

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Scores:
    """Calibrated gold-test scores of one model: metrics plus what the plots need."""

    metrics: ev.Metrics
    y: np.ndarray
    p: np.ndarray
    p_uncalibrated: np.ndarray
    sites: list[str] = dataclasses.field(default_factory=list)
    patients: list[str] = dataclasses.field(default_factory=list)
    thresholds: np.ndarray | None = None  # per image: its site's operating threshold (``p`` at its temperature)

    def by_site(self) -> dict[str, dict]:
        """Metrics pooled and per site, with patient-level bootstrap 95 % CIs (``evaluate.metrics_by_site``)."""
        thr = self.metrics.threshold if self.thresholds is None else self.thresholds
        return ev.metrics_by_site(self.y, self.p, self.sites, self.patients, thr)

    def correct(self) -> np.ndarray:
        thr = self.metrics.threshold if self.thresholds is None else self.thresholds
        return (self.p >= thr) == self.y

    def write_plots(self, directory: Path) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        return [
            ev.plot_confusion(self.metrics, directory / "confusion_matrix.png"),
            ev.plot_roc(self.y, self.p, directory / "roc.png", operating=self.metrics),
            ev.plot_reliability(self.y, self.p, directory / "reliability.png", p_uncalibrated=self.p_uncalibrated),
        ]


def _compute_tags(device: str, precision: str | None = None) -> dict[str, str]:
    """The compute environment; with ``precision`` (a training run) also the step mode it resolves to."""
    dev = resolve_device(device)
    env = compute_environment(dev) | (choose(dev, precision).record() if precision else {})
    return {f"compute.{k}": v for k, v in env.items()}


def score(
    trained: TrainedModel, view: TrainingView, split: str = GOLD, num_workers: int = 0, device: str = "auto"
) -> Scores:
    """Score a model on a split of the view with its own preprocessing, temperature and threshold."""
    dev = resolve_device(device)
    ds = XrayDataset(*view.files(split), trained.info.spec)
    logits, y = predict_logits(
        trained.model.to(dev), make_loader(ds, 64, False, num_workers=num_workers), dev, desc=split
    )
    p = ev.softmax(logits, trained.info.temperature)[:, 1]
    sites = view.sites(split)
    # each site at its own operating point, as the app of that site runs the model (pooled where none)
    thresholds = np.full(len(y), trained.info.threshold)
    for site, op in (trained.info.operating_points or {}).items():
        m = np.asarray(sites) == site
        if m.any():
            p[m] = ev.softmax(logits[m], op["temperature"])[:, 1]
            thresholds[m] = op["threshold"]
    return Scores(
        ev.compute_metrics(y, p, trained.info.threshold, thresholds=thresholds),
        y,
        p,
        ev.softmax(logits)[:, 1],
        sites,
        view.patients(split),
        thresholds,
    )


def log_by_site(by_site: dict[str, dict], prefix: str = "gold") -> None:
    """Per-site metrics and CI bounds into the active MLflow run, and the table as an artifact."""
    import mlflow

    values = {}
    for site, m in by_site.items():
        if site == ev.POOLED:
            continue
        key = re.sub(r"[^A-Za-z0-9_.-]", "_", site)
        for k in ev.CI_METRICS:
            values[f"{prefix}_site_{key}_{k}"] = m[k]
            if k in m["ci"]:
                values[f"{prefix}_site_{key}_{k}_ci_low"], values[f"{prefix}_site_{key}_{k}_ci_high"] = m["ci"][k]
        values[f"{prefix}_site_{key}_n"] = m["n"]
    mlflow.log_metrics(values)
    mlflow.log_dict(by_site, f"{prefix}_by_site.json")
    mlflow.log_text(ev.site_table(by_site) + "\n", f"{prefix}_by_site.md")


MIN_SITE_VAL = 10  # validation images of each class a site needs for its own operating point


def calibrate(
    model, view: TrainingView, config: TrainConfig, target_sensitivity: float
) -> tuple[float, float, dict[str, dict]]:
    """Temperature and operating threshold fitted on the val split, pooled and per site.

    Per site only where the pool has more than one site and that site has ``MIN_SITE_VAL`` validation
    images of each class: ``{site: {"temperature", "threshold", "n_val"}}``; other sites use the pooled
    pair (the app says which it used).
    """
    dev = resolve_device(config.device)
    ds = XrayDataset(*view.files(VAL), config.spec())
    logits, y = predict_logits(model, make_loader(ds, 64, False, num_workers=config.num_workers), dev, desc="val")
    temperature = ev.fit_temperature(logits, y)
    threshold = ev.threshold_for_sensitivity(y, ev.softmax(logits, temperature)[:, 1], target_sensitivity)
    sites = np.asarray(view.sites(VAL))
    points: dict[str, dict] = {}
    if len(set(sites)) > 1:
        for site in sorted(set(sites)):
            m = sites == site
            if min((y[m] == 0).sum(), (y[m] == 1).sum()) < MIN_SITE_VAL:
                continue
            t = ev.fit_temperature(logits[m], y[m])
            th = ev.threshold_for_sensitivity(y[m], ev.softmax(logits[m], t)[:, 1], target_sensitivity)
            points[site] = {"temperature": t, "threshold": th, "n_val": int(m.sum())}
    return temperature, threshold, points


@dataclasses.dataclass
class TrainResult:
    run_id: str
    model_dir: Path  # the trained model's folder (hub.trained_model)
    metrics: ev.Metrics
    registered_version: str | None
    dataset_version: str
    seconds: dict


def train_and_evaluate(
    paths: HubPaths,
    config: TrainConfig,
    target_sensitivity: float = 0.95,
    register: bool = True,
    resume: bool = False,
    run_name: str | None = None,
    progress: bool | None = None,
    tags: dict | None = None,
) -> TrainResult:
    """Train on the pool's train split, calibrate on val, score on gold, record it all in MLflow."""
    import mlflow

    view = training_view(paths)
    experiment_id = tracking.setup(paths)
    ckpt_dir = paths.runs / f"{view.version}-seed{config.seed}"
    t0 = time.perf_counter()
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.set_tags(
            {
                "mlflow.source.git.commit": tracking.git_commit() or "unknown",
                "dataset_version": view.version,
                "dvc_md5": view.dvc_hash or "",
                # lineage: batches taken out of the pool before this version (``data retract``)
                "dataset_retracted": ",".join(sorted({r.source for r in Pool(view.pool_root).retractions()})),
                "checkpoint_dir": str(ckpt_dir),
                **(tags or {}),
                **_compute_tags(config.device, config.precision),
            }
        )
        mlflow.log_params(
            {
                **dataclasses.asdict(config),
                "target_sensitivity": target_sensitivity,
                "site_balanced_sampling": len(set(view.sites(TRAIN))) > 1,
                **{f"n_{s}_{lbl}": n for s, c in view.counts().items() for lbl, n in c.items()},
            }
        )
        tracking.log_dataset(view)
        result = fit(
            config,
            view.files(TRAIN),
            view.files(VAL),
            ckpt_dir,
            resume=resume,
            progress=progress,
            on_epoch=lambda row: mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"]),
            groups=view.sites(TRAIN),
            val_groups=view.sites(VAL),
            cache_dir=paths.decoded,
        )
        t_train = time.perf_counter() - t0
        temperature, threshold, operating_points = calibrate(result.model, view, config, target_sensitivity)
        info = ModelInfo(
            preprocess=config.spec().to_dict(),
            temperature=temperature,
            threshold=threshold,
            target_sensitivity=target_sensitivity,
            dataset_version=view.version,
            dvc_hash=view.dvc_hash,
            train_config=dataclasses.asdict(config),
            best_epoch=result.best_epoch,
            mlflow_run_id=run.info.run_id,
            operating_points=operating_points,
        )
        trained = TrainedModel(result.model.cpu().eval(), info)
        scores = score(trained, view, GOLD, num_workers=config.num_workers, device=config.device)
        by_site = scores.by_site()
        info.gold_metrics = {**scores.metrics.to_dict(), "sites": by_site}
        model_dir = trained.save(ckpt_dir / ARTIFACT)
        mlflow.log_metrics({f"gold_{k}": v for k, v in scores.metrics.to_dict().items() if k != "n"})
        log_by_site(by_site)
        mlflow.log_dict(operating_points, "operating_points.json")
        mlflow.log_metrics(
            {
                "temperature": temperature,
                "threshold": threshold,
                "best_epoch": result.best_epoch,
                "gold_ece_uncalibrated": ev.expected_calibration_error(scores.y, scores.p_uncalibrated),
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            for png in scores.write_plots(Path(tmp)):
                mlflow.log_artifact(str(png), "plots")
            (Path(tmp) / "history.json").write_text(json.dumps(result.history, indent=1))
            mlflow.log_artifact(str(Path(tmp) / "history.json"))
        mlflow.log_artifacts(str(model_dir), ARTIFACT)
        example = np.zeros((1, 3, config.image_size, config.image_size), dtype=np.float32)
        version = tracking.log_model(trained.model, example, registered=register)
        seconds = {"train": t_train, "total": time.perf_counter() - t0}
        mlflow.log_metrics({"seconds_train": seconds["train"], "seconds_total": seconds["total"]})
    return TrainResult(run.info.run_id, model_dir, scores.metrics, version, view.version, seconds)


def evaluate_model(
    paths: HubPaths, model: str, log: bool = True, out_dir: Path | None = None
) -> tuple[ev.Metrics, str | None]:
    """Score a trained model (folder or MLflow URI) on the gold set; optionally record it as an MLflow run."""
    import mlflow

    view = training_view(paths)
    experiment_id = tracking.setup(paths)
    with tempfile.TemporaryDirectory() as tmp:
        trained = TrainedModel.load(tracking.resolve_trained_model(model, Path(tmp)))
        scores = score(trained, view, GOLD)
        if out_dir:
            scores.write_plots(out_dir)
        if not log:
            return scores.metrics, None
        with mlflow.start_run(experiment_id=experiment_id, run_name="evaluate") as run:
            mlflow.set_tags(
                {
                    "evaluated_model": model,
                    "dataset_version": view.version,
                    "mlflow.source.git.commit": tracking.git_commit() or "unknown",
                    **_compute_tags("auto"),
                }
            )
            tracking.log_dataset(view, context="evaluation")
            mlflow.log_metrics({f"gold_{k}": v for k, v in scores.metrics.to_dict().items() if k != "n"})
            log_by_site(scores.by_site())
            for png in scores.write_plots(Path(tmp) / "plots"):
                mlflow.log_artifact(str(png), "plots")
        return scores.metrics, run.info.run_id
