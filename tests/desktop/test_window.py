"""The viewer window on a real model package, real onnxruntime and real Qt (offscreen)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any Qt import

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, QRectF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QImage

from desktop_app.audit import AuditLog
from desktop_app.engine import Engine
from desktop_app.images import load_image
from desktop_app.ui.app import install_excepthook
from desktop_app.ui.heatmap import LUT, overlay_rgba, upsample_cam
from desktop_app.ui.window import MainWindow, model_date, percent
from tests.conftest import ROOT, sample_files

ARTIFACTS = ROOT / "test-artifacts"
FORBIDDEN = ("torch", "mlflow", "airflow", "hub")
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def engine(package_dir) -> Engine:
    return Engine(package_dir)


@pytest.fixture
def window(qtbot, engine, tmp_path):
    audit = AuditLog(tmp_path / "audit.db")
    w = MainWindow(engine, audit)
    qtbot.addWidget(w)
    w.resize(1280, 860)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()
    audit.close()


def open_and_wait(qtbot, window: MainWindow, path: Path):
    with qtbot.waitSignal(window.resultShown, timeout=TIMEOUT_MS) as blocker:
        assert window.open_file(path)
        assert window.is_busy()  # the call returned before the prediction: inference is off the GUI thread
    return blocker.args[0]


def pixels(img: QImage) -> np.ndarray:
    img = img.convertToFormat(QImage.Format.Format_RGBA8888)
    buf = np.frombuffer(img.constBits(), np.uint8, count=img.sizeInBytes())
    rows = buf.reshape(img.height(), img.bytesPerLine())[:, : img.width() * 4]
    return rows.reshape(img.height(), img.width(), 4).copy()  # own the pixels: the QImage dies here


def test_sample_xray_shows_the_headless_prediction(qtbot, window, engine, jpeg):
    expected = engine.predict(load_image(jpeg))
    result = open_and_wait(qtbot, window, jpeg)

    assert window.result_label.text() == expected.label
    assert window.probability_label.text() == percent(expected.probability)
    assert percent(expected.threshold) in window.threshold_label.text()
    assert "7" in window.model_label.text() and model_date(expected.created_at) in window.model_label.text()
    assert window.disclaimer_label.isVisible()
    assert window.disclaimer_label.text() == "For investigational use — not a diagnosis"
    assert window.file_label.text() == jpeg.name and not window.error_label.isVisible()
    # What is displayed is the decoded image at full size, and the overlay covers it exactly.
    w, h = load_image(jpeg).size
    assert (window.image_item.pixmap().width(), window.image_item.pixmap().height()) == (w, h)
    assert window.overlay_item.sceneBoundingRect() == window.image_item.sceneBoundingRect()
    # The result was recorded in the audit log with the same numbers.
    rows = window.audit.rows()
    assert len(rows) == 1 and rows[0]["file_name"] == jpeg.name and rows[0]["label"] == expected.label
    assert rows[0]["probability"] == pytest.approx(expected.probability, abs=1e-9)
    assert result.audit_row["id"] == rows[0]["id"]


@pytest.fixture(scope="module")
def vivid_engine(tmp_path_factory) -> Engine:
    """A random-init model with a tiny temperature: its calibrated log-odds, and so its heat map, are large."""
    from tests.desktop.conftest import make_package

    return Engine(make_package(tmp_path_factory.mktemp("vivid"), version=2, seed=0, temperature=0.01, int8=False))


def test_heat_map_toggles_on_and_off_and_screenshot(qtbot, window, vivid_engine, jpeg):
    window.set_engine(vivid_engine)
    open_and_wait(qtbot, window, jpeg)
    assert window.heatmap_action.isEnabled() and window.heatmap_action.isChecked()
    assert window.heatmap_action.shortcut().toString() == "H"
    assert window.overlay_item.isVisible()
    window.opacity_slider.setValue(60)
    assert window.overlay_item.opacity() == pytest.approx(0.6)
    qtbot.wait(50)
    on = pixels(window.view.grab().toImage())
    ARTIFACTS.mkdir(exist_ok=True)
    assert window.grab().save(str(ARTIFACTS / "viewer-heatmap-on.png"))

    window.heatmap_action.trigger()
    assert not window.heatmap_action.isChecked() and not window.overlay_item.isVisible()
    assert not window.opacity_slider.isEnabled()
    qtbot.wait(50)
    off = pixels(window.view.grab().toImage())
    assert window.grab().save(str(ARTIFACTS / "viewer-heatmap-off.png"))
    assert on.shape == off.shape
    changed = np.any(on[..., :3] != off[..., :3], axis=-1).mean()
    # the map is drawn on the model's fixed scale, clear where there is no evidence, so only the regions
    # with some are tinted (min-max per image tinted everything)
    evidence = float((window.current.prediction.cam > 0).mean())
    assert 0.05 < changed, f"only {changed:.1%} of the view changed with the heat map"
    assert evidence == 1.0 or changed < 0.95, "regions without evidence stay clear"
    # Without the heat map the image is gray: R == G == B wherever the X-ray is drawn.
    assert np.abs(off[..., 0].astype(int) - off[..., 2].astype(int)).max() <= 2

    window.heatmap_action.trigger()
    assert window.overlay_item.isVisible()
    qtbot.wait(50)
    assert np.array_equal(pixels(window.view.grab().toImage()), on)


def test_corrupt_file_shows_a_message_and_the_next_file_works(qtbot, window, jpeg, tmp_path):
    bad = tmp_path / "broken.jpeg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 10)
    with qtbot.waitSignal(window.errorShown, timeout=TIMEOUT_MS) as blocker:
        window.open_file(bad)
    message = blocker.args[0]
    assert "broken.jpeg" in message and window.error_label.isVisible() and window.error_label.text() == message
    assert message in window.statusBar().currentMessage()
    assert window.result_label.text() == "—" and window.current is None
    assert not window.heatmap_action.isEnabled() and not window.fit_action.isEnabled()
    assert window.audit.rows() == []
    ARTIFACTS.mkdir(exist_ok=True)
    window.grab().save(str(ARTIFACTS / "viewer-corrupt-file.png"))

    assert not window.open_file(tmp_path / "missing.png")
    assert "missing.png" in window.error_label.text()

    open_and_wait(qtbot, window, jpeg)
    assert window.result_label.text() in ("NORMAL", "PNEUMONIA") and not window.error_label.isVisible()
    assert window.heatmap_action.isEnabled() and len(window.audit.rows()) == 1


def test_drop_files_then_next_and_previous_and_zoom(qtbot, window):
    files = sample_files("NORMAL", 2)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(f)) for f in files])
    with qtbot.waitSignal(window.resultShown, timeout=TIMEOUT_MS) as blocker:
        window.dropEvent(
            QDropEvent(
                QPointF(10, 10),
                Qt.DropAction.CopyAction,
                mime,
                Qt.MouseButton.LeftButton,
                Qt.KeyboardModifier.NoModifier,
            )
        )
    assert blocker.args[0].path == files[0]
    assert window.next_action.isEnabled() and not window.prev_action.isEnabled()
    with qtbot.waitSignal(window.resultShown, timeout=TIMEOUT_MS) as blocker:
        window.next_action.trigger()
    assert blocker.args[0].path == files[1] and window.file_label.text() == files[1].name
    assert not window.next_action.isEnabled() and window.prev_action.isEnabled()

    fit = window.view.scale_factor()
    window.zoom_in_action.trigger()
    assert window.view.scale_factor() == pytest.approx(fit * 1.25)
    window.fit_action.trigger()
    assert window.view.scale_factor() == pytest.approx(fit)
    window.actual_action.trigger()
    assert window.view.scale_factor() == 1.0


def test_heat_map_is_on_the_models_fixed_scale_and_transparent_without_evidence():
    # log-odds evidence: none (−2, 0), half the card's scale (1.5), the full scale (3) and beyond (6)
    cam = np.array([[-2.0, 0.0], [1.5, 6.0]], dtype=np.float32)
    up = upsample_cam(cam, (40, 30), scale=3.0)
    assert up.shape == (30, 40) and up[0, 0] == 0.0 and up[-1, -1] == pytest.approx(1.0)
    rgba = overlay_rgba(cam, (40, 30), scale=3.0)
    assert rgba.shape == (30, 40, 4) and rgba.dtype == np.uint8
    assert tuple(rgba[-1, -1, :3]) == tuple(LUT[-1]) and rgba[-1, -1, 3] == 255
    assert rgba[0, 0, 3] == 0, "no evidence for pneumonia: transparent, not blue"
    assert 0 < rgba[-1, 0, 3] < 255
    # a NORMAL image's weak map is not stretched to red: it stays as faint as its evidence
    weak = overlay_rgba(np.array([[-3.0, -1.0], [-0.5, 0.3]], np.float32), (40, 30), scale=3.0)
    assert weak[..., 3].max() < 100 and (weak[..., 3] == 0).mean() > 0.5
    with pytest.raises(ValueError, match="Invalid CAM shape"):
        upsample_cam(np.zeros(4), (4, 4))


def test_excepthook_logs_uncaught_exceptions(caplog):
    old = sys.excepthook
    try:
        install_excepthook(show_dialog=False)
        try:
            raise RuntimeError("boom in a slot")
        except RuntimeError:
            with caplog.at_level(logging.CRITICAL):
                sys.excepthook(*sys.exc_info())
    finally:
        sys.excepthook = old
    assert any("Uncaught exception" in r.message and "boom in a slot" in r.exc_text for r in caplog.records)


def test_view_entry_point_opens_the_file_and_imports_no_training_stack(package_dir, jpeg):
    code = f"""
import os, sys
os.environ['QT_QPA_PLATFORM'] = 'offscreen'
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from desktop_app import main
app = QApplication([])
seen = {{}}
def poll():
    for w in QApplication.topLevelWidgets():
        if type(w).__name__ == 'MainWindow' and w.current is not None:
            seen['label'] = w.result_label.text(); w.close(); app.quit(); return
    QTimer.singleShot(100, poll)
QTimer.singleShot(100, poll)
QTimer.singleShot(60000, app.quit)
rc = main.main(['view', {str(jpeg)!r}, '--model-dir', {str(package_dir)!r}])
bad = sorted({{n.split('.')[0] for n in sys.modules}} & set({FORBIDDEN!r}))
print('LABEL', seen.get('label'), 'BAD', bad, 'RC', rc)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "BAD [] RC 0" in out.stdout, out.stdout + out.stderr
    assert "LABEL NORMAL" in out.stdout or "LABEL PNEUMONIA" in out.stdout, out.stdout


def test_view_without_a_model_says_how_to_give_one(capsys, monkeypatch):
    from desktop_app.main import main

    monkeypatch.delenv("PNEUMO_DESKTOP_MODEL_DIR", raising=False)
    assert main(["view", "--model-dir", ""]) == 2
    err = capsys.readouterr().err
    assert "No model is installed" in err and "--model-dir" in err


def test_window_level_changes_the_display_not_the_prediction(qtbot, window, jpeg):
    result = open_and_wait(qtbot, window, jpeg)
    gray = load_image(jpeg).gray
    full = pixels(window.image_item.pixmap().toImage())[..., 0]
    assert np.abs(full.astype(int) - np.round(gray * 255).astype(int)).max() <= 1  # opens at the full range

    window.set_window_level(0.4, 0.2)  # a narrow window: below 0.3 is black, above 0.5 white
    narrow = pixels(window.image_item.pixmap().toImage())[..., 0]
    assert (narrow[gray < 0.29] == 0).all() and (narrow[gray > 0.51] == 255).all()
    mid = (gray > 0.38) & (gray < 0.42)
    assert mid.any() and np.abs(narrow[mid].astype(int) - 128).max() <= 30
    # Right-drag widens the window (right) and raises the level (down).
    qtbot.mousePress(window.view.viewport(), Qt.MouseButton.RightButton, pos=window.view.viewport().rect().center())
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QMouseEvent

    centre = QPointF(window.view.viewport().rect().center())
    move = QMouseEvent(
        QEvent.Type.MouseMove,
        centre + QPointF(40, 20),
        centre + QPointF(40, 20),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.RightButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.view.mouseMoveEvent(move)
    qtbot.mouseRelease(window.view.viewport(), Qt.MouseButton.RightButton)
    level, width = window.window_level()
    assert level > 0.4 and width > 0.2
    # The model's answer is untouched, and R restores the full range.
    assert window.probability_label.text() == percent(result.prediction.probability)
    qtbot.keyClick(window, Qt.Key.Key_R)
    assert window.window_level() == (0.5, 1.0)
    assert np.array_equal(pixels(window.image_item.pixmap().toImage())[..., 0], full)


def test_dicom_opens_at_its_stored_window_reaches_beyond_it_and_r_returns_there(qtbot, window, tmp_path, jpeg):
    from desktop_app.ui.heatmap import WL_STEPS
    from tests.desktop.conftest import gray8, write_dicom

    values = gray8(sample_files("NORMAL", 1, offset=7)[0]).astype(np.uint16) * 16  # 12 bits stored: 0..4080
    path = write_dicom(tmp_path / "windowed.dcm", values, bits_stored=12, WindowCenter=1200, WindowWidth=800)
    open_and_wait(qtbot, window, path)
    stored = window.window_level()
    assert stored == pytest.approx((1200 / 4095, 800 / 4095), abs=0.5 / WL_STEPS)  # the file's window, 800..1600
    opened = pixels(window.image_item.pixmap().toImage())[..., 0]
    assert (opened[values < 790] == 0).all() and (opened[values > 1610] == 255).all()
    assert ((opened > 0) & (opened < 255)).mean() > 0.1  # the anatomy inside the window is in shades of gray
    # The whole range is within reach: the full window shows every stored value, beyond the file's window.
    window.set_window_level(0.5, 1.0)
    full = pixels(window.image_item.pixmap().toImage())[..., 0].astype(int)
    assert np.abs(full - np.round(values / 4095 * 255)).max() <= 1
    assert window.statusBar().currentMessage().startswith("Window level")
    # R returns to the stored window, and the status bar stops describing the window it left.
    qtbot.keyClick(window, Qt.Key.Key_R)
    assert window.window_level() == stored
    assert np.array_equal(pixels(window.image_item.pixmap().toImage())[..., 0], opened)
    assert not window.statusBar().currentMessage().startswith("Window level")
    # The next image (a JPEG, no stored window) opens at its own full range, not at the DICOM's window.
    open_and_wait(qtbot, window, jpeg)
    assert window.window_level() == (0.5, 1.0)


@pytest.mark.parametrize(
    ("width", "said"), [(0, "window width is 0"), (-400, "window width is -400"), ("abc", "is not a number")]
)
def test_a_dicom_with_an_unusable_stored_window_opens_at_full_range_and_says_why(
    qtbot, window, engine, tmp_path, width, said
):
    from pydicom import dcmread

    from tests.desktop.conftest import gray8, write_dicom

    values = gray8(sample_files("NORMAL", 1, offset=7)[0]).astype(np.uint16) * 16
    path = write_dicom(tmp_path / "bad-window.dcm", values, bits_stored=12, WindowCenter=1200, WindowWidth=800)
    ds = dcmread(path)
    ds["WindowWidth"].VR, ds.WindowWidth = ("LO", width) if isinstance(width, str) else ("DS", width)
    ds.save_as(path)
    result = open_and_wait(qtbot, window, path)
    assert window.window_level() == (0.5, 1.0)  # the full range, as for a file without a window
    message = window.statusBar().currentMessage()
    assert said in message and "shown at the full range" in message, message
    assert result.prediction.probability == engine.predict(load_image(path)).probability


@pytest.mark.parametrize("name", ["film.dcm", "film.png"])
def test_a_file_this_user_may_not_read_says_permission_denied(qtbot, window, jpeg, tmp_path, name):
    """Before: a DICOM the user may not read was reported as "header corrupt or truncated"."""
    from tests.desktop.conftest import gray8, write_dicom

    path = tmp_path / name
    if name.endswith(".dcm"):
        write_dicom(path, gray8(jpeg))
    else:
        path.write_bytes(jpeg.read_bytes())
    path.chmod(0)
    as_root = os.geteuid() == 0
    if as_root:  # permissions do not stop root: read as another user, as a clinic's radiologist would
        os.seteuid(65534)
    try:
        with qtbot.waitSignal(window.errorShown, timeout=TIMEOUT_MS) as blocker:
            window.open_file(path)
    finally:
        if as_root:
            os.seteuid(0)
    message = blocker.args[0]
    assert name in message and "permission denied" in message and "corrupt" not in message, message
    open_and_wait(qtbot, window, jpeg)  # the app carries on


@pytest.mark.parametrize("case", ["dicom-monochrome1", "png16", "rgb"])
def test_other_image_kinds_display_and_predict(qtbot, window, engine, tmp_path, case):
    from tests.desktop.conftest import gray8, write_dicom

    src = sample_files("PNEUMONIA", 1, offset=3)[0]
    g = gray8(src)
    if case == "dicom-monochrome1":
        path = write_dicom(tmp_path / "chest.dcm", (255 - g).astype(np.uint8), photometric="MONOCHROME1")
    elif case == "png16":
        path = tmp_path / "chest16.png"
        from PIL import Image

        Image.fromarray(g.astype(np.uint16) * 257).save(path)
    else:  # also large and not square, as a clinic's radiograph: the heat map is drawn smaller and scaled up
        path = tmp_path / "chest-rgb.png"
        from PIL import Image

        g = np.asarray(Image.fromarray(g).resize((1400, 1100), Image.Resampling.BILINEAR))
        Image.fromarray(np.stack([g] * 3, axis=-1)).save(path)
    result = open_and_wait(qtbot, window, path)
    expected = engine.predict(load_image(path))
    assert window.probability_label.text() == percent(expected.probability)
    # Shown as a radiologist expects: bright bone, dark air, whatever the encoding.
    shown = pixels(window.image_item.pixmap().toImage())[..., 0].astype(int)
    assert np.corrcoef(shown.ravel(), g.ravel())[0, 1] > 0.99
    assert result.image.size == (g.shape[1], g.shape[0])
    assert window.overlay_item.sceneBoundingRect() == window.image_item.sceneBoundingRect()


@pytest.mark.parametrize("case", ["not-an-image", "bomb", "empty"])
def test_bad_files_get_a_clear_message_and_the_app_stays_usable(qtbot, window, jpeg, tmp_path, case):
    from PIL import Image

    if case == "not-an-image":
        path = tmp_path / "report.png"
        path.write_text("Patient report: this is text, not an image\n" * 20)
        words = ("report.png",)
    elif case == "bomb":
        path = tmp_path / "huge.png"
        Image.new("L", (12_000, 12_000)).save(path, optimize=True)  # 144 Mpixel of zeros: a few kB on disk
        words = ("huge.png", "pixel")
    else:
        path = tmp_path / "empty.dcm"
        path.write_bytes(b"")
        words = ("empty.dcm",)
    with qtbot.waitSignal(window.errorShown, timeout=TIMEOUT_MS) as blocker:
        window.open_file(path)
    message = blocker.args[0]
    assert all(w.lower() in message.lower() for w in words), message
    assert window.error_label.isVisible() and window.current is None
    open_and_wait(qtbot, window, jpeg)  # still responsive: the next file works
    assert not window.error_label.isVisible()


def test_a_clinic_resolution_jpeg_shows_its_result_on_a_preview_then_every_pixel(qtbot, window, engine, tmp_path):
    from tests.desktop.conftest import clinic_copies

    film = clinic_copies(tmp_path, n=1)[0]
    expected = engine.predict(engine.load(film, display=False))
    with qtbot.waitSignal(window.displayShown, timeout=TIMEOUT_MS) as full_shown:
        result = open_and_wait(qtbot, window, film)
        # The result comes first, on the reduced decode the model judged, drawn over the film's full size.
        assert result.preview and result.size == (2048, 2048)
        assert max(result.display.shape) < 2048 // 2
        assert window.result_label.text() == expected.label
        assert window.probability_label.text() == percent(expected.probability)
        assert window.scene.sceneRect() == QRectF(0, 0, 2048, 2048)
        assert window.image_item.sceneBoundingRect() == QRectF(0, 0, 2048, 2048)
        assert window.overlay_item.sceneBoundingRect() == window.image_item.sceneBoundingRect()
        assert "2048 × 2048 px" in window.statusBar().currentMessage()
        window.set_window_level(0.4, 0.5)
        window.view.zoom(2.0)
        zoom = window.view.transform().m11()
    full = full_shown.args[0]
    # Then every pixel, in place: same scene, same zoom and window, same result, one audit row.
    assert not full.preview and full.image.gray.shape == (2048, 2048)
    assert (window.image_item.pixmap().width(), window.image_item.pixmap().height()) == (2048, 2048)
    assert window.image_item.sceneBoundingRect() == QRectF(0, 0, 2048, 2048)
    assert window.overlay_item.sceneBoundingRect() == window.image_item.sceneBoundingRect()
    assert window.view.transform().m11() == pytest.approx(zoom)
    assert window.window_level() == pytest.approx((0.4, 0.5))
    assert window.current is full and full.prediction is result.prediction
    assert np.array_equal(full.image.gray, load_image(film).gray)
    assert len(window.audit.rows()) == 1


def test_a_film_that_cannot_be_decoded_in_full_keeps_its_result_on_the_preview(
    qtbot, window, tmp_path, monkeypatch, jpeg
):
    """The file goes away between the model's decode and the display's (a share unmounted): the result
    stays on screen with the preview and the status bar says why it is not sharper."""
    import desktop_app.ui.worker as worker
    from tests.desktop.conftest import clinic_copies

    film = clinic_copies(tmp_path, n=1)[0]
    real_load = worker.load_image

    def vanished_then_load(path, *a, **kw):
        Path(path).unlink()
        return real_load(path, *a, **kw)

    monkeypatch.setattr(worker, "load_image", vanished_then_load)
    with qtbot.waitSignal(window.resultShown, timeout=TIMEOUT_MS):
        window.open_file(film)
    qtbot.waitUntil(lambda: "reduced resolution" in window.statusBar().currentMessage(), timeout=TIMEOUT_MS)
    assert window.current is not None and window.current.preview and window.result_label.text()
    assert "cannot read file" in window.statusBar().currentMessage()
    assert not window.error_label.isVisible()
    open_and_wait(qtbot, window, jpeg)  # and the next file opens as usual
    assert window.current.path == jpeg and not window.current.preview


def test_paging_past_a_film_skips_its_full_decode_and_never_shows_it(qtbot, window, tmp_path, jpeg):
    from tests.desktop.conftest import clinic_copies

    film = clinic_copies(tmp_path, n=1)[0]
    late = []
    window.displayShown.connect(late.append)
    window.open_file(film)
    shown = open_and_wait(qtbot, window, jpeg)  # opened before the film's result came back
    qtbot.wait(300)
    assert shown.path == jpeg and window.current is shown and not late
    assert (window.image_item.pixmap().width(), window.image_item.pixmap().height()) == load_image(jpeg).size
    qtbot.waitUntil(lambda: not window._displaying, timeout=TIMEOUT_MS)  # nothing kept alive for the film


def test_one_opened_file_pages_through_its_folder_with_the_position_in_the_title(qtbot, window, tmp_path):
    """Before: File › Open of one film could not page to its neighbours, and the title said only "PneumoScan"."""
    import shutil

    from PIL import Image

    folder = tmp_path / "reading-list"
    folder.mkdir()
    names = ["a-first.jpeg", "B-second.png", "c-third.jpg"]
    shutil.copyfile(sample_files("NORMAL", 1)[0], folder / names[0])
    Image.open(sample_files("PNEUMONIA", 1)[0]).save(folder / names[1])
    shutil.copyfile(sample_files("NORMAL", 1, offset=1)[0], folder / names[2])
    (folder / "report.txt").write_text("not an image")
    (folder / ".hidden.jpeg").write_bytes(b"")

    def page(action=None, path=None) -> str:
        with qtbot.waitSignal(window.resultShown, timeout=TIMEOUT_MS):
            action.trigger() if action else window.open_files([path])
        return window.windowTitle()

    assert page(path=folder / names[1]) == "B-second.png (2 / 3) — PneumoScan"
    assert [p.name for p in window.files] == names  # name order, case-blind; no text or hidden files
    assert window.prev_action.isEnabled() and window.next_action.isEnabled()
    assert page(window.next_action) == "c-third.jpg (3 / 3) — PneumoScan" and not window.next_action.isEnabled()
    page(window.prev_action)
    assert page(window.prev_action) == "a-first.jpeg (1 / 3) — PneumoScan" and not window.prev_action.isEnabled()
    assert window.file_label.text() == names[0]
    # a triage row opens its film alone: the triage table is the list there
    with qtbot.waitSignal(window.resultShown, timeout=TIMEOUT_MS):
        window.open_file(folder / names[2])
    assert window.windowTitle() == "c-third.jpg (1 / 1) — PneumoScan"
