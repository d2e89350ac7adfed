"""Code that runs inside the remote Python process: the agent.

Standard library only, one module per job, and never imports the rest of
jupyter_rsym, so a remote Python that has only rpyc can run it:

* ``routes``     which notebook link and request each remote thread works for
* ``capture``    remote stdout/stderr, batched to the link they belong to
* ``tags``       cause tags on the remote's requests, so callbacks find their cell
* ``interrupts`` stop the handler of one notebook request
* ``cells``      run a whole cell in one request
* ``display``    an object's rich representations in one request
* ``jobs``       a cell in a remote thread of its own (fan-out, background cells)
* ``names``      names completing a prefix in a remote namespace, in one request

A stock server gets the package from the notebook at connect time as one
bundle (``jupyter_rsym.bundle``); our own server imports it directly.  Either
way it lives in ``sys.modules`` under a name made from its sources' hash, so
every connection to one server process shares one copy of one version (one
stdout router, one flusher thread).
"""

from . import capture, jobs, names, routes, tags
from .cells import run_cell
from .display import mimebundle
from .interrupts import interrupt

# the bundle's load order: a module comes after the ones it imports
MODULES = ("routes", "capture", "interrupts", "tags", "cells", "display", "jobs", "names")
__all__ = ["attach", "describe", "interrupt", "mimebundle", "run_cell"]


def attach(service, emit, batch_bytes=65536, flush_interval=0.05):
    """Set up the agent for the connection that serves ``service``.

    ``service`` is the remote root object of the notebook's connection (a
    classic ``SlaveService``); ``emit`` is the notebook's output sink.
    Returns the link's id (``interrupt`` takes it, over another connection)
    and the remote platform description.
    """
    capture.install(flush_interval)
    conn = service._conn
    link = capture.Link(conn, emit, batch_bytes)
    tags.patch_connection(conn, link)
    return id(link), describe()


def describe():
    """One line: the remote Python, platform and rpyc version."""
    import platform

    try:
        from rpyc import __version__ as rpyc_version
    except ImportError:
        rpyc_version = "?"
    return "Python %s on %s, rpyc %s" % (
        platform.python_version(), platform.platform(terse=True), rpyc_version)
