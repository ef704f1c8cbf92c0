"""
### continuous_training — PneumoScan's self-improving loop

Runs daily at 02:00 UTC and whenever `incoming_watch` sees a new batch in `PNEUMO_INCOMING`.

detect → validate (bad batch → quarantine + report, pool untouched) → ingest (new DVC version)
→ has_work (ends here when there is no new data) → train challenger → score challenger and
champion on the same gold set → judge (promotion policy; decision recorded in MLflow)
→ promote (ONNX export, verification and int8 first; only a verified model moves the
`champion` alias, the old one keeps `previous`) → publish (signed feed).

Every task is a thin call into `hub.cycle`, idempotent: state lives under `PNEUMO_HOME`, so
re-running a run changes nothing that is already done. Run settings (e.g. `epochs`,
`image_size`, `weights`, `warm_start`, `policy`) can be given in the run's conf as `settings`.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

INCOMING = Asset("pneumoscan-incoming", uri="file:///pneumoscan/incoming")


def _ctx():
    """Hub paths and cycle settings for this run (imports stay inside tasks: parsing stays fast)."""
    from airflow.sdk import get_current_context

    from hub.config import HubPaths, telemetry_off
    from hub.cycle import CycleConfig

    telemetry_off()
    paths = HubPaths.from_env()
    return paths, CycleConfig.from_env(paths, dict(get_current_context()["params"].get("settings") or {}))


@dag(
    dag_id="continuous_training",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 2 * * *", timezone="UTC"), assets=[INCOMING]),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": int(os.environ.get("PNEUMO_DAG_RETRIES") or "2"), "retry_delay": timedelta(minutes=5)},
    params={"settings": Param({}, type="object", description="overrides of the cycle settings")},
    tags=["pneumoscan"],
    doc_md=__doc__,
)
def continuous_training():
    @task
    def detect() -> list[str]:
        from hub import cycle

        return cycle.detect(*_ctx())

    @task
    def validate(batches: list[str]) -> list[str]:
        from hub import cycle

        return cycle.validate(*_ctx(), batches)

    @task
    def ingest(good: list[str]) -> str | None:
        from hub import cycle

        return cycle.ingest(*_ctx(), good) if good else None

    @task.short_circuit
    def has_work(_: str | None) -> str | None:
        from hub import cycle

        return cycle.pending(_ctx()[0])

    @task
    def train(version: str) -> str:
        from hub import cycle

        return cycle.train_challenger(*_ctx(), version)

    @task
    def score(version: str, _run_id: str) -> str:
        from hub import cycle

        return cycle.score_pair(_ctx()[0], version)

    @task.short_circuit
    def judge(version: str, _scores: str) -> bool:
        from hub import cycle

        return cycle.judge(*_ctx(), version)

    @task
    def promote(version: str, _ok: bool) -> str:
        from hub import cycle

        return cycle.promote(*_ctx(), version)

    @task
    def publish(version: str, _registered: str) -> int:
        from hub import cycle

        return cycle.publish_step(*_ctx(), version)

    version = has_work(ingest(validate(detect())))
    run_id = train(version)
    scores = score(version, run_id)
    ok = judge(version, scores)
    publish(version, promote(version, ok))


@dag(
    dag_id="incoming_watch",
    schedule=timedelta(minutes=10),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["pneumoscan"],
    doc_md="Looks for new batches in `PNEUMO_INCOMING` every 10 minutes and, when there is one, "
    "updates the asset that triggers `continuous_training`.",
)
def incoming_watch():
    @task.short_circuit
    def new_batches() -> bool:
        from hub import cycle

        return bool(cycle.detect(*_ctx()))

    @task(outlets=[INCOMING])
    def announce() -> None:
        """Succeeding here is the asset event."""

    new_batches() >> announce()


continuous_training()
incoming_watch()
