"""benchmarks/gpu_check.py runs end to end on the CPU at a tiny size (the GPU run is the lead's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.heavy
def test_gpu_check_runs_on_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--tokens", "2",
         "--batch-sizes", "1", "2", "--repeats", "1", "--hbm-gbs", "50", "--json", str(out)],
        capture_output=True, text=True, env=env, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "fraction of bandwidth bound" in done.stdout
    report = json.loads(out.read_text())
    assert report["hbm_gbs"] == 50 and report["dtype"] == "float32"
    rows = report["rows"]
    assert [(r["batch"], r["contender"]) for r in rows] == [
        (b, c) for b in (1, 2) for c in ("HF generate (plain, sdpa)", "core, no capture", "core + capture")]
    for r in rows:
        assert r["tok_s"] > 0
        # the bound at batch B is B * bandwidth / weight bytes
        bound = r["batch"] * 50e9 / report["weight_bytes"]
        assert r["fraction_of_bandwidth_bound"] == pytest.approx(r["tok_s"] / bound)
    assert 400 * 2**20 < report["weight_bytes"] < 700 * 2**20  # SmolLM2-135M in float32
