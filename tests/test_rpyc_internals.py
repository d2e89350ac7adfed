"""The rpyc internals jupyter_rsym builds on are where it expects them.

The client and the agent override or call private parts of rpyc (pyproject
pins rpyc to the tested minor).  A release that moves one of them fails here
first, with the name of what moved, instead of as a hang or a wrong cell
somewhere in the suite.
"""

import inspect

import rpyc
from rpyc.core import brine, netref, protocol, service, vinegar
from rpyc.utils import server

# (owner, name, its parameters; None: an attribute, not a function) -- where we use it
FUNCTIONS = [
    (protocol.Connection, "_dispatch_request", ["self", "seq", "raw_args"]),  # link/client, agent/tags
    (protocol.Connection, "_box_exc", ["self", "typ", "val", "tb"]),  # link/client, tracebacks
    (protocol.Connection, "_unbox_exc", ["self", "raw"]),  # link/client
    (protocol.Connection, "_send", ["self", "msg", "seq", "args"]),  # link/client, agent/tags, wire
    (protocol.Connection, "_box", ["self", "obj"]),  # link/client, wire, agent/interrupts
    (protocol.Connection, "_unbox", ["self", "package"]),  # agent/interrupts
    (protocol.Connection, "_get_seq_id", ["self"]),  # link/client, agent/tags
    (protocol.Connection, "_dispatch", ["self", "data"]),  # wire
    (protocol.Connection, "serve", ["self", "timeout", "wait_for_lock", "waiting"]),  # link/reader, link/client
    (protocol.Connection, "_netref_factory", ["self", "id_pack"]),  # link/proxies
    (service.Service, "_connect", ["channel", "config"]),  # remote/server (a classmethod)
    (server.Server, "_accept_method", ["self", "sock"]),  # remote/server
    (server.Server, "_listen", ["self"]),  # remote/server, remote/launcher
    (brine, "_dump", ["obj", "stream"]),  # wire
    (vinegar, "dump", ["typ", "val", "tb", "include_local_traceback", "include_local_version"]),  # tracebacks
    (netref, "class_factory", ["id_pack", "methods"]),  # link/proxies
]
# attributes of a live connection (set in Connection.__init__)
CONNECTION_ATTRIBUTES = [
    "_recvlock",
    "_request_callbacks",
    "_seqcounter",
    "_local_objects",
    "_config",
    "_channel",
    "_closed",
    "_send_queue",
    "_sendlock",
    "_recv_event",
    "_netref_classes_cache",
    "_HANDLERS",
    "_bind_threads",
]
MODULE_ATTRIBUTES = [(brine, "_dump_registry"), (brine, "TAG_STR_L4"), (brine, "I4"), (netref, "LOCAL_ATTRS")]


def test_rpyc_private_functions_keep_their_signatures():
    moved = []
    for owner, name, parameters in FUNCTIONS:
        found = getattr(owner, name, None)
        if found is None:
            moved.append(f"{owner.__name__}.{name} is gone")
        elif list(inspect.signature(found).parameters) != parameters:
            moved.append(f"{owner.__name__}.{name}{inspect.signature(found)} (expected ({', '.join(parameters)}))")
    for owner, name in MODULE_ATTRIBUTES:
        if not hasattr(owner, name):
            moved.append(f"{owner.__name__}.{name} is gone")
    assert not moved, f"rpyc {rpyc.__version__} moved what jupyter_rsym overrides: " + "; ".join(moved)


def test_rpyc_connection_keeps_its_private_attributes():
    conn = rpyc.classic.connect_thread()  # a real connection to a server thread in this process
    try:
        missing = [name for name in CONNECTION_ATTRIBUTES if not hasattr(conn, name)]
        assert not missing, f"rpyc {rpyc.__version__} Connection lost: {', '.join(missing)}"
        assert conn.modules.os.getpid() > 0  # and the connection works
    finally:
        conn.close()


def test_the_pin_holds_the_tested_minor():
    assert rpyc.__version__.split(".")[:2] == ["6", "0"], (
        f"rpyc {rpyc.__version__}: jupyter_rsym is tested with rpyc 6.0.x (pyproject.toml pins it)"
    )
