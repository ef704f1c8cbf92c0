"""Export: one ONNX file with logits/probabilities/CAM that agrees with torch, or nothing at all."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

import hub.onnx_export as ox
from contract.inference import OnnxModel
from contract.package import ModelPackage, PackageError
from contract.preprocess import PreprocessSpec, preprocess_file
from hub.config import TrainConfig
from hub.export import export_model
from hub.pool import GOLD, TRAIN, VAL
from hub.trained_model import TrainedModel
from tests.conftest import train_on_sample

CFG = TrainConfig(epochs=2, batch_size=8, image_size=64, weights="none", num_workers=0, max_train_images=48)


@pytest.fixture(scope="module")
def trained(_imported_home, tmp_path_factory):
    return train_on_sample(_imported_home, tmp_path_factory.mktemp("trained"), CFG, temperature=1.7, threshold=0.4)


def test_package_agrees_with_torch_and_has_the_contract_outputs(trained, tmp_path):
    paths, view, model_dir = trained
    out = export_model(paths, str(model_dir), version=3, out_dir=tmp_path / "pkg")
    pkg = ModelPackage.load(out)  # checks sha256 and size of every file
    card = pkg.card
    assert card["version"] == 3 and card["classes"] == ["NORMAL", "PNEUMONIA"]
    assert PreprocessSpec.from_dict(card["preprocessing"]) == CFG.spec()
    assert card["temperature"] == 1.7 and card["threshold"] == 0.4
    assert card["provenance"]["dataset_version"] == view.version
    assert sorted(p.name for p in out.iterdir()) == sorted([*card["files"], "model.json"])
    onnx.checker.check_model(str(out / "model.onnx"), full_check=True)
    assert not any(
        t.data_location == onnx.TensorProto.EXTERNAL for t in onnx.load(str(out / "model.onnx")).graph.initializer
    ), "one self-contained file"

    trained = TrainedModel.load(model_dir)
    files = view.files(GOLD)[0][:5]
    batch = np.stack([preprocess_file(f, CFG.spec()) for f in files])
    _, probs_t, _ = ox.torch_outputs(trained.model, 1.7, batch)
    model = OnnxModel(out / "model.onnx")
    got = model.run(batch)
    assert np.abs(got["probabilities"] - probs_t).max() <= 1e-4
    assert card["verification"]["passed"] and card["verification"]["max_rel_ood_diff"] <= 1e-3
    assert got["logits"].shape == (5, 2) and got["cam"].shape == (5, 2, 2) and got["ood"].shape == (5,)  # 64 px / 32
    # temperature is inside the graph: probabilities = softmax(logits / T)
    z = got["logits"] / 1.7
    assert np.allclose(got["probabilities"], np.exp(z) / np.exp(z).sum(1, keepdims=True), atol=1e-5)
    # the heat map is the calibrated log-odds per region, on one scale for every image (never min-max
    # per image): its mean is the image's log-odds, so a confident NORMAL film's map is mostly below 0
    p = got["probabilities"][:, 1].astype(np.float64)
    assert np.allclose(got["cam"].mean(axis=(1, 2)), np.log(p / (1 - p)), atol=1e-3)
    assert card["cam"]["units"] == "log-odds" and card["cam"]["scale"] >= 1.0
    # the suitability score: fitted on the training split, thresholded on validation (≥ 99 % accepted)
    suit = card["suitability"]
    assert suit["method"] == "mahalanobis" and suit["val_accept"] >= 0.99 and suit["threshold"] > 0
    assert suit["n_fit"] == len(view.files(TRAIN)[0]) and suit["n_val"] == len(view.files(VAL)[0])
    assert np.allclose(model.run(batch[:1])["probabilities"], got["probabilities"][:1], atol=1e-6), "dynamic batch"

    ref = model.run(preprocess_file(out / "reference.png", CFG.spec())[None])
    assert np.allclose(ref["probabilities"][0], card["reference"]["probabilities"], atol=card["reference"]["tolerance"])
    assert np.isclose(ref["ood"][0], card["reference"]["ood"], rtol=1e-3)
    if card["int8"]["kept"]:
        assert "model.int8.onnx" in card["files"] and card["int8"]["label_agreement"] >= 0.99
        assert OnnxModel(out / "model.int8.onnx").run(batch)["probabilities"].shape == (5, 2)


def test_export_that_disagrees_with_torch_is_refused_and_leaves_nothing(trained, tmp_path, monkeypatch):
    paths, _, model_dir = trained
    real = ox.to_onnx
    # inject wrong constants: the graph gets a different temperature than the model card
    monkeypatch.setattr(ox, "to_onnx", lambda resnet, t, spec, path, ood: real(resnet, t * 4, spec, path, ood))
    with pytest.raises(ox.ExportError, match="disagrees with torch"):
        export_model(paths, str(model_dir), version=1, out_dir=tmp_path / "bad", int8=False)
    assert list(tmp_path.glob("*bad*")) == []


def test_int8_that_disagrees_is_dropped_and_the_card_says_why(trained, tmp_path, monkeypatch):
    paths, _, model_dir = trained
    real = ox.build_package
    monkeypatch.setattr(ox, "build_package", lambda *a, **k: real(*a, **{**k, "min_agreement": 1.01}))
    out = export_model(paths, str(model_dir), version=2, out_dir=tmp_path / "pkg")
    card = json.loads((out / "model.json").read_text())
    assert card["int8"]["kept"] is False and 0 <= card["int8"]["label_agreement"] <= 1
    assert "model.int8.onnx" not in card["files"] and not (out / "model.int8.onnx").exists()


def test_altered_package_file_is_refused(trained, tmp_path):
    paths, _, model_dir = trained
    out = export_model(paths, str(model_dir), version=1, out_dir=tmp_path / "pkg", int8=False)
    with open(out / "reference.png", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01")
    with pytest.raises(PackageError, match="reference.png does not match its sha256"):
        ModelPackage.load(out)


def test_clinic_side_modules_do_not_import_torch():
    code = (
        "import sys, contract.preprocess, contract.inference, contract.package, contract.atomic, feed.client; "
        "bad = [m for m in ('torch', 'mlflow', 'airflow', 'hub', 'feed.repository') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ox.Path(ox.__file__).parent.parent)


def test_round_trip_export_publish_serve_download_infer(trained, tmp_path):
    """Hub → signed feed → real HTTP server → client → onnxruntime: the clinic gets torch's probabilities."""
    from feed.client import FeedClient
    from feed.repository import init_feed, publish
    from feed.server import serve

    paths, view, model_dir = trained
    pkg = export_model(paths, str(model_dir), version=1, out_dir=tmp_path / "pkg")
    root = init_feed(tmp_path / "feed", tmp_path / "keys")
    publish(tmp_path / "feed", tmp_path / "keys", pkg)
    with serve(tmp_path / "feed", "127.0.0.1", 0).start() as server:
        client = FeedClient(root, server.url, tmp_path / "clinic")
        assert client.check().version == 1
        local = client.download()
    got = ModelPackage.load(local)  # verified again, on the clinic side
    assert got.card == ModelPackage.load(pkg).card
    files = view.files(GOLD)[0][:6]
    batch = np.stack([preprocess_file(f, PreprocessSpec.from_dict(got.card["preprocessing"])) for f in files])
    _, probs_torch, _ = ox.torch_outputs(TrainedModel.load(model_dir).model, got.card["temperature"], batch)
    probs_ort = OnnxModel(got.model_file("fp32")).run(batch)["probabilities"]
    assert np.abs(probs_ort - probs_torch).max() <= 1e-4
