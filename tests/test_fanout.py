"""Issue 18 part 1: %%remote --on a,b,c runs a cell on several sessions at once."""

import re
import signal

import pytest
import rpyc

from . import hosts
from .hosts import connect_fresh
from .test_sessions import one_line_error
from .waits import wait_until

NAMES = ("a", "b", "c")


@pytest.fixture(scope="module")
def servers():
    with hosts.servers(len(NAMES)) as started:
        yield dict(zip(NAMES, started))


@pytest.fixture(scope="module")
def fan(kernel, servers):
    """The module kernel connected to three servers as a, b, c."""
    connect_fresh(kernel, {name: server.address for name, server in servers.items()})
    kernel.ok("%%remote --on all\nimport os\nhere = os.getpid()")
    for rank, name in enumerate(NAMES):
        kernel.ok(f"%%remote --on {name}\nrank = {rank}")
    return kernel


def by_host(stdout):
    """Split labelled fan-out output into {host: text}; lines follow the last label."""
    texts, host = {}, None
    for line in stdout.splitlines(True):
        match = re.match(r"\[(\w+)\] ", line)
        if match:
            host, line = match[1], line[match.end() :]
        assert host is not None, f"unlabelled first line: {stdout!r}"
        texts[host] = texts.get(host, "") + line
    return texts


def test_each_host_runs_the_cell_at_once_in_its_own_namespace(fan, servers):
    cell = fan.ok(
        "%%remote --on a,b,c -o span,pid\nimport time, os\n"
        "start = time.time(); time.sleep(0.5); span = (start, time.time())\npid = here"
    )
    spans = fan.ok("span").result["text/plain"]
    span = eval(spans)
    assert set(span) == set(NAMES)
    # every host was sleeping at the same moment: the cell ran concurrently
    assert max(s for s, _ in span.values()) < min(e for _, e in span.values())
    pids = eval(fan.ok("pid").result["text/plain"])
    assert pids == {name: server.process.pid for name, server in servers.items()}
    assert cell.stdout == "" and cell.result is None


def test_output_is_labelled_and_never_mixed_mid_line(fan):
    cell = fan.ok(
        "%%remote --on all\nimport sys, time\n"
        "for i in range(3):\n"
        "    print(f'{here} part', i, end=' ', flush=True)\n"
        "    time.sleep(0.15)\n"
        "    print('rest', i)\n"
        "print('no newline at the end', end='')\n"
    )
    texts = by_host(cell.stdout)
    fan.ok("%%remote --on all -o here=pids\npass")
    pids = eval(fan.ok("pids").result["text/plain"])
    assert set(texts) == set(NAMES)
    for name in NAMES:
        expected = "".join(f"{pids[name]} part {i} rest {i}\n" for i in range(3))
        assert texts[name] == expected + "no newline at the end\n"
    # the hosts interleaved, so labels mark each change of host
    assert cell.stdout.count("[") >= 4


def test_progress_lines_of_one_host_do_not_garble_another(fan):
    cell = fan.ok(
        "%%remote --on all\nimport sys, time\n"
        "for p in (10, 50, 100):\n"
        "    sys.stderr.write(f'\\rloading {p}%')\n    sys.stderr.flush()\n    time.sleep(0.1)\n"
        "sys.stderr.write('\\n')\nprint('ready')\n"
    )
    assert by_host(cell.stdout) == {name: "ready\n" for name in NAMES}
    assert by_host(cell.stderr) == {name: "loading 100%\n" for name in NAMES}
    assert "\r" not in cell.stderr


def test_value_shows_each_host_labelled_and_o_gathers_a_dict(fan):
    cell = fan.ok("%%remote --on a,b,c -o rank=ranks\nrank * 10")
    assert cell.result["text/plain"] == "[a] 0\n[b] 10\n[c] 20"
    assert fan.ok("ranks").result["text/plain"] == "{'a': 0, 'b': 1, 'c': 2}"
    # None values are left out; a cell without a value shows nothing
    assert fan.ok("%%remote --on a,b\nNone if rank else 'first'").result["text/plain"] == "[a] 'first'"
    assert fan.ok("%%remote --on a,b\nx = 1").result is None


def test_rich_values_keep_their_representation(fan):
    cell = fan.ok(
        "%%remote --on a,b\nclass Card:\n    def _repr_html_(self):\n        return f'<b>{rank}</b>'\n"
        "    def __repr__(self):\n        return f'Card({rank})'\nCard()"
    )
    assert cell.result["text/plain"] == "[a] Card(0)\n[b] Card(1)"
    assert cell.result["text/html"] == "<div><b>[a]</b><b>0</b></div><div><b>[b]</b><b>1</b></div>"


def test_i_hands_the_same_values_to_every_host(fan):
    fan.ok(  # one write: the hosts call at once, and threads' prints would interleave
        "seen = []\ndef tell(what):\n    seen.append(what)\n    print(f'told {what}\\n', end='')\nfactor = [1, 2]"
    )
    cell = fan.ok("%%remote --on all -i tell,factor\ntell(rank * sum(factor))")
    assert sorted(cell.stdout.splitlines()) == ["told 0", "told 3", "told 6"]
    assert fan.ok("sorted(seen)").result["text/plain"] == "[0, 3, 6]"


def test_failing_hosts_one_error_at_the_end_others_stay(fan):
    cell = fan.run(
        "%%remote --on all -o rank=got\nprint('working', rank)\n"
        "def check(r):\n    if r:\n        raise ValueError(f'bad rank {r}')\n    return 'fine'\ncheck(rank)"
    )
    assert cell.error["ename"] == "FanoutError"
    assert by_host(cell.stdout) == {n: f"working {i}\n" for i, n in enumerate(NAMES)}
    text = cell.error_text
    assert text.splitlines()[0] == "FanoutError: 2 of 3 sessions failed: b, c"
    for name, rank in (("b", 1), ("c", 2)):
        block = text.split(f"[{name}] ValueError: bad rank {rank}\n", 1)[1]
        assert "raise ValueError(f'bad rank {r}')" in block.split("\n[")[0]
    assert "rpyc" not in text and "jupyter_rsym" not in text and "agent" not in text
    assert cell.displays == [{"text/plain": "[a] 'fine'"}]  # the good host's value stays
    assert fan.ok("got").result["text/plain"] == "{'a': 0}"
    # the error keeps each failing host's exception: err.errors maps name to exception
    errors = fan.ok(
        "import sys\nerr = sys.last_value\nprint(sorted((k, type(v).__name__, str(v)) for k, v in err.errors.items()))"
    ).stdout
    assert errors == "[('b', 'ValueError', 'bad rank 1'), ('c', 'ValueError', 'bad rank 2')]\n"
    assert fan.ok("isinstance(err.errors['b'], ValueError)").result["text/plain"] == "True"
    assert fan.ok("%%remote --on all\nrank").result["text/plain"] == "[a] 0\n[b] 1\n[c] 2"


def test_callbacks_from_several_hosts_run_at_once(fan):
    """Every host calls a notebook function during one fan-out cell: the calls are
    served side by side (each waits in the notebook until all three arrived; one
    after another, the first would wait alone), and their output lands in the cell."""
    fan.ok(
        "import threading\nmeeting = threading.Barrier(3, timeout=10)\n"
        "def meet(rank):\n    print(f'arrived {rank}\\n', end='')  # one write: threads print at once\n"
        "    meeting.wait()\n    return rank * 10"
    )
    cell = fan.ok("%%remote --on all -i meet -o met\nmet = meet(rank)")
    assert fan.ok("met").result["text/plain"] == "{'a': 0, 'b': 10, 'c': 20}"
    # notebook prints: the callbacks' own output, in the cell (not labelled: no host printed it)
    assert sorted(cell.stdout.splitlines()) == ["arrived 0", "arrived 1", "arrived 2"]
    assert fan.ok("meeting.broken").result["text/plain"] == "False"


def test_missing_o_name_fails_that_host_only(fan):
    cell = fan.run("%%remote --on a,b -o only_a\nif rank == 0:\n    only_a = 'here'")
    assert cell.error["ename"] == "FanoutError"
    assert "[b] NameError: -o only_a: the remote namespace has no variable named 'only_a'" in cell.error_text
    assert fan.ok("only_a").result["text/plain"] == "{'a': 'here'}"


def test_one_reader_thread_serves_every_session(fan):
    """Threads do not grow with the hosts: one reader watches every connection
    (serving threads come and go with the work)."""
    names = "import threading\nsorted(t.name for t in threading.enumerate() if 'rsym' in t.name)"
    listed = eval(fan.ok(names).result["text/plain"])
    assert [name for name in listed if name != "jupyter-rsym serving"] == ["jupyter-rsym reader"]


def test_no_thread_per_host_per_cell_is_left_behind(fan):
    count = "import threading\nthreading.active_count()"
    local_before = fan.ok(count).result["text/plain"]
    remote_before = fan.ok("%%remote --on all\n" + count).result["text/plain"]
    for _ in range(5):
        fan.ok("%%remote --on all\nx = 1")
    # the remote job threads end just after they reported back
    wait_until(
        lambda: fan.ok("%%remote --on all\n" + count).result["text/plain"] == remote_before,
        what="the remote job threads to end",
        interval=0.1,
    )
    # and the notebook's: at most the reader's serving threads, which end when idle (reader.IDLE)
    wait_until(
        lambda: int(fan.ok(count).result["text/plain"]) <= int(local_before),
        what="the notebook's serving threads to end",
        interval=0.2,
    )


@pytest.fixture
def probes(servers):
    conns = {name: rpyc.classic.connect("127.0.0.1", s.port) for name, s in servers.items()}
    yield conns
    for conn in conns.values():
        conn.close()


def test_interrupt_stops_the_cell_on_every_host(fan, probes):
    cell = fan.submit(
        "%%remote --on all\nimport sys\nsys.rsym_spin = [0]\nprint('spinning')\ntry:\n"
        "    while True:\n        sys.rsym_spin[0] += 1\n"
        "except BaseException as stop:\n    sys.rsym_spun_until = repr(stop)\n    raise"
    )
    cell.wait_for(lambda c: c.stdout.count("spinning") == 3, 10, "every host spinning")
    fan.interrupt()
    cell.wait(10)
    assert cell.error_text == "KeyboardInterrupt: stopped on a, b, c"
    # each remote loop itself was stopped, by an exception raised in it
    for name, conn in probes.items():
        stopped_by = wait_until(
            lambda conn=conn: conn.modules.sys.__dict__.get("rsym_spun_until"), what=f"the loop on {name} to end"
        )
        assert stopped_by.startswith("KeyboardInterrupt") and conn.modules.sys.rsym_spin[0] > 0, stopped_by
    assert fan.ok("%%remote --on all\n'still working'").result["text/plain"].count("'still working'") == 3


def test_interrupt_while_hosts_sleep_in_c_frees_them(fan):
    cell = fan.submit("%%remote --on all\nimport time\nprint('sleeping')\ntime.sleep(5)")
    cell.wait_for(lambda c: c.stdout.count("sleeping") == 3, 10, "every host sleeping")
    fan.interrupt()
    cell.wait(10)
    assert cell.error["ename"] == "KeyboardInterrupt"
    # the sleeping remote threads do not hold the sessions
    assert fan.ok("%%remote --on all\n6 * 7").result["text/plain"] == "[a] 42\n[b] 42\n[c] 42"
    assert fan.ok("a.modules.os.getpid() > 0").result["text/plain"] == "True"


def test_bad_targets_are_one_line(fan):
    line = one_line_error(fan.run("%%remote --on a,nope\n1"), "UsageError")
    assert line == "UsageError: no session named 'nope'; %rconnections lists them"
    assert fan.ok("%%remote --on a,a\n1").result["text/plain"] == "1"  # one host: as before


def test_timeout_fails_the_slow_host_only(fan, servers):
    cell = fan.run("%%remote --on a,b --timeout 1\nimport time\nif rank:\n    time.sleep(5)\nrank")
    assert cell.error["ename"] == "FanoutError"
    assert f"[b] TimeoutError: no answer from {servers['b'].address} in 1 s" in cell.error_text
    assert cell.displays == [{"text/plain": "[a] 0"}]
    assert fan.ok("%%remote --on a,b\n'after'").result["text/plain"] == "[a] 'after'\n[b] 'after'"


def test_a_lost_host_fails_alone(kernel, start_server):
    one, two = start_server(), start_server()
    kernel.ok(f"%load_ext jupyter_rsym\n%rconnect {one.address} --as one\n%rconnect {two.address} --as two")
    try:
        cell = kernel.submit("%%remote --on one,two\nimport time, os\nprint('up')\ntime.sleep(2)\nos.getpid()")
        cell.wait_for(lambda c: c.stdout.count("up") == 2, 10, "both hosts running")
        two.stop()
        cell.wait(10)
        assert cell.error["ename"] == "FanoutError"
        lines = cell.error_text.splitlines()
        assert lines[0] == "FanoutError: 1 of 2 sessions failed: two"
        assert lines[2].startswith(f"[two] ConnectionError: lost the connection to {two.address}")
        assert cell.displays == [{"text/plain": f"[one] {one.process.pid}"}]
    finally:
        kernel.ok("%rdisconnect one\n%rdisconnect two")


def test_a_hung_host_fails_alone(kernel, start_server):
    one, two = start_server(), start_server()
    kernel.ok(
        f"%load_ext jupyter_rsym\n%rconnect {one.address} --as one --timeout 1\n"
        f"%rconnect {two.address} --as two --timeout 1"
    )
    try:
        kernel.ok("%%remote --on one,two\npass")
        two.signal(signal.SIGSTOP)
        try:
            cell = kernel.run("%%remote --on one,two\nimport time\ntime.sleep(1.5)\n'slept'", timeout=20)
        finally:
            two.signal(signal.SIGCONT)
        assert cell.error["ename"] == "FanoutError"
        assert cell.error_text.splitlines()[2] == f"[two] TimeoutError: no answer from {two.address} in 1 s"
        assert cell.displays == [{"text/plain": "[one] 'slept'"}]
        assert kernel.ok("%%remote --on one,two\n'back'").result["text/plain"] == "[one] 'back'\n[two] 'back'"
    finally:
        kernel.ok("%rdisconnect one\n%rdisconnect two")


def test_our_server_and_a_stock_one_in_one_fan_out(fan, rsym_server, servers):
    fan.ok(f"%rconnect {rsym_server.address} --token {rsym_server.token} --as ours")
    try:
        cell = fan.ok("%%remote --on a,ours -o pid\nimport os\npid = os.getpid()\nprint('hello')")
        assert by_host(cell.stdout) == {"a": "hello\n", "ours": "hello\n"}
        expected = {"a": servers["a"].process.pid, "ours": rsym_server.process.pid}
        assert fan.ok("pid").result["text/plain"] == repr(expected)
    finally:
        fan.ok("%rdisconnect ours")
