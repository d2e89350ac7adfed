"""The notebook end of a classic rpyc connection.

``RoutedConnection`` is rpyc's Connection with these changes: every request
it serves runs under the parent of the cell that caused it (``routing.py``);
waiting for a reply is bounded, checks that a busy server is alive, and
survives Ctrl-C (``sigint.py``); it tells the reader
(``reader.py``) when a local thread is already serving the connection; it
sends without copying large messages (``remote/wire.py``) and can keep
several requests in flight (``pipeline``, for bulk data); and connecting
costs no round trip of its own (the session asks for everything at once).
"""

import collections
import itertools
import threading
import time

from rpyc.core import consts
from rpyc.core.protocol import Connection
from rpyc.core.service import ClassicClient
from rpyc.lib.compat import TimeoutError as ReplyTimeout

from ..remote.boxing import refusal, unsendable
from ..remote.tracebacks import BASES_ATTR, box_exception
from ..remote.wire import Piece, no_delay_during, register_pieces, release_receive_lock, send_message
from .errors import Interrupted, NoAnswer, RanTooLong, RemoteError, from_rpyc_exception, set_attributes
from .proxies import QuickRoot
from .reader import WaiterCount
from .routing import OriginTrackingObjects, report_callback_error

_CALLS = (consts.HANDLE_CALL, consts.HANDLE_CALLATTR)
_CHECKED = (consts.HANDLE_CALL, consts.HANDLE_CALLATTR, consts.HANDLE_GETATTR)
INTERRUPTED_CALLBACK = "interrupted in the notebook"
_OWN_FIELDS = frozenset(("message", "remote_traceback", "remote_type", "remote_module", "session"))
INTERRUPT_GRACE = 0.5  # seconds an interrupted request's reply is still awaited
register_pieces()


class RoutedConnection(QuickRoot, Connection):
    """An rpyc Connection that serves every request in its causing cell.

    It also tells its ``waiters`` (the reader) while a local
    thread waits on a reply, since that thread then serves the connection
    itself, as in plain rpyc.
    """

    def __init__(self, root, channel, config):
        self.router = root.router
        self.waiters = root.waiters
        self._unattended_call = _Flag()
        self._collecting = _Flag()  # sending a collected proxy's deletion
        super().__init__(root, channel, config)
        # one session's connections number requests in one sequence, so the
        # causes of output a resumed session replays still name their cells
        self._seqcounter = root.seqs
        self._local_objects = OriginTrackingObjects(self.router, root.pinned)

    def _get_seq_id(self):
        seq = next(self._seqcounter)
        self.router.record_request(seq, used=not self._collecting.active)
        return seq

    def _async_request(self, handler, args=(), callback=(lambda a, b: None)):
        # a proxy's deletion, sent in whichever cell the garbage collector ran, is no use of the session
        self._collecting.active = handler == consts.HANDLE_DEL
        try:
            return super()._async_request(handler, args, callback)
        finally:
            self._collecting.active = False

    def _dispatch_request(self, seq, raw_args):
        nested = type(seq) is tuple and len(seq) == 2  # (n, cause, WORKING): a remote thread's
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
        set_attributes(remote, [(name, value) for name, value in raw[2] if name != BASES_ATTR])
        return remote.of_session(getattr(self, "session", None))

    def _send(self, msg, seq, args):
        send_message(self, msg, seq, args)

    def _box(self, obj):
        if type(obj) is Piece:  # a slice of a large value, sent as bytes without a copy
            return consts.LABEL_VALUE, obj
        return super()._box(obj)

    @classmethod
    def _request_handlers(cls):
        # a reply rpyc cannot send fails its request instead of the connection
        handlers = super()._request_handlers()
        for handler in _CHECKED:
            handlers[handler] = _checked(handler, handlers[handler])
        return handlers

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
        if self.closed:
            raise self.on_lost(EOFError("connection closed"), sent=False)
        try:
            return self._waiting(lambda: self._request(handler, args, timeout))
        except Interrupted:
            raise
        except KeyboardInterrupt:  # delivered by the guard, after the reply
            raise Interrupted() from None

    def pipeline(self, handler, calls, on_reply, window, timeout):
        """Send the requests ``handler(*args)`` for each ``args`` in ``calls``,
        at most ``window`` unanswered at a time, and call ``on_reply(args,
        reply)`` for each, in order, as the replies arrive.

        For bulk data: the next piece is on its way while this one is handled,
        so neither end waits for a round trip.  ``timeout`` bounds the wait
        for each reply.  On any failure (a remote exception, Ctrl-C, a lost
        link) the requests still in flight are abandoned: their late replies
        are dropped.
        """
        calls = iter(calls)
        pending = collections.deque()
        try:
            with no_delay_during(self._channel.stream):
                self._waiting(lambda: self._pipeline(handler, calls, pending, on_reply, window, timeout))
        except KeyboardInterrupt:
            raise Interrupted() from None
        except BaseException as exc:
            error = self._link_error(exc, timeout)
            if error is exc:
                raise
            raise error from None
        finally:
            for seq, _, _ in pending:
                self._request_callbacks.pop(seq, None)

    def _pipeline(self, handler, calls, pending, on_reply, window, timeout):
        while True:
            while len(pending) < window:
                args = next(calls, None)
                if args is None:
                    break
                pending.append((*self._start(handler, args), args))
            if not pending:
                return
            seq, result, args = pending[0]
            self._wait(result, timeout)
            pending.popleft()
            if result.is_exc:
                raise result.value
            on_reply(args, result.value)

    def _waiting(self, work):
        """``work()`` as a local thread waiting on replies: it serves the
        connection (the reader steps aside) and Ctrl-C is made safe.  Not a
        context manager: it runs once per call."""
        waiters = self.waiters
        guard = self._channel.guard
        waiters.enter()
        try:
            token = guard.enter()
            try:
                return work()
            finally:
                guard.leave(token)
        finally:
            waiters.leave()

    def request_async(self, handler, args, on_reply):
        """Send a request without waiting for it; returns its seq.

        ``on_reply(is_exc, value)`` runs in whichever thread reads the reply:
        a serving thread of the reader while no local thread waits on the connection.
        """
        seq = self._get_seq_id()
        self._request_callbacks[seq] = on_reply
        try:
            self._send(consts.MSG_REQUEST, seq, (handler, self._box(args)))
        except BaseException:
            self._request_callbacks.pop(seq, None)
            raise
        return seq

    def _start(self, handler, args):
        """Send one request; returns its seq and the Reply its answer fills."""
        result = Reply()
        return self.request_async(handler, args, result), result

    def _request(self, handler, args, timeout):
        try:
            seq, result = self._start(handler, args)
        except BaseException as exc:  # the link broke under the send
            error = self._link_error(exc, timeout, sent=False)
            if error is exc:
                raise
            raise error from None
        try:
            self._wait(result, timeout)
        except KeyboardInterrupt:
            self._abandon(seq, result)
            raise _interrupted(result, getattr(self, "session", None)) from None
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

    def _link_error(self, exc, timeout, sent=True):
        """What the cell shows when a request failed (``sent``: while waiting
        for its reply): one line for a failed link."""
        if isinstance(exc, EOFError):
            return self.on_lost(exc, sent)
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
            release_receive_lock(self)
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

    def on_lost(self, exc, sent=True):
        """The exception to raise when the link drops under a request
        (``sent``: after the request went out, while waiting for its reply)."""
        return exc

    def cancel(self, seq):
        """Ask the remote to stop the work for request ``seq``; returns its state."""

    def check_alive(self):
        """Raise if the server does not answer (a busy one does)."""


def _interrupted(result, session):
    """The Interrupted to raise, with the remote frames where the work stopped
    if its answer came in time."""
    stop = Interrupted()
    stop.session = session
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


class ClientService(ClassicClient):
    """Exposes nothing by name to the remote (``ClassicClient``): the remote
    can only call back into objects the notebook handed over."""

    _protocol = RoutedConnection

    def __init__(self, router, seqs=None, pinned=None):
        super().__init__()
        self.router = router
        self.waiters = WaiterCount()
        self.seqs = itertools.count() if seqs is None else seqs  # request numbers
        self.pinned = {} if pinned is None else pinned  # see routing.OriginTrackingObjects

    def on_connect(self, conn):
        """Nothing here: rpyc's classic client would fetch the root and four of
        its attributes one round trip each; the session gets all it needs in
        one request instead (``session.py``)."""


class ControlConnection(QuickRoot, Connection):
    """The side connection: plain rpyc, with a root that costs no INSPECT."""


class ControlService(ClassicClient):
    """The side connection's service: exposes nothing, sets nothing up."""

    _protocol = ControlConnection

    def on_connect(self, conn):
        pass


def _checked(handler_id, handler):
    """``handler``, failing with one line when rpyc could not send its result (``boxing``)."""

    def run(conn, *args):
        result = handler(conn, *args)
        reason = unsendable(result)
        if reason is not None:
            raise refusal(result, reason, handler_id, args, "the remote")
        return result

    return run
