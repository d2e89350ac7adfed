"""The tree keeps its layout: import contracts, the remote package's imports, module sizes."""

import subprocess
import sys
from pathlib import Path

import grimp

import jupyter_rsym

ROOT = Path(jupyter_rsym.__file__).resolve().parent
MAX_LINES = 420  # "modules under ~400 lines"
# libraries the agent adapts, imported only once the remote's own code has imported them
ADAPTED = {"matplotlib"}
# imported only when asked for, one clear line without it: serve --tls-self-signed (remote/certificate.py)
OPTIONAL = {"cryptography"}


def test_import_contracts_hold():
    """pyproject.toml's import-linter contracts: layers, no cycles, no IPython in the connection layer."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=ROOT.parent, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_remote_package_imports_only_stdlib_and_rpyc():
    graph = grimp.build_graph("jupyter_rsym", include_external_packages=True)
    outside = set()
    for module in graph.find_descendants("jupyter_rsym.remote") | {"jupyter_rsym.remote"}:
        for imported in graph.find_modules_directly_imported_by(module):
            top = imported.split(".")[0]
            if imported.startswith("jupyter_rsym.") and not imported.startswith("jupyter_rsym.remote"):
                outside.add(f"{module} -> {imported}")
            elif (
                top != "jupyter_rsym"
                and top not in {"rpyc", *ADAPTED, *OPTIONAL}
                and top not in sys.stdlib_module_names
            ):
                outside.add(f"{module} -> {imported}")
    assert not outside, sorted(outside)


def test_modules_stay_small():
    long = {
        str(p.relative_to(ROOT)): n
        for p in ROOT.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, long
