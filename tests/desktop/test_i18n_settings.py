"""French UI and the settings dialog: real translations (lupdate/lrelease), real Qt offscreen, real settings files."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any Qt import

import importlib.util
import json
import re
import shutil
import xml.etree.ElementTree as ET

import pytest
from PySide6.QtCore import QLocale, Qt
from PySide6.QtWidgets import QDialogButtonBox, QLabel, QPushButton

from desktop_app import i18n
from desktop_app.audit import AuditLog
from desktop_app.config import load_settings
from desktop_app.engine import Engine
from desktop_app.ui import feedback
from desktop_app.ui.settings_dialog import SettingsDialog, attach
from desktop_app.ui.window import MainWindow
from tests.conftest import ROOT

ARTIFACTS = ROOT / "test-artifacts"
TS = i18n.TRANSLATIONS_DIR / "pneumoscan_fr.ts"
TIMEOUT_MS = 30_000
PLACEHOLDER = re.compile(r"%(?:\d|[vm])")
EXPECTED = {
    "fr": {
        "menus": ["&Fichier", "&Affichage", "&Résultat", "&Modèle", "&Outils"],
        "disclaimer": "Usage expérimental — ne constitue pas un diagnostic",
        "labels": {"NORMAL": "NORMAL", "PNEUMONIA": "PNEUMONIE"},
        "caption": "Probabilité calibrée de pneumonie",
        "threshold": "(PNEUMONIE à partir de ce seuil)",
    },
    "en": {
        "menus": ["&File", "&View", "&Result", "&Model", "&Tools"],
        "disclaimer": "For investigational use — not a diagnosis",
        "labels": {"NORMAL": "NORMAL", "PNEUMONIA": "PNEUMONIA"},
        "caption": "Calibrated probability of pneumonia",
        "threshold": "(PNEUMONIA at or above)",
    },
}


def update_tool():
    spec = importlib.util.spec_from_file_location("update_translations", ROOT / "tools" / "update_translations.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def language(qapp):
    """Install a UI language for one test; English (and the OS's number formats) again afterwards."""

    def install(lang: str) -> str:
        return i18n.install_translator(qapp, lang)

    yield install
    i18n.install_translator(qapp, "en")
    QLocale.setDefault(QLocale.system())


@pytest.fixture(scope="module")
def engine(package_dir) -> Engine:
    return Engine(package_dir)


@pytest.fixture
def make_window(qtbot, engine, tmp_path):
    """Build shown main windows on the real engine; their audit logs are closed after the test."""
    audits = []

    def make() -> MainWindow:
        audits.append(AuditLog(tmp_path / f"audit{len(audits)}.db"))
        w = MainWindow(engine, audits[-1])
        qtbot.addWidget(w)
        w.resize(1280, 860)
        w.show()
        qtbot.waitExposed(w)
        return w

    yield make
    for audit in audits:
        audit.close()


def accelerator(text: str) -> str | None:
    m = re.search(r"&([^&])", text.replace("&&", ""))
    return m.group(1).lower() if m else None


def cut_off_texts(root) -> list[str]:
    """Visible one-line labels and buttons narrower than their text: what a user would see truncated."""
    widgets = [w for w in root.findChildren(QLabel) if not w.wordWrap()] + root.findChildren(QPushButton)
    return [
        f"{w.text()!r}: {w.width()} < {w.sizeHint().width()} px"
        for w in widgets
        if w.isVisible() and w.text() and w.width() < w.sizeHint().width()
    ]


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_main_window_speaks_the_chosen_language(qtbot, language, make_window, jpeg, lang):
    assert language(lang) == lang
    want = EXPECTED[lang]
    window = make_window()
    attach(window, load_settings())
    feedback.attach(window, window.audit)  # the result panel as users see it, with the read buttons
    bar = window.menuBar()
    assert [a.text() for a in bar.actions()] == want["menus"]
    assert window.disclaimer_label.text() == want["disclaimer"]
    assert want["caption"] in [w.text() for w in window.findChildren(QLabel)]

    with qtbot.waitSignal(window.resultShown, timeout=TIMEOUT_MS) as blocker:
        assert window.open_file(jpeg)
    pred = blocker.args[0].prediction
    assert window.result_label.text() == want["labels"][pred.label]
    assert window.threshold_label.text().endswith(want["threshold"])
    qtbot.wait(50)
    assert cut_off_texts(window) == []
    # Keyboard accelerators stay unique within the menu bar and within each menu.
    menus = [a.menu() for a in bar.actions()]
    for group in [[a.text() for a in bar.actions()]] + [[a.text() for a in m.actions() if a.text()] for m in menus]:
        keys = [k for k in map(accelerator, group) if k]
        assert len(keys) == len(set(keys)), group
    if lang == "fr":
        ARTIFACTS.mkdir(exist_ok=True)
        assert window.grab().save(str(ARTIFACTS / "fr-main-window.png"))
    window.close()


@pytest.mark.parametrize(
    ("lang", "corrupt", "missing"),
    [
        ("fr", "les données de l'image sont corrompues ou tronquées (", "est un dossier, pas un fichier"),
        ("en", "image data is corrupt or truncated (", "is a folder, not a file"),
    ],
)
def test_why_a_file_cannot_be_opened_is_said_in_the_chosen_language(
    qtbot, language, make_window, tmp_path, jpeg, lang, corrupt, missing
):
    """Before: the reasons stayed in English in the French UI ("image data is corrupt or truncated")."""
    assert language(lang) == lang
    window = make_window()
    bad = tmp_path / "cut.jpeg"
    bad.write_bytes(jpeg.read_bytes()[:600])  # a transfer cut short
    with qtbot.waitSignal(window.errorShown, timeout=TIMEOUT_MS):
        window.open_file(bad)
    assert corrupt in window.error_label.text() and "cut.jpeg" in window.error_label.text()
    (tmp_path / "film.jpeg").mkdir()  # a folder named like a film
    with qtbot.waitSignal(window.errorShown, timeout=TIMEOUT_MS):
        window.open_file(tmp_path / "film.jpeg")
    assert missing in window.error_label.text()


def test_auto_follows_the_os_locale_and_a_missing_translation_falls_back_to_english(
    qapp, language, monkeypatch, tmp_path
):
    assert i18n.resolve_language("auto", QLocale("fr_CA")) == "fr"
    assert i18n.resolve_language("auto", QLocale("de_DE")) == "en"
    assert i18n.resolve_language("en", QLocale("fr_FR")) == "en"
    monkeypatch.setattr(i18n, "TRANSLATIONS_DIR", tmp_path)  # an install that lost its .qm files
    assert language("fr") == "en"
    assert qapp.translate("MainWindow", "&File") == "&File"


def test_french_translation_is_complete_and_compiled(tmp_path):
    """lupdate over today's code must find nothing untranslated, and the shipped .qm must be the .ts compiled."""
    tool = update_tool()
    fresh = tmp_path / TS.name
    shutil.copy(TS, fresh)
    tool.lupdate(fresh)  # adds whatever strings the code has now, as unfinished
    messages = [(c.findtext("name"), m) for c in ET.parse(fresh).getroot().iter("context") for m in c.iter("message")]
    assert len(messages) > 50
    problems = []
    for context, m in messages:
        source, t = m.findtext("source"), m.find("translation")
        if t.get("type") in ("unfinished", "vanished", "obsolete") or not (t.text or "").strip():
            problems.append(f"{context}: {source!r} is not translated")
        elif sorted(PLACEHOLDER.findall(source)) != sorted(PLACEHOLDER.findall(t.text)):
            problems.append(f"{context}: {source!r} → {t.text!r} changes the placeholders")
        elif bool(accelerator(source)) != bool(accelerator(t.text)):
            problems.append(f"{context}: {source!r} → {t.text!r} loses or adds the & accelerator")
    assert problems == [], "run tools/update_translations.py and translate:\n" + "\n".join(problems)

    compiled = tmp_path / "fresh.qm"
    tool.lrelease(TS, compiled)
    assert compiled.read_bytes() == TS.with_suffix(".qm").read_bytes(), (
        "pneumoscan_fr.qm is stale: run tools/update_translations.py"
    )


def click_ok(qtbot, dialog: SettingsDialog) -> None:
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)


def test_settings_dialog_saves_interval_and_variant(qtbot, tmp_path):
    settings = load_settings()
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.interval_spin.value() == 6.0 and dialog.variant_combo.currentData() == "fp32"
    assert all(w.isEnabled() for w in dialog.fields.values())
    assert os.environ["PNEUMO_DESKTOP_CONFIG"] in dialog.source_label.text()
    dialog.interval_spin.setValue(2.5)
    dialog.variant_combo.setCurrentIndex(dialog.variant_combo.findData("int8"))
    with qtbot.waitSignal(dialog.settingsChanged, timeout=1000) as blocker:
        click_ok(qtbot, dialog)
    assert blocker.args[0].variant == "int8" and blocker.args[0].check_interval_hours == 2.5
    assert dialog.result() == SettingsDialog.DialogCode.Accepted and not dialog.isVisible()
    saved = json.loads((tmp_path / "user-config" / "settings.json").read_text())
    assert saved["check_interval_hours"] == 2.5 and saved["variant"] == "int8"
    again = load_settings()
    assert (again.check_interval_hours, again.variant, again.problems) == (2.5, "int8", [])


def test_locked_key_is_disabled_and_not_written(qtbot, language, tmp_path):
    language("fr")
    admin = tmp_path / "admin" / "config.toml"
    admin.write_text('feed_url = "https://hub.hospital.example/feed"\nlocked = ["feed_url"]\n')
    dialog = SettingsDialog(load_settings())
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert not dialog.feed_edit.isEnabled() and dialog.feed_edit.text() == "https://hub.hospital.example/feed"
    assert dialog.feed_edit.toolTip() == "Défini par votre administrateur"
    assert str(admin) in dialog.source_label.text()
    assert dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel).text().replace("&", "") == "Annuler"
    dialog.interval_spin.setValue(0)
    assert dialog.interval_spin.text() == "Au démarrage seulement"
    dialog.variant_combo.setCurrentIndex(dialog.variant_combo.findData("int8"))
    qtbot.wait(50)
    assert cut_off_texts(dialog) == []
    ARTIFACTS.mkdir(exist_ok=True)
    assert dialog.grab().save(str(ARTIFACTS / "settings-dialog.png"))
    click_ok(qtbot, dialog)
    saved = json.loads((tmp_path / "user-config" / "settings.json").read_text())
    assert saved == {"check_interval_hours": 0.0, "language": "auto", "variant": "int8", "show_withheld": False}
    again = load_settings()
    assert again.feed_url == "https://hub.hospital.example/feed" and again.check_interval_hours == 0.0


@pytest.mark.parametrize("url", ["hub.example.org/feed", "ftp://hub.example.org/feed", "https://"])
def test_invalid_feed_url_shows_an_error_and_writes_nothing(qtbot, tmp_path, url):
    dialog = SettingsDialog(load_settings())
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.feed_edit.setText(url)
    with qtbot.assertNotEmitted(dialog.settingsChanged):
        click_ok(qtbot, dialog)
    assert dialog.isVisible() and dialog.error_label.isVisible()
    assert "http://" in dialog.error_label.text()
    assert not (tmp_path / "user-config" / "settings.json").exists()
    dialog.feed_edit.setText("https://hub.example.org/feed")  # corrected: saves and closes
    click_ok(qtbot, dialog)
    assert not dialog.isVisible() and load_settings().feed_url == "https://hub.example.org/feed"


def test_unwritable_settings_file_is_reported_not_raised(qtbot, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the settings folder should be")
    monkeypatch.setenv("PNEUMO_DESKTOP_USER_CONFIG", str(blocker / "settings.json"))
    dialog = SettingsDialog(load_settings())
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.variant_combo.setCurrentIndex(dialog.variant_combo.findData("int8"))
    with qtbot.assertNotEmitted(dialog.settingsChanged):
        click_ok(qtbot, dialog)
    assert dialog.isVisible() and "not-a-folder" in dialog.error_label.text()


def test_settings_action_in_tools_menu_opens_the_dialog_with_saved_values(qtbot, make_window):
    window = make_window()
    controller = attach(window, load_settings())
    assert controller.action in window.tools_menu.actions()
    assert controller.action.shortcut().toString() == "Ctrl+,"
    controller.action.trigger()
    dialog = controller.dialog
    assert dialog is not None and dialog.isVisible() and dialog.parent() is window
    dialog.variant_combo.setCurrentIndex(dialog.variant_combo.findData("int8"))
    with qtbot.waitSignal(controller.settingsChanged, timeout=1000) as blocker:
        click_ok(qtbot, dialog)
    assert blocker.args[0].variant == "int8" and controller.dialog is None
    assert controller.open().variant_combo.currentData() == "int8"  # reopened: shows what was saved
    controller.dialog.reject()
    window.close()
