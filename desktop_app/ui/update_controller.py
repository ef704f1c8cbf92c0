"""Background model updates in the window: checks at start and every few hours, switch, roll back.

``ModelUpdater`` does the work on one worker thread; this object only starts it, one job at a time
(a check or a rollback), and turns the result into the window's model status, a passing status-bar
notice and ``window.set_engine``. Nothing here blocks the GUI thread or opens a dialog: offline, a
dead server or a refused update leave the app on the model it has, and the status bar says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QThreadPool, QTimer, Signal, Slot
from PySide6.QtGui import QAction

from desktop_app.engine import Engine
from desktop_app.models import ModelStore
from desktop_app.ui.worker import Call, CallSignals
from desktop_app.updater import ModelUpdater, Outcome, Status

logger = logging.getLogger(__name__)

NOTICE_MS = 15_000  # how long the "switched model" notice stays in the status bar
MAX_TIMER_MS = 2**31 - 1  # QTimer's limit (about 24.8 days)


class UpdateController(QObject):
    """Owns the update timer and the Model menu's "Check for updates now" and "Roll back" actions.

    Wire-up: ``c = UpdateController.from_settings(settings, store); c.attach(window); c.start()``.
    ``shutdown()`` runs by itself when the window closes.
    """

    checkStarted = Signal()
    checkFinished = Signal(object)  # Outcome
    rollbackFinished = Signal(bool, str)  # ok, the version now in use or why it failed

    def __init__(self, updater: ModelUpdater, interval_hours: float = 0.0, parent: QObject | None = None):
        super().__init__(parent)
        self.updater = updater
        self.window = None
        self.last_outcome: Outcome | None = None
        self._busy = False
        self._closed = False
        self._signals: CallSignals | None = None  # the last job's, kept alive until it has reported
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check_now)
        self.set_interval(interval_hours)
        self.check_action = QAction(self.tr("Check for updates now"), self)
        self.check_action.triggered.connect(self.check_now)
        self.rollback_action = QAction(self.tr("Roll back to previous model"), self)
        self.rollback_action.triggered.connect(self.roll_back)
        # shown once a check finds that the feed's model is one this PC rolled back from
        self.allow_action = QAction(self)
        self.allow_action.setVisible(False)
        self.allow_action.triggered.connect(self.allow_again)

    @classmethod
    def from_settings(
        cls, settings, store: ModelStore | None = None, parent: QObject | None = None
    ) -> UpdateController:
        return cls(ModelUpdater.from_settings(settings, store), settings.check_interval_hours, parent)

    # ----- wiring -------------------------------------------------------------------------------
    def attach(self, window) -> None:
        """Add the actions to ``window.model_menu``; follow the window's life (shut down when it closes)."""
        self.window = window
        if self.parent() is None:
            self.setParent(window)
        window.model_menu.addActions([self.check_action, self.rollback_action, self.allow_action])
        window.installEventFilter(self)
        self._refresh_actions()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.window and event.type() == QEvent.Type.Close:
            if self._busy:
                watched.hide()  # the window goes at once; a running download finishes behind it (bounded)
            self.shutdown()
        return False

    def start(self) -> None:
        """Check now, then every ``interval`` (none when it is 0)."""
        self.check_now()
        if self.timer.interval() > 0:
            self.timer.start()

    def set_interval(self, hours: float) -> None:
        ms = min(MAX_TIMER_MS, max(0, round(hours * 3_600_000)))
        self.timer.setInterval(ms)
        if ms == 0:
            self.timer.stop()
        elif self.timer.isActive():
            self.timer.start()  # restart with the new interval

    def apply_settings(self, settings) -> None:
        """New feed URL, root, proxy, variant or interval (settings dialog); used from the next check on.

        The running engine is not reopened here: a new variant reaches the window with the next update.
        """
        self.updater = ModelUpdater.from_settings(settings, self.updater.store)
        self.set_interval(settings.check_interval_hours)
        if self.timer.interval() > 0 and not self._closed:
            self.timer.start()

    def shutdown(self, timeout_ms: int = 30_000) -> None:
        """Stop checking and wait (bounded) for a running job; its result is then ignored. Idempotent."""
        self._closed = True
        self.timer.stop()
        self.pool.clear()
        if not self.pool.waitForDone(timeout_ms):
            logger.warning("A model update was still running at shutdown")

    def is_busy(self) -> bool:
        return self._busy

    # ----- checks -------------------------------------------------------------------------------
    @Slot()
    def check_now(self) -> bool:
        """Start a check in the background; False (and nothing started) while a check or rollback runs."""
        if not self._run(self.updater.update_once, self._on_checked):
            return False
        self._set_status(self.tr("Checking for model updates…"), self.updater.feed_url)
        self.checkStarted.emit()
        return True

    @Slot(object)
    def _on_checked(self, result: object) -> None:
        if not self._finish():
            return
        outcome = (
            result
            if isinstance(result, Outcome)
            else Outcome(Status.REFUSED, self.updater.store.active_version(), f"unexpected error: {result}")
        )
        self.last_outcome = outcome
        window = self.window
        if window is not None:
            if outcome.status is Status.UPDATED and outcome.version == window.engine.version:
                window.set_engine(outcome.engine)  # the same model, its file for the variant now set fetched
                text = (
                    self.tr("Model version %1 — now %2")
                    .replace("%1", str(outcome.version))
                    .replace("%2", outcome.engine.variant)
                )
                self._set_status(
                    text, self.tr("The model file for this variant came from the feed and passed its checks.")
                )
                window.statusBar().showMessage(text, NOTICE_MS)
            elif outcome.status is Status.UPDATED:
                old = window.engine.version
                window.set_engine(outcome.engine)
                text = self.tr("Updated to model version %1").replace("%1", str(outcome.version))
                self._set_status(
                    text,
                    self.tr(
                        "Model version %1 from the feed passed its signature, hash and "
                        "reference checks and replaces version %2."
                    )
                    .replace("%1", str(outcome.version))
                    .replace("%2", str(old)),
                )
                window.statusBar().showMessage(
                    self.tr("Switched to model version %1 (was %2); the next analysis uses it.")
                    .replace("%1", str(outcome.version))
                    .replace("%2", str(old)),
                    NOTICE_MS,
                )
            else:
                self._set_status(*self._status_text(outcome, window.engine.version))
        self._refresh_actions()
        self.checkFinished.emit(outcome)

    def _status_text(self, outcome: Outcome, version: int) -> tuple[str, str]:
        v = str(version)
        if outcome.status is Status.UP_TO_DATE and outcome.rolled_back is not None:
            n = str(outcome.rolled_back)
            return (
                self.tr("Model version %1 — version %2 rolled back").replace("%1", v).replace("%2", n),
                self.tr(
                    "The feed's model is version %2, which was rolled back on this computer, so the app keeps "
                    "version %1. Model › Allow version %2 again takes it back."
                )
                .replace("%1", v)
                .replace("%2", n),
            )
        if outcome.status is Status.UP_TO_DATE:
            return self.tr("Model version %1 — up to date").replace("%1", v), ""
        if outcome.status is Status.OFFLINE:
            return (
                self.tr("Offline — using model version %1").replace("%1", v),
                self.tr("The model feed cannot be reached; the app carries on with the model it has. %1").replace(
                    "%1", outcome.reason
                ),
            )
        if outcome.status is Status.REFUSED:
            return (
                self.tr("Update refused — using model version %1").replace("%1", v),
                self.tr("The update from the model feed was refused and nothing was installed: %1").replace(
                    "%1", outcome.reason
                ),
            )
        return (
            self.tr("Model version %1 — updates off").replace("%1", v),
            self.tr("Automatic model updates are off: %1").replace("%1", outcome.reason),
        )

    @Slot()
    def allow_again(self) -> bool:
        """Take back the rolled-back version the last check named; False while another job runs."""
        version = self.last_outcome.rolled_back if self.last_outcome is not None else None
        if version is None or not self._run(lambda: self.updater.allow_again(version), self._on_checked):
            return False
        self._set_status(self.tr("Switching back to model version %1…").replace("%1", str(version)))
        return True

    # ----- rollback -----------------------------------------------------------------------------
    @Slot()
    def roll_back(self) -> bool:
        """Switch back to the previous model in the background; False while a check or rollback runs."""
        if not self._run(self.updater.roll_back, self._on_rolled_back):
            return False
        self._set_status(self.tr("Rolling back to the previous model…"))
        return True

    @Slot(object)
    def _on_rolled_back(self, result: object) -> None:
        if not self._finish():
            return
        window = self.window
        if isinstance(result, Engine):
            old = window.engine.version if window is not None else None
            if window is not None:
                window.set_engine(result)
                self._set_status(
                    self.tr("Rolled back to model version %1").replace("%1", str(result.version)),
                    self.tr("Version %1 will not be installed again; a newer version from the feed will.").replace(
                        "%1", str(old)
                    ),
                )
                window.statusBar().showMessage(
                    self.tr("Rolled back to model version %1; the next analysis uses it.").replace(
                        "%1", str(result.version)
                    ),
                    NOTICE_MS,
                )
            self.rollbackFinished.emit(True, str(result.version))
        else:
            logger.error("Rollback failed: %s", result)
            if window is not None:
                self._set_status(
                    self.tr("Rollback failed — using model version %1").replace("%1", str(window.engine.version)),
                    str(result),
                )
            self.rollbackFinished.emit(False, str(result))
        self._refresh_actions()

    # ----- variant change (settings) --------------------------------------------------------------
    def reload_model(self, variant: str) -> None:
        """Reopen the active model as ``variant`` in the background; retried while another job runs."""
        self.updater.variant = variant

        def job() -> object:
            engine, _ = self.updater.store.open_engine(variant)
            return engine

        if not self._run(job, self._on_reloaded) and not self._closed:
            QTimer.singleShot(1000, lambda: self.reload_model(variant))

    @Slot(object)
    def _on_reloaded(self, result: object) -> None:
        if not self._finish() or self.window is None:
            return
        if isinstance(result, Engine):
            self.window.set_engine(result)
            self.window.statusBar().showMessage(
                self.tr("Model version %1 (%2) in use from the next analysis.")
                .replace("%1", str(result.version))
                .replace("%2", result.variant),
                NOTICE_MS,
            )
            self._refresh_actions()
            if self.updater.store.missing(result.version, self.updater.variant):
                # the variant's file was never downloaded: the model runs in the form it has until a check fetches it
                self.check_now()
            return
        else:
            self._set_status(
                self.tr("Model reload failed — using model version %1").replace("%1", str(self.window.engine.version)),
                str(result),
            )
        self._refresh_actions()

    # ----- helpers ------------------------------------------------------------------------------
    def _run(self, fn: Callable[[], object], slot: Callable[[object], None]) -> bool:
        if self._busy or self._closed:
            return False
        self._busy = True
        job = Call(fn, "Model update job")
        job.signals.done.connect(slot)
        self._signals = job.signals
        self._refresh_actions()
        self.pool.start(job)
        return True

    def _finish(self) -> bool:
        """Mark the job done; False when the controller was shut down meanwhile (ignore the result)."""
        self._busy = False
        return not self._closed

    def _set_status(self, text: str, tooltip: str = "") -> None:
        if self.window is not None:
            self.window.set_model_status(text, tooltip)

    def _refresh_actions(self) -> None:
        self.check_action.setEnabled(not self._busy)
        self.rollback_action.setEnabled(not self._busy and self.updater.store.previous_version() is not None)
        rolled = self.last_outcome.rolled_back if self.last_outcome is not None else None
        self.allow_action.setVisible(rolled is not None)
        self.allow_action.setEnabled(rolled is not None and not self._busy)
        if rolled is not None:
            self.allow_action.setText(self.tr("Allow version %1 again").replace("%1", str(rolled)))
