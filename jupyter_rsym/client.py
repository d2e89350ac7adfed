"""The notebook end of a classic rpyc connection.

``RoutedConnection`` is rpyc's Connection with three changes: every request
it serves runs under the parent of the cell that caused it (``routing.py``);
waiting for a reply is bounded, checks that a busy server is alive, and
survives Ctrl-C (``interrupts.py``); and it tells the background server
(``serving.py``) when a local thread is already serving the connection.
"""

import threading
import time

from rpyc.core import consts
from rpyc.core.protocol import Connection
from rpyc.core.service import ClassicClient, ModuleNamespace
from rpyc.lib.compat import TimeoutError as ReplyTimeout

from .agent.tracebacks import box_exception
from .errors import Interrupted, NoAnswer, RanTooLong, RemoteError, from_rpyc_exception
from .routing import OriginTrackingObjects, report_callback_error

_CALLS = (consts.HANDLE_CALL, consts.HANDLE_CALLATTR)
INTERRUPTED_CALLBACK = "interrupted in the notebook"
_OWN_FIELDS = frozenset(("message", "remote_traceback", "remote_type", "remote_module"))
INTERRUPT_GRACE = 0.5  # seconds an interrupted request's reply is still awaited


class RoutedConnection(Connection):
    """An rpyc Connection that serves every request in its causing cell.

    It also tells its ``waiters`` (the background server) while a local
    thread waits on a reply, since that thread then serves the connection
    itself, as in plain rpyc.
    """

    def __init__(self, root, channel, config):
        self.router = root.router
        self.waiters = root.waiters
        self._unattended_call = _Flag()
        super().__init__(root, channel, config)
        self._local_objects = OriginTrackingObjects(self.router)

    def _get_seq_id(self):
        seq = next(self._seqcounter)
        self.router.record_request(seq)
        return seq

    def _dispatch_request(self, seq, raw_args):
        nested = type(seq) is tuple
        token = self.router.enter(self.router.parent_of_incoming(seq, raw_args, self._local_objects.origins))
        calling = self._unattended_call.active
        self._unattended_call.active = not nested and raw_args[0] in _CALLS
        try:
            super()._dispatch_request(seq, raw_args)
        finally:
            self._unattended_call.active = calling
            self.router.leave(token)

    def _box_exc(self, typ, val, tb):
        if issubclass(typ, KeyboardInterrupt):
            # The user interrupted a notebook function the remote called.  The
            # remote gets an ordinary exception (a KeyboardInterrupt would end
            # a classic server's connection); the waiting cell is interrupted
            # at its next safe point.
            self._channel.guard.pending = True
            typ, val = RuntimeError, RuntimeError(INTERRUPTED_CALLBACK)
        elif self._unattended_call.active and not issubclass(typ, StopIteration):
            # A callback fired by a remote thread has no cell waiting on it:
            # show its error in the cell that handed it over (the remote gets it too).
            report_callback_error(typ, val, tb)
        # the traceback continues the remote's, without rpyc's or our frames
        boxed = box_exception(self, typ, val, tb)
        if isinstance(val, RemoteError) and isinstance(boxed, tuple):  # its own fields stay here
            boxed = (boxed[0], boxed[1], tuple(a for a in boxed[2] if a[0] not in _OWN_FIELDS), boxed[3])
        return boxed

    def _unbox_exc(self, raw):
        # A RemoteError: its message is the remote one (rpyc's appends the
        # remote traceback), and a remote SystemExit or KeyboardInterrupt
        # does not stop the kernel.  rpyc's restored args and attributes
        # (``errno``, ...) are kept.
        exc = super()._unbox_exc(raw)
        if getattr(exc, "_remote_tb", None) is None:  # StopIteration
            return exc
        remote = from_rpyc_exception(exc)
        remote.args = exc.args
        for name, value in raw[2]:
            if name in _OWN_FIELDS or callable(getattr(type(remote), name, None)):
                continue  # rpyc sends methods as their repr
            try:
                setattr(remote, name, value)
            except (AttributeError, TypeError):
                pass
        return remote

    def sync_request(self, handler, *args):
        return self.request(handler, args, self._config["sync_request_timeout"])

    def request(self, handler, args, timeout):
        """Send a request and wait up to ``timeout`` s (None: forever) for its reply.

        While waiting, the calling thread serves the connection (nested
        callbacks run here).  If the wait outlasts ``liveness_interval``, the
        ``check_alive`` hook (a ping on a side connection) tells a busy server
        from a hung one.  On KeyboardInterrupt the ``cancel`` hook asks the
        remote to stop the work; the reply gets ``INTERRUPT_GRACE`` s, then
        is abandoned, and ``errors.Interrupted`` is raised (the cell shows
        KeyboardInterrupt, not this code).  Either way the connection stays
        usable.
        """
        waiters = self.waiters
        guard = self._channel.guard
        waiters.enter()
        token = guard.enter()
        try:
            try:
                return self._request(handler, args, timeout)
            finally:
                try:
                    guard.leave(token)
                finally:
                    waiters.leave()
        except Interrupted:
            raise
        except KeyboardInterrupt:  # delivered by the guard, after the reply
            raise Interrupted() from None

    def request_async(self, handler, args, on_reply):
        """Send a request without waiting for it; returns its seq.

        ``on_reply(is_exc, value)`` runs in whichever thread reads the reply:
        the background server while no local thread waits on the connection.
        """
        seq = self._get_seq_id()
        self._request_callbacks[seq] = on_reply
        try:
            self._send(consts.MSG_REQUEST, seq, (handler, self._box(args)))
        except BaseException:
            self._request_callbacks.pop(seq, None)
            raise
        return seq

    def _request(self, handler, args, timeout):
        result = Reply()
        seq = self._get_seq_id()
        self._request_callbacks[seq] = result
        try:
            self._send(consts.MSG_REQUEST, seq, (handler, self._box(args)))
            self._wait(result, timeout)
        except KeyboardInterrupt:
            self._abandon(seq, result)
            raise _interrupted(result) from None
        except BaseException as exc:
            if isinstance(exc, ReplyTimeout) and not isinstance(exc, NoAnswer):
                # the remote may be busy with it: stop it, or the next call waits behind it
                raise self._timed_out(timeout, self._abandon(seq, result)) from None
            self._request_callbacks.pop(seq, None)
            error = self._link_error(exc, timeout)
            if error is exc:
                raise
            raise error from None
        if result.is_exc:
            raise result.value
        return result.value

    def _timed_out(self, timeout, state):
        """The one line for a call past its timeout, by what the remote did with it."""
        if state in ("stopped", "blocked"):
            return RanTooLong(timeout, state)
        return NoAnswer(self.peer, timeout)

    def _link_error(self, exc, timeout):
        """What the cell shows when waiting failed: one line for a failed link."""
        if isinstance(exc, EOFError):
            return self.on_lost(exc)
        return exc

    def _wait(self, result, timeout):
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        checked = start
        while not result.ready:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise ReplyTimeout("result expired")
            if self.liveness_interval and now - checked >= self.liveness_interval:
                self.check_alive()
                checked = time.monotonic()
            step = self.liveness_interval or None
            if deadline is not None:
                step = min(step or deadline - now, deadline - now)
            self._serve_interruptibly(step, lambda: not result.ready)
            if self._channel.guard.take_pending():
                raise KeyboardInterrupt

    def _serve_interruptibly(self, timeout, waiting):
        try:
            self.serve(timeout, waiting=waiting)
        except KeyboardInterrupt:
            # rpyc releases its receive lock for Exception only
            if self._recvlock._is_owned():
                self._recvlock.release()
                with self._recv_event:
                    self._recv_event.notify_all()
            raise

    def _abandon(self, seq, result):
        """Ask the remote to stop request ``seq``, give its reply a grace
        period, then forget it; returns what the remote said it did."""
        try:
            state = self.cancel(seq)
        except Exception:
            state = None  # no side connection: just give the reply its grace
        # "blocked": stuck in C, the reply will not come soon; another remote
        # thread already serves the connection
        deadline = time.monotonic() + (0 if state == "blocked" else INTERRUPT_GRACE)
        try:
            while not result.ready and not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._serve_interruptibly(left, lambda: not result.ready)
        except (KeyboardInterrupt, EOFError):
            pass  # pressed again, or the link died: stop waiting
        self._request_callbacks.pop(seq, None)
        return state

    # hooks the session fills in
    liveness_interval = None
    peer = "the server"

    def on_lost(self, exc):
        """The exception to raise when the link drops under a request."""
        return exc

    def cancel(self, seq):
        """Ask the remote to stop the work for request ``seq``; returns its state."""

    def check_alive(self):
        """Raise if the server does not answer (a busy one does)."""


def _interrupted(result):
    """The Interrupted to raise, with the remote frames where the work stopped
    if its answer came in time."""
    stop = Interrupted()
    if result.ready:
        stop.late_reply = (result.is_exc, result.value)
        if result.is_exc and getattr(result.value, "remote_type", None) == "KeyboardInterrupt":
            stop.remote_traceback = result.value.remote_traceback
    return stop


class Reply:
    """Where rpyc puts the answer to one request (it calls its request callbacks
    with ``(is_exc, value)``); unlike AsyncResult, reading it never polls."""

    __slots__ = ("ready", "is_exc", "value")

    def __init__(self):
        self.ready = False

    def __call__(self, is_exc, value):
        self.is_exc = is_exc
        self.value = value
        self.ready = True


class _Flag(threading.local):
    active = False


class WaiterCount:
    """How many local threads are waiting on a reply (and so serving)."""

    def __init__(self):
        self.count = 0
        self.changed = threading.Condition(threading.Lock())
        self.wake_when_idle = False  # the background server sleeps until count is 0

    def enter(self):
        with self.changed:
            self.count += 1

    def leave(self):
        with self.changed:
            self.count -= 1
            if not self.count and self.wake_when_idle:
                self.changed.notify_all()




class RemoteModules(ModuleNamespace):
    """Remote modules by name: ``r.modules.os``, ``r.modules["os.path"]``.

    ``__builtin__`` (Python 2's name, used by the rpyc tutorial) means
    ``builtins``.
    """

    __slots__ = ()
    ALIASES = {"__builtin__": "builtins"}

    def __getitem__(self, name):
        return super().__getitem__(self.ALIASES.get(name, name))


class ClientService(ClassicClient):
    """Exposes nothing by name to the remote (``ClassicClient``): the remote
    can only call back into objects the notebook handed over."""

    _protocol = RoutedConnection

    def __init__(self, router):
        super().__init__()
        self.router = router
        self.waiters = WaiterCount()

    @staticmethod
    def _install(conn, slave):
        conn.modules = RemoteModules(slave.getmodule)
        conn.builtins = conn.modules.builtins
        conn.eval = slave.eval
        conn.execute = slave.execute
        conn.namespace = slave.namespace
