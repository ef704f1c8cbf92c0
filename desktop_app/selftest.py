"""``pneumo-desktop self-test``: what hospital IT runs after installing, to know the app will work.

Each check says ok, warning or failed in words. A failure means the app cannot do its job as
installed (bad admin config, no model that passes its reference check, data folder or audit log not
writable, a feed that answers but fails verification); a warning means it works but something
deserves a look (the feed is unreachable right now: the app carries on with the model it has, and
many clinic PCs are offline by design). Nothing here raises: an unexpected error is a failed check.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

from desktop_app import __version__
from desktop_app.config import Settings, admin_candidates, app_dir

OK, WARNING, FAILED = "ok", "warning", "failed"


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    status: str  # OK, WARNING or FAILED
    detail: str


@dataclasses.dataclass
class SelfTestResult:
    checks: list[Check]
    paths: dict[str, str]
    version: str = __version__

    @property
    def passed(self) -> bool:
        return all(c.status != FAILED for c in self.checks)

    def as_dict(self) -> dict:
        return {
            "passed": self.passed,
            "version": self.version,
            "checks": [dataclasses.asdict(c) for c in self.checks],
            "paths": self.paths,
        }

    def text(self) -> str:
        tags = {OK: "[ OK ]", WARNING: "[WARN]", FAILED: "[FAIL]"}
        lines = [f"PneumoScan {self.version} self-test"]
        lines += [f"  {tags[c.status]} {c.name}: {c.detail}" for c in self.checks]
        lines += ["Where things are:"] + [f"  {k}: {v}" for k, v in self.paths.items()]
        warnings = sum(c.status == WARNING for c in self.checks)
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(f"Result: {verdict}" + (f" ({warnings} warning{'s' * (warnings != 1)})" if warnings else ""))
        return "\n".join(lines)


def paths_report(settings: Settings) -> dict[str, str]:
    """Where the app is installed and keeps its settings, models, audit log and logs (for IT and uninstall)."""
    paths = settings.paths()
    return {
        "version": __version__,
        "install_dir": str(app_dir()),
        "admin_config": settings.admin_file
        or "none (defaults); looked for: " + ", ".join(str(p) for p in admin_candidates()),
        "user_settings": settings.user_file,
        "data_dir": str(paths.data_dir),
        "models": str(paths.models),
        "feed_cache": str(paths.feed_cache),
        "audit_db": str(paths.audit_db),
        "log_file": str(paths.log_file),
        "builtin_model": settings.builtin_model or "none",
        "trusted_root": settings.trusted_root or "none",
    }


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except Exception as e:  # a self-test that crashes tells IT nothing: report it as a failed check
        return Check(name, FAILED, f"unexpected error: {type(e).__name__}: {e}")


def check_settings(settings: Settings) -> Check:
    if settings.problems:
        return Check("settings", FAILED, "; ".join(settings.problems))
    source = f"admin config {settings.admin_file}" if settings.admin_file else "no admin config (defaults)"
    return Check("settings", OK, f"{source}; model variant {settings.variant}")


def check_model(settings: Settings, image: str | None) -> Check:
    """The active model loads and reproduces its reference probabilities (``Engine`` does that), then predicts."""
    from contract.preprocess import ImageError
    from desktop_app.engine import PredictionError
    from desktop_app.models import ModelStore, StoreError

    store = ModelStore.from_settings(settings)
    try:
        engine, warnings = store.open_engine(settings.variant)
    except StoreError as e:
        return Check("model", FAILED, str(e).replace("\n", "; "))
    builtin = store.builtin is not None and Path(engine.package.directory).resolve() == store.builtin.resolve()
    source = "built in" if builtin else "from the feed"
    target = Path(image) if image else engine.package.path(engine.package.card["reference"]["file"])
    try:
        pred = engine.predict(engine.load(target, display=False))
    except (ImageError, OSError, PredictionError) as e:
        return Check("model", FAILED, f"version {engine.version} loads, but {target} cannot be predicted: {e}")
    answer = (
        f"{pred.label} {pred.probability:.3f} (threshold {pred.threshold:.3f})"
        if pred.suitable
        else f"withheld: {pred.reason}"
    )
    detail = f"version {engine.version} ({engine.variant}, {source}) passes its reference check; {target.name}: "
    detail += answer
    return Check("model", WARNING if warnings else OK, "; ".join([*warnings, detail]))


def check_data_dir(settings: Settings) -> Check:
    data = settings.paths().data_dir
    data.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=data, prefix=".selftest-") as f:
        f.write(b"ok")
        f.flush()
        os.fsync(f.fileno())
    return Check("data folder", OK, f"{data} is writable")


def check_audit(settings: Settings) -> Check:
    """The audit log opens and takes a write lock; nothing is written into it."""
    from desktop_app.audit import AuditError, AuditLog

    path = settings.paths().audit_db
    try:
        AuditLog(path).close()  # creates the file and table on first use
    except AuditError as e:
        return Check("audit log", FAILED, f"{e}: the app sets it aside and starts a new log when it next opens")
    db = sqlite3.connect(path, timeout=2)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
        n = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    finally:
        db.close()
    return Check("audit log", OK, f"{path} is writable ({n} result{'s' * (n != 1)} recorded)")


def check_viewer() -> Check:
    """The Qt libraries load (a missing system library shows up here, not when a radiologist opens the app)."""
    try:
        from PySide6 import QtCore, QtWidgets  # noqa: F401
    except ImportError as e:
        return Check("viewer", FAILED, f"the Qt libraries do not load: {e}")
    return Check("viewer", OK, f"Qt {QtCore.qVersion()} libraries load")


def check_feed(settings: Settings, timeout: float) -> Check:
    """Reachable and trusted: the signed metadata verifies against the installed root.json."""
    from desktop_app.models import ModelStore
    from feed.client import FeedClient, FeedClientError, FeedUnreachable, UpdateRefused, redact_url

    if not settings.feed_url:
        return Check("feed", OK, "no feed configured: the app keeps the model it has")
    if not settings.trusted_root:
        return Check(
            "feed",
            FAILED,
            f"feed_url is {settings.feed_url} but no trusted root.json is installed "
            "(trusted_root): updates cannot be verified",
        )
    known = ModelStore.from_settings(settings).newest_known()
    try:
        offer = FeedClient(
            Path(settings.trusted_root), settings.feed_url, settings.paths().feed_cache, timeout, settings.proxy or None
        ).check(known)
    except FeedUnreachable as e:
        return Check(
            "feed", WARNING, f"{str(e).splitlines()[0]} (the app works offline with its model and checks again later)"
        )
    except UpdateRefused as e:
        return Check("feed", FAILED, f"the feed answered but failed verification: {str(e).splitlines()[0]}")
    except FeedClientError as e:  # the trusted root or the proxy setting is unusable
        return Check("feed", FAILED, str(e).splitlines()[0])
    via = f" via proxy {redact_url(settings.proxy)}" if settings.proxy else ""
    if offer is None:
        news = f"nothing newer than version {known}" if known is not None else "it has no model yet"
        return Check("feed", OK, f"{settings.feed_url}{via} is reachable and trusted; {news}")
    return Check(
        "feed",
        OK,
        f"{settings.feed_url}{via} is reachable and trusted; it offers version "
        f"{offer.version} (the app will install it)",
    )


def run_self_test(settings: Settings, image: str | None = None, timeout: float = 5.0) -> SelfTestResult:
    """Run every check (none stops the others) and say where things are."""
    checks = [
        _guarded("settings", lambda: check_settings(settings)),
        _guarded("model", lambda: check_model(settings, image)),
        _guarded("data folder", lambda: check_data_dir(settings)),
        _guarded("audit log", lambda: check_audit(settings)),
        _guarded("viewer", check_viewer),
        _guarded("feed", lambda: check_feed(settings, timeout)),
    ]
    return SelfTestResult(checks, paths_report(settings))
