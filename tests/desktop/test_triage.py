"""Batch triage: the table model alone, then a real folder through real onnxruntime and real Qt (offscreen)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any Qt import

import csv
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from desktop_app.audit import AuditLog
from desktop_app.engine import Engine
from desktop_app.images import load_image
from desktop_app.ui.format import percent
from desktop_app.ui.triage import CSV_COLUMNS, SORT_ROLE, TriageDialog, TriageModel, TriageProxy, TriageRow, find_images
from desktop_app.ui.window import MainWindow
from tests.conftest import ROOT, sample_files

ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT_MS = 60_000
M = TriageModel


@pytest.fixture(scope="module")
def engine(package_dir) -> Engine:
    return Engine(package_dir)


@pytest.fixture
def folder(tmp_path) -> Path:
    """4 NORMAL + 4 PNEUMONIA sample X-rays in sub-folders, plus one corrupt JPEG and a non-image."""
    root = tmp_path / "batch"
    for label in ("NORMAL", "PNEUMONIA"):
        (root / label).mkdir(parents=True)
        for f in sample_files(label, 4, offset=10):
            shutil.copy(f, root / label / f.name)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 10)
    (root / "notes.txt").write_text("not an image")
    return root


def run_dialog(qtbot, dialog: TriageDialog) -> bool:
    """Wait for the run to end (it may already have); return whether it was cancelled."""
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT_MS)
    return dialog.cancelled


def make_dialog(qtbot, engine, folder, audit=None) -> TriageDialog:
    d = TriageDialog(engine, folder, audit)
    qtbot.addWidget(d)
    d.resize(1000, 560)
    d.show()
    qtbot.waitExposed(d)
    return d


# ----- the model, no window ------------------------------------------------------------------------
def test_model_shows_rows_and_sorts_probability_numerically():
    model = TriageModel()
    rows = [
        TriageRow(Path("/x/a.png"), "a.png", "NORMAL", 0.095, "aa"),
        TriageRow(Path("/x/b.png"), "b.png", None, None, error="not an image"),
        TriageRow(Path("/x/c.png"), "c.png", "NORMAL", 0.102, "cc"),
        TriageRow(Path("/x/d.png"), "d.png", "PNEUMONIA", 0.9, "dd"),
    ]
    for r in rows:
        model.add_row(r)
    assert model.rowCount() == 4 and model.columnCount() == 5
    assert model.index(0, M.COL_PROBABILITY).data() == "9.5 %"
    assert model.index(0, M.COL_PROBABILITY).data(SORT_ROLE) == pytest.approx(0.095)
    assert model.index(1, M.COL_STATUS).data() == "Error: not an image"
    assert model.index(1, M.COL_PROBABILITY).data() == "" and model.index(1, M.COL_LABEL).data() == ""
    assert model.index(3, M.COL_LABEL).data() == "PNEUMONIA"
    assert model.headerData(M.COL_PROBABILITY, Qt.Orientation.Horizontal) == "Probability of pneumonia"

    proxy = TriageProxy(model)
    shown = [proxy.index(r, M.COL_PROBABILITY).data() for r in range(proxy.rowCount())]
    # As text, "9.5 %" would sort above "10.2 %"; numerically it is below. The error row is last.
    assert shown == ["90.0 %", "10.2 %", "9.5 %", ""]
    assert [proxy.row_at(r).name for r in range(4)] == ["d.png", "c.png", "a.png", "b.png"]
    # A row arriving later takes its place in the sorted order.
    model.add_row(TriageRow(Path("/x/e.png"), "e.png", "PNEUMONIA", 0.5, "ee"))
    assert [proxy.row_at(r).name for r in range(5)] == ["d.png", "e.png", "c.png", "a.png", "b.png"]


def test_find_images_walks_recursively_by_suffix_and_dicom_preamble(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("x.PNG", "a/y.jpg", "a/b/z.jpeg", "a/b/w.dcm", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "a" / "IM0001").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 10)  # DICOM without a suffix
    found = {p.relative_to(tmp_path).as_posix() for p in find_images(tmp_path)}
    assert found == {"x.PNG", "a/y.jpg", "a/b/z.jpeg", "a/b/w.dcm", "a/IM0001"}


# ----- a real folder -------------------------------------------------------------------------------
def test_triage_of_a_sample_folder_fills_sorts_exports_and_audits(qtbot, engine, folder, tmp_path):
    audit = AuditLog(tmp_path / "audit.db")
    dialog = make_dialog(qtbot, engine, folder, audit)
    assert dialog.is_running() and not dialog.export_button.isEnabled()
    assert run_dialog(qtbot, dialog) is False
    images = [p for p in folder.rglob("*") if p.suffix in (".jpeg", ".jpg")]
    assert len(images) == 9

    rows = dialog.displayed_rows()
    assert len(rows) == 9 and {r.path for r in rows} == set(images)
    good = [r for r in rows if r.ok]
    assert len(good) == 8
    for r in good:  # every number is the headless prediction of that file
        expected = engine.predict(load_image(r.path))
        assert r.probability == pytest.approx(expected.probability, abs=1e-6) and r.label == expected.label
    # Most suspicious first, the corrupt file last as an error row with its reason.
    probs = [r.probability for r in good]
    assert probs == sorted(probs, reverse=True) and rows[:8] == good
    assert rows[-1].path.name == "broken.jpg" and not rows[-1].ok
    text = dialog.displayed_text()
    assert text[-1][M.COL_STATUS].startswith("Error: ") and text[-1][M.COL_PROBABILITY] == ""
    assert [t[M.COL_PROBABILITY] for t in text[:8]] == [percent(p) for p in probs]
    assert "9 images" in dialog.status_label.text() and "1 could not be read" in dialog.status_label.text()
    assert dialog.export_button.isEnabled() and not dialog.cancel_button.isEnabled()
    assert dialog.progress.value() == dialog.progress.maximum() == 9

    # The CSV is the table, in the displayed order.
    out = dialog.export_csv(tmp_path / "triage.csv")
    with open(out, newline="", encoding="utf-8") as f:
        notice = f.readline()
        table = list(csv.reader(f))
    assert notice.startswith("# For investigational use — not a diagnosis.") and "triage of" in notice
    assert tuple(table[0]) == CSV_COLUMNS
    assert [line[:4] for line in table[1:]] == text
    assert [line[6] for line in table[1:]] == [str(r.path) for r in rows]
    assert [float(line[4]) for line in table[1:9]] == probs and table[-1][4] == ""

    # Each result is in the audit log, with the file's hash.
    logged = {row["file_path"]: row for row in audit.rows()}
    assert len(logged) == 8
    for r in good:
        assert logged[str(r.path.resolve())]["probability"] == pytest.approx(r.probability)
        assert logged[str(r.path.resolve())]["sha256"] == r.sha256

    ARTIFACTS.mkdir(exist_ok=True)
    assert dialog.grab().save(str(ARTIFACTS / "triage.png"))
    dialog.close()
    audit.close()


def test_cancel_stops_the_run_and_the_dialog_stays_usable(qtbot, engine, tmp_path):
    src = sample_files("PNEUMONIA", 1)[0]
    big = tmp_path / "big"
    big.mkdir()
    for i in range(40):
        shutil.copy(src, big / f"copy-{i:02d}.jpeg")
    dialog = make_dialog(qtbot, engine, big)
    dialog.rowAdded.connect(lambda _row: dialog.cancel())
    assert run_dialog(qtbot, dialog) is True
    n = dialog.proxy.rowCount()
    assert 1 <= n < 40
    qtbot.wait(200)  # nothing arrives after the cancel
    assert dialog.proxy.rowCount() == n
    assert "Cancelled" in dialog.status_label.text()
    assert not dialog.cancel_button.isEnabled() and dialog.export_button.isEnabled()
    with open(dialog.export_csv(tmp_path / "partial.csv"), newline="") as f:
        assert len(list(csv.reader(f))) == n + 2  # the investigational-use line, the header, the rows
    ARTIFACTS.mkdir(exist_ok=True)
    dialog.grab().save(str(ARTIFACTS / "triage-cancelled.png"))
    # Still usable: a fresh run over the same folder completes.
    dialog.rowAdded.disconnect()
    dialog.start()
    assert run_dialog(qtbot, dialog) is False and dialog.proxy.rowCount() == 40
    dialog.close()


def test_empty_folder_says_so(qtbot, engine, tmp_path):
    dialog = make_dialog(qtbot, engine, tmp_path)
    assert run_dialog(qtbot, dialog) is False
    assert dialog.proxy.rowCount() == 0 and "No PNG, JPEG or DICOM" in dialog.status_label.text()
    assert not dialog.export_button.isEnabled()
    dialog.close()


def test_main_window_opens_triage_and_a_row_opens_in_the_viewer(qtbot, engine, folder):
    window = MainWindow(engine)
    qtbot.addWidget(window)
    window.show()
    assert window.triage_action.isEnabled() and window.triage_action.text() == "Open folder for &triage…"
    file_menu = window.menuBar().actions()[0].menu()
    assert window.triage_action in file_menu.actions()
    dialog = window.open_triage(folder)
    assert run_dialog(qtbot, dialog) is False
    top = dialog.displayed_rows()[0]
    with qtbot.waitSignal(window.resultShown, timeout=TIMEOUT_MS):
        dialog.view.doubleClicked.emit(dialog.proxy.index(0, M.COL_FILE))
    assert window.current.path == top.path and window.probability_label.text() == percent(top.probability)
    dialog.close()
    window.close()
