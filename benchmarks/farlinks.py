"""Far links: bulk data against a raw socket, round trips per action, ipyparallel side by side.

    python benchmarks/run.py --only farlinks [--quick]

Everything against a stock ``rpyc_classic`` on 127.0.0.1, jupyter_rsym in a
real kernel, baselines measured in the same run, medians over repeats:

* bulk: 64 MB of random bytes and a 64 MB float64 array, pulled
  (``r.pull``) and pushed (``r.push``), timed inside the cell, against the
  same bytes through a raw TCP socket between two processes into a fresh
  memory (``raw_pull``/``raw_push``); the ratio is the share of raw socket
  throughput.  Peak memory of each side during one transfer, in a fresh
  kernel and server (``VmHWM`` from ``/proc``, reset just before), in
  payloads: the receiver's growth, the sender's growth plus the payload it
  holds (quick mode: one case);
* round trips per user action through ``DelayProxy`` (tests/netproxy.py)
  adding 10 ms each way: (time delayed - time undelayed) / 20 ms, so the
  kernel's own overhead cancels out; ``%rconnect`` to a stock server (agent
  present, and sent), and to ``jupyter-rsym serve`` with a token;
* compression (``RSym.compress``) on/off for random and compressible data,
  on loopback and through the 20 ms link: a pull's time with / without;
* ipyparallel (the ``bench`` extra) on one local engine: an empty ``%%px``
  cell vs an empty ``%%remote`` cell, and its ``pull``/``push`` of the same
  64 MB.  Quick mode skips ipyparallel and compression.
"""

import importlib.util
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness import KernelHarness  # noqa: E402
from tests.netproxy import DelayProxy  # noqa: E402
from tests.servers import ClassicServer, RsymServer  # noqa: E402

MB = 1 << 20
DELAY = 0.010  # one way: RTT 20 ms

RAW_PEER = textwrap.dedent("""
    import os, socket, sys
    size = int(sys.argv[1])
    server = socket.create_server(("127.0.0.1", 0))
    print(server.getsockname()[1], flush=True)
    conn, _ = server.accept()
    data = os.urandom(size)
    while True:
        command = conn.recv(1)
        if command == b"P":      # pull: send the payload
            conn.sendall(data)
        elif command == b"S":    # push: receive into fresh memory, then ack
            data_in = conn.recv(size, socket.MSG_WAITALL)
            assert len(data_in) == size
            del data_in
            conn.sendall(b"K")
        else:
            break
""")


def raw_socket(size, repeats):
    """Median seconds to move ``size`` bytes each way through a raw loopback
    socket: ``sendall`` of a bytes object, received with one ``recv(size,
    MSG_WAITALL)`` into fresh memory (one copy, no zero-filling first)."""
    peer = subprocess.Popen([sys.executable, "-c", RAW_PEER, str(size)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(peer.stdout.readline())
        sock = socket.create_connection(("127.0.0.1", port))
        payload = bytes(size)

        def pull():  # the fastest stdlib receive: one copy, straight into a new bytes
            sock.sendall(b"P")
            assert len(sock.recv(size, socket.MSG_WAITALL)) == size

        def push():
            sock.sendall(b"S")
            sock.sendall(payload)
            sock.recv(1)

        return {"raw_pull": median_time(pull, repeats), "raw_push": median_time(push, repeats)}
    finally:
        sock.close()
        peer.wait(10)


def median_time(func, repeats):
    """``run.median_time`` after one warm-up call."""
    from benchmarks.run import median_time as median

    func()
    return median(func, repeats)


def memory(pid):
    """(VmRSS, VmHWM) of a process, in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


def reset_peak(pid):
    Path(f"/proc/{pid}/clear_refs").write_text("5")


BULK_SETUP = """
import gc, os, time, statistics, numpy as np
blob = os.urandom({size})
arr = np.random.default_rng(0).random({size} // 8)
def timed(func, repeats):
    func()  # warm up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = func()
        samples.append(time.perf_counter() - start)
        del value
    return statistics.median(samples)
"""


def bulk(kernel, size, repeats):
    """Median pull and push times, in a kernel connected as ``r``."""
    kernel.ok(BULK_SETUP.format(size=size))
    kernel.ok(f"%%remote\n{BULK_SETUP.format(size=size)}")
    results = {}
    for kind in ("blob", "arr"):
        cell = kernel.ok(
            f"print(timed(lambda: r.pull('{kind}'), {repeats}), timed(lambda: r.push({kind}_copy={kind}), {repeats}))"
        )
        pull, push = map(float, cell.stdout.split())
        results[f"rsym_pull_{kind}"], results[f"rsym_push_{kind}"] = pull, push
        # the cell path: %%remote -o / -i around an empty cell (one request more than r.pull/r.push)
        cell = kernel.ok(
            f"print(timed(lambda: get_ipython().run_cell_magic('remote', '-o {kind}={kind}_out', 'pass'), "
            f"{repeats}), timed(lambda: get_ipython().run_cell_magic('remote', '-i {kind}_in={kind}', "
            f"'pass'), {repeats}))"
        )
        pull, push = map(float, cell.stdout.split())
        results[f"cell_pull_{kind}"], results[f"cell_push_{kind}"] = pull, push
    kernel.ok("%%remote\nblob_copy = arr_copy = blob_in = arr_in = None")
    kernel.ok("blob_out = arr_out = None")
    return results


def peak_memory(kind, direction, size):
    """Peak memory of both sides during one transfer, in payloads, measured in
    a fresh kernel and server (a process that moved data before keeps freed
    memory resident and would hide the peak)."""
    with ClassicServer() as server:
        kernel = KernelHarness()
        try:
            kernel.ok(f"%load_ext jupyter_rsym\n%rconnect {server.address}")
            setup = (
                BULK_SETUP.format(size=size)
                .replace("blob = os.urandom", "blob = None and os.urandom")
                .replace("arr = np.random", "arr = None and np.random")
            )
            kernel.ok(setup)
            kernel.ok(f"%%remote\n{setup}")
            sender = "%%remote\n" if direction == "pull" else ""
            make = {"blob": f"blob = os.urandom({size})", "arr": f"arr = np.random.default_rng(0).random({size} // 8)"}
            kernel.ok(sender + make[kind] + "\ngc.collect()")
            kernel.ok("gc.collect()")
            kernel_pid = int(kernel.ok("print(os.getpid())").stdout)
            pids = (kernel_pid, server.process.pid)
            base = {pid: memory(pid)[0] for pid in pids}
            for pid in pids:
                reset_peak(pid)
            kernel.ok(f"got = r.pull('{kind}')" if direction == "pull" else f"r.push({kind}_copy={kind})")
            grown = {pid: memory(pid)[1] - base[pid] for pid in pids}
        finally:
            kernel.shutdown()
    sending, receiving = (server.process.pid, kernel_pid) if direction == "pull" else pids
    return {
        f"peak_{direction}_{kind}_sender": round((grown[sending] + size) / size, 2),
        f"peak_{direction}_{kind}_receiver": round(grown[receiving] / size, 2),
    }


ACTIONS = {  # name: (timed action, untimed clean-up)
    "tab_builtins": (lambda k: k.complete("far.builtins."), None),
    "tab_os_pa": (lambda k: k.complete("far.modules.os.pa"), None),
    "inspect_join": (lambda k: k.inspect("far.modules.os.path.join"), None),
    "empty_remote_cell": (lambda k: k.ok("%%remote --on far\npass"), None),
}


def round_trips(kernel, server, repeats, fresh_servers):
    """Round trips per action through a proxy adding ``DELAY`` each way."""
    proxy = DelayProxy(("127.0.0.1", server.port))
    ours = RsymServer().start()
    ours_proxy = DelayProxy(("127.0.0.1", ours.port))
    try:
        kernel.ok(f"%rconnect {proxy.address} --as far")
        actions = {
            "rconnect": (lambda k: k.ok(f"%rconnect {proxy.address} --as far2"), lambda k: k.ok("%rdisconnect far2")),
            "rconnect_rsym_serve_token": (
                lambda k: k.ok(f"%rconnect {ours_proxy.address} --token {ours.token} --as tok"),
                lambda k: k.ok("%rdisconnect tok"),
            ),
            **ACTIONS,
        }
        found = {}
        for name, (action, cleanup) in actions.items():
            times = {0.0: [], DELAY: []}
            for _ in range(repeats):
                for delay in times:
                    proxy.delay = ours_proxy.delay = delay
                    start = time.perf_counter()
                    action(kernel)
                    times[delay].append(time.perf_counter() - start)
                    if cleanup:
                        cleanup(kernel)
            found[name] = (statistics.median(times[DELAY]) - statistics.median(times[0.0])) / (2 * DELAY)
        kernel.ok("%rdisconnect far")
    finally:
        proxy.close()
        ours_proxy.close()
        ours.stop()
    if fresh_servers:
        found["rconnect_sending_agent"] = _first_connect(kernel, fresh_servers)
    return found


def _first_connect(kernel, count):
    """``%rconnect`` to a server process that has never seen the agent."""
    times = {0.0: [], DELAY: []}
    for _ in range(count):
        for delay in times:
            with ClassicServer() as server:
                proxy = DelayProxy(("127.0.0.1", server.port), delay=delay)
                try:
                    start = time.perf_counter()
                    kernel.ok(f"%rconnect {proxy.address} --as fresh")
                    times[delay].append(time.perf_counter() - start)
                    kernel.ok("%rdisconnect fresh")
                finally:
                    proxy.close()
    return (statistics.median(times[DELAY]) - statistics.median(times[0.0])) / (2 * DELAY)


def compression(kernel, server, size, repeats):
    """Seconds to pull random / compressible data, compression on and off,
    on loopback and through the 20 ms link."""
    make = (
        f"%%remote --on z\nimport os, numpy as np\nrandom_data = os.urandom({size})\n"
        f"compressible = np.tile(np.arange(1000.0), {size} // 8000)"
    )
    proxy = DelayProxy(("127.0.0.1", server.port), delay=DELAY)
    found = {}
    try:
        for link, address in (("loopback", server.address), ("20ms", proxy.address)):
            for compress in (False, True):
                kernel.ok(f"%config RSym.compress = {compress}\n%rconnect {address} --as z")
                kernel.ok(make)
                for data in ("random_data", "compressible"):
                    seconds = float(kernel.ok(f"print(timed(lambda: z.pull('{data}'), {repeats}))").stdout)
                    found[f"pull_{data}_{link}_{'zlib' if compress else 'plain'}"] = seconds
                kernel.ok("%rdisconnect z")
    finally:
        kernel.ok("%config RSym.compress = False")
        proxy.close()
    return found


IPP_SETUP = """
import ipyparallel as ipp
cluster = ipp.Cluster(n=1, log_level=40)
rc = cluster.start_and_connect_sync()
rc.wait_for_engines(1, timeout=120)
engine = rc[0]
rc[:].activate()
engine.execute("import os, numpy as np\\nblob = os.urandom({size})\\n"
               "arr = np.random.default_rng(0).random({size} // 8)", block=True)
"""


def ipyparallel(kernel, size, repeats):
    """ipyparallel's %%px and pull/push on one local engine, beside ours."""
    kernel.ok(IPP_SETUP.format(size=size), timeout=180)
    try:
        found = {
            "px_empty_cell": median_time(lambda: kernel.ok("%%px\npass"), repeats),
            "remote_empty_cell": median_time(lambda: kernel.ok("%%remote\npass"), repeats),
        }
        for kind in ("blob", "arr"):
            cell = kernel.ok(
                f"print(timed(lambda: engine.pull('{kind}', block=True), {repeats}), "
                f"timed(lambda: engine.push({{'{kind}_copy': {kind}}}, block=True), {repeats}))"
            )
            found[f"ipp_pull_{kind}"], found[f"ipp_push_{kind}"] = map(float, cell.stdout.split())
    finally:
        kernel.ok("cluster.stop_cluster_sync()", timeout=60)
    return found


def run(quick):
    size = 8 * MB if quick else 64 * MB
    repeats = 3 if quick else 7
    have_ipp = importlib.util.find_spec("ipyparallel") is not None
    results = raw_socket(size, repeats)
    with ClassicServer() as server:
        kernel = KernelHarness()
        try:
            kernel.ok(f"%load_ext jupyter_rsym\n%rconnect {server.address}")
            results.update(bulk(kernel, size, repeats))
            rts = round_trips(kernel, server, repeats, 0 if quick else 3)
            if quick:
                print("farlinks --quick: compression and ipyparallel skipped")
            else:
                results.update(compression(kernel, server, 16 * MB, 3))
                if have_ipp:
                    results.update(ipyparallel(kernel, size, repeats))
                else:
                    print("farlinks: ipyparallel not installed (pip install -e '.[bench]'): skipped")
        finally:
            kernel.shutdown()
    cases = [("arr", "pull")] if quick else [(k, d) for k in ("blob", "arr") for d in ("pull", "push")]
    for kind, direction in cases:
        results.update(peak_memory(kind, direction, size))
    ratios = {}
    for kind, label in (("blob", "random bytes"), ("arr", "float64 array")):
        for direction in ("pull", "push"):
            ratios[f"{direction} {size // MB} MB {label}: share of raw socket throughput"] = (
                results[f"raw_{direction}"] / results[f"rsym_{direction}_{kind}"]
            )
            option = "-o" if direction == "pull" else "-i"
            ratios[f"%%remote {option} {size // MB} MB {label}: share of raw socket throughput"] = (
                results[f"raw_{direction}"] / results[f"cell_{direction}_{kind}"]
            )
    for key in [k for k in results if k.startswith("peak_")]:
        ratios[f"{key}: peak memory / payload"] = results.pop(key)
    for name, value in rts.items():
        ratios[f"round trips: {name}"] = value
    for key in [k for k in results if k.startswith("pull_") and k.endswith("_zlib")]:
        ratios[f"{key[:-5]}: time with / without compression"] = results[key] / results[key[:-5] + "_plain"]
    if "px_empty_cell" in results:
        ratios["empty cell: %%remote / %%px"] = results["remote_empty_cell"] / results["px_empty_cell"]
        for kind in ("blob", "arr"):
            for direction in ("pull", "push"):
                ratios[f"{direction} {kind}: ipyparallel time / jupyter_rsym time"] = (
                    results[f"ipp_{direction}_{kind}"] / results[f"rsym_{direction}_{kind}"]
                )
    return results, ratios
