"""Run a packaged model with onnxruntime (numpy only, no torch): what the app and the checks use."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from contract.package import ONNX_OUTPUTS


class OnnxModel:
    """An onnxruntime session over a PneumoScan ONNX file; ``run`` returns outputs by name."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for bad files
            raise ValueError(f"{Path(path).name} is not a loadable ONNX model ({str(e).splitlines()[0]})") from None
        self.input = self.session.get_inputs()[0].name
        names = [o.name for o in self.session.get_outputs()]
        if tuple(names) != ONNX_OUTPUTS:
            raise ValueError(f"{Path(path).name} has outputs {names}, expected {list(ONNX_OUTPUTS)}")

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """``batch`` float32 [N, 3, S, S] → {"logits", "probabilities", "cam"}."""
        outs = self.session.run(None, {self.input: np.ascontiguousarray(batch, dtype=np.float32)})
        return dict(zip(ONNX_OUTPUTS, outs))
