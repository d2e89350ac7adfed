"""The README's commands keep working: the demo and the benchmark (smoke run)."""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_command(tmp_path):
    out = tmp_path / "executed.ipynb"
    done = subprocess.run(
        [sys.executable, "-m", "jupyter_rsym", "demo", "--output", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert "hi, this is g, executing locally 9\n[0, 1, 8, 27, 64, 125, 216, 343, 512, 729]" in done.stdout
    assert "ZeroDivisionError: division by zero" in done.stdout
    assert out.exists()


def test_benchmark_quick_run(tmp_path):
    """Every suite runs and every value it reports is sane: a finite number, above
    zero unless it is a difference (memory growth may be negative)."""
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--output", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.run import SUITES
    finally:
        sys.path.remove(str(ROOT))
    assert set(report["suites"]) == set(SUITES)
    suites = {"core": {"results": report["results"], "ratios": report["ratios"]}, **report["suites"]}
    checked = 0
    for suite, values in suites.items():
        assert values["results"] and values["ratios"], suite
        for kind in ("results", "ratios"):
            for name, value in values[kind].items():
                assert isinstance(value, int | float) and math.isfinite(value), (suite, name, value)
                difference = "growth" in name or "minus" in name
                assert difference or value > 0, (suite, name, value)
                checked += 1
    assert checked >= 80, checked
    meta = report["meta"]
    assert meta["quick"] is True and meta["versions"]["rpyc"] and meta["machine"]["cores"] >= 1
    assert meta["date"].startswith(meta["run"][:10])


def test_ci_runs_readmes_test_command():
    """.ci/run ends with the pytest command README gives for running the tests."""
    readme = (ROOT / "README.md").read_text()
    command = next(
        line for line in readme.splitlines() if "pip install -q -e '.[test]' &&" in line and "-m pytest" in line
    )
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == command.split(" && ")[-1], (ci[-1], command)


def test_readme_cites_stored_runs_that_exist():
    """Every benchmark run README names (``2026-12-06T003739Z``, ``...-farlinks``) is
    committed in benchmarks/results/; the far-links runs hold the cell path's rows."""
    readme = (ROOT / "README.md").read_text()
    cited = set(re.findall(r"`(\d{4}-\d\d-\d\dT\d{6}Z(?:-[a-z]+)?)`", readme))
    assert len(cited) >= 3, cited
    missing = sorted(name for name in cited if not (ROOT / "benchmarks" / "results" / f"{name}.json").exists())
    assert not missing, f"README cites runs that are not in benchmarks/results/: {missing}"
    for name in (name for name in cited if name.endswith("-farlinks")):
        ratios = json.loads((ROOT / "benchmarks" / "results" / f"{name}.json").read_text())["suites"]["farlinks"][
            "ratios"
        ]
        for option in ("-o", "-i"):
            assert f"%%remote {option} 64 MB random bytes: share of raw socket throughput" in ratios, name
