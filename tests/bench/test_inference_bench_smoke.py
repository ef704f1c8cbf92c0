"""The inference benchmark runs end to end and judges fp32 against a peak it measured in the same run."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT


def test_inference_bench_reports_share_of_measured_peak():
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "inference.py"), "--repeats", "2"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (line,) = re.findall(r"^fp32 against this CPU's peak: .*$", out.stdout, re.M)
    gflop = float(re.search(r"model ([\d.]+) GFLOP/image", line).group(1))
    assert 3.5 < gflop < 3.8, line  # ResNet18 at 224 px: 1.82 G multiply-adds
    run, peak, share = (
        float(re.search(p, line).group(1))
        for p in (r"= (\d+) GFLOP/s;", r"MatMul peak (\d+) GFLOP/s", r"share ([\d.]+)")
    )
    # run and peak are printed as whole GFLOP/s, share to 2 decimals: allow for that rounding alone
    assert run > 0 and peak > 0 and abs(share - run / peak) <= share * (0.5 / run + 0.5 / peak) + 0.006, line
    assert re.search(r"target >= 0\.60: (met|NOT met)\)", line), line
    assert re.search(r"^int8 batch-16 vs torch eager [\d.]+x \(", out.stdout, re.M), out.stdout
