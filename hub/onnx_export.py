"""torch → ONNX for the export stage: conversion, verification against torch, int8, the package.

Builds the graph the app runs (outputs ``logits``, ``probabilities`` with the temperature inside,
and ``cam``, the PNEUMONIA class activation map), writes it as ONE file, and checks it against
torch on real images before anything else may use it (:func:`verify_export`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from datetime import UTC
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from contract.atomic import replacing
from contract.inference import OnnxModel, check_finite
from contract.package import CLASSES, ONNX_INPUT, ONNX_OUTPUTS, VARIANT_FILES, ModelPackage, PackageError
from contract.preprocess import PreprocessSpec, preprocess_file
from hub.quantize import quantize_int8
from hub.suitability import CONFIDENCE, TARGET_ACCEPT, OodHead, OodStats, fit_stats, fit_threshold, pooled_features

logger = logging.getLogger(__name__)

OPSET = 20
PNEUMONIA = 1


class ExportError(RuntimeError):
    """An export that must not be used; nothing is published."""


class CamResNet(nn.Module):
    """A torchvision ResNet18 classifier re-wired to also return the calibrated probabilities, CAM and OOD score.

    ``cam`` is the PNEUMONIA evidence at each location of the last feature map, in calibrated
    log-odds: (w_PNEUMONIA − w_NORMAL)·f(x, y) + (b_PNEUMONIA − b_NORMAL), divided by the temperature.
    Its mean over the locations is exactly the image's log-odds log(p / (1 − p)), so the map is on
    the same fixed scale for every image and is never rescaled per image: a NORMAL film's map is
    mostly negative (no evidence), not red. ``ood`` is :class:`hub.suitability.OodHead`'s score;
    without ``ood`` statistics the graph has only the first three outputs (for benchmarks).
    """

    def __init__(self, resnet: nn.Module, temperature: float, ood: OodStats | None = None):
        super().__init__()
        self.resnet = resnet
        self.register_buffer("inv_temperature", torch.tensor(1.0 / temperature, dtype=torch.float32))
        self.ood = OodHead(ood) if ood is not None else None

    def forward(self, image: torch.Tensor):
        pooled, f = pooled_features(self.resnet, image)  # f: [N, 512, h, w]
        fc = self.resnet.fc
        logits = fc(pooled[-1])
        probabilities = torch.softmax(logits * self.inv_temperature, dim=1)
        # CAM (Zhou et al. 2016) of the log-odds: the head's PNEUMONIA − NORMAL row at every location
        w = fc.weight[PNEUMONIA] - fc.weight[1 - PNEUMONIA]
        b = fc.bias[PNEUMONIA] - fc.bias[1 - PNEUMONIA]
        cam = ((f * w[None, :, None, None]).sum(dim=1) + b) * self.inv_temperature
        if self.ood is None:
            return logits, probabilities, cam
        return logits, probabilities, cam, self.ood(pooled)


def to_onnx(
    resnet: nn.Module, temperature: float, spec: PreprocessSpec, path: Path, ood: OodStats | None = None
) -> Path:
    """Export to a single self-contained ONNX file with a dynamic batch axis; onnx.checker must pass.

    Without ``ood`` the graph lacks the ``ood`` output: such a file is for benchmarks, never a package.
    """
    wrapped = CamResNet(resnet.cpu().eval(), temperature, ood).eval()
    outputs = list(ONNX_OUTPUTS) if ood is not None else list(ONNX_OUTPUTS[:3])
    example = torch.zeros(2, 3, spec.size, spec.size)
    with replacing(path) as tmp:
        torch.onnx.export(
            wrapped,
            (example,),
            str(tmp),
            input_names=[ONNX_INPUT],
            output_names=outputs,
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
            dynamic_shapes={"image": {0: torch.export.Dim("batch", min=1, max=1024)}},
        )
        onnx.checker.check_model(str(tmp), full_check=True)
    return path


@dataclasses.dataclass
class VerifyReport:
    n: int
    max_abs_prob_diff: float
    labels_identical: bool
    min_cam_correlation: float
    max_rel_ood_diff: float
    passed: bool

    def summary(self) -> str:
        return (
            f"{'PASSED' if self.passed else 'FAILED'} on {self.n} images: max |Δp| {self.max_abs_prob_diff:.2e} "
            f"(≤ 1e-4), labels identical {self.labels_identical}, min CAM correlation "
            f"{self.min_cam_correlation:.4f} (≥ 0.99), max relative OOD-score difference "
            f"{self.max_rel_ood_diff:.2e} (≤ 1e-3)"
        )


def torch_outputs(
    resnet: nn.Module, temperature: float, batch: np.ndarray, ood: OodStats | None = None
) -> tuple[np.ndarray, ...]:
    with torch.no_grad():
        wrapped = CamResNet(resnet.cpu().eval(), temperature, ood).eval()
        return tuple(t.numpy() for t in wrapped(torch.from_numpy(batch)))


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else float(np.allclose(a, b))


def verify_export(
    resnet: nn.Module,
    temperature: float,
    threshold: float,
    onnx_path: Path,
    files: list[Path],
    spec: PreprocessSpec,
    ood: OodStats,
    max_prob_diff: float = 1e-4,
    min_cam_corr: float = 0.99,
    max_ood_rel_diff: float = 1e-3,
) -> VerifyReport:
    """onnxruntime vs torch on real images: probabilities, labels, CAMs and OOD scores must agree."""
    if not files:
        raise ExportError("No images to verify the export on")
    batch = np.stack([preprocess_file(f, spec) for f in files])
    _, p_torch, cam_torch, ood_torch = torch_outputs(resnet, temperature, batch, ood)
    out = OnnxModel(onnx_path).run(batch)
    diff = float(np.abs(out["probabilities"] - p_torch).max())
    same = bool(
        ((out["probabilities"][:, 1] >= threshold) == (p_torch[:, 1] >= threshold)).all()
        and (out["probabilities"].argmax(1) == p_torch.argmax(1)).all()
    )
    corr = min(_corr(a, b) for a, b in zip(out["cam"], cam_torch))
    ood_diff = float((np.abs(out["ood"] - ood_torch) / np.maximum(np.abs(ood_torch), 1e-6)).max())
    passed = diff <= max_prob_diff and same and corr >= min_cam_corr and ood_diff <= max_ood_rel_diff
    return VerifyReport(len(files), diff, same, corr, ood_diff, passed)


def _labels(p: np.ndarray, threshold: float) -> np.ndarray:
    return (p[:, 1] >= threshold).astype(int)


def _run(onnx_path: Path, files: list[Path], spec: PreprocessSpec, output: str, batch: int = 32) -> np.ndarray:
    model = OnnxModel(onnx_path)
    return np.concatenate(
        [
            model.run(np.stack([preprocess_file(f, spec) for f in files[i : i + batch]]))[output]
            for i in range(0, len(files), batch)
        ]
    )


def _predict(onnx_path: Path, files: list[Path], spec: PreprocessSpec) -> np.ndarray:
    return _run(onnx_path, files, spec, "probabilities")


def int8_agreement(
    fp32: Path, int8: Path, files: list[Path], labels: list[int], spec: PreprocessSpec, threshold: float
) -> dict:
    """Label agreement with fp32 and the sensitivity change on labelled (gold) images."""
    p32, p8 = _predict(fp32, files, spec), _predict(int8, files, spec)
    l32, l8 = _labels(p32, threshold), _labels(p8, threshold)
    y = np.asarray(labels)
    sens = lambda pred: float(((pred == 1) & (y == 1)).sum() / max((y == 1).sum(), 1))  # noqa: E731
    return {
        "label_agreement": float((l32 == l8).mean()),
        "sensitivity_drop": sens(l32) - sens(l8),
        "max_abs_prob_diff": float(np.abs(p32 - p8).max()),
        "n": len(files),
    }


def _suitability_card(
    onnx_path: Path, spec: PreprocessSpec, val_files: list[Path], gold_files: list[Path], target_accept: float
) -> dict:
    """The OOD threshold fitted on validation images for this model file, and the share of gold it accepts."""
    val = _run(onnx_path, val_files, spec, "ood")
    threshold = fit_threshold(val, target_accept)
    gold = _run(onnx_path, gold_files, spec, "ood") if gold_files else np.zeros(0)
    return {
        "threshold": threshold,
        "val_accept": float((val <= threshold).mean()),
        "n_val": len(val_files),
        "gold_accept": float((gold <= threshold).mean()) if len(gold) else None,
        "n_gold": len(gold_files),
    }


def build_package(
    resnet: nn.Module,
    *,
    temperature: float,
    threshold: float,
    spec: PreprocessSpec,
    version: int,
    out_dir: Path,
    metrics: dict,
    provenance: dict,
    verify_files: list[Path],
    gold_files: list[Path],
    gold_labels: list[int],
    calibration_files: list[Path],
    fit_files: list[Path],
    fit_labels: list[int],
    val_files: list[Path],
    operating_points: dict | None = None,
    int8: bool = True,
    min_agreement: float = 0.99,
    max_sensitivity_drop: float = 0.005,
    target_accept: float = TARGET_ACCEPT,
    created_at: str | None = None,
) -> Path:
    """Export, verify and card a model into ``out_dir`` (which must not exist yet).

    ``fit_files``/``fit_labels`` (training images) give the suitability statistics and ``val_files``
    (validation images) its threshold and the heat map's scale (:mod:`hub.suitability`).
    Built in a temporary sibling folder and renamed into place only once every check passed,
    so a failed export leaves nothing behind.
    """
    from datetime import datetime

    from PIL import Image

    from contract.package import write_card

    out_dir = Path(out_dir)
    if out_dir.exists():
        raise ExportError(f"{out_dir} already exists; choose a new folder or version")
    work = out_dir.with_name(f".{out_dir.name}.building")
    if work.exists():
        import shutil

        shutil.rmtree(work)
    work.mkdir(parents=True)
    try:
        try:
            ood = fit_stats(resnet, spec, fit_files, fit_labels, val_files)
        except ValueError as e:
            raise ExportError(f"Cannot fit the suitability statistics: {e}") from None
        onnx_path = to_onnx(resnet, temperature, spec, work / VARIANT_FILES["fp32"], ood)
        report = verify_export(resnet, temperature, threshold, onnx_path, verify_files, spec, ood)
        logger.info("verification %s", report.summary())
        if not report.passed:
            raise ExportError(f"ONNX export disagrees with torch, refused: {report.summary()}")
        try:
            check_finite(OnnxModel(onnx_path), spec)
        except ValueError as e:
            raise ExportError(f"The exported model is unusable: {e}") from None
        suitability = {**ood.card(), "target_accept": target_accept, "confidence": CONFIDENCE}
        suitability.update(_suitability_card(onnx_path, spec, val_files, gold_files, target_accept))
        val_cam = _run(onnx_path, val_files, spec, "cam")
        # the heat map's full-colour point: the 99th percentile of validation evidence, at least 1 log-odds
        cam = {"units": "log-odds", "scale": max(1.0, float(np.quantile(val_cam, 0.99)))}
        files: dict[str, dict] = {VARIANT_FILES["fp32"]: {}, "reference.png": {}}
        # reference image: lossless PNG of a real X-ray, so the app can check the model end to end
        ref = Image.open(verify_files[0]).convert("L")
        ref.save(work / "reference.png")
        ref_out = OnnxModel(onnx_path).run(preprocess_file(work / "reference.png", spec)[None])
        reference = {
            "file": "reference.png",
            "probabilities": [float(x) for x in ref_out["probabilities"][0]],
            "ood": float(ref_out["ood"][0]),
            "tolerance": 1e-4,
        }
        card_int8 = None
        if int8:
            quantize_int8(onnx_path, work / VARIANT_FILES["int8"], calibration_files, spec)
            agreement = int8_agreement(
                onnx_path, work / VARIANT_FILES["int8"], gold_files, gold_labels, spec, threshold
            )
            kept = (
                agreement["label_agreement"] >= min_agreement and agreement["sensitivity_drop"] <= max_sensitivity_drop
            )
            card_int8 = {
                **agreement,
                "kept": kept,
                "min_agreement": min_agreement,
                "max_sensitivity_drop": max_sensitivity_drop,
            }
            if kept:
                int8_path = work / VARIANT_FILES["int8"]
                files[VARIANT_FILES["int8"]] = {k: agreement[k] for k in ("label_agreement", "sensitivity_drop")}
                s8 = _suitability_card(int8_path, spec, val_files, gold_files, target_accept)
                suitability.update({f"{k}_int8": v for k, v in s8.items() if k not in ("n_val", "n_gold")})
                ref8 = OnnxModel(int8_path).run(preprocess_file(work / "reference.png", spec)[None])
                reference["probabilities_int8"] = [float(x) for x in ref8["probabilities"][0]]
                reference["ood_int8"] = float(ref8["ood"][0])
            else:
                logger.warning("int8 model dropped: %s", agreement)
                (work / VARIANT_FILES["int8"]).unlink()
        card = {
            "name": provenance.get("registered_model", "pneumoscan-resnet18"),
            "version": int(version),
            "created_at": created_at or datetime.now(UTC).isoformat(timespec="seconds"),
            "provenance": provenance,
            "metrics": metrics,
            "classes": list(CLASSES),
            "preprocessing": spec.to_dict(),
            "threshold": float(threshold),
            "temperature": float(temperature),
            "operating_points": operating_points or {},
            "onnx": {"opset": OPSET, "input": ONNX_INPUT, "outputs": list(ONNX_OUTPUTS)},
            "suitability": suitability,
            "cam": cam,
            "verification": dataclasses.asdict(report),
            "int8": card_int8,
            "files": files,
            "reference": reference,
        }
        write_card(work, card)
        try:
            ModelPackage.load(work)  # the app's own checks: a card it would refuse is never built
        except PackageError as e:
            raise ExportError(f"The model card would be refused by the app: {e}") from None
        os.replace(work, out_dir)
    except BaseException:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
        raise
    return out_dir
