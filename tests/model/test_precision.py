"""Training precision chosen at run time: bf16 only where the CPU runs it in hardware, fp32 elsewhere;
whatever the step ran in, the model that comes out is float32 and contiguous, as export expects."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hub import precision, train
from hub.config import TrainConfig
from hub.pool import TRAIN, VAL
from hub.precision import StepMode, choose
from tests.model.test_train import TINY

CPU = torch.device("cpu")


def _no_bf16_hardware(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)


def test_a_cpu_without_bf16_hardware_trains_in_fp32_and_refuses_emulated_bf16(monkeypatch):
    _no_bf16_hardware(monkeypatch)
    mode = choose(CPU, "auto")
    assert (mode.precision, mode.channels_last) == ("fp32", True)
    assert "no bf16 instructions" in mode.reason
    with pytest.raises(ValueError, match="emulated bf16 trains ~10x slower"):
        choose(CPU, "bf16")


def test_bf16_hardware_that_onednn_is_told_not_to_use_counts_as_absent(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    mode = choose(CPU, "auto")
    assert mode.precision == "fp32" and "ONEDNN_MAX_CPU_ISA=AVX2" in mode.reason


@pytest.mark.skipif(not precision.cpu_bf16_hardware()[0], reason="this CPU has no bf16 in hardware")
def test_a_cpu_with_bf16_hardware_trains_in_bf16_unless_told_fp32():
    assert choose(CPU, "auto").precision == "bf16"
    assert choose(CPU, "fp32").precision == "fp32"


@pytest.mark.parametrize("bad,match", [("fp16", "on a CPU"), ("fp8", "supported are auto, fp32, bf16, fp16")])
def test_a_precision_the_cpu_cannot_run_is_refused_with_a_reason(bad, match):
    with pytest.raises(ValueError, match=match):
        choose(CPU, bad)
    if bad == "fp8":
        with pytest.raises(ValueError, match="Invalid precision 'fp8'"):
            TrainConfig(precision=bad).validate()


@pytest.mark.parametrize("step", ["fp32", "bf16"])
def test_the_trained_model_is_float32_and_contiguous_whatever_the_step_ran_in(hub_paths, tmp_path, monkeypatch, step):
    from hub import dataset

    # bf16 is forced here even on a CPU that would emulate it: slow, but this is about what comes out
    monkeypatch.setattr(train, "choose", lambda device, requested: StepMode(step, True, "cpu", "test"))
    view = dataset.training_view(hub_paths)
    cfg = dataclasses.replace(TINY, epochs=1, max_train_images=16, precise_bn_images=8)
    result = train.fit(cfg, view.files(TRAIN), view.files(VAL), tmp_path / step)
    assert result.mode.precision == step
    assert np.isfinite(result.history[0]["val_loss"]) and np.isfinite(result.history[0]["train_loss"])
    for name, p in result.model.state_dict().items():
        assert p.dtype in (torch.float32, torch.int64), name
        assert p.is_contiguous(), name
    x = torch.zeros(1, 3, 64, 64)
    assert torch.isfinite(result.model.eval()(x)).all()
