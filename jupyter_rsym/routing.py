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
  cell that sent that request.  The agent (``agent/tags.py``) tags such requests
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

from rpyc.core import consts
from rpyc.lib.colls import RefCountingColl

from .agent.tracebacks import format_exception

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

    def parent_of_incoming(self, seq, raw_args, origins):
        """The parent that caused an incoming request (None: unknown)."""
        if not self.enabled:
            return None
        if type(seq) is tuple:  # nested: tagged with the request that caused it
            return self.parent_of_request(seq[1])
        try:  # spontaneous: the cell that handed the target object over
            label, items = raw_args[1]
            if label == consts.LABEL_TUPLE and items and items[0][0] == consts.LABEL_LOCAL_REF:
                return origins.get(items[0][1])
        except (TypeError, ValueError, IndexError):
            pass
        return None

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


def report_callback_error(typ, val, tb):
    """Print a callback's traceback without rpyc's dispatch frames."""
    print("A notebook function called by a remote thread raised (the remote caller "
          "received the exception):", file=sys.stderr)
    sys.stderr.write(format_exception(val, tb))
