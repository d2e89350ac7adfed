"""Connect cost: ``%rconnect`` against ``jupyter-rsym serve`` vs rpyc's own connect.

    python benchmarks/run.py --only connect

* ``rpyc_classic_connect``: ``rpyc.classic.connect`` to a stock ``rpyc_classic``
  (plain TCP), then close;
* ``rpyc_ssl_connect``: ``rpyc.classic.ssl_connect`` (checking the server's
  certificate against the CA) to a stock ``rpyc_classic`` serving TLS;
* ``rsym_connect_token``: ``%rconnect HOST:PORT --token T`` to ``jupyter-rsym
  serve`` in a real kernel, timed inside the cell: two connections (the
  session and its side connection for interrupts), each proving the token,
  the agent found, not sent;
* ``rsym_connect_tls_token``: the same over TLS (``--ca``);
* ``rsym_connect_stock``: ``%rconnect`` to the stock ``rpyc_classic`` (the
  agent already there from the warm-up): the session's own set-up, without
  token or TLS, to show what the server's handshake adds.

Medians over repeats; the disconnect is not timed.  Goal: each ratio <= 2.
"""

import statistics
import tempfile
import time

import rpyc

from tests.certs import make_tls_files
from tests.harness import KernelHarness
from tests.servers import ClassicServer, RsymServer


def median_connect(connect, repeats):
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        conn = connect()
        samples.append(time.perf_counter() - start)
        conn.close()
    return statistics.median(samples)


def in_kernel(lines, repeats, warm_up, setup=""):
    """Median seconds of each ``%rconnect`` line, timed in the kernel (after ``setup`` code)."""
    kernel = KernelHarness()
    try:
        kernel.ok(
            "%load_ext jupyter_rsym\n"
            + setup
            + f"%rconnect {warm_up}\n%rdisconnect r\n"  # the stock server keeps the agent
            "import time, statistics\n"
            "from IPython.utils.capture import capture_output\n"
            "def timed(line, repeats):\n"
            "    samples = []\n"
            "    for _ in range(repeats):\n"
            "        with capture_output():\n"
            "            start = time.perf_counter()\n"
            "            get_ipython().run_line_magic('rconnect', line)\n"
            "            samples.append(time.perf_counter() - start)\n"
            "            get_ipython().run_line_magic('rdisconnect', 'r')\n"
            "    return statistics.median(samples)\n"
        )
        timings = {}
        for name, line in lines.items():
            cell = kernel.ok(f"print(timed({line!r}, {repeats}))", timeout=120)
            # on a loaded machine the stream may trail the cell's idle status
            timings[name] = float(cell.wait_for(lambda c: c.stdout.strip(), 10, "the timing").stdout)
        return timings
    finally:
        kernel.shutdown()


def run(quick):
    repeats = 5 if quick else 30
    files = make_tls_files(tempfile.mkdtemp(prefix="rsym-bench-"))
    ca = str(files.ca)
    tls_args = ["--tls-cert", str(files.server_cert), "--tls-key", str(files.server_key)]
    stock_tls_args = ["--ssl-certfile", str(files.server_cert), "--ssl-keyfile", str(files.server_key)]
    with (
        ClassicServer() as stock,
        ClassicServer(extra_args=stock_tls_args) as stock_tls,
        RsymServer() as ours,
        RsymServer(extra_args=tls_args) as ours_tls,
    ):
        median_connect(lambda: rpyc.classic.connect(stock.host, stock.port), 2)  # warm up
        results = {
            "rpyc_classic_connect": median_connect(lambda: rpyc.classic.connect(stock.host, stock.port), repeats),
            "rpyc_ssl_connect": median_connect(
                lambda: rpyc.classic.ssl_connect(stock_tls.host, stock_tls.port, ca_certs=ca), repeats
            ),
        }
        results.update(
            in_kernel(
                {
                    "rsym_connect_token": f"{ours.address} --token {ours.token}",
                    "rsym_connect_tls_token": f"{ours_tls.address} --token {ours_tls.token} --ca {ca}",
                    "rsym_connect_stock": stock.address,
                },
                repeats,
                warm_up=stock.address,
            )
        )
    ratios = {
        "rsym_connect_token / rpyc_classic_connect": results["rsym_connect_token"] / results["rpyc_classic_connect"],
        "rsym_connect_tls_token / rpyc_ssl_connect": results["rsym_connect_tls_token"] / results["rpyc_ssl_connect"],
        "rsym_connect_token / rsym_connect_stock": results["rsym_connect_token"] / results["rsym_connect_stock"],
    }
    return results, ratios
