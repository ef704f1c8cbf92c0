"""What the model reads from a DICOM (one rule, whatever the stored window) and the cheap checks before it.

Real files: DICOMs written by pydicom, pydicom's own CT, scikit-image's photographs saved as PNG/JPEG,
the bundled chest X-rays. No model is needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset

from desktop_app.images import load_image
from desktop_app.suitability import CODES, MAX_COLOURFULNESS, MIN_SIDE, Unsuitable, precheck
from tests.conftest import SAMPLE, sample_files
from tests.desktop.conftest import gray8, write_dicom


@pytest.fixture(scope="module")
def values() -> np.ndarray:
    """A real chest X-ray's pixels as 12-bit stored values (0..4080)."""
    return gray8(sample_files("PNEUMONIA", 1, offset=12)[0]).astype(np.uint16) * 16


def voi_lut(first: int, entries: int, data: list[int]) -> Dataset:
    item = Dataset()
    item.LUTDescriptor = [entries, first, 16]
    item.add_new(0x00283006, "US", data)  # LUTData
    return item


def test_the_model_input_of_a_dicom_does_not_depend_on_its_stored_window(tmp_path, values):
    def load(name: str, pixels=values, photometric="MONOCHROME2", **extra):
        return load_image(write_dicom(tmp_path / name, pixels, photometric, 12, **extra))

    plain = load("plain.dcm")
    narrow = load("narrow.dcm", WindowCenter=1200, WindowWidth=800)
    several = load("several.dcm", WindowCenter=[3000, 500], WindowWidth=[200, 1000])  # the first one is used
    rising = [0] * 200 + [v * 100 for v in range(1, 656)] + [65535] * 146  # over stored values 1000..2000
    table = load("lut.dcm", VOILUTSequence=[voi_lut(1000, len(rising), rising)])
    mono1 = load("mono1.dcm", (4095 - values).astype(np.uint16), "MONOCHROME1", WindowCenter=2895, WindowWidth=800)

    # The stored windows are what the viewer opens at, as fractions of the 12-bit range...
    assert plain.display_window is None
    assert narrow.display_window == pytest.approx((1200 / 4095, 800 / 4095))
    assert several.display_window == pytest.approx((3000 / 4095, 200 / 4095))
    # ...the table rises from its lowest output at stored value 1199 to its highest at 1855.
    assert table.display_window == pytest.approx(((1199 + 1855) / 2 / 4095, (1855 - 1199) / 4095))
    assert mono1.display_window == pytest.approx(narrow.display_window)  # the same window, shown the same way
    # ...but the model reads the same pixels the same way, bit for bit, windowed or not, MONOCHROME1 or 2.
    for other in (narrow, several, table, mono1):
        assert np.array_equal(other.model_gray, plain.model_gray)
        assert np.array_equal(other.gray, plain.gray)  # the display's full range does not move either
    # The rule: modality values stretched between their 0.5th and 99.5th percentiles, clipped.
    lo, hi = np.percentile(values.astype(np.float64), (0.5, 99.5))
    np.testing.assert_allclose(plain.model_gray, np.clip((values - lo) / (hi - lo), 0, 1), atol=1e-6)
    assert plain.model_gray.dtype == np.float32 and plain.model_gray.shape == values.shape
    np.testing.assert_allclose(plain.gray, values / 4095, atol=1e-6)  # display: the full range, unstretched
    # A rescale (modality LUT) maps every value linearly: the model reads the same image.
    rescaled = load("rescaled.dcm", RescaleSlope=2, RescaleIntercept=-1000)
    np.testing.assert_allclose(rescaled.model_gray, plain.model_gray, atol=1e-6)


def test_a_constant_dicom_does_not_divide_by_zero_and_stays_blank(tmp_path):
    white = load_image(write_dicom(tmp_path / "white.dcm", np.full((256, 256), 4095, np.uint16), bits_stored=12))
    black = load_image(write_dicom(tmp_path / "black.dcm", np.zeros((256, 256), np.uint16), bits_stored=12))
    assert np.isfinite(white.model_gray).all() and (white.model_gray == 1).all()
    assert (black.model_gray == 0).all()


def test_raster_files_give_the_model_exactly_what_the_hub_trains_on(jpeg):
    img = load_image(jpeg)
    assert img.model_gray is img.gray and img.display_window is None
    assert (img.meta.modality, img.meta.photometric, img.meta.frames, img.meta.colourfulness) == (None, None, 1, None)


def test_a_gray_jpeg_stored_as_rgb_is_not_colourful(tmp_path, jpeg):
    path = tmp_path / "rgb.jpeg"
    Image.open(jpeg).convert("RGB").save(path, quality=90)
    img = load_image(path)
    assert img.pil.mode == "RGB" and img.meta.colourfulness < 1
    assert precheck(img) is None


def dicom_with(tmp_path: Path, name: str, **tags) -> Path:
    pixels = gray8(sample_files("NORMAL", 1, offset=4)[0])
    return write_dicom(tmp_path / name, pixels, **tags)


def rgb_dicom(path: Path, rgb: np.ndarray) -> Path:
    write_dicom(path, rgb[..., 0])
    ds = pydicom.dcmread(path)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.PixelData = np.ascontiguousarray(rgb).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def photo_file(tmp_path: Path, name: str) -> Path:
    import skimage.data

    suffix = ".png" if name == "astronaut" else ".jpeg"
    path = tmp_path / f"{name}{suffix}"
    Image.fromarray(getattr(skimage.data, name)()).save(path)
    return path


def cases(tmp_path: Path) -> dict[str, tuple[Path, str, str]]:
    """name → (file, the code precheck must give, a phrase its reason must hold)."""
    import skimage.data

    crop = tmp_path / "crop.png"
    Image.fromarray(gray8(sample_files("NORMAL", 1)[0])[32:96, 32:96]).save(crop)
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((300, 300), 128, np.uint8)).save(blank)
    white = tmp_path / "white.jpeg"  # an all-white overexposure with a few dark specks
    px = np.full((300, 300), 255, np.uint8)
    px[::50, ::50] = 0
    Image.fromarray(px).save(white, quality=90)
    noise = np.random.default_rng(0).normal(2000, 5, (300, 300)).astype(np.uint16)  # a blank film: noise only
    return {
        "ct": (Path(pydicom.data.get_testdata_file("CT_small.dcm")), "modality", "modality CT (computed tomography)"),
        "mr": (dicom_with(tmp_path, "mr.dcm", Modality="MR"), "modality", "modality MR (magnetic resonance)"),
        "head": (dicom_with(tmp_path, "head.dcm", BodyPartExamined="HEAD"), "body_part", "body part HEAD"),
        "lateral": (dicom_with(tmp_path, "ll.dcm", ViewPosition="LL"), "lateral", "frontal (PA/AP)"),
        "lateral-word": (dicom_with(tmp_path, "lat.dcm", ViewPosition="LATERAL"), "lateral", "lateral view"),
        "astronaut": (photo_file(tmp_path, "astronaut"), "colour", "colour image"),
        "coffee": (photo_file(tmp_path, "coffee"), "colour", "colour image"),
        "chelsea": (photo_file(tmp_path, "chelsea"), "colour", "colour image"),
        "rgb-dicom": (rgb_dicom(tmp_path / "rgb.dcm", skimage.data.coffee()), "colour", "colour image"),
        "crop": (crop, "too_small", "64×64"),
        "blank": (blank, "low_contrast", "almost no contrast"),
        "white": (white, "low_contrast", "almost no contrast"),
        "blank-dicom": (write_dicom(tmp_path / "b.dcm", noise, bits_stored=12), "low_contrast", "no contrast"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "ct",
        "mr",
        "head",
        "lateral",
        "lateral-word",
        "astronaut",
        "coffee",
        "chelsea",
        "rgb-dicom",
        "crop",
        "blank",
        "white",
        "blank-dicom",
    ],
)
def test_each_cheap_check_refuses_its_case_with_its_reason(tmp_path, case):
    path, code, phrase = cases(tmp_path)[case]
    found = precheck(load_image(path))
    assert isinstance(found, Unsuitable) and found.code == code and code in CODES, found
    assert phrase in found.reason and str(found) == found.reason and "\n" not in found.reason


def test_the_photographs_are_far_above_the_colour_threshold_and_the_crop_below_the_size(tmp_path):
    for name in ("astronaut", "coffee", "chelsea"):
        assert load_image(photo_file(tmp_path, name)).meta.colourfulness > 3 * MAX_COLOURFULNESS
    assert min(load_image(cases(tmp_path)["crop"][0]).size) < MIN_SIDE


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")  # lower case, as some modalities write it
@pytest.mark.parametrize(
    "tags",
    [
        {},
        {"Modality": "CR", "BodyPartExamined": "CHEST", "ViewPosition": "PA"},
        {"Modality": "DX", "BodyPartExamined": "PORT CHEST", "ViewPosition": "AP"},
        {"Modality": "dx", "BodyPartExamined": "Thorax"},
        {"Modality": "DR", "BodyPartExamined": "LUNG"},
        {"BodyPartExamined": "UNKNOWN"},
    ],
)
def test_chest_radiograph_dicoms_pass(tmp_path, tags):
    path = dicom_with(tmp_path, "ok.dcm", **tags)
    if not tags:
        ds = pydicom.dcmread(path)
        del ds.Modality  # no Modality at all: nothing argues against reading it
        ds.save_as(path, enforce_file_format=True)
    assert precheck(load_image(path)) is None


def test_every_bundled_chest_xray_passes():
    files = sorted(SAMPLE.rglob("*.jpeg"))
    assert len(files) == 300
    refused = {f.name: str(r) for f in files if (r := precheck(load_image(f))) is not None}
    assert refused == {}


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_a_12_bit_film_in_a_16_bit_dicom_has_contrast_and_a_blank_one_does_not(tmp_path, jpeg, photometric):
    """Detectors write 12-bit values with Bits Stored 16: judged over the bits the values occupy."""
    film = gray8(jpeg).astype(np.uint16) * 16  # 0..4080: 12 bits of a 16-bit range
    if photometric == "MONOCHROME1":  # 0 = white: the same 12 bits, the other way round
        film = (4095 - film).astype(np.uint16)
    real = write_dicom(tmp_path / "real.dcm", film, photometric, 16)
    assert precheck(load_image(real)) is None
    rng = np.random.default_rng(0)
    blank = (1000 + rng.integers(-8, 9, film.shape)).astype(np.uint16)  # an unexposed 16-bit film, noise only
    refused = precheck(load_image(write_dicom(tmp_path / "blank.dcm", blank, "MONOCHROME2", 16)))
    assert refused is not None and refused.code == "low_contrast"
