"""The agent: what a notebook's connection sets up inside the remote process.

One module per job, relative imports only (the remote package is shipped
whole, under any name):

* ``routes``     which notebook link and request each piece of remote work is for
* ``capture``    remote stdout/stderr, batched to the link they belong to
* ``excepthook`` a thread working for a cell that dies reports it in that cell
* ``tags``       cause tags on the remote's requests, so callbacks find their cell
* ``interrupts`` stop the handler of one notebook request
* ``sources``    cell sources in ``linecache``, evicted when no longer needed
* ``cells``      run a whole cell in one request
* ``reprs``      an object's rich representations in one request
* ``jobs``       a cell in a remote thread of its own (fan-out, background cells)
* ``imports``    adapt a library right after the remote imports it
* ``publish``    ``display()`` in remote code shows in the cell it works for
* ``plots``      matplotlib figures made for a cell show in it as PNG
* ``inputs``     ``input()``/``getpass`` ask the notebook user
* ``logs``       logging records made for a cell land in it
* ``children``   output of child processes started for a cell lands in it
* ``shell``      ``!cmd``, ``%time``, ``%timeit``, ``obj?`` in remote cells
* ``userns``     the user's variables in the remote namespace (``%rwho``)
* ``lasterror``  each link's last exception, for a post-mortem
* ``remotepdb``  pdb that shows and steps through the user's frames only
* ``breakpoints`` ``breakpoint()`` prompts in the notebook, post-mortems, parked threads
* ``introspect`` completion, ``obj?`` and ``help()`` answered in one request
* ``resumable``  sessions that outlive a dropped link (servers that keep them)

A stock server gets the remote package from the notebook at connect time as
one bundle (``bundle.py``); our own server imports it directly.  Either way
it lives in ``sys.modules`` under a name made from its sources' hash, so
every connection to one server process shares one copy of one version (one
stdout router, one flusher thread).
"""

from .. import bulk, tracebacks, wire
from . import (
    breakpoints,
    capture,
    children,
    excepthook,
    inputs,
    introspect,
    jobs,
    lasterror,
    logs,
    plots,
    publish,
    reprs,
    resumable,
    routes,
    tags,
    userns,
)
from .cells import run_cell
from .interrupts import interrupt
from .reprs import mimebundle

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
    ticket (``resumable.Session.ticket``) where the server keeps sessions,
    else one word saying why not ("stock", "off", "version").
    """
    options = dict(options)
    conn = service._conn
    wire.install(conn, options.get("compress", False))
    capture.install(options.get("flush_interval", 0.05))
    excepthook.report_thread_errors()
    link = resumable.make_link(conn, emit, options.get("batch_bytes", 65536))
    link.ask, link.log_level = options.get("ask"), options.get("log_level", 30)
    tags.patch_connection(conn, link)  # after wire: it wraps the connection's send
    userns.register(getattr(service, "namespace", None))  # shown: the user's variables only
    install_rich_output(getattr(service, "namespace", None))
    registry = resumable.registry_of(conn)
    kept = resumable.why_not_kept(conn) if registry is None else registry.open(conn, service, link).ticket
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
    registry = resumable.registry_of(conn)
    if registry is None:
        return ("gone", "the server keeps no sessions now")
    wire.install(conn, options.get("compress", False))
    try:
        session = registry.take(session_id, secret)
        session.link.ask = options.get("ask")
        session.attach(conn, service, emit, refs, received)  # patches tags after wire
    except resumable.SessionGone as exc:
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
        ("reprs", reprs.reprs),
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
        ("variables", userns.variables),
        ("post_mortem", breakpoints.post_mortem),
        ("clear_error", lasterror.clear),
        ("parked", breakpoints.parked),
        ("attach_breakpoint", breakpoints.attach),
        ("release_breakpoints", breakpoints.release),
        ("wake_breakpoint", breakpoints.wake),
    )


def install_rich_output(namespace):
    """display(), figures, input() and logging for threads working for a
    notebook (each patch once per process); ``namespace`` gets ``display``."""
    publish.install(namespace)
    children.install()
    plots.install()
    inputs.install()
    breakpoints.install()
    logs.install()


def describe():
    """One line: the remote Python, platform and rpyc version."""
    import platform

    try:
        from rpyc import __version__ as rpyc_version
    except ImportError:
        rpyc_version = "?"
    return "Python %s on %s, rpyc %s" % (platform.python_version(), platform.platform(terse=True), rpyc_version)
