"""Moving values: %rpush / %rpull, r.push / r.pull, -i/-o; large values in pieces."""

import pytest

from jupyter_rsym.remote.bundle import MODULE_NAME

from .test_sessions import one_line_error
from .waits import wait_until

# Counts the requests the session ``r`` sends (each is a round trip; the
# garbage collector's asynchronous releases of proxies are not).
COUNTER = """
from rpyc.core import consts as _consts
_sent = []
def _counting(msg, seq, args, _send=r.connection._send):
    if msg == _consts.MSG_REQUEST and args[0] != _consts.HANDLE_DEL:
        _sent.append(args[0])
    return _send(msg, seq, args)
r.connection._send = _counting
"""


def requests_made(kernel, code):
    """Run ``code`` (must succeed) and return how many requests it sent on ``r``."""
    kernel.ok("_sent.clear()")
    kernel.ok(code)
    return int(kernel.ok("print(len(_sent))").stdout)


@pytest.fixture(scope="module")
def moving(connected):
    connected.ok(COUNTER + "import hashlib, numpy as np")
    connected.ok("%%remote\nimport hashlib, numpy as np")
    return connected


def digest_here(kernel, expression):
    return kernel.ok(f"print(hashlib.sha256(bytes({expression})).hexdigest())").stdout.strip()


def digest_there(kernel, expression):
    return kernel.ok(f"%remote hashlib.sha256(bytes({expression})).hexdigest()").result["text/plain"].strip("'")


def test_push_and_pull_keep_values_and_types(moving):
    moving.ok(
        "a, b, c = 7, 'text', {'k': [1, 2.5, None]}\n"
        "arr = np.arange(12, dtype=np.float32).reshape(3, 4)\n"
        "raw, buf = b'\\x00\\x01' * 50000, bytearray(b'xyz' * 40000)\n"
        "import array\nview = memoryview(array.array('q', range(5)))"
    )
    moving.ok("%rpush a b c arr raw buf view")
    there = moving.ok(
        "%%remote\nprint(a, b, c, type(arr).__name__, arr.dtype.name, arr.shape, arr.flags.writeable,"
        " type(raw).__name__, len(raw), type(buf).__name__, view.format, view.tolist())"
    ).stdout
    assert there == (
        "7 text {'k': [1, 2.5, None]} ndarray float32 (3, 4) True bytes 100000 bytearray q [0, 1, 2, 3, 4]\n"
    )
    moving.ok("%%remote\narr *= 2\nbuf[:1] = b'Q'\nraw2 = raw[::-1]")
    moving.ok("%rpull arr buf raw2=back")
    here = moving.ok(
        "print(arr.sum(), arr.flags.writeable, type(buf).__name__, bytes(buf[:3]), back == raw[::-1])"
    ).stdout
    assert here == "132.0 True bytearray b'Qyz' True\n"


def test_renames_and_other_sessions(moving, start_server):
    second = start_server()
    moving.ok(f"%rconnect {second.address} --as other\nlocal_name = [1, 2, 3]")
    moving.ok("%rpush local_name=remote_name --on other")
    assert moving.ok("%remote --on other remote_name").result["text/plain"] == "[1, 2, 3]"
    moving.ok("%rpull remote_name=fetched --on other")
    assert moving.ok("fetched").result["text/plain"] == "[1, 2, 3]"
    moving.ok("%rdisconnect other")


def test_large_values_move_in_pieces_intact(moving):
    moving.ok("%config RSym.chunk_bytes = 65536")
    try:
        moving.ok(
            "import os\nbig = os.urandom(1_000_003)\n"
            "grid = np.random.default_rng(1).random((250, 500))\n"
            "mixed = {'grid': grid, 'blob': big, 'n': 3}"
        )
        # about 16 + 16 pieces each way; each piece is a request
        assert requests_made(moving, "%rpush big grid mixed") > 40
        assert digest_here(moving, "big") == digest_there(moving, "big")
        assert digest_here(moving, "grid") == digest_there(moving, "grid")
        assert (
            moving.ok("%remote bool((mixed['grid'] == grid).all()) and mixed['blob'] == big").result["text/plain"]
            == "True"
        )
        moving.ok("%%remote\nbig2 = big[::-1]\ngrid2 = grid.T.copy()\ngrid2[0, 0] = -1")
        moving.ok("%rpull big2 grid2")
        cell = moving.ok(
            "print(big2 == big[::-1], grid2.shape, grid2.flags.writeable, (grid2[1:] == grid.T[1:]).all(), grid2[0, 0])"
        )
        assert cell.stdout == "True (500, 250) True True -1.0\n"
    finally:
        moving.ok("%config RSym.chunk_bytes = 1048576")


def test_small_values_take_one_request(moving):
    moving.ok("x1, x2, x3 = 1, [2], np.zeros(3)")
    assert requests_made(moving, "%rpush x1 x2 x3") == 1
    assert requests_made(moving, "%rpull x1 x2 x3") == 1
    assert requests_made(moving, "%%remote -i x1,x2 -o x3\nx3 = x1 + len(x2)") == 3  # in, run, out
    assert moving.ok("x3").result["text/plain"] == "2"


def test_uncopyable_values_name_themselves_and_suggest_ref(moving):
    moving.ok("import threading\nlock = threading.Lock()")
    line = one_line_error(moving.run("%rpush lock"), "CannotCopy")
    assert line.startswith("TypeError: lock cannot be copied to r (TypeError: cannot pickle")
    assert "--ref" in line
    moving.ok("%rpush lock --ref")
    assert moving.ok("%remote lock.locked()").result["text/plain"] == "False"

    # a class only the remote has: pickled there, cannot be unpickled here
    moving.ok(
        "%%remote\nimport sys, types\nonly = types.ModuleType('only_remote')\n"
        "exec('class Thing:\\n    n = 5', only.__dict__)\nsys.modules['only_remote'] = only\n"
        "thing = only.Thing()"
    )
    line = one_line_error(moving.run("%rpull thing"), "CannotCopy")
    assert line.startswith("TypeError: thing cannot be copied from r (ModuleNotFoundError:")
    assert "--ref" in line
    moving.ok("%rpull thing --ref")
    assert moving.ok("thing.n").result["text/plain"] == "5"
    # -o hands the reference by itself
    moving.ok("%%remote -o thing=thing2\npass")
    assert moving.ok("thing2.n").result["text/plain"] == "5"
    assert moving.ok("%remote 1 + 1").result["text/plain"] == "2"


def test_references_and_bad_names(moving):
    moving.ok("class Box:\n    def __init__(self):\n        self.items = []\nbox = Box()")
    moving.ok("%rpush box --ref")
    moving.ok("%remote box.items.append('from remote')")
    assert moving.ok("box.items").result["text/plain"] == "['from remote']"
    assert "no notebook variable named 'nope'" in one_line_error(moving.run("%rpush nope"), "UsageError")
    assert "no variable named 'nope'" in one_line_error(moving.run("%rpull nope"), "UsageError")
    assert "expected NAME or NAME=REMOTE" in one_line_error(moving.run("%rpush 'a b'"), "UsageError")
    assert "no session named 'zz'" in one_line_error(moving.run("%rpull x1 --on zz"), "UsageError")


def test_session_api(moving):
    moving.ok("r.push(p1=3, p2=np.ones(2))\nr.push({'p3': 'x'})")
    assert moving.ok("r.pull('p1'), sorted(r.pull(['p2', 'p3']))").result["text/plain"] == "(3, ['p2', 'p3'])"
    moving.ok("import threading")
    line = one_line_error(moving.run("r.push(bad=threading.Lock())"), "CannotCopy")
    assert "bad cannot be copied" in line and "ref=True" in line
    moving.ok("r.push(good=threading.Lock(), ref=True)")
    assert moving.ok("r.pull('good', ref=True).locked()").result["text/plain"] == "False"


def test_long_transfers_show_progress_in_their_cell(moving):
    moving.ok("%config RSym.chunk_bytes = 65536\n%config RSym.progress_after = 0.0")
    try:
        cell = moving.ok("payload = bytes(2_000_000)\n%rpush payload\nprint('done')")
        shown = [m for m in cell.messages if m["msg_type"] in ("display_data", "update_display_data")]
        texts = [m["content"]["data"]["text/plain"] for m in shown]
        assert shown[0]["msg_type"] == "display_data" and texts[0].startswith("pushing payload to r: ")
        assert shown[-1]["msg_type"] == "update_display_data"  # one line, updated in place
        assert texts[-1].startswith("pushing payload to r: 2.0 MB in ") and texts[-1].endswith("MB/s)")
        ids = {m["content"]["transient"]["display_id"] for m in shown}
        assert len(ids) == 1 and cell.stdout == "done\n"
        cell = moving.ok("%rpull payload")
        assert "pulling payload from r: 2.0 MB in " in str(cell.messages)
    finally:
        moving.ok("%config RSym.chunk_bytes = 1048576\n%config RSym.progress_after = 1.0")
    cell = moving.ok("%rpush payload")  # fast: no progress shown
    assert not cell.displays and not cell.of_type("update_display_data")


def test_interrupting_a_slow_transfer_leaves_the_session_usable(moving, start_server, start_proxy):
    server = start_server()
    proxy = start_proxy(("127.0.0.1", server.port), delay=0.05)
    moving.ok(f"%rconnect {proxy.address} --as slow\n%config RSym.chunk_bytes = 65536")
    try:
        moving.ok("%%remote --on slow\nimport os\nhuge = os.urandom(64_000_000)\nsmall = 42")
        before = proxy.bytes_from_target
        cell = moving.submit("%rpull huge --on slow")
        # under way: 4 MB of the 64 have come through the proxy
        wait_until(lambda: proxy.bytes_from_target - before > 4_000_000, what="the transfer under way")
        moving.interrupt()
        cell.wait(20)
        assert cell.error and cell.error["ename"] == "KeyboardInterrupt", cell.summary()
        assert moving.ok("%rpull small --on slow\nsmall").result["text/plain"] == "42"
        assert moving.ok("'huge' in globals()").result["text/plain"] == "False"
        held = f"len(__import__('sys').modules['{MODULE_NAME}'].bulk._outgoing)"
        assert moving.ok(f"%remote --on slow {held}").result["text/plain"] == "0"  # released
        moving.ok("%rpush small=small2 --on slow")
        assert moving.ok("%remote --on slow small2").result["text/plain"] == "42"
    finally:
        moving.ok("%config RSym.chunk_bytes = 1048576\n%rdisconnect slow")


def test_compressed_link_carries_values_intact(moving, start_server, start_proxy):
    """``RSym.compress``: values come through intact both ways, and fewer bytes
    cross the link than the values hold (it does compress)."""
    server = start_server()
    proxy = start_proxy(("127.0.0.1", server.port))
    moving.ok(f"%config RSym.compress = True\n%rconnect {proxy.address} --as packed")
    try:
        moving.ok("%%remote --on packed\nimport os\ntext = b'compressible ' * 500_000\nnoise = os.urandom(2_000_000)")
        before = proxy.bytes_from_target
        moving.ok("%rpull text noise --on packed")
        assert proxy.bytes_from_target - before < 6_500_000 + 2_000_000 // 2  # text: 6.5 MB, noise: 2 MB
        assert moving.ok("text == b'compressible ' * 500_000").result["text/plain"] == "True"
        here = moving.ok("print(hashlib.sha256(noise).hexdigest())").stdout.strip()
        there = moving.ok("%remote --on packed __import__('hashlib').sha256(noise).hexdigest()").result["text/plain"]
        assert there == repr(here)
        before = proxy.bytes_to_target
        moving.ok("back = np.arange(1_000_000, dtype=np.float64) % 7\n%rpush back --on packed")
        assert proxy.bytes_to_target - before < 8_000_000 // 2
        assert moving.ok("%remote --on packed float(back.sum())").result["text/plain"] == repr(
            float(sum(i % 7 for i in range(1_000_000)))
        )
    finally:
        moving.ok("%rdisconnect packed\n%config RSym.compress = False")


def test_cell_inputs_and_outputs_cross_the_wire_once(kernel, classic_server, start_proxy):
    """``-i``/``-o`` of bytes carry no second copy as their own fallback (it made the
    cell path half as fast as ``r.push``/``r.pull``): counted by a relaying proxy."""
    size = 16 << 20
    proxy = start_proxy(("127.0.0.1", classic_server.port))
    # %load_ext, not %reload_ext: that would close r, which the module's other tests use
    kernel.ok(f"%load_ext jupyter_rsym\n%rconnect {proxy.address} --as counted")
    kernel.ok(f"import os\nbig = os.urandom({size})")
    sent = proxy.bytes_to_target
    kernel.ok(f"%%remote --on counted -i big\nassert len(big) == {size}\nback = big[::-1]")
    assert size <= proxy.bytes_to_target - sent < 1.5 * size, proxy.bytes_to_target - sent
    received = proxy.bytes_from_target
    kernel.ok("%%remote --on counted -o back\npass")
    assert size <= proxy.bytes_from_target - received < 1.5 * size, proxy.bytes_from_target - received
    assert kernel.ok("print(back == big[::-1])").stdout == "True\n"
    kernel.ok("%rdisconnect counted\nbig = back = None")
