"""The feed benchmark runs end to end on small stand-in models, and its per-variant bytes add up."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT


def test_feed_bench_prints_bytes_per_update_by_variant():
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "feed_update_check.py"), "--model-mb", "0.4", "--int8-mb", "0.1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    sent = {v: float(mb) for v, mb in re.findall(r"^\s+(fp32|int8)\s+([\d.]+) MB", out.stdout, re.M)}
    assert set(sent) == {"fp32", "int8"}, out.stdout
    # the model file of the other variant is not downloaded: 0.4 MB vs 0.1 MB, plus card and reference
    assert 0.4 < sent["fp32"] < 0.5 and 0.1 < sent["int8"] < 0.2, out.stdout
    (switched,) = re.findall(r"^int8 app switched to fp32 .*$", out.stdout, re.M)
    fetched = [name for name in switched.split(" ms ", 1)[1].split(", ") if name.startswith("model")]
    assert [n.strip() for n in fetched] == ["model.onnx"], out.stdout  # the fp32 model only, not int8 again
