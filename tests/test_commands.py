"""The README's commands keep working: the demo and the benchmark (smoke run)."""

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_command(tmp_path):
    out = tmp_path / "executed.ipynb"
    done = subprocess.run(
        [sys.executable, "-m", "jupyter_rsym", "demo", "--output", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert "hi, this is g, executing locally 9\n[0, 1, 8, 27, 64, 125, 216, 343, 512, 729]" in done.stdout
    assert "ZeroDivisionError: division by zero" in done.stdout
    assert out.exists()


def test_benchmark_quick_run(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--output", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    ratios = json.loads(out.read_text())["ratios"]
    assert len(ratios) == 5
    assert all(math.isfinite(v) and v > 0 for v in ratios.values()), ratios
