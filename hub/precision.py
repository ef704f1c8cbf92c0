"""How a training step runs on this machine: number format and memory layout, chosen at run time.

``choose(device, requested)`` → a ``StepMode``; ``fit`` trains, re-estimates BatchNorm and scores val
inside ``mode.autocast()``, with the model and each batch in ``mode.memory_format``. The weights, the
optimizer state, the checkpoints and the exported model stay float32 whatever the mode: autocast only
runs convolutions and matrix products in the lower precision.

``auto`` (the default) picks, measured on ResNet18 at batch 32, 224 px (docs/benchmarks.md,
"Training throughput"):

* CPU with bf16 in hardware (AVX512_BF16 or AMX, and oneDNN allowed to use them): bfloat16 autocast
  and channels_last, ~3.5× the float32 loop. Without that hardware, oneDNN *emulates* bf16 and a step is
  ~10× slower than float32, so there ``auto`` is float32; asking for ``bf16`` anyway is refused.
* CPU without it: float32, channels_last (~1.15× on AVX2, ~1.3× on AVX-512).
* CUDA: bfloat16 autocast where the GPU supports it, else float16 with a gradient scaler; channels_last.

The chosen mode is recorded on every MLflow run (``compute.precision``, ``compute.channels_last``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os

import torch

from hub.config import PRECISIONS

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclasses.dataclass(frozen=True)
class StepMode:
    precision: str  # fp32, bf16 or fp16
    channels_last: bool
    device_type: str  # cpu or cuda
    reason: str  # why this mode, for the log and the run record

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self):
        """The context a forward pass runs in (a no-op for fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=_DTYPES[self.precision])

    def scaler(self) -> torch.amp.GradScaler | None:
        """A gradient scaler for fp16 (its small range underflows gradients); None otherwise."""
        return torch.amp.GradScaler(self.device_type) if self.precision == "fp16" else None

    def batch(self, images: torch.Tensor, device: torch.device) -> torch.Tensor:
        images = images.to(device, non_blocking=True)
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    def record(self) -> dict[str, str]:
        return {"precision": self.precision, "channels_last": str(self.channels_last), "precision_reason": self.reason}


def cpu_bf16_hardware() -> tuple[bool, str]:
    """Whether this CPU runs bf16 convolutions in hardware through oneDNN, and what was found."""
    found = [
        name
        for name, probe in (("AVX512_BF16", "_is_avx512_bf16_supported"), ("AMX", "_is_amx_tile_supported"))
        if getattr(torch.cpu, probe, lambda: False)()
    ]
    if not found:
        return False, "no bf16 instructions on this CPU (AVX512_BF16 or AMX)"
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if cap and not any(k in cap for k in ("BF16", "AMX", "AVX10", "ALL", "DEFAULT")):
        return False, f"{'+'.join(found)} present but ONEDNN_MAX_CPU_ISA={cap} keeps oneDNN from using it"
    if not torch.backends.mkldnn.is_available() or not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return False, f"{'+'.join(found)} present but this torch's oneDNN does not run bf16"
    return True, f"{'+'.join(found)} in hardware"


def choose(device: torch.device, requested: str = "auto") -> StepMode:
    """The step mode for ``device``; ``requested`` is one of ``PRECISIONS``. Raises ValueError for a
    precision this device cannot run fast (fp16 on a CPU, bf16 on a CPU without bf16 hardware)."""
    if requested not in PRECISIONS:
        raise ValueError(f"Invalid precision {requested!r}: supported are {', '.join(PRECISIONS)}")
    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        precision = ("bf16" if bf16 else "fp16") if requested == "auto" else requested
        if precision == "bf16" and not bf16:
            raise ValueError("Invalid precision 'bf16': this GPU does not support bfloat16; use fp16 or auto")
        return StepMode(precision, True, "cuda", f"GPU {'supports' if bf16 else 'lacks'} bf16; requested {requested}")
    if requested == "fp16":
        raise ValueError("Invalid precision 'fp16' on a CPU: use bf16 (where the CPU has it), fp32 or auto")
    hardware, why = cpu_bf16_hardware()
    if requested == "bf16" and not hardware:
        raise ValueError(f"Invalid precision 'bf16': {why}; emulated bf16 trains ~10x slower than fp32")
    precision = "bf16" if requested == "bf16" or (requested == "auto" and hardware) else "fp32"
    return StepMode(precision, True, "cpu", f"{why}; requested {requested}")
