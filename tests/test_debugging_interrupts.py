"""Issue 24: ``%debug`` after an interrupted remote cell opens the frames
where the remote code stopped, never the notebook's own waiting code.

Real interrupts of a real kernel (``KernelHarness.interrupt``); the prompts
are ``input_request``s answered on the stdin channel; each test runs against
a stock ``rpyc_classic`` and against ``jupyter-rsym serve``.
"""

from tests.servers import RsymServer
from tests.test_debugging import INTERNAL, converse, dbg  # noqa: F401  (dbg: a fixture)
from tests.waits import Marker, wait_until

SPIN = "def spin(n):\n    total = 0\n    {touch}\n    while True:\n        total += n\nspin({n})"


def interrupted(kernel, cell_head, n=3, hosts=1):
    """Run a spinning remote cell, interrupt it once it spins on all ``hosts``; returns the cell."""
    spinning = Marker("spinning")
    # each host its own file (one server process: the thread's id tells them apart); binary: no
    # Python-level codec runs after the file exists, where the interrupt could land instead
    touch = f"open({str(spinning.path)!r} + str(__import__('threading').get_ident()), 'wb').close()"
    cell = kernel.submit(cell_head + SPIN.format(touch=touch, n=n))
    folder, prefix = spinning.path.parent, spinning.path.name
    wait_until(lambda: len(list(folder.glob(prefix + "*"))) == hosts, what=f"{hosts} host(s) spinning")
    kernel.interrupt()
    return cell.wait()


def test_debug_after_an_interrupted_cell_opens_where_the_remote_stopped(dbg):
    cell = interrupted(dbg, "%%remote\n")
    assert cell.error["ename"] == "KeyboardInterrupt"
    debug = dbg.submit("%debug", allow_stdin=True)
    prompts = converse(dbg, debug, "p n, total > 0", "w", "u", "p n", "q")
    assert {p["prompt"] for p in prompts} == {"(Pdb r) "}
    out = debug.stdout
    assert out.startswith("> <remote-cell-")  # the frame the interrupt stopped
    assert "(3, True)\n" in out and "-> spin(3)" in out
    assert not any(word in out for word in INTERNAL), out  # never jupyter_rsym's waiting code
    assert debug.error is None


def test_debug_after_an_interrupted_fanout_cell_opens_each_hosts_frames(dbg):
    server = dbg.server
    token = f" --token {server.token}" if isinstance(server, RsymServer) else ""
    dbg.ok(f"%rconnect {server.address}{token} --as i1")
    try:
        cell = interrupted(dbg, "%%remote --on r,i1\n", n=5, hosts=2)
        assert cell.error["ename"] == "KeyboardInterrupt"
        debug = dbg.submit("%debug", allow_stdin=True)
        prompts = converse(dbg, debug, "p n", "q", "p n", "q")
        assert sorted(p["prompt"] for p in prompts[::2]) == ["(Pdb i1) ", "(Pdb r) "]
        assert debug.stdout.count("\n5\n") == 2
        assert not any(word in debug.stdout for word in INTERNAL), debug.stdout
    finally:
        dbg.ok("%rdisconnect i1")


def test_debug_after_an_interrupt_that_stopped_no_remote_code_says_so(dbg):
    waiting = Marker("blocked in C")
    # an Event's wait blocks in C: the interrupt cannot stop it, the remote keeps no frames of it
    cell = dbg.submit(f"%%remote\nimport threading\n{waiting.touch}; threading.Event().wait(2)")
    waiting.wait()
    dbg.interrupt()
    assert cell.wait().error["ename"] == "KeyboardInterrupt"
    debug = dbg.submit("%debug", allow_stdin=True).wait()
    assert debug.stdout == "%debug: the interrupt stopped no remote code, so there are no remote frames to debug\n"
    assert debug.error is None and not debug.stderr


def test_cancelling_a_job_parked_at_a_breakpoint_ends_it(dbg):
    job = dbg.submit("%%remote --bg\ncancel_here = 1\nbreakpoint()\nprint('not reached')").wait()
    job.wait_for(lambda c: "%rdebug" in c.stdout, what="the parked line")
    number = int(job.stdout.split("%rdebug ")[1].split()[0])
    wait_until(lambda: f"{number}  r" in dbg.ok("%rdebug").stdout, what="the parked breakpoint listed")
    dbg.ok(f"Out[{job.reply['content']['execution_count']}].cancel()")
    # the cancel reaches the parked thread: it ends as after q, not parked again
    wait_until(lambda: "no parked breakpoints" in dbg.ok("%rdebug").stdout, what="the parked thread to end")
    assert "--KeyboardInterrupt--" not in job.stdout
    assert not any(line.endswith("not reached") for line in job.stdout.splitlines())
    assert dbg.ok("%remote 3 * 3").result["text/plain"] == "9"
