"""The desktop benchmark runs end to end on a tiny setup (64 px model, 2 images), so its code cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_desktop_bench_runs_and_prints_every_measure(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "desktop_app.py"),
            "--work",
            str(tmp_path),
            "--size",
            "64",
            "--cold-runs",
            "1",
            "--cold-warmup",
            "0",
            "--overhead-images",
            "2",
            "--repeats",
            "1",
            "--small-side",
            "0",
            "--large-side",
            "96",
            "--large-images",
            "1",
            "--triage-images",
            "2",
            "--triage-repeats",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    assert "(64 px, int8 present)" in text
    cold = re.findall(r"pneumo-desktop (?:predict|view \(window\))\s+([\d.]+) s", text)
    assert len(cold) == 2 and all(float(s) > 0 for s in cold), text
    ratios = [float(r) for r in re.findall(r"app / bare pipeline ([\d.]+)", text)]
    assert len(ratios) == 2 and all(r > 0 for r in ratios), text  # sample size and upscaled copies
    to_result = [float(r) for r in re.findall(r"app / session.run ([\d.]+) \(target <= 1\.(?:15|50)", text)]
    to_display = [float(r) for r in re.findall(r"to full display\s+([\d.]+) ms", text)]
    assert len(to_result) == 2 and len(to_display) == 2 and all(r > 0 for r in to_result + to_display), text
    rates = dict(re.findall(r"^\s+(fp32|int8)\s+([\d.]+) images/s", text, re.M))
    assert set(rates) == {"fp32", "int8"} and all(float(v) > 0 for v in rates.values()), text
    assert re.search(r"int8 / fp32 [\d.]+x", text) and "load average at end" in text
    assert (tmp_path / "random-init-64px" / "1" / "model.int8.onnx").is_file()  # built once, kept as cache
