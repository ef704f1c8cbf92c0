"""The assembled app (``build_window``): every part attached, a model from the store, settings that apply."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import json

import pytest

from desktop_app.audit import AuditLog
from desktop_app.config import load_settings
from desktop_app.models import ModelStore
from desktop_app.ui.app import build_window
from tests.conftest import free_port

TIMEOUT_MS = 30_000


@pytest.fixture
def app_window(qtbot, package_dir, tmp_path, isolated_app_dirs):
    admin = isolated_app_dirs / "admin" / "config.toml"
    # A feed nobody serves (closed port) and the test package as the built-in model, as installed by IT.
    admin.write_text(
        f'feed_url = "http://127.0.0.1:{free_port()}/feed"\ncheck_interval_hours = 0\n'
        f'builtin_model = "{package_dir}"\ntrusted_root = "{tmp_path / "missing-root.json"}"\n'
    )
    settings = load_settings()
    store = ModelStore(settings.paths().models, settings.builtin_model)
    engine, _ = store.open_engine(settings.variant)
    audit = AuditLog(settings.paths().audit_db)
    window = build_window(engine, audit, settings)
    qtbot.addWidget(window)
    window.show()
    yield window
    window.close()
    audit.close()


def action_texts(menu) -> list[str]:
    return [a.text().replace("&", "") for a in menu.actions() if not a.isSeparator()]


def test_the_app_has_every_part_and_starts_without_a_feed(qtbot, app_window, jpeg):
    w = app_window
    assert "Check for updates now" in action_texts(w.model_menu)
    assert "Roll back to previous model" in action_texts(w.model_menu)
    tools = " ".join(action_texts(w.tools_menu))
    assert "Audit log" in tools and "Export labelled batch" in tools and "Settings" in tools
    # The feed cannot be used (no trust root): the status bar says updates are off, nothing blocks.
    qtbot.waitUntil(lambda: not w.updates.is_busy(), timeout=TIMEOUT_MS)
    assert "version 7" in w.model_status_label.text()
    with qtbot.waitSignal(w.resultShown, timeout=TIMEOUT_MS) as blocker:
        w.open_file(jpeg)
    assert blocker.args[0].prediction.model_version == 7
    assert len(w.audit.rows()) == 1


def test_changing_the_variant_in_settings_switches_the_running_model(qtbot, app_window, jpeg, isolated_app_dirs):
    from desktop_app.ui import settings_dialog

    w = app_window
    qtbot.waitUntil(lambda: not w.updates.is_busy(), timeout=TIMEOUT_MS)
    assert w.engine.variant == "fp32"
    controller = next(c for c in w.findChildren(settings_dialog.SettingsController))
    with qtbot.waitSignal(w.engineChanged, timeout=TIMEOUT_MS) as blocker:
        controller.open()
        dialog = controller.dialog
        dialog.variant_combo.setCurrentIndex(dialog.variant_combo.findData("int8"))
        dialog.save()
    assert blocker.args[0].variant == "int8" and w.engine.variant == "int8"
    saved = json.loads((isolated_app_dirs / "user-config" / "settings.json").read_text())
    assert saved["variant"] == "int8"
    with qtbot.waitSignal(w.resultShown, timeout=TIMEOUT_MS) as blocker:
        w.open_file(jpeg)
    assert blocker.args[0].prediction.model_version == 7


def test_thousands_of_results_do_not_crash_the_app():
    """PySide6 6.12.0 lost a reference to ``True`` on every Signal.emit and aborted the process after about
    1,800 emits (about 550 triaged images). Emit the app's own result signals 5,000 times in a fresh process."""
    import subprocess
    import sys

    code = """
import sys
from PySide6.QtCore import QCoreApplication
from desktop_app.ui.worker import WorkerSignals
app = QCoreApplication([])
s = WorkerSignals()
got = []
s.failed.connect(lambda request, reason: got.append(request))
before = sys.getrefcount(True)
for i in range(5000):
    s.failed.emit(i, "x")
assert len(got) == 5000
print(sys.getrefcount(True) - before)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert abs(int(out.stdout.strip())) < 100  # no reference lost per emit


def test_while_the_next_image_is_analysed_the_previous_result_cannot_be_confirmed(qtbot, app_window):
    from desktop_app.ui.feedback import FeedbackBox
    from tests.conftest import sample_files

    w = app_window
    box = w.findChild(FeedbackBox)
    first, second = sample_files("NORMAL", 2, offset=40)
    with qtbot.waitSignal(w.resultShown, timeout=TIMEOUT_MS):
        w.open_file(first)
    assert all(b.isEnabled() for b in box.buttons.values())
    with qtbot.waitSignal(w.resultShown, timeout=TIMEOUT_MS) as blocker:
        w.open_file(second)
        # The file label already names the second image: nothing of the first may be shown or confirmed.
        assert w.file_label.text() == second.name and w.current is None
        assert w.result_label.text() == "—" and w.probability_label.text() == "—"
        assert not any(b.isEnabled() for b in box.buttons.values())
    assert blocker.args[0].path == second and all(b.isEnabled() for b in box.buttons.values())
    assert [r["confirmed_label"] for r in w.audit.rows()] == [None, None]


def test_with_a_model_dir_a_variant_change_switches_that_folders_model_or_says_why_not(
    qtbot, package_dir, tmp_path, jpeg
):
    """Before: with --model-dir a variant change was silently ignored while the settings said it applied."""
    import shutil

    from desktop_app.engine import Engine
    from desktop_app.ui import settings_dialog

    def save_variant(w, variant: str) -> None:
        controller = next(c for c in w.findChildren(settings_dialog.SettingsController))
        controller.open()
        dialog = controller.dialog
        dialog.variant_combo.setCurrentIndex(dialog.variant_combo.findData(variant))
        dialog.save()

    audit = AuditLog(tmp_path / "audit.sqlite")
    fp32_only = tmp_path / "fp32-only"
    shutil.copytree(package_dir, fp32_only)
    (fp32_only / "model.int8.onnx").unlink()  # as a clinic that installed fp32 alone would have it
    try:
        w = build_window(Engine(package_dir), audit, load_settings(), managed_model=False)
        qtbot.addWidget(w)
        with qtbot.waitSignal(w.engineChanged, timeout=TIMEOUT_MS):
            save_variant(w, "int8")
        assert w.engine.variant == "int8" and "Model version 7 (int8) in use" in w.statusBar().currentMessage()
        with qtbot.waitSignal(w.resultShown, timeout=TIMEOUT_MS) as blocker:
            w.open_file(jpeg)
        assert blocker.args[0].prediction.variant == "int8"
        w.close()

        w = build_window(Engine(fp32_only), audit, load_settings(), managed_model=False)
        qtbot.addWidget(w)
        save_variant(w, "fp32")  # the settings saved int8 above; back to fp32 first
        save_variant(w, "int8")
        assert w.engine.variant == "fp32"
        assert "Cannot switch the model to int8" in w.statusBar().currentMessage()
        w.close()
    finally:
        audit.close()
