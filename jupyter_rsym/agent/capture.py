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

import sys
import threading
import time
import weakref

from . import routes

links = weakref.WeakValueDictionary()  # id -> Link
_install_lock = threading.Lock()
_flusher = None


class Link:
    """The agent's state for one notebook connection: its output buffer."""

    def __init__(self, conn, emit, batch_bytes):
        self.conn = conn
        self.emit = emit
        self.batch_bytes = batch_bytes
        self.dead = False
        self._chunks = []  # [cause, stream name, [text, ...]] or [cause, kind, payload]
        self.ask = None  # the notebook's input() answerer (see inputs)
        self.log_level = 30  # logging records at this level or above go to the cell (see logs)
        self._size = 0
        self._buffer_lock = threading.Lock()
        self._flush_lock = threading.Lock()  # keeps batches in order
        self._flusher_ident = None
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
        with self._buffer_lock:
            was_empty = not self._chunks
            self._chunks.append([cause, kind, payload])
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
        return bool(self._chunks)

    def flushing_here(self):
        """Whether the calling thread is inside this link's flush (its emit request)."""
        return self._flusher_ident == threading.get_ident()

    def flush(self):
        """Ship buffered output to the notebook; drop it if the link is gone."""
        with self._flush_lock:
            with self._buffer_lock:
                chunks, self._chunks, self._size = self._chunks, [], 0
            if not chunks or self.dead:
                return
            batch = tuple((c, n, "".join(p) if type(p) is list else p) for c, n, p in chunks)
            self._flusher_ident = threading.get_ident()
            try:
                self.emit(batch)
            except Exception:
                self.detach()
            finally:
                self._flusher_ident = None

    def detach(self):
        self.dead = True  # routes to it now write to the original streams


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
        thread = threading.Thread(target=self._run, name="jupyter-rsym-flusher", daemon=True)
        routes.unrouted(thread).start()

    def wake(self, link):
        with self._lock:
            self._pending.add(link)
        self._wakeup.set()

    def _run(self):
        while True:
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
