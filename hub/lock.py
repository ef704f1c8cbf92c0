"""One writer at a time per hub home: the lock every cycle step and ``pneumo-hub cycle`` take.

Two cycles at once (a person's ``pneumo-hub cycle`` while the DAG runs, or two CLI runs) would move
the same batches, write the same pool and the same cycle state. ``hub_lock`` takes an exclusive
``flock`` on ``$PNEUMO_HOME/hub.lock`` without waiting; a second holder is refused at once with
:class:`HubBusy`, which names the holder (pid, what, since when). The kernel drops the lock when the
holding process ends, however it ends (``kill -9`` included), so a crash never leaves the hub locked.
Re-entrant within one process: ``run_once`` holds it and the steps it calls take it again freely.
Under Airflow a step refused by a running CLI cycle fails and is retried (the DAG's retries).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

LOCK_FILE = "hub.lock"
_held = threading.local()


class HubBusy(RuntimeError):
    """Another process is changing this hub; the message says which."""


@contextlib.contextmanager
def hub_lock(home: Path, holder: str):
    home = Path(home).resolve()
    held = getattr(_held, "homes", None)
    if held is None:
        held = _held.homes = set()
    if home in held:
        yield
        return
    home.mkdir(parents=True, exist_ok=True)
    f = open(home / LOCK_FILE, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            who = f.read().strip() or "a process that has not said what it is"
            raise HubBusy(
                f"Another process is changing the hub at {home}: {who}. Wait for it to finish and run this "
                "again (a process that is killed releases the hub by itself)."
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}, {holder}, since {datetime.now(UTC).isoformat(timespec='seconds')}\n")
        f.flush()
        held.add(home)
        try:
            yield
        finally:
            held.discard(home)
            f.seek(0)
            f.truncate()
            f.flush()
            fcntl.flock(f, fcntl.LOCK_UN)
    finally:
        f.close()


def exclusive(step):
    """A cycle step ``step(paths, ...)`` that runs under ``hub_lock`` of ``paths.home``."""

    @functools.wraps(step)
    def wrapper(paths, *args, **kwargs):
        with hub_lock(paths.home, f"cycle step {step.__name__}"):
            return step(paths, *args, **kwargs)

    return wrapper
