"""Issue 26, part 10: no silent failures.  A bad RSym.connections entry, a bad
serve --port, a missing TLS file, %reload_ext, a demo notebook that needs more
than one server, a link that drops while the kernel is idle: each says so in
one line."""

import subprocess
import sys
from pathlib import Path

from .harness import KernelHarness
from .test_errors import one_line_error
from .test_sessions import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_a_bad_connections_entry_shows_at_start_and_in_rconnections(tmp_path, start_server):
    server = start_server()
    nowhere = f"127.0.0.1:{free_port()}"
    profile = tmp_path / "profile_default"
    profile.mkdir()
    (profile / "ipython_kernel_config.py").write_text(
        "c.InteractiveShellApp.extensions = ['jupyter_rsym']\n"
        f"c.RSym.connections = {{'good': '{server.address}', 'bad': '{nowhere}'}}\n"
    )
    harness = KernelHarness(env={"IPYTHONDIR": str(tmp_path)})
    try:
        first = harness.ok("1")
        assert first.stdout.startswith(f"jupyter_rsym: could not connect bad to {nowhere} (RSym.connections): ")
        assert first.stdout.count("\n") == 1
        assert harness.ok("2").stdout == ""  # said once
        rows = harness.ok("%rconnections").stdout.splitlines()
        assert rows[1].split()[:3] == ["good", server.address, "connected"]
        assert rows[2].split()[:4] == ["bad", nowhere, "failed", "-"]
    finally:
        harness.shutdown()


def serve(*args):
    return subprocess.run(
        [sys.executable, "-m", "jupyter_rsym.server", *args], capture_output=True, text=True, timeout=60
    )


def test_serve_refuses_a_bad_port_and_names_missing_files(tmp_path):
    done = serve("--port", "99999")
    assert (done.returncode, done.stderr) == (
        2,
        "jupyter-rsym serve: --port 99999: a port is 0 (any free one) to 65535\n",
    )
    missing = tmp_path / "server.pem"
    done = serve("--tls-cert", str(missing), "--tls-key", str(tmp_path / "server.key"))
    assert (done.returncode, done.stderr) == (
        2,
        f"jupyter-rsym serve: cannot start: --tls-cert {missing}: no such file\n",
    )


def test_rconnect_names_a_missing_tls_file(kernel, tls_rsym_server, tmp_path):
    kernel.ok("%reload_ext jupyter_rsym")
    missing = tmp_path / "lab-ca.pem"
    line = one_line_error(kernel.run(f"%rconnect {tls_rsym_server.address} --ca {missing} --as tls"), "ConnectFailed")
    assert line == f"ConnectionError: the TLS file {missing} (--ca, or RSym.tls_ca) does not exist"


def test_reload_ext_says_what_it_closed(kernel, start_server):
    server = start_server()
    kernel.ok(f"%reload_ext jupyter_rsym\n%rdisconnect --all\n%rconnect {server.address} --as kept")
    cell = kernel.ok("%reload_ext jupyter_rsym")
    assert cell.stdout == f"jupyter_rsym unloaded: closed kept ({server.address})\n"
    assert kernel.ok("%reload_ext jupyter_rsym").stdout == ""  # nothing open: nothing to say


def test_a_link_dropping_while_idle_says_so_in_the_last_cell(kernel, start_server):
    server = start_server()
    kernel.ok(f"%reload_ext jupyter_rsym\n%rconnect {server.address} --as idle")
    used = kernel.ok("%remote --on idle 1 + 1")
    kernel.ok("print('a local cell')")
    server.stop()
    used.wait_for(lambda c: "dropped while idle" in c.stderr, 20, "the idle-drop line")
    assert used.stderr.startswith(f"idle: the link to {server.address} dropped while idle (")
    assert f"%rconnect {server.address} --as idle reconnects" in used.stderr
    assert used.stderr.count("\n") == 1


def demo(notebook, tmp_path):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter_rsym",
            "demo",
            f"notebooks/{notebook}.ipynb",
            "--output",
            str(tmp_path / "out.ipynb"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_demo_says_what_a_notebook_needs(tmp_path):
    done = demo("05-rich-remote-output", tmp_path)
    assert done.returncode == 1
    assert done.stdout == (
        "jupyter-rsym demo: 05-rich-remote-output.ipynb asks for input() in its last "
        "cell, which the demo cannot answer (no frontend): open it in JupyterLab with "
        "jupyter-rsym serve running\n"
    )


def test_demo_provides_a_second_server(tmp_path):
    done = demo("06-many-hosts", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    cell = done.stdout.split("--- cell 2 ")[1].split("--- cell 3 ")[0]
    assert "[left] " in cell and "[right] " in cell and cell.count("step 2\n") == 2, cell
    assert (tmp_path / "out.ipynb").exists()
