"""Output capture: remote writes go, batched, to the notebook link they belong to.

``sys.stdout``/``sys.stderr`` are replaced once per process by a
``RoutedStream`` that sends a write to the link of the work that made it
(see ``routes``: a request's handler, a thread it started, pool or asyncio
work it submitted).  Writes are buffered per link and shipped in batches (a
size threshold, an idle flusher thread, and always before the reply of the
request that caused them), each chunk tagged with its cause so the notebook
puts it in the right cell.  Code with no route writes to the original
streams (the server terminal), which notebook code cannot close.
"""

import collections
import sys
import threading
import time
import weakref

from . import routes

links = weakref.WeakValueDictionary()  # id -> Link
_install_lock = threading.Lock()
_flusher = None


class Link:
    """The agent's state for one notebook session's output: its buffer, and the
    connection it ships batches to.

    Writes are sealed into batches numbered in order; a batch stays until the
    notebook acknowledges it (the reply of its ``emit`` call, or the number
    it reports when it resumes), so a batch lost with a connection goes
    again on the next one: at least once on the wire, and the notebook drops
    numbers it has seen.  A link of a kept session (``keep_bytes`` > 0, see
    ``sessions``) outlives its connection: while it is detached, output
    collects up to ``keep_bytes`` characters (then the oldest is dropped and
    one marker line says how much), and ``attach`` ships it to the next
    connection.  Any other link dies with its first failed batch.
    """

    def __init__(self, conn, emit, batch_bytes, keep_bytes=0):
        self.conn = conn
        self.batch_bytes = batch_bytes
        self.keep_bytes = keep_bytes
        self.dead = False
        self.on_failed = None  # kept links: called with the connection a batch failed on
        self.ask = None  # the notebook's input() answerer (see inputs)
        self.reporter = None  # the notebook's job-end callback, kept: one proxy for every job (see jobs)
        self.log_level = 30  # logging records at this level or above go to the cell (see logs)
        self._chunks = []  # [cause, stream name, [text, ...]] or [cause, kind, payload, size]
        self._size = 0
        self._batches = collections.deque()  # sealed, unacknowledged: [seq, chunks, size, dropped, cause]
        self._kept = 0  # characters in _batches
        self._unreported = (0, None)  # dropped output no kept batch reports yet: (count, cause)
        self._seq = 0
        self._buffer_lock = threading.Lock()
        self._route = _Route(conn, emit)  # where batches go; None while detached
        self._flushing = set()  # threads inside this link's emit
        links[id(self)] = self

    def buffer(self, cause, name, text):
        with self._buffer_lock:
            was_empty = not self._chunks
            last = self._chunks[-1] if self._chunks else None
            if last is not None and last[0] == cause and last[1] == name:
                last[2].append(text)
            else:
                self._chunks.append([cause, name, [text]])
            self._size += len(text)
            full = self._size >= self.batch_bytes
        self._queued(was_empty, full)

    def buffer_item(self, cause, kind, payload, size=0):
        """Queue a non-text item (a display) in order with the text around it.

        ``payload`` must travel by value (tuples of str, bytes, numbers).
        """
        size = max(size, ITEM_BYTES)  # even a clear_output: else the kept buffer has no bound
        with self._buffer_lock:
            was_empty = not self._chunks
            self._chunks.append([cause, kind, payload, size])
            self._size += size
            full = self._size >= self.batch_bytes
        self._queued(was_empty, full)

    def _queued(self, was_empty, full):
        if full:
            self.flush()
        elif was_empty:
            _flusher.wake(self)

    @property
    def pending(self):
        """Whether output waits to be shipped on the current connection."""
        route = self._route
        return bool(self._chunks) or (route is not None and bool(self._batches) and self._batches[-1][0] > route.sent)

    def flushing_here(self):
        """Whether the calling thread is inside this link's flush (its emit request)."""
        return threading.get_ident() in self._flushing

    def flush(self):
        """Ship buffered output to the notebook, in order; keep it while detached."""
        with self._buffer_lock:
            self._seal()
            route = self._route
        if route is None:
            return
        with route.lock:  # one connection's batches go one at a time, in order
            while True:
                with self._buffer_lock:
                    if route is not self._route:
                        return
                    batch = next((b for b in self._batches if b[0] > route.sent), None)
                    if batch is None:
                        return
                    seq, chunks = batch[0], self._shipped(batch)
                route.sent = seq
                self._flushing.add(threading.get_ident())
                try:
                    route.emit(chunks, seq)
                except Exception:
                    self._failed(route)
                    return
                finally:
                    self._flushing.discard(threading.get_ident())
                self.acknowledge(seq)

    def acknowledge(self, seq):
        """The notebook has batches up to ``seq``: forget them."""
        with self._buffer_lock:
            while self._batches and self._batches[0][0] <= seq:
                self._kept -= self._batches.popleft()[2]

    def attach(self, conn, emit):
        """Ship to ``conn`` from now on, starting with every unacknowledged batch."""
        with self._buffer_lock:
            self.conn = conn
            self._route = _Route(conn, emit)
        self.flush()

    def detach(self, conn=None):
        """The connection is gone: a kept link collects output until ``attach``,
        any other link dies (its routes write to the original streams)."""
        with self._buffer_lock:
            if conn is not None and (self._route is None or self._route.conn is not conn):
                return  # already shipping elsewhere
            self._route = None
            if not self.keep_bytes:
                self._drop()

    def end(self):
        """The session is over: drop its output, now and from now on."""
        with self._buffer_lock:
            self._route = None
            self._drop()

    def _drop(self):
        self.dead = True
        self._chunks, self._size = [], 0
        self._batches.clear()
        self._kept = 0

    def _failed(self, route):
        with self._buffer_lock:
            if route is not self._route:
                return
            self._route = None
            if not self.keep_bytes:
                self._drop()
                return
        if self.on_failed is not None:
            self.on_failed(route.conn)

    def _seal(self):
        """Buffered writes become the next numbered batch (buffer lock held)."""
        if not self._chunks:
            return
        if self.dead:
            self._chunks, self._size = [], 0
            return
        self._seq += 1
        self._batches.append([self._seq, self._chunks, self._size, *self._unreported])
        self._unreported = (0, None)
        self._kept += self._size
        self._chunks, self._size = [], 0
        if self.keep_bytes and self._kept > self.keep_bytes:
            self._trim(self._kept - self.keep_bytes)

    def _trim(self, excess):
        """Drop ``excess`` characters of the oldest output; the oldest batch
        kept carries the count (and the cause of the last dropped chunk) for
        the marker line."""
        dropped, cause = 0, None
        while excess > 0 and self._batches:
            batch = self._batches[0]
            dropped, cause = dropped + batch[3], batch[4] or cause
            chunks = batch[1]
            while chunks and excess > 0:
                chunk = chunks[0]
                cause, text = chunk[0], "".join(chunk[2]) if type(chunk[2]) is list else None
                size = len(text) if text is not None else chunk[3]
                if size <= excess or text is None:  # a display goes whole
                    chunks.pop(0)
                    cut = size
                else:  # never the whole text: some output is always kept
                    cut = _line_cut(text, excess)
                    chunk[2] = [text[cut:]]
                excess, dropped = excess - cut, dropped + cut
                batch[2] -= cut
                self._kept -= cut
            if chunks:
                batch[3], batch[4] = dropped, cause
                return
            self._batches.popleft()
            self._kept -= batch[2]  # what is left of its count (0 unless sizes drifted)
        self._unreported = (dropped, cause)  # nothing kept (a display went whole): the next batch says it

    def _shipped(self, batch):
        """A batch as the notebook's ``emit`` takes it: ((cause, kind, content), ...)."""
        _, chunks, _, dropped, cause = batch
        shipped = tuple((c[0], c[1], "".join(c[2]) if type(c[2]) is list else c[2]) for c in chunks)
        if dropped:
            shipped = ((cause, "stderr", DROPPED % (dropped, self.keep_bytes)),) + shipped
        return shipped


class _Route:
    """One connection a link ships to: its emit, and what went out on it."""

    __slots__ = ("conn", "emit", "lock", "sent")

    def __init__(self, conn, emit):
        self.conn = conn
        self.emit = emit
        self.lock = threading.Lock()
        self.sent = 0  # the last batch number emitted here


ITEM_BYTES = 64  # about what an item costs in a batch on the wire: its cause, kind and payload
DROPPED = (
    "[jupyter-rsym: %d characters of output dropped here: more than the server keeps "
    "(--resume-buffer %d) waited while the link was down]\n"
)


def _line_cut(text, excess):
    """Where to cut ``excess`` characters off the front of ``text``: at the
    start of a line if one begins soon after."""
    newline = text.find("\n", excess - 1)
    if newline != -1 and newline + 1 < len(text) and newline - excess < 200:
        return newline + 1
    return excess


class RoutedStream:
    """Stand-in for sys.stdout/stderr that routes writes by thread.

    ``flush()`` of a routed thread does not force a round trip (logging and
    progress bars flush after every line); the flusher ships the buffer
    within ``flush_interval``.
    """

    def __init__(self, name, original):
        self._rsym_name = name
        self._rsym_original = original

    def write(self, text):
        route = routes.current()
        if route is None or route[0].dead:
            if self._rsym_original is None:
                return len(text)
            return self._rsym_original.write(text)
        if not isinstance(text, str):  # as a text file says it, from the caller's line
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        route[0].buffer(route[1], self._rsym_name, text)
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        if routes.current() is None and self._rsym_original is not None:
            self._rsym_original.flush()

    def close(self):
        """Notebook code cannot close the process's stream (the server's
        terminal, and every other notebook's output, would go with it)."""
        if routes.current() is None and self._rsym_original is not None:
            self._rsym_original.close()

    def isatty(self):
        return False

    def __getattr__(self, name):
        return getattr(self._rsym_original, name)


class Flusher:
    """One daemon thread per process that ships output left in buffers."""

    def __init__(self):
        self.interval = 0.05
        self._pending = set()
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._stopping = False
        self.thread = threading.Thread(target=self._run, name="jupyter-rsym-flusher", daemon=True)
        routes.unrouted(self.thread).start()

    def wake(self, link):
        with self._lock:
            self._pending.add(link)
        self._wakeup.set()

    def stop(self):
        self._stopping = True
        self._wakeup.set()
        self.thread.join(1)

    def _run(self):
        while not self._stopping:
            self._wakeup.wait()
            time.sleep(self.interval)  # gathers a batch; not a poll
            with self._lock:
                self._wakeup.clear()
                pending, self._pending = self._pending, set()
            for link in pending:
                link.flush()


def install(flush_interval):
    """Replace the process's streams and start the flusher (once per process)."""
    global _flusher
    with _install_lock:
        if not isinstance(sys.stdout, RoutedStream):
            sys.stdout = RoutedStream("stdout", sys.stdout)
        if not isinstance(sys.stderr, RoutedStream):
            sys.stderr = RoutedStream("stderr", sys.stderr)
        routes.route_new_work()
        if _flusher is None:
            _flusher = Flusher()
        _flusher.interval = min(_flusher.interval, flush_interval)


def uninstall():
    """Undo ``install``: the process's own streams back, the flusher stopped,
    new threads no longer routed (a process our server leaves while it goes
    on: a Dask worker whose plugin is removed)."""
    global _flusher
    with _install_lock:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if isinstance(stream, RoutedStream):
                setattr(sys, name, stream._rsym_original)
        routes.stop_routing_new_work()
        if _flusher is not None:
            _flusher.stop()
            _flusher = None
