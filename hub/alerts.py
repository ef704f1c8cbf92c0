"""Tell the ML team when the loop needs a person: a failed task, a quarantined batch, a refused challenger.

Every alert is logged (WARNING, logger ``hub.alerts``: the Airflow task log and ``up``'s log). With
``PNEUMO_ALERT_WEBHOOK`` set to an http(s) URL, it is also POSTed there as JSON::

    {"event": "batch_quarantined", "summary": "...", "details": {...}, "hub": "<PNEUMO_HOME>", "at": "..."}

(a chat incoming-webhook, an alert manager, or a small relay to e-mail). Sending never raises and
never holds a run for long (10 s timeout, no retries): a dead alert endpoint is logged and the run
goes on — an alert must not become a second failure. Events: ``task_failed`` (an Airflow task
failed for good, from the DAGs' ``on_failure_callback``), ``batch_quarantined`` and
``challenger_rejected`` (from ``hub.cycle``), ``feed_root_expiring`` (from the daily refresh).

Torch- and MLflow-free: the callback runs in the task process after a failure.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from datetime import UTC, datetime

from hub.config import env_value

logger = logging.getLogger(__name__)
TIMEOUT_S = 10.0


def notify(event: str, summary: str, **details) -> bool:
    """Log the alert and send it to ``PNEUMO_ALERT_WEBHOOK`` when set; True when it was delivered there."""
    logger.warning("ALERT %s: %s", event, summary)
    url = env_value("PNEUMO_ALERT_WEBHOOK")
    if not url:
        return False
    if not url.startswith(("http://", "https://")):
        logger.error("PNEUMO_ALERT_WEBHOOK=%s is not an http(s) URL: alert not sent", url)
        return False
    body = json.dumps(
        {
            "event": event,
            "summary": summary,
            "details": details,
            "hub": env_value("PNEUMO_HOME") or "",
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        default=str,
    ).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            response.read(1024)
    except (urllib.error.URLError, OSError, ValueError) as e:
        logger.error("Alert %s not delivered to %s: %s", event, url, e)
        return False
    return True


def task_failed(context) -> None:
    """Airflow ``on_failure_callback``: a task failed and will not be retried."""
    ti = context.get("ti") or context.get("task_instance")
    error = context.get("exception")
    dag_id = getattr(ti, "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    if error is None:  # failed outside the task's code (killed, lost, or marked failed by Airflow)
        why = "marked failed by Airflow, not by its code (see the task's and the scheduler's log)"
    else:
        why = " ".join(str(error).split())[:500] or type(error).__name__
    notify(
        "task_failed",
        f"{dag_id}.{task_id} failed: {why}",
        dag_id=dag_id,
        task_id=task_id,
        run_id=getattr(ti, "run_id", None),
        try_number=getattr(ti, "try_number", None),
    )
