"""Issue 24: debugging remote code in the cell.

Every prompt is a real ``input_request`` on the kernel's stdin channel,
answered by the test; each test runs against a stock ``rpyc_classic`` and
against ``jupyter-rsym serve``.
"""

import pytest

from tests.harness import KernelHarness
from tests.servers import ClassicServer, RsymServer
from tests.waits import wait_until

INTERNAL = ("rpyc", "jupyter_rsym", "agent", "run_awaiting", "serve_request")


@pytest.fixture(scope="module", params=["classic", "rsym"])
def dbg(request):
    """A kernel with ``r`` connected to a stock classic server, or to ours."""
    server = (ClassicServer() if request.param == "classic" else RsymServer()).start()
    kernel = KernelHarness()
    try:
        kernel.ok("%load_ext jupyter_rsym")
        token = f" --token {server.token}" if request.param == "rsym" else ""
        kernel.ok(f"%rconnect {server.address}{token}")
        kernel.server = server
        yield kernel
    finally:
        kernel.shutdown()
        server.stop()


def converse(kernel, cell, *commands):
    """Answer the cell's pdb prompts with ``commands``; returns the prompts."""
    prompts = []
    for command in commands:
        prompts.append(kernel.answer(command))
    cell.wait()
    return prompts


def test_debug_after_a_remote_cell_opens_the_remote_frames(dbg):
    failed = dbg.run("%%remote\ndef pm_f(x):\n    y = x * 2\n    return 1 / (x - 3)\npm_f(3)")
    assert failed.error["ename"] == "ZeroDivisionError"
    cell = dbg.submit("%debug", allow_stdin=True)
    prompts = converse(dbg, cell, "p x, y", "pp {'y': y}", "a", "w", "u", "l", "d", "ll", "q")
    assert {p["prompt"] for p in prompts} == {"(Pdb r) "}
    assert all(p["parent"] == cell.msg_id for p in prompts)
    out = cell.stdout
    assert out.startswith("> <remote-cell-")  # the frame the exception came from
    assert "(3, 6)\n" in out and "{'y': 6}\n" in out and "x = 3\n" in out
    where = out.split("x = 3\n", 1)[1].split("(Pdb")[0]
    assert "pm_f(3)" in where and "return 1 / (x - 3)" in where
    assert not any(word in out for word in INTERNAL), out  # user frames only
    assert "  1  \tdef pm_f(x):" in out  # the remote cell's source lines (l)
    assert cell.error is None


def test_debug_after_a_proxy_call_and_through_a_callback_hop(dbg):
    dbg.ok("%%remote\ndef pm_outer(callback, v):\n    w = v + 1\n    return callback(w)")

    def_local = "def pm_local(w):\n    raise ValueError(f'bad {w}')\n"
    failed = dbg.run(def_local + "r.namespace['pm_outer'](pm_local, 41)")
    assert failed.error["ename"] == "ValueError"
    cell = dbg.submit("%debug", allow_stdin=True)
    converse(dbg, cell, "p w, v", "w", "q")
    out = cell.stdout
    assert "(42, 41)\n" in out
    assert "return callback(w)" in out
    # the notebook's frames of the hop, shown as text (they ran in the kernel)
    assert "the notebook's frames" in out and "raise ValueError(f'bad {w}')" in out
    assert not any(word in out for word in INTERNAL), out


def test_pdb_on_opens_the_post_mortem_at_once_and_clear_drops_it(dbg):
    dbg.ok("%pdb on")
    try:
        cell = dbg.submit("%%remote\npm_z = 7\npm_z / 0", allow_stdin=True)
        converse(dbg, cell, "p pm_z", "q")
        assert cell.error["ename"] == "ZeroDivisionError"
        assert "\n7\n" in cell.stdout
    finally:
        dbg.ok("%pdb off")
    assert "dropped the kept exception" in dbg.ok("%rdebug --clear").stdout
    assert "keeps no remote exception" in dbg.ok("%debug").stdout


def test_debug_of_a_local_error_stays_local(dbg):
    dbg.run("def pm_here():\n    local_only = 5\n    raise KeyError('here')\npm_here()")
    cell = dbg.submit("%debug", allow_stdin=True)
    prompts = converse(dbg, cell, "p local_only", "q")
    assert prompts[0]["prompt"] != "(Pdb r) "  # IPython's own debugger
    assert "5" in cell.stdout


def test_breakpoint_steps_end_with_the_cell(dbg):
    cell = dbg.submit("%%remote\nbp_a = 5\nbreakpoint()\nbp_b = bp_a + 1\nbp_b", allow_stdin=True)
    converse(dbg, cell, "p bp_a", "w", "n", "s")  # the step past the last line ends the stepping
    assert "-> bp_b\n" in cell.stdout  # the last line is stepped into, like any other
    assert cell.assert_ok().result["text/plain"] == "6"
    assert "--Return--" not in cell.stdout
    assert not any(word in cell.stdout for word in INTERNAL), cell.stdout


def test_breakpoint_in_a_background_job_parks_and_attaches(dbg):
    job = dbg.submit("%%remote --bg\nbg_v = 1\nbreakpoint()\nbg_v = 2\nprint('job went on', bg_v)")
    job.wait()
    job.wait_for(lambda c: "%rdebug" in c.stdout, what="the parked line")
    line = [text for text in job.stdout.splitlines() if "%rdebug" in text][0]
    number = int(line.split("%rdebug ")[1].split()[0])
    assert (
        line
        == f"breakpoint in job {line.split('job ')[1].split()[0]} on r (<remote-cell-"
        + line.split("<remote-cell-")[1].split(")")[0]
        + f"); %rdebug {number} attaches"
    )
    # listed once the remote holds it parked (the line may come first)
    wait_until(lambda: f"{number}  r" in dbg.ok("%rdebug").stdout, what="the parked breakpoint listed")
    assert "job" in dbg.ok("%rdebug").stdout
    # the parked thread holds nothing: the session keeps working
    assert dbg.ok("%remote 40 + 2").result["text/plain"] == "42"
    cell = dbg.submit(f"%rdebug {number}", allow_stdin=True)
    prompts = converse(dbg, cell, "p bg_v", "c")
    assert all(p["parent"] == cell.msg_id for p in prompts)
    assert "-> bg_v = 2" in cell.stdout and "\n1\n" in cell.stdout
    job.wait_for(lambda c: "job went on 2" in c.stdout, what="the job to go on")
    assert "no parked breakpoints" in dbg.ok("%rdebug").stdout


def test_quit_at_an_attached_breakpoint_raises_bdbquit_there(dbg):
    job = dbg.submit("%%remote --bg\nbreakpoint()\nprint('not reached')").wait()
    job.wait_for(lambda c: "%rdebug" in c.stdout, what="the parked line")
    number = int(job.stdout.split("%rdebug ")[1].split()[0])
    cell = dbg.submit(f"%rdebug {number}", allow_stdin=True)
    converse(dbg, cell, "q")
    job.wait_for(lambda c: c.error is not None or "BdbQuit" in c.stderr + c.stdout, what="the job's end")
    assert "BdbQuit" in job.error_text + job.stderr
    assert "not reached" not in job.stdout.splitlines()  # (its source line shows, not its output)


def test_without_parking_a_job_breakpoint_fails_with_eof(dbg):
    dbg.ok("%config RSym.park_breakpoints = False")
    try:
        job = dbg.submit("%%remote --bg\nbreakpoint()\nprint('not reached')").wait()
        job.wait_for(lambda c: c.error is not None or "EOFError" in c.stderr, what="the job's failure")
        assert "EOFError" in job.error_text + job.stderr
        assert "not reached" not in job.stdout.splitlines()
        assert "no parked breakpoints" in dbg.ok("%rdebug").stdout
    finally:
        dbg.ok("%config RSym.park_breakpoints = True")


def test_interrupt_at_a_remote_prompt_ends_the_cell(dbg):
    cell = dbg.submit("%%remote\nint_state = 'before'\nbreakpoint()\nint_state = 'after'", allow_stdin=True)
    assert dbg.input_request()["prompt"] == "(Pdb r) "
    dbg.interrupt()
    cell.wait()
    assert cell.error["ename"] in ("KeyboardInterrupt", "BdbQuit")
    assert dbg.ok("%remote int_state").result["text/plain"] == "'before'"
    assert dbg.ok("%remote 1 + 1").result["text/plain"] == "2"


def test_rdisconnect_lets_parked_threads_go_on(dbg):
    server = dbg.server
    token = f" --token {server.token}" if isinstance(server, RsymServer) else ""
    dbg.ok(f"%rconnect {server.address}{token} --as gone")
    dbg.ok(f"%rconnect {server.address}{token} --as watcher")
    job = dbg.submit("%%remote --bg --on gone\nbreakpoint()\nimport sys\nsys.rsym_released = True").wait()
    job.wait_for(lambda c: "%rdebug" in c.stdout, what="the parked line")
    assert [row.split()[1] for row in dbg.ok("%rdebug").stdout.splitlines()[1:]] == ["gone"]
    dbg.ok("%rdisconnect gone")
    watched = "%remote --on watcher getattr(__import__('sys'), 'rsym_released', False)"
    for _ in range(500):  # each look is a round trip: the released thread sets it soon
        if dbg.ok(watched).result["text/plain"] == "True":
            break
    assert dbg.ok(watched).result["text/plain"] == "True"
    dbg.ok("%rdisconnect watcher")


def test_fanout_hosts_take_the_prompt_one_at_a_time(dbg):
    server = dbg.server
    token = f" --token {server.token}" if isinstance(server, RsymServer) else ""
    dbg.ok(f"%rconnect {server.address}{token} --as f1")
    dbg.ok(f"%rconnect {server.address}{token} --as f2")
    try:
        # both hosts (one server process) reach the breakpoint together
        cell = dbg.submit(
            "%%remote --on f1,f2\nimport sys, threading\n"
            "sys.__dict__.setdefault('fan_barrier', threading.Barrier(2)).wait()\n"
            "fan_here = 1\nbreakpoint()\nfan_here = 2",
            allow_stdin=True,
        )
        first = dbg.input_request()
        cell.wait_for(lambda c: "%rdebug" in c.stdout, what="the other host parked")
        dbg.kc.input("c")
        second = dbg.answer("c")
        cell.wait().assert_ok()
        assert {first["prompt"], second["prompt"]} == {"(Pdb f1) ", "(Pdb f2) "}
        waited = "f2" if first["prompt"] == "(Pdb f1) " else "f1"
        assert f"on {waited} (<remote-cell-" in cell.stdout  # one line for the host that waited
        for name in ("f1", "f2"):  # both went on after their c
            assert dbg.ok(f"%remote --on {name} fan_here").result["text/plain"] == "2"
    finally:
        dbg.ok("%rdisconnect f1")
        dbg.ok("%rdisconnect f2")


def test_debug_after_a_fanout_host_failed(dbg):
    server = dbg.server
    token = f" --token {server.token}" if isinstance(server, RsymServer) else ""
    dbg.ok(f"%rconnect {server.address}{token} --as h1")
    try:
        failed = dbg.run("%%remote --on r,h1\nfan_n = 3\nfan_n / 0")
        assert failed.error["ename"] == "FanoutError"
        cell = dbg.submit("%debug", allow_stdin=True)
        prompts = converse(dbg, cell, "p fan_n", "q", "p fan_n", "q")
        assert sorted(p["prompt"] for p in prompts[::2]) == ["(Pdb h1) ", "(Pdb r) "]
        assert cell.stdout.count("\n3\n") == 2
    finally:
        dbg.ok("%rdisconnect h1")


def test_breakpoint_in_a_remote_function_a_cell_calls_prompts_there(dbg):
    dbg.ok("%%remote\ndef called(v):\n    doubled = v * 2\n    breakpoint()\n    return doubled + 1")
    cell = dbg.submit("r.namespace['called'](20)", allow_stdin=True)
    prompts = converse(dbg, cell, "p doubled", "n")  # n past the return: back to the notebook
    assert [p["parent"] for p in prompts] == [cell.msg_id] * 2
    assert cell.assert_ok().result["text/plain"] == "41"
    assert "40\n" in cell.stdout and "--Return--" not in cell.stdout
    assert not any(word in cell.stdout for word in INTERNAL), cell.stdout


def test_breakpoint_in_a_thread_of_a_finished_cell_parks(dbg):
    starter = dbg.ok(
        "%%remote\nimport threading\ngate = threading.Event()\n"
        "def late():\n    gate.wait()\n    here = 'late'\n    breakpoint()\n    print('late went on')\n"
        "threading.Thread(target=late).start()"
    )
    dbg.ok("%remote gate.set()")  # the starting cell has finished by now
    starter.wait_for(lambda c: "%rdebug" in c.stdout, what="the parked line")
    number = int(starter.stdout.split("%rdebug ")[1].split()[0])
    assert "breakpoint in a cell on r (<remote-cell-" in starter.stdout
    cell = dbg.submit(f"%rdebug {number}", allow_stdin=True)
    converse(dbg, cell, "p here", "c")
    assert "'late'\n" in cell.stdout
    starter.wait_for(lambda c: "late went on" in c.stdout, what="the thread to go on")


def test_interrupt_at_an_attached_prompt_parks_the_thread_again(dbg):
    job = dbg.submit("%%remote --bg\nagain = 'parked'\nbreakpoint()\nprint('finally went on')").wait()
    job.wait_for(lambda c: "%rdebug" in c.stdout, what="the parked line")
    number = int(job.stdout.split("%rdebug ")[1].split()[0])
    cell = dbg.submit(f"%rdebug {number}", allow_stdin=True)
    assert dbg.input_request()["parent"] == cell.msg_id
    dbg.interrupt()
    cell.wait()
    assert cell.error["ename"] == "KeyboardInterrupt"
    assert dbg.ok("%remote 2 + 2").result["text/plain"] == "4"  # the session goes on
    listed = dbg.ok("%rdebug").stdout
    assert listed.splitlines()[1].split()[0] == str(number)  # parked again, same number
    cell = dbg.submit(f"%rdebug {number}", allow_stdin=True)
    converse(dbg, cell, "p again", "c")
    job.wait_for(lambda c: "finally went on" in c.stdout, what="the job to go on")


def test_a_parked_breakpoint_survives_a_resumed_link(kernel, start_rsym_server, start_proxy):
    server = start_rsym_server()
    proxy = start_proxy(("127.0.0.1", server.port))
    kernel.ok(f"%load_ext jupyter_rsym\n%rconnect {proxy.address} --token {server.token}")
    try:
        job = kernel.submit("%%remote --bg\nkept = 'across'\nbreakpoint()\nprint('went on after resume')").wait()
        job.wait_for(lambda c: "%rdebug" in c.stdout, what="the parked line")
        number = int(job.stdout.split("%rdebug ")[1].split()[0])
        assert proxy.cut() >= 2
        for _ in range(500):  # each look is a cell: the kernel notices the drop soon
            if kernel.ok("print(r.state)").stdout == "lost\n":
                break
        cell = kernel.submit(f"%rdebug {number}", allow_stdin=True)  # resumes, then attaches
        converse(kernel, cell, "p kept", "c")
        assert "'across'\n" in cell.stdout
        job.wait_for(lambda c: "went on after resume" in c.stdout, what="the job to go on")
    finally:
        kernel.ok("%rdisconnect --all")


def test_debug_after_a_background_job_failed(dbg):
    job = dbg.submit("%%remote --bg\ndef bg_fail(n):\n    left = n - 4\n    return n / left\nbg_fail(4)").wait()
    job.wait_for(lambda c: c.error is not None, what="the job's error")
    assert job.error["ename"] == "ZeroDivisionError"
    cell = dbg.submit("%debug", allow_stdin=True)
    prompts = converse(dbg, cell, "p n, left", "q")
    assert prompts[0]["prompt"] == "(Pdb r) "
    assert "(4, 0)\n" in cell.stdout and "return n / left" in cell.stdout
