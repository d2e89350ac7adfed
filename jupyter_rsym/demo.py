"""The demo: a loopback server, an example notebook executed in a real kernel.

``jupyter-rsym demo`` starts ``jupyter-rsym serve`` on 127.0.0.1 (a fresh
random token), executes a notebook from ``notebooks/`` in a fresh Jupyter
kernel (the notebook reads the server address from ``RSYM_ADDRESS``; the
kernel gets the token as ``JUPYTER_RSYM_TOKEN``), writes the executed
notebook next to it and prints what each cell showed.
"""

import os
import re
from contextlib import contextmanager
from pathlib import Path

from .localserver import RsymServer

DEFAULT_NOTEBOOK = Path("notebooks") / "01-callbacks-and-symmetry.ipynb"


def execute_notebook(path, address, timeout=120, token=None, env=None):
    """Execute the notebook at ``path`` against ``address``; return the executed notebook.

    The kernel's environment gets ``RSYM_ADDRESS``, ``JUPYTER_RSYM_TOKEN``
    (if ``token``) and ``env``.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    variables = {"RSYM_ADDRESS": address, **({"JUPYTER_RSYM_TOKEN": token} if token else {}), **(env or {})}
    with environment(variables):  # the kernel inherits it
        NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(Path(path).parent)}}).execute()
    return notebook


@contextmanager
def environment(variables):
    """Set environment variables for the duration, then restore them."""
    previous = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


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
    with RsymServer() as server:
        print(f"jupyter-rsym serve on {server.address} (pid {server.process.pid}); "
              f"the kernel gets its token as JUPYTER_RSYM_TOKEN")
        notebook = execute_notebook(notebook_path, server.address, token=server.token)
    nbformat.write(notebook, output_path)
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    for number, cell in enumerate(code_cells, 1):
        print(f"\n--- cell {number} " + "-" * 50)
        print("\n".join("  >>> " + line for line in cell.source.splitlines()))
        for output in cell.outputs:
            print(output_text(output), end="")
    print(f"\nexecuted notebook written to {output_path}")
    return notebook
