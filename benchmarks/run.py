"""Side-by-side ratios: raw TCP, raw rpyc, jupyter_rsym in a real kernel.

    python benchmarks/run.py            # full run: prints a table, stores benchmarks/results/RUN.json
    python benchmarks/run.py --quick    # small counts (used by the test suite to keep this working)

It runs from a source checkout (it uses ``tests/``'s servers and kernel
harness), not from an installed package.  Each run is stored as JSON in
``benchmarks/results/`` (committed): ``RUN.json`` named by its UTC time (and
``-quick`` / ``-SUITE`` for partial runs) and a copy as ``latest.json``.
Besides every value and ratio it records where and when it ran (``meta``:
date, machine, CPU, load average at the start and the end, Python and package
versions, the git commit), so README's Speed tables can name the run they come from.
``--output FILE`` writes there instead (and nothing into ``results/``).

Every number is a median over repeats and every jupyter_rsym number is
reported as a ratio to a baseline measured in the same run, against the same
kind of server (a stock ``rpyc_classic`` on 127.0.0.1):

* ``tcp_rtt``: one small message echoed over a raw TCP socket (the floor);
* ``rpyc_call``: one remote call with raw rpyc outside Jupyter;
* ``rpyc_map_per_callback``: the tutorial's ``map(f, range(n))`` with raw rpyc,
  per callback;
* ``rsym_map_per_callback``: the same inside a kernel with the extension
  loaded (timed inside the cell, so the kernel's own overhead is excluded);
  the two are interleaved, one raw run then one kernel run, ``map_rounds``
  times, against the same server, and each is the median of its runs;
* ``rsym_sync_callback_latency`` / ``rsym_async_callback_latency``: from the
  moment the remote calls a notebook function that prints (and flushes) to
  the moment the test client receives that output, for a nested call (a
  cell waits on the remote function that calls back) and for a spontaneous
  one (a remote thread, kernel idle);
* ``rsym_output_per_line`` vs ``rpyc_redirected_per_line``: remote prints
  shown in the notebook vs rpyc's ``redirected_stdio`` (one round trip per
  write), per line.

Further suites (one module each in ``benchmarks/``, listed in ``SUITES``)
have a ``run(quick) -> (results, ratios)`` and measure one concern each
against their own baselines; ``--only NAME`` runs one suite (``core`` is the
one above).
"""

import argparse
import datetime
import importlib
import importlib.metadata
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import rpyc
from rpyc.utils.classic import redirected_stdio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness import KernelHarness  # noqa: E402
from tests.servers import ClassicServer  # noqa: E402


def median_time(func, repeats):
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def tcp_rtt(count):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def echo():
        conn, _ = server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := conn.recv(64):
            conn.sendall(data)
        conn.close()

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    client = socket.create_connection(server.getsockname())
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def one():
        client.sendall(b"x" * 16)
        client.recv(64)

    result = median_time(lambda: [one() for _ in range(count)], 5) / count
    client.close()
    thread.join(2)
    server.close()
    return result


def raw_rpyc(conn, count, lines):
    remote_len = conn.builtins.len
    call = median_time(lambda: [remote_len(()) for _ in range(count)], 5) / count
    conn.execute(f"def spam():\n    for i in range({lines}):\n        print(i)")
    sink = open("/dev/null", "w")
    real_stdout = sys.stdout
    sys.stdout = sink
    try:
        with redirected_stdio(conn):
            start = time.perf_counter()
            conn.namespace["spam"]()
            redirected = (time.perf_counter() - start) / lines
    finally:
        sys.stdout = real_stdout
        sink.close()
    return {"rpyc_call": call, "rpyc_redirected_per_line": redirected}


def raw_map(conn, count):
    """The tutorial's ``map`` with raw rpyc: a function timing one run (warmed up)."""
    rlist = conn.builtins.range(count)
    remote_map = conn.modules.builtins.map

    def f(x):
        return x**3

    list(remote_map(f, rlist))

    def timed():
        start = time.perf_counter()
        list(remote_map(f, rlist))
        return time.perf_counter() - start

    return timed


def in_kernel(server, count, lines, repeats, raw_timed):
    kernel = KernelHarness()
    try:
        kernel.ok(f"%load_ext jupyter_rsym\n%rconnect {server.address}")
        kernel.ok(
            "import time, statistics\n"
            "def f(x):\n    return x**3\n"
            f"rlist = r.builtins.range({count})\n"
            "list(r.modules.builtins.map(f, rlist))\n"  # warm up
            "def timed():\n    s = time.perf_counter(); list(r.modules.builtins.map(f, rlist))\n"
            "    return time.perf_counter() - s\n"
        )
        # interleaved with raw rpyc's runs, so load that comes and goes hits both alike
        raw, mapped = [], []
        for _ in range(repeats):
            raw.append(raw_timed() / count)
            mapped.append(float(kernel.ok("print(timed())").stdout) / count)
        kernel.ok("import sys\ndef stamp(t):\n    print(t)\n    sys.stdout.flush()\nr.namespace['stamp'] = stamp")
        kernel.ok(
            "%%remote\nimport time, threading\n"
            "def fire():\n    stamp(time.time())\n"
            "def fire_later(delay):\n    threading.Timer(delay, fire).start()\n"
        )
        sync, spontaneous = [], []
        for _ in range(repeats):
            cell = kernel.ok("%remote fire()")
            sync.append(_stamp_latency(cell))
            # a callback from a remote timer lands in the cell that started the timer
            later = kernel.ok("%remote fire_later(0.05)")
            later.wait_for(lambda c: c.of_type("stream"), 10, "spontaneous stamp")
            spontaneous.append(_stamp_latency(later))
        kernel.ok(f"%%remote\ndef spam():\n    for i in range({lines}):\n        print(i)")
        before = int(kernel.ok("print(r.output_batches)").stdout)
        start = time.perf_counter()
        cell = kernel.ok("%remote spam()", timeout=300)
        per_line = (time.perf_counter() - start) / lines
        assert cell.stdout.count("\n") == lines
        batches = int(kernel.ok("print(r.output_batches)").stdout) - before
    finally:
        kernel.shutdown()
    return {
        "rpyc_map_per_callback": statistics.median(raw),
        "rsym_map_per_callback": statistics.median(mapped),
        "map_rounds": len(mapped),
        "rsym_sync_callback_latency": statistics.median(sync),
        "rsym_async_callback_latency": statistics.median(spontaneous),
        "rsym_output_per_line": per_line,
        "rsym_output_batches": batches,
    }


def _stamp_latency(cell, skip=0):
    message = cell.of_type("stream")[skip]
    # 'received' is monotonic; convert the remote wall-clock stamp via now()
    fired = float(message["content"]["text"].split()[0])
    offset = time.time() - time.monotonic()
    return message["received"] + offset - fired


SUITES = [
    "connect",
    "fanout",
    "rich",
    "ssh",
    "memory",
    "farlinks",
    "resume",
    "debugging",
    "daskfanout",
]  # module names in benchmarks/, each with run(quick) -> (results, ratios)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--only", choices=["core", *SUITES], help="run one suite only")
    parser.add_argument("--output", help="write the report to FILE only (default: a new file in results/)")
    args = parser.parse_args(argv)
    report = {"meta": meta(args), "results": {}, "ratios": {}, "suites": {}, "quick": args.quick}
    if args.only in (None, "core"):
        report["results"], report["ratios"] = core(args.quick)
        show(report["results"], report["ratios"])
    for name in SUITES:
        if args.only in (None, name):
            print(f"\n== {name}")
            results, ratios = importlib.import_module(f"benchmarks.{name}").run(args.quick)
            report["suites"][name] = {"results": results, "ratios": ratios}
            show(results, ratios)
    report["meta"]["machine"]["load_average_at_end"] = os.getloadavg()  # other work on the machine meanwhile
    text = json.dumps(report, indent=2) + "\n"
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
    else:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stored = RESULTS / f"{report['meta']['run']}.json"
        stored.write_text(text)
        shutil.copyfile(stored, RESULTS / "latest.json")
        print(f"\nstored as {stored.relative_to(ROOT)} (and results/latest.json)")
    return report


RESULTS = ROOT / "benchmarks" / "results"


def meta(args):
    """Where, when and with what this run ran."""
    now = datetime.datetime.now(datetime.UTC)
    name = now.strftime("%Y-%m-%dT%H%M%SZ") + ("-quick" if args.quick else "")
    name += f"-{args.only}" if args.only else ""

    def version(package):
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return None

    def git(*command):
        done = subprocess.run(["git", *command], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "run": name,
        "date": now.isoformat(timespec="seconds"),
        "command": " ".join(
            [
                "python benchmarks/run.py",
                *(["--quick"] if args.quick else []),
                *(["--only", args.only] if args.only else []),
            ]
        ),
        "quick": args.quick,
        "only": args.only,
        "machine": {
            "system": platform.platform(),
            "cpu": cpu,
            "cores": os.cpu_count(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "load_average_at_start": os.getloadavg(),
        },
        "versions": {
            "python": platform.python_version(),
            **{
                name: version(name)
                for name in (
                    "jupyter_rsym",
                    "rpyc",
                    "ipykernel",
                    "ipython",
                    "jupyter_client",
                    "pyzmq",
                    "numpy",
                    "ipyparallel",
                )
            },
        },
        "git": {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--", "jupyter_rsym"))},
    }


def _read(path):
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def show(results, ratios):
    print(f"{'measure':55} {'value':>12}")
    for name, value in results.items():
        shown = f"{value:>12d}" if isinstance(value, int) else f"{value * 1e6:>9.1f} us"
        print(f"{name:55} {shown}")
    print()
    for name, value in ratios.items():
        print(f"{name:55} {value:>12.2f}")


def core(quick):
    """The measurements of the module docstring, against a stock rpyc_classic."""
    count, lines, repeats = (50, 2000, 3) if quick else (2000, 100000, 15)
    with ClassicServer() as server:
        results = {"tcp_rtt": tcp_rtt(count * 5)}
        conn = rpyc.classic.connect("127.0.0.1", server.port)
        try:
            results.update(raw_rpyc(conn, count, min(lines, 20000)))
            results.update(in_kernel(server, count, lines, repeats, raw_map(conn, count)))
        finally:
            conn.close()
    ratios = {
        "rsym_map_per_callback / rpyc_map_per_callback": results["rsym_map_per_callback"]
        / results["rpyc_map_per_callback"],
        "rpyc_call / tcp_rtt": results["rpyc_call"] / results["tcp_rtt"],
        "rsym_map_per_callback / tcp_rtt": results["rsym_map_per_callback"] / results["tcp_rtt"],
        "rsym_async_callback_latency / rsym_sync_callback_latency": results["rsym_async_callback_latency"]
        / results["rsym_sync_callback_latency"],
        "rpyc_redirected_per_line / rsym_output_per_line": results["rpyc_redirected_per_line"]
        / results["rsym_output_per_line"],
    }
    return results, ratios


if __name__ == "__main__":
    main()
