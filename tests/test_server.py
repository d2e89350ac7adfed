"""Issue 12: ``jupyter-rsym serve``: token, TLS, one clear line for every wrong way in,
version checks, a bare Python, clean stops.  Real servers, a real kernel."""

import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import rpyc

import jupyter_rsym
from jupyter_rsym.remote import auth
from jupyter_rsym.remote.tokens import MAKE_ONE
from tests.servers import ClassicServer, RsymServer

from .test_sessions import fresh, one_line_error  # noqa: F401  (fixture)
from .waits import wait_until

PACKAGE = Path(jupyter_rsym.__file__).resolve().parent


def connected_line(cell, address, name="r"):
    assert cell.stdout.startswith(f"Connected {name} to {address}: Python 3."), cell.summary()
    return cell.stdout


def test_token_session_works_and_sends_no_agent(fresh, rsym_server):
    cell = fresh.ok(f"%rconnect {rsym_server.address} --token {rsym_server.token}")
    assert "Note" not in connected_line(cell, rsym_server.address)
    # the server imported the agent: nothing was sent at connect time
    agent_file = fresh.ok("r._agent['run_cell'].__code__.co_filename").result["text/plain"]
    assert agent_file.endswith("jupyter_rsym/remote/agent/cells.py'"), agent_file
    fresh.ok("def g(x):\n    print('g here', x)\n    return x * 2")
    cell = fresh.ok("list(r.modules.builtins.map(g, r.builtins.range(3)))")
    assert cell.stdout == "g here 0\ng here 1\ng here 2\n" and cell.result["text/plain"] == "[0, 2, 4]"
    cell = fresh.ok("%%remote\nimport os\nprint('pid', os.getpid())")
    assert cell.stdout == f"pid {rsym_server.process.pid}\n"
    rsym_server.wait_for_log("admitted (token)")


def test_ambient_token_is_offered_only_where_asked(kernel, rsym_server, classic_server, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(rsym_server.token + "\n")
    kernel.ok(f"%reload_ext jupyter_rsym\n%config RSym.token_file = {str(token_file)!r}")
    try:
        connected_line(kernel.ok(f"%rconnect {rsym_server.address}"), rsym_server.address)
        # the same ambient token does not get in the way of a stock server
        connected_line(kernel.ok(f"%rconnect {classic_server.address}"), classic_server.address)
        assert kernel.ok("%remote 6 * 7").result["text/plain"] == "42"
    finally:
        kernel.ok("%rdisconnect --all\n%config RSym.token_file = ''")


def test_token_file_holds_the_token(fresh, start_rsym_server, tmp_path):
    """``jupyter-rsym serve --token-file F``: F's first line is the token (README's example)."""
    token_file = tmp_path / "rsym-token"
    token = "f1e2" * 16  # 64 hex digits: a strong token
    token_file.write_text(f"{token}\nnot part of it\n")
    token_file.chmod(0o600)  # the server refuses a token file others can read
    server = start_rsym_server("--token-file", str(token_file))
    connected_line(fresh.ok(f"%rconnect {server.address} --token {token}"), server.address)
    assert fresh.ok("%remote __import__('os').getpid()").result["text/plain"] == str(server.process.pid)
    server.wait_for_log("admitted (token)")
    line = one_line_error(fresh.run(f"%rconnect {server.address} --token {server.token}x --as other"), "ConnectFailed")
    assert line == f"ConnectionError: wrong token for {server.address}: the server holds another one"
    server.wait_for_log("refused: wrong token")


def test_wrong_ways_in_are_one_clear_line(fresh, rsym_server, tls_rsym_server, classic_server, tls_files):
    plain, tls = rsym_server, tls_rsym_server
    tls_port = f"127.0.0.1:{tls.port}"
    cases = [
        (
            f"%rconnect {plain.address} --token {'0' * 64}",
            f"ConnectionError: wrong token for {plain.address}: the server holds another one",
        ),
        (
            f"%rconnect {plain.address} --token not-it",  # its proof would be an offline oracle
            f"ConnectionError: not proving a weak token to {plain.address}: the token has 6 characters, "
            f"fewer than 22 (128 bits); make one with: {MAKE_ONE}",
        ),
        (
            f"%rconnect {plain.address}",
            f"ConnectionError: {plain.address} requires a token: %rconnect {plain.address} --token TOKEN "
            "(or set JUPYTER_RSYM_TOKEN, or RSym.token_file)",
        ),
        (
            f"%rconnect {classic_server.address} --token {plain.token}",
            f"ConnectionError: {classic_server.address} asks for no token: it is a plain rpyc server "
            "(rpyc_classic, or jupyter-rsym serve --no-auth); connect without --token",
        ),
        (
            f"%rconnect {tls.address} --token {tls.token} --ca {tls_files.other_ca}",
            f"ConnectionError: cannot verify the TLS certificate of {tls.address} (unable to get local "
            "issuer certificate); pass --ca FILE with the CA that signed it",
        ),
        (
            f"%rconnect tls://{plain.address} --token {plain.token} --ca {tls_files.ca}",
            f"ConnectionError: tls://{plain.address} closed the connection in the TLS handshake; if it is "
            f"a plain server, connect to {plain.address} without tls://",
        ),
        (
            f"%rconnect {tls_port} --token {tls.token}",
            f"ConnectionError: {tls_port} speaks TLS: connect to tls://{tls_port}",
        ),
        (f"%rconnect {tls_port}", f"ConnectionError: {tls_port} speaks TLS: connect to tls://{tls_port}"),
        (
            f"%rconnect {tls.address} --ca {tls_files.ca}",
            f"ConnectionError: {tls.address} requires a token: %rconnect {tls.address} --token TOKEN "
            "(or set JUPYTER_RSYM_TOKEN, or RSym.token_file)",
        ),
    ]
    for line, expected in cases:
        assert one_line_error(fresh.run(line), "ConnectFailed") == expected
        assert fresh.ok("1 + 1").result["text/plain"] == "2"
    # a stock server says nothing to a TLS hello: the connect timeout ends the wait
    fresh.ok("%config RSym.connect_timeout = 1")
    try:
        line = one_line_error(
            fresh.run(f"%rconnect tls://{classic_server.address} --ca {tls_files.ca}"), "ConnectFailed"
        )
    finally:
        fresh.ok("%config RSym.connect_timeout = 5")
    assert line == (
        f"ConnectionError: tls://{classic_server.address} did not answer the TLS handshake "
        f"in 1 s; if it is a plain server, connect to {classic_server.address} without tls://"
    )
    assert "--ca, --cert, --key and --fingerprint are for tls:// addresses" in one_line_error(
        fresh.run(f"%rconnect {plain.address} --ca {tls_files.ca}"), "UsageError"
    )
    # each server logged why, and serves a well-behaved client all along
    plain.wait_for_log("refused: wrong token")
    plain.wait_for_log("refused: no token")
    plain.wait_for_log("refused: a TLS handshake on a plain port")
    tls.wait_for_log("refused: TLS handshake failed (TLSV1_ALERT_UNKNOWN_CA)")
    tls.wait_for_log("refused: a plain connection to the TLS port")
    fresh.ok(f"%rconnect {tls.address} --token {tls.token} --ca {tls_files.ca} --as secure")
    assert fresh.ok("%remote --on secure 6 * 7").result["text/plain"] == "42"
    tls.wait_for_log("admitted (token, TLS)")


def test_client_certificates(fresh, start_rsym_server, tls_files):
    server = start_rsym_server(
        "--tls-cert",
        str(tls_files.server_cert),
        "--tls-key",
        str(tls_files.server_key),
        "--tls-client-ca",
        str(tls_files.ca),
    )
    base = f"%rconnect {server.address} --token {server.token} --ca {tls_files.ca}"
    assert one_line_error(fresh.run(base), "ConnectFailed") == (
        f"ConnectionError: {server.address} wants a client certificate: pass --cert FILE --key FILE"
    )
    cell = fresh.ok(f"{base} --cert {tls_files.client_cert} --key {tls_files.client_key}")
    connected_line(cell, server.address)
    assert fresh.ok("%remote 6 * 7").result["text/plain"] == "42"
    # the same from the settings (as for RSym.connections opened at load)
    fresh.ok(
        f"%config RSym.tls_ca = {str(tls_files.ca)!r}\n%config RSym.tls_cert = {str(tls_files.client_cert)!r}\n"
        f"%config RSym.tls_key = {str(tls_files.client_key)!r}"
    )
    try:
        connected_line(
            fresh.ok(f"%rconnect {server.address} --token {server.token} --as again"), server.address, "again"
        )
    finally:
        fresh.ok("%config RSym.tls_ca = ''\n%config RSym.tls_cert = ''\n%config RSym.tls_key = ''")


def test_no_auth_is_plain_classic(start_rsym_server):
    server = start_rsym_server("--no-auth")
    assert server.token is None and server.paste_line == f"%rconnect {server.address}"
    conn = rpyc.classic.connect(server.host, server.port)
    try:
        assert conn.modules.os.getpid() == server.process.pid
    finally:
        conn.close()
    server.wait_for_log("admitted (no auth)")


def test_plain_rpyc_client_is_told_why(rsym_server):
    """rpyc's own client, against a server with a token, sees the reason."""
    with pytest.raises(PermissionError, match="requires a token; in a notebook: %rconnect HOST:PORT --token"):
        rpyc.classic.connect(rsym_server.host, rsym_server.port)


def test_server_log_lines_stay_out_of_cells(fresh, rsym_server):
    fresh.ok(f"%rconnect {rsym_server.address} --token {rsym_server.token}")
    cell = fresh.submit("%%remote\nimport time\nfor i in range(3):\n    print(i)\n    time.sleep(0.3)")
    cell.wait_for(lambda c: "0" in c.stdout, 10, "the first line")
    for _ in range(3):  # the server logs each refusal while the cell prints
        with socket.create_connection((rsym_server.host, rsym_server.port)) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            sock.recv(100)
    cell.wait(10)
    assert cell.stdout == "0\n1\n2\n" and cell.stderr == "", cell.summary()
    rsym_server.wait_for_log("refused: not a handshake message")


def test_stops_cleanly_on_sigterm_and_ctrl_c(tmp_path):
    for signum in (signal.SIGTERM, signal.SIGINT):
        log_file = tmp_path / f"server-{signum}.log"
        server = RsymServer(extra_args=["--log-file", str(log_file)]).start()
        try:
            sock = socket.create_connection((server.host, server.port))
            assert auth.authenticate(sock, server.token, 5) is True
            # the welcome can overtake the log line
            wait_until(
                lambda log_file=log_file: "admitted (token)" in log_file.read_text(), what="the admission logged"
            )
            server.process.send_signal(signum)
            assert server.process.wait(10) == 0
            assert sock.recv(10) == b""  # its connections were closed
            sock.close()
        finally:
            server.stop()
        logged = log_file.read_text()
        assert "admitted (token)" in logged and logged.rstrip().endswith("jupyter-rsym serve: stopped")
        assert "paste into a notebook" in "".join(server.log)  # the terminal got the paste line too


def test_bad_server_arguments_are_one_line(tmp_path):
    run = [sys.executable, "-m", "jupyter_rsym", "serve", "--port", "0"]
    cases = [
        (
            ["--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", str(tmp_path / "missing.key")],
            f"jupyter-rsym serve: cannot start: --tls-cert {tmp_path / 'missing.pem'}: no such file",
        ),
        (["--tls-cert", "x.pem"], "jupyter-rsym serve: --tls-cert and --tls-key go together"),
        (
            ["--token-file", str(tmp_path / "none")],
            f"jupyter-rsym serve: cannot start: --token-file {tmp_path / 'none'}: no such file",
        ),
        (["--port", "99999"], "jupyter-rsym serve: --port 99999: a port is 0 (any free one) to 65535"),
    ]
    for args, expected in cases:
        done = subprocess.run(run + args, capture_output=True, text=True, timeout=30)
        assert done.returncode == 2 and done.stderr.startswith(expected), done.stderr
        assert len(done.stderr.splitlines()) == 1, done.stderr


def test_server_side_imports_without_ipython():
    code = (
        "import sys\n"
        "for name in ('IPython', 'ipykernel', 'traitlets', 'jupyter_client', 'zmq'):\n"
        "    sys.modules[name] = None  # importing them now fails\n"
        "import jupyter_rsym.remote.server, jupyter_rsym.remote.auth, jupyter_rsym.remote.gate\n"
        "print(sorted(m for m in sys.modules if m.startswith('jupyter_rsym.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    modules = {m.split(".")[1] for m in eval(done.stdout)}
    assert modules == {"remote"}, modules  # nothing of the notebook side


# -- another rpyc major, another jupyter_rsym, a bare Python -----------------------


@pytest.fixture(scope="session")
def rpyc5(tmp_path_factory):
    """A directory holding rpyc 5 (installed from the package index by pip)."""
    target = tmp_path_factory.mktemp("rpyc5")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), "rpyc==5.3.1"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


def test_servers_of_another_rpyc_major(fresh, rpyc5):
    env = {**__import__("os").environ, "PYTHONPATH": str(rpyc5)}
    with ClassicServer(env=env) as stock, RsymServer(env=env) as ours:
        line = one_line_error(fresh.run(f"%rconnect {stock.address}"), "ConnectFailed")
        assert line == (
            f"ConnectionError: {stock.address} speaks another rpyc protocol (rpyc 5 or "
            f"older?): install rpyc 6.x there, as in this notebook (rpyc {rpyc.__version__})"
        )
        line = one_line_error(fresh.run(f"%rconnect {ours.address} --token {ours.token}"), "ConnectFailed")
        assert line == (
            f"ConnectionError: {ours.address} runs rpyc 5.3.1, this notebook rpyc "
            f"{rpyc.__version__}: install rpyc 6.x on the server"
        )
    assert fresh.ok("1 + 1").result["text/plain"] == "2"


def bare_copy(directory, change_agent=False):
    """Only rpyc and what ``python -m jupyter_rsym.server`` needs: the package's
    ``__init__``, ``server`` and the remote package."""
    shutil.copytree(Path(rpyc.__file__).parent, directory / "rpyc")
    target = directory / "jupyter_rsym"
    shutil.copytree(PACKAGE / "remote", target / "remote", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("__init__.py", "server.py"):
        shutil.copy(PACKAGE / name, target / name)
    if change_agent:  # another agent version: what an older jupyter_rsym on the server has
        with open(target / "remote" / "agent" / "cells.py", "a") as f:
            f.write("\n# an older agent\n")
    return directory


def test_bare_python_server_of_another_version(fresh, tmp_path):
    """``python -S -m jupyter_rsym.server`` from a directory with only rpyc and the
    server's modules: no site-packages, so no IPython, traitlets or plumbum."""
    directory = bare_copy(tmp_path, change_agent=True)
    with RsymServer(python=(sys.executable, "-S", "-E"), cwd=directory) as server:
        cell = fresh.ok(f"%rconnect {server.address} --token {server.token}")
        connected_line(cell, server.address)
        note = cell.stdout.splitlines()[1]
        assert note.startswith(f"Note: the server runs jupyter_rsym {jupyter_rsym.__version__} (agent ")
        assert note.endswith(f"install jupyter_rsym {jupyter_rsym.__version__} on the server to skip that")
        assert fresh.ok("%remote 6 * 7").result["text/plain"] == "42"
        loaded = fresh.ok("%remote sorted(m.split('.')[0] for m in __import__('sys').modules)")
        text = loaded.result["text/plain"]
        assert "'rpyc'" in text and not any(f"'{m}'" in text for m in ("IPython", "traitlets", "plumbum"))
