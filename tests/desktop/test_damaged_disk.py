"""The app on a damaged disk (issue 12): a garbage or half-damaged audit log, with the real CLI, the real
viewer (offscreen Qt, in its own process) and real SQLite files damaged the way disks damage them."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from desktop_app.audit import AuditLog
from desktop_app.config import load_settings
from desktop_app.selftest import FAILED, check_audit

ROOT = Path(__file__).resolve().parents[2]
GARBAGE = b"PK\x03\x04 this was overwritten by something else " * 200


def run_predict(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "desktop_app.main", "predict", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_a_garbage_audit_log_is_set_aside_and_predict_goes_on(tmp_path, package_dir, jpeg):
    """Before: `predict --audit` printed a traceback and gave no result."""
    audit = tmp_path / "audit.sqlite"
    audit.write_bytes(GARBAGE)
    out = run_predict(str(jpeg), "--audit", str(audit), "--model-dir", str(package_dir))
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert json.loads(out.stdout.splitlines()[0])["label"] in ("NORMAL", "PNEUMONIA")
    assert "is damaged" in out.stderr and "set aside as audit.sqlite.damaged-" in out.stderr
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("audit.sqlite.damaged-")]
    assert len(aside) == 1 and aside[0].read_bytes() == GARBAGE  # kept as it was, for IT
    with AuditLog(audit) as log:  # the new log holds this session's result
        assert [r["file_name"] for r in log.rows()] == [jpeg.name]
    # A second damage the same second never overwrites the first copy.
    audit.write_bytes(GARBAGE[::-1])
    assert AuditLog.open_or_recover(audit).problem
    copies = sorted(p.read_bytes() for p in tmp_path.iterdir() if ".damaged-" in p.name)
    assert copies == sorted([GARBAGE, GARBAGE[::-1]])


def _filled_log(path: Path, n: int) -> None:
    with AuditLog(path) as log, log._db:
        for i in range(n):
            log._db.execute(
                "INSERT INTO results (time, file_name, file_path, sha256, label, probability, threshold,"
                " model_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                ("2026-12-01T10:00:00+00:00", f"film-{i}.dcm", "/films/" + "x" * 200, "ab" * 32, "NORMAL", 0.2, 0.5, 7),
            )
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def test_a_damaged_page_loses_only_its_rows_and_says_how_many(tmp_path):
    audit = tmp_path / "audit.sqlite"
    _filled_log(audit, 400)
    data = bytearray(audit.read_bytes())
    page = 4096
    data[10 * page : 11 * page] = b"\xff" * page  # one bad sector in the middle of the table
    audit.write_bytes(bytes(data))
    log = AuditLog.open_or_recover(audit)
    names = [r["file_name"] for r in log.rows()]
    assert 300 < len(names) < 400  # most rows, including those after the bad page
    assert names[-1] == "film-399.dcm"
    assert f"{len(names)} earlier results recovered" in log.problem
    assert f"({400 - len(names)} could not be read" in log.problem
    log.close()


def test_self_test_fails_on_a_damaged_audit_log_and_leaves_it_alone(tmp_path):
    settings = load_settings()
    path = settings.paths().audit_db
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(GARBAGE)
    check = check_audit(settings)
    assert check.status == FAILED and "is damaged" in check.detail and "sets it aside" in check.detail
    assert path.read_bytes() == GARBAGE and not list(path.parent.glob("*.damaged-*"))


def test_the_viewer_starts_on_a_garbage_audit_log_says_so_and_records_again(tmp_path, package_dir, jpeg):
    """Before: the viewer did not start at all."""
    audit = tmp_path / "audit.sqlite"
    audit.write_bytes(GARBAGE)
    code = f"""
import os, sys
os.environ['QT_QPA_PLATFORM'] = 'offscreen'
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
from desktop_app import main
app = QApplication([])
seen = {{}}
def poll():
    boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
    for w in QApplication.topLevelWidgets():
        if type(w).__name__ == 'MainWindow' and w.current is not None and w.result_label.text() and boxes:
            seen['label'] = w.result_label.text(); seen['box'] = boxes[0].text()
            w.close(); app.quit(); return
    QTimer.singleShot(100, poll)
QTimer.singleShot(100, poll)
QTimer.singleShot(60000, app.quit)
rc = main.main(['view', {str(jpeg)!r}, '--model-dir', {str(package_dir)!r}, '--audit', {str(audit)!r}])
print('RESULT', repr(seen.get('label')), 'RC', rc)
print('BOX', seen.get('box'))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "RC 0" in out.stdout and "RESULT None" not in out.stdout, out.stdout + out.stderr
    assert "BOX The audit log" in out.stdout and "set aside as audit.sqlite.damaged-" in out.stdout
    with AuditLog(audit) as log:
        assert [r["file_name"] for r in log.rows()] == [jpeg.name]


def test_an_audit_log_that_cannot_be_set_aside_keeps_the_session_in_memory(tmp_path, monkeypatch):
    audit = tmp_path / "audit.sqlite"
    audit.write_bytes(GARBAGE)

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied", str(src))

    # a folder read-only for this user (simulated: the tests run as root, whom permissions do not stop)
    monkeypatch.setattr(os, "replace", refuse)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    log = AuditLog.open_or_recover(audit)
    assert "results are NOT being recorded" in log.problem
    assert audit.read_bytes() == GARBAGE and log.rows() == []
    assert list((tmp_path / "cwd").iterdir()) == []  # in memory: no file named ":memory:" where the app runs


def test_the_data_folder_and_audit_log_are_private_under_a_permissive_umask(tmp_path, package_dir, jpeg, monkeypatch):
    """Before: 755/644 under umask 022, while the audit holds names like DOE_JANE_PID-12345_chest.dcm."""
    from desktop_app.config import AppPaths

    data = tmp_path / "fresh" / "pneumoscan"
    old = os.umask(0o022)
    try:
        monkeypatch.setenv("PNEUMO_DESKTOP_DATA", str(data))
        paths = AppPaths.resolve()  # what every command and the viewer resolve first
        named = tmp_path / "DOE_JANE_PID-12345_chest.jpeg"
        shutil.copyfile(jpeg, named)
        out = run_predict(str(named), "--audit", str(paths.audit_db), "--model-dir", str(package_dir))
        assert out.returncode == 0, out.stderr
    finally:
        os.umask(old)
    mode = lambda p: oct(p.stat().st_mode & 0o777)  # noqa: E731
    assert mode(data) == "0o700"
    audit_files = [p for p in data.iterdir() if p.name.startswith("audit.sqlite")]
    assert paths.audit_db in audit_files and {mode(p) for p in audit_files} == {"0o600"}
    # an install made before: its folder and log are tightened the next time the app opens them
    data.chmod(0o755)
    paths.audit_db.chmod(0o644)
    AppPaths.resolve()
    AuditLog(paths.audit_db).close()
    assert (mode(data), mode(paths.audit_db)) == ("0o700", "0o600")
