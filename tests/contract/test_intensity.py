"""Intensity standardisation (contract.preprocess): one definition for the hub's training, its
evaluation and export, and the app; recorded in the card and read back from it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from contract.preprocess import (
    INTENSITY_METHODS,
    PreprocessSpec,
    preprocess,
    preprocess_file,
    read_image,
    standardize,
    to_gray,
)
from hub.config import TrainConfig
from hub.train import XrayDataset
from tests.conftest import sample_files


def _xray() -> np.ndarray:
    return to_gray(read_image(sample_files("PNEUMONIA", 1)[0]))


def test_percentile_gives_the_same_input_whatever_the_gain_and_offset_of_the_scanner():
    g = _xray()
    darker = 0.15 + 0.6 * g  # another machine's exposure: a linear change of the grey scale
    a, b = standardize(g, "percentile"), standardize(darker, "percentile")
    assert np.abs(a - b).max() < 1e-4
    assert np.abs(g - darker).mean() > 0.05  # without it the inputs differ
    assert a.min() == 0.0 and a.max() == 1.0


def test_equalize_gives_nearly_the_same_input_whatever_monotone_curve_the_scanner_applies():
    g = _xray()
    gamma = g**0.6  # a different tone curve: monotone, not linear
    a, b = standardize(g, "equalize"), standardize(gamma, "equalize")
    assert np.abs(a - b).mean() < 0.01  # 256-level quantisation moves a few pixels by one level
    assert np.abs(g - gamma).mean() > 0.05
    hist = np.histogram(a, bins=4, range=(0, 1))[0] / a.size
    assert hist.min() > 0.15  # equalised: the grey levels are spread over the range


@pytest.mark.parametrize("method", INTENSITY_METHODS)
def test_flat_or_dark_images_stay_finite_and_in_range(method):
    for g in (np.zeros((40, 40), np.float32), np.full((40, 40), 0.7, np.float32), np.eye(40, dtype=np.float32)):
        out = standardize(g, method)
        assert out.dtype == np.float32 and out.shape == g.shape
        assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("method", INTENSITY_METHODS)
def test_training_without_augmentation_sees_exactly_the_evaluation_and_app_tensor(method):
    files = sample_files("NORMAL", 2) + sample_files("PNEUMONIA", 2)
    spec = TrainConfig(image_size=96, intensity=method).spec()
    assert spec.intensity == method
    ds = XrayDataset(files, [0, 0, 1, 1], spec, augment=False)
    for i, f in enumerate(files):
        x, _ = ds[i]
        assert np.array_equal(x.numpy(), preprocess_file(f, spec))
    if method != "none":
        assert not np.array_equal(preprocess_file(files[0], spec), preprocess_file(files[0], PreprocessSpec(size=96)))


def test_augmented_training_inputs_are_standardised_after_the_exposure_jitter():
    f = sample_files("PNEUMONIA", 1)[0]
    spec = PreprocessSpec(size=96, intensity="percentile")
    torch.manual_seed(0)
    x, _ = XrayDataset([f], [1], spec, augment=True, strength=2.0)[0]
    gray = x[0].numpy() * spec.std[0] + spec.mean[0]  # undo the ImageNet normalisation
    assert gray.min() == pytest.approx(0.0, abs=1e-5) and gray.max() == pytest.approx(1.0, abs=1e-5)


def test_the_card_records_the_method_and_an_older_card_without_it_means_none():
    spec = PreprocessSpec(size=128, intensity="equalize")
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
    old = {k: v for k, v in spec.to_dict().items() if k != "intensity"}
    assert PreprocessSpec.from_dict(old).intensity == "none"
    with pytest.raises(ValueError, match="Unknown intensity standardisation 'clahe'"):
        PreprocessSpec.from_dict({**spec.to_dict(), "intensity": "clahe"})
    with pytest.raises(ValueError, match="Invalid intensity 'clahe'"):
        TrainConfig(intensity="clahe").validate()


def test_rgb_and_16_bit_copies_still_give_the_grayscale_input(tmp_path):
    f = sample_files("NORMAL", 1)[0]
    gray = np.asarray(Image.open(f))
    Image.open(f).convert("RGB").save(tmp_path / "rgb.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")
    spec = PreprocessSpec(size=96, intensity="equalize")
    ref = preprocess(read_image(f), spec)
    for copy in ("rgb.png", "sixteen.png"):
        assert np.abs(preprocess_file(tmp_path / copy, spec) - ref).mean() < 1e-3
