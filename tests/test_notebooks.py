"""The example notebooks, executed in a real kernel against a real server."""

from pathlib import Path

from jupyter_rsym.demo import execute_notebook, output_text

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
G_LINES = "".join(f"hi, this is g, executing locally {i}\n" for i in range(10))


def shown(cell):
    return "".join(output_text(o) for o in cell.outputs)


def code_cells(notebook):
    return [c for c in notebook.cells if c.cell_type == "code"]


def test_callbacks_and_symmetry(classic_server):
    notebook = execute_notebook(NOTEBOOKS / "01-callbacks-and-symmetry.ipynb", classic_server.address)
    cells = code_cells(notebook)

    def by_start(prefix):
        return next(c for c in cells if c.source.startswith(prefix))

    assert shown(by_start("import os")).startswith(f"Connected r to {classic_server.address}: Python 3.")
    assert shown(by_start("rlist =")) == "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n"
    assert shown(by_start("def f(x)")) == "[0, 1, 8, 27, 64, 125, 216, 343, 512, 729]\n"
    assert shown(by_start("def g(x)")) == G_LINES + "[0, 1, 8, 27, 64, 125, 216, 343, 512, 729]\n"
    assert shown(by_start("%%remote\nimport os")) == (f"hello from pid {classic_server.process.pid} on Linux\n285\n")
    assert shown(by_start("%%remote -i g")) == "".join(G_LINES.splitlines(True)[:3])
    assert shown(by_start("cubes")) == "[0, 1, 8]\n"
    pool = by_start("%%remote\nfrom concurrent.futures")  # g, handed over in another cell, prints here
    assert shown(pool) == "".join(G_LINES.splitlines(True)[3:6]) + "[27, 64, 125]\n"
    error = by_start("%%remote\ndef ratio").outputs[0]
    assert (error.ename, error.evalue) == ("ZeroDivisionError", "division by zero")
    assert "return a / b" in output_text(error) and "rpyc" not in output_text(error)
    assert "connected" in shown(by_start("%rconnections"))
    assert shown(by_start("%remote 6 * 7")) == "42\n"


def test_async_callbacks_routing(start_server):
    """Run notebook 02 cell by cell in a harness kernel, which also sees late output."""
    import nbformat

    from .harness import KernelHarness

    server = start_server()
    notebook = nbformat.read(NOTEBOOKS / "02-async-callbacks.ipynb", as_version=4)
    harness = KernelHarness(env={"RSYM_ADDRESS": server.address})
    try:
        cells = [harness.ok(cell.source) for cell in code_cells(notebook)]
        connect, timer, sleeper, define, worker, waiter = cells
        timer.wait_for(lambda c: "ring" in c.stdout, 10, "the ring")
        worker.wait_for(lambda c: "5/5" in c.stdout, 10, "all progress")
        assert timer.stdout == "timer set\nring for the timer cell\n"
        assert sleeper.stdout == "meanwhile, this cell slept\n"
        assert worker.stdout == "worker started\n" + "".join(f"progress {i}/5\n" for i in range(1, 6))
        assert waiter.stdout == "" and waiter.result["text/plain"] == "'worker finished'"
        assert define.stdout == "" and connect.stdout.startswith("Connected r")
    finally:
        harness.shutdown()


def test_secure_server(tls_rsym_server, tls_files):
    server = tls_rsym_server
    notebook = execute_notebook(
        NOTEBOOKS / "03-secure-server.ipynb",
        server.address,
        env={"RSYM_SERVER_TOKEN": server.token, "RSYM_CA": str(tls_files.ca)},
    )
    cells = code_cells(notebook)
    connect, remote, mapped, intruder, plain, after = cells[1:]
    assert shown(connect).startswith(f"Connected r to {server.address}: Python 3.")
    assert shown(remote) == f"served by pid {server.process.pid}\n"
    assert shown(mapped) == "g runs here 0\ng runs here 1\ng runs here 2\n[0, 2, 4]\n"
    plain_address = server.address.removeprefix("tls://")
    assert shown(intruder) == f"ConnectionError: wrong token for {server.address}: the server holds another one\n"
    assert shown(plain) == f"ConnectionError: {plain_address} speaks TLS: connect to tls://{plain_address}\n"
    assert shown(after) == "42\n"
    server.wait_for_log("refused: wrong token")


def test_many_hosts(start_server):
    """Notebook 06 cell by cell: fan-out, a failing host, a background job, %autoremote."""
    import nbformat

    from .harness import KernelHarness
    from .test_fanout import by_host

    left, right = start_server(), start_server()
    notebook = nbformat.read(NOTEBOOKS / "06-many-hosts.ipynb", as_version=4)
    harness = KernelHarness(env={"RSYM_ADDRESS": left.address, "RSYM_ADDRESS_2": right.address})
    try:
        cells = [harness.run(cell.source) for cell in code_cells(notebook)]
        connect, fanout, pids, failing, job, meanwhile, result, listing, on, remote, local, off = cells
        assert connect.stdout.startswith(f"Connected left to {left.address}")
        assert f"Connected right to {right.address}" in connect.stdout
        steps = "".join(f"step {i}\n" for i in range(3))
        assert by_host(fanout.stdout) == {"left": steps, "right": steps}
        pid = {"left": left.process.pid, "right": right.process.pid}
        assert fanout.result["text/plain"] == f"[left] {pid['left'] % 7}\n[right] {pid['right'] % 7}"
        assert pids.result["text/plain"] == repr(pid)
        assert failing.error["ename"] == "FanoutError"
        assert failing.error_text.splitlines()[:3] == [
            "FanoutError: 1 of 2 sessions failed: right",
            "",
            "[right] RuntimeError: this host is unhappy",
        ]
        assert failing.displays == [{"text/plain": "[left] 'fine'"}]
        assert job.displays[0]["text/plain"].startswith("<RemoteJob 1 on left, right: running")
        assert meanwhile.stdout == "meanwhile, the notebook is free; the job is running\n"
        assert result.result["text/plain"] == "[left] 'all done'\n[right] 'all done'"
        job.wait_for(lambda c: len(c.displays) == 2, 10, "the job's value in its cell")
        assert by_host(job.stdout) == {"left": "working\nfinished\n", "right": "working\nfinished\n"}
        assert job.displays[1] == {"text/plain": "[left] 'all done'\n[right] 'all done'"}
        assert "left, right  done" in listing.stdout
        assert on.stdout.startswith("autoremote on: plain cells run on left")
        assert remote.result["text/plain"] == "(True, 'CPython')"
        assert local.stdout == "this cell ran in the notebook: True\n"
        assert off.stdout == "autoremote off: cells run here\n"
        assert all(c.error is None for c in cells if c is not failing)
    finally:
        harness.shutdown()


def test_resume(start_rsym_server):
    """Notebook 07 cell by cell in a harness kernel, which sees the replayed late output."""
    import nbformat

    from .harness import KernelHarness

    server = start_rsym_server()
    notebook = nbformat.read(NOTEBOOKS / "07-resume.ipynb", as_version=4)
    harness = KernelHarness(env={"RSYM_ADDRESS": server.address, "JUPYTER_RSYM_TOKEN": server.token})
    try:
        connect, counting, cutting, resuming, listing, close = [harness.ok(c.source) for c in code_cells(notebook)]
        counting.wait_for(lambda c: "count 8\n" in c.stdout, 10, "every count")
        assert connect.stdout.startswith("Connected r to 127.0.0.1:")
        assert counting.stdout == "".join(f"count {i}\n" for i in range(1, 9))
        assert cutting.stdout == "cut 2 connections\n"
        assert resuming.stdout.startswith("Resumed r on 127.0.0.1:") and resuming.stdout.count("\n") == 1
        assert resuming.result["text/plain"] == "8"
        assert " connected " in listing.stdout.splitlines()[1]
        assert close.stdout.startswith("Disconnected r")
    finally:
        harness.shutdown()


def test_rich_remote_output(start_server):
    """Notebook 05 cell by cell; the input() cell is answered through the stdin channel."""
    import nbformat

    from .harness import KernelHarness

    server = start_server()
    notebook = nbformat.read(NOTEBOOKS / "05-rich-remote-output.ipynb", as_version=4)
    harness = KernelHarness(env={"RSYM_ADDRESS": server.address})
    try:
        *cells, asking = code_cells(notebook)
        connect, table, plot, displays, progress = [harness.ok(cell.source, timeout=60) for cell in cells]
        answered = harness.submit(asking.source, allow_stdin=True)
        request = harness.answer("Ada")
        answered.wait().assert_ok()

        assert connect.stdout.startswith(f"Connected r to {server.address}")
        assert "<table" in table.result["text/html"] and "sensor" in table.result["text/html"]
        assert table.result["text/plain"].splitlines()[1].split() == ["0", "a", "0.50"]
        assert [kind for kind, _ in plot.outputs] == ["stdout", "display"]
        assert plot.outputs[0] == ("stdout", "plotted 3 readings\n")
        assert plot.displays[0]["image/png"].startswith("iVBORw0KGgo")  # a PNG, base64
        assert [kind for kind, _ in displays.outputs] == ["stdout", "display", "display", "stdout"]
        assert displays.outputs[0] == ("stdout", "summary:\n")
        assert "<table" in displays.outputs[1][1]["text/html"]
        assert displays.outputs[2] == ("display", {"text/plain": "'calibrated'"})  # updated in place
        assert displays.outputs[3] == ("stdout", "done\n")
        (bar, printed) = progress.rendered
        assert bar[0] == "stderr" and bar[1].startswith("measuring: 100%") and bar[1].count("\n") == 1
        assert printed == ("stdout", "measured\n")
        assert (request["prompt"], request["parent"]) == ("your name? ", answered.msg_id)
        assert answered.outputs == [("stdout", "hello Ada, from the remote side\n")]
    finally:
        harness.shutdown()


def test_over_ssh(sshd, classic_server, monkeypatch):
    """Notebook 04 against the test sshd: a tunnel to a stock server, then a deployed one."""
    monkeypatch.setenv("RSYM_SSH_HOST", sshd.host_alias)
    monkeypatch.setenv("RSYM_SSH_CONFIG", str(sshd.config_file))
    monkeypatch.setenv("RSYM_SSH_PYTHON", "/usr/bin/python3")  # Debian's, without rpyc
    tunnel = f"ssh://{sshd.host_alias}/{classic_server.port}"
    notebook = execute_notebook(NOTEBOOKS / "04-over-ssh.ipynb", tunnel)
    cells = code_cells(notebook)

    def by_start(prefix):
        return next(c for c in cells if c.source.startswith(prefix))

    assert shown(by_start("%rconnect {os")).startswith(f"Connected r to {tunnel}: Python 3.")
    assert shown(by_start("%%remote -i report")) == (f"the remote says: pid {classic_server.process.pid} on Linux\n")
    assert shown(by_start("%rdisconnect r")) == f"Disconnected r ({tunnel})\n"
    deployed = shown(by_start("%rconnect ssh://{host} --deploy"))
    assert deployed.startswith(f"Connected lab to ssh://{sshd.host_alias}/"), deployed
    report = shown(by_start("%%remote --on lab"))
    prefix = "the remote says: /usr/bin/python3, serving from "
    assert report.startswith(prefix + "/tmp/jupyter-rsym-"), report
    directory = Path(report[len(prefix) :].strip())
    assert "lab" in shown(by_start("%rconnections")) and "connected" in shown(by_start("%rconnections"))
    assert shown(by_start("%rdisconnect lab")).startswith("Disconnected lab (ssh://")
    assert not directory.exists()  # the host is this machine: nothing was left behind


def test_when_things_go_wrong(classic_server):
    notebook = execute_notebook(NOTEBOOKS / "08-when-things-go-wrong.ipynb", classic_server.address)
    cells = code_cells(notebook)

    def by_start(prefix):
        return next(c for c in cells if c.source.startswith(prefix))

    error = by_start("countdown(2)").outputs[0]
    text = output_text(error)
    assert (error.ename, error.evalue) == ("ValueError", "reached the bottom")
    assert [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith('  File "')] == [
        "remote_countdown",
        "countdown",
        "remote_countdown",
        "countdown",
    ]
    assert "rpyc" not in text and "jupyter_rsym" not in text and "Remote Traceback" not in text
    assert shown(by_start("r.modules.sys.exit")) == "SystemExit: 5\n"
    assert shown(by_start("%remote 6 * 7")) == "42\n"
    assert shown(by_start("%%remote\nfrom concurrent")) == "pool created\n"
    assert shown(by_start("%%remote\npool.submit")) == "work submitted by this cell\n"
    assert shown(by_start("%rbind r")) == (f"Bound r to the session r ({classic_server.address})\n'still here'\n")


def test_moving_data(classic_server):
    notebook = execute_notebook(NOTEBOOKS / "09-moving-data.ipynb", classic_server.address)
    cells = code_cells(notebook)

    def by_start(prefix):
        return shown(next(c for c in cells if c.source.startswith(prefix)))

    assert by_start("%%remote\nframe") == "ndarray (3, 4)\n"
    assert by_start("%rpull scaled") == "[0. 1. 2. 3.] [ 0. 10. 20. 30.]\n"  # the notebook's copy unchanged
    assert by_start("%rpull big") == "64 MB float64 True True\n"
    assert by_start("import threading").startswith("lock cannot be copied to r (TypeError: cannot pickle")
    assert by_start("%rpush lock --ref") == "True\n"
    assert by_start("help(").startswith("Help on function basename in module posixpath:")


def test_debugging(start_server):
    """Notebook 11, cell by cell in a harness kernel that answers its pdb prompts."""
    import nbformat

    from .harness import KernelHarness

    server = start_server()
    notebook = nbformat.read(NOTEBOOKS / "11-debugging.ipynb", as_version=4)
    answers = {
        "%debug": ["p values, total", "w", "q"],
        "%%remote\nx = 20": ["p x", "n", "c"],
        "%rdebug 1": ["p step", "c"],
    }
    harness = KernelHarness(env={"RSYM_ADDRESS": server.address})
    try:
        cells = []
        for cell in code_cells(notebook):
            replies = next((a for start, a in answers.items() if cell.source.startswith(start)), [])
            running = harness.submit(cell.source, allow_stdin=True)
            prompts = [harness.answer(reply) for reply in replies]
            assert all(p["prompt"] == "(Pdb r) " for p in prompts)
            cells.append(running.wait())
            if cell.source.startswith("%%remote --bg"):  # the next cells need it parked
                running.wait_for(lambda c: "%rdebug 1 attaches" in c.stdout, what="the parked line")
        connect, failed, debug, stepped, job, listing, attach, jobs = cells
        assert failed.error["ename"] == "ZeroDivisionError"
        assert "([], 0)\n" in debug.stdout and "return total / len(values)" in debug.stdout
        assert "rpyc" not in debug.stdout and "agent" not in debug.stdout
        assert "20\n" in stepped.stdout and stepped.stdout.endswith("y is 21\n")
        assert "r        job 1" in listing.stdout
        assert "-> step = 2" in attach.stdout and "\n1\n" in attach.stdout
        job.wait_for(lambda c: "the job went on at step 2" in c.stdout, what="the job to go on")
        assert ": done" in str(jobs.outputs)  # <RemoteJob 1 on r: done, cell 5>
    finally:
        harness.shutdown()


def test_dask_notebook_starts_its_cluster_and_follows_it():
    """Notebook 10: a LocalCluster of its own, a session in every worker, a worker joining."""
    import nbformat

    from .harness import KernelHarness

    notebook = nbformat.read(NOTEBOOKS / "10-dask.ipynb", as_version=4)
    harness = KernelHarness()
    try:
        cells = [harness.ok(cell.source, timeout=120) for cell in code_cells(notebook)]
        (start, connect, fanout, pids, define, callbacks, config, collapsed, one, scale, joined, listing, end) = cells
        assert connect.stdout.startswith("Connected dask to dask://127.0.0.1:")
        assert ": 2 workers (self-signed certificates, pinned)" in connect.stdout
        from .test_fanout import by_host

        assert by_host(fanout.stdout) == {"0": "hello from worker 0\n", "1": "hello from worker 1\n"}
        assert fanout.result["text/plain"] == "[0] 0\n[1] 1"  # LocalCluster names workers 0, 1, ...
        assert set(eval(pids.result["text/plain"])) == {"0", "1"}
        assert sorted(callbacks.stdout.splitlines()) == [f"worker {w} reached step {s}" for w in (0, 1) for s in (0, 1)]
        lines = collapsed.stdout.splitlines()
        assert sum("loading data" in line for line in lines) == 2
        assert any(line.startswith("loading data [repeated on 1 more host: ") for line in lines)
        assert one.result["text/plain"] == "42"
        assert joined.stdout == "dask: 1 worker joined (2)\n"
        assert joined.result["text/plain"] == "[0] 0\n[1] 1\n[2] 2"
        assert "group of 3 workers: 3 connected" in listing.stdout and "dask/2" in listing.stdout
        assert end.stdout.startswith("Disconnected dask")
    finally:
        harness.shutdown()
