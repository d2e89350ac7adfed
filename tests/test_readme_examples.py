"""Issue 26, part 2: README's examples run as written (magic lines with trailing
comments included); only the server address is the test server's."""

import re
from pathlib import Path

import pytest

from .harness import KernelHarness
from .test_fanout import by_host

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)
README_ADDRESS = "127.0.0.1:18812"


def block(starting):
    return next(b for b in BLOCKS if b.startswith(starting))


@pytest.fixture(scope="module")
def fresh_kernel():
    harness = KernelHarness()
    harness.ok("%load_ext jupyter_rsym")  # each test may run first (the first example loads it too)
    yield harness
    harness.shutdown()


def test_the_first_example_runs_as_written(fresh_kernel, classic_server):
    server = classic_server
    first = block("%load_ext jupyter_rsym\n%rconnect")
    assert "%rconnect 127.0.0.1:18812            # host[:port]" in first  # the comment is there
    cell = fresh_kernel.ok(first.replace(README_ADDRESS, server.address))
    assert "hi, this is g, executing locally 9" in cell.stdout
    assert cell.result["text/plain"].startswith("[0, 1, 8, 27")
    second = fresh_kernel.ok(block("%%remote -i g -o cubes"))
    assert second.stdout.startswith("runs over there, prints here\n")
    assert fresh_kernel.ok("cubes").result["text/plain"] == "[0, 1, 8]"


def test_moving_data_and_many_hosts_run_as_written(fresh_kernel, classic_server, start_server):
    gpu = start_server()
    fresh_kernel.ok(f"%rconnect {classic_server.address}")  # r, as README's first example connects it
    fresh_kernel.ok(f"%rconnect {gpu.address} --as gpu\n%rdefault r")
    fresh_kernel.ok(
        "import numpy as np\nframe = np.arange(4.0)\nx, y = 1, 2\n"
        "%remote --on r globals().update(result=[1, 2], model=len) or 0"
    )
    moving = block("%rpush frame ")
    assert "# the remote gets a copy" in moving
    fresh_kernel.ok(moving)
    assert fresh_kernel.ok("%remote --on gpu float(image.sum())").result["text/plain"] == "6.0"
    assert fresh_kernel.ok("result, model('abc')").result["text/plain"] == "([1, 2], 3)"
    hosts = fresh_kernel.ok(block("%%remote --on all -o pid"))
    # each host's lines under its label (one label covers a run of lines from one host)
    assert by_host(hosts.stdout) == {"r": "step 1\nstep 2\n", "gpu": "step 1\nstep 2\n"}
    assert fresh_kernel.ok("sorted(pid)").result["text/plain"] == "['gpu', 'r']"


def test_comments_after_magic_options(fresh_kernel, start_server):
    server = start_server()
    fresh_kernel.ok(f"%rconnect {server.address} --as noted  # a comment, not an argument")
    fresh_kernel.ok("word = 'a # b'  # a notebook value\n%rpush word --on noted   # with a comment")
    value = fresh_kernel.ok("%remote --on noted word + ' # kept'  # the string's # stays")
    assert value.result["text/plain"] == "'a # b # kept'"
    cell = fresh_kernel.ok("%%remote --on noted  # comment on the cell magic line\nprint('ran')")
    assert cell.stdout == "ran\n"
    fresh_kernel.ok("%rdisconnect noted  # done")
