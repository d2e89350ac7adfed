"""Resume cost: round trips from a restored link to a resumed session.

    python benchmarks/run.py --only resume

A real kernel reaches ``jupyter-rsym serve`` (token) through a loopback
proxy that delays every chunk by ``DELAY`` s each way (``tests/netproxy.py``,
run inside the kernel so a cell can cut it).  Each sample cuts every
connection, waits until the session has noticed, and times
``r.resume()`` inside the cell: two new connections, each proving the
token, re-attached to the kept session.  The same is timed for a fresh
``%rconnect`` through the same proxy.  Measured without delay and with
it, so

* ``resume_round_trips`` = (delayed - undelayed) / RTT: what a resume costs
  on a far link, whatever the machine's speed;
* ``connect_round_trips``: the same for ``%rconnect`` (the baseline: a
  resume must not cost more than starting over).

Medians over repeats.
"""

from pathlib import Path

from tests.harness import KernelHarness
from tests.servers import RsymServer

ROOT = Path(__file__).resolve().parent.parent

KERNEL_SETUP = """
import sys, time, statistics
sys.path.insert(0, {root!r})
from tests.netproxy import DelayProxy
from IPython.utils.capture import capture_output
proxy = DelayProxy(("127.0.0.1", {port}))

def dropped():
    proxy.cut()
    deadline = time.monotonic() + 10
    while r.state != "lost":
        assert time.monotonic() < deadline, "the drop went unnoticed"
        time.sleep(0.002)

def timed_resume(repeats):
    samples = []
    for _ in range(repeats):
        dropped()
        start = time.perf_counter()
        r.resume()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)

def timed_connect(repeats):
    samples = []
    for _ in range(repeats):
        with capture_output():
            start = time.perf_counter()
            get_ipython().run_line_magic("rconnect", proxy.address + " --token {token} --as fresh")
            samples.append(time.perf_counter() - start)
            get_ipython().run_line_magic("rdisconnect", "fresh")
    return statistics.median(samples)
"""


def measure(kernel, what, repeats):
    cell = kernel.ok(f"print({what}({repeats}))", timeout=300)
    return float(cell.wait_for(lambda c: c.stdout.strip(), 10, "the timing").stdout)


def run(quick):
    repeats, delay = (3, 0.02) if quick else (15, 0.05)
    results = {}
    with RsymServer() as server:
        kernel = KernelHarness()
        try:
            kernel.ok(
                "%load_ext jupyter_rsym\n" + KERNEL_SETUP.format(root=str(ROOT), port=server.port, token=server.token)
            )
            kernel.ok(f"%rconnect {{proxy.address}} --token {server.token}")
            for label, one_way in (("undelayed", 0.0), ("delayed", delay)):
                kernel.ok(f"proxy.delay = {one_way}")
                measure(kernel, "timed_resume", 1)  # warm up
                results[f"resume_{label}"] = measure(kernel, "timed_resume", repeats)
                results[f"connect_{label}"] = measure(kernel, "timed_connect", repeats)
            kernel.ok("%rdisconnect --all\nproxy.close()")
        finally:
            kernel.shutdown()
    rtt = 2 * delay
    results["rtt"] = rtt
    resume = (results["resume_delayed"] - results["resume_undelayed"]) / rtt
    connect = (results["connect_delayed"] - results["connect_undelayed"]) / rtt
    ratios = {
        "resume_round_trips ((delayed - undelayed) / RTT)": resume,
        "connect_round_trips ((delayed - undelayed) / RTT)": connect,
        "resume_round_trips / connect_round_trips": resume / connect,
    }
    return results, ratios
