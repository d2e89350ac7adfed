"""Jobs: a cell that runs in a remote thread of its own and reports when it ends.

Fan-out and background cells (``jupyter_rsym.fanout``) start a cell with one
request (``start_cell``) that returns at once, so the connection stays free
for other cells while the work runs.  The job's thread works for the
request that started it: its output is routed to that request's cell (it
inherits the route, see ``routes``), and the requests it makes are tagged
with that request's seq (see ``tags``), so the notebook treats its callbacks,
and the final ``report(...)``, as caused by the cell that started it.

A quick cell needs no report: ``start_cell`` waits up to ``QUICK`` seconds
for the job and, if it has ended, returns its outcome as the reply.  An
empty cell on 32 Dask workers then costs one message each way per worker,
not five (reply, report, its reply, and the report proxy's release: the
notebook hands the same ``report`` function every time and the link keeps
its proxy).

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
QUICK = 0.02  # seconds start_cell waits for the job: a quick job's outcome rides on the reply

_cancelled = OrderedDict()  # (connection id, job key) -> True
_cancel_lock = threading.Lock()


def start_cell(key, source, namespace, inputs, outputs, report):
    """Run ``source`` in ``namespace`` in a new thread.

    ``inputs`` are ``(name, value)`` pairs bound first.  The outcome is
    ``(status, payload, found, missing)``: status and payload as
    ``cells.run_cell`` returns them, ``found`` the ``(name, value)`` pairs of
    the ``outputs`` names that exist, ``missing`` the rest.  Returns it if
    the job ends within ``QUICK`` seconds; else returns None and the job's
    thread calls ``report(key, *outcome)`` when it ends.  ``key`` names the
    job for ``cancel``.
    """
    link, seq = routes.current()
    link.reporter = report
    job = (id(link.conn), key)
    _no_delay(link.conn)
    handover = _Handover()
    thread = threading.Thread(
        target=_run,
        args=(job, seq, source, namespace, inputs, outputs, handover, report),
        name="jupyter-rsym job",
        daemon=True,
    )
    thread.start()  # inherits this request's route: its output goes to the cell
    return handover.take(QUICK)


class _Handover:
    """Who tells the notebook how a job ended: ``start_cell``'s reply if the
    job ends while it waits, else the job's own thread (exactly one of them)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._ended = threading.Event()
        self._outcome = None
        self._replied = False

    def take(self, timeout):
        """In ``start_cell``: the outcome, or None after ``timeout`` s."""
        self._ended.wait(timeout)
        with self._lock:
            self._replied = True
            return self._outcome

    def give(self, outcome):
        """In the job's thread: whether the reply carries ``outcome``."""
        with self._lock:
            if self._replied:
                return False
            self._outcome = outcome
        self._ended.set()
        return True


def _no_delay(conn):
    """Send small writes at once on this link: a job's output batch and
    its report (or ``start_cell``'s reply) are two writes in a row, and
    Nagle's algorithm would hold the second until the first is acknowledged
    (a round trip, or a delayed ACK's 40 ms)."""
    sock = getattr(getattr(conn._channel, "stream", None), "sock", None)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError):
        pass  # not a TCP socket


def _run(job, seq, source, namespace, inputs, outputs, handover, report):
    stack = tags._dispatching.__dict__.setdefault("stack", [])
    stack.append((job[0], seq))  # its requests are tagged as caused by the start request
    try:
        try:
            outcome = _execute(job, source, namespace, inputs, outputs)
        except BaseException as exc:  # a cancel that landed outside the cell's own code
            outcome = ("error", describe_exception(exc), (), ())
        if not handover.give(outcome):
            try:
                report(job[1], *outcome)
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
