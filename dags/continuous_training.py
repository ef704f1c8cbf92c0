"""
### continuous_training — PneumoScan's self-improving loop

Runs daily at 02:00 UTC and whenever `incoming_watch` sees a new batch in `PNEUMO_INCOMING`.

detect → validate (bad batch → quarantine + report, pool untouched) → ingest (new DVC version)
→ has_work (ends here when there is no new data) → train challenger → score challenger and
champion on the same gold set → judge (promotion policy; decision recorded in MLflow)
→ [approve: with `PNEUMO_REQUIRE_APPROVAL` set, a person answers Approve/Reject in Airflow's UI
(Browse › Required Actions) or REST API, shown the policy's reasons and both models' per-site gold figures;
no answer in `PNEUMO_APPROVAL_HOURS` (72) is Reject; the answer and who gave it are recorded on the
run and the registry version] → promote (ONNX export, verification and int8 first; only a verified model moves the
`champion` alias, the old one keeps `previous`) → publish (signed feed).

Every task is a thin call into `hub.cycle`, idempotent: state lives under `PNEUMO_HOME`, so
re-running a run changes nothing that is already done. Automatic runs (asset or cron) train and
judge with the hub settings file, `$PNEUMO_HOME/hub.toml` (`hub.settings`); a run triggered by
hand can override any of them (e.g. `epochs`, `image_size`, `weights`, `warm_start`, `policy`)
in its conf as `settings`. A bad setting (a `SettingsError`: unknown key, wrong type, ImageNet
weights that are not there) fails its task at once, without retries, saying what to change.
A task that fails for good, a quarantined batch and a refused challenger raise an alert
(`hub.alerts`: logged, and POSTed to `PNEUMO_ALERT_WEBHOOK` when set).

Beyond one machine (Celery) no task reads a file another worker wrote: `has_work` hands on the
dataset version (fingerprint + DVC hashes, pushed to `PNEUMO_DVC_REMOTE`) and the hub settings it
read; `train`/`score` fetch that exact version (a different one is an error), models and scores
travel by MLflow. Tasks that need the incoming folder, the feed and its keys run on the
`PNEUMO_HUB_QUEUE`, training on `PNEUMO_TRAIN_QUEUE` (docs/deploy.md, "Scaling out").
"""

from __future__ import annotations

import functools
import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

INCOMING = Asset("pneumoscan-incoming", uri="file:///pneumoscan/incoming")


def _ctx(data: dict | None = None):
    """Hub paths and cycle settings for this run (imports stay inside tasks: parsing stays fast).

    ``data``: the dataset ``has_work`` handed on, with the hub settings as read on the hub's host, so a
    worker elsewhere trains and judges with the same ones (its own hub.toml is not read)."""
    from airflow.sdk import get_current_context

    from hub.config import HubPaths, telemetry_off
    from hub.cycle import CycleConfig

    telemetry_off()
    paths = HubPaths.from_env()
    from hub.home import check

    check(paths)  # a copied home (HomeMoved, a SettingsError) fails at once instead of writing into the original
    run_settings = dict(get_current_context()["params"].get("settings") or {})
    return paths, CycleConfig.from_env(paths, run_settings, base=(data or {}).get("settings"))


def _fail_fast(fn):
    """A ``SettingsError`` or ``DataError`` (a bad setting; a dataset that is not what the run is for)
    fails the task at once: retrying only delays the same failure."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from airflow.sdk.exceptions import AirflowFailException

        from hub.config import SettingsError
        from hub.pool import DataError

        try:
            return fn(*args, **kwargs)
        except SettingsError as e:
            raise AirflowFailException(f"{e} -- not retried: fix the setting, then trigger a new run") from e
        except DataError as e:
            raise AirflowFailException(f"{e} -- not retried") from e

    return wrapper


def _alert_failure(context) -> None:
    """``on_failure_callback``: a task failed for good → ``hub.alerts`` (log, and the webhook if set)."""
    from hub.alerts import task_failed

    task_failed(context)


def _default_args(retry_delay: timedelta) -> dict:
    """Retries (``PNEUMO_DAG_RETRIES``, default 2: for what a retry can fix) and the failure alert."""
    return {
        "retries": int(os.environ.get("PNEUMO_DAG_RETRIES") or "2"),
        "retry_delay": retry_delay,
        "on_failure_callback": _alert_failure,
    }


def _on(role: str) -> dict:
    """The Celery queue of a task (``queue=``): ``hub`` tasks need the incoming folder, the pool's
    newest version, the feed and its keys (``PNEUMO_HUB_QUEUE``, the one worker on that host);
    ``train`` tasks fetch their dataset and models (``PNEUMO_TRAIN_QUEUE``, e.g. GPU workers). Unset:
    Airflow's default queue (any worker; the only one with the Local executor)."""
    queue = os.environ.get({"hub": "PNEUMO_HUB_QUEUE", "train": "PNEUMO_TRAIN_QUEUE"}[role], "").strip()
    return {"queue": queue} if queue else {}


def _approval() -> timedelta | None:
    """``PNEUMO_REQUIRE_APPROVAL`` (off by default): a person approves each promotion in Airflow's UI
    (or REST API) before the alias moves; the answer is awaited ``PNEUMO_APPROVAL_HOURS`` (default
    72), then taken as Reject. Returns that wait, or None when promotions need no approval."""
    if (os.environ.get("PNEUMO_REQUIRE_APPROVAL") or "").strip().lower() not in ("1", "true", "yes", "on"):
        return None
    try:
        hours = float(os.environ.get("PNEUMO_APPROVAL_HOURS") or "72")
    except ValueError:
        hours = 72.0
    return timedelta(hours=max(hours, 0.01))


def _watch_interval() -> timedelta:
    """How often ``incoming_watch`` looks for batches: ``PNEUMO_WATCH_SECONDS`` (default 600)."""
    try:
        seconds = float(os.environ.get("PNEUMO_WATCH_SECONDS") or "600")
    except ValueError:
        seconds = 600.0
    return timedelta(seconds=max(seconds, 10.0))


@dag(
    dag_id="continuous_training",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 2 * * *", timezone="UTC"), assets=[INCOMING]),
    # No start_date: with one, Airflow 3 schedules the latest past 02:00 tick the moment the DAG is
    # unpaused (catchup=False still runs "the most recent"); without one the first timed run is the
    # next 02:00, and a batch dropped meanwhile runs through the asset trigger alone.
    catchup=False,
    max_active_runs=1,
    default_args=_default_args(retry_delay=timedelta(minutes=5)),
    params={"settings": Param({}, type="object", description="overrides of the cycle settings")},
    tags=["pneumoscan"],
    doc_md=__doc__,
)
def continuous_training():
    wait = _approval()  # None: promotions need no approval (the default)

    @task(**_on("hub"))
    @_fail_fast
    def detect() -> list[str]:
        from hub import cycle

        return cycle.detect(*_ctx())

    @task(**_on("hub"))
    @_fail_fast
    def validate(batches: list[str]) -> list[str]:
        from hub import cycle

        return cycle.validate(*_ctx(), batches)

    @task(**_on("hub"))
    @_fail_fast
    def ingest(good: list[str]) -> str | None:
        from hub import cycle

        return cycle.ingest(*_ctx(), good) if good else None

    @task.short_circuit(**_on("hub"))
    @_fail_fast
    def has_work(_: str | None) -> dict | None:
        """The dataset version to work on, as it travels: fingerprint, DVC hashes, hub settings."""
        from hub import cycle

        return cycle.pending_dataset(_ctx()[0])

    @task(**_on("train"))
    @_fail_fast
    def train(data: dict) -> str:
        from hub import cycle

        return cycle.train_challenger(*_ctx(data), data)

    @task(**_on("train"))
    @_fail_fast
    def score(data: dict, _run_id: str) -> str:
        from hub import cycle

        return cycle.score_pair(_ctx(data)[0], data)

    @task.short_circuit
    @_fail_fast
    def judge(data: dict, _scores: str, ti=None) -> bool:
        from hub import cycle

        paths, cfg = _ctx(data)
        promote = cycle.judge(paths, cfg, data["version"])
        if promote and wait is not None:  # what the approval step shows the reviewer
            ti.xcom_push(key="approval_request", value=cycle.approval_request(paths, data["version"]))
        return promote

    @task.short_circuit
    @_fail_fast
    def review(data: dict, answer: dict) -> bool:
        from hub import cycle

        return cycle.review(*_ctx(data), data["version"], answer)

    @task(**_on("hub"))
    @_fail_fast
    def promote(data: dict, _ok: bool) -> str:
        from hub import cycle

        return cycle.promote(*_ctx(data), data)

    @task(**_on("hub"))
    @_fail_fast
    def publish(data: dict, _registered: str) -> int:
        from hub import cycle

        return cycle.publish_step(*_ctx(data), data["version"])

    version = has_work(ingest(validate(detect())))
    run_id = train(version)
    scores = score(version, run_id)
    ok = judge(version, scores)
    if wait is not None:
        from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator

        APPROVE, REJECT = ApprovalOperator.APPROVE, ApprovalOperator.REJECT  # what hub.cycle.review reads
        ask = HITLOperator(
            task_id="approve",
            subject="Promote the challenger trained on {{ ti.xcom_pull(task_ids='has_work')['version'] }} "
            "to every clinic?",
            body="{{ ti.xcom_pull(task_ids='judge', key='approval_request') }}",
            options=[APPROVE, REJECT],
            defaults=[REJECT],  # no answer in time: the champion stays
            response_timeout=wait,
            retries=0,
        )
        ok >> ask
        ok = review(version, ask.output)
    publish(version, promote(version, ok))


@dag(
    dag_id="incoming_watch",
    schedule=_watch_interval(),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"on_failure_callback": _alert_failure},
    tags=["pneumoscan"],
    doc_md="Looks for new batches in `PNEUMO_INCOMING` every 10 minutes (`PNEUMO_WATCH_SECONDS`) and, "
    "when there is one, updates the asset that triggers `continuous_training`.",
)
def incoming_watch():
    @task.short_circuit(**_on("hub"))
    @_fail_fast
    def new_batches() -> bool:
        from hub import cycle

        return bool(cycle.announce(*_ctx()))

    @task(outlets=[INCOMING])
    def announce() -> None:
        """Succeeding here is the asset event."""

    new_batches() >> announce()


@dag(
    dag_id="feed_refresh",
    schedule=CronTriggerTimetable("30 1 * * *", timezone="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=_default_args(retry_delay=timedelta(minutes=30)),
    tags=["pneumoscan"],
    doc_md="Re-signs the feed's snapshot and timestamp daily at 01:30 UTC (`hub.cycle.refresh_feed`): "
    "clients refuse a timestamp older than 7 days, so a hub that publishes nothing for a week would "
    "otherwise cut every clinic off. Warns from 30 days before the root (offline key) expires.",
)
def feed_refresh():
    @task(**_on("hub"))
    @_fail_fast
    def refresh() -> dict | None:
        from hub import cycle

        return cycle.refresh_feed(*_ctx())

    refresh()


continuous_training()
incoming_watch()
feed_refresh()
