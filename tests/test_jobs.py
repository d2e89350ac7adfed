"""Issue 18 part 2: %%remote --bg returns a job handle; everything lands in its cell.

Job numbers come from the handles: the tests run in any order.
"""

import re

import pytest
import rpyc

from . import hosts
from .hosts import connect_fresh
from .test_sessions import one_line_error
from .waits import Marker, wait_until


@pytest.fixture(scope="module")
def servers():
    with hosts.servers(2) as started:
        yield started


@pytest.fixture(scope="module")
def bg(kernel, servers):
    connect_fresh(kernel, {"a": servers[0].address, "b": servers[1].address})
    kernel.ok("def say(what):\n    print('said', what)")
    return kernel


def job_state(kernel, expression="_"):
    return kernel.ok(f"print({expression}.state)").stdout.strip()


def test_returns_at_once_and_output_keeps_landing_in_its_cell(bg):
    job = bg.ok(
        "%%remote --bg --on a -i say\nimport time\nprint('started')\n"
        "time.sleep(1)\nsay('from the job')\nprint('finished')\n'the value'"
    )
    shown = job.displays[0]["text/plain"]
    assert re.fullmatch(r"<RemoteJob \d+ on a: running, cell %d>" % job.reply["content"]["execution_count"], shown)
    assert len(job.displays) == 1
    bg.ok("j1 = _")
    # the session is not held by the job: another cell uses it meanwhile
    other = bg.ok("%remote 'meanwhile'")
    assert other.result["text/plain"] == "'meanwhile'" and other.stdout == ""
    local = bg.ok("import time\ntime.sleep(1.5)\nprint('local cell')")  # the job prints meanwhile
    assert local.stdout == "local cell\n"
    job.wait_for(lambda c: "finished" in c.stdout, 10, "the job's end")
    assert job.stdout == "started\nsaid from the job\nfinished\n"
    job.wait_for(lambda c: len(c.displays) == 2, 10, "the job's value")
    assert job.displays[1] == {"text/plain": "'the value'"}
    updates = job.of_type("update_display_data")
    assert updates and "done" in updates[-1]["content"]["data"]["text/plain"]
    assert other.stdout == "" and other.displays == [] and local.displays == []
    assert bg.ok("j1.result(5)").result["text/plain"] == "'the value'"
    assert bg.ok("print(j1.done(), j1.state)").stdout == "True done\n"


def test_result_timeout_and_o_names_arrive_when_it_finishes(bg):
    go = Marker("go")
    bg.ok(f"%%remote --bg --on a,b -o rank=ranks\nimport os\n{go.awaited}\nrank = os.getpid()")
    bg.ok("j2 = _")
    assert bg.ok("print(j2.done(), 'ranks' in globals())").stdout == "False False\n"
    waited = bg.run("j2.result(timeout=0.1)")
    assert waited.error["ename"] == "TimeoutError"
    assert "still running after 0.1 s" in waited.error_text
    go.set()
    assert bg.ok("j2.result(10)").result is None  # the cell has no value
    assert bg.ok("sorted(ranks)").result["text/plain"] == "['a', 'b']"


def test_errors_land_in_the_job_cell_and_result_raises(bg):
    job = bg.ok("%%remote --bg --on a\nimport time\ntime.sleep(0.3)\nprint('about to fail')\n1 / 0")
    bg.ok("j3 = _")
    job.wait_for(lambda c: c.error is not None, 10, "the job's error")
    assert job.stdout == "about to fail\n"
    assert job.error["ename"] == "ZeroDivisionError"
    assert "1 / 0" in job.error_text and "rpyc" not in job.error_text
    cell = bg.run("j3.result()")
    assert cell.error["ename"] == "ZeroDivisionError"
    assert job_state(bg, "j3") == "failed"


def test_fan_out_job_reports_failing_hosts_in_its_cell(bg):
    b_pid = int(bg.ok("print(b.modules.os.getpid())").stdout)
    job = bg.ok(
        f"%%remote --bg --on a,b\nimport os, time\ntime.sleep(0.3)\nif os.getpid() == {b_pid}:\n    raise KeyError('no')\n'ok'"
    )
    job.wait_for(lambda c: c.error is not None, 10, "the job's error")
    assert job.error["ename"] == "FanoutError"
    assert job.error_text.splitlines()[:3] == ["FanoutError: 1 of 2 sessions failed: b", "", "[b] KeyError: 'no'"]
    assert {"text/plain": "[a] 'ok'"} in job.displays


def test_cancel_stops_the_remote_work(bg, servers):
    probe = rpyc.classic.connect("127.0.0.1", servers[0].port)
    try:
        job = bg.ok(
            "%%remote --bg --on a\nimport sys\nsys.rsym_job = [0]\ntry:\n    while True:\n"
            "        sys.rsym_job[0] += 1\nexcept BaseException as stop:\n"
            "    sys.rsym_job_stopped_by = repr(stop)\n    raise"
        )
        bg.ok("j4 = _")
        wait_until(lambda: probe.modules.sys.__dict__.get("rsym_job"), what="the job to start")
        number = int(bg.ok("print(j4.number)").stdout)
        assert bg.ok("j4.cancel()").result["text/plain"] == "True"
        # the remote loop itself was stopped, by an exception raised in it
        stopped_by = wait_until(lambda: probe.modules.sys.__dict__.get("rsym_job_stopped_by"), what="the loop's end")
        assert stopped_by.startswith("KeyboardInterrupt") and probe.modules.sys.rsym_job[0] > 0, stopped_by
        assert job_state(bg, "j4") == "cancelled"
        cell = bg.run("j4.result()")
        assert cell.error_text == f"JobCancelled: job {number} was cancelled"
        job.wait_for(lambda c: f"job {number} cancelled" in c.stdout, 5, "the cancel note")
        assert bg.ok("j4.cancel()").result["text/plain"] == "False"
    finally:
        probe.close()


def test_rjobs_lists_jobs_and_returns_handles(bg):
    bg.ok("%%remote --bg --on a,b\n6 * 7")
    done = int(bg.ok("listed_done = _\nprint(listed_done.number)").stdout)
    bg.ok("listed_done.result(10)")
    bg.ok("%%remote --bg --on a\nimport time\ntime.sleep(30)")
    cancelled = int(bg.ok("listed_cancelled = _\nlisted_cancelled.cancel()\nprint(listed_cancelled.number)").stdout)
    listing = bg.ok("%rjobs").stdout.splitlines()
    assert listing[0].split() == ["job", "sessions", "state", "time", "cell"]
    rows = {line.split()[0]: line for line in listing[1:]}
    assert " done " in rows[str(done)] and "a, b" in rows[str(done)] and " cancelled " in rows[str(cancelled)]
    shown = bg.ok(f"%rjobs {done}").displays[0]["text/plain"]
    assert shown.startswith(f"<RemoteJob {done} on a, b: done"), shown
    line = one_line_error(bg.run("%rjobs 99"), "UsageError")
    assert line == "UsageError: no job 99; %rjobs lists them"
    line = one_line_error(bg.run("%%remote --bg --timeout 5\n1"), "UsageError")
    assert line.startswith("UsageError: --timeout does not apply to --bg cells")
    assert len(bg.ok("%rjobs").stdout.splitlines()) == len(listing)  # nothing was started


def test_job_on_a_lost_session_fails_in_its_cell(bg, start_server):
    kernel = bg
    server = start_server()
    kernel.ok(f"%rconnect {server.address} --as doomed")
    job = kernel.ok("%%remote --bg --on doomed\nimport time\nprint('working')\ntime.sleep(30)")
    job.wait_for(lambda c: "working" in c.stdout, 10, "the job running")
    server.stop()
    job.wait_for(lambda c: c.error is not None, 10, "the job's error")
    assert job.error["ename"] == "SessionLost"
    assert job.error_text.startswith(f"ConnectionError: lost the connection to {server.address}")
    kernel.ok("%rdisconnect doomed")  # the module's other tests use the newest session
