"""``pneumo-desktop view``: the QApplication, the uncaught-exception hook and the main window."""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType

logger = logging.getLogger(__name__)


def install_excepthook(show_dialog: bool = True) -> None:
    """Log every uncaught exception and, with ``show_dialog``, show it: the app never vanishes silently."""

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        logger.critical("Uncaught exception", exc_info=(exc_type, exc, tb))
        if show_dialog:
            from PySide6.QtWidgets import QApplication, QMessageBox

            if QApplication.instance() is not None:
                box = QMessageBox(
                    QMessageBox.Icon.Critical,
                    QApplication.translate("app", "Unexpected error"),
                    QApplication.translate(
                        "app", "PneumoScan hit an unexpected error and carries on; it was written to the log.\n\n%1"
                    ).replace("%1", f"{exc_type.__name__}: {exc}"),
                )
                box.setDetailedText("".join(traceback.format_exception(exc_type, exc, tb)))
                box.exec()

    sys.excepthook = hook


def log_to_file(path) -> None:
    """Keep a rotating log in the per-user data folder (IT looks there); never stop the app over it."""
    import logging.handlers

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    except OSError as e:
        logger.warning("Cannot write the log file %s: %s", path, e)
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in root.handlers:  # the console keeps showing warnings only
        if h.level == logging.NOTSET:
            h.setLevel(logging.WARNING)
    handler.setLevel(logging.INFO)
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def build_window(engine, audit, settings, managed_model: bool = True):
    """The main window with every part attached: feedback, audit log, settings and, when the model
    comes from the app's store (``managed_model``), background updates and rollback."""
    from desktop_app.ui import about_model, audit_view, feedback, settings_dialog
    from desktop_app.ui.update_controller import UpdateController
    from desktop_app.ui.window import MainWindow

    window = MainWindow(engine, audit)
    about_model.attach(window, lambda e: about_model.model_source(e, settings, managed_model))
    feedback.attach(window, audit)
    audit_view.attach(window, audit)
    prefs = settings_dialog.attach(window, settings)
    window.show_withheld = settings.show_withheld  # from the next result on
    prefs.settingsChanged.connect(lambda new: setattr(window, "show_withheld", new.show_withheld))
    if managed_model:
        updates = UpdateController.from_settings(settings, parent=window)  # on the app's per-user store
        updates.attach(window)
        window.updates = updates

        def on_saved(new) -> None:
            old_variant = updates.updater.variant
            updates.apply_settings(new)
            if new.variant != old_variant:
                updates.reload_model(new.variant)

        prefs.settingsChanged.connect(on_saved)
        updates.start()
    else:
        prefs.settingsChanged.connect(lambda new: switch_variant(window, new.variant, settings.site))
    return window


def switch_variant(window, variant: str, site: str | None) -> None:
    """A model given with ``--model-dir`` (no store, no updates): reopen its folder as ``variant`` and say
    what runs now (before: the change was ignored while the settings said it applied)."""
    from PySide6.QtWidgets import QApplication

    from desktop_app.engine import Engine, EngineError

    if variant == window.engine.variant:
        return
    try:
        engine = Engine(window.engine.package.directory, variant, site=site)
    except EngineError as e:
        window.statusBar().showMessage(
            QApplication.translate("app", "Cannot switch the model to %1: %2")
            .replace("%1", variant)
            .replace("%2", str(e)),
            30_000,
        )
        return
    window.set_engine(engine)
    if engine.variant != variant:
        text = QApplication.translate("app", "This model folder has no %1 file: the model stays %2.")
    else:
        text = QApplication.translate("app", "Model version %3 (%1) in use from the next analysis.")
    window.statusBar().showMessage(
        text.replace("%1", variant).replace("%2", engine.variant).replace("%3", str(engine.version)), 30_000
    )


def run_viewer(
    model_dir: str | None = None,
    variant: str | None = None,
    audit_path: str | None = None,
    files: list[str] | None = None,
) -> int:
    """Start the GUI; return the exit code. The model is loaded (and self-checked) before the window opens.

    Without ``model_dir`` the model is the store's active one (the newest verified feed model, or the
    one installed with the app); without ``audit_path`` the audit log is the per-user one.
    """
    from PySide6.QtWidgets import QApplication, QMessageBox

    from desktop_app.audit import AuditLog
    from desktop_app.config import load_settings
    from desktop_app.engine import EngineError
    from desktop_app.i18n import install_translator
    from desktop_app.models import StoreError, open_model

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("PneumoScan")
    app.setOrganizationName("PneumoScan")
    install_excepthook()
    settings = load_settings()
    log_to_file(settings.paths().log_file)
    for problem in settings.problems:
        logger.warning("%s", problem)
    install_translator(app, settings.language)
    try:
        engine, warnings = open_model(model_dir, variant, settings)
        for w in warnings:
            logger.warning("%s", w)
            print(f"pneumo-desktop: warning: {w}", file=sys.stderr)
    except (EngineError, StoreError) as e:
        print(f"pneumo-desktop: {e}" + (" (or pass --model-dir)" if isinstance(e, StoreError) else ""), file=sys.stderr)
        return 2
    audit = AuditLog.open_or_recover(audit_path or settings.paths().audit_db)
    window = build_window(engine, audit, settings, managed_model=model_dir is None)
    window.show()
    if audit.problem:  # the results already shown are kept, where they could be read; say where they are
        print(f"pneumo-desktop: warning: {audit.problem}", file=sys.stderr)
        title = QApplication.translate("app", "Audit log damaged")
        box = QMessageBox(QMessageBox.Icon.Warning, title, audit.problem, QMessageBox.StandardButton.Ok, window)
        box.open()  # not modal for the event loop: the window works behind it
    elif warnings:
        window.statusBar().showMessage(warnings[0], 30_000)
    elif settings.problems:
        window.statusBar().showMessage(
            QApplication.translate("app", "Configuration problem: %1").replace("%1", settings.problems[0]), 30_000
        )
    if files:
        window.open_files(files)
    try:
        return app.exec()
    finally:
        audit.close()
