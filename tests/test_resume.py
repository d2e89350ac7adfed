"""Issue 13: a dropped link does not lose the remote session, and missed output is replayed.

A real kernel talks to a real ``jupyter-rsym serve`` through a loopback
proxy (``tests/netproxy.py``) that the tests cut: every connection dropped
at once, both sides, as a broken network would.
"""

import pytest

from .test_faults import interrupted, remote_sleep
from .test_sessions import one_line_error
from .waits import Marker, wait_until


def ticker(down, printed, n=40, on="r"):
    """A remote thread (on session ``on``) prints ticks 0-3, waits until the test cut
    the link (``down.set()``), prints the rest while it is down, then reaches ``printed``."""
    return (
        f"%%remote --on {on}\nimport threading\n"
        "def tick():\n"
        "    for i in range(4):\n        print('tick', i)\n"
        f"    {down.awaited}\n"
        f"    for i in range(4, {n}):\n        print('tick', i)\n"
        f"    {printed.touch}\n"
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


def session_id(server, nth=1):
    """The id of the ``nth`` session ``server`` opened: ids are random, its log names them."""

    def ids():
        return [line.split("session ", 1)[1].split()[0] for line in list(server.log) if " opened by " in line]

    wait_until(lambda: len(ids()) >= nth, what=f"session {nth} in the server's log")
    return ids()[nth - 1]


def drop(kernel, proxy):
    """Cut every connection through ``proxy``; wait (bounded) until the kernel noticed."""
    assert proxy.cut() >= 2  # the session's connection and its side connection
    noticed(kernel)


def noticed(kernel):
    wait_until(lambda: kernel.ok("print(r.state)").stdout == "lost\n", what="the kernel to notice the drop")


def resumed_line(cell, proxy):
    lines = cell.stdout.splitlines()
    assert lines and lines[0].startswith(f"Resumed r on {proxy.address}: the link had dropped"), cell.summary()
    return lines[0]


def test_namespace_and_thread_output_survive_a_drop(kernel, link):
    server, proxy = link()
    kernel.ok("%%remote\nx = 41")
    down, printed = Marker("link down"), Marker("ticks printed")
    ticks = kernel.ok(ticker(down, printed))
    ticks.wait_for(lambda c: "tick 3\n" in c.stdout, 10, "the first ticks")
    drop(kernel, proxy)
    down.set()
    printed.wait()  # ticks 4-39 were printed while the link was down
    cell = kernel.ok("%%remote\nx + 1")
    resumed_line(cell, proxy)
    assert cell.stdout.count("\n") == 1 and cell.result["text/plain"] == "42"
    ticks.wait_for(lambda c: "tick 39\n" in c.stdout, 10, "every tick")
    assert ticks.stdout == "".join(f"tick {i}\n" for i in range(40))
    assert "tick" not in cell.stdout
    line = server.wait_for_log("detached")
    assert "a restarted kernel starts a new session" in line
    server.wait_for_log(f"session {session_id(server)} resumed")


def test_waiting_cell_fails_with_one_line_and_gets_its_later_output(kernel, link):
    _, proxy = link()
    down = Marker("link down")
    cell = kernel.submit(
        f"%%remote\nfor i in range(30):\n    print('step', i, flush=True)\n"
        f"    if i == 2:\n        {down.awaited}\n'done'"
    )
    cell.wait_for(lambda c: "step 2\n" in c.stdout, 10, "the first steps")
    proxy.cut()
    down.set()  # steps 3-29 are printed while the link is down or after
    cell.wait(10)
    line = one_line_error(cell, "LinkDropped")
    assert line == (
        f"ConnectionError: the link to {proxy.address} dropped while this cell waited; the "
        "remote work goes on and its output will land here when r resumes (its next use resumes it)"
    )
    resumed_line(kernel.ok("%remote 1"), proxy)
    cell.wait_for(lambda c: "step 29\n" in c.stdout, 10, "every step")
    assert cell.stdout == "".join(f"step {i}\n" for i in range(30))


def test_stable_functions_keep_working_from_remote_threads(kernel, link):
    _, proxy = link()
    kernel.ok("def beat(i):\n    print('beat', i)\n    return i")
    down, failed, resumed = Marker("link down"), Marker("calls failed"), Marker("resumed")
    starter = kernel.ok(
        "%%remote -i beat\nimport threading\nfailures = []\n"
        "def pulse():\n"
        "    for i in range(40):\n"
        f"        if i == 4:\n            {down.awaited}\n"
        f"        if i == 6:\n            {failed.touch}\n            {resumed.awaited}\n"
        "        try:\n"
        "            beat(i)\n"
        "        except ConnectionError as exc:\n"
        "            failures.append((i, str(exc)))\n"
        "threading.Thread(target=pulse).start()"
    )
    starter.wait_for(lambda c: "beat 3\n" in c.stdout, 10, "the first beats")
    drop(kernel, proxy)
    down.set()
    failed.wait()  # beats 4 and 5 were called while the link was down
    resumed_line(kernel.ok("%remote 1"), proxy)
    resumed.set()
    starter.wait_for(lambda c: "beat 39\n" in c.stdout, 10, "beats after the resume")
    beats = [int(line.split()[1]) for line in starter.stdout.splitlines()]
    assert beats == [0, 1, 2, 3, *range(6, 40)], "each beat once, in order; none while down"
    failures = kernel.ok("%remote failures").result["text/plain"]
    assert [int(i) for i in __import__("re").findall(r"\((\d+), ", failures)] == [4, 5], failures
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
    assert cell.stdout == (
        "this notebook object belonged to a connection that dropped; only functions "
        "handed over with -i or %rpush --ref are re-bound when the session resumes\n"
    )


def test_interrupt_after_a_resume(kernel, link):
    _, proxy = link()
    drop(kernel, proxy)
    resumed_line(kernel.ok("%remote 1"), proxy)
    asleep = Marker("asleep")
    interrupted(kernel, kernel.submit(remote_sleep(asleep)), asleep)
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
    assert f"session {session_id(server)} expired (nobody resumed it within 1 s)" in line
    line = one_line_error(kernel.run("%remote x"), "SessionExpired")
    assert line == (
        f"ConnectionError: the session r on {proxy.address} is gone: it expired (nobody resumed "
        f"it within 1 s); %rconnect {proxy.address} --as r starts a new one"
    )
    kernel.ok(f"%rconnect {proxy.address} --token {server.token}")
    assert kernel.ok("%remote 'x' in globals()").result["text/plain"] == "False"


def test_refused_connection_fails_at_once_then_resumes(kernel, link):
    _, proxy = link()
    kernel.ok("%config RSym.resume_window = 60")
    proxy.stop_listening()
    drop(kernel, proxy)
    # no retries: they would take the resume window (a minute); 20 s is the bound a retry breaks
    line = one_line_error(kernel.run("%remote 1", timeout=20), "SessionLost")
    kernel.ok("%config RSym.resume_window = 4.0")
    assert line.startswith(
        f"ConnectionError: lost the connection to {proxy.address} and could not resume r "
        f"(cannot connect to {proxy.address}: Connection refused)"
    )
    proxy.listen_again()
    resumed_line(kernel.ok("%remote 1"), proxy)


def test_output_beyond_the_buffer_leaves_one_marker_line(kernel, link):
    _, proxy = link("--resume-buffer", "2000")
    down, printed = Marker("link down"), Marker("spam printed")
    spammer = kernel.ok(
        "%%remote\nimport threading\n"
        "def spam():\n"
        f"    {down.awaited}\n"
        "    for i in range(100):\n"
        "        print('line %03d ' % i + 'x' * 40)\n"
        f"    {printed.touch}\n"
        "threading.Thread(target=spam).start()"
    )
    drop(kernel, proxy)
    down.set()
    printed.wait()
    assert "line" not in spammer.stdout  # every line was printed while the link was down
    before = int(kernel.ok("print(r.output_batches)").stdout)  # reading it uses no link
    resumed_line(kernel.ok("%remote 1"), proxy)
    # the server re-sent what it kept: batches came in with the resume, none before it
    assert int(kernel.ok("print(r.output_batches)").stdout) > before
    spammer.wait_for(lambda c: "line 099" in c.stdout, 10, "the last line")
    kept = spammer.stdout.splitlines()
    numbers = [int(line.split()[1]) for line in kept]
    assert numbers == list(range(numbers[0], 100)) and 0 < numbers[0] < 80, numbers
    assert len(spammer.stdout) <= 2000
    # the drop, said while idle (when the kernel noticed it: before or after the replay), and the marker
    lines = spammer.stderr.splitlines()
    idle = [line for line in lines if line.startswith(f"r: the link to {proxy.address} dropped while idle")]
    marker = [line for line in lines if line not in idle]
    assert len(idle) == 1, spammer.stderr
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
        assert line.endswith(
            f"%rconnect {proxy.address} --as r to reconnect; a stock rpyc_classic keeps "
            "no session: resuming needs jupyter-rsym serve"
        )
    finally:
        kernel.ok("%rdisconnect --all")


def test_closing_ends_the_session_and_idle_server_exits(kernel, link):
    server, proxy = link("--exit-when-idle", "--resume-grace", "1")
    kernel.ok("%rdisconnect r")
    server.wait_for_log(f"session {session_id(server)} ended: it was closed by the notebook")
    assert server.process.wait(10) == 0
    server.wait_for_log("no connection and no session left: exiting (--exit-when-idle)")


def test_idle_server_exits_when_the_last_session_expires(kernel, link):
    server, proxy = link("--exit-when-idle", "--resume-grace", "1")
    drop(kernel, proxy)
    assert server.process.wait(10) == 0
    server.wait_for_log(f"session {session_id(server)} expired")
    one_line_error(kernel.run("%remote 1"), "SessionLost")


def test_a_batch_delivered_but_not_acknowledged_shows_once(kernel, link):
    _, proxy = link()
    kernel.ok("%%remote\nimport threading, time\ndef once():\n    time.sleep(0.3)\n    print('only once')")
    proxy.delay = 1.0  # one way: the acknowledgment is still on its way when we cut
    cell = kernel.ok("%%remote\nthreading.Thread(target=once).start()")
    cell.wait_for(lambda c: "only once" in c.stdout, 10, "the line")
    proxy.cut()
    proxy.delay = 0.0
    batches = int(kernel.ok("print(r.output_batches)").stdout)  # batches received (the cut stops more)
    # the resume tells the server the last batch the notebook has: the server sends
    # only later ones (it replays them before the resume returns), not this one again
    resumed_line(kernel.ok("%remote 1"), proxy)
    assert int(kernel.ok("print(r.output_batches)").stdout) == batches
    assert cell.stdout == "only once\n"


def test_the_notebook_writes_a_batch_number_once():
    """A batch replayed while its first copy is still being written (the race the
    resume cannot rule out) is skipped by its number."""
    from jupyter_rsym.link.frontend import OutputSink

    class Kept(OutputSink):
        def __init__(self):
            super().__init__()
            self.written = []

        def write(self, batch):
            self.written.extend(batch)

    sink = Kept()
    for seq in (1, 2, 1, 2, 3):
        sink.emit([(None, "stdout", f"batch {seq}\n")], seq)
    sink.emit([(None, "stdout", "unnumbered\n")])
    assert [text for _, _, text in sink.written] == ["batch 1\n", "batch 2\n", "batch 3\n", "unnumbered\n"]
    assert (sink.batches, sink.received) == (6, 3)


def test_a_new_kernel_gets_a_new_session_and_the_old_one_expires(start_rsym_server):
    from .harness import KernelHarness

    server = start_rsym_server("--resume-grace", "1")
    first = KernelHarness()
    try:
        first.ok(f"%load_ext jupyter_rsym\n%rconnect {server.address} --token {server.token}\n%remote 1")
        first.km.shutdown_kernel(now=True)  # a crash or a forced restart: nobody says goodbye
    finally:
        first.shutdown()
    line = server.wait_for_log(f"session {session_id(server)} detached")
    assert "a restarted kernel starts a new session, and this one then expires" in line
    second = KernelHarness()
    try:
        second.ok(f"%load_ext jupyter_rsym\n%rconnect {server.address} --token {server.token}")
        assert session_id(server, 2) != session_id(server, 1)
        server.wait_for_log(f"session {session_id(server)} expired (nobody resumed it within 1 s)")
        assert second.ok("%remote 6 * 7").result["text/plain"] == "42"
    finally:
        second.shutdown()


def test_server_without_grace_says_so(kernel, link):
    _, proxy = link("--resume-grace", "0")
    drop(kernel, proxy)
    line = one_line_error(kernel.run("%remote 1"), "SessionLost")
    assert line.endswith(
        f"%rconnect {proxy.address} --as r to reconnect; this jupyter-rsym serve keeps no "
        "session: it runs with --resume-grace 0"
    )


def test_resume_over_ssh(kernel, sshd, start_rsym_server):
    """A dropped SSH link: the next use logs in again, opens a new tunnel and resumes."""
    server = start_rsym_server()
    address = f"ssh://{sshd.host_alias}/{server.port}"
    kernel.ok(f"%reload_ext jupyter_rsym\n%config RSym.ssh_options = {[str(o) for o in sshd.ssh_options]!r}")
    try:
        kernel.ok(f"%rconnect {address} --token {server.token}\n%remote globals().update(x=5)")
        assert sshd.kill_sessions() >= 1
        noticed(kernel)
        cell = kernel.ok("%remote x")
        assert cell.stdout.startswith(f"Resumed r on {address}: the link had dropped"), cell.summary()
        assert cell.result["text/plain"] == "5"
    finally:
        kernel.ok("%rdisconnect --all\n%config RSym.ssh_options = []")


@pytest.mark.parametrize("hand", ["%rpush shout --ref", "r.push(shout=shout, ref=True)"])
def test_functions_handed_by_reference_are_rebound_on_resume(kernel, link, hand):
    """README: functions handed with ``%rpush --ref`` or ``r.push(..., ref=True)``,
    as with ``-i``, keep working from remote threads after a resume; their
    output lands in the cell whose work called them (a thread it started)."""
    _, proxy = link()
    kernel.ok("def shout(word):\n    print('shout', word)\n    return word.upper()")
    handing = kernel.ok(hand)
    drop(kernel, proxy)
    resumed_line(kernel.ok("%remote 1"), proxy)
    assert kernel.ok("%remote shout('in a cell')").result["text/plain"] == "'IN A CELL'"
    called = Marker("called")
    starter = kernel.ok(
        "%%remote\nimport threading\nanswers = []\n"
        f"def call():\n    answers.append(shout('from a thread'))\n    {called.touch}\n"
        "threading.Thread(target=call).start()"
    )
    called.wait()
    assert kernel.ok("%remote answers").result["text/plain"] == "['FROM A THREAD']"
    starter.wait_for(lambda c: "shout from a thread" in c.stdout, 10, "the thread's call in the cell that started it")
    assert starter.stdout == "shout from a thread\n" and "shout" not in handing.stdout


def test_a_session_closed_while_its_link_is_down_expires_later(kernel, link):
    """README: ``%rdisconnect`` of a session whose link is down cannot tell the
    server; the server ends it when its grace period ends."""
    server, proxy = link("--resume-grace", "1")
    kernel.ok("%%remote\nx = 1")
    proxy.stop_listening()  # the close cannot reach the server either
    drop(kernel, proxy)
    assert kernel.ok("%rdisconnect r").stdout.startswith("Disconnected r")
    session = session_id(server)
    line = server.wait_for_log(f"session {session} expired")
    assert f"session {session} expired (nobody resumed it within 1 s)" in line
    assert "closed by the notebook" not in "".join(server.log)
    proxy.listen_again()


def test_a_collected_proxy_is_no_use_of_the_session(kernel, link):
    """The idle-drop line goes to the last cell that used the session, not to a
    cell where the garbage collector sent a proxy's deletion (that made
    ``test_output_beyond_the_buffer_leaves_one_marker_line`` flaky)."""
    _, proxy = link()
    using = kernel.ok("held = r.builtins.list([1, 2])")
    collecting = kernel.ok("del held\nimport gc\ngc.collect()")  # rpyc sends the deletion from this cell
    proxy.cut()
    wait_until(lambda: "dropped while idle" in using.stderr, what="the idle-drop line in the cell that used r")
    assert "dropped while idle" not in collecting.stderr
