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
                box = QMessageBox(QMessageBox.Icon.Critical, QApplication.translate("app", "Unexpected error"),
                                  QApplication.translate("app", "PneumoScan hit an unexpected error and carries on; "
                                                         "it was written to the log.\n\n%1").replace(
                                      "%1", f"{exc_type.__name__}: {exc}"))
                box.setDetailedText("".join(traceback.format_exception(exc_type, exc, tb)))
                box.exec()

    sys.excepthook = hook


def run_viewer(model_dir: str | None = None, variant: str | None = None, audit_path: str | None = None,
               files: list[str] | None = None) -> int:
    """Start the GUI; return the exit code. The model is loaded (and self-checked) before the window opens.

    Without ``model_dir`` the model is the store's active one (the newest verified feed model, or the
    one installed with the app); without ``audit_path`` the audit log is the per-user one.
    """
    from PySide6.QtWidgets import QApplication

    from desktop_app.audit import AuditLog
    from desktop_app.config import load_settings
    from desktop_app.engine import EngineError
    from desktop_app.main import open_engine
    from desktop_app.models import StoreError
    from desktop_app.ui.window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("PneumoScan")
    app.setOrganizationName("PneumoScan")
    install_excepthook()
    settings = load_settings()
    for problem in settings.problems:
        logger.warning("%s", problem)
    try:
        engine = open_engine(model_dir, variant, settings)
    except (EngineError, StoreError) as e:
        print(f"pneumo-desktop: {e}" + (" (or pass --model-dir)" if isinstance(e, StoreError) else ""),
              file=sys.stderr)
        return 2
    audit = AuditLog(audit_path or settings.paths().audit_db)
    window = MainWindow(engine, audit)
    window.show()
    if files:
        window.open_files(files)
    try:
        return app.exec()
    finally:
        audit.close()
