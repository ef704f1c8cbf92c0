"""A real model package for the desktop tests: random-init ResNet18 exported at 64 px (no training)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import sample_files

SIZE = 64


@pytest.fixture(autouse=True)
def isolated_app_dirs(tmp_path, monkeypatch):
    """Each test gets its own per-user data and settings, and no admin config: never the real home's."""
    monkeypatch.setenv("PNEUMO_DESKTOP_DATA", str(tmp_path / "user-data"))
    monkeypatch.setenv("PNEUMO_DESKTOP_USER_CONFIG", str(tmp_path / "user-config" / "settings.json"))
    admin = tmp_path / "admin" / "config.toml"
    admin.parent.mkdir()
    admin.write_text("# empty: defaults\n")
    monkeypatch.setenv("PNEUMO_DESKTOP_CONFIG", str(admin))
    monkeypatch.delenv("PNEUMO_DESKTOP_MODEL_DIR", raising=False)
    return tmp_path


def make_package(
    out_dir: Path,
    version: int,
    seed: int,
    size: int = SIZE,
    threshold: float = 0.5,
    temperature: float = 1.3,
    images_per_class: int = 4,
    int8: bool = True,
    created_at: str = "2026-11-27T12:00:00+00:00",
    intensity: str = "none",
) -> Path:
    """A real model package: a random-init ResNet18 (``seed``) exported, verified and carded like the hub's.

    The int8 file is kept whatever its label agreement: a random model scores every image within
    about 0.01 of 0.5, where int8's error (~0.005) flips a label on some CPUs and not on others.
    These tests exercise the app's handling of the variants; the hub's agreement gate is tested
    on a trained model in tests/export.
    """
    import torch

    from contract.preprocess import PreprocessSpec
    from hub.model import build_model
    from hub.onnx_export import build_package

    torch.manual_seed(seed)  # another seed, other weights: the versions answer differently
    model = build_model("none").eval()
    normal, pneumonia = sample_files("NORMAL", images_per_class), sample_files("PNEUMONIA", images_per_class)
    files = normal + pneumonia
    return build_package(
        model,
        temperature=temperature,
        threshold=threshold,
        spec=PreprocessSpec(size=size, intensity=intensity),
        version=version,
        out_dir=Path(out_dir) / str(version),
        metrics={"accuracy": 0.5},
        provenance={"registered_model": "pneumoscan-resnet18"},
        verify_files=files,
        gold_files=files,
        gold_labels=[0] * len(normal) + [1] * len(pneumonia),
        calibration_files=files,
        fit_files=files,
        fit_labels=[0] * len(normal) + [1] * len(pneumonia),
        # the suitability threshold from every bundled chest X-ray: a random model's OOD score means
        # little, so this is what lets the tests' X-rays through (tests/export: a trained model's guard)
        val_files=sample_files("NORMAL", 150) + sample_files("PNEUMONIA", 150),
        int8=int8,
        min_agreement=0.0,
        max_sensitivity_drop=1.0,
        created_at=created_at,
    )


@pytest.fixture(scope="session")
def package_dir(tmp_path_factory) -> Path:
    return make_package(tmp_path_factory.mktemp("pkg"), version=7, seed=0)


@pytest.fixture(scope="session")
def jpeg() -> Path:
    return sample_files("PNEUMONIA", 1, offset=5)[0]


def clinic_copies(tmp_path, n=4, side=2048):
    """Real films from the sample, upscaled to clinic resolution and saved as a scanner would (JPEG q92)."""
    out = []
    for f in sample_files("NORMAL", n // 2) + sample_files("PNEUMONIA", n - n // 2):
        img = Image.open(f).convert("L")
        w, h = img.size
        dst = tmp_path / f"{f.stem}-{side}.jpeg"
        img.resize((side * w // max(w, h), side * h // max(w, h)), Image.Resampling.BICUBIC).save(dst, quality=92)
        out.append(dst)
    return out


def write_dicom(
    path: Path, pixels: np.ndarray, photometric: str = "MONOCHROME2", bits_stored: int = 8, **extra
) -> Path:
    """A minimal, valid DICOM (Explicit VR Little Endian) holding ``pixels`` (uint8 or uint16)."""
    from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientName, ds.PatientID = "DX", "Test^Patient", "P123"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated = 8 if pixels.dtype == np.uint8 else 16
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits_stored, bits_stored - 1, 0
    for k, v in extra.items():
        setattr(ds, k, v)
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def gray8(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))
