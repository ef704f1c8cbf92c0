"""Static int8 quantization (QDQ, per-channel) calibrated on real training images (onnxruntime only)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from contract.preprocess import PreprocessSpec, preprocess_file

logger = logging.getLogger(__name__)


class _Reader:
    """onnxruntime CalibrationDataReader over preprocessed images, a few at a time."""

    def __init__(self, files: list[Path], spec: PreprocessSpec, input_name: str, batch: int = 8):
        self._batches = iter([files[i : i + batch] for i in range(0, len(files), batch)])
        self.spec, self.input_name = spec, input_name

    def get_next(self):
        chunk = next(self._batches, None)
        if chunk is None:
            return None
        return {self.input_name: np.stack([preprocess_file(f, self.spec) for f in chunk])}

    def rewind(self):  # not needed for MinMax; present for the reader protocol
        raise NotImplementedError


def quantize_int8(fp32: Path, out: Path, calibration_files: list[Path], spec: PreprocessSpec) -> Path:
    """fp32 ONNX → int8 QDQ ONNX. ``quant_pre_process`` first (shape inference + fusions), as advised."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration_files:
        raise ValueError("int8 quantization needs calibration images")

    class Reader(_Reader, CalibrationDataReader):
        pass

    with tempfile.TemporaryDirectory() as tmp:
        prepped = Path(tmp) / "prepped.onnx"
        quant_pre_process(str(fp32), str(prepped), skip_symbolic_shape=True)
        quantize_static(
            str(prepped),
            str(out),
            Reader(calibration_files, spec, "image"),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            # the classifier tail (head, softmax, CAM) stays in float: it is tiny and
            # it is what the radiologist reads
            op_types_to_quantize=["Conv", "Relu", "Add", "MaxPool"],
        )
    return out
