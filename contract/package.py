"""The model package: a folder with ``model.json`` (the card) and the files it lists (no torch).

See docs/model-package.md for every field. ``write_card`` fills in sha256 and size of each file;
``ModelPackage.load`` refuses a folder whose files do not match its card.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

from contract.atomic import write_atomic

FORMAT = 1
CARD = "model.json"
# The card's vocabulary, one definition for the hub, the feed and the app (docs/model-package.md).
CLASSES = ("NORMAL", "PNEUMONIA")  # index = the model's output index; card "classes"
POSITIVE = CLASSES[1]  # the class the probability, the threshold and the heat map are about
VARIANT_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}  # int8 optional
VARIANTS = tuple(VARIANT_FILES)
ONNX_INPUT = "image"
ONNX_OUTPUTS = ("logits", "probabilities", "cam")
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
)


class PackageError(ValueError):
    """A model package that is incomplete, altered, or not a package at all."""


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
        if variant == "int8" and "model.int8.onnx" in self.card["files"]:
            return self.path("model.int8.onnx")
        return self.path("model.onnx")

    @classmethod
    def load(cls, directory: str | os.PathLike, verify: bool = True) -> ModelPackage:
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
        if card["format"] != FORMAT:
            raise PackageError(f"Unsupported package format {card['format']!r} (this build reads {FORMAT})")
        if not isinstance(card["version"], int) or card["version"] < 1:
            raise PackageError(f"Invalid version {card['version']!r}: must be a positive integer")
        if "model.onnx" not in card["files"]:
            raise PackageError("the card lists no model.onnx")
        pkg = cls(directory, card)
        if verify:
            pkg.verify()
        return pkg

    def verify(self) -> None:
        """Every listed file exists with the listed size and sha256."""
        files = self.card["files"]
        if not isinstance(files, dict) or not all(
            isinstance(e, dict) and isinstance(e.get("size"), int) and isinstance(e.get("sha256"), str)
            for e in files.values()
        ):
            raise PackageError("the card's files entry is malformed (each file needs size and sha256)")
        for name, entry in files.items():
            p = self.directory / name
            if Path(name).name != name:
                raise PackageError(f"Invalid file name in card: {name!r}")
            if not p.is_file():
                raise PackageError(f"{name} is missing from the package")
            if p.stat().st_size != entry["size"]:
                raise PackageError(f"{name} has {p.stat().st_size} bytes, the card says {entry['size']}")
            if sha256_of(p) != entry["sha256"]:
                raise PackageError(f"{name} does not match its sha256 in the card (altered or corrupt)")
