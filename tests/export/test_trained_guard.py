"""A trained model refuses images it is not fit to judge, and accepts the chest X-rays it has not seen.

The model is trained here on the bundled sample's training split (128 px, 3 epochs, no ImageNet
weights), exported by the hub's own code (suitability statistics from the training split, threshold
from the validation split), and run by the desktop app's engine. The non-chest images are real:
scikit-image's bundled photographs, pydicom's bundled CT slice, and images the test makes (a DX with
a lateral view position, a crop the size of a hand, noise, a blank and a white film).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hub.config import TrainConfig
from hub.export import export_model
from hub.pool import GOLD
from tests.conftest import train_on_sample
from tests.desktop.conftest import write_dicom

pytestmark = pytest.mark.slow

CFG = TrainConfig(epochs=3, batch_size=16, image_size=128, weights="none", num_workers=0, seed=0)
GRAY_PHOTOS = ("camera", "moon", "page", "text", "coins", "brick", "grass", "gravel", "clock", "horse")
COLOUR_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


@pytest.fixture(scope="module")
def trained_package(_imported_home, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("suitability")
    paths, view, model_dir = train_on_sample(_imported_home, tmp, CFG, temperature=1.0, threshold=0.5)
    return export_model(paths, str(model_dir), version=1, out_dir=tmp / "pkg"), view


def photo(name: str, path) -> object:
    import skimage.data

    a = np.asarray(getattr(skimage.data, name)())
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    if a.ndim == 3:
        a = a[..., :3]
    Image.fromarray(a.astype(np.uint8)).save(path)
    return path


def non_chest_images(tmp_path, chest_jpeg) -> dict[str, tuple[object, set[str]]]:
    """name → (file, the reason codes that may refuse it)."""
    import pydicom
    from pydicom.data import get_testdata_file

    from desktop_app.engine import ATYPICAL

    out = {}
    for name in GRAY_PHOTOS:
        out[f"photo {name}"] = (photo(name, tmp_path / f"{name}.png"), {ATYPICAL, "low_contrast"})
    for name in COLOUR_PHOTOS:
        out[f"colour photo {name}"] = (photo(name, tmp_path / f"{name}.jpeg"), {"colour"})
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ct.save_as(tmp_path / "ct.dcm")
    out["CT slice"] = (tmp_path / "ct.dcm", {"modality", "too_small"})
    chest = np.asarray(Image.open(chest_jpeg).convert("L"))
    out["lateral view"] = (
        write_dicom(tmp_path / "lateral.dcm", chest, "MONOCHROME2", 8, Modality="DX", ViewPosition="LL"),
        {"lateral"},
    )
    out["hand-sized crop"] = (tmp_path / "crop.png", {"too_small"})
    Image.fromarray(chest[:100, :100]).save(tmp_path / "crop.png")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (512, 512), dtype=np.uint8)).save(tmp_path / "noise.png")
    out["noise"] = (tmp_path / "noise.png", {ATYPICAL})
    Image.fromarray(np.full((512, 512), 30, np.uint8)).save(tmp_path / "blank.png")
    out["blank film"] = (tmp_path / "blank.png", {"low_contrast"})
    Image.fromarray(np.full((512, 512), 255, np.uint8)).save(tmp_path / "white.png")
    out["white film"] = (tmp_path / "white.png", {"low_contrast"})
    return out


def test_non_chest_images_are_withheld_with_their_reason_and_unseen_chest_xrays_accepted(trained_package, tmp_path):
    from desktop_app.engine import Engine
    from desktop_app.images import load_image

    package, view = trained_package
    engine = Engine(package)
    gold_files, _ = view.files(GOLD)
    gold = [engine.predict(load_image(f)) for f in gold_files]
    accepted = sum(p.suitable for p in gold)
    assert accepted / len(gold) >= 0.99 - 1e-9, (
        f"{accepted}/{len(gold)} gold chest X-rays accepted; refused: "
        f"{[(f.name, p.reason, round(p.ood, 2)) for f, p in zip(gold_files, gold) if not p.suitable]}"
    )

    wrong = {}
    for name, (path, codes) in non_chest_images(tmp_path, gold_files[0]).items():
        pred = engine.predict(load_image(path))
        if pred.suitable or pred.reason_code not in codes:
            wrong[name] = (pred.reason_code, round(pred.ood, 2), round(pred.ood_threshold, 2))
    assert wrong == {}, f"not withheld, or withheld for the wrong reason: {wrong}"
