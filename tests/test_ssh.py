"""Issue 14: ``%rconnect ssh://`` through a tunnel, and ``--deploy``, against a real sshd.

The sshd (tests/sshd.py) runs on this machine, so "the remote's loopback" is
ours: a stock rpyc_classic started here is reachable through the tunnel, and
a deployed server's process and directory can be inspected from here.
"""

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import rpyc

from jupyter_rsym.kernel.config import RSym
from jupyter_rsym.link.address import parse_address
from jupyter_rsym.link.deploy import MARKER, REMOTE_PACKAGE, DeployedServer
from jupyter_rsym.link.schemes import transport_for
from jupyter_rsym.remote import auth
from jupyter_rsym.remote.bundle import AGENT_NAME, PACKAGE_DIR

from .harness import KernelHarness
from .test_faults import remote_sleep
from .test_resume import ticker
from .test_sessions import free_port, one_line_error
from .waits import Marker, wait_until

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's: no rpyc installed


def a_python(version):
    """An interpreter of exactly ``version`` (e.g. "3.8") on this machine; the test fails
    without one (a promise of README's is not skipped silently): this kind of machine
    has pyenv's, and Debian has no package of either version for .ci/run to install."""
    import glob
    import shutil

    installed = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}")))
    found = installed[-1] if installed else shutil.which(f"python{version}")
    if found is None:
        pytest.fail(
            f"no Python {version} here: the deploy test needs one; install it with "
            f"`pyenv install {version}` (or a python{version} on PATH)"
        )
    return found


def ssh_children(pid):
    """``ssh`` processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid and name == "ssh":
            found.append(int(entry.name))
    return found


def command_lines():
    """Every process's command line, as ``ps`` would show it to any user."""
    lines = []
    for entry in Path("/proc").iterdir():
        try:
            lines.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return lines


def launchers(sshd):
    """Command lines of deployed servers' launchers logged in through ``sshd``
    (other test runs on this machine may have theirs: SSH_CONNECTION names our port)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if MARKER in line and f" {sshd.port}\0".encode() in (entry / "environ").read_bytes():
                found.append(line)
        except OSError:
            continue
    return found


def options_cell(options):
    return f"%config RSym.ssh_options = {[str(o) for o in options]!r}"


@pytest.fixture(scope="module")
def ssh_kernel(kernel, sshd):
    """The module kernel with the extension loaded and ssh set up for rsym-test; its pid."""
    kernel.ok("%load_ext jupyter_rsym\n" + options_cell(sshd.ssh_options))
    kernel.pid = int(kernel.ok("import os\nprint(os.getpid())").stdout)
    return kernel


@pytest.fixture
def clean(ssh_kernel, sshd):
    """Each test leaves no session, the default ssh options, and no ssh child of the kernel."""
    yield ssh_kernel
    ssh_kernel.ok("%rdisconnect --all\n" + options_cell(sshd.ssh_options))
    assert wait_until(lambda: not ssh_children(ssh_kernel.pid)), ssh_children(ssh_kernel.pid)


def say_cell():
    return "def say(tag):\n    print('said', tag)\n    return tag\n"


def test_tunnel_to_a_stock_server(clean, classic_server):
    kernel = clean
    port = classic_server.port
    connect = kernel.ok(f"%rconnect ssh://rsym-test/{port}")
    assert connect.stdout.startswith(f"Connected r to ssh://rsym-test/{port}: Python 3."), connect.stdout
    assert kernel.ok("%remote __import__('os').getpid()").result["text/plain"] == str(classic_server.process.pid)
    # callbacks print in the cell that caused them, while it waits and afterwards
    kernel.ok(say_cell())
    cell = kernel.ok("r.modules.builtins.list(r.modules.builtins.map(say, ['a', 'b']))")
    assert cell.stdout == "said a\nsaid b\n" and cell.result["text/plain"] == "['a', 'b']"
    timer = kernel.ok("r.modules.threading.Timer(0.2, say, ['later']).start()")
    timer.wait_for(lambda c: "said later" in c.stdout, 10, "a background callback through the tunnel")
    assert kernel.ok("%%remote\nprint('over there', 6 * 7)").stdout == "over there 42\n"
    table = kernel.ok("%rconnections").stdout
    assert f"ssh://rsym-test/{port}" in table and "connected" in table and " ms " in table
    # an interrupt travels on the side connection, through the same tunnel
    asleep = Marker("asleep")
    cell = kernel.submit(remote_sleep(asleep))
    asleep.wait()
    kernel.interrupt()
    cell.wait(15)
    assert cell.error and cell.error["ename"] == "KeyboardInterrupt", cell.summary()
    assert kernel.ok("%remote 20 + 22").result["text/plain"] == "42"
    assert len(ssh_children(kernel.pid)) == 2  # the login shell and the tunnel
    socket_dir = kernel.ok("print(r.transport._socket_dir)").stdout.strip()
    assert os.stat(socket_dir).st_mode & 0o777 == 0o700
    assert kernel.ok("%rdisconnect r").stdout == f"Disconnected r (ssh://rsym-test/{port})\n"
    assert wait_until(lambda: not ssh_children(kernel.pid))
    assert not os.path.exists(socket_dir)


def test_tunnel_to_our_server_with_its_token(clean, rsym_server):
    kernel = clean
    address = f"ssh://rsym-test/{rsym_server.port}"
    line = one_line_error(kernel.run(f"%rconnect {address}"), "ConnectFailed")
    assert line.startswith(f"ConnectionError: {address} requires a token"), line
    line = one_line_error(kernel.run(f"%rconnect {address} --token not-{rsym_server.token}"), "ConnectFailed")
    assert line == f"ConnectionError: wrong token for {address}: the server holds another one"
    connect = kernel.ok(f"%rconnect {address} --token {rsym_server.token}")
    assert connect.stdout.startswith(f"Connected r to {address}: Python 3."), connect.stdout
    assert kernel.ok("%remote __import__('os').getpid()").result["text/plain"] == str(rsym_server.process.pid)


def known_hosts_cases(sshd, tmp_path):
    empty = tmp_path / "known_hosts_empty"
    empty.write_text("")
    return {
        # StrictHostKeyChecking=ask is ssh's default: it would prompt, and BatchMode refuses instead
        "unknown host key": (
            [*sshd.ssh_options, "-o", f"UserKnownHostsFile={empty}", "-o", "StrictHostKeyChecking=ask"],
            "ssh://rsym-test/{port}",
            "the host key of rsym-test is not in known_hosts, and it is never accepted silently",
        ),
        "changed host key": (
            ["-F", sshd.config_with_wrong_host_key()],
            "ssh://rsym-test/{port}",
            "the host key of rsym-test has CHANGED since it was saved in known_hosts",
        ),
        "authentication refused": (
            sshd.ssh_options,
            "ssh://nobody@rsym-test/{port}",
            "ssh login to nobody@rsym-test refused (nobody@127.0.0.1: Permission denied (publickey))",
        ),
        "sshd unreachable": (
            sshd.ssh_options,
            "ssh://rsym-test:{closed}/{port}",
            "ssh rsym-test failed: ssh: connect to host 127.0.0.1 port {closed}: Connection refused",
        ),
        "remote port closed": (
            sshd.ssh_options,
            "ssh://rsym-test/{closed}",
            "ssh://rsym-test/{closed}: nothing answered on port {closed} of rsym-test's loopback",
        ),
        "no python at --python": (
            sshd.ssh_options,
            "ssh://rsym-test --deploy --python /nonexistent/python3",
            "no Python at '/nonexistent/python3' on rsym-test (bash: line 1: /nonexistent/python3: "
            "No such file or directory); give one with --python PATH",
        ),
    }, empty


@pytest.mark.parametrize(
    "case",
    [
        "unknown host key",
        "changed host key",
        "authentication refused",
        "sshd unreachable",
        "remote port closed",
        "no python at --python",
    ],
)
def test_errors_are_one_line(clean, sshd, classic_server, tmp_path, case):
    kernel = clean
    cases, empty_known_hosts = known_hosts_cases(sshd, tmp_path)
    options, address, expected = cases[case]
    names = {"port": classic_server.port, "closed": free_port()}
    kernel.ok(options_cell(options))
    line = one_line_error(kernel.run(f"%rconnect {address.format(**names)}", timeout=40), "ConnectFailed")
    assert line.startswith("ConnectionError: " + expected.format(**names)), line
    assert "r" not in kernel.ok("print(list(get_ipython().user_ns))").stdout.split("'")
    assert empty_known_hosts.read_text() == ""  # nothing was accepted on the user's behalf
    assert wait_until(lambda: not ssh_children(kernel.pid)), "a failed connect left ssh running"
    assert kernel.ok("1 + 1").result["text/plain"] == "2"


def test_silent_sshd_fails_after_ssh_timeout(clean, sshd, start_proxy):
    kernel = clean
    silent = start_proxy(("127.0.0.1", sshd.port), delay=60)  # accepts, then says nothing in time
    kernel.ok(options_cell([*sshd.ssh_options, "-o", f"Port={silent.port}"]) + "\n%config RSym.ssh_timeout = 1.5")
    try:
        cell = kernel.run("%rconnect ssh://rsym-test/18812", timeout=30)
        assert one_line_error(cell, "ConnectFailed") == "ConnectionError: no answer from ssh rsym-test in 1.5 s"
        assert cell.stderr == ""  # plumbum's own log line stays out of the cell
    finally:
        kernel.ok("%config RSym.ssh_timeout = 15.0")
    assert wait_until(lambda: not ssh_children(kernel.pid))


def deployed(kernel, name):
    """(token, directory, pid) of session ``name``'s deployed server, as the kernel knows them."""
    server = f"{name}.transport.server"
    token, directory, pid = kernel.ok(f"print({server}.token, {server}.directory, {server}.pid)").stdout.split()
    return token, Path(directory), int(pid)


def test_deploy_onto_a_python_without_rpyc(clean, sshd):
    kernel = clean
    bare = subprocess.run([SYSTEM_PYTHON, "-c", "import rpyc"], capture_output=True, text=True)
    assert "No module named 'rpyc'" in bare.stderr  # the remote Python has no packages of ours
    connect = kernel.ok(f"%rconnect ssh://rsym-test --deploy --python {SYSTEM_PYTHON} --as d", timeout=40)
    token, directory, pid = deployed(kernel, "d")
    assert connect.stdout.startswith("Connected d to ssh://rsym-test/"), connect.stdout
    version = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True
    ).stdout.strip()
    assert f": Python {version} on Linux" in connect.stdout, connect.stdout
    where = kernel.ok("%%remote --on d\nimport os, sys\nprint(sys.executable, os.getpid())").stdout
    assert where == f"{SYSTEM_PYTHON} {pid}\n"
    # a fresh directory only we can read, holding only rpyc (and our server modules)
    assert directory.parent == Path("/tmp") and directory.name.startswith("jupyter-rsym-")
    assert directory.stat().st_mode & 0o777 == 0o700
    assert set(os.listdir(directory)) <= {"rpyc", REMOTE_PACKAGE}
    assert not list(directory.rglob("*.pyc"))
    assert sorted(
        p.relative_to(directory / REMOTE_PACKAGE).as_posix() for p in (directory / REMOTE_PACKAGE).rglob("*.py")
    ) == sorted(p.relative_to(PACKAGE_DIR).as_posix() for p in PACKAGE_DIR.rglob("*.py"))
    # it is our server: the agent was there already (nothing sent), and other
    # users of the host, who can reach its loopback port, need the token
    agent_file = kernel.ok(f"%remote --on d __import__('sys').modules[{AGENT_NAME!r}].__file__").result
    assert agent_file["text/plain"].strip("'").startswith(f"{directory}/{REMOTE_PACKAGE}/agent/")
    port = int(kernel.ok("print(d.address.port)").stdout)
    with pytest.raises(Exception, match="requires a token|refused"):
        rpyc.classic.connect("127.0.0.1", port).modules.os.getpid()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with pytest.raises(auth.HandshakeError):
            auth.authenticate(sock, "not-" + token, 5)
    # the token is on no command line (anyone on the host can read them with ps)
    assert len(token) >= 32
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert token not in ps and not any(token in line for line in command_lines())
    assert launchers(sshd)  # ps does see the server
    # the session is a full one: callbacks into this notebook
    kernel.ok(say_cell())
    cell = kernel.ok("%%remote --on d -i say\nsay('from the deployed server')")
    assert cell.stdout == "said from the deployed server\n"
    # disconnecting stops the server and deletes its directory
    kernel.ok("%rdisconnect d")
    assert wait_until(lambda: not os.path.exists(f"/proc/{pid}")), "the deployed server still runs"
    assert not directory.exists()


def test_deploy_onto_the_oldest_python_and_refuse_an_older_one(clean):
    kernel = clean
    oldest = a_python("3.8")  # rpyc 6's minimum
    kernel.ok(f"%rconnect ssh://rsym-test --deploy --python {oldest} --as d", timeout=40)
    assert kernel.ok("%remote --on d __import__('sys').version_info[:2]").result["text/plain"] == "(3, 8)"
    kernel.ok(say_cell())
    assert kernel.ok("%%remote --on d -i say\nsay('on 3.8')").stdout == "said on 3.8\n"
    kernel.ok("%rdisconnect d")
    older = a_python("3.7")
    line = one_line_error(
        kernel.run(f"%rconnect ssh://rsym-test --deploy --python {older}", timeout=40), "ConnectFailed"
    )
    version = subprocess.run(
        [older, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True
    ).stdout.strip()
    assert line == (
        f"ConnectionError: the server deployed on rsym-test with {older} failed to start: "
        f"jupyter_rsym needs Python 3.8 or newer on the remote, this is {version}"
    )


@pytest.mark.parametrize("end", ["shutdown", "kill -9"])
def test_the_kernel_ending_stops_a_deployed_server(sshd, end):
    """Shutdown stops it; a killed kernel is a dropped link to it: it keeps the
    session for its grace period (short here), then ends by itself."""
    harness = KernelHarness()
    try:
        harness.ok(
            "%load_ext jupyter_rsym\n"
            + options_cell(sshd.ssh_options)
            + "\n%config RSym.deploy_resume_grace = "
            + ("1.0" if end == "kill -9" else "600.0")
        )
        harness.ok(f"%rconnect ssh://rsym-test --deploy --python {SYSTEM_PYTHON}", timeout=40)
        _, directory, pid = deployed(harness, "r")
        kernel_pid = int(harness.ok("print(__import__('os').getpid())").stdout)
        kernel_ssh = ssh_children(kernel_pid)
        assert len(kernel_ssh) == 3  # the login shell, the server's ssh, the tunnel
        if end == "kill -9":
            os.kill(kernel_pid, signal.SIGKILL)  # no atexit, no goodbye: only its pipes close
    finally:
        harness.shutdown()
    assert wait_until(lambda: not os.path.exists(f"/proc/{pid}")), "the deployed server outlived the kernel"
    assert not directory.exists()
    assert wait_until(lambda: not any(os.path.exists(f"/proc/{p}") for p in kernel_ssh)), "ssh left running"


def drop_ssh(kernel, sshd, name):
    """Kill every ssh connection on the sshd side; wait (bounded) until the kernel noticed."""
    assert sshd.kill_sessions() >= 2
    assert wait_until(lambda: kernel.ok(f"print({name}.state)").stdout == "lost\n"), (
        "the kernel did not notice the drop"
    )


def test_deployed_server_keeps_the_session_across_a_dropped_link(clean, sshd):
    kernel = clean
    kernel.ok(f"%rconnect ssh://rsym-test --deploy --python {SYSTEM_PYTHON} --as d", timeout=40)
    _, directory, pid = deployed(kernel, "d")
    address = kernel.ok("print(d.address)").stdout.strip()
    kernel.ok("%%remote --on d\nx = 41")
    down, printed = Marker("link down"), Marker("ticks printed")
    ticks = kernel.ok(ticker(down, printed, on="d"))
    ticks.wait_for(lambda c: "tick 3\n" in c.stdout, 10, "the first ticks")
    drop_ssh(kernel, sshd, "d")
    down.set()
    printed.wait()  # ticks 4-39 were printed while the link was down
    assert os.path.exists(f"/proc/{pid}") and directory.exists()  # the drop did not stop it
    cell = kernel.ok("%%remote --on d\nx + 1", timeout=40)
    assert cell.stdout.startswith(f"Resumed d on {address}: the link had dropped"), cell.summary()
    assert cell.stdout.count("\n") == 1 and cell.result["text/plain"] == "42"
    ticks.wait_for(lambda c: "tick 39\n" in c.stdout, 10, "every tick")
    assert ticks.stdout == "".join(f"tick {i}\n" for i in range(40))  # missed ones replayed, once each
    assert kernel.ok("%remote --on d __import__('os').getpid()").result["text/plain"] == str(pid)
    assert len(ssh_children(kernel.pid)) == 2  # a new login and tunnel; the launcher's ssh is gone
    # a second session keeps the server busy, so it does not end by itself once d
    # is closed: %rdisconnect must stop it, without the ssh of its stdin (gone)
    token, _, _ = deployed(kernel, "d")
    kernel.ok(f"%rconnect {address} --token {token} --as e")
    assert kernel.ok("%rdisconnect d").stdout == f"Disconnected d ({address})\n"
    assert wait_until(lambda: not os.path.exists(f"/proc/{pid}")), "the deployed server still runs"
    assert not directory.exists()
    assert not launchers(sshd)


def test_tunnel_to_jupyter_rsym_serve_resumes_after_a_drop(clean, sshd, rsym_server):
    kernel = clean
    address = f"ssh://rsym-test/{rsym_server.port}"
    kernel.ok(f"%rconnect {address} --token {rsym_server.token} --as s")
    kernel.ok("%%remote --on s\ny = 'kept'")
    drop_ssh(kernel, sshd, "s")
    cell = kernel.ok("%remote --on s y", timeout=40)
    assert cell.stdout.startswith(f"Resumed s on {address}: the link had dropped"), cell.summary()
    assert cell.result["text/plain"] == "'kept'"


def test_deployed_server_ends_by_itself_when_its_grace_ends(clean, sshd):
    kernel = clean
    kernel.ok("%config RSym.deploy_resume_grace = 1.0")
    try:
        kernel.ok(f"%rconnect ssh://rsym-test --deploy --python {SYSTEM_PYTHON} --as d", timeout=40)
    finally:
        kernel.ok("%config RSym.deploy_resume_grace = 600.0")
    _, directory, pid = deployed(kernel, "d")
    drop_ssh(kernel, sshd, "d")
    assert wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 20), "the server outlived its grace"
    assert not directory.exists()
    line = one_line_error(kernel.run("%remote --on d 1 + 1", timeout=40), "SessionLost")
    assert line.startswith("ConnectionError: lost the connection to ssh://rsym-test/"), line
    assert line.endswith(f"%rconnect ssh://rsym-test --deploy --python {SYSTEM_PYTHON} --as d to reconnect")
    assert kernel.ok("1 + 1").result["text/plain"] == "2"


def test_stopping_by_pid_signals_only_a_launcher(sshd, tmp_path):
    """After a resume the launcher is stopped by pid over a new login; a pid
    that now belongs to another process is left alone."""
    kept = tmp_path / "kept"
    kept.mkdir()
    other = subprocess.Popen(["sleep", "60"])
    launcher = subprocess.Popen([SYSTEM_PYTHON, "-c", "import time; time.sleep(60)", MARKER])
    machine = sshd.ssh_machine()
    try:
        for process in (other, launcher):
            server = DeployedServer.__new__(DeployedServer)
            server.python, server.pid, server.directory = SYSTEM_PYTHON, process.pid, str(kept)
            server.stop_by_pid(machine)
        assert other.poll() is None and kept.exists()
        assert launcher.wait(5) == -signal.SIGTERM
    finally:
        machine.close()
        for process in (other, launcher):
            process.kill()
            process.wait()


def test_transport_reopens_its_tunnel_after_a_drop(sshd, classic_server):
    """What resuming over SSH builds on: the next stream after a drop logs in again."""
    settings = RSym(ssh_options=sshd.ssh_options)
    transport = transport_for(parse_address(f"ssh://rsym-test/{classic_server.port}", 18812), settings)
    try:
        conn = rpyc.classic.connect_stream(transport.open_stream())
        assert conn.modules.os.getpid() == classic_server.process.pid
        sshd.kill_sessions()
        with pytest.raises(EOFError):
            conn.modules.os.getpid()
        conn.close()

        # until the local ssh notices the drop, its tunnel still accepts and then
        # resets: a resume retries (RSym.resume_window), and so does this
        def reconnected():
            try:
                return rpyc.classic.connect_stream(transport.open_stream())
            except EOFError:
                return None

        again = wait_until(reconnected, what="a new tunnel", interval=0.2)
        assert again.modules.os.getpid() == classic_server.process.pid
        again.close()
    finally:
        transport.close()


def effective_ssh_options(sshd, settings):
    """What ssh itself makes of the arguments we give it (``ssh -G``: resolve, don't connect)."""
    from jupyter_rsym.link.ssh import ssh_arguments

    done = subprocess.run(
        ["ssh", "-G", *ssh_arguments(settings), sshd.host_alias], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)


def test_options_you_pass_win_over_ours(sshd):
    """README: we add BatchMode, ConnectTimeout (RSym.ssh_timeout) and
    ServerAliveInterval (RSym.keepalive); options in RSym.ssh_options win."""
    ours = effective_ssh_options(sshd, RSym(ssh_options=sshd.ssh_options, ssh_timeout=15, keepalive=60))
    assert (ours["batchmode"], ours["connecttimeout"], ours["serveraliveinterval"]) == ("yes", "15", "60")
    theirs = effective_ssh_options(
        sshd,
        RSym(
            ssh_options=[
                *sshd.ssh_options,
                "-o",
                "BatchMode=no",
                "-o",
                "ConnectTimeout=3",
                "-o",
                "ServerAliveInterval=7",
            ],
            ssh_timeout=15,
            keepalive=60,
        ),
    )
    assert (theirs["batchmode"], theirs["connecttimeout"], theirs["serveraliveinterval"]) == ("no", "3", "7")
    # RSym.keepalive = 0 adds none: the ssh config's own value applies
    off = effective_ssh_options(sshd, RSym(ssh_options=sshd.ssh_options, keepalive=0))
    assert off["serveraliveinterval"] != "60", off["serveraliveinterval"]
