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
* ``names``      names completing a prefix in a remote namespace, in one request
* ``imports``    adapt a library right after the remote imports it
* ``displays``   ``display()`` in remote code shows in the cell it works for
* ``plots``      matplotlib figures made for a cell show in it as PNG
* ``inputs``     ``input()``/``getpass`` ask the notebook user
* ``logs``       logging records made for a cell land in it

A stock server gets the package from the notebook at connect time as one
bundle (``jupyter_rsym.bundle``); our own server imports it directly.  Either
way it lives in ``sys.modules`` under a name made from its sources' hash, so
every connection to one server process shares one copy of one version (one
stdout router, one flusher thread).
"""

from . import capture, displays, inputs, jobs, logs, names, plots, routes, tags, tracebacks
from .cells import run_cell
from .display import mimebundle
from .interrupts import interrupt

# the bundle's load order: a module comes after the ones it imports
MODULES = ("routes", "capture", "tracebacks", "interrupts", "tags", "sources", "cells", "display", "jobs",
           "names", "imports", "displays", "plots", "inputs", "logs")
__all__ = ["attach", "describe", "interrupt", "mimebundle", "run_cell"]


def attach(service, emit, batch_bytes=65536, flush_interval=0.05, ask=None, log_level=30):
    """Set up the agent for the connection that serves ``service``.

    ``service`` is the remote root object of the notebook's connection (a
    classic ``SlaveService``); ``emit`` is the notebook's output sink;
    ``ask(cause, prompt, password)`` answers ``input()`` (see ``inputs``);
    logging records from ``log_level`` up go to the cell (see ``logs``).
    Returns the link's id (``interrupt`` takes it, over another connection)
    and the remote platform description.
    """
    capture.install(flush_interval)
    tracebacks.report_thread_errors()
    conn = service._conn
    link = capture.Link(conn, emit, batch_bytes)
    link.ask, link.log_level = ask, log_level
    tags.patch_connection(conn, link)
    install_rich_output(getattr(service, "namespace", None))
    return id(link), describe()


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
