"""Issue 13: a dropped link does not lose the remote session, and missed output is replayed.

A real kernel talks to a real ``jupyter-rsym serve`` through a loopback
proxy (``tests/netproxy.py``) that the tests cut: every connection dropped
at once, both sides, as a broken network would.
"""

import time

import pytest

from .test_faults import interrupted
from .test_sessions import one_line_error

TICKER = (
    "%%remote\nimport threading, time\n"
    "def tick():\n"
    "    for i in range({n}):\n"
    "        print('tick', i)\n"
    "        time.sleep({pause})\n"
    "threading.Thread(target=tick).start()"
)


@pytest.fixture
def link(kernel, start_rsym_server, start_proxy):
    """``link(*server_args)``: a server, a proxy in front of it, and the module
    kernel connected through the proxy as ``r``; returns (server, proxy)."""

    def connect(*args):
        server = start_rsym_server(*args)
        proxy = start_proxy(("127.0.0.1", server.port))
        cell = kernel.ok(f"%reload_ext jupyter_rsym\n%rconnect {proxy.address} --token {server.token}")
        assert cell.stdout.splitlines()[-1].startswith(f"Connected r to {proxy.address}"), cell.summary()
        return server, proxy

    yield connect
    kernel.ok("%rdisconnect --all")


def drop(kernel, proxy):
    """Cut every connection through ``proxy``; wait (bounded) until the kernel noticed."""
    assert proxy.cut() >= 2  # the session's connection and its side connection
    deadline = time.monotonic() + 10
    while kernel.ok("print(r.state)").stdout != "lost\n":
        assert time.monotonic() < deadline, "the kernel did not notice the drop"
        time.sleep(0.05)


def resumed_line(cell, proxy):
    lines = cell.stdout.splitlines()
    assert lines and lines[0].startswith(f"Resumed r on {proxy.address}: the link had dropped"), cell.summary()
    return lines[0]


def test_namespace_and_thread_output_survive_a_drop(kernel, link):
    server, proxy = link()
    kernel.ok("%%remote\nx = 41")
    ticker = kernel.ok(TICKER.format(n=40, pause=0.05))
    ticker.wait_for(lambda c: "tick 3\n" in c.stdout, 10, "the first ticks")
    drop(kernel, proxy)
    time.sleep(0.5)  # the thread prints while the link is down
    cell = kernel.ok("%%remote\nx + 1")
    resumed_line(cell, proxy)
    assert cell.stdout.count("\n") == 1 and cell.result["text/plain"] == "42"
    ticker.wait_for(lambda c: "tick 39\n" in c.stdout, 10, "every tick")
    assert ticker.stdout == "".join(f"tick {i}\n" for i in range(40))
    assert "tick" not in cell.stdout
    line = server.wait_for_log("detached")
    assert "a restarted kernel starts a new session" in line
    server.wait_for_log("session 1 resumed")


def test_waiting_cell_fails_with_one_line_and_gets_its_later_output(kernel, link):
    _, proxy = link()
    cell = kernel.submit("%%remote\nimport time\nfor i in range(30):\n    print('step', i)\n"
                         "    time.sleep(0.05)\n'done'")
    cell.wait_for(lambda c: "step 2\n" in c.stdout, 10, "the first steps")
    proxy.cut()
    cell.wait(10)
    line = one_line_error(cell, "LinkDropped")
    assert line == (f"ConnectionError: the link to {proxy.address} dropped while this cell waited; the "
                    "remote work goes on and its output will land here when r resumes (its next use resumes it)")
    resumed_line(kernel.ok("%remote 1"), proxy)
    cell.wait_for(lambda c: "step 29\n" in c.stdout, 10, "every step")
    assert cell.stdout == "".join(f"step {i}\n" for i in range(30))


def test_stable_functions_keep_working_from_remote_threads(kernel, link):
    _, proxy = link()
    kernel.ok("def beat(i):\n    print('beat', i)\n    return i")
    starter = kernel.ok(
        "%%remote -i beat\nimport threading, time\nfailures = []\n"
        "def pulse():\n"
        "    for i in range(40):\n"
        "        try:\n"
        "            beat(i)\n"
        "        except ConnectionError as exc:\n"
        "            failures.append((i, str(exc)))\n"
        "        time.sleep(0.05)\n"
        "threading.Thread(target=pulse).start()"
    )
    starter.wait_for(lambda c: "beat 3\n" in c.stdout, 10, "the first beats")
    drop(kernel, proxy)
    time.sleep(0.5)  # calls fail on the remote side while the link is down
    resumed_line(kernel.ok("%remote 1"), proxy)
    starter.wait_for(lambda c: "beat 39\n" in c.stdout, 10, "beats after the resume")
    beats = [int(line.split()[1]) for line in starter.stdout.splitlines()]
    assert beats == sorted(set(beats)), "each beat once, in order"
    failures = kernel.ok("%remote failures").result["text/plain"]
    failed = {int(i) for i in __import__("re").findall(r"\((\d+), ", failures)}
    assert failed and set(beats) | failed == set(range(40)), (beats, failures)
    assert "the link to the notebook is down: beat is unreachable until the notebook resumes" in failures


def test_objects_from_before_the_drop_give_one_line(kernel, link):
    _, proxy = link()
    kernel.ok("os_ = r.modules.os\ndef h():\n    print('h ran')\nr.namespace['h'] = h")
    drop(kernel, proxy)
    line = one_line_error(kernel.run("os_.getcwd()"), "StaleObject")
    assert line.startswith("ConnectionError: this remote object came over a connection of r that dropped")
    assert "fetch it again from the session, e.g. r.namespace['x'] or r.modules.os" in line
    resumed_line(kernel.ok("r.modules.os.getcwd()"), proxy)
    # what the session hands out after the resume works: modules, builtins, display
    assert kernel.ok("'os' in r.modules, r.builtins.len('abc')").result["text/plain"] == "(True, 3)"
    assert kernel.ok("r.modules.os.path").result["text/plain"].startswith("<module 'posixpath'")
    one_line_error(kernel.run("os_.getcwd()"), "StaleObject")
    shown = kernel.ok("os_").result["text/plain"]
    assert shown.startswith("<remote object; display failed: StaleObject: this remote object came over"), shown
    cell = kernel.ok("%%remote\ntry:\n    h()\nexcept ConnectionError as exc:\n    print(exc)")
    assert cell.stdout == ("this notebook object belonged to a connection that dropped; only functions "
                           "handed over with -i or %rpush --ref are re-bound when the session resumes\n")


def test_interrupt_after_a_resume(kernel, link):
    _, proxy = link()
    drop(kernel, proxy)
    resumed_line(kernel.ok("%remote 1"), proxy)
    interrupted(kernel, kernel.submit("%remote __import__('time').sleep(30)"), within=5)
    assert kernel.ok("%remote 6 * 7").result["text/plain"] == "42"


def test_resume_by_hand_and_from_rconnections(kernel, link):
    server, proxy = link()
    kernel.ok("%%remote\nx = 'kept'")
    drop(kernel, proxy)
    listing = kernel.ok("%rconnections").stdout.splitlines()
    assert listing[0].startswith(f"Resumed r on {proxy.address}")
    assert listing[2].split()[:3] == ["r", proxy.address, "connected"], listing
    drop(kernel, proxy)
    cell = kernel.ok(f"%rconnect {proxy.address} --token {server.token}")
    resumed_line(cell, proxy)
    assert cell.stdout.count("\n") == 1
    assert kernel.ok("%remote x").result["text/plain"] == "'kept'"


def test_grace_expiry_is_one_line(kernel, link):
    server, proxy = link("--resume-grace", "1")
    kernel.ok("%%remote\nx = 1")
    drop(kernel, proxy)
    line = server.wait_for_log("expired")
    assert "session 1 expired (nobody resumed it within 1 s)" in line
    line = one_line_error(kernel.run("%remote x"), "SessionExpired")
    assert line == (f"ConnectionError: the session r on {proxy.address} is gone: it expired (nobody resumed "
                    f"it within 1 s); %rconnect {proxy.address} --as r starts a new one")
    kernel.ok(f"%rconnect {proxy.address} --token {server.token}")
    assert kernel.ok("%remote 'x' in globals()").result["text/plain"] == "False"


def test_refused_connection_fails_at_once_then_resumes(kernel, link):
    _, proxy = link()
    proxy.stop_listening()
    drop(kernel, proxy)
    start = time.monotonic()
    line = one_line_error(kernel.run("%remote 1"), "SessionLost")
    assert time.monotonic() - start < 3.5  # no retries: they would take the resume window (4 s)
    assert line.startswith(f"ConnectionError: lost the connection to {proxy.address} and could not resume r "
                           f"(cannot connect to {proxy.address}: Connection refused)")
    proxy.listen_again()
    resumed_line(kernel.ok("%remote 1"), proxy)


def test_output_beyond_the_buffer_leaves_one_marker_line(kernel, link):
    _, proxy = link("--resume-buffer", "2000")
    spammer = kernel.ok(
        "%%remote\nimport threading, time\n"
        "def spam():\n"
        "    time.sleep(1)  # the link is down by then\n"
        "    for i in range(100):\n"
        "        print('line %03d ' % i + 'x' * 40)\n"
        "threading.Thread(target=spam).start()"
    )
    drop(kernel, proxy)
    time.sleep(1.5)
    resumed_line(kernel.ok("%remote 1"), proxy)
    spammer.wait_for(lambda c: "line 099" in c.stdout, 10, "the last line")
    kept = spammer.stdout.splitlines()
    numbers = [int(line.split()[1]) for line in kept]
    assert numbers == list(range(numbers[0], 100)) and 0 < numbers[0] < 80, numbers
    assert len(spammer.stdout) <= 2000
    idle, *marker = spammer.stderr.splitlines()  # the drop, said while idle; then the marker
    assert idle.startswith(f"r: the link to {proxy.address} dropped while idle"), spammer.stderr
    assert len(marker) == 1 and marker[0].startswith("[jupyter-rsym: "), spammer.stderr
    assert "characters of output dropped here" in marker[0] and "--resume-buffer 2000" in marker[0]


def test_stock_server_says_resuming_needs_our_server(kernel, start_server, start_proxy):
    server = start_server()
    proxy = start_proxy(("127.0.0.1", server.port))
    kernel.ok(f"%reload_ext jupyter_rsym\n%rconnect {proxy.address}")
    try:
        drop(kernel, proxy)
        line = one_line_error(kernel.run("%remote 1"), "SessionLost")
        assert line.startswith(f"ConnectionError: lost the connection to {proxy.address} (")
        assert line.endswith(f"%rconnect {proxy.address} --as r to reconnect; a stock rpyc_classic keeps "
                             "no session: resuming needs jupyter-rsym serve")
    finally:
        kernel.ok("%rdisconnect --all")


def test_closing_ends_the_session_and_idle_server_exits(kernel, link):
    server, proxy = link("--exit-when-idle", "--resume-grace", "1")
    kernel.ok("%rdisconnect r")
    server.wait_for_log("session 1 ended: it was closed by the notebook")
    assert server.process.wait(10) == 0
    server.wait_for_log("no connection and no session left: exiting (--exit-when-idle)")


def test_idle_server_exits_when_the_last_session_expires(kernel, link):
    server, proxy = link("--exit-when-idle", "--resume-grace", "1")
    drop(kernel, proxy)
    assert server.process.wait(10) == 0
    server.wait_for_log("session 1 expired")
    one_line_error(kernel.run("%remote 1"), "SessionLost")


def test_a_batch_delivered_but_not_acknowledged_shows_once(kernel, link):
    _, proxy = link()
    kernel.ok("%%remote\nimport threading, time\ndef once():\n    time.sleep(0.3)\n    print('only once')")
    proxy.delay = 1.0  # one way: the acknowledgment is still on its way when we cut
    cell = kernel.ok("%%remote\nthreading.Thread(target=once).start()")
    cell.wait_for(lambda c: "only once" in c.stdout, 10, "the line")
    proxy.cut()
    proxy.delay = 0.0
    resumed_line(kernel.ok("%remote 1"), proxy)  # the server sends that batch again
    time.sleep(0.5)
    assert cell.stdout == "only once\n"


def test_a_new_kernel_gets_a_new_session_and_the_old_one_expires(start_rsym_server):
    from .harness import KernelHarness

    server = start_rsym_server("--resume-grace", "1")
    first = KernelHarness()
    try:
        first.ok(f"%load_ext jupyter_rsym\n%rconnect {server.address} --token {server.token}\n%remote 1")
        first.km.shutdown_kernel(now=True)  # a crash or a forced restart: nobody says goodbye
    finally:
        first.shutdown()
    line = server.wait_for_log("session 1 detached")
    assert "a restarted kernel starts a new session, and this one then expires" in line
    second = KernelHarness()
    try:
        second.ok(f"%load_ext jupyter_rsym\n%rconnect {server.address} --token {server.token}")
        server.wait_for_log("session 2 opened")
        server.wait_for_log("session 1 expired (nobody resumed it within 1 s)")
        assert second.ok("%remote 6 * 7").result["text/plain"] == "42"
    finally:
        second.shutdown()


def test_server_without_grace_says_so(kernel, link):
    _, proxy = link("--resume-grace", "0")
    drop(kernel, proxy)
    line = one_line_error(kernel.run("%remote 1"), "SessionLost")
    assert line.endswith(f"%rconnect {proxy.address} --as r to reconnect; this jupyter-rsym serve keeps no "
                         "session: it runs with --resume-grace 0")


def test_resume_over_ssh(kernel, sshd, start_rsym_server):
    """A dropped SSH link: the next use logs in again, opens a new tunnel and resumes."""
    server = start_rsym_server()
    address = f"ssh://{sshd.host_alias}/{server.port}"
    kernel.ok(f"%reload_ext jupyter_rsym\n%config RSym.ssh_options = {[str(o) for o in sshd.ssh_options]!r}")
    try:
        kernel.ok(f"%rconnect {address} --token {server.token}\n%remote globals().update(x=5)")
        assert sshd.kill_sessions() >= 1
        deadline = time.monotonic() + 10
        while kernel.ok("print(r.state)").stdout != "lost\n":
            assert time.monotonic() < deadline, "the kernel did not notice the drop"
            time.sleep(0.05)
        cell = kernel.ok("%remote x")
        assert cell.stdout.startswith(f"Resumed r on {address}: the link had dropped"), cell.summary()
        assert cell.result["text/plain"] == "5"
    finally:
        kernel.ok("%rdisconnect --all\n%config RSym.ssh_options = []")
