"""The settings dialog: the user's layer of the settings (feed, check interval, model variant, language,
whether withheld results are shown).

The admin config (``desktop_app.config``) comes first: a key it locks is shown disabled and never
written. OK saves through ``save_user_settings`` (the one place that validates and writes
atomically); a wrong value keeps the dialog open with the reason, and nothing is written.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from desktop_app.config import ConfigError, Settings, save_user_settings

logger = logging.getLogger(__name__)

MAX_INTERVAL_HOURS = 720.0  # config.py accepts 0..720


class SettingsDialog(QDialog):
    """Edit the user-settable keys; ``settingsChanged(Settings)`` after a successful save."""

    settingsChanged = Signal(object)  # the new Settings, as saved

    def __init__(self, settings: Settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings
        self.setWindowTitle(self.tr("Settings"))
        self.setMinimumWidth(520)

        self.feed_edit = QLineEdit(settings.feed_url)
        self.feed_edit.setPlaceholderText(self.tr("e.g. https://hub.example.org/feed — empty: never check"))
        self.interval_spin = QDoubleSpinBox()
        self.interval_spin.setRange(0.0, MAX_INTERVAL_HOURS)
        self.interval_spin.setDecimals(1)
        self.interval_spin.setSingleStep(1.0)
        self.interval_spin.setSuffix(self.tr(" h"))
        self.interval_spin.setSpecialValueText(self.tr("Only at start"))  # shown for 0
        self.interval_spin.setValue(settings.check_interval_hours)
        self.variant_combo = QComboBox()
        self.variant_combo.addItem(self.tr("Full precision (fp32)"), "fp32")
        self.variant_combo.addItem(self.tr("Compact, faster (int8)"), "int8")
        self.language_combo = QComboBox()
        self.language_combo.addItem(self.tr("Automatic (system language)"), "auto")
        # Each language is named in its own language, so a user can find theirs whatever the UI shows.
        self.language_combo.addItem(self.tr("English", "language name, in English"), "en")
        self.language_combo.addItem(self.tr("Français", "language name, in French"), "fr")
        for combo, value in ((self.variant_combo, settings.variant), (self.language_combo, settings.language)):
            combo.setCurrentIndex(max(0, combo.findData(value)))
        self.withheld_check = QCheckBox(self.tr("Also show results withheld as unsuitable (marked, for experts)"))
        self.withheld_check.setChecked(settings.show_withheld)
        self.withheld_check.setToolTip(
            self.tr(
                "When the model is not fit to judge an image (not a frontal chest X-ray, or unlike the images "
                "it was trained on), no result is shown. With this on, the withheld result is shown as well, "
                "clearly marked as not to be relied on."
            )
        )

        form = QFormLayout()
        form.addRow(self.tr("Model &feed URL:"), self.feed_edit)
        form.addRow(self.tr("&Check for updates every:"), self.interval_spin)
        form.addRow(self.tr("Model &variant:"), self.variant_combo)
        form.addRow(self.tr("&Language:"), self.language_combo)
        form.addRow(self.tr("Withheld results:"), self.withheld_check)
        self.fields = {
            "feed_url": self.feed_edit,
            "check_interval_hours": self.interval_spin,
            "variant": self.variant_combo,
            "language": self.language_combo,
            "show_withheld": self.withheld_check,
        }
        for key, widget in self.fields.items():
            if key in settings.locked:
                widget.setEnabled(False)
                widget.setToolTip(self.tr("Set by your administrator"))
                form.labelForField(widget).setToolTip(self.tr("Set by your administrator"))

        note = QLabel(
            self.tr(
                "A new model variant is used from the next image on. "
                "A new language is shown the next time PneumoScan starts."
            )
        )
        note.setWordWrap(True)
        self.source_label = QLabel(self._source_text())
        self.source_label.setWordWrap(True)
        self.source_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.source_label.setStyleSheet("color: #555;")
        self.error_label = QLabel()
        self.error_label.setObjectName("settings-error")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(
            "color: #b00020; background: #fdecea; border: 1px solid #f5c2c0; border-radius: 4px; padding: 6px;"
        )
        self.error_label.setVisible(False)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)

        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(note)
        lay.addWidget(self.source_label)
        lay.addWidget(self.error_label)
        lay.addWidget(self.buttons)

    def _source_text(self) -> str:
        s = self.settings
        admin = (
            self.tr("Administrator settings: %1").replace("%1", s.admin_file)
            if s.admin_file
            else self.tr("No administrator settings on this computer.")
        )
        lines = [admin, self.tr("Your settings are saved in %1").replace("%1", s.user_file or "—")]
        if s.problems:
            lines.append(self.tr("Ignored: %1").replace("%1", "; ".join(s.problems)))
        return "\n".join(lines)

    def values(self) -> dict:
        """The user's choices for the keys the admin did not lock."""
        values = {
            "feed_url": self.feed_edit.text().strip(),
            "check_interval_hours": round(self.interval_spin.value(), 1),
            "variant": self.variant_combo.currentData(),
            "language": self.language_combo.currentData(),
            "show_withheld": self.withheld_check.isChecked(),
        }
        return {k: v for k, v in values.items() if k not in self.settings.locked}

    def _feed_url_problem(self, url: str) -> str | None:
        """A translated reason the feed URL is unusable (config.py's own check stays the last word)."""
        if not url:
            return None
        parsed = QUrl(url, QUrl.ParsingMode.StrictMode)
        if parsed.scheme() not in ("http", "https") or not parsed.host() or not parsed.isValid():
            return self.tr(
                "The model feed URL must be a web address starting with http:// or https://, "
                "such as https://hub.example.org/feed."
            )
        return None

    def show_error(self, message: str | None) -> None:
        self.error_label.setText(message or "")
        self.error_label.setVisible(bool(message))

    @Slot()
    def save(self) -> None:
        """Validate and write; close only when the settings were saved."""
        values = self.values()
        problem = self._feed_url_problem(values.get("feed_url", ""))
        if problem:
            self.show_error(problem)
            self.feed_edit.setFocus()
            self.feed_edit.selectAll()
            return
        try:
            new = save_user_settings(values, self.settings)
        except ConfigError as e:
            self.show_error(self.tr("The settings were not saved: %1").replace("%1", str(e)))
            return
        except OSError as e:
            logger.warning("Cannot save settings to %s: %s", self.settings.user_file, e)
            self.show_error(
                self.tr("The settings were not saved: cannot write %1 (%2)")
                .replace("%1", str(e.filename or self.settings.user_file))
                .replace("%2", e.strerror or str(e))
            )
            return
        self.show_error(None)
        self.settings = new
        self.settingsChanged.emit(new)
        self.accept()


class SettingsController(QObject):
    """The window's "Settings…" action; keeps the current settings so each opening shows the saved ones."""

    settingsChanged = Signal(object)  # the new Settings, after the user saved them

    def __init__(self, window, settings: Settings):
        super().__init__(window)
        self.window, self.settings = window, settings
        self.dialog: SettingsDialog | None = None
        self.action = QAction(self.tr("&Settings…"), window)
        self.action.setShortcut(QKeySequence("Ctrl+,"))  # Cmd+, on macOS
        self.action.setMenuRole(QAction.MenuRole.PreferencesRole)
        self.action.triggered.connect(self.open)
        window.tools_menu.addAction(self.action)

    @Slot()
    def open(self) -> SettingsDialog:
        """Show the dialog (window-modal, not blocking the event loop) and return it."""
        if self.dialog is not None:
            self.dialog.raise_()
            return self.dialog
        self.dialog = SettingsDialog(self.settings, self.window)
        self.dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.dialog.settingsChanged.connect(self._on_saved)
        self.dialog.finished.connect(self._on_finished)
        self.dialog.show()
        return self.dialog

    @Slot(object)
    def _on_saved(self, settings: Settings) -> None:
        self.settings = settings
        self.settingsChanged.emit(settings)

    @Slot(int)
    def _on_finished(self, _result: int) -> None:
        if self.dialog is not None:
            self.dialog.deleteLater()
            self.dialog = None


def attach(window, settings: Settings) -> SettingsController:
    """Add "Settings…" (Ctrl+,) to ``window.tools_menu``; connect to the returned ``settingsChanged``."""
    return SettingsController(window, settings)
