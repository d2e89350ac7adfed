"""Issue 24, part 4: breakpoints in fan-out cells.

One host at a time has the prompt (the kernel has one stdin); a host that
reaches ``breakpoint()`` meanwhile parks in the remote: it holds nothing,
``%rdebug`` lists it, and when the cell is interrupted it stays parked for
``%rdebug N`` after the cell.  Prompts are real ``input_request``s answered
on the stdin channel; each test runs against a stock ``rpyc_classic`` and
against ``jupyter-rsym serve``.
"""

import itertools
import queue

import pytest

from jupyter_rsym.remote.bundle import AGENT_NAME
from tests.servers import RsymServer
from tests.test_debugging import converse, dbg  # noqa: F401  (dbg: a fixture)
from tests.waits import wait_until

_names = itertools.count(1)


@pytest.fixture
def two_hosts(dbg):
    """Two more sessions on the fixture's server; disconnected at the end."""
    server = dbg.server
    token = f" --token {server.token}" if isinstance(server, RsymServer) else ""
    n = next(_names)
    names = [f"p{n}a", f"p{n}b"]
    for name in names:
        dbg.ok(f"%rconnect {server.address}{token} --as {name}")
    yield names
    # a test that failed at a prompt leaves its cell running: end it (an idle kernel ignores this)
    dbg.interrupt()
    while True:
        try:
            dbg.kc.get_stdin_msg(timeout=0.2)  # its unanswered prompts
        except queue.Empty:
            break
    for name in names:
        dbg.run(f"%rdisconnect {name}")  # (one a test disconnected says so)


def both_at_a_breakpoint(kernel, names, after):
    """Start a fan-out cell whose hosts reach ``breakpoint()`` together; wait
    until one has the prompt and the other parked.  Returns (cell, host at
    the prompt, parked host, its number)."""
    barrier = f"bar_{names[0]}"
    cell = kernel.submit(
        f"%%remote --on {','.join(names)}\nimport sys, threading\n"
        f"sys.__dict__.setdefault({barrier!r}, threading.Barrier(2)).wait()\n"
        f"fan_step = 1\nbreakpoint()\nfan_step = 2\n{after}",
        allow_stdin=True,
    )
    prompt = kernel.input_request()
    assert prompt["parent"] == cell.msg_id
    owner = prompt["prompt"][len("(Pdb ") : -len(") ")]
    parked = next(name for name in names if name != owner)
    cell.wait_for(lambda c: "%rdebug" in c.stdout, what="the other host parked")
    line = next(text for text in cell.stdout.splitlines() if "%rdebug" in text)
    assert line.startswith(f"breakpoint in a cell on {parked} (<remote-cell-")
    assert line.endswith(f"attaches (or it prompts here after {owner})")
    return cell, owner, parked, int(line.split("%rdebug ")[1].split()[0])


def listed(kernel):
    """``%rdebug``'s rows, as lists of words (the header left out)."""
    return [row.split() for row in kernel.ok("%rdebug").stdout.splitlines()[1:]]


def test_a_parked_fanout_host_is_listed_and_attached_after_an_interrupt(dbg, two_hosts):
    cell, owner, parked, number = both_at_a_breakpoint(dbg, two_hosts, "print('fan went on', fan_step)")
    dbg.interrupt()  # at the owner's prompt: its prompt ends, the parked host stays parked
    cell.wait()
    assert cell.error["ename"] == "KeyboardInterrupt"
    assert f"parked at a breakpoint on {parked}" in cell.error_text
    rows = wait_until(lambda: listed(dbg), what="the parked host listed")
    assert len(rows) == 1 and rows[0][:4] == [str(number), parked, "a", "cell"]
    assert rows[0][4].startswith("<remote-cell-") and rows[0][4].endswith(":5") and rows[0][-1] == "s"
    # the parked thread holds nothing: its session keeps working; the owner's prompt ended there
    assert dbg.ok(f"%remote --on {parked} 6 * 7").result["text/plain"] == "42"
    assert dbg.ok(f"%remote --on {owner} fan_step").result["text/plain"] == "1"
    attach = dbg.submit(f"%rdebug {number}", allow_stdin=True)
    prompts = converse(dbg, attach, "p fan_step", "c")
    assert [p["prompt"] for p in prompts] == [f"(Pdb {parked}) "] * 2
    assert all(p["parent"] == attach.msg_id for p in prompts)
    assert "-> fan_step = 2" in attach.stdout and "\n1\n" in attach.stdout
    cell.wait_for(lambda c: "fan went on 2" in c.stdout, what="the parked host to go on")
    assert dbg.ok(f"%remote --on {parked} fan_step").result["text/plain"] == "2"
    assert "no parked breakpoints" in dbg.ok("%rdebug").stdout


def test_quit_at_an_attached_fanout_host_raises_bdbquit_there(dbg, two_hosts):
    cell, _, parked, number = both_at_a_breakpoint(dbg, two_hosts, "print('not reached')")
    dbg.interrupt()
    cell.wait()
    wait_until(lambda: listed(dbg), what="the parked host listed")
    attach = dbg.submit(f"%rdebug {number}", allow_stdin=True)
    converse(dbg, attach, "q")
    assert attach.error is None
    assert dbg.ok(f"%remote --on {parked} fan_step").result["text/plain"] == "1"
    assert "no parked breakpoints" in dbg.ok("%rdebug").stdout
    assert not any(line.endswith("not reached") for line in cell.stdout.splitlines())


def test_rdisconnect_lets_a_parked_fanout_host_go_on(dbg, two_hosts):
    flag = f"went_on_{two_hosts[0]}"
    cell, owner, parked, _ = both_at_a_breakpoint(dbg, two_hosts, f"setattr(sys, {flag!r}, fan_step)")
    dbg.interrupt()
    cell.wait()
    wait_until(lambda: listed(dbg), what="the parked host listed")
    dbg.ok(f"%rdisconnect {parked}")
    watched = f"%remote --on {owner} getattr(__import__('sys'), {flag!r}, None)"
    # each look is a round trip: the released thread sets it as after c
    wait_until(lambda: dbg.ok(watched).result["text/plain"] == "2", what="the released host to go on")
    assert "no parked breakpoints" in dbg.ok("%rdebug").stdout


def test_the_parked_host_prompts_in_the_cell_once_the_first_is_done(dbg, two_hosts):
    cell, owner, parked, number = both_at_a_breakpoint(dbg, two_hosts, "fan_step")
    # meanwhile it is parked in the remote (holding nothing), not waiting in a call to the notebook
    parked_there = f"__import__('sys').modules[{AGENT_NAME!r}].breakpoints._parked"
    # (its park line comes first: a bounded wait there, as Marker.awaited)
    dbg.kc.input(f"p any({parked_there} or __import__('time').sleep(0.01) for _ in range(1000))")
    dbg.answer("c")
    second = dbg.answer("p fan_step")
    assert second["prompt"] == f"(Pdb {parked}) " and second["parent"] == cell.msg_id
    dbg.answer("c")
    cell.wait().assert_ok()
    printed = [line.rsplit("] ", 1)[-1] for line in cell.stdout.splitlines()]  # host labels left out
    assert printed.count("True") == 1 and printed.count("1") == 1  # p fan_step at the parked host's prompt
    for name in two_hosts:
        assert dbg.ok(f"%remote --on {name} fan_step").result["text/plain"] == "2"
    assert "no parked breakpoints" in dbg.ok("%rdebug").stdout


def test_without_parking_a_second_fanout_host_fails_with_eof(dbg, two_hosts):
    dbg.ok("%config RSym.park_breakpoints = False")
    try:
        barrier = f"bar_{two_hosts[0]}"
        cell = dbg.submit(
            f"%%remote --on {','.join(two_hosts)}\nimport sys, threading\n"
            f"sys.__dict__.setdefault({barrier!r}, threading.Barrier(2)).wait()\n"
            "breakpoint()\nprint('went on')",
            allow_stdin=True,
        )
        prompt = dbg.input_request()
        owner = prompt["prompt"][len("(Pdb ") : -len(") ")]
        other = next(name for name in two_hosts if name != owner)
        dbg.kc.input("c")  # the owner goes on; the other never waits for a prompt of its own
        cell.wait()
        assert cell.error["ename"] == "FanoutError"
        assert f"[{other}] EOFError" in cell.error_text and f"{owner} has the prompt" in cell.error_text
        assert "went on" in cell.stdout and "no parked breakpoints" in dbg.ok("%rdebug").stdout
    finally:
        dbg.ok("%config RSym.park_breakpoints = True")
