"""Remote pdb over a far link: what one step costs.

    python benchmarks/run.py --only debugging

A real kernel reaches a stock ``rpyc_classic`` through a loopback proxy
that delays every chunk by ``DELAY`` s each way (``tests/netproxy.py``, run
inside the kernel).  A remote function stops at ``breakpoint()`` and the
test client steps through it with ``n``, answering each ``(Pdb r)`` prompt
on the kernel's stdin channel; a sample is the time from sending ``n`` to
the next prompt's ``input_request`` (the step, its output shown in the
cell, the next question).  Measured without delay and with it, so

* ``step_round_trips`` = (delayed - undelayed) / RTT: what one pdb step
  costs on a far link, whatever the machine's speed (the goal: 1).

Medians over the steps.
"""

import statistics
import time
from pathlib import Path

from tests.harness import KernelHarness
from tests.servers import ClassicServer

ROOT = Path(__file__).resolve().parent.parent

KERNEL_SETUP = """
import sys
sys.path.insert(0, {root!r})
from tests.netproxy import DelayProxy
proxy = DelayProxy(("127.0.0.1", {port}))
"""


def stepping(lines):
    body = "".join(f"    total += {i}\n" for i in range(lines))
    return f"%%remote\ndef stepped():\n    total = 0\n    breakpoint()\n{body}    return total\n"


def median_step(kernel, steps):
    """Median seconds from answering ``n`` to the next pdb prompt."""
    cell = kernel.submit("%%remote\nstepped()", allow_stdin=True)
    kernel.input_request()
    samples = []
    for _ in range(steps):
        start = time.perf_counter()
        kernel.kc.input("n")
        kernel.input_request()
        samples.append(time.perf_counter() - start)
    kernel.kc.input("c")
    cell.wait().assert_ok()
    return statistics.median(samples)


def run(quick):
    steps, delay = (5, 0.01) if quick else (40, 0.01)
    results = {}
    with ClassicServer() as server:
        kernel = KernelHarness()
        try:
            kernel.ok("%load_ext jupyter_rsym\n" + KERNEL_SETUP.format(root=str(ROOT), port=server.port))
            kernel.ok("%rconnect {proxy.address}")
            kernel.ok(stepping(steps + 2))
            for label, one_way in (("undelayed", 0.0), ("delayed", delay)):
                kernel.ok(f"proxy.delay = {one_way}")
                median_step(kernel, 2)  # warm up
                results[f"step_{label}"] = median_step(kernel, steps)
            kernel.ok("%rdisconnect --all\nproxy.close()")
        finally:
            kernel.shutdown()
    rtt = 2 * delay
    results["rtt"] = rtt
    return results, {
        "step_round_trips ((delayed - undelayed) / RTT)": (results["step_delayed"] - results["step_undelayed"]) / rtt
    }
