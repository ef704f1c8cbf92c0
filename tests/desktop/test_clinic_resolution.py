"""Clinic-resolution films: a 2048 px image is reduced early for the model, as the hub's preprocessing
reduces it, so the app's input is the hub's exactly and differs from a full decode by little; the viewer
still shows every pixel."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from contract.preprocess import REDUCED_FROM, normalize, prepare_gray, preprocess, preprocess_file, read_image
from desktop_app.engine import Engine
from desktop_app.images import load_image, reduction
from tests.conftest import sample_files
from tests.desktop.conftest import clinic_copies, write_dicom


def test_a_large_jpeg_reaches_the_model_as_the_hub_preprocesses_it_and_close_to_a_full_decode(tmp_path, package_dir):
    engine = Engine(package_dir)
    diffs, pdiffs = [], []
    for f in clinic_copies(tmp_path):
        for display in (True, False):
            image = engine.load(f, display=display)
            app_input = normalize(prepare_gray(image.model_gray, engine.spec), engine.spec)
            assert np.array_equal(app_input, preprocess_file(f, engine.spec)), "app and hub inputs differ"
        assert image.model_gray.shape[0] < 2048 // 2 and REDUCED_FROM in image.pil.info
        full = preprocess(read_image(f), engine.spec)
        diffs.append(np.abs(app_input - full).max() * 0.229)  # back in [0, 1] grey units
        full_p = engine.model.run(full[None])["probabilities"][0][1]
        pdiffs.append(abs(engine.predict(image).probability - full_p))
    # measured on these films: at most 0.0066 grey (1.7/255) per pixel
    assert max(diffs) < 3 / 255, diffs
    assert max(pdiffs) < 0.02, pdiffs


def test_the_viewer_keeps_every_pixel_while_the_model_gets_the_reduced_film(tmp_path, package_dir):
    f = clinic_copies(tmp_path, n=1)[0]
    engine = Engine(package_dir)
    shown = engine.load(f)
    assert shown.size == Image.open(f).size and shown.gray.shape == (2048, 2048)
    assert np.array_equal(shown.model_gray, engine.load(f, display=False).model_gray)
    small = sample_files("NORMAL", 1)[0]  # a small film is decoded whole, for both
    assert np.array_equal(engine.load(small).model_gray, engine.load(small).gray)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_a_large_dicom_is_reduced_once_and_its_input_stays_close_to_the_full_rule(tmp_path, package_dir, photometric):
    src = np.asarray(Image.open(sample_files("PNEUMONIA", 1)[0]).convert("L").resize((2048, 2048)), dtype=np.float64)
    pixels = np.round(src / 255 * 4095).astype(np.uint16)
    if photometric == "MONOCHROME1":
        pixels = 4095 - pixels
    path = write_dicom(tmp_path / "big.dcm", pixels, photometric, bits_stored=12)
    engine = Engine(package_dir)
    reduced, full = engine.load(path, display=False), engine.load(path)
    k = reduction((2048, 2048), engine.spec.size)
    assert k >= 2 and reduced.model_gray.shape == (2048 // k, 2048 // k) and full.gray.shape == (2048, 2048)

    whole = load_image(path)  # the rule without reduction (what the labelled export sends the hub)
    a = prepare_gray(reduced.model_gray, engine.spec)
    b = prepare_gray(whole.model_gray, engine.spec)
    # measured: at most 0.017 (4.4/255) at an edge, 0.0032 on average, for this 64 px test model (a 16x box)
    assert np.abs(a - b).max() < 6 / 255 and np.abs(a - b).mean() < 1.5 / 255
    assert abs(engine.predict(reduced).probability - engine.predict(whole).probability) < 0.02
