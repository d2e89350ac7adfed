"""%rconnect / %rconnections / %rdisconnect, several sessions, and bad input."""

import re
import socket
import time

import pytest


def one_line_error(cell, ename):
    """The cell failed with exactly one line of error text of type ``ename``."""
    assert cell.reply["content"]["status"] == "error", cell.summary()
    if ename == "UsageError":  # IPython prints these to stderr, no traceback
        assert cell.error is None and cell.stdout == "", cell.summary()
        lines = cell.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("UsageError: "), cell.stderr
        return lines[0]
    assert cell.error is not None, cell.summary()
    assert cell.error["ename"] == ename, cell.error
    lines = [line for line in cell.error_text.splitlines() if line.strip()]
    assert len(lines) == 1, cell.error_text
    return lines[0]


@pytest.fixture
def fresh(kernel):
    kernel.ok("%reload_ext jupyter_rsym")
    yield kernel
    kernel.ok("%rdisconnect --all")


def test_several_sessions_newest_is_default(fresh, start_server):
    one, two = start_server(), start_server()
    fresh.ok(f"%rconnect {one.address} --as first")
    fresh.ok(f"%rconnect {two.address} --as second")
    pids = fresh.ok("print(first.modules.os.getpid(), second.modules.os.getpid())").stdout.split()
    assert pids == [str(one.process.pid), str(two.process.pid)]
    assert fresh.ok("%remote __import__('os').getpid()").result["text/plain"] == pids[1]
    cell = fresh.ok("%%remote --on first\nimport os\nos.getpid()")
    assert cell.result["text/plain"] == pids[0]
    listing = fresh.ok("%rconnections").stdout.splitlines()
    assert listing[0].split()[:4] == ["name", "address", "state", "rtt"]
    assert re.match(rf"first\s+{re.escape(one.address)}\s+connected\s+\d+\.\d+ ms\s+Python", listing[1])
    assert re.match(rf"second\s+{re.escape(two.address)}\s+connected\s+\d+\.\d+ ms\s+Python", listing[2])


def test_reconnect_under_used_name_replaces_cleanly(fresh, start_server):
    one, two = start_server(), start_server()
    fresh.ok(f"%rconnect {one.address}\nold = r")
    fresh.ok(f"%rconnect {two.address}")
    cell = fresh.ok("print(old.state, r.state, r.modules.os.getpid())")
    assert cell.stdout == f"closed connected {two.process.pid}\n"
    error = one_line_error(fresh.run("old.modules.os"), "SessionLost")
    assert "closed" in error and "%rconnect" in error


def test_failed_connect_keeps_the_old_session(fresh, start_server):
    server = start_server()
    fresh.ok(f"%rconnect {server.address}")
    one_line_error(fresh.run(f"%rconnect 127.0.0.1:{free_port()}"), "ConnectFailed")
    assert fresh.ok("r.modules.os.getpid()").result["text/plain"] == str(server.process.pid)


def test_disconnect(fresh, start_server):
    server = start_server()
    fresh.ok(f"%rconnect {server.address} --as a\n%rconnect {server.address} --as b")
    assert fresh.ok("%rdisconnect a").stdout == f"Disconnected a ({server.address})\n"
    assert fresh.ok("print('a' in globals(), b.state)").stdout == "False connected\n"
    fresh.ok("%rdisconnect --all")
    line = one_line_error(fresh.run("%%remote\n1"), "UsageError")
    assert "no remote session" in line and "%rconnect" in line
    assert "no sessions" in fresh.ok("%rconnections").stdout


@pytest.mark.parametrize(
    "line, expected",
    [
        ("%rconnect", "the following arguments are required: address"),
        ("%rconnect 127.0.0.1 --bogus", "unrecognized arguments: --bogus"),
        ("%rconnect 127.0.0.1:notaport", "cannot parse address '127.0.0.1:notaport'"),
        ("%rconnect 127.0.0.1:99999", "cannot parse address"),
        ("%rconnect 127.0.0.1 --deploy", "--deploy needs an ssh:// address"),
        ("%rconnect ssh://host --python /usr/bin/python3", "--python goes with --deploy"),
        ("%rconnect 127.0.0.1 --as 2bad", "must be a Python identifier"),
        ("%rdisconnect", "name a session to disconnect, or use --all"),
        ("%rdisconnect nosuch", "no session named 'nosuch'"),
        ("%remote", "%remote needs an expression"),
        ("%%remote --on nosuch\n1", "no session named 'nosuch'"),
        ("%%remote -i missing_name\n1", "-i missing_name: no notebook variable named 'missing_name'"),
        ("%%remote -i 'a b'\n1", "expected NAME or REMOTE=LOCAL"),
    ],
)
def test_bad_input_is_one_line(fresh, classic_server, line, expected):
    if "--on" in line or "-i" in line:
        fresh.ok(f"%rconnect {classic_server.address}")
    line_text = one_line_error(fresh.run(line), "UsageError")
    assert expected in line_text
    assert fresh.ok("1 + 1").result["text/plain"] == "2"


def test_missing_output_name(fresh, classic_server):
    fresh.ok(f"%rconnect {classic_server.address}")
    line = one_line_error(fresh.run("%%remote -o nowhere\nx = 1"), "UsageError")
    assert "-o nowhere: the remote namespace has no variable named 'nowhere'" in line


def test_refused_connection_is_one_clear_line(fresh):
    port = free_port()
    start = time.monotonic()
    line = one_line_error(fresh.run(f"%rconnect 127.0.0.1:{port}"), "ConnectFailed")
    assert time.monotonic() - start < 5
    assert line == f"ConnectionError: cannot connect to 127.0.0.1:{port}: Connection refused"


def test_silent_server_fails_after_connect_timeout(fresh):
    # a socket that listens but never speaks: the TCP handshake succeeds,
    # the rpyc handshake never answers
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    port = silent.getsockname()[1]
    try:
        fresh.ok("%config RSym.connect_timeout = 1")
        start = time.monotonic()
        line = one_line_error(fresh.run(f"%rconnect 127.0.0.1:{port}"), "ConnectFailed")
        assert time.monotonic() - start < 5
        assert f"127.0.0.1:{port} accepted the connection but did not answer in 1 s" in line
    finally:
        silent.close()
        fresh.ok("%config RSym.connect_timeout = 5")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_servers_that_are_not_classic_rpyc(fresh):
    """A server that speaks something else, and an rpyc server without the classic service."""
    import threading

    from rpyc import VoidService
    from rpyc.utils.server import ThreadedServer

    garbage = socket.socket()
    garbage.bind(("127.0.0.1", 0))
    garbage.listen(1)

    def answer_garbage():  # every connection, as a real server of another protocol does
        while True:
            try:
                conn, _ = garbage.accept()
            except OSError:
                return
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" * 4)
            threading.Timer(0.5, conn.close).start()

    threading.Thread(target=answer_garbage, daemon=True).start()
    line = one_line_error(fresh.run(f"%rconnect 127.0.0.1:{garbage.getsockname()[1]}"), "ConnectFailed")
    assert "is not an rpyc classic server" in line
    garbage.close()

    void = ThreadedServer(VoidService, hostname="127.0.0.1", port=0)
    threading.Thread(target=void.start, daemon=True).start()
    try:
        line = one_line_error(fresh.run(f"%rconnect 127.0.0.1:{void.port}"), "ConnectFailed")
        assert f"127.0.0.1:{void.port} is not an rpyc classic server" in line
    finally:
        void.close()
    assert fresh.ok("1 + 1").result["text/plain"] == "2"


def test_output_of_several_sessions_in_one_cell_is_labelled(fresh, start_server):
    one, two = start_server(), start_server()
    fresh.ok(f"%rconnect {one.address} --as a\n%rconnect {two.address} --as b")
    cell = fresh.ok("a.execute(\"print('one')\")\nb.execute(\"print('two')\")\na.execute(\"print('three')\")")
    assert cell.stdout == "one\n[b] two\n[a] three\n"
    # one session alone prints bare
    assert fresh.ok("%%remote --on b\nprint('alone')").stdout == "alone\n"
