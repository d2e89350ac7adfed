"""The seed's callback, A/B: raw rpyc, a kernel on a baseline tree, a kernel on this tree.

    git archive OLD jupyter_rsym | tar -x -C /tmp/base
    python benchmarks/callback_ab.py --baseline /tmp/base [--count 1000] [--rounds 41]

The tutorial's ``map(f, range(n))`` per callback, against one stock
``rpyc_classic`` on 127.0.0.1: raw rpyc in this process, and in a real kernel
each (the baseline's ``jupyter_rsym`` first on its ``PYTHONPATH``; each kernel
sends its own agent).  They take turns, one run each per round, the kernels'
order alternating, so load from other work hits all alike; each time is
timed inside its process (the kernel's own overhead excluded) and reported
as the median over the rounds, with the CPU time per callback of each
client process and of the server (``/proc``, summed over the rounds).
Prints only; ``benchmarks/run.py`` keeps the stored runs.  From a source
checkout, as the other benchmarks.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import rpyc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness import KernelHarness  # noqa: E402
from tests.servers import ClassicServer  # noqa: E402


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def setup(count):
    return (
        "import time, jupyter_rsym\ndef f(x):\n    return x**3\n"
        f"rlist = r.builtins.range({count})\nlist(r.modules.builtins.map(f, rlist))\n"
        "def timed():\n    s = time.perf_counter(); list(r.modules.builtins.map(f, rlist))\n"
        "    return time.perf_counter() - s\n"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", required=True, help="a directory holding the baseline's jupyter_rsym/")
    parser.add_argument("--count", type=int, default=1000, help="callbacks per run")
    parser.add_argument("--rounds", type=int, default=41)
    args = parser.parse_args(argv)
    count = args.count
    with ClassicServer() as server:
        kernels = {"before": KernelHarness(env={"PYTHONPATH": args.baseline}), "after": KernelHarness()}
        conn = rpyc.classic.connect("127.0.0.1", server.port)
        try:
            for name, kernel in kernels.items():
                kernel.ok(f"%load_ext jupyter_rsym\n%rconnect {server.address}")
                kernel.ok(setup(count))
                print(name, kernel.ok("print(jupyter_rsym.__file__)").stdout.strip())

            def f(x):
                return x**3

            rlist, remote_map = conn.builtins.range(count), conn.modules.builtins.map
            list(remote_map(f, rlist))
            times = {"raw": [], **{name: [] for name in kernels}}
            cpu = {name: [0.0, 0.0] for name in times}
            pids = {"raw": os.getpid(), **{name: k.km.provisioner.pid for name, k in kernels.items()}}
            loads = [os.getloadavg()[0]]
            for i in range(args.rounds):
                order = list(kernels.items())[:: 1 if i % 2 else -1]
                for name, kernel in [("raw", None), *order]:
                    before = cpu_seconds(pids[name]), cpu_seconds(server.process.pid)
                    if kernel is None:
                        start = time.perf_counter()
                        list(remote_map(f, rlist))
                        seconds = time.perf_counter() - start
                    else:
                        seconds = float(kernel.ok("print(timed())").stdout)
                    times[name].append(seconds / count)
                    cpu[name][0] += cpu_seconds(pids[name]) - before[0]
                    cpu[name][1] += cpu_seconds(server.process.pid) - before[1]
            loads.append(os.getloadavg()[0])
        finally:
            conn.close()
            for kernel in kernels.values():
                kernel.shutdown()
    median = {name: statistics.median(values) for name, values in times.items()}
    runs = args.rounds * count
    print(
        f"{args.rounds} rounds of {count} callbacks; load average {loads[0]:.1f} at the start, {loads[1]:.1f} at the end"
    )
    for name in times:
        print(
            f"{name:7} {median[name] * 1e6:7.1f} us per callback ({median[name] / median['raw']:.2f}x raw rpyc); "
            f"CPU per callback: client {cpu[name][0] / runs * 1e6:.1f} us, server {cpu[name][1] / runs * 1e6:.1f} us"
        )
    print(f"after / before: {median['after'] / median['before']:.3f}")


if __name__ == "__main__":
    main()
