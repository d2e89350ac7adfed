"""Dask: ``%%remote --on dask`` against Dask's own ``client.run`` on the same workers.

(Not ``benchmarks/dask.py``: with ``benchmarks/`` first on ``sys.path``, as
when ``run.py`` runs as a script, that name would shadow the ``dask``
package itself, in this process and in the workers it spawns.)

A ``LocalCluster`` (one thread per worker, worker processes) of 4, 16 and
32 workers (2 with ``--quick``), started here; one kernel connects to it
with ``%rconnect dask://`` and holds a ``Client`` of its own.  Timed
inside the kernel, medians over repeats, in the same run:

* ``connect``: ``%rconnect dask://`` (plugin registered, a server started
  in every worker, a session to each) vs ``client_and_run``:
  ``Client(address)`` plus one ``client.run(lambda: None)``;
* ``fanout_empty`` vs ``client_run_empty``: an empty cell on every worker
  vs ``client.run(lambda: None)`` (which goes through the scheduler; we
  go straight to the workers), timed in alternation;
* ``fanout_sleep_1s`` vs ``client_run_sleep_1s``: a cell sleeping 1 s
  remotely vs ``client.run(time.sleep, 1)``;
* ``kernel_threads``: the kernel's threads with the group connected, vs
  before (one reader thread serves every session: not one per worker).

Ratios: fanout_empty / client_run_empty (goal: at most 1), fanout_sleep_1s
/ 1 s (goal at 32: at most 1.1), connect / client_and_run.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness import KernelHarness  # noqa: E402

PAUSE = 0.2  # seconds between timed cells, as benchmarks/fanout.py

TIMER = """
import time, statistics, threading
from distributed import Client
def interleaved(ours, theirs, repeats):
    samples = ([], [])
    for _ in range(repeats):
        for func, kept in zip((ours, theirs), samples):
            time.sleep(PAUSE)
            start = time.perf_counter()
            func()
            kept.append(time.perf_counter() - start)
    return statistics.median(samples[0]), statistics.median(samples[1])
def rsym_cell(cell):
    ip = get_ipython()
    return lambda: ip.run_cell_magic("remote", "--on dask", cell)
def connect_time(address):
    start = time.perf_counter()
    get_ipython().run_line_magic("rconnect", "dask://" + address)
    return time.perf_counter() - start
def client_and_run(address):
    start = time.perf_counter()
    with Client("tcp://" + address, set_as_default=False) as c:
        c.run(lambda: None)
        return time.perf_counter() - start
"""


def one_size(workers, repeats):
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address.split("://", 1)[1]
        kernel = KernelHarness()
        try:
            kernel.ok(f"%load_ext jupyter_rsym\nPAUSE = {PAUSE}\n" + TIMER)
            threads_before = _value(kernel, "threading.active_count()")
            baseline = _value(kernel, f"client_and_run({address!r})", timeout=300)
            connect = _value(kernel, f"connect_time({address!r})", timeout=300)
            kernel.ok(f"client = Client('tcp://{address}', set_as_default=False)", timeout=120)
            kernel.ok("%%remote --on dask\npass", timeout=120)  # first use fetches start functions
            empty = _pair(kernel, "rsym_cell('pass')", "lambda: client.run(lambda: None)", repeats)
            slept = _pair(
                kernel,
                "rsym_cell('import time; time.sleep(1)')",
                "lambda: client.run(time.sleep, 1)",
                max(3, repeats // 3),
            )
            results = {
                "connect": connect,
                "client_and_run": baseline,
                "fanout_empty": empty[0],
                "client_run_empty": empty[1],
                "fanout_sleep_1s": slept[0],
                "client_run_sleep_1s": slept[1],
                "kernel_threads_before": threads_before,
                "kernel_threads_connected": _value(kernel, "threading.active_count()"),
            }
            kernel.ok("%rdisconnect dask\nclient.close()", timeout=120)
        finally:
            kernel.shutdown()
    return results


def run(quick):
    sizes, repeats = ((2,), 3) if quick else ((4, 16, 32), 21)
    results, ratios = {}, {}
    for workers in sizes:
        found = one_size(workers, repeats)
        for name, value in found.items():
            results[f"{name}@{workers}"] = int(value) if name.startswith("kernel_threads") else value
        ratios[f"fanout_empty / client_run_empty @{workers}"] = found["fanout_empty"] / found["client_run_empty"]
        ratios[f"fanout_sleep_1s / 1 s @{workers}"] = found["fanout_sleep_1s"]
        ratios[f"connect / client_and_run @{workers}"] = found["connect"] / found["client_and_run"]
    return results, ratios


def _pair(kernel, ours, theirs, repeats):
    """Medians of ``ours()`` and ``theirs()`` timed in alternation (drift and
    background load fall on both alike)."""
    line = kernel.ok(f"print(*interleaved({ours}, {theirs}, {repeats}))", timeout=600).stdout
    return tuple(float(value) for value in line.strip().splitlines()[-1].split())


def _value(kernel, expression, timeout=60):
    return float(kernel.ok(f"print({expression})", timeout=timeout).stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    from benchmarks.run import show

    show(*run("--quick" in sys.argv))
