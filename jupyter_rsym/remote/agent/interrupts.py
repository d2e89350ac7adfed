"""Interrupts: stop the remote handler serving one notebook request, and only it.

Each notebook request is dispatched by ``serve_request`` (rpyc's own
dispatch, plus a window): ``interrupt``, called over a second connection,
raises KeyboardInterrupt in the thread running the request's handler while
the handler runs, never in rpyc's code around it.
"""

import contextlib
import sys
import threading
import time

from .. import boxing, tracebacks, wire
from . import capture, lasterror, routes

# rpyc.core.consts, stable since rpyc 3
MSG_REPLY, MSG_EXCEPTION = 2, 3

_active = {}  # (connection id, seq) -> ident of the thread running its handler
_interrupted = set()
_shielded = {}  # ident -> whether an interrupt came while it asked the notebook (``shield``)
_active_lock = threading.Lock()


class _Interrupt(KeyboardInterrupt):
    """KeyboardInterrupt raised in remote code by the notebook's interrupt."""

    _rsym_interrupt = True


# tracebacks print it, and rpyc sends it, as a plain KeyboardInterrupt
_Interrupt.__module__, _Interrupt.__name__, _Interrupt.__qualname__ = ("builtins",) + ("KeyboardInterrupt",) * 2


def _set_async_exc(ident, exc_type):
    import ctypes

    return ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(exc_type) if exc_type else None
    )


def finish(key):
    """The handler for ``key`` has returned: an interrupt not raised yet is void."""
    with _active_lock:
        ident = _active.pop(key, None)
        if key in _interrupted:
            _interrupted.discard(key)
            if ident is not None:
                _set_async_exc(ident, None)


def release_on_interrupt(conn):
    """Make ``conn.serve`` let go of rpyc's receive lock when an interrupt
    lands while it reads: rpyc releases it for an ``Exception`` only, and a
    lock kept by one thread leaves every other thread waiting on a reply
    (a callback's answer) waiting for good.  The interrupt then goes on
    as usual."""
    serve = conn.serve

    def serve_releasing(*args, **kwargs):
        try:
            return serve(*args, **kwargs)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                wire.release_receive_lock(conn)
            raise

    conn.serve = serve_releasing


@contextlib.contextmanager
def shield():
    """An interrupt of the calling thread waits while it asks the notebook (a
    pdb prompt): raised inside rpyc's request it would break the connection;
    it is raised when the question is answered."""
    ident = threading.get_ident()
    with _active_lock:
        _shielded[ident] = False
    try:
        yield
    finally:
        with _active_lock:
            hit = _shielded.pop(ident, False)
        if hit:
            raise _Interrupt()


def serve_request(conn, key, raw_args, send):
    """rpyc's Connection._dispatch_request, with a window for interrupts.

    ``interrupt`` may raise KeyboardInterrupt asynchronously in this thread
    only while the handler runs; the pending exception is cleared before the
    reply is sent, so it can never land in rpyc's own code.  Every exception
    of the handler goes to the notebook, KeyboardInterrupt and SystemExit
    included (rpyc's ``propagate_*_locally`` would end the connection or the
    server), with a traceback that leaves rpyc and the agent out.
    """
    seq = key[1]
    try:
        handler, args = raw_args
        args = conn._unbox(args)
        with _active_lock:
            _active[key] = threading.get_ident()
        try:
            result = conn._HANDLERS[handler](conn, *args)
        finally:
            finish(key)
    except BaseException:
        typ, value, tb = sys.exc_info()
        conn._last_traceback = tb
        lasterror.keep(value, tb)  # for a post-mortem (%debug)
        send(MSG_EXCEPTION, seq, tracebacks.box_exception(conn, typ, value, tb))
    else:
        reason = boxing.unsendable(result)
        if reason is None:
            send(MSG_REPLY, seq, conn._box(result))
        else:  # rpyc would fail mid-send and end the connection
            error = boxing.refusal(result, reason, handler, args, "the notebook")
            send(MSG_EXCEPTION, seq, tracebacks.box_exception(conn, TypeError, error, None))


def interrupt(link_id, seq, serve_if_blocked=True):
    """Stop the handler serving request ``seq`` of a link; returns its state:
    "done" (nothing runs it), "stopped", or "blocked".

    Python code stops at its next bytecode.  Code blocked in C (a sleep, a
    read) cannot be cut short: then another thread serves the connection
    until it returns, so the notebook can use the connection meanwhile
    (unless ``serve_if_blocked`` is false: a job's own thread never blocks it).
    """
    link = capture.links.get(link_id)
    if link is None:
        return "done"
    key = (id(link.conn), seq)
    with _active_lock:
        ident = _active.get(key)
        if ident is None:
            return "done"
        if ident in _shielded:  # raised when its question to the notebook is answered
            _shielded[ident] = True
            return "blocked"
        _interrupted.add(key)
        _set_async_exc(ident, _Interrupt)
    deadline = time.monotonic() + 0.1
    while key in _active and time.monotonic() < deadline:
        time.sleep(0.005)
    if key not in _active:
        return "stopped"
    if not serve_if_blocked:
        return "blocked"
    thread = threading.Thread(target=_serve_while_busy, args=(link.conn, key), daemon=True)
    routes.unrouted(thread).start()
    return "blocked"


def _serve_while_busy(conn, key):
    """Serve the connection while its own thread is stuck in a handler."""
    while key in _active and not conn.closed:
        try:
            conn.serve(0.1)
        except Exception:
            return
