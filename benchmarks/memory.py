"""Memory: what many cells leave behind, in the kernel and in the server.

In one run, against a stock ``rpyc_classic`` on 127.0.0.1, each cell
printing one line:

* ``kernel_growth_local_cells``: kernel RSS growth over N local cells, in a
  kernel without jupyter_rsym (the baseline);
* ``kernel_growth_remote_cells``: kernel RSS growth over N ``%%remote``
  cells (extension loaded, connected);
* ``server_growth_remote_cells``: the server's RSS growth over those N cells.

Growth is measured after a warm-up of the same cells and a ``gc.collect()``
on both sides, in bytes.  History is off (``store_history=False``) in both
kernels, so IPython's own per-cell records, which differ in length between
a local and a ``%%remote`` cell, do not count.  Goals (N = 10,000): kernel
within +1 MB of the local baseline, server <= +2 MB.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness import Cell, KernelHarness  # noqa: E402
from tests.servers import ClassicServer  # noqa: E402

LOCAL = "print(6 * 7)"
REMOTE = "%%remote\nprint(6 * 7)"
BATCH = 100  # cells sent before waiting for the last one (the kernel runs them in order)


def rss(pid):
    """Resident set size of process ``pid`` in bytes (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def run_cells(kernel, code, count):
    for start in range(0, count, BATCH):
        cells = [
            Cell(kernel, kernel.kc.execute(code, allow_stdin=False, store_history=False), code)
            for _ in range(min(BATCH, count - start))
        ]
        cells[-1].wait(120)
        failed = [c for c in cells if c.error]
        assert not failed, failed[0].error_text
        assert cells[-1].stdout == "42\n", cells[-1].summary()


def settle(kernel, remote=False):
    kernel.ok("import gc; gc.collect()")
    if remote:
        kernel.ok("r.modules.gc.collect()")


def growth(kernel, code, count, warmup, server=None):
    """(kernel growth, server growth) over ``count`` cells of ``code``."""
    kernel_pid = kernel.km.provisioner.pid
    run_cells(kernel, code, warmup)
    settle(kernel, server is not None)
    before = rss(kernel_pid), server and rss(server.process.pid)
    run_cells(kernel, code, count)
    settle(kernel, server is not None)
    after = rss(kernel_pid), server and rss(server.process.pid)
    return after[0] - before[0], server and after[1] - before[1]


def run(quick):
    count, warmup = (300, 100) if quick else (10000, 500)
    results = {"cells": count}
    kernel = KernelHarness()
    try:
        results["kernel_growth_local_cells"], _ = growth(kernel, LOCAL, count, warmup)
    finally:
        kernel.shutdown()
    with ClassicServer() as server:
        kernel = KernelHarness()
        try:
            kernel.ok(f"%load_ext jupyter_rsym\n%rconnect {server.address}")
            kernel_growth, server_growth = growth(kernel, REMOTE, count, warmup, server)
        finally:
            kernel.shutdown()
    results["kernel_growth_remote_cells"] = kernel_growth
    results["server_growth_remote_cells"] = server_growth
    mb = 1024 * 1024
    ratios = {
        "kernel growth, %%remote minus local cells (MB)": (kernel_growth - results["kernel_growth_local_cells"]) / mb,
        "server growth over the %%remote cells (MB)": server_growth / mb,
    }
    return results, ratios


if __name__ == "__main__":
    from benchmarks.run import show

    show(*run("--quick" in sys.argv))
