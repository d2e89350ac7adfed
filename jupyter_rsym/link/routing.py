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
* **Working for a cell**: a remote thread whose work a request of ours
  caused (a pool job, a thread or asyncio task it started) sent it; the agent
  tags its seq ``(n, cause_seq, WORKING)``.  It belongs to the cell that sent
  ``cause_seq``, like the thread's prints; no cell waits on it.
* **Spontaneous**: a remote thread, timer or event no request of ours caused
  sent it (plain int seq).  It belongs to the cell that handed the callable
  over: we record the parent current when each local object was first boxed
  for the remote.

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

from rpyc.core import consts
from rpyc.lib.colls import RefCountingColl

from ..remote.tracebacks import format_exception

MAX_CAUSES = 1000  # parent transitions kept; see Router._forget_old
IN_USE = 600.0  # seconds: an old cause looked up this recently is kept
_MAIN = threading.main_thread()
_INTERNED = ("msg_type", "username", "session", "version")  # values repeated in every header


def compact_header(parent):
    """The header of a parent message (all ``set_thread_parent`` reads), its
    keys and repeated values interned: ~0.4 KB instead of a whole message."""
    if not parent:
        return None
    header = parent.get("header", parent)
    return {
        sys.intern(key): sys.intern(value) if key in _INTERNED and type(value) is str else value
        for key, value in header.items()
    }


class Router:
    """Maps requests and local objects to the notebook cell that caused them.

    It keeps parent headers only, for the last ``MAX_CAUSES`` changes of
    parent, plus older ones that were looked up, after newer ones came,
    in the last ``IN_USE`` seconds (a remote thread of an old cell that
    keeps printing); output of a forgotten cause goes where the kernel
    sends unrouted output.
    """

    def __init__(self, shell=None):
        self._get = getattr(shell, "get_parent", None)
        self._set = getattr(shell, "set_thread_parent", None)
        self._reset = getattr(shell, "reset_thread_parent", None)
        self.enabled = None not in (self._get, self._set, self._reset)
        self._lock = threading.Lock()
        self._seqs = []  # first seq of each run of requests with one parent
        self._parents = []  # its compact header, None once forgotten
        self._last = (None, None)  # (parent as get_parent returned it, its compact header)
        self._late = {}  # id of a header -> when it was last looked up after newer ones came
        self._last_used = None  # see last_parent

    def current(self):
        """The calling thread's parent header (None outside a kernel)."""
        if not self.enabled:
            return None
        parent = self._get()
        last, header = self._last
        if parent is not last:
            header = compact_header(parent)
            self._last = (parent, header)
        return header

    def record_request(self, seq, used=True):
        """Remember which parent sent request ``seq`` (seqs only grow); ``used``:
        a cell's use of the session (a collected proxy's deletion is not)."""
        if not self.enabled:
            return
        header = self.current()
        if used:
            self._last_used = header
        if self._parents and self._parents[-1] is header:  # the common case, no lock
            return
        with self._lock:
            self._seqs.append(seq)
            self._parents.append(header)
            if len(self._seqs) > MAX_CAUSES:
                self._forget_old()

    def _forget_old(self):
        """Keep the newest half, and older causes in use; merge what is
        forgotten into runs of None."""
        keep_from = len(self._seqs) - MAX_CAUSES // 2
        recently = time.monotonic() - IN_USE
        seqs, parents = [], []
        for i, (seq, header) in enumerate(zip(self._seqs, self._parents)):
            looked_up = self._late.get(id(header))  # (monotonic time starts near boot: no 0 default)
            if i < keep_from and (looked_up is None or looked_up < recently):
                header = None
            if parents and parents[-1] is header:
                continue
            seqs.append(seq)
            parents.append(header)
        self._seqs, self._parents = seqs, parents
        kept = {id(header) for header in parents}
        self._late = {key: when for key, when in self._late.items() if key in kept}

    def last_parent(self):
        """The parent that sent our most recent request that used the session
        (None: none, or unknown)."""
        return self._last_used

    def parent_of_request(self, seq):
        """The parent header that sent our request ``seq`` (None: unknown)."""
        with self._lock:
            i = bisect.bisect_right(self._seqs, seq) - 1
            header = self._parents[max(i, 0)] if self._parents else None
            if header is not None and i < len(self._parents) - 1:
                self._late[id(header)] = time.monotonic()
            return header

    def parent_of_incoming(self, seq, raw_args, origins):
        """The parent that caused an incoming request (None: unknown)."""
        if not self.enabled:
            return None
        if type(seq) is tuple:  # nested or working for a cell: tagged with its cause
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
        last, header = self._last
        if header is parent and threading.current_thread() is _MAIN and self._get() is last:
            # the main thread's output already goes there (a cell's own nested
            # callback): nothing to set or reset.  Main thread only: elsewhere
            # get_parent() may be the kernel's latest cell, not this thread's.
            return None
        return self._set(parent)

    def leave(self, token):
        if token is not None:
            self._reset(token)


class OriginTrackingObjects(RefCountingColl):
    """rpyc's table of local objects the remote holds, plus who handed each over.

    ``pinned`` ({key: parent}) fixes the origin of objects that keep the
    cell they were first handed over from, however often they are boxed
    again (a session's stable functions, re-bound when it resumes).
    """

    __slots__ = ("origins", "_router", "_pinned")

    def __init__(self, router, pinned=None):
        super().__init__()
        self.origins = {}
        self._router = router
        self._pinned = {} if pinned is None else pinned

    def add(self, key, obj):
        super().add(key, obj)
        pinned = self._pinned.get(key)
        self.origins[key] = self._router.current() if pinned is None else pinned

    def decref(self, key, count=1):
        super().decref(key, count)
        if key not in self._dict:
            self.origins.pop(key, None)

    def clear(self):
        super().clear()
        self.origins.clear()


def report_callback_error(typ, val, tb):
    """Print a callback's traceback without rpyc's dispatch frames."""
    print(
        "A notebook function called by a remote thread raised (the remote caller received the exception):",
        file=sys.stderr,
    )
    sys.stderr.write(format_exception(val, tb))
