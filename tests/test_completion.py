"""TAB completion, obj? / obj?? and help() on remote objects: one request each."""

import re
import time

import pytest

from .harness import strip_ansi
from .test_transfer import COUNTER


@pytest.fixture(scope="module")
def remote(connected):
    connected.ok(COUNTER + "rlist = r.builtins.list([1, 2])\nf, g = r.builtins.len, r.builtins.abs")
    connected.ok(
        "%%remote\ndata = {'alpha': 1, 'beta': [2], 3: 'three'}\ndef twice(x):\n    'Double x.'\n    return 2 * x"
    )
    return connected


def completed(kernel, code):
    """(matches, types by match, requests sent on r) for TAB at the end of ``code``."""
    kernel.ok("_sent.clear()")
    reply = kernel.complete(code)
    assert reply["status"] == "ok" and reply["cursor_end"] == len(code)
    types = {c["text"]: c["type"] for c in reply["metadata"].get("_jupyter_types_experimental", [])}
    sent = int(kernel.ok("print(len(_sent))").stdout)
    return reply["matches"], types, sent, reply["cursor_start"]


def test_tab_on_remote_builtins(remote):
    matches, types, sent, start = completed(remote, "r.builtins.")
    assert sent == 1
    assert {"len", "print", "ValueError", "range"} <= set(matches)
    assert not any(m.startswith("_") for m in matches)
    assert (types["len"], types["ValueError"]) == ("function", "class")
    assert start == len("r.builtins.")


def test_tab_on_a_remote_module_attribute(remote):
    matches, types, sent, start = completed(remote, "x = r.modules.os.pa")
    assert sent == 1
    assert {"pardir", "path", "pathsep"} <= set(matches) and all(m.startswith("pa") for m in matches)
    assert types["path"] == "module" and start == len("x = r.modules.os.")
    matches, types, sent, _ = completed(remote, "r.modules.xml.")
    assert sent == 1 and {"dom", "etree", "sax"} <= set(matches) and types["dom"] == "module"
    matches, _, sent, _ = completed(remote, "r.modules.")
    assert sent == 1 and {"os", "sys", "json"} <= set(matches)


def test_tab_on_remote_objects_bound_to_names_and_namespace_items(remote):
    matches, types, sent, _ = completed(remote, "rlist.app")
    assert (matches, types["append"], sent) == (["append"], "function", 1)
    matches, _, sent, _ = completed(remote, "r.namespace['data'].ke")
    assert (matches, sent) == (["keys"], 1)
    matches, types, sent, start = completed(remote, "r.namespace['da")
    assert (matches, types["data"], sent, start) == (["data"], "dict key", 1, len("r.namespace['"))
    matches, _, sent, _ = completed(remote, "r.namespace['data'][")
    assert (sorted(matches), sent) == (["'alpha'", "'beta'", "3"], 1)
    matches, _, sent, _ = completed(remote, "print(r.namespace['data'][\"b")
    assert (matches, sent) == (["beta"], 1)


def test_tab_inside_remote_cells_uses_the_remote_namespace(remote, start_server):
    matches, types, sent, _ = completed(remote, "%%remote\nx = 1\nda")
    assert (matches, types["data"], sent) == (["data"], "instance", 1)
    matches, types, sent, _ = completed(remote, "%%remote\ntw")
    assert (matches, types["twice"], sent) == (["twice"], "function", 1)
    matches, _, sent, _ = completed(remote, "%%remote\nprin")
    assert (matches, sent) == (["print"], 1)
    matches, _, sent, _ = completed(remote, "%%remote\ndata['al")
    assert (matches, sent) == (["alpha"], 1)
    matches, _, sent, _ = completed(remote, "%%remote\nimport o")
    assert "os" in matches and sent == 1
    # --on picks the session; names of the notebook are not offered
    other = start_server()
    remote.ok(f"%rconnect {other.address} --as other\nlocal_only_name = 1")
    try:
        matches, _, _, _ = completed(remote, "%%remote --on other\nda")
        assert matches == []
        matches, _, _, _ = completed(remote, "%%remote\nlocal_only")
        assert matches == []
    finally:
        remote.ok("%rdisconnect other")


def test_nothing_to_complete_costs_one_request_and_local_code_none(remote):
    matches, _, sent, _ = completed(remote, "r.builtins.zzz")
    assert (matches, sent) == ([], 1)
    matches, _, sent, _ = completed(remote, "r.modules.no_such_module.")
    assert (matches, sent) == ([], 1)
    matches, _, sent, _ = completed(remote, "import o")  # local completion, untouched
    assert "os" in matches and sent == 0
    remote.ok("local_value = 1")
    matches, _, sent, _ = completed(remote, "local_v")
    assert matches == ["local_value"] and sent == 0


def test_a_hung_remote_gives_no_completions_quickly(remote, start_server):
    kernel = remote
    server = start_server()
    kernel.ok(f"%config RSym.introspection_timeout = 0.5\n%rconnect {server.address} --as hung")
    import signal

    server.signal(signal.SIGSTOP)
    try:
        start = time.monotonic()
        reply = kernel.complete("hung.builtins.")
        assert reply["status"] == "ok" and reply["matches"] == []
        assert time.monotonic() - start < 5
        assert kernel.inspect("hung.modules.os.getcwd")["found"] is False
    finally:
        server.signal(signal.SIGCONT)
        kernel.ok("%rdisconnect hung\n%config RSym.introspection_timeout = 2.0")
    assert kernel.ok("1 + 1").result["text/plain"] == "2"


def inspected(kernel, code, detail_level=0):
    kernel.ok("_sent.clear()")
    reply = kernel.inspect(code, detail_level=detail_level)
    sent = int(kernel.ok("print(len(_sent))").stdout)
    return reply, strip_ansi(reply["data"].get("text/plain", "")), sent


def test_inspect_remote_objects_in_one_request(remote):
    reply, text, sent = inspected(remote, "r.modules.os.path.join")
    assert reply["found"] and sent == 1
    assert "Signature: r.modules.os.path.join(a, *p)" in text
    assert "Join two or more pathname components" in text and "Type:      function" in text
    reply, text, sent = inspected(remote, "f")
    assert sent == 1 and "Signature: f(obj, /)" in text and "Return the number of items" in text
    reply, text, sent = inspected(remote, "r.modules.os.no_such_thing")
    assert not reply["found"] and sent == 1


def test_question_marks_and_help_in_cells(remote):
    remote.ok("tw = r.namespace['twice']")
    remote.ok("_sent.clear()")
    cell = remote.ok("tw??")
    page = strip_ansi(cell.reply["content"]["payload"][0]["data"]["text/plain"])
    assert "def twice(x):" in page and "return 2 * x" in page
    assert int(remote.ok("print(len(_sent))").stdout) == 1
    remote.ok("_sent.clear()")
    cell = remote.ok("r.modules.os.path.join?")
    page = strip_ansi(cell.reply["content"]["payload"][0]["data"]["text/plain"])
    assert re.search(r"Signature: r\.modules\.os\.path\.join\(a, \*p\)", page)
    assert int(remote.ok("print(len(_sent))").stdout) == 1
    remote.ok("_sent.clear()")
    cell = remote.ok("help(f)")
    assert cell.stdout.startswith("Help on built-in function len in module builtins:")
    assert "Return the number of items in a container." in cell.stdout
    assert int(remote.ok("print(len(_sent))").stdout) == 1
    cell = remote.ok("help(r.builtins.len)")  # fetching len is a request of its own
    assert "Return the number of items in a container." in cell.stdout and "rpyc" not in cell.stdout
    cell = remote.ok("help(len)")  # local objects: pydoc as usual
    assert "Return the number of items in a container." in cell.stdout


def test_remote_objects_and_containers_of_them_display_in_one_request(remote):
    remote.ok("_sent.clear()")
    assert remote.ok("f").result["text/plain"] == "<built-in function len>"
    assert int(remote.ok("print(len(_sent))").stdout) == 1
    remote.ok("_sent.clear()")
    cell = remote.ok("{'a': f, 'b': [g, rlist], 'n': 1}")
    assert cell.result["text/plain"] == (
        "{'a': <built-in function len>, 'b': [<built-in function abs>, [1, 2]], 'n': 1}"
    )
    assert int(remote.ok("print(len(_sent))").stdout) == 1
