"""The demo: a loopback server, an example notebook executed in a real kernel.

``jupyter-rsym demo`` starts a stock ``rpyc_classic`` server on 127.0.0.1,
executes a notebook from ``notebooks/`` in a fresh Jupyter kernel (the
notebook reads the server address from ``RSYM_ADDRESS``), writes the executed
notebook next to it and prints what each cell showed.
"""

import os
import re
from pathlib import Path

from .localserver import ClassicServer

DEFAULT_NOTEBOOK = Path("notebooks") / "01-callbacks-and-symmetry.ipynb"


def execute_notebook(path, address, timeout=120):
    """Execute the notebook at ``path`` against ``address``; return the executed notebook."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    previous = os.environ.get("RSYM_ADDRESS")
    os.environ["RSYM_ADDRESS"] = address  # the kernel inherits it
    try:
        NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(Path(path).parent)}}).execute()
    finally:
        if previous is None:
            os.environ.pop("RSYM_ADDRESS", None)
        else:
            os.environ["RSYM_ADDRESS"] = previous
    return notebook


def output_text(output):
    """What a user reads in one output of a notebook cell."""
    kind = output["output_type"]
    if kind == "stream":
        return output["text"]
    if kind == "error":
        return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(output["traceback"])) + "\n"
    data = output.get("data", {})
    return data.get("text/plain", ", ".join(sorted(data))) + "\n"


def run_demo(notebook_path=DEFAULT_NOTEBOOK, output_path=None):
    import nbformat

    notebook_path = Path(notebook_path)
    output_path = Path(output_path or notebook_path.with_suffix(".executed.ipynb"))
    with ClassicServer() as server:
        print(f"rpyc_classic server on {server.address} (pid {server.process.pid})")
        notebook = execute_notebook(notebook_path, server.address)
    nbformat.write(notebook, output_path)
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    for number, cell in enumerate(code_cells, 1):
        print(f"\n--- cell {number} " + "-" * 50)
        print("\n".join("  >>> " + line for line in cell.source.splitlines()))
        for output in cell.outputs:
            print(output_text(output), end="")
    print(f"\nexecuted notebook written to {output_path}")
    return notebook
