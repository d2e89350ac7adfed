"""Issue 4: interrupts, timeouts, lost servers: the kernel and the connection survive."""

import signal

import pytest
import rpyc

from .blackhole import SilentLink
from .harness import KernelHarness
from .test_sessions import one_line_error
from .waits import Marker, wait_until

SAY = "def say(tag):\n    print('said', tag)\n"


@pytest.fixture
def probe():
    """Raw rpyc connections from the test process, to look at a server from outside."""
    conns = []

    def connect(server):
        conn = rpyc.classic.connect("127.0.0.1", server.port)
        conns.append(conn)
        return conn

    yield connect
    for conn in conns:
        conn.close()


@pytest.fixture
def session(kernel, start_server):
    """A running server and the module kernel connected to it as ``r``."""
    server = start_server()
    kernel.ok(f"%reload_ext jupyter_rsym\n%config RSym.timeout = 30.0\n%rconnect {server.address}\n" + SAY)
    yield server
    kernel.ok("%rdisconnect --all\n%config RSym.timeout = 30.0")


def remote_sleep(marker, seconds=60):
    """Notebook code that calls the remote's ``time.sleep`` (blocked in C there)
    once the remote reached ``marker``: the cell then waits on the remote."""
    return f"r.modules.builtins.eval(\"{marker.touch} or __import__('time').sleep({seconds})\")"


def interrupted(kernel, cell, marker):
    """Interrupt ``cell`` once the remote reached ``marker`` (the cell waits on it);
    it must show KeyboardInterrupt.  The remote work runs far longer than the
    10 s bound (a minute, or forever): the bound only breaks if the interrupt hangs."""
    marker.wait()
    kernel.interrupt()
    cell.wait(10)
    assert cell.error and cell.error["ename"] == "KeyboardInterrupt", cell.summary()
    return cell


def assert_usable(kernel):
    """The next cell works and background-served callbacks still reach their cell."""
    assert kernel.ok("%remote 20 + 22").result["text/plain"] == "42"
    timer = kernel.ok("r.modules.threading.Timer(0.2, say, ['after']).start()")
    timer.wait_for(lambda c: "said after" in c.stdout, 10, "background callback")


def test_interrupt_remote_busy_loop_stops_it(kernel, session, probe):
    running = Marker("loop running")
    cell = kernel.submit(
        f"%%remote\nimport sys\nsys.rsym_counter = [0]\n{running.touch}\ntry:\n    while True:\n"
        "        sys.rsym_counter[0] += 1\n"
        "except BaseException as stop:\n    sys.rsym_stopped_by = repr(stop)\n    raise"
    )
    outside = probe(session)
    interrupted(kernel, cell, running)
    # the remote loop itself was stopped (by an exception raised in it), not left spinning
    stopped_by = wait_until(lambda: outside.modules.sys.__dict__.get("rsym_stopped_by"), what="the loop's end")
    assert stopped_by.startswith("KeyboardInterrupt"), stopped_by
    assert outside.modules.sys.rsym_counter[0] > 0
    assert_usable(kernel)


def test_interrupt_remote_sleep_frees_the_session(kernel, session):
    asleep = Marker("asleep")
    interrupted(kernel, kernel.submit(remote_sleep(asleep)), asleep)
    assert_usable(kernel)  # the remote thread still sleeps; another one serves us


def test_interrupt_inside_callback(kernel, session):
    spinning = Marker("spinning")
    kernel.ok(f"def spin(x):\n    {spinning.touch}\n    while True:\n        pass")
    cell = kernel.submit(
        "%%remote -i spin\ntry:\n    spin(1)\nexcept Exception as exc:\n    seen = f'{type(exc).__name__}: {exc}'"
    )
    interrupted(kernel, cell, spinning)
    assert kernel.ok("%remote seen").result["text/plain"].startswith("'RuntimeError: interrupted in the notebook")
    assert_usable(kernel)


def test_interrupt_after_remote_calls_stops_local_code_and_a_second_session(kernel, session, start_server):
    """The deferring SIGINT handler stays for the cell once a call installed
    it: local code after remote calls still stops at Ctrl-C, and a call on a
    second session in the same cell is interrupted as the first would be."""
    spinning = Marker("local loop")
    cell = kernel.submit(f"for _ in range(3):\n    r.eval('1')\n{spinning.touch}\nwhile True:\n    pass")
    interrupted(kernel, cell, spinning)
    other = start_server()
    kernel.ok(f"%rconnect {other.address} --as other")
    asleep = Marker("second session asleep")
    cell = kernel.submit("r.eval('2')\n" + remote_sleep(asleep).replace("r.", "other.", 1))
    interrupted(kernel, cell, asleep)
    assert_usable(kernel)
    assert kernel.ok("other.eval('6 * 7')").result["text/plain"] == "42"
    kernel.ok("%rdisconnect other")


def test_interrupt_while_idle_does_nothing(kernel, session):
    kernel.interrupt()  # the signal is pending at once; the kernel handles it before the next request
    assert kernel.ok("'idle interrupt handled'").error is None
    assert_usable(kernel)


@pytest.mark.parametrize("set_timeout", ["%config RSym.timeout = 2\n%rconnect {}", "%rconnect {} --timeout 2"])
def test_stopped_server_times_out_then_recovers(kernel, session, set_timeout):
    kernel.ok(set_timeout.format(session.address))
    session.signal(signal.SIGSTOP)
    try:
        for code in ("r.modules.os.getpid()", "%%remote\nimport time\ntime.sleep(1)\n'slept'"):
            # the stopped server never answers: only the 2 s timeout ends the cell (20 s: a hang)
            line = one_line_error(kernel.run(code, timeout=20), "NoAnswer")
            assert line == f"TimeoutError: no answer from {session.address} in 2 s"
    finally:
        session.signal(signal.SIGCONT)
    # late answers are dropped by sequence number: the stream is intact
    assert kernel.ok("r.modules.os.getpid()").result["text/plain"] == str(session.process.pid)
    assert (
        kernel.ok("%%remote\nimport time\ntime.sleep(2.5)\n'busy, not hung'").result["text/plain"] == "'busy, not hung'"
    )
    assert_usable(kernel)


def test_killed_server_fails_fast_and_reconnect_works(kernel, session, start_server):
    other = start_server()
    kernel.ok(f"%rconnect {other.address} --as other\n%rconnect {session.address}")
    asleep = Marker("asleep")
    cell = kernel.submit(f"%remote {asleep.touch} or __import__('time').sleep(60)")
    asleep.wait()
    session.signal(signal.SIGKILL)
    cell.wait(10)  # a bound a hang breaks: without noticing, the cell would wait the whole minute
    line = one_line_error(cell, "SessionLost")
    assert line.startswith(f"ConnectionError: lost the connection to {session.address}")
    assert f"%rconnect {session.address}" in line
    listing = kernel.ok("%rconnections").stdout
    assert any(row.startswith("r ") and " lost " in row for row in listing.splitlines()), listing
    assert kernel.ok("other.modules.os.getpid()").result["text/plain"] == str(other.process.pid)
    assert kernel.is_alive()
    restarted = start_server(port=session.port)
    kernel.ok(f"%rconnect {restarted.address}")
    assert kernel.ok("r.modules.os.getpid()").result["text/plain"] == str(restarted.process.pid)


def test_dead_peer_noticed_while_idle(kernel, session):
    kernel.ok("import time\ntime.sleep(3)")  # an idle period (the scenario): the session is still fine
    assert kernel.ok("%remote 'still here'").result["text/plain"] == "'still here'"
    session.signal(signal.SIGKILL)
    wait_until(lambda: kernel.ok("print(r.state)").stdout == "lost\n", what="the session marked lost")


def test_silent_peer_noticed_by_tcp_keepalive(kernel):
    """An idle session notices a server that vanished without a word (no FIN, no
    RST: its packets just stop) by TCP keepalive: RSym.keepalive s of silence,
    then 5 unanswered probes.  The side connection's pings (every RSym.timeout s)
    are kept out of it with a long timeout."""
    with SilentLink() as link, link.server() as server:
        kernel.ok(
            f"%reload_ext jupyter_rsym\n%config RSym.keepalive = 1\n%config RSym.timeout = 600.0\n"
            f"%rconnect {server.address}"
        )
        try:
            assert kernel.ok("%remote 6 * 7").result["text/plain"] == "42"
            link.silence()
            # about 6 s (1 + 5 probes of 1 s); without keepalive nothing would notice for 600 s
            wait_until(lambda: kernel.ok("print(r.state)").stdout == "lost\n", 60, "keepalive to notice", interval=0.5)
        finally:
            kernel.ok("%rdisconnect --all\n%config RSym.keepalive = 60\n%config RSym.timeout = 30.0")


def test_callback_after_session_closed_fails_on_remote_only(kernel, session, probe):
    kernel.ok(
        "%%remote -i say\nimport sys, threading\nsys.rsym_late_errors = []\n"
        "def later():\n    try:\n        say('late')\n    except BaseException as exc:\n"
        "        sys.rsym_late_errors.append(f'{type(exc).__name__}: {exc}')\n"
        "threading.Timer(0.5, later).start()"
    )
    kernel.ok("%rdisconnect r")
    other = kernel.ok("import time\ntime.sleep(1.5)")
    outside = probe(session)
    wait_until(lambda: len(outside.modules.sys.rsym_late_errors), what="the late callback's error")
    assert "closed" in outside.modules.sys.rsym_late_errors[0]
    assert "said late" not in str(kernel.all_messages())
    assert other.stdout == ""


def server_threads(conn):
    """Threads serving rpyc connections in the server process (the probe's own included)."""
    return conn.eval(
        "sum(1 for t in __import__('threading').enumerate() if t.name.startswith('RpycSpawn') or 'Thread-' in t.name)"
    )


@pytest.mark.parametrize("how", ["shutdown", "restart"])
def test_kernel_shutdown_and_restart_leave_nothing_on_server(start_server, probe, how):
    server = start_server()
    outside = probe(server)
    baseline = server_threads(outside)
    harness = KernelHarness()
    try:
        harness.ok(f"%load_ext jupyter_rsym\n%rconnect {server.address}")
        assert server_threads(outside) > baseline
        if how == "restart":
            harness.restart()
    finally:
        if how == "shutdown":
            harness.shutdown()
    try:
        wait_until(lambda: server_threads(outside) == baseline, what="the server to stop serving the kernel")
    finally:
        if how == "restart":
            harness.shutdown()
