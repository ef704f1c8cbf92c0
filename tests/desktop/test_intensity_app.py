"""The app applies the intensity standardisation its model's card names, exactly as the hub does."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from contract.inference import OnnxModel
from contract.package import CARD, write_card
from contract.preprocess import PreprocessSpec, preprocess_file
from desktop_app.engine import Engine, EngineError
from desktop_app.images import load_image
from tests.conftest import sample_files
from tests.desktop.conftest import SIZE, make_package


@pytest.fixture(scope="module")
def equalize_package(tmp_path_factory):
    return make_package(tmp_path_factory.mktemp("eq"), version=3, seed=1, intensity="equalize", int8=False)


def test_app_result_equals_onnxruntime_on_the_hubs_equalised_tensor(equalize_package):
    engine = Engine(equalize_package)
    assert engine.spec.intensity == "equalize"
    spec = PreprocessSpec(size=SIZE, intensity="equalize")
    model = OnnxModel(equalize_package / "model.onnx")
    for f in sample_files("NORMAL", 2) + sample_files("PNEUMONIA", 2):
        pred = engine.predict(load_image(f))
        hub_side = float(model.run(preprocess_file(f, spec)[None])["probabilities"][0, 1])
        unstandardised = float(model.run(preprocess_file(f, PreprocessSpec(size=SIZE))[None])["probabilities"][0, 1])
        assert pred.probability == pytest.approx(hub_side, abs=1e-7)
        assert not np.isclose(hub_side, unstandardised, atol=1e-7)


def test_a_card_naming_an_unknown_standardisation_is_refused(equalize_package, tmp_path):
    pkg = tmp_path / "pkg"
    shutil.copytree(equalize_package, pkg)
    card = json.loads((pkg / CARD).read_text())
    card["preprocessing"]["intensity"] = "clahe"
    write_card(pkg, card)
    with pytest.raises(EngineError, match="Model package refused: Invalid preprocessing intensity 'clahe'"):
        Engine(pkg)
