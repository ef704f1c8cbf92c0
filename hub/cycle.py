"""One retraining cycle, as idempotent steps (the Airflow DAG calls these; so can a person).

detect → validate (quarantine bad batches) → ingest (new DVC version) → train challenger →
score challenger and champion on the same gold set → decide → promote → export + publish.

State lives in files under ``PNEUMO_HOME`` so a re-run finds what is already done:
``batches/<id>.json`` (one record per batch: ingested or quarantined) and
``cycles/<dataset-version>.json`` (challenger run, scores, decision, published feed version).
Steps exchange only small values (ids, versions, the dataset ``ref``), as Airflow's XCom should.
Every step that writes runs under the hub lock (``hub.lock``): one writer at a time per hub home.

On workers without a shared disk (Celery) the cycle file is only this worker's cache: what one step
needs from another comes from MLflow (``_state``: the challenger run found by its tags, its
``cycle/scores.json`` and ``decision.json`` artifacts, its review tag, the registry version's feed
version), and the dataset from the DVC remote by its hashes (``hub.dataset.checkout``, given the
``ref`` that ``pending_dataset`` hands on). The feed and its keys stay on one host: promote,
publish and feed refresh run there (docs/deploy.md, "Scaling out").

Longer than most modules: the steps and the two state files they share read best side by side;
each step is a few dozen lines.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from contract.atomic import write_atomic
from hub import alerts, dataset, registry
from hub.config import HubPaths, SettingsError, TrainConfig, env_value
from hub.lock import exclusive, hub_lock
from hub.policy import Policy, decide
from hub.pool import GOLD, DataError, Pool, Rejection, ValidationReport

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class CycleConfig:
    incoming: Path
    feed_dir: Path
    keys_dir: Path
    train: TrainConfig
    policy: Policy
    warm_start: bool = False  # challenger starts from the champion's weights instead of train.weights
    settle_seconds: float = 60.0  # a batch folder must be unchanged this long before it is read
    target_sensitivity: float = 0.95

    @classmethod
    def from_env(cls, paths: HubPaths, overrides: dict | None = None, base: dict | None = None) -> CycleConfig:
        """Defaults, the hub settings file (``hub.settings``, written on first use; or ``base``, the
        settings as the run read them on the hub's host), env vars, then ``overrides`` (a run's
        settings): later wins. Any bad value is a ``SettingsError``."""
        if not isinstance(overrides or {}, dict):
            raise SettingsError(f"Cycle settings must be a JSON object, got {overrides!r}")
        from hub import settings

        o = json.loads(json.dumps(base)) if base is not None else settings.load(paths)
        policy = o.pop("policy", {})
        if env_value("PNEUMO_POLICY"):
            try:
                policy.update(json.loads(Path(env_value("PNEUMO_POLICY")).read_text()))
            except (OSError, ValueError) as e:
                raise SettingsError(
                    f"PNEUMO_POLICY={env_value('PNEUMO_POLICY')}: not a readable JSON file: {e}"
                ) from None
        for key, var in (("warm_start", "PNEUMO_WARM_START"), ("settle_seconds", "PNEUMO_BATCH_SETTLE_SECONDS")):
            if env_value(var) is not None:
                o[key] = env_value(var)
        run = dict(overrides or {})
        policy.update(run.pop("policy", None) or {})
        o.update(run)
        where = f"the hub settings {settings.settings_file(paths)}, the environment or the run's settings"
        try:
            train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
            train = TrainConfig(**{k: o.pop(k) for k in list(o) if k in train_fields}).validate()
            warm = o.pop("warm_start", False)
            if isinstance(warm, str):
                warm = warm.strip().lower() in ("1", "true", "yes")
            cfg = cls(
                incoming=Path(o.pop("incoming", paths.incoming)),
                feed_dir=Path(o.pop("feed_dir", paths.feed)),
                keys_dir=Path(o.pop("keys_dir", paths.feed_keys)),
                train=train,
                policy=Policy.from_dict(policy),
                warm_start=bool(warm),
                settle_seconds=float(o.pop("settle_seconds", 60.0)),
                target_sensitivity=float(o.pop("target_sensitivity", 0.95)),
            )
        except SettingsError:
            raise
        except (ValueError, TypeError) as e:
            raise SettingsError(f"{e} (from {where})") from None
        if o:
            raise SettingsError(f"Unknown cycle settings {sorted(o)} (from {where})")
        return cfg


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _batch_record(paths: HubPaths, batch: str) -> Path:
    return paths.batches / f"{batch}.json"


def _cycle_file(paths: HubPaths, version: str) -> Path:
    return paths.cycles / f"{version}.json"


def read_cycle(paths: HubPaths, version: str) -> dict:
    f = _cycle_file(paths, version)
    return json.loads(f.read_text()) if f.exists() else {"dataset_version": version}


def _write_cycle(paths: HubPaths, version: str, **updates) -> dict:
    state = read_cycle(paths, version) | updates
    write_atomic(_cycle_file(paths, version), json.dumps(state, indent=2, default=float))
    return state


def _challenger_run(version: str):
    """The newest finished challenger run trained on ``version`` (MLflow, found by its tags), or None."""
    import mlflow

    from hub.config import EXPERIMENT

    runs = mlflow.search_runs(
        experiment_names=[EXPERIMENT],
        filter_string=f"tags.`cycle.role` = 'challenger' and tags.`cycle.dataset_version` = '{version}' "
        "and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0] if runs else None


def _state(paths: HubPaths, version: str, need: str) -> dict:
    """The cycle state, completed from MLflow when this home lacks ``need``: what a step on another
    worker recorded (the challenger run and version, scores, decision, review, feed version)."""
    state = read_cycle(paths, version)
    if need in state:
        return state
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from hub.tracking import setup

    setup(paths)
    run = _challenger_run(version)
    if run is None:
        return state
    run_id, tags, found = run.info.run_id, run.data.tags, {}
    found["challenger_run_id"] = run_id
    ref = registry.version_of_run(run_id)
    if ref:
        found["challenger_version"] = ref.version
    client = MlflowClient()
    with tempfile.TemporaryDirectory() as tmp:
        names = {a.path for a in client.list_artifacts(run_id)} | {
            a.path for a in client.list_artifacts(run_id, "cycle")
        }
        if "cycle/scores.json" in names and "scores" not in state:
            f = paths.cycles / version / "scores.json"
            f.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(client.download_artifacts(run_id, "cycle/scores.json", tmp), f)
            found["scores"] = str(f)
        if "decision.json" in names and "promotion.decision" in tags:
            found["decision"] = json.loads(Path(client.download_artifacts(run_id, "decision.json", tmp)).read_text())
    if "promotion.review" in tags:
        verdict, _, by = tags["promotion.review"].partition(" by ")
        found["review"] = {"approved": verdict == "approved", "by": by, "at": None}
    if ref:
        try:
            mv = client.get_model_version(registry.REGISTERED_MODEL, ref.version)
        except MlflowException:
            mv = None
        if mv is not None and mv.tags.get("pneumoscan.feed_version"):
            found |= {
                "promoted_version": ref.version,
                "feed_version": int(mv.tags["pneumoscan.feed_version"]),
                "feed_version_recorded": True,
            }
    updates = {k: v for k, v in found.items() if k not in state}
    if updates:
        logger.info("Cycle %s: %s recorded elsewhere, read from MLflow", version, ", ".join(sorted(updates)))
        state = _write_cycle(paths, version, **updates)
    return state


def _dataset(paths: HubPaths, ds: str | dict) -> str:
    """The version of ``ds``, made present in this home: a ``ref`` (a DAG run) is fetched when this
    worker lacks it; a plain version (a run on one machine) must be the pool's."""
    if isinstance(ds, dict):
        return dataset.checkout(paths, ds).version
    have = dataset.training_view(paths).version
    if have != ds:
        raise DataError(f"The pool is dataset {have} now, not {ds}: a batch was imported meanwhile; run again")
    return ds


# ---------------------------------------------------------------------------------------------
def detect(paths: HubPaths, cfg: CycleConfig) -> list[str]:
    """Batch folders in the incoming folder that were never processed and have settled."""
    if not cfg.incoming.is_dir():
        return []
    found = []
    for d in sorted(p for p in cfg.incoming.iterdir() if p.is_dir() and not p.name.startswith(".")):
        record = _batch_record(paths, d.name)
        if record.exists():
            if json.loads(record.read_text()).get("status") != "quarantined":
                logger.warning("Batch name %s was already ingested; rename the folder to add it as new data", d.name)
                continue
            logger.info("Batch %s was quarantined before and is back: validating it again", d.name)
        newest = max((f.stat().st_mtime for f in d.rglob("*")), default=d.stat().st_mtime)
        if time.time() - newest < cfg.settle_seconds:
            logger.info("Batch %s is still being written; next run", d.name)
            continue
        found.append(d.name)
    return found


REANNOUNCE = timedelta(hours=1)


def announce(paths: HubPaths, cfg: CycleConfig, now: float | None = None) -> list[str]:
    """The settled batches ``incoming_watch`` should announce now: each once, not on every look.

    A batch stays in the incoming folder until its run ingests it, so the watch would otherwise
    queue one more run per look while the first is still training. A batch still there an hour
    after it was announced (its run failed before ingest) is announced again; one that left the
    folder is forgotten, so a quarantined batch put back is new again.
    """
    now = time.time() if now is None else now
    record = paths.batches / ".announced.json"  # no batch is named so: detect skips dot-folders
    try:
        seen = json.loads(record.read_text()) if record.exists() else {}
    except (OSError, ValueError):
        seen = {}  # a damaged record only costs one extra announcement
    found = detect(paths, cfg)
    fresh = [b for b in found if now - float(seen.get(b, 0)) >= REANNOUNCE.total_seconds()]
    present = {d.name for d in cfg.incoming.iterdir()} if cfg.incoming.is_dir() else set()
    kept = {b: t for b, t in seen.items() if b in present} | {b: now for b in fresh}
    if kept != seen:
        paths.batches.mkdir(parents=True, exist_ok=True)
        write_atomic(record, json.dumps(kept, indent=2))
    return fresh


@exclusive
def validate(paths: HubPaths, cfg: CycleConfig, batches: list[str]) -> list[str]:
    """Validate each batch; quarantine a bad one (any rejected file, or nothing usable) with its report.

    Returns the good batches. Exact duplicates (of the pool or within the batch, same label) are
    skipped without making a batch bad; the same image under two labels does. A batch whose images
    are all in the pool already *from this batch* (an ingest killed half-way, then retried) is good:
    its ingest finishes the DVC version instead of the batch being quarantined as "nothing new".
    """
    good = []
    sources = {e.source for e in Pool(paths.pool).entries()}
    for b in batches:
        src = cfg.incoming / b
        if not src.is_dir():  # handled by an earlier try of this step
            continue
        try:
            report = dataset.validate_folder(src, paths)
        except DataError as e:  # not a batch at all (no label folders): quarantine, don't block the queue
            report = ValidationReport(src, "batch", [], [Rejection(".", str(e))], [])
        problems = [r for r in report.rejected if not r.reason.startswith("duplicate of")]
        if report.accepted and not problems:
            good.append(b)
            continue
        if not problems and b in sources:
            # Its images are in the pool already, put there by an ingest of this very batch that was
            # killed before it finished (in `dvc add`, say): not "nothing new" but work to finish.
            logger.warning("Batch %s was partly ingested by an interrupted run; finishing its ingest", b)
            good.append(b)
            continue
        dest = paths.quarantine / b
        if dest.exists():  # the same name was quarantined before: keep that copy beside it
            dest.rename(dest.with_name(f"{b}.{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"))
        dest.parent.mkdir(parents=True, exist_ok=True)
        report_file = dest.parent / f"{b}.report.json"
        report.write(report_file)
        write_atomic(
            _batch_record(paths, b),
            json.dumps(
                {
                    "batch": b,
                    "status": "quarantined",
                    "at": _now(),
                    "accepted": len(report.accepted),
                    "problems": [dataclasses.asdict(r) for r in problems][:200],
                    "report": str(report_file),
                },
                indent=2,
            ),
        )
        shutil.move(str(src), dest)
        logger.warning("Quarantined batch %s: %d problem files (report in %s)", b, len(problems), dest.parent)
        alerts.notify(
            "batch_quarantined",
            f"batch {b} quarantined: {len(problems)} problem file(s), {len(report.accepted)} usable; nothing "
            f"entered the pool (report: {report_file})",
            batch=b,
            problems=[f"{r.rel}: {r.reason}" for r in problems][:20],
            report=str(report_file),
        )
    return good


@exclusive
def ingest(paths: HubPaths, cfg: CycleConfig, batches: list[str]) -> str:
    """Add good batches to the pool (one DVC version), make the split if there is none; return the dataset version."""
    for b in batches:
        src, done = cfg.incoming / b, paths.ingested / b
        if src.is_dir():  # not yet moved: (re-)import; images already in the pool are skipped
            dataset.import_data(paths, src, source=b)
            if done.exists():
                done.rename(done.with_name(f"{b}.{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"))
            done.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(src), done)
        write_atomic(
            _batch_record(paths, b),
            json.dumps({"batch": b, "status": "ingested", "at": _now(), "folder": str(done)}, indent=2),
        )
    dataset.split(paths)
    version = dataset.training_view(paths).version
    if batches:  # which batches made this version: what a refused challenger points at (``judge``)
        earlier = read_cycle(paths, version).get("batches", [])
        _write_cycle(paths, version, batches=sorted({*earlier, *batches}))
    return version


@exclusive
def retract_batch(paths: HubPaths, batch: str, reason: str, by: str) -> dict:
    """Quarantine an ingested batch after the fact (``data retract``): its images out of the pool as a
    new DVC version (``dataset.retract``), its folder from ``ingested/`` to ``quarantine/``, its record
    marked retracted, an alert. The next cycle trains on the pool without it."""
    done = dataset.retract(paths, batch, reason, by)
    src, dest = paths.ingested / batch, paths.quarantine / batch
    if src.is_dir():
        if dest.exists():
            dest = dest.with_name(f"{batch}.{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(src), dest)
    record = _batch_record(paths, batch)
    earlier = json.loads(record.read_text()) if record.exists() else {"batch": batch}
    if earlier.get("status") != "retracted" or src.is_dir():
        write_atomic(
            record,
            json.dumps(
                earlier
                | {
                    "status": "retracted",
                    "retracted": {k: done[k] for k in ("at", "by", "reason", "dataset_before", "dataset_after")},
                    "folder": str(dest) if dest.is_dir() else earlier.get("folder"),
                },
                indent=2,
            ),
        )
    if not done["already_retracted"]:
        alerts.notify(
            "batch_retracted",
            f"batch {batch} retracted by {by}: {done['images']} image(s) out of the pool ({reason}); "
            f"dataset {done['dataset_before']} -> {done['dataset_after']}",
            batch=batch,
            **{k: done[k] for k in ("images", "gold_images", "dataset_before", "dataset_after")},
        )
    return done | {"folder": str(dest) if dest.is_dir() else None}


def pending(paths: HubPaths) -> str | None:
    """The dataset version that still needs a challenger judged (or a promotion published), if any."""
    try:
        version = dataset.training_view(paths).version
    except DataError as e:  # empty pool, no split yet, an empty split
        logger.info("Nothing to train on yet: %s", e)
        return None
    state = _state(paths, version, "decision")
    if "decision" not in state:
        return version
    if state["decision"]["promote"] and "feed_version" not in _state(paths, version, "feed_version"):
        if _state(paths, version, "review").get("review", {}).get("approved", True):
            return version  # promoted but not yet published (a person's "Reject" ends it: ``review``)
    return None


def pending_dataset(paths: HubPaths) -> dict | None:
    """``pending`` as the DAG hands it on: the dataset ``ref`` (pushed to the DVC remote, if set) and
    the hub settings automatic runs use, read here once so that every worker trains and judges the same."""
    from hub import settings

    version = pending(paths)
    if version is None:
        return None
    return dataset.ref(paths) | {"settings": settings.load(paths)}


@exclusive
def train_challenger(paths: HubPaths, cfg: CycleConfig, version: str | dict) -> str:
    """Train (or find the already trained) challenger for ``version`` (or a dataset ``ref``, fetched
    here when this worker lacks it); returns its MLflow run id."""
    from hub.experiment import train_and_evaluate
    from hub.tracking import resolve_trained_model, setup

    ref, version = version, version["version"] if isinstance(version, dict) else version
    state = _state(paths, version, "challenger_run_id")
    if state.get("challenger_run_id"):
        return state["challenger_run_id"]
    _dataset(paths, ref)
    setup(paths)
    train_cfg = cfg.train
    champion = registry.get_alias(registry.CHAMPION)
    if not (cfg.warm_start and champion):  # before an MLflow run exists: no FAILED run for a setting
        from hub.settings import check_weights, settings_file

        check_weights(train_cfg.weights, f"in {settings_file(paths)} or the run's settings")
    with tempfile.TemporaryDirectory() as tmp:
        if cfg.warm_start and champion:
            trained = resolve_trained_model(f"runs:/{champion.run_id}", Path(tmp))
            train_cfg = dataclasses.replace(train_cfg, weights=str(trained / "model.pt"))
        result = train_and_evaluate(
            paths,
            train_cfg,
            cfg.target_sensitivity,
            run_name=f"challenger-{version}",
            tags={
                "cycle.role": "challenger",
                "cycle.dataset_version": version,
                "cycle.warm_start_from": champion.version if cfg.warm_start and champion else "",
            },
        )
    _write_cycle(paths, version, challenger_run_id=result.run_id, challenger_version=result.registered_version)
    return result.run_id


@exclusive
def score_pair(paths: HubPaths, version: str | dict) -> str:
    """Score challenger and current champion on the same gold set in one go; returns the scores file
    (also logged on the challenger run as ``cycle/scores.json``, for the steps on other workers)."""
    import mlflow

    from hub.experiment import log_by_site, score
    from hub.tracking import resolve_trained_model, setup
    from hub.trained_model import TrainedModel

    ref, version = version, version["version"] if isinstance(version, dict) else version
    state = _state(paths, version, "scores")
    if state.get("scores"):
        return state["scores"]
    setup(paths)
    _dataset(paths, ref)
    view = dataset.training_view(paths)
    run_id = state["challenger_run_id"]
    champion = registry.get_alias(registry.CHAMPION)
    out: dict = {"gold_images": len(view.assigned[GOLD])}
    with tempfile.TemporaryDirectory() as tmp:
        for role, ref in (("challenger", run_id), ("champion", champion.run_id if champion else None)):
            if ref is None:
                out[role] = None
                continue
            s = score(TrainedModel.load(resolve_trained_model(f"runs:/{ref}", Path(tmp) / role)), view, GOLD)
            out[role] = {
                "metrics": {**s.metrics.to_dict(), "sites": s.by_site()},
                "correct": s.correct().tolist(),
                "run_id": ref,
            }
    out["champion_version"] = champion.version if champion else None
    if out["champion"]:
        with mlflow.start_run(run_id=run_id):
            mlflow.log_metrics(
                {f"champion_gold_{k}": v for k, v in out["champion"]["metrics"].items() if k not in ("n", "sites")}
            )
            log_by_site(out["champion"]["metrics"]["sites"], prefix="champion_gold")
            mlflow.set_tag("cycle.champion_version", champion.version)
    f = paths.cycles / version / "scores.json"
    f.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(f, json.dumps(out))
    mlflow.MlflowClient().log_artifact(run_id, str(f), "cycle")
    _write_cycle(paths, version, scores=str(f))
    return str(f)


@exclusive
def judge(paths: HubPaths, cfg: CycleConfig, version: str) -> bool:
    """Apply the promotion policy; record decision, inputs and reasons on the run and in the cycle file."""
    from hub.tracking import setup

    state = _state(paths, version, "decision")
    if "decision" in state:
        return state["decision"]["promote"]
    scores = json.loads(Path(state["scores"]).read_text())
    champ = scores["champion"]
    paired = None
    if champ:
        paired = (np.array(champ["correct"]), np.array(scores["challenger"]["correct"]))
    d = decide(scores["challenger"]["metrics"], champ["metrics"] if champ else None, cfg.policy, paired).to_dict()
    d["inputs"]["champion_version"] = scores["champion_version"]
    setup(paths)
    registry.record_decision(state["challenger_run_id"], d)
    if state.get("challenger_version"):
        registry.describe_version(
            state["challenger_version"],
            decision="promoted" if d["promote"] else "rejected",
            dataset_version=version,
            reasons="; ".join(d["reasons"]),
        )
    _write_cycle(paths, version, decision=d)
    logger.info("Decision for %s: %s — %s", version, "PROMOTE" if d["promote"] else "reject", "; ".join(d["reasons"]))
    if not d["promote"]:
        batches = state.get("batches") or read_cycle(paths, version).get("batches") or []
        hint = (
            f" New batch(es) in this version: {', '.join(batches)}; if one of them is wrong (flipped or bad labels), "
            "`pneumo-hub data retract <batch> --reason ...` takes its images out of the pool for every later training."
            if batches
            else ""
        )
        alerts.notify(
            "challenger_rejected",
            f"the challenger trained on {version} was not promoted: " + "; ".join(d["reasons"])[:800] + hint,
            batches=batches,
            dataset_version=version,
            run_id=state["challenger_run_id"],
            registered_version=state.get("challenger_version"),
            reasons=d["reasons"],
        )
    return d["promote"]


APPROVE, REJECT = "Approve", "Reject"  # the approval step's options (Airflow's ApprovalOperator spelling)


def approval_request(paths: HubPaths, version: str) -> str:
    """What a reviewer reads before a promotion is approved (Markdown: the optional approval step's
    body): the policy's reasons and both models' gold figures per site, with 95 % CIs."""
    from hub.evaluate import site_table

    state = read_cycle(paths, version)
    scores = json.loads(Path(state["scores"]).read_text())
    lines = [
        f"The promotion policy would promote the challenger trained on dataset `{version}` "
        f"(MLflow run `{state['challenger_run_id']}`, registered version {state.get('challenger_version')}):",
        "",
        *[f"- {r}" for r in state["decision"]["reasons"]],
        "",
        "**Challenger** on the gold set (95 % patient-level bootstrap CIs):",
        "",
        site_table(scores["challenger"]["metrics"]["sites"]),
    ]
    if scores.get("champion"):
        lines += [
            "",
            f"**Champion** (registered version {scores['champion_version']}) on the same gold set:",
            "",
            site_table(scores["champion"]["metrics"]["sites"]),
        ]
    lines += [
        "",
        f"**{APPROVE}** moves `champion` to the challenger and publishes it to every clinic's feed. "
        f"**{REJECT}**, or no answer in time, keeps the current champion and the feed as they are.",
    ]
    return "\n".join(lines)


@exclusive
def review(paths: HubPaths, cfg: CycleConfig, version: str, answer: dict) -> bool:
    """Record a person's answer to the approval step (``answer``: the HITL result: ``chosen_options``,
    ``responded_by_user``, ``responded_at``) on the cycle, the run and the registry version; True to
    promote. A rejected promotion is final for this dataset version (``pending`` stops offering it)."""
    from hub.tracking import setup

    state = _state(paths, version, "review")
    if "review" in state:  # a retry of this step, here or on another worker
        return state["review"]["approved"]
    chosen = list(answer.get("chosen_options") or [])
    user = answer.get("responded_by_user") or {}
    by = (user.get("name") or user.get("id")) if isinstance(user, dict) else str(user)
    by = by or "nobody (no answer in time: the default)"
    approved = chosen == [APPROVE]
    at = answer.get("responded_at")
    rec = {"approved": approved, "by": by, "at": at.isoformat() if hasattr(at, "isoformat") else str(at or _now())}
    setup(paths)
    from mlflow import MlflowClient

    MlflowClient().set_tag(
        state["challenger_run_id"], "promotion.review", f"{'approved' if approved else 'rejected'} by {by}"
    )
    if state.get("challenger_version"):
        registry.describe_version(
            state["challenger_version"],
            decision="promoted" if approved else "rejected",
            review=f"{'approved' if approved else 'rejected'} by {by}",
        )
    _write_cycle(paths, version, review=rec)
    logger.info("Promotion of %s %s by %s", version, "approved" if approved else "rejected", by)
    if not approved:
        alerts.notify(
            "promotion_rejected",
            f"the promotion of the challenger trained on {version} was rejected by {by}: the champion and "
            "the feed are unchanged",
            dataset_version=version,
            run_id=state["challenger_run_id"],
            registered_version=state.get("challenger_version"),
        )
    return approved


def _feed_champion(cfg: CycleConfig) -> int | None:
    from feed import repository as feed

    if not (cfg.feed_dir / "metadata" / "root.json").exists():
        passphrase = feed.env_passphrase()
        logger.warning(
            "No feed at %s: creating one with online keys in %s and the root key at %s, %s; take it offline",
            cfg.feed_dir,
            cfg.keys_dir,
            feed.offline_key_path(cfg.keys_dir),
            f"encrypted with ${feed.ROOT_PASSPHRASE_ENV}"
            if passphrase
            else f"NOT encrypted (set ${feed.ROOT_PASSPHRASE_ENV}, or run `pneumo-hub feed protect-root`)",
        )
        feed.init_feed(cfg.feed_dir, cfg.keys_dir, root_passphrase=passphrase)
    return feed.status(cfg.feed_dir).champion


def export_version(paths: HubPaths, cfg: CycleConfig, registered_version: str) -> Path:
    """Export + verify ``registered_version`` as the next feed version's package (refused → exception)."""
    from hub.config import REGISTERED_MODEL
    from hub.export import export_model

    new = (_feed_champion(cfg) or 0) + 1
    out = paths.packages / str(new)
    if out.exists():
        card = json.loads((out / "model.json").read_text()) if (out / "model.json").exists() else {}
        if str(card.get("provenance", {}).get("registered_version")) == str(registered_version):
            return out  # built by an earlier try
        shutil.rmtree(out)  # an unpublished leftover of another model
    return export_model(
        paths, f"models:/{REGISTERED_MODEL}/{registered_version}", new, out, registered_version=str(registered_version)
    )


def _publish(cfg: CycleConfig, package: Path) -> int:
    """Publish a built package unless the feed already has it (or something newer): idempotent."""
    from feed import repository as feed

    version = int(json.loads((package / "model.json").read_text())["version"])
    if (_feed_champion(cfg) or 0) < version:
        feed.publish(cfg.feed_dir, cfg.keys_dir, package)
    return version


@exclusive
def promote(paths: HubPaths, cfg: CycleConfig, version: str | dict) -> str:
    """Export and verify the challenger first; only then move ``champion`` to it (old one → ``previous``).

    A model whose export is refused is never promoted. Runs on the feed's host: the package it builds
    is what ``publish_step`` signs.
    """
    from hub.tracking import setup

    ref, version = version, version["version"] if isinstance(version, dict) else version
    setup(paths)
    _dataset(paths, ref)  # the export verifies on this dataset's gold images
    state = _state(paths, version, "challenger_run_id")
    ref = registry.version_of_run(state["challenger_run_id"])
    if ref is None:
        raise RuntimeError(f"Challenger run {state['challenger_run_id']} has no registered model version")
    package = export_version(paths, cfg, ref.version)
    registry.set_champion(ref.version)
    _write_cycle(paths, version, promoted_version=ref.version, package=str(package))
    return ref.version


@exclusive
def publish_step(paths: HubPaths, cfg: CycleConfig, version: str) -> int:
    """Publish the verified package of the promoted challenger (idempotent)."""
    state = _state(paths, version, "feed_version")
    if "feed_version" not in state:
        package = Path(state.get("package") or paths.packages / "?")
        if not (package / "model.json").exists():
            raise RuntimeError(
                f"The verified package of {version} is not in this hub home ({package}): promote and publish "
                "must run on the feed's host (PNEUMO_HUB_QUEUE, docs/deploy.md)"
            )
        state = _write_cycle(paths, version, feed_version=_publish(cfg, package))
    if not state.get("feed_version_recorded"):
        from hub.tracking import setup

        setup(paths)
        registry.describe_version(state["promoted_version"], feed_version=state["feed_version"])
        state = _write_cycle(paths, version, feed_version_recorded=True)
    return state["feed_version"]


@exclusive
def rollback(paths: HubPaths, cfg: CycleConfig) -> tuple[str, int]:
    """Give ``champion`` back to the ``previous`` model and republish it as a new feed version.

    The package is built and verified before any alias moves, and the intent is recorded first,
    so a retry after a failure finishes the same rollback instead of swapping back.
    """
    from hub.tracking import setup

    setup(paths)
    intent_file = paths.rollback_intent
    intent = json.loads(intent_file.read_text()) if intent_file.exists() else None
    if intent is None or intent.get("done"):
        prev, champ = registry.get_alias(registry.PREVIOUS), registry.get_alias(registry.CHAMPION)
        if prev is None or champ is None:
            raise ValueError("Nothing to roll back to: the registry has no 'previous' model")
        intent = {"to": prev.version, "from": champ.version, "at": _now(), "done": False}
        write_atomic(intent_file, json.dumps(intent))
    package = export_version(paths, cfg, intent["to"])
    if registry.get_alias(registry.CHAMPION).version != intent["to"]:
        registry.rollback()
    feed_version = _publish(cfg, package)
    registry.describe_version(
        intent["to"], feed_version=feed_version, rollback=f"champion again from {intent['at']} (was {intent['from']})"
    )
    write_atomic(intent_file, json.dumps({**intent, "done": True, "feed_version": feed_version}))
    return intent["to"], feed_version


ROOT_WARNING = timedelta(days=30)


def refresh_feed(paths: HubPaths, cfg: CycleConfig, now: datetime | None = None) -> dict | None:
    """Re-sign the feed's snapshot and timestamp (targets when half-spent): the daily ``feed_refresh``.

    Clients refuse a timestamp older than its expiry (7 days), so a hub that publishes nothing for a
    week would otherwise cut every clinic off. Returns the feed status as a dict, or None when there
    is no feed yet. Root cannot be renewed here (its key is offline): it only warns, from 30 days out.
    """
    from feed import repository as feed

    if not (cfg.feed_dir / "metadata" / "root.json").exists():
        logger.info("No feed at %s yet: nothing to refresh", cfg.feed_dir)
        return None
    st = feed.refresh(cfg.feed_dir, cfg.keys_dir, now=now)
    root_left = st.roles["root"].expires - (now or datetime.now(UTC))
    if root_left < ROOT_WARNING:
        alerts.notify(
            "feed_root_expiring",
            f"the feed's root expires in {root_left.days} days ({st.roles['root'].expires:%Y-%m-%d}): re-sign it "
            "with the offline key (pneumo-hub feed refresh --root-key ...) or every clinic refuses the feed",
            expires=st.roles["root"].expires.isoformat(),
        )
    logger.info(
        "Feed refreshed: timestamp v%d expires %s", st.roles["timestamp"].version, st.roles["timestamp"].expires
    )
    return st.to_dict()


def run_once(paths: HubPaths, cfg: CycleConfig) -> dict:
    """All steps in order, as the DAG runs them; returns what happened, with each step's seconds.

    Holds the hub lock throughout (``hub.lock``): a second cycle is refused with ``HubBusy``."""
    with hub_lock(paths.home, "pneumo-hub cycle"):
        return _run_steps(paths, cfg)


def _run_steps(paths: HubPaths, cfg: CycleConfig) -> dict:
    out: dict = {"seconds": {}}

    def step(name, fn, *args):
        t0 = time.perf_counter()
        result = fn(*args)
        out["seconds"][name] = round(time.perf_counter() - t0, 1)
        return result

    out["batches"] = step("detect", detect, paths, cfg)
    out["good"] = step("validate", validate, paths, cfg, out["batches"])
    out["quarantined"] = [b for b in out["batches"] if b not in out["good"]]
    if out["good"]:
        out["dataset_version"] = step("ingest", ingest, paths, cfg, out["good"])
    version = pending(paths)
    if version is None:
        return out
    out["dataset_version"] = version
    out["run_id"] = step("train", train_challenger, paths, cfg, version)
    step("score", score_pair, paths, version)
    out["promote"] = step("judge", judge, paths, cfg, version)
    out["decision"] = read_cycle(paths, version)["decision"]
    if out["promote"]:
        out["registered_version"] = step("promote (export+verify)", promote, paths, cfg, version)
        out["feed_version"] = step("publish", publish_step, paths, cfg, version)
    return out


def _rates(m: dict) -> str:
    return f"{m['accuracy']:.3f} / {m['recall']:.3f} / {m['specificity']:.3f} / {m['roc_auc']:.3f}"


def describe(summary: dict) -> str:
    """A person-readable account of one cycle."""
    lines = [f"new batches: {', '.join(summary['batches']) or 'none'}"]
    if summary.get("seconds"):
        lines.append("seconds by step: " + ", ".join(f"{k} {v:.1f}" for k, v in summary["seconds"].items()))
    if summary.get("quarantined"):
        lines.append(
            f"quarantined (see {', '.join(summary['quarantined'])} under quarantine/): "
            f"{', '.join(summary['quarantined'])}"
        )
    if "run_id" not in summary:
        lines.append("nothing new to train on: the cycle ended early and changed nothing")
        return "\n".join(lines)
    d = summary["decision"]
    champ = d["inputs"].get("champion")
    ch = d["inputs"]["challenger"]
    lines.append(f"dataset {summary['dataset_version']}: challenger run {summary['run_id']}")
    lines.append(
        f"  challenger on gold: accuracy {ch['accuracy']:.3f}, recall {ch['recall']:.3f}, "
        f"specificity {ch['specificity']:.3f}, ROC AUC {ch['roc_auc']:.3f}"
    )
    if champ:
        lines.append(
            f"  champion v{d['inputs']['champion_version']} on the same gold set: accuracy "
            f"{champ['accuracy']:.3f}, recall {champ['recall']:.3f}, specificity {champ['specificity']:.3f}"
        )
    sites = {k: v for k, v in (ch.get("sites") or {}).items() if k != "pooled"}
    if len(sites) > 1:
        lines.append("  per site on gold (accuracy / recall / specificity / ROC AUC):")
        for site, m in sorted(sites.items()):
            pts = m.get("patients", {})
            row = f"    {site} ({pts.get('NORMAL', 0)}+{pts.get('PNEUMONIA', 0)} patients): challenger {_rates(m)}"
            cm = ((champ or {}).get("sites") or {}).get(site)
            lines.append(row + (f"; champion {_rates(cm)}" if cm else ""))
    lines += [f"  {r}" for r in d["reasons"]]
    if summary["promote"]:
        lines.append(
            f"PROMOTED: registered version {summary['registered_version']} is champion, "
            f"published as feed version {summary['feed_version']}"
        )
    else:
        lines.append("REJECTED: the champion and the feed are unchanged")
    return "\n".join(lines)
