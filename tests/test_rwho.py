"""Issue 26, part 7: %rwho / %rwhos list the remote namespace's variables in one
request; r.namespace's repr shows user variables only."""

import pytest


@pytest.fixture(scope="module")
def filled(connected):
    connected.ok(
        "%%remote\nimport os\ncount = 3\nwords = ['a', 'b']\n_hidden = 1\n"
        "def helper():\n    pass\nbig = list(range(1000))"
    )
    return connected


def test_rwho_lists_user_names(filled):
    assert filled.ok("%rwho").stdout == "big   count   helper   os   words\n"
    assert filled.ok("%rwho int list  # by type").stdout == "big   count   words\n"


def test_rwhos_shows_types_and_short_reprs(filled):
    lines = filled.ok("%rwhos").stdout.splitlines()
    assert lines[0].split() == ["Variable", "Type", "Data/Info"]
    assert set(lines[1]) == {"-"}
    rows = {line.split()[0]: line.split(None, 2) for line in lines[2:]}
    assert rows["count"] == ["count", "int", "3"]
    assert rows["words"] == ["words", "list", "['a', 'b']"]
    assert rows["helper"][1] == "function"
    assert "<...>" in rows["big"][2] and len(rows["big"][2]) <= 60
    assert sorted(rows) == ["big", "count", "helper", "os", "words"]


def test_namespace_repr_shows_user_variables(filled):
    shown = filled.ok("r.namespace").result["text/plain"]
    assert "__builtins__" not in shown and "_hidden" not in shown and "display" not in shown
    assert "'count': 3" in shown and "'words': ['a', 'b']" in shown
    assert (
        filled.ok("r.namespace['_hidden'], len(r.namespace['__builtins__']) > 10").result["text/plain"] == "(1, True)"
    )


def test_one_request_each(filled):
    count = (
        "import jupyter_rsym.link.client as c\nsent = []\n"
        "orig = c.RoutedConnection._get_seq_id\n"
        "def counting(self):\n    sent.append(1)\n    return orig(self)\n"
        "c.RoutedConnection._get_seq_id = counting\n"
    )
    filled.ok(count)
    filled.ok("%rwhos")
    filled.ok("c.RoutedConnection._get_seq_id = orig")
    assert filled.ok("len(sent)").result["text/plain"] == "1"


def test_empty_namespace_says_so(connected, start_server):
    server = start_server()
    connected.ok(f"%rconnect {server.address} --as bare")
    assert connected.ok("%rwho --on bare").stdout == "the remote namespace of bare has no variables\n"
    connected.ok("%rdisconnect bare")
