"""Code that runs inside the remote Python process: the agent.

Standard library only, one module per job, and never imports the rest of
jupyter_rsym, so a remote Python that has only rpyc can run it:

* ``routes``     which notebook link and request each piece of remote work is for
* ``capture``    remote stdout/stderr, batched to the link they belong to
* ``tracebacks`` one flat traceback through callback hops, without internals
* ``tags``       cause tags on the remote's requests, so callbacks find their cell
* ``interrupts`` stop the handler of one notebook request
* ``sources``    cell sources in ``linecache``, evicted when no longer needed
* ``cells``      run a whole cell in one request
* ``display``    an object's rich representations in one request
* ``jobs``       a cell in a remote thread of its own (fan-out, background cells)
* ``imports``    adapt a library right after the remote imports it
* ``displays``   ``display()`` in remote code shows in the cell it works for
* ``plots``      matplotlib figures made for a cell show in it as PNG
* ``inputs``     ``input()``/``getpass`` ask the notebook user
* ``logs``       logging records made for a cell land in it
* ``wire``       the server end of the notebook's connection without rpyc's copies
* ``bulk``       large values as pickle protocol 5 buffers, moved in pieces
* ``introspect`` completion, ``obj?`` and ``help()`` answered in one request
* ``sessions``   sessions that outlive a dropped link (servers that keep them)

A stock server gets the package from the notebook at connect time as one
bundle (``jupyter_rsym.bundle``); our own server imports it directly.  Either
way it lives in ``sys.modules`` under a name made from its sources' hash, so
every connection to one server process shares one copy of one version (one
stdout router, one flusher thread).
"""

from . import (bulk, capture, display, displays, inputs, introspect, jobs, logs, plots, routes,
               sessions, tags, tracebacks, wire)
from .cells import run_cell
from .display import mimebundle
from .interrupts import interrupt

# the bundle's load order: a module comes after the ones it imports
MODULES = ("routes", "capture", "tracebacks", "interrupts", "tags", "sources", "cells", "display", "jobs",
           "imports", "displays", "plots", "inputs", "logs", "wire", "bulk", "introspect", "sessions")
__all__ = ["attach", "describe", "interrupt", "mimebundle", "resume", "run_cell"]


def attach(service, emit, options=()):
    """Set up the agent for the connection that serves ``service`` and return
    everything the notebook's session uses, so connecting takes one request.

    ``service`` is the remote root object of the notebook's connection (a
    classic ``SlaveService``); ``emit`` is the notebook's output sink;
    ``options`` are ``(name, value)`` pairs: ``compress``, ``batch_bytes``,
    ``flush_interval``, ``ask`` (``ask(cause, prompt, password)`` answers
    ``input()``, see ``inputs``) and ``log_level`` (logging records from it
    up go to the cell, see ``logs``).  Returns ``(name, value)`` pairs (a
    tuple travels by value, its functions and modules as proxies that need no
    further round trip): the link's id (``interrupt`` takes it, over another
    connection), the platform description, the classic API, the agent's
    entry points, and ``session``: what resuming takes, the kept session's
    ticket (``sessions.Session.ticket``) where the server keeps sessions,
    else one word saying why not ("stock", "off", "version").
    """
    options = dict(options)
    conn = service._conn
    wire.install(conn, options.get("compress", False))
    capture.install(options.get("flush_interval", 0.05))
    tracebacks.report_thread_errors()
    link = sessions.make_link(conn, emit, options.get("batch_bytes", 65536))
    link.ask, link.log_level = options.get("ask"), options.get("log_level", 30)
    tags.patch_connection(conn, link)  # after wire: it wraps the connection's send
    install_rich_output(getattr(service, "namespace", None))
    registry = sessions.registry_of(conn)
    kept = sessions.why_not_kept(conn) if registry is None else registry.open(conn, service, link).ticket
    return (("link", id(link)), ("session", kept), *_entries(service))


def resume(service, session_id, secret, emit, received, refs, options=()):
    """Re-attach the kept session ``session_id`` to the connection that
    serves ``service`` (see ``sessions``) and return what ``attach`` does.

    ``emit`` is the notebook's output sink on this connection, ``received``
    the number of the last output batch it has, ``refs`` its stable
    functions as (id, function) pairs, ``options`` as for ``attach`` (its
    ``ask`` is re-bound).  Unacknowledged output is replayed before this
    returns.  Returns ("resumed", pairs as ``attach`` returns them), or
    ("gone", why) if the server no longer keeps that session.
    """
    options = dict(options)
    conn = service._conn
    registry = sessions.registry_of(conn)
    if registry is None:
        return ("gone", "the server keeps no sessions now")
    wire.install(conn, options.get("compress", False))
    try:
        session = registry.take(session_id, secret)
        session.link.ask = options.get("ask")
        session.attach(conn, service, emit, refs, received)  # patches tags after wire
    except sessions.SessionGone as exc:
        return ("gone", str(exc))
    registry.resumed(session, conn)
    return ("resumed", (("link", id(session.link)), ("session", session.ticket), *_entries(service)))


def _entries(service):
    """What the notebook's session calls: the classic API and the agent's functions."""
    import builtins
    import importlib.util

    return (
        ("description", describe()),
        ("namespace", service.namespace),
        ("getmodule", service.getmodule),
        ("modules", (("builtins", builtins), ("importlib.util", importlib.util))),
        ("eval", service.eval),
        ("execute", service.execute),
        ("run_cell", run_cell),
        ("mimebundle", mimebundle),
        ("reprs", display.reprs),
        ("fetch", bulk.fetch),
        ("read", bulk.read),
        ("store", bulk.store),
        ("write", bulk.write),
        ("release", bulk.release),
        ("build", bulk.build),
        ("export", bulk.export),
        ("complete", introspect.complete),
        ("describe", introspect.describe),
        ("help", introspect.help_text),
    )


def install_rich_output(namespace):
    """display(), figures, input() and logging for threads working for a
    notebook (each patch once per process); ``namespace`` gets ``display``."""
    displays.install(namespace)
    plots.install()
    inputs.install()
    logs.install()


def describe():
    """One line: the remote Python, platform and rpyc version."""
    import platform

    try:
        from rpyc import __version__ as rpyc_version
    except ImportError:
        rpyc_version = "?"
    return "Python %s on %s, rpyc %s" % (
        platform.python_version(), platform.platform(terse=True), rpyc_version)
