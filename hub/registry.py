"""MLflow model registry seam: who is champion, promotion by alias, rollback. The only registry calls."""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from pathlib import Path

from hub.config import REGISTERED_MODEL

logger = logging.getLogger(__name__)
CHAMPION, PREVIOUS = "champion", "previous"


@dataclasses.dataclass(frozen=True)
class ModelRef:
    version: str
    run_id: str

    @property
    def uri(self) -> str:
        return f"models:/{REGISTERED_MODEL}/{self.version}"


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def get_alias(alias: str) -> ModelRef | None:
    from mlflow.exceptions import MlflowException

    try:
        mv = _client().get_model_version_by_alias(REGISTERED_MODEL, alias)
    except MlflowException as e:
        # no such model or alias yet (the SQL store on PostgreSQL says INVALID_PARAMETER_VALUE ... not found)
        if e.error_code == "RESOURCE_DOES_NOT_EXIST" or (
            e.error_code == "INVALID_PARAMETER_VALUE" and "not found" in str(e)
        ):
            return None
        raise  # a server that is down must not read as "no champion"
    return ModelRef(str(mv.version), mv.run_id)


def version_of_run(run_id: str) -> ModelRef | None:
    versions = _client().search_model_versions(f"name = '{REGISTERED_MODEL}' and run_id = '{run_id}'")
    return ModelRef(str(versions[0].version), run_id) if versions else None


def set_champion(version: str) -> ModelRef | None:
    """Move ``champion`` to ``version``; the old champion keeps the ``previous`` alias. Returns the old one."""
    client = _client()
    old = get_alias(CHAMPION)
    if old and old.version == str(version):
        return get_alias(PREVIOUS)  # already champion: idempotent
    if old:
        client.set_registered_model_alias(REGISTERED_MODEL, PREVIOUS, old.version)
    client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, str(version))
    return old


def rollback() -> tuple[ModelRef, ModelRef]:
    """Swap ``champion`` and ``previous``; returns (new champion, demoted one)."""
    champ, prev = get_alias(CHAMPION), get_alias(PREVIOUS)
    if prev is None or champ is None:
        raise ValueError("Nothing to roll back to: the registry has no 'previous' model")
    client = _client()
    client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, prev.version)
    client.set_registered_model_alias(REGISTERED_MODEL, PREVIOUS, champ.version)
    return prev, champ


def record_decision(run_id: str, decision: dict) -> None:
    """The decision, its inputs and reasons, on the challenger's run: tags plus decision.json."""
    client = _client()
    client.set_tag(run_id, "promotion.decision", "promoted" if decision["promote"] else "rejected")
    client.set_tag(run_id, "promotion.reasons", "; ".join(decision["reasons"])[:4900])
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "decision.json"
        p.write_text(json.dumps(decision, indent=2, default=float))
        client.log_artifact(run_id, str(p))


def describe_version(version: str, **tags: str) -> None:
    """Record on a registry version what the pipeline did with it (``decision``, ``dataset_version``,
    ``feed_version``, ...) as ``pneumoscan.*`` tags, and a one-line description built from all of them.

    The registry then says, version by version, why it is (or is not) champion and which feed
    version ships it: what ``feed status`` compares with the feed."""
    client = _client()
    for key, value in tags.items():
        client.set_model_version_tag(REGISTERED_MODEL, str(version), f"pneumoscan.{key}", str(value)[:4900])
    mv = client.get_model_version(REGISTERED_MODEL, str(version))
    known = {k.removeprefix("pneumoscan."): v for k, v in mv.tags.items() if k.startswith("pneumoscan.")}
    parts = [f"{known['decision']} on {known.get('dataset_version', '?')}"] if "decision" in known else []
    parts += [
        f"{k.replace('_', ' ')}: {known[k]}" for k in ("reasons", "review", "feed_version", "rollback") if k in known
    ]
    client.update_model_version(REGISTERED_MODEL, str(version), description="; ".join(parts)[:5000])
