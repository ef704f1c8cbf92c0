"""Run a packaged model with onnxruntime (numpy only, no torch): what the app and the checks use."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from contract.package import ONNX_OUTPUTS
from contract.preprocess import PreprocessSpec, normalize


class OnnxModel:
    """An onnxruntime session over a PneumoScan ONNX file; ``run`` returns outputs by name."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None, outputs: tuple = ONNX_OUTPUTS):
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
        if tuple(names) != tuple(outputs):  # ``outputs``: other than the contract's only for benchmarks
            raise ValueError(f"{Path(path).name} has outputs {names}, expected {list(outputs)}")
        self.outputs = tuple(outputs)

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """``batch`` float32 [N, 3, S, S] → {"logits", "probabilities", "cam", "ood"} (docs/model-package.md)."""
        outs = self.session.run(None, {self.input: np.ascontiguousarray(batch, dtype=np.float32)})
        return dict(zip(self.outputs, outs))


def synthetic_inputs(spec: PreprocessSpec, seed: int = 0) -> np.ndarray:
    """Model inputs that are no X-ray but are valid images: black, white, mid-grey, noise, a checkerboard.

    ImageNet-normalised like ``contract.preprocess.normalize``; a model must give finite outputs on them.
    """
    size = spec.size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    grays = [
        np.zeros((size, size)),
        np.ones((size, size)),
        np.full((size, size), 0.5),
        rng.random((size, size)),
        ((yy // 8 + xx // 8) % 2).astype(float),
    ]
    return np.stack([normalize(g.astype(np.float32), spec) for g in grays])


def non_finite_outputs(outputs: dict[str, np.ndarray]) -> list[str]:
    """The names of the outputs holding a NaN or an infinity, per image: [i] → names (empty: all finite)."""
    n = len(next(iter(outputs.values())))
    return [", ".join(k for k, v in outputs.items() if not np.isfinite(v[i]).all()) for i in range(n)]


def check_finite(model: OnnxModel, spec: PreprocessSpec) -> None:
    """Raise ``ValueError`` unless every output is finite on :func:`synthetic_inputs`."""
    bad = [names for names in non_finite_outputs(model.run(synthetic_inputs(spec))) if names]
    if bad:
        raise ValueError(f"the model outputs NaN or infinity ({bad[0]}) on {len(bad)} of 5 synthetic test images")
