"""Jobs: a cell that runs in a remote thread of its own and reports when it ends.

Fan-out and background cells (``jupyter_rsym.fanout``) start a cell with one
request (``start_cell``) that returns at once, so the connection stays free
for other cells while the work runs.  The job's thread works for the
request that started it: its output is routed to that request's cell (it
inherits the route, see ``routes``), and the requests it makes are tagged
with that request's seq (see ``tags``), so the notebook treats its callbacks,
and the final ``done(...)`` report, as caused by the cell that started it.

``cancel`` (over the side connection) stops a job like an interrupt stops a
request: KeyboardInterrupt at the next bytecode, also when the cancel
arrives before the job's thread has started.
"""

import socket
import threading
from collections import OrderedDict

from . import capture, interrupts, routes, tags
from .cells import describe_exception, run_cell

KEEP_CANCELLED = 1000  # cancel requests remembered for jobs that have not started yet

_cancelled = OrderedDict()  # (connection id, job key) -> True
_cancel_lock = threading.Lock()


def start_cell(key, source, namespace, inputs, outputs, done):
    """Run ``source`` in ``namespace`` in a new thread; return at once.

    ``inputs`` are ``(name, value)`` pairs bound first; when the cell ends,
    ``done(status, payload, found, missing)`` is called once: status and
    payload as ``cells.run_cell`` returns them, ``found`` the ``(name,
    value)`` pairs of the ``outputs`` names that exist, ``missing`` the rest.
    ``key`` names the job for ``cancel``.
    """
    link, seq = routes.current()
    job = (id(link.conn), key)
    _no_delay(link.conn)
    thread = threading.Thread(
        target=_run,
        args=(job, seq, source, namespace, inputs, outputs, done),
        name="jupyter-rsym job",
        daemon=True,
    )
    thread.start()  # inherits this request's route: its output goes to the cell


def _no_delay(conn):
    """Send small writes at once on this link: a quick job's reply to
    ``start_cell`` and its ``done`` report are two writes in a row, and
    Nagle's algorithm would hold the second until the first is acknowledged
    (a round trip, or a delayed ACK's 40 ms)."""
    sock = getattr(getattr(conn._channel, "stream", None), "sock", None)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError):
        pass  # not a TCP socket


def _run(job, seq, source, namespace, inputs, outputs, done):
    stack = tags._dispatching.__dict__.setdefault("stack", [])
    stack.append((job[0], seq))  # its requests are tagged as caused by the start request
    try:
        try:
            status, payload, found, missing = _execute(job, source, namespace, inputs, outputs)
        except BaseException as exc:  # a cancel that landed outside the cell's own code
            status, payload, found, missing = "error", describe_exception(exc), (), ()
        try:
            done(status, payload, found, missing)
        except Exception:
            pass  # the notebook is gone or stopped waiting: nobody to tell
    finally:
        stack.pop()


def _execute(job, source, namespace, inputs, outputs):
    with interrupts._active_lock:
        interrupts._active[job] = threading.get_ident()
    try:
        with _cancel_lock:
            cancelled = _cancelled.pop(job, False)
        if cancelled:
            raise interrupts._Interrupt()
        for name, value in inputs:
            namespace[name] = value
        status, payload = run_cell(source, namespace, "exec")
        found = tuple((name, namespace[name]) for name in outputs if name in namespace)
        missing = tuple(name for name in outputs if name not in namespace)
        return status, payload, found, missing
    finally:
        interrupts.finish(job)


def cancel(link_id, key):
    """Stop job ``key`` of a link; returns "done", "stopped" or "blocked" (see
    ``interrupts.interrupt``).  A job that has not started yet never runs."""
    link = capture.links.get(link_id)
    if link is None:
        return "done"
    with _cancel_lock:
        _cancelled[(id(link.conn), key)] = True
        while len(_cancelled) > KEEP_CANCELLED:
            _cancelled.popitem(last=False)
    return interrupts.interrupt(link_id, key, serve_if_blocked=False)
