"""Issue 26, part 8: a value rpyc cannot serialize never kills the session: a
proxy's class just works, anything else is one line naming the value and the
operation, and the session goes on."""

import pytest

from .test_errors import one_line_error


@pytest.fixture(params=["classic", "rsym"])
def session(request, kernel, classic_server, rsym_server):
    kernel.ok("%reload_ext jupyter_rsym")
    if request.param == "classic":
        kernel.ok(f"%rconnect {classic_server.address} --as s")
    else:
        kernel.ok(f"%rconnect {rsym_server.address} --token {rsym_server.token} --as s")
    yield kernel
    kernel.ok("%rdisconnect s")


def test_the_class_of_a_proxy_is_one_line(session):
    session.ok("import threading\nlk = threading.Lock()\n%rpush lk --ref --on s")
    line = one_line_error(session.run("%remote --on s type(lk)"), "TypeError")
    assert line.startswith(
        "TypeError: cannot send <netref class 'rpyc.core.netref._thread.lock'> "
        "(the value of the cell) to the notebook: it is the class rpyc made for a proxy"
    )
    assert session.ok("%remote --on s type(lk).__name__").result["text/plain"] == "'_thread.lock'"
    assert session.ok("%remote --on s 1 + 1").result["text/plain"] == "2"


def test_an_object_answering_every_attribute_is_one_line(session):
    session.ok(
        "%%remote --on s\nclass Anything:\n    def __getattr__(self, name):\n        return self\n"
        "    def __repr__(self):\n        return 'Anything()'\nthing = Anything()"
    )
    line = one_line_error(session.run("%remote --on s thing"), "TypeError")
    assert line.startswith(
        "TypeError: cannot send Anything() (the value of the cell) to the notebook: "
        "its class answers every attribute name"
    )
    assert line.endswith("the session goes on")
    line = one_line_error(session.run("s.namespace['thing']"), "TypeError")
    assert "cannot send Anything() (the result of" in line
    assert session.ok("%remote --on s 6 * 7").result["text/plain"] == "42"


def test_the_notebook_refuses_the_same_way(session):
    session.ok(
        "class Anything:\n    def __getattr__(self, name):\n        return self\n"
        "    def __repr__(self):\n        return 'Local()'\n"
        "def give():\n    return Anything()\n%rpush give --on s"
    )
    cell = session.run("%%remote --on s\ntry:\n    give()\nexcept TypeError as e:\n    print(str(e).splitlines()[0])")
    assert "cannot send Local() (the result of call give()) to the remote" in cell.stdout
    assert session.ok("%remote --on s 6 * 7").result["text/plain"] == "42"
