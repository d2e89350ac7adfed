"""Rich output: remote display() against a local one and against a callback per display.

In one kernel with the extension loaded, against a stock ``rpyc_classic`` on
127.0.0.1, each timed from sending the cell to the kernel going idle with
every output received (medians over repeats), per display:

* ``local_display``: a local cell calling ``display(HTML(...))`` and ``print``
  in a loop (the floor: what the kernel itself costs);
* ``remote_display``: the same loop in a ``%%remote`` cell (displays travel
  batched with the prints);
* ``callback_display``: the same loop in a ``%%remote`` cell that calls the
  notebook's own ``display`` for each object (one round trip per display:
  what a user without jupyter_rsym's display would do);
* ``remote_display_batches``: round trips the remote loop took for its output.
"""

import statistics
import time

from tests.harness import KernelHarness
from tests.servers import ClassicServer

LOOP = "for i in range({n}):\n    print('row', i)\n    {show}(HTML(f'<b>{{i}}</b>'))\n"


def run(quick):
    count, repeats = (40, 3) if quick else (1000, 7)
    with ClassicServer() as server:
        kernel = KernelHarness()
        try:
            kernel.ok(f"%load_ext jupyter_rsym\n%rconnect {server.address}")
            kernel.ok("from IPython.display import HTML, display as local_display")
            kernel.ok("%%remote\nfrom IPython.display import HTML")
            cells = {
                "local_display": LOOP.format(n=count, show="local_display"),
                "remote_display": "%%remote\n" + LOOP.format(n=count, show="display"),
                "callback_display": "%%remote -i local_display\n" + LOOP.format(n=count, show="local_display"),
            }
            results = {name: _per_display(kernel, code, count, repeats) for name, code in cells.items()}
            before = int(kernel.ok("print(r.output_batches)").stdout)
            kernel.ok(cells["remote_display"], timeout=300)
            results["remote_display_batches"] = int(kernel.ok("print(r.output_batches)").stdout) - before
        finally:
            kernel.shutdown()
    ratios = {
        "remote_display / local_display": results["remote_display"] / results["local_display"],
        "callback_display / remote_display": results["callback_display"] / results["remote_display"],
    }
    return results, ratios


def _per_display(kernel, code, count, repeats):
    kernel.ok(code, timeout=300)  # warm up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        cell = kernel.ok(code, timeout=300)
        samples.append(time.perf_counter() - start)
        assert len(cell.displays) == count and cell.stdout.count("\n") == count, cell.summary()
    return statistics.median(samples) / count
