"""Fan-out at scale: one ``%%remote --on ...`` cell on N local servers at once.

N stock ``rpyc_classic`` servers on loopback (32; 4 with ``--quick``), one
kernel connected to each of them twice: directly (``h0..``) and through a
delaying proxy each (``p0..``, 10 ms each way, so 20 ms added per round
trip; ``tests/netproxy.py``).  Cells are timed inside the kernel (the
kernel's own overhead is excluded), medians over repeats:

* ``fanout_sleep_1s``: a cell that sleeps 1 s remotely, on all N hosts;
* ``fanout_empty_direct`` / ``fanout_empty_far``: an empty cell on all N
  hosts, directly and through the proxies;
* ``fanout_empty_proxied``: the same through the proxies set to no delay
  (for reference: the proxies' own CPU, in this process, competes with the
  kernel and the servers on a small machine);
* ``single_empty_direct``: an empty ``%%remote`` cell on one host;
* ``rtt_added``: what the delay adds to one round trip (``ping`` through a
  delaying proxy minus through the same proxy without delay).

Timed cells are 0.2 s apart, as cells a user runs are: the notebook's
socket has Nagle's algorithm on (``transport.py``), so a request sent
within a delayed ACK (~40 ms) of the notebook's previous write (here, its
reply to the last cell's ``done`` report) waits for that ACK.

Ratios: sleep / 1 s (concurrent: about 1, sequential would be N);
(far - direct) / rtt_added (round trips an empty fan-out costs: about 1,
not N); direct / N / single (local cost per host, against a whole
single-host cell); notebook threads after / before the cells.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness import KernelHarness  # noqa: E402
from tests.netproxy import DelayProxy  # noqa: E402
from tests.servers import ClassicServer  # noqa: E402

DELAY = 0.010  # one way
PAUSE = 0.2  # seconds between timed cells

TIMER = """
import time, statistics, threading
def rsym_timed(line, cell, repeats):
    ip = get_ipython()
    samples = []
    for _ in range(repeats):
        time.sleep(PAUSE)  # as between cells a user runs (see the module docstring)
        start = time.perf_counter()
        ip.run_cell_magic("remote", line, cell)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)
"""


def run(quick):
    hosts, repeats = (4, 3) if quick else (32, 15)
    servers, proxies, kernel = [], [], None
    try:
        for _ in range(hosts):
            servers.append(ClassicServer().start())
        proxies = [DelayProxy(("127.0.0.1", s.port), delay=DELAY) for s in servers]
        kernel = KernelHarness()
        kernel.ok(f"%load_ext jupyter_rsym\nPAUSE = {PAUSE}\n" + TIMER)
        for i, (server, proxy) in enumerate(zip(servers, proxies)):
            kernel.ok(f"%rconnect {server.address} --as h{i}\n%rconnect {proxy.address} --as p{i}", timeout=60)
        direct = ",".join(f"h{i}" for i in range(hosts))
        far = ",".join(f"p{i}" for i in range(hosts))
        threads_before = _value(kernel, "threading.active_count()")
        for names in (direct, far):  # first use fetches each session's start function
            kernel.ok(f"%%remote --on {names}\npass", timeout=60)

        def timed(line, cell, count=repeats):
            return _value(kernel, f"rsym_timed({line!r}, {cell!r}, {count})", timeout=300)

        results = {
            "hosts": hosts,
            "fanout_sleep_1s": timed(f"--on {direct}", "import time\ntime.sleep(1)", max(3, repeats // 2)),
            "fanout_empty_direct": timed(f"--on {direct}", "pass"),
            "fanout_empty_far": timed(f"--on {far}", "pass"),
            "single_empty_direct": timed("--on h0", "pass", repeats * 3),
        }
        ping = "statistics.median(p0.ping() for _ in range(20))"
        far_ping = _value(kernel, ping)
        for proxy in proxies:
            proxy.delay = 0.0
        results["fanout_empty_proxied"] = timed(f"--on {far}", "pass")
        results["rtt_added"] = far_ping - _value(kernel, ping)
        results["kernel_threads_before"] = threads_before
        results["kernel_threads_after"] = _value(kernel, "threading.active_count()")
    finally:
        if kernel is not None:
            kernel.shutdown()
        for proxy in proxies:
            proxy.close()
        for server in servers:
            server.stop()
    ratios = {
        "fanout_sleep_1s / 1 s": results["fanout_sleep_1s"] / 1.0,
        "(fanout_empty_far - fanout_empty_direct) / rtt_added": (
            results["fanout_empty_far"] - results["fanout_empty_direct"]
        )
        / results["rtt_added"],
        "fanout_empty_direct / hosts / single_empty_direct": results["fanout_empty_direct"]
        / hosts
        / results["single_empty_direct"],
        "kernel_threads_after / kernel_threads_before": results["kernel_threads_after"]
        / results["kernel_threads_before"],
    }
    for name in ("hosts", "kernel_threads_before", "kernel_threads_after"):
        results[name] = int(results[name])
    return results, ratios


def _value(kernel, expression, timeout=60):
    return float(kernel.ok(f"print({expression})", timeout=timeout).stdout)


if __name__ == "__main__":
    from benchmarks.run import show

    show(*run("--quick" in sys.argv))
