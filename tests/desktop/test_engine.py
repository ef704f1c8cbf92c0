"""The desktop app's headless core on a real model package, real onnxruntime and real files."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from contract.inference import OnnxModel
from contract.package import CARD, write_card
from contract.preprocess import ImageError, PreprocessSpec, preprocess_file
from desktop_app.audit import COLUMNS, AuditLog
from desktop_app.engine import Engine, EngineError
from desktop_app.images import load_image
from desktop_app.main import main
from tests.conftest import ROOT, sample_files
from tests.desktop.conftest import gray8, write_dicom

FORBIDDEN = ("torch", "mlflow", "airflow", "hub")


@pytest.fixture(scope="module")
def engine(package_dir) -> Engine:
    return Engine(package_dir)


def bare_probability(package_dir: Path, path: Path) -> float:
    return float(
        OnnxModel(package_dir / "model.onnx").run(preprocess_file(path, PreprocessSpec(size=64))[None])[
            "probabilities"
        ][0, 1]
    )


def test_prediction_equals_bare_onnxruntime_and_cli(engine, package_dir, jpeg, capsys):
    pred = engine.predict(load_image(jpeg))
    expected = bare_probability(package_dir, jpeg)
    assert pred.probability == pytest.approx(expected, abs=1e-7)
    assert pred.label == ("PNEUMONIA" if pred.probability >= 0.5 else "NORMAL")
    assert (pred.threshold, pred.model_version, pred.created_at) == (0.5, 7, "2026-11-27T12:00:00+00:00")
    assert pred.cam.shape == (2, 2) and np.isfinite(pred.cam).all() and pred.suitable

    assert main(["predict", str(jpeg), "--model-dir", str(package_dir)]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["probability"] == pytest.approx(expected, abs=1e-7) and line["label"] == pred.label
    assert {"time", "file_name", "sha256", "label", "probability", "threshold", "model_version"} <= set(line)

    exe = ROOT / ".venv" / "bin" / "pneumo-desktop"
    env = {**os.environ, "PNEUMO_DESKTOP_MODEL_DIR": str(package_dir)}
    out = subprocess.run([str(exe), "predict", str(jpeg)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    sub = json.loads(out.stdout)
    assert sub["probability"] == pytest.approx(expected, abs=1e-7) and sub["label"] == pred.label


def test_int8_variant_loads_and_self_checks(package_dir, jpeg):
    eng = Engine(package_dir, "int8")
    card = json.loads((package_dir / CARD).read_text())
    assert "model.int8.onnx" in card["files"], card["int8"]  # the fixture's labels sit far from the threshold
    assert eng.variant == "int8"
    fp32 = Engine(package_dir, "fp32").predict(load_image(jpeg))
    int8 = eng.predict(load_image(jpeg))
    assert abs(int8.probability - fp32.probability) < 0.05  # int8 answers like fp32, within its error


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_dicom_monochrome1_and_2_agree_and_read_as_the_jpeg_rescaled(engine, jpeg, tmp_path, bits):
    px = gray8(jpeg)
    if bits == 8:
        stored, extra = px, {}
    elif bits == 12:  # 12 bits stored with a full-range window and an identity rescale: both LUTs applied
        stored = np.round(px.astype(np.float64) * 4095 / 255).astype(np.uint16)
        extra = {"WindowCenter": 2048, "WindowWidth": 4096, "RescaleSlope": 1, "RescaleIntercept": 0}
    else:
        stored, extra = px.astype(np.uint16) * 257, {}
    top = 2**bits - 1
    m2 = load_image(write_dicom(tmp_path / "m2.dcm", stored, "MONOCHROME2", bits, **extra))
    m1 = load_image(
        write_dicom(tmp_path / "m1.bin", (top - stored).astype(stored.dtype), "MONOCHROME1", bits, **extra)
    )  # no .dcm suffix: found by its DICM preamble
    assert m1.kind == m2.kind == "dicom"
    # MONOCHROME1 and MONOCHROME2 copies are the same image, bit for bit, to the model and on screen.
    assert np.array_equal(m1.model_gray, m2.model_gray) and np.array_equal(m1.gray, m2.gray)
    assert engine.predict(m1).probability == engine.predict(m2).probability
    # On screen, at its full range, the DICOM is the JPEG (the 12-bit copy's full-range window changes nothing).
    np.testing.assert_allclose(m2.gray, px / 255.0, atol=1e-3)
    # To the model it is the JPEG stretched linearly between its 0.5th and 99.5th percentiles (the DICOM
    # rule in desktop_app.images), whatever the bit depth: not the JPEG's input exactly, by design.
    jpeg_gray = load_image(jpeg).model_gray
    lo, hi = np.percentile(jpeg_gray, (0.5, 99.5))
    assert 0 < hi - lo < 1  # the test can fail: the stretch is not the identity
    np.testing.assert_allclose(m2.model_gray, np.clip((jpeg_gray - lo) / (hi - lo), 0, 1), atol=2e-3)


def test_sixteen_bit_and_rgb_png_are_handled(engine, jpeg, tmp_path):
    px = gray8(jpeg)
    Image.fromarray(px.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    Image.open(jpeg).convert("RGB").save(tmp_path / "rgb.png")
    p = engine.predict(load_image(jpeg)).probability
    for name in ("g16.png", "rgb.png"):
        img = load_image(tmp_path / name)
        np.testing.assert_allclose(img.gray, px / 255.0, atol=1e-6)
        assert engine.predict(img).probability == pytest.approx(p, abs=1e-5)


def bad_files(tmp_path: Path, jpeg: Path) -> dict[str, Path]:
    data = jpeg.read_bytes()
    files = {
        "corrupt": tmp_path / "corrupt.jpeg",
        "not an image": tmp_path / "notes.png",
        "not a DICOM": tmp_path / "junk.dcm",
        "empty": tmp_path / "empty.png",
    }
    files["corrupt"].write_bytes(data[: len(data) // 3])
    files["not an image"].write_text("patient list, not a picture\n")
    files["not a DICOM"].write_bytes(b"\x00" * 64 + b"garbage")
    files["empty"].write_bytes(b"")
    return files


@pytest.mark.parametrize(
    "kind, reason",
    [("corrupt", "corrupt"), ("not an image", "not an image"), ("not a DICOM", "DICOM"), ("empty", "empty")],
)
def test_unusable_files_raise_a_clear_image_error(jpeg, tmp_path, kind, reason):
    with pytest.raises(ImageError, match=reason):
        load_image(bad_files(tmp_path, jpeg)[kind])


def test_decompression_bombs_are_refused_before_decoding(tmp_path):
    Image.new("L", (8000, 8000)).save(tmp_path / "bomb.png")  # 64 Mpx, a few kB on disk
    with pytest.raises(ImageError, match="too large"):
        load_image(tmp_path / "bomb.png")
    bomb = write_dicom(tmp_path / "bomb.dcm", np.zeros((64, 64), np.uint8))
    import pydicom

    ds = pydicom.dcmread(bomb)
    ds.Rows = ds.Columns = 10000  # header claims 100 Mpx
    ds.save_as(bomb)
    with pytest.raises(ImageError, match="too large"):
        load_image(bomb)


def test_cli_reports_bad_files_and_predicts_the_others(package_dir, jpeg, tmp_path, capsys):
    bad = bad_files(tmp_path, jpeg)
    good2 = sample_files("NORMAL", 1, offset=6)[0]
    assert (
        main(
            [
                "predict",
                str(jpeg),
                str(bad["corrupt"]),
                str(bad["not an image"]),
                str(good2),
                "--model-dir",
                str(package_dir),
            ]
        )
        == 1
    )
    out = capsys.readouterr()
    lines = [json.loads(line) for line in out.out.splitlines()]
    assert [("error" in x) for x in lines] == [False, True, True, False]
    assert "corrupt" in lines[1]["error"] and "not an image" in lines[2]["error"]
    assert "Traceback" not in out.err


def test_cli_without_model_says_so(capsys, monkeypatch, jpeg):
    monkeypatch.delenv("PNEUMO_DESKTOP_MODEL_DIR", raising=False)
    assert main(["predict", str(jpeg)]) == 2
    err = capsys.readouterr().err
    assert "No model is installed" in err and "--model-dir" in err


def tampered_copy(package_dir: Path, dest: Path) -> Path:
    return Path(shutil.copytree(package_dir, dest))


def test_tampered_model_file_is_refused(package_dir, tmp_path):
    pkg = tampered_copy(package_dir, tmp_path / "pkg")
    data = bytearray((pkg / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (pkg / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(EngineError, match="model.onnx does not match its sha256"):
        Engine(pkg)


def test_wrong_reference_probability_is_refused(package_dir, tmp_path):
    pkg = tampered_copy(package_dir, tmp_path / "pkg")
    card = json.loads((pkg / CARD).read_text())
    p = card["reference"]["probabilities"]
    card["reference"]["probabilities"] = [p[0] - 0.01, p[1] + 0.01]
    write_card(pkg, card)  # a consistent card (hashes fine) whose model does not reproduce it
    with pytest.raises(EngineError, match="reference image"):
        Engine(pkg)
    assert Engine(package_dir).version == 7  # the original still loads


@pytest.mark.parametrize(
    "field, value, reason",
    [
        ("threshold", 1.5, "Invalid threshold 1.5"),
        ("threshold", float("nan"), "Invalid threshold nan"),
        ("classes", ["PNEUMONIA", "NORMAL"], "Invalid classes"),
    ],
)
def test_a_consistent_card_with_a_wrong_field_is_refused_by_the_app(package_dir, tmp_path, jpeg, field, value, reason):
    """Signed-looking but wrong: all NORMAL, NaN, or the labels inverted. The app refuses the package
    (and the CLI says why with exit code 2) instead of answering with it."""
    pkg = tampered_copy(package_dir, tmp_path / "pkg")
    card = json.loads((pkg / CARD).read_text())
    card[field] = value
    write_card(pkg, card)  # hashes consistent: only the field is wrong
    with pytest.raises(EngineError, match=f"Model package refused: {reason}"):
        Engine(pkg)
    assert main(["predict", str(jpeg), "--model-dir", str(pkg)]) == 2


def test_audit_log_records_exports_and_confirms(engine, jpeg, tmp_path, package_dir, capsys):
    db = tmp_path / "audit.sqlite"
    files = [jpeg, sample_files("NORMAL", 1)[0]]
    assert main(["predict", *map(str, files), "--model-dir", str(package_dir), "--audit", str(db)]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    with AuditLog(db) as log:
        rows = log.rows()
        assert [r["file_name"] for r in rows] == [f.name for f in files]
        assert [r["probability"] for r in rows] == [p["probability"] for p in printed]
        assert rows[0]["sha256"] == __import__("hashlib").sha256(jpeg.read_bytes()).hexdigest()
        assert rows[0]["model_version"] == 7 and rows[0]["confirmed_label"] is None
        assert rows[0]["time"].endswith("+00:00")
        # the same file shown again by the same model and variant: a view counted on its row, not a new row
        again = log.record(engine.predict(load_image(jpeg)), jpeg)
        assert again["id"] == rows[0]["id"] and again["views"] == 2 and again["last_viewed_at"] >= rows[0]["time"]
        # another variant of the model is another result: its own row, variant recorded
        int8 = Engine(package_dir, "int8")
        other = log.record(int8.predict(load_image(jpeg)), jpeg)
        assert other["id"] != rows[0]["id"] and (other["variant"], other["views"]) == ("int8", 1)
        confirmed = log.confirm(rows[1]["id"], "PNEUMONIA")
        assert confirmed["confirmed_label"] == "PNEUMONIA" and confirmed["confirmed_at"]
        with pytest.raises(ValueError, match="Supported: NORMAL, PNEUMONIA"):
            log.confirm(rows[0]["id"], "maybe")
        with open(log.export_csv(tmp_path / "audit.csv"), newline="") as f:
            assert f.readline().startswith("# For investigational use — not a diagnosis. PneumoScan ")
            exported = list(csv.DictReader(f))
        assert [list(r) for r in exported][0] == list(COLUMNS)
        assert exported == [{k: "" if v is None else str(v) for k, v in r.items()} for r in log.rows()]
        assert len(exported) == 3
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_app_never_imports_torch_mlflow_airflow_or_hub(package_dir, jpeg):
    code = (
        "import sys\n"
        "from desktop_app import audit, engine, images, main\n"
        f"rc = main.main(['predict', {str(jpeg)!r}, '--model-dir', {str(package_dir)!r}])\n"
        "import desktop_app.main as m\n"
        "bad = sorted({n.split('.')[0] for n in sys.modules} & set(%r))\n"
        "print('BAD', bad, 'RC', rc)\n" % (FORBIDDEN,)
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "BAD [] RC 0" in out.stdout, out.stdout
