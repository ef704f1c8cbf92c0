"""The model package: a folder with ``model.json`` (the card) and the files it lists (no torch).

See docs/model-package.md for every field. ``write_card`` fills in sha256 and size of each file;
``ModelPackage.load`` refuses a folder whose files do not match its card.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path

from contract.atomic import write_atomic
from contract.preprocess import INTENSITY_METHODS

FORMAT = 2  # 2: the ood output, the suitability and cam entries, cam in log-odds (1: cam min-max per image)
CARD = "model.json"
# The card's vocabulary, one definition for the hub, the feed and the app (docs/model-package.md).
CLASSES = ("NORMAL", "PNEUMONIA")  # index = the model's output index; card "classes"
POSITIVE = CLASSES[1]  # the class the probability, the threshold and the heat map are about
VARIANT_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}  # int8 optional
VARIANTS = tuple(VARIANT_FILES)
ONNX_INPUT = "image"
ONNX_OUTPUTS = ("logits", "probabilities", "cam", "ood")
REQUIRED_KEYS = (
    "format",
    "version",
    "created_at",
    "classes",
    "preprocessing",
    "threshold",
    "temperature",
    "onnx",
    "files",
    "reference",
    "metrics",
    "suitability",
    "cam",
)


# A package is about 60 MB (fp32 45, int8 11, reference); the cap leaves room for a larger backbone and
# refuses a package that would fill a clinic PC's disk.
MAX_PACKAGE_BYTES = 256 * 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")


class PackageError(ValueError):
    """A model package that is incomplete, altered, or not a package at all."""


def _real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_card(card: dict) -> None:
    """Every field of the card the app relies on, checked; ``PackageError`` names the first wrong one.

    A signed card is still only as good as the key that signed it: a card that would make every
    result NORMAL (a threshold above 1), every result PNEUMONIA (0 or below), answer with the labels
    swapped (classes in the other order) or fill the disk is refused, whoever signed it.
    """
    if card.get("format") != FORMAT:
        raise PackageError(f"Unsupported package format {card.get('format')!r} (this build reads {FORMAT})")
    version = card.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise PackageError(f"Invalid version {version!r}: must be a positive integer")
    if card.get("classes") != list(CLASSES):
        raise PackageError(
            f"Invalid classes {card.get('classes')!r}: this app reads exactly {list(CLASSES)}, in that order"
        )
    threshold = card.get("threshold")
    if not _real(threshold) or not 0 < threshold <= 1:
        raise PackageError(f"Invalid threshold {threshold!r}: must be a number above 0 and at most 1")
    temperature = card.get("temperature")
    if not _real(temperature) or not 0 < temperature <= 100:
        raise PackageError(f"Invalid temperature {temperature!r}: must be a number above 0 and at most 100")
    points = card.get("operating_points", {})
    if not isinstance(points, dict):
        raise PackageError("Invalid operating_points: must map each site to its temperature and threshold")
    for site, op in points.items():
        t, th = (op.get("temperature"), op.get("threshold")) if isinstance(op, dict) else (None, None)
        if not (isinstance(site, str) and _real(t) and 0 < t <= 100 and _real(th) and 0 < th <= 1):
            raise PackageError(
                f"Invalid operating point for site {site!r}: {op!r} (temperature in (0, 100], threshold in (0, 1])"
            )
    pre = card.get("preprocessing")
    if not isinstance(pre, dict):
        raise PackageError("Invalid preprocessing: must be an object with size, mean and std")
    size = pre.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or not 32 <= size <= 2048:
        raise PackageError(f"Invalid preprocessing size {size!r}: must be an integer from 32 to 2048")
    for key, lowest in (("mean", -math.inf), ("std", 0.0)):
        v = pre.get(key)
        if not (isinstance(v, list) and len(v) == 3 and all(_real(x) and x > lowest for x in v)):
            raise PackageError(
                f"Invalid preprocessing {key} {v!r}: must be three numbers" + (" above 0" if lowest == 0 else "")
            )
    intensity = pre.get("intensity", "none")
    if intensity not in INTENSITY_METHODS:
        raise PackageError(
            f"Invalid preprocessing intensity {intensity!r}: this app knows {', '.join(INTENSITY_METHODS)}"
        )
    onnx = card.get("onnx")
    if not isinstance(onnx, dict) or onnx.get("input") != ONNX_INPUT or onnx.get("outputs") != list(ONNX_OUTPUTS):
        raise PackageError(f"Invalid onnx entry {onnx!r}: input {ONNX_INPUT!r}, outputs {list(ONNX_OUTPUTS)}")
    files = card.get("files")
    if not isinstance(files, dict) or VARIANT_FILES["fp32"] not in files:
        raise PackageError(f"Invalid files entry: must list {VARIANT_FILES['fp32']}")
    total = 0
    for name, entry in files.items():
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", "..", CARD):
            raise PackageError(f"Invalid file name in card: {name!r}")
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("size"), int)
            and entry["size"] >= 0
            and isinstance(entry.get("sha256"), str)
            and _SHA256.fullmatch(entry["sha256"])
        ):
            raise PackageError(f"The card's entry for {name} is malformed (it needs a size and a sha256)")
        total += entry["size"]
    if total > MAX_PACKAGE_BYTES:
        raise PackageError(
            f"The package is {total / 2**20:.0f} MiB, over the {MAX_PACKAGE_BYTES // 2**20} MiB a model package may be"
        )
    suitability = card.get("suitability")
    if not isinstance(suitability, dict):
        raise PackageError("Invalid suitability entry: must be an object with the OOD-score threshold")
    for key in ("threshold", "threshold_int8"):
        value = suitability.get(key)
        if (key == "threshold" or value is not None) and not (_real(value) and value > 0):
            raise PackageError(f"Invalid suitability {key} {value!r}: must be a number above 0")
    cam = card.get("cam")
    scale = cam.get("scale") if isinstance(cam, dict) else None
    if not (_real(scale) and scale > 0) or cam.get("units") != "log-odds":
        raise PackageError(f"Invalid cam entry {cam!r}: units 'log-odds' and a scale above 0")
    ref = card.get("reference")
    probs = ref.get("probabilities") if isinstance(ref, dict) else None
    if not (isinstance(probs, list) and len(probs) == 2 and all(_real(p) and 0 <= p <= 1 for p in probs)):
        raise PackageError(f"Invalid reference probabilities {probs!r}: must be two numbers from 0 to 1")
    for key in ("ood", "ood_int8"):
        value = ref.get(key)
        if (key == "ood" or value is not None) and not (_real(value) and value >= 0):
            raise PackageError(f"Invalid reference {key} {value!r}: must be a number of at least 0")
    tolerance = ref.get("tolerance")
    if not _real(tolerance) or not 0 <= tolerance <= 0.05:
        raise PackageError(f"Invalid reference tolerance {tolerance!r}: must be a number from 0 to 0.05")
    if ref.get("file") not in files:
        raise PackageError(f"The reference image {ref.get('file')!r} is not among the card's files")


def variant_file(files: Iterable[str], variant: str) -> str:
    """The model file ``variant`` runs: the int8 file when the package lists one, else the fp32 file."""
    if variant == "int8" and VARIANT_FILES["int8"] in files:
        return VARIANT_FILES["int8"]
    return VARIANT_FILES["fp32"]


def files_for(files: Iterable[str], variant: str | None) -> set[str]:
    """The files of a package (``files``: its names) that an app running ``variant`` needs: all of them
    but the other variants' model files (the card, the reference image and any future file come along).
    ``None``: every file (the hub, the feed and the installer keep whole packages)."""
    names = set(files)
    if variant is None:
        return names
    keep = variant_file(names, variant)
    return {n for n in names if n == keep or n not in VARIANT_FILES.values()}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_entry(path: Path) -> dict:
    return {"sha256": sha256_of(path), "size": path.stat().st_size}


def write_card(directory: Path, card: dict) -> Path:
    """Write ``model.json`` into ``directory``; ``card["files"]`` gets sha256 and size of each listed file.

    Extra keys already present in a file's entry (e.g. int8 agreement) are kept.
    """
    directory = Path(directory)
    card = dict(card)
    card.setdefault("format", FORMAT)
    files = {}
    for name, extra in card.get("files", {}).items():
        if not (directory / name).is_file():
            raise PackageError(f"{name} listed in the card but missing from {directory}")
        files[name] = {**(extra or {}), **file_entry(directory / name)}
    card["files"] = files
    write_atomic(directory / CARD, json.dumps(card, indent=2, sort_keys=True))
    return directory / CARD


@dataclasses.dataclass(frozen=True)
class ModelPackage:
    directory: Path
    card: dict

    @property
    def version(self) -> int:
        return int(self.card["version"])

    def path(self, name: str) -> Path:
        return self.directory / name

    def model_file(self, variant: str = "fp32") -> Path:
        """``fp32`` → model.onnx; ``int8`` → model.int8.onnx when the package has one, else fp32."""
        return self.path(variant_file(self.card["files"], variant))

    def missing(self, variant: str | None = None) -> list[str]:
        """The files ``variant`` needs (``files_for``) that are not in the folder, sorted (size not checked)."""
        return sorted(n for n in files_for(self.card["files"], variant) if not self.path(n).is_file())

    @classmethod
    def load(cls, directory: str | os.PathLike, verify: bool = True, variant: str | None = None) -> ModelPackage:
        """Read and check the card; with ``verify``, check the files too (``verify``).

        ``variant``: the folder may be a partial package holding only what that variant needs
        (``files_for``), as the app downloads it; ``None`` requires every file of the card.
        """
        directory = Path(directory)
        try:
            card = json.loads((directory / CARD).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PackageError(f"{directory} has no {CARD}: not a model package") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise PackageError(f"{directory / CARD} is not valid JSON ({e})") from None
        if not isinstance(card, dict):
            raise PackageError(f"{directory / CARD} is not a JSON object")
        missing = [k for k in REQUIRED_KEYS if k not in card]
        if missing:
            raise PackageError(f"{directory / CARD} lacks {', '.join(missing)}")
        validate_card(card)
        pkg = cls(directory, card)
        if verify:
            pkg.verify(variant)
        return pkg

    def verify(self, variant: str | None = None) -> None:
        """Every file ``variant`` needs (every listed file for ``None``) is present, and every listed file
        that is present has the listed size and sha256 (a partial package is never a tampered one)."""
        missing = self.missing(variant)
        if missing:
            what = f" (the {variant} model)" if variant and missing[0] in VARIANT_FILES.values() else ""
            raise PackageError(f"{missing[0]}{what} is missing from the package")
        self.verify_present()

    def verify_present(self) -> None:
        """Every listed file that is in the folder has the listed size and sha256; none is required."""
        for name, entry in self.card["files"].items():  # well-formed: validate_card ran at load
            p = self.directory / name
            if not p.is_file():
                continue
            if p.stat().st_size != entry["size"]:
                raise PackageError(f"{name} has {p.stat().st_size} bytes, the card says {entry['size']}")
            if sha256_of(p) != entry["sha256"]:
                raise PackageError(f"{name} does not match its sha256 in the card (altered or corrupt)")
