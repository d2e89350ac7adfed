"""Issue 26, part 9: obj? shows remote docstrings (remote modules, remote cells,
%autoremote cells); TAB after %rpull, %rpush, --on, %rdisconnect, %rbind
completes remote names and session names."""

import pytest

from .harness import strip_ansi
from .test_transfer import COUNTER


@pytest.fixture(scope="module")
def remote(connected, start_server_module):
    connected.ok(COUNTER)
    connected.ok('%%remote\ndef twice(x):\n    """Double x."""\n    return 2 * x\nremote_value = 1\nremote_other = 2')
    connected.ok(f"%rconnect {start_server_module.address} --as gpu\n%rdefault r\nnotebook_value = 3")
    return connected


@pytest.fixture(scope="module")
def start_server_module():
    from tests.servers import ClassicServer

    with ClassicServer() as server:
        yield server


def page(cell):
    payload = cell.reply["content"].get("payload") or [{}]
    return strip_ansi(payload[0].get("data", {}).get("text/plain", ""))


def test_question_mark_shows_remote_docstrings(remote):
    shown = page(remote.ok("r.modules.json.loads?"))
    assert "Docstring:\nDeserialize ``s``" in shown and "Source:" not in shown
    shown = page(remote.ok("twice = r.namespace['twice']\ntwice?"))
    assert "Signature: twice(x)" in shown and "Docstring: Double x." in shown.replace("\n", " ")
    source = page(remote.ok("twice??"))
    assert 'def twice(x):\n    """Double x."""' in source


def test_question_mark_in_autoremote_cells(remote):
    remote.ok("%autoremote r")
    try:
        cell = remote.ok("twice?")
        assert "Signature:      twice(x)" in cell.stdout and "Docstring:\nDouble x." in cell.stdout
    finally:
        remote.ok("%autoremote off")


def matches(kernel, code):
    reply = kernel.complete(code)
    assert reply["status"] == "ok"
    return reply["matches"], reply["cursor_start"]


def test_tab_after_rpull_offers_remote_variables_in_one_request(remote):
    remote.ok("_sent.clear()")
    found, start = matches(remote, "%rpull remote_")
    assert found == ["remote_other", "remote_value"] and start == len("%rpull ")
    assert int(remote.ok("print(len(_sent))").stdout) == 1
    found, _ = matches(remote, "%rpull tw")
    assert found == ["twice"]
    found, _ = matches(remote, "%rpull x --on gpu remote_")  # gpu has none of them
    assert found == []


def test_tab_after_on_and_session_arguments_offers_sessions(remote):
    assert matches(remote, "%rpull x --on g")[0] == ["gpu"]
    assert matches(remote, "%%remote --on r,")[0] == ["all", "gpu", "r"]
    assert matches(remote, "%rdisconnect ")[0] == ["gpu", "r"]
    assert matches(remote, "%rbind g")[0] == ["gpu"]


def test_tab_after_rpush_offers_notebook_variables(remote):
    assert matches(remote, "%rpush notebook_")[0] == ["notebook_value"]
