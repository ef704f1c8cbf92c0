"""The app uses its site's operating point from the card (temperature and threshold), and says so."""

from __future__ import annotations

import json

import numpy as np
import pytest

from contract.inference import OnnxModel
from contract.package import PackageError
from contract.preprocess import PreprocessSpec, preprocess_file
from desktop_app.engine import Engine, EngineError
from desktop_app.images import load_image
from desktop_app.main import main
from tests.desktop.test_withheld import copy_with_card


@pytest.fixture(scope="module")
def two_site_package(package_dir, tmp_path_factory):
    points = {"nih-cc": {"temperature": 0.5, "threshold": 0.3, "n_val": 40}}
    return copy_with_card(package_dir, tmp_path_factory.mktemp("sites") / "7", operating_points=points)


def test_the_clinics_site_gets_its_own_temperature_and_threshold(two_site_package, jpeg, capsys, tmp_path):
    logits = (
        OnnxModel(two_site_package / "model.onnx")
        .run(preprocess_file(jpeg, PreprocessSpec(size=64))[None])["logits"][0]
        .astype(np.float64)
    )
    z = logits / 0.5
    expected = float(np.exp(z[1]) / np.exp(z).sum())

    site = Engine(two_site_package, site="nih-cc").predict(load_image(jpeg))
    assert site.operating_point == "nih-cc" and site.threshold == 0.3
    assert site.probability == pytest.approx(expected, abs=1e-6)
    assert site.label == ("PNEUMONIA" if expected >= 0.3 else "NORMAL")

    pooled = Engine(two_site_package, site="kermany").predict(load_image(jpeg))  # no point of its own
    assert pooled.operating_point == "pooled" and pooled.threshold == 0.5

    admin = tmp_path / "admin" / "config.toml"
    admin.write_text('site = "nih-cc"\n')
    assert main(["predict", str(jpeg), "--model-dir", str(two_site_package)]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["operating_point"] == "nih-cc" and line["threshold"] == 0.3


@pytest.mark.parametrize("bad", [{"temperature": 0, "threshold": 0.3}, {"temperature": 1.0, "threshold": 1.5}, "x"])
def test_a_bad_operating_point_refuses_the_package(package_dir, tmp_path, bad):
    with pytest.raises((EngineError, PackageError), match="operating point"):
        Engine(copy_with_card(package_dir, tmp_path / "7", operating_points={"nih-cc": bad}))
