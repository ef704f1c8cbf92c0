"""Results the app must not give: images it is not fit to judge (withheld) and outputs that are not finite.

Real packages (``make_package``: a random-init ResNet18 exported by the hub's code), real
onnxruntime, real DICOM files written with pydicom, the real window (offscreen Qt) and the CLI.
A random model's OOD score says nothing, so the model-side refusal is driven here by the card's
threshold; tests/export/test_trained_guard.py shows a trained model refusing real non-chest images.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

from contract.package import CARD, write_card
from desktop_app.audit import AuditLog
from desktop_app.engine import ATYPICAL, Engine, EngineError, PredictionError
from desktop_app.images import load_image
from desktop_app.main import main
from tests.desktop.conftest import make_package


def copy_with_card(package_dir: Path, dest: Path, **changes) -> Path:
    """A copy of the package whose card has ``changes`` merged into its top-level entries."""
    shutil.copytree(package_dir, dest)
    card = json.loads((dest / CARD).read_text())
    for key, value in changes.items():
        card[key] = {**card[key], **value} if isinstance(value, dict) else value
    write_card(dest, card)
    return dest


@pytest.fixture(scope="module")
def strict_package(package_dir, tmp_path_factory) -> Path:
    """The test package with an OOD threshold no image meets: every result is withheld as atypical."""
    return copy_with_card(package_dir, tmp_path_factory.mktemp("strict") / "7", suitability={"threshold": 1e-9})


def ct_dicom(path: Path) -> Path:
    """pydicom's bundled real CT slice (Modality CT), enlarged so only the modality rule refuses it."""
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    arr = ds.pixel_array
    big = np.kron(arr, np.ones((2, 2), dtype=arr.dtype))
    ds.Rows, ds.Columns = big.shape
    ds.PixelData = big.tobytes()
    ds.save_as(path)
    return path


# ---- the engine and the CLI ------------------------------------------------------------------


def test_atypical_image_keeps_the_models_numbers_but_gives_no_verdict(strict_package, jpeg, capsys):
    pred = Engine(strict_package).predict(load_image(jpeg))
    assert not pred.suitable and pred.verdict is None
    assert pred.reason_code == ATYPICAL and "unlike the images this model was trained on" in pred.reason
    assert pred.ood > pred.ood_threshold and 0 <= pred.probability <= 1

    assert main(["predict", str(jpeg), "--model-dir", str(strict_package)]) == 0, "a withheld result is a result"
    line = json.loads(capsys.readouterr().out)
    assert line["suitable"] is False and line["label"] is None and line["probability"] is None
    assert "unlike the images" in line["reason"] and "withheld_label" not in line

    assert main(["predict", str(jpeg), "--model-dir", str(strict_package), "--show-withheld"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["label"] is None and line["withheld_label"] == pred.label
    assert line["withheld_probability"] == pytest.approx(pred.probability)


def test_ct_dicom_is_refused_by_modality_with_the_default_threshold(package_dir, tmp_path, capsys):
    ct = ct_dicom(tmp_path / "ct.dcm")
    pred = Engine(package_dir).predict(load_image(ct))
    assert not pred.suitable and pred.reason_code == "modality" and "CT" in pred.reason

    audit_db = tmp_path / "audit.db"
    assert main(["predict", str(ct), "--model-dir", str(package_dir), "--audit", str(audit_db)]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["suitable"] is False and line["reason_code"] == "modality"
    with AuditLog(audit_db) as audit:
        (row,) = audit.rows()
    assert row["suitable"] == 0 and "CT" in row["withheld_reason"] and row["variant"] == "fp32"


def test_a_chest_xray_is_suitable_and_recorded_so(package_dir, jpeg, tmp_path, capsys):
    audit_db = tmp_path / "audit.db"
    assert main(["predict", str(jpeg), "--model-dir", str(package_dir), "--audit", str(audit_db)]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["suitable"] is True and line["label"] in ("NORMAL", "PNEUMONIA") and "reason" not in line
    with AuditLog(audit_db) as audit:
        (row,) = audit.rows()
    assert row["suitable"] == 1 and row["withheld_reason"] is None and row["ood_score"] > 0


# ---- outputs that are not finite -------------------------------------------------------------


def nan_for_mean_band(package_dir: Path, dest: Path, lo: float, hi: float) -> Path:
    """A copy of the package whose ONNX probabilities are NaN when the input's mean lies in (lo, hi).

    ``p + 0 * sqrt((m - lo) * (m - hi))``: the square root of a negative number is NaN inside the band,
    and 0 × a finite number leaves ``p`` unchanged outside it. The card is re-written for the new file.
    """
    shutil.copytree(package_dir, dest)
    card = json.loads((dest / CARD).read_text())
    for name in [n for n in ("model.int8.onnx",) if n in card["files"]]:
        (dest / name).unlink()
        del card["files"][name]
    model = onnx.load(str(dest / "model.onnx"))
    g = model.graph
    out = next(o for o in g.output if o.name == "probabilities")
    for node in g.node:
        node.output[:] = ["p_raw" if o == "probabilities" else o for o in node.output]
    for node in g.node:
        node.input[:] = ["p_raw" if i == "probabilities" else i for i in node.input]
    g.initializer.extend(
        [
            helper.make_tensor("band_lo", TensorProto.FLOAT, [], [lo]),
            helper.make_tensor("band_hi", TensorProto.FLOAT, [], [hi]),
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor("axes_chw", TensorProto.INT64, [3], [1, 2, 3]),
        ]
    )
    g.node.extend(
        [
            helper.make_node("ReduceMean", ["image", "axes_chw"], ["m4"], keepdims=0),
            helper.make_node("Sub", ["m4", "band_lo"], ["d_lo"]),
            helper.make_node("Sub", ["m4", "band_hi"], ["d_hi"]),
            helper.make_node("Mul", ["d_lo", "d_hi"], ["band"]),
            helper.make_node("Sqrt", ["band"], ["root"]),
            helper.make_node("Mul", ["root", "zero"], ["nan_or_zero"]),
            helper.make_node("Unsqueeze", ["nan_or_zero", "axes_one"], ["nan_col"]),
            helper.make_node("Add", ["p_raw", "nan_col"], ["probabilities"]),
        ]
    )
    g.initializer.append(helper.make_tensor("axes_one", TensorProto.INT64, [1], [1]))
    assert out.name == "probabilities"
    onnx.save(model, str(dest / "model.onnx"))
    card.setdefault("reference", {}).pop("probabilities_int8", None)
    card["reference"].pop("ood_int8", None)
    card["suitability"].pop("threshold_int8", None)
    write_card(dest, card)
    return dest


def mean_input(gray_mean: float) -> float:
    """The model input's mean for an image of gray mean ``gray_mean`` (ImageNet normalisation)."""
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    return float(((gray_mean - mean) / std).mean())


def test_model_with_nan_on_a_white_image_is_refused_at_load(package_dir, tmp_path):
    white = mean_input(1.0)
    bad = nan_for_mean_band(package_dir, tmp_path / "7", white - 0.05, white + 0.05)
    with pytest.raises(EngineError, match="NaN or infinity"):
        Engine(bad)


def test_nan_output_for_one_image_is_an_error_line_not_a_label(package_dir, tmp_path, jpeg, capsys):
    # NaN only for images whose gray mean is near 0.8: none of the self-check's synthetic images
    bad = nan_for_mean_band(package_dir, tmp_path / "7", mean_input(0.78), mean_input(0.82))
    engine = Engine(bad)  # the reference image and the synthetic inputs are fine
    yy = np.linspace(0.6, 1.0, 256, dtype=np.float32)[:, None] * np.ones((1, 256), np.float32)
    bright = tmp_path / "bright.png"
    Image.fromarray((yy * 65535).astype(np.uint16)).save(bright)
    with pytest.raises(PredictionError, match="no valid result"):
        engine.predict(load_image(bright))

    audit_db = tmp_path / "audit.db"
    code = main(["predict", str(bright), str(jpeg), "--model-dir", str(bad), "--audit", str(audit_db)])
    assert code == 1, "a file without a valid result makes the exit code 1"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]  # valid JSON: no NaN
    assert "no valid result" in lines[0]["error"] and "label" not in lines[0]
    assert lines[1]["label"] in ("NORMAL", "PNEUMONIA")
    with AuditLog(audit_db) as audit:
        assert [r["file_name"] for r in audit.rows()] == [jpeg.name], "nothing recorded for the NaN image"


# ---- the window and triage -------------------------------------------------------------------


@pytest.fixture
def strict_window(qtbot, strict_package, tmp_path):
    from desktop_app.ui.window import MainWindow

    audit = AuditLog(tmp_path / "audit.db")
    w = MainWindow(Engine(strict_package), audit)
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    yield w, audit
    w.close()
    audit.close()


def show(qtbot, window, path: Path):
    with qtbot.waitSignal(window.resultShown, timeout=30_000) as blocker:
        window.open_files([str(path)])
    return blocker.args[0]


def test_panel_withholds_the_verdict_hides_the_heat_map_and_audits_it(qtbot, strict_window, jpeg):
    window, audit = strict_window
    result = show(qtbot, window, jpeg)
    assert not result.prediction.suitable
    assert window.result_label.text() == "No result"
    assert window.withheld_label.isVisible() and "unlike the images" in window.withheld_label.text()
    assert window.probability_label.text() == "—", "no number to read a verdict into"
    assert window.heatmap_action.isChecked() and not window.overlay_item.isVisible()
    assert "withheld" in window.statusBar().currentMessage()
    (row,) = audit.rows()
    assert row["suitable"] == 0 and "unlike the images" in row["withheld_reason"]

    window.show_withheld = True  # the expert setting: the model's answer, marked
    result = show(qtbot, window, jpeg)
    assert "withheld, not to be relied on" in window.probability_label.text()
    assert window.result_label.text() == "No result" and window.overlay_item.isVisible()


def test_triage_puts_withheld_images_in_their_own_group_with_the_reason(qtbot, package_dir, tmp_path, jpeg):
    from desktop_app.ui.triage import TriageDialog

    folder = tmp_path / "today"
    folder.mkdir()
    shutil.copy(jpeg, folder / "chest.jpeg")
    ct_dicom(folder / "head-ct.dcm")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    dialog = TriageDialog(Engine(package_dir), folder)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: len(dialog.model.rows) == 3 and not dialog.is_running(), timeout=60_000)
    rows = dialog.displayed_rows()
    assert [r.name for r in rows] == ["chest.jpeg", "head-ct.dcm", "broken.png"], "results, withheld, errors"
    cells = dialog.displayed_text()
    assert cells[1][1] == "No result" and cells[1][2] == "" and cells[1][3].startswith("Withheld: ")
    assert "CT" in cells[1][3]
    out = dialog.export_csv(tmp_path / "triage.csv")
    with open(out, newline="") as f:
        assert f.readline().startswith("# For investigational use")
        by_file = {r["file"]: r for r in csv.DictReader(f)}
    assert by_file["head-ct.dcm"]["p_pneumonia"] == "" and "Withheld" in by_file["head-ct.dcm"]["status"]
    assert float(by_file["chest.jpeg"]["p_pneumonia"]) >= 0


def test_a_package_without_the_suitability_output_is_refused(tmp_path):
    """A format-1 package (no OOD output, CAM min-max per image) is refused with a reason, not misread."""
    old = make_package(tmp_path, version=3, seed=1, int8=False)
    card = json.loads((old / CARD).read_text())
    card["format"] = 1
    write_card(old, card)
    with pytest.raises(EngineError, match="Unsupported package format 1"):
        Engine(old)


def test_audit_table_and_your_read_of_a_withheld_image_say_there_was_no_result(qtbot, strict_package, jpeg, tmp_path):
    from desktop_app.ui.audit_model import AuditModel

    with AuditLog(tmp_path / "audit.db") as audit:
        row = audit.record(Engine(strict_package).predict(load_image(jpeg)), jpeg)
        row = audit.confirm(row["id"], "PNEUMONIA" if row["label"] == "NORMAL" else "NORMAL")
    model = AuditModel()
    model.load([row])
    cell = lambda col, role=0: model.data(model.index(0, col), role)  # noqa: E731
    assert cell(AuditModel.COL_LABEL) == "No result (withheld)" and cell(AuditModel.COL_PROBABILITY) == ""
    assert "unlike the images" in cell(AuditModel.COL_LABEL, 3)  # the tooltip: the reason
    assert "corrected" not in cell(AuditModel.COL_READ), "no verdict to correct"
