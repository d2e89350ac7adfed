"""The demo: a loopback server, an example notebook executed in a real kernel.

``jupyter-rsym demo`` starts ``jupyter-rsym serve`` on 127.0.0.1 (a fresh
random token), executes a notebook from ``notebooks/`` in a fresh Jupyter
kernel (the notebook reads the server address from ``RSYM_ADDRESS``; the
kernel gets the token as ``JUPYTER_RSYM_TOKEN``), writes the executed
notebook next to it and prints what each cell showed.

Some notebooks need more (``needs``): a TLS server and its CA (made with
``trustme``, from ``.[test]``), a second server, an SSH host, a frontend
that answers ``input()``.  The demo provides what it can, and otherwise says
in one line what the notebook needs, as it does for a cell that fails.
"""

import contextlib
import os
import re
import tempfile
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
        NotebookClient(
            notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(Path(path).parent)}}
        ).execute()
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


class Unavailable(Exception):
    """What a notebook needs that the demo cannot provide (one line)."""


def needs(path, stack):
    """``(server arguments, env(server))`` for the notebook at ``path``: what it
    needs beyond one loopback server; raises Unavailable if the demo cannot
    provide it.  ``stack`` (an ExitStack) owns whatever is made for it."""
    name = Path(path).name
    if name.startswith("03-"):  # a TLS server, and the CA that signed its certificate
        try:
            import trustme
        except ImportError:
            raise Unavailable(
                f"{name} needs TLS files: install trustme (pip install -e '.[test]') and the demo makes them"
            ) from None
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        ca = trustme.CA()
        issued = ca.issue_cert("127.0.0.1", "localhost")
        ca.cert_pem.write_to_path(folder / "ca.pem")
        issued.cert_chain_pems[0].write_to_path(folder / "server.pem")
        issued.private_key_pem.write_to_path(folder / "server.key")
        return (
            ["--tls-cert", str(folder / "server.pem"), "--tls-key", str(folder / "server.key")],
            lambda server: {"RSYM_SERVER_TOKEN": server.token, "RSYM_CA": str(folder / "ca.pem")},
        )
    if name.startswith("04-") and not os.environ.get("RSYM_SSH_HOST"):
        raise Unavailable(
            f"{name} needs an SSH host that lets you in with a key: set RSYM_SSH_HOST "
            "(and RSYM_SSH_CONFIG, RSYM_SSH_PYTHON if needed); the demo has no sshd"
        )
    if name.startswith("05-"):
        raise Unavailable(
            f"{name} asks for input() in its last cell, which the demo cannot answer "
            "(no frontend): open it in JupyterLab with jupyter-rsym serve running"
        )
    if name.startswith("06-"):  # a second server, with the same token

        def second(server):
            other = stack.enter_context(RsymServer(extra_args=["--token", server.token]))
            return {"RSYM_ADDRESS_2": other.address}

        return [], second
    return [], lambda server: {}


def run_demo(notebook_path=DEFAULT_NOTEBOOK, output_path=None):
    """Run the demo; returns the exit status (1: the notebook could not run, said in one line)."""
    import nbformat
    from nbclient.exceptions import CellExecutionError

    notebook_path = Path(notebook_path)
    output_path = Path(output_path or notebook_path.with_suffix(".executed.ipynb"))
    with contextlib.ExitStack() as stack:
        try:
            arguments, env = needs(notebook_path, stack)
        except Unavailable as exc:
            print(f"jupyter-rsym demo: {exc}")
            return 1
        server = stack.enter_context(RsymServer(extra_args=arguments))
        print(
            f"jupyter-rsym serve on {server.address} (pid {server.process.pid}); "
            f"the kernel gets its token as JUPYTER_RSYM_TOKEN"
        )
        try:
            notebook = execute_notebook(notebook_path, server.address, token=server.token, env=env(server))
        except CellExecutionError as exc:
            print(
                f"jupyter-rsym demo: a cell of {notebook_path.name} failed: "
                f"{exc.ename}: {str(exc.evalue).splitlines()[0] if exc.evalue else ''}"
            )
            return 1
    nbformat.write(notebook, output_path)
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    for number, cell in enumerate(code_cells, 1):
        print(f"\n--- cell {number} " + "-" * 50)
        print("\n".join("  >>> " + line for line in cell.source.splitlines()))
        for output in cell.outputs:
            print(output_text(output), end="")
    print(f"\nexecuted notebook written to {output_path}")
    return 0
