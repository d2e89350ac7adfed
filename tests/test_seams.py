"""The seams: addresses, the agent as one bundle, and an agent a bare Python imports."""

import re
import subprocess
import sys

import pytest
import rpyc

from jupyter_rsym.kernel.config import RSym
from jupyter_rsym.link.address import Address, AddressError, parse_address
from jupyter_rsym.link.session import RemoteSession
from jupyter_rsym.remote import bundle
from tests.servers import ClassicServer

BLOCKED = ("IPython", "ipykernel", "traitlets", "jupyter_client", "zmq")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("gpu-box", Address("gpu-box", 18812)),
        ("tcp://10.0.0.2:1", Address("10.0.0.2", 1)),
        ("[::1]:9", Address("::1", 9)),
        ("tls://lab:4443", Address("lab", 4443, "tls")),
        ("ssh://robot", Address("robot", 18812, "ssh")),
        ("ssh://me@robot:2222/18900", Address("robot", 18900, "ssh", "me", 2222)),
        ("ssh://me@[::1]/7", Address("::1", 7, "ssh", "me")),
    ],
)
def test_addresses_parse(text, expected):
    address = parse_address(text, 18812)
    assert address == expected
    assert parse_address(str(address), 18812) == address  # str() round-trips


@pytest.mark.parametrize(
    "text, message",
    [
        ("ssh://@robot", "expected ssh://[USER@]HOST[:SSHPORT][/PORT]"),
        ("ssh://robot/notaport", "expected ssh://[USER@]HOST[:SSHPORT][/PORT]"),
        ("ftp://robot", "unknown scheme 'ftp'"),
        ("host:0", "cannot parse address"),
    ],
)
def test_bad_addresses_say_why(text, message):
    with pytest.raises(AddressError, match=re.escape(message)):
        parse_address(text, 18812)


def test_every_scheme_has_a_transport():
    from jupyter_rsym.link.address import SCHEMES
    from jupyter_rsym.link.schemes import TRANSPORTS

    assert set(SCHEMES) == set(TRANSPORTS)
    assert parse_address("ssh://me@lab/4242", 18812) == Address("lab", 4242, "ssh", "me")


def test_agent_and_server_side_import_without_ipython():
    """A remote with only rpyc: the agent and the bundle import, nothing else is pulled in."""
    code = (
        "import sys\n"
        f"for name in {BLOCKED!r}: sys.modules[name] = None  # importing them now fails\n"
        "import jupyter_rsym.remote.agent, jupyter_rsym.remote.bundle\n"
        "jupyter_rsym.remote.bundle.register()\n"
        f"loaded = sorted(m for m, mod in sys.modules.items() if mod is not None and m.startswith({BLOCKED!r}))\n"
        "print(sorted(jupyter_rsym.remote.agent.__all__), loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "['attach', 'describe', 'interrupt', 'mimebundle', 'resume', 'run_cell'] []\n"


def counting_calls(conn):
    """Record the calls ``conn`` sends (each is one round trip)."""
    sent = []
    send = conn._send

    def counting_send(msg, seq, args):
        if msg == rpyc.core.consts.MSG_REQUEST and args[0] == rpyc.core.consts.HANDLE_CALL:
            sent.append(len(rpyc.core.brine.dump(args)))
        return send(msg, seq, args)

    conn._send = counting_send
    return sent


def test_bundle_is_sent_once_per_server_process():
    with ClassicServer() as server:
        first = rpyc.classic.connect(server.host, server.port)
        sent = counting_calls(first)
        agent, versions, _ = bundle.install(first.eval)
        assert len(sent) == 2  # asked, then sent the bundle in one request
        assert sent[0] < 1000 < sum(len(source) for _, _, source in bundle.SOURCES) < sent[1]
        assert bundle.VERSION not in versions
        package = first.eval(f"__import__('sys').modules[{bundle.MODULE_NAME!r}]")
        assert package.__bundle__ == bundle.VERSION
        # the whole remote package, every module after those it imports
        files = sorted(p.relative_to(bundle.PACKAGE_DIR).as_posix() for p in bundle.PACKAGE_DIR.rglob("*.py"))
        names = [name for name, _, _ in bundle.SOURCES]
        assert len(names) == len(files) and {"agent.cells", "server", "launcher", "wire"} <= set(names)
        assert names.index("agent.routes") < names.index("agent.capture") < names.index("agent")
        assert names.index("wire") < names.index("agent") < names.index("server")
        assert agent.cells.__file__ == f"<jupyter_rsym remote {bundle.VERSION}>/agent/cells.py"

        second = rpyc.classic.connect(server.host, server.port)
        sent = counting_calls(second)
        again, versions, _ = bundle.install(second.eval)
        assert len(sent) == 1  # only asked: the process kept this version
        assert bundle.VERSION in versions
        assert second.eval(f"id(__import__('sys').modules[{bundle.MODULE_NAME!r}])") == first.eval(
            f"id(__import__('sys').modules[{bundle.MODULE_NAME!r}])"
        )
        first.close()
        second.close()


def test_a_server_that_imports_the_agent_gets_no_upload():
    code = (
        "import sys; from jupyter_rsym.remote import bundle; bundle.register(); "
        "from rpyc.cli.rpyc_classic import main; sys.exit(main())"
    )
    server = ClassicServer()
    server._args[1:3] = ["-c", code]
    with server:
        conn = rpyc.classic.connect(server.host, server.port)
        sent = counting_calls(conn)
        agent, versions, _ = bundle.install(conn.eval)
        assert len(sent) == 1 and bundle.VERSION in versions
        assert agent.__file__.endswith("jupyter_rsym/remote/agent/__init__.py")  # imported, not sent
        conn.close()
        # a whole session works through it: cells, remote tracebacks without agent frames
        session = RemoteSession.connect("r", parse_address(server.address, 18812), RSym())
        try:
            assert session.run("x = 6\nx * 7") == 42
            with pytest.raises(ZeroDivisionError) as failure:
                session.run("1 / 0")
            shown = "\n".join(failure.value._render_traceback_())
            assert "<remote-cell-" in shown and "agent" not in shown
        finally:
            session.close()
