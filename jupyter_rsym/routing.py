"""Cell-aware routing: which notebook cell a callback or remote output belongs to.

ipykernel 7 routes a thread's output to a parent message: the one set with
``shell.set_thread_parent`` for that thread, else the last message of any
kind.  A callback from the remote is served by whichever local thread is
reading the connection (the cell's thread while it waits on a reply, a
background thread otherwise), so the reader's parent says nothing about who
caused the callback.  We set the parent explicitly for every request we
serve, by these rules:

* **Nested**: the remote sent it while dispatching one of our requests (the
  cell called ``map(g, ...)``, the remote calls ``g``).  It belongs to the
  cell that sent that request.  The agent (``agent.py``) tags such requests
  by making their seq ``(n, cause_seq)``; we record the parent of every
  request we send, so ``cause_seq`` maps back to a cell.
* **Spontaneous**: a remote thread, timer or event sent it (plain int seq).
  It belongs to the cell that handed the callable over: we record the parent
  current when each local object was first boxed for the remote.

Why seq tags and not rpyc's ``bind_threads``: ``bind_threads`` prefixes every
frame with 16 bytes, so both ends must enable it, and a stock ``rpyc_classic``
server started without it cannot talk to us.  The seq is echoed verbatim by
any rpyc peer, so the tag costs no extra bytes on untagged requests, no round
trip, and works with the code we send at connect time.

Remote output chunks carry the same cause seq (see ``output.py``).
"""

import bisect
import sys
import threading
import time
import traceback

from rpyc.core import consts
from rpyc.core.protocol import Connection
from rpyc.lib.colls import RefCountingColl
from rpyc.lib.compat import TimeoutError as ReplyTimeout

from .errors import NoAnswer

_CALLS = (consts.HANDLE_CALL, consts.HANDLE_CALLATTR)
INTERRUPTED_CALLBACK = "interrupted in the notebook"
INTERRUPT_GRACE = 0.5  # seconds an interrupted request's reply is still awaited
MAX_CAUSES = 20000  # parent transitions kept; older causes fall back to the oldest kept


class Router:
    """Maps requests and local objects to the notebook message that caused them."""

    def __init__(self, shell=None):
        self._get = getattr(shell, "get_parent", None)
        self._set = getattr(shell, "set_thread_parent", None)
        self._reset = getattr(shell, "reset_thread_parent", None)
        self.enabled = None not in (self._get, self._set, self._reset)
        self._lock = threading.Lock()
        self._seqs = []  # first seq of each run of requests with one parent
        self._parents = []

    def current(self):
        """The parent message of the calling thread (None outside a kernel)."""
        return self._get() if self.enabled else None

    def record_request(self, seq):
        """Remember which parent sent request ``seq`` (seqs only grow)."""
        if not self.enabled:
            return
        parent = self._get()
        if self._parents and self._parents[-1] is parent:  # the common case, no lock
            return
        with self._lock:
            self._seqs.append(seq)
            self._parents.append(parent)
            if len(self._seqs) > MAX_CAUSES:
                del self._seqs[: MAX_CAUSES // 2], self._parents[: MAX_CAUSES // 2]

    def parent_of_request(self, seq):
        """The parent that sent our request ``seq``."""
        with self._lock:
            i = bisect.bisect_right(self._seqs, seq) - 1
            return self._parents[max(i, 0)] if self._parents else None

    def enter(self, parent):
        """Route the calling thread's output to ``parent``; returns a token."""
        if parent is None or not self.enabled:
            return None
        return self._set(parent)

    def leave(self, token):
        if token is not None:
            self._reset(token)


class OriginTrackingObjects(RefCountingColl):
    """rpyc's table of local objects the remote holds, plus who handed each over."""

    __slots__ = ("origins", "_router")

    def __init__(self, router):
        super().__init__()
        self.origins = {}
        self._router = router

    def add(self, key, obj):
        super().add(key, obj)
        self.origins[key] = self._router.current()

    def decref(self, key, count=1):
        super().decref(key, count)
        if key not in self._dict:
            self.origins.pop(key, None)

    def clear(self):
        super().clear()
        self.origins.clear()


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
        token = self.router.enter(self._parent_of_incoming(seq, raw_args))
        calling = self._unattended_call.active
        self._unattended_call.active = not nested and raw_args[0] in _CALLS
        try:
            super()._dispatch_request(seq, raw_args)
        finally:
            self._unattended_call.active = calling
            self.router.leave(token)

    def _parent_of_incoming(self, seq, raw_args):
        if not self.router.enabled:
            return None
        if type(seq) is tuple:  # nested: tagged with the request that caused it
            return self.router.parent_of_request(seq[1])
        try:  # spontaneous: the cell that handed the target object over
            label, items = raw_args[1]
            if label == consts.LABEL_TUPLE and items and items[0][0] == consts.LABEL_LOCAL_REF:
                return self._local_objects.origins.get(items[0][1])
        except (TypeError, ValueError, IndexError):
            pass
        return None

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
        return super()._box_exc(typ, val, tb)

    def sync_request(self, handler, *args):
        return self.request(handler, args, self._config["sync_request_timeout"])

    def request(self, handler, args, timeout):
        """Send a request and wait up to ``timeout`` s (None: forever) for its reply.

        While waiting, the calling thread serves the connection (nested
        callbacks run here).  If the wait outlasts ``liveness_interval``, the
        ``check_alive`` hook (a ping on a side connection) tells a busy server
        from a hung one.  On KeyboardInterrupt the ``cancel`` hook asks the
        remote to stop the work; the reply gets ``INTERRUPT_GRACE`` s, then
        is abandoned.  Either way the connection stays usable.
        """
        waiters = self.waiters
        guard = self._channel.guard
        waiters.enter()
        token = guard.enter()
        try:
            result = Reply()
            seq = self._get_seq_id()
            self._request_callbacks[seq] = result
            try:
                self._send(consts.MSG_REQUEST, seq, (handler, self._box(args)))
            except Exception:
                self._request_callbacks.pop(seq, None)
                raise
            try:
                self._wait(result, timeout)
            except KeyboardInterrupt:
                self._abandon(seq, result)
                raise
            except NoAnswer:  # from check_alive
                self._request_callbacks.pop(seq, None)
                raise
            except ReplyTimeout:
                self._request_callbacks.pop(seq, None)
                raise NoAnswer(f"no answer from {self.peer} in {timeout:g} s") from None
            except EOFError as exc:
                raise self.on_lost(exc) from None
            except BaseException:
                self._request_callbacks.pop(seq, None)
                raise
            if result.is_exc:
                raise result.value
            return result.value
        finally:
            try:
                guard.leave(token)
            finally:
                waiters.leave()

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
        try:
            self.cancel(seq)
        except Exception:
            pass
        deadline = time.monotonic() + INTERRUPT_GRACE
        try:
            while not result.ready and not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._serve_interruptibly(left, lambda: not result.ready)
        except (KeyboardInterrupt, EOFError):
            pass  # pressed again, or the link died: stop waiting
        self._request_callbacks.pop(seq, None)

    # hooks the session fills in
    liveness_interval = None
    peer = "the server"

    def on_lost(self, exc):
        """The exception to raise when the link drops under a request."""
        return exc

    def cancel(self, seq):
        pass

    def check_alive(self):
        pass


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


def report_callback_error(typ, val, tb):
    """Print a callback's traceback without rpyc's dispatch frames."""
    while tb is not None and "rpyc" in tb.tb_frame.f_code.co_filename:
        tb = tb.tb_next
    print("A notebook function called by a remote thread raised (the remote caller "
          "received the exception):", file=sys.stderr)
    traceback.print_exception(typ, val, tb, file=sys.stderr)


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
