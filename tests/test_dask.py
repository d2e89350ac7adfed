"""Issue 23: %rconnect dask://SCHEDULER puts a session in every worker.

Real ``dask scheduler`` / ``dask worker`` processes on 127.0.0.1
(``daskcluster.py``), a real kernel; two workers at a time (2 cores).
"""

import contextlib
import socket
import ssl
import subprocess
import sys

import pytest

pytest.importorskip("distributed")

from .daskcluster import Cluster, wait_workers  # noqa: E402
from .harness import KernelHarness  # noqa: E402
from .waits import wait_until  # noqa: E402

THREADS = "sorted(t.name for t in __import__('threading').enumerate() if 'rsym' in t.name)"


@pytest.fixture(scope="module")
def cluster():
    with two_workers() as started:
        yield started


@contextlib.contextmanager
def two_workers():
    with Cluster() as started:
        for name in ("w0", "w1"):
            started.start_worker(name)
        client = started.client()
        wait_workers(client, ["w0", "w1"])
        started.watch = client  # the test's own view of the workers
        try:
            yield started
        finally:
            client.close()


@contextlib.contextmanager
def connected_kernel(cluster):
    harness = KernelHarness()
    try:
        harness.ok("%load_ext jupyter_rsym")
        cell = harness.ok(f"%rconnect {cluster.address.replace('tcp://', 'dask://')}")
        assert cell.stdout.startswith(f"Connected dask to {cluster.address.replace('tcp://', 'dask://')}: 2 workers")
        yield harness
    finally:
        harness.shutdown()


@pytest.fixture(scope="module")
def nb(cluster):
    """The module's kernel and group; tests that change the cluster or the group have their own."""
    with connected_kernel(cluster) as harness:
        yield harness


@pytest.fixture
def own(request):
    """A cluster and a connected kernel of this test's own: ``(kernel, cluster)``."""
    with two_workers() as cluster, connected_kernel(cluster) as harness:
        yield harness, cluster


def members(nb, said=None):
    cell = nb.ok("sorted(s.name for s in dask.sessions)")
    if said is not None:
        said.append(cell.stdout)
    return eval(cell.result["text/plain"])


def wait_members(nb, names):
    """Wait until the group has ``names``; what the cells that asked printed."""
    said = []
    nb.wait_for(lambda: members(nb, said) == sorted(names), timeout=60)
    return "".join(said)


def test_a_session_in_every_worker_process(nb, cluster):
    cell = nb.ok("%%remote --on dask -o pid\nimport os\npid = os.getpid()\nprint('hello from', os.getpid())")
    pids = eval(nb.ok("pid").result["text/plain"])
    assert pids == {name: cluster.workers[name].pid for name in ("w0", "w1")}
    for name in ("w0", "w1"):
        assert f"[{name}] hello from {pids[name]}\n" in cell.stdout
    # --on GROUP/WORKER: one of them, its value plain
    assert nb.ok("%%remote --on dask/w1\nimport os; os.getpid()").result["text/plain"] == str(pids["w1"])
    # the session lives inside the worker: Dask's own Worker object is there
    cell = nb.ok("%%remote --on dask\ndask_worker.name")
    assert cell.result["text/plain"] == "[w0] 'w0'\n[w1] 'w1'"


def test_namespace_survives_between_cells_and_callbacks_come_from_every_worker(nb):
    nb.ok("%%remote --on dask\nimport os\ncounter = 0")
    nb.ok("%%remote --on dask\ncounter += 1")
    nb.ok(  # one write: the two workers' callbacks run at once, as local threads would
        "seen = []\ndef report(who):\n    seen.append(who)\n    print(f'called by {who}\\n', end='')"
    )
    cell = nb.ok("%%remote --on dask -i report\nreport(f'{dask_worker.name}:{counter}')")
    assert sorted(cell.stdout.splitlines()) == ["called by w0:1", "called by w1:1"]
    assert nb.ok("sorted(seen)").result["text/plain"] == "['w0:1', 'w1:1']"


def test_rconnections_shows_the_group_in_one_line_and_members_with_v(nb, cluster):
    lines = nb.ok("%rconnections").stdout.splitlines()
    group = [line for line in lines if line.startswith("dask ")]
    assert len(group) == 1 and "group of 2 workers: 2 connected" in group[0]
    assert "self-signed certificates, pinned" in group[0]
    verbose = nb.ok("%rconnections -v").stdout
    assert "dask/w0" in verbose and "dask/w1" in verbose and "tls://127.0.0.1:" in verbose


def test_the_session_is_tls_with_the_announced_certificate(nb):
    host, port = eval(nb.ok("(dask['w0'].address.host, dask['w0'].address.port)").result["text/plain"])
    # not plaintext: a plain rpyc client gets nowhere (the gate speaks TLS first)
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=10) as raw:
        with context.wrap_socket(raw) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            der = tls.getpeercert(binary_form=True)
    import base64
    import hashlib

    fingerprint = "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")
    assert nb.ok("dask['w0'].transport.fingerprint").result["text/plain"] == repr(fingerprint)


def test_identical_lines_collapse_across_hosts_unless_no_collapse(nb):
    nb.ok("%config RSym.many_hosts = 2")
    try:
        cell = nb.ok("%%remote --on dask\nprint('step 1')\nprint('only', dask_worker.name)")
        lines = cell.stdout.splitlines()
        assert sum("step 1" in line for line in lines) == 2  # shown once, and the count once
        first = next(line for line in lines if "step 1" in line)
        other = "w1" if first.startswith("[w0]") else "w0"
        assert f"step 1 [repeated on 1 more host: {other}]" in lines
        assert sum(line.endswith(("only w0", "only w1")) for line in lines) == 2  # distinct lines stay
        cell = nb.ok("%%remote --on dask --no-collapse\nprint('step 1')")
        assert sorted(cell.stdout.splitlines()) == ["[w0] step 1", "[w1] step 1"]
    finally:
        nb.ok("%config RSym.many_hosts = 4")


def test_long_cell_shows_one_progress_line_updated_in_place(nb):
    nb.ok("%config RSym.fanout_progress_after = 0.2\n%config RSym.many_hosts = 2")
    try:
        cell = nb.run(
            "%%remote --on dask\nimport time\ntime.sleep(1.0)\nif dask_worker.name == 'w1':\n    raise ValueError('no')"
        )
        assert cell.error["ename"] == "FanoutError"
        shown = [m for m in cell.messages if m["msg_type"] in ("display_data", "update_display_data")]
        assert shown[0]["msg_type"] == "display_data"
        assert shown[0]["content"]["data"]["text/plain"] == "0/2 done"
        ids = {m["content"]["transient"]["display_id"] for m in shown}
        assert len(ids) == 1  # one line, updated in place
        assert shown[-1]["content"]["data"]["text/plain"] == "2/2 done, 1 failed (w1)"
    finally:
        nb.ok("%config RSym.fanout_progress_after = 2.0\n%config RSym.many_hosts = 4")


def test_a_worker_without_rpyc_joins_gets_its_session_and_leaves_when_killed(own):
    nb, cluster = own
    cluster.start_worker("bare", bare=True)
    # that Python has Dask and nothing of ours
    for module in ("rpyc", "cryptography"):
        check = subprocess.run(
            [sys.executable, "-S", "-c", f"import distributed; import {module}"],
            env=cluster.bare_env,
            capture_output=True,
            text=True,
        )
        assert f"No module named '{module}'" in check.stderr
    wait_workers(cluster.watch, ["w0", "w1", "bare"])
    said = wait_members(nb, ["bare", "w0", "w1"])  # no user action
    code = "%%remote --on dask\nimport rpyc, sys\n'jupyter-rsym-dask-' in rpyc.__file__"
    cells = []

    def bare_answers():
        cells.append(nb.ok(code))
        return "[bare]" in cells[-1].result["text/plain"]

    wait_until(bare_answers, 30, what="the bare worker's session in the group")
    cell = cells[-1]
    said += "".join(c.stdout for c in cells[:-1])
    # said once, in the first cell that used the group after the join
    assert (said + cell.stdout).count("dask: 1 worker joined (bare)\n") == 1, (said, cell.stdout)
    assert "[bare] True" in cell.result["text/plain"]
    assert nb.ok("%%remote --on dask/bare\nsys.flags.no_site").result["text/plain"] == "1"

    # killed with SIGKILL: it leaves the group with one line, the others go on
    nb.ok("lost = []\ndask['bare'].when_lost(lost.append)")
    cluster.kill("bare")
    nb.wait_for(lambda: nb.ok("len(lost)").result["text/plain"] == "1", timeout=60)
    cell = nb.ok("%%remote --on dask\n'still here'")
    assert cell.stdout.splitlines()[0].startswith("dask: 1 worker left (bare: ")
    assert cell.result["text/plain"] == "[w0] 'still here'\n[w1] 'still here'"
    assert "left" not in nb.ok("%%remote --on dask\n1").stdout  # said once


def test_a_joining_worker_where_no_server_can_start_is_said_once_and_the_rest_go_on(own):
    nb, cluster = own
    cluster.start_worker("nocert", bare=True, no_openssl=True)  # neither cryptography nor openssl there
    wait_workers(cluster.watch, ["w0", "w1", "nocert"])

    def said_why():
        cell = nb.ok("%%remote --on dask\n'here'")
        assert cell.result["text/plain"] == "[w0] 'here'\n[w1] 'here'"
        return cell.stdout or None

    said = wait_until(said_why, 60, what="the failed worker named in a cell")
    assert said.startswith(
        "dask: could not connect 1 new worker (nocert: RuntimeError: a self-signed certificate needs"
    )
    assert len(said.splitlines()) == 1
    assert nb.ok("%%remote --on dask\n'again'").stdout == ""  # said once


def test_disconnect_unregisters_the_plugin_and_leaves_no_thread_or_port(own):
    nb, cluster = own
    ports = eval(nb.ok("[s.address.port for s in dask.sessions]").result["text/plain"])
    assert cluster.watch.run(lambda: eval(THREADS))  # the servers run now
    cell = nb.ok("%rdisconnect dask")
    assert cell.stdout.startswith("Disconnected dask")
    assert all(threads == [] for threads in cluster.watch.run(lambda: eval(THREADS)).values())
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    leftovers = cluster.watch.run(lambda: [p for p in __import__("sys").path if "jupyter-rsym-dask-" in p])
    assert all(not paths for paths in leftovers.values())
    assert nb.ok("'dask' in dir()").result["text/plain"] == "False"
    # the kernel's own threads for the group are gone too
    assert "group" not in nb.ok("print([t.name for t in __import__('threading').enumerate()])").stdout


def test_a_tls_cluster_lends_its_certificates():
    with Cluster(tls=True) as tls:
        tls.start_worker("t0")
        client = tls.client()
        wait_workers(client, ["t0"])
        nb = KernelHarness()
        try:
            nb.ok(
                "%load_ext jupyter_rsym\nfrom distributed import Client, Security\n"
                f"client = Client({tls.address!r}, security=Security(tls_ca_file={str(tls.tls['ca'])!r}, "
                f"tls_client_cert={str(tls.tls['client'])!r}, tls_client_key={str(tls.tls['client'])!r}, "
                "require_encryption=True))"
            )
            cell = nb.run("%rconnect --dask client --as cl")
            assert "1 worker (cluster TLS)" in cell.stdout, cell.stdout + cell.error_text
            assert nb.ok("%%remote --on cl\n6 * 7").result["text/plain"] == "42"
            port = int(nb.ok("cl['t0'].address.port").result["text/plain"])
            # the worker's own listen context: a client without a cluster certificate is refused
            context = ssl.create_default_context(cafile=str(tls.tls["ca"]))
            context.check_hostname = False
            with pytest.raises((ssl.SSLError, ConnectionError)):
                with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                    with context.wrap_socket(raw) as sock:
                        sock.sendall(b"x")
                        sock.recv(1)
            nb.ok("%rdisconnect cl")
            assert nb.ok("client.status").result["text/plain"] == "'running'"  # the user's Client stays
        finally:
            nb.shutdown()
            client.close()


def test_unreachable_workers_are_named_in_one_line_and_the_rest_connect():
    """A worker Dask reaches through a forwarded port (its contact address is a
    proxy, as behind NAT): our server on its own host is not reachable there."""
    from .netproxy import DelayProxy

    with socket.socket() as probe:
        probe.bind(("127.0.0.2", 0))
        port = probe.getsockname()[1]
    proxy = DelayProxy(("127.0.0.2", port))
    with Cluster() as started:
        started.start_worker("w0")
        started.start_worker(
            "natted",
            where=("--listen-address", f"tcp://127.0.0.2:{port}", "--contact-address", f"tcp://127.0.0.1:{proxy.port}"),
        )
        client = started.client()
        nb = KernelHarness()
        try:
            wait_workers(client, ["w0", "natted"])
            cell = nb.ok(f"%load_ext jupyter_rsym\n%rconnect {started.address.replace('tcp', 'dask')} --as far")
            lines = cell.stdout.splitlines()
            assert lines[0].startswith("Connected far to dask://") and ": 1 worker " in lines[0]
            assert lines[1].startswith("far: could not reach 1 worker (natted): cannot connect to tls://127.0.0.1:")
            assert len(lines) == 2
            assert nb.ok("%%remote --on far\ndask_worker.name").result["text/plain"] == "'w0'"
        finally:
            nb.shutdown()
            client.close()
            proxy.close()


def test_kernel_shutdown_unregisters_the_plugin_too():
    with two_workers() as cluster:
        kernel_shutdown_unregisters(cluster)


def kernel_shutdown_unregisters(cluster):
    other = KernelHarness()
    try:
        other.ok(f"%load_ext jupyter_rsym\n%rconnect {cluster.address.replace('tcp', 'dask')} --as gone")
        assert all(threads for threads in cluster.watch.run(lambda: eval(THREADS)).values())
    finally:
        other.shutdown()  # atexit: every group closed, every plugin unregistered
    assert all(threads == [] for threads in cluster.watch.run(lambda: eval(THREADS)).values())
    assert all(
        not plugins
        for plugins in cluster.watch.run(
            lambda dask_worker: [n for n in dask_worker.plugins if n.startswith("jupyter-rsym")]
        ).values()
    )


def test_client_restart_recreates_the_sessions():
    """Nanny workers: client.restart() replaces every worker process; the
    group follows by itself."""
    with Cluster() as started:
        for name in ("n0", "n1"):
            started.start_worker(name, nanny=True)
        client = started.client()
        nb = KernelHarness()
        try:
            wait_workers(client, ["n0", "n1"])
            nb.ok(f"%load_ext jupyter_rsym\n%rconnect {started.address.replace('tcp', 'dask')}")
            nb.ok("%%remote --on dask -o pid\nimport os\npid = os.getpid()")
            before = eval(nb.ok("old = dask.sessions\npid").result["text/plain"]).values()
            client.restart()
            # replaced by name as the new processes announce themselves
            nb.wait_for(
                lambda: (
                    nb.ok("len(dask) == 2 and not any(s in old for s in dask.sessions)").result["text/plain"] == "True"
                ),
                timeout=60,
            )
            cell = nb.ok("%%remote --on dask -o pid\nimport os\npid = os.getpid()")
            after = eval(nb.ok("pid").result["text/plain"])
            assert set(after) == {"n0", "n1"} and not set(after.values()) & set(before)
            assert "2 workers left" in cell.stdout.splitlines()[0] and "2 workers joined" in cell.stdout
        finally:
            nb.shutdown()
            client.close()
