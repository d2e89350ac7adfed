"""Serving the connections while no cell is waiting on them.

rpyc serves incoming requests only in a thread that reads the connection.
While a cell waits on a reply, that thread is the cell's (as in plain rpyc);
the rest of the time, when the kernel is idle or a cell runs local code, a
remote timer's callback would wait forever.  rpyc's ``BgServingThread`` fills
the gap with a thread per connection that sleeps 0.1 s between polls and
competes with the waiting thread for every reply.

Here one thread watches every session's socket (``select``, no polling): a
notebook with a session in each of 200 Dask workers has one reader, not
200.  It steps aside from a connection while a local thread waits on a
reply there (that thread reads), and hands each message that arrives on
an unattended connection to a serving thread, one message of a connection
at a time, so output stays in order and a slow callback from one host
never holds up another's.  Serving threads are kept while there is work
and end after ``IDLE`` seconds without any; the reader ends with the last
session.  When a connection ends under it, whoever waits on the session
hears of it (``LostListeners``).
"""

import collections
import heapq
import itertools
import os
import queue
import selectors
import threading
import time
from functools import partial

LINGER = 0.005  # seconds to stay out of the way after a local thread stops serving
IDLE = 2.0  # seconds a serving thread waits for more work before it ends

_lock = threading.Lock()
_reader = None  # the process's Reader while any session is open


class BackgroundServer:
    """Serves ``conn`` whenever no local thread does (see the module docstring).

    ``waiters`` counts the local threads waiting on a reply; ``on_lost(error)``
    is called once, in the thread that found the connection gone.
    """

    def __init__(self, conn, waiters, on_lost, name):
        global _reader
        self.conn, self.waiters, self.name = conn, waiters, name
        self.fileno = conn.fileno()
        self.stopped = False
        self.thread = None  # the serving thread while it serves this connection
        self._on_lost = on_lost
        with _lock:
            if _reader is None:
                _reader = Reader()
            _reader.users += 1
            self._reader = _reader
        self._reader.call_soon(partial(self._reader.watch_if_unattended, self))

    def lost(self, exc):
        if not self.stopped:
            self.stopped = True
            self._on_lost(exc)

    def serving_here(self):
        """Whether the calling thread is serving this connection for the
        reader (no cell is waiting then)."""
        return self.thread is threading.current_thread()

    def stop(self, timeout=5):
        """Stop serving the connection (idempotent; any thread).  Returns once
        the reader no longer watches its socket, so it may be closed."""
        self.stopped = True
        with self.waiters.changed:
            self.waiters.on_idle = None
            reader, self._reader = self._reader, None
        if reader is None:
            return
        done = threading.Event()
        reader.call_soon(partial(reader.forget, self, done))
        try:
            done.wait(timeout)
        finally:  # even on Ctrl-C: the last session's close ends the reader
            _leave(reader, timeout)


def _leave(reader, timeout):
    """One session fewer; the last one ends the reader and its serving threads."""
    global _reader
    with _lock:
        reader.users -= 1
        if reader.users:
            return
        if _reader is reader:
            _reader = None
    reader.shut_down(timeout)


class Reader:
    """The thread that watches every connection, and the serving threads it
    hands messages to (see the module docstring).  The selector is touched
    by the reader thread only; other threads ask it through ``call_soon``."""

    def __init__(self):
        self.users = 0
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        self._calls = collections.deque()
        self._pipe_lock = threading.Lock()
        self._later = []  # heap of (when, n, server): watch again after lingering
        self._order = itertools.count()
        self._running = True
        self._workers = ServingThreads()
        self._thread = threading.Thread(target=self._run, name="jupyter-rsym reader", daemon=True)
        self._thread.start()

    def call_soon(self, call):
        """Run ``call()`` in the reader thread (any thread may ask; after the
        reader ended, nothing happens)."""
        with self._pipe_lock:  # its descriptors are closed (and reused) once the reader ends
            if self._wake_write is None:
                return
            self._calls.append(call)
            try:
                os.write(self._wake_write, b"x")
            except BlockingIOError:  # the pipe is full: the reader is awake anyway
                pass

    def _run(self):
        while self._running:
            timeout = max(self._later[0][0] - time.monotonic(), 0) if self._later else None
            for key, _ in self._selector.select(timeout):
                if key.data is None:
                    os.read(self._wake_read, 4096)
                else:
                    self._readable(key.data)
            while self._calls:
                self._calls.popleft()()
            now = time.monotonic()
            while self._later and self._later[0][0] <= now:
                self.watch_if_unattended(heapq.heappop(self._later)[2])
        self._selector.close()
        with self._pipe_lock:
            os.close(self._wake_read)
            os.close(self._wake_write)
            self._wake_write = None

    def _readable(self, server):
        self._selector.unregister(server.fileno)
        if not self._stepped_aside(server):
            self._workers.run(partial(self._serve, server))

    def _stepped_aside(self, server):
        """Whether a local thread serves the connection now; if so, the
        reader is called back when the last one stops."""
        waiters = server.waiters
        with waiters.changed:
            if not waiters.count:
                return False
            waiters.on_idle = partial(self.call_soon, partial(self._linger, server))
            return True

    def _linger(self, server):
        """After a local thread stops serving, stay out of its way a moment: a
        cell calling the remote in a loop starts its next request right away,
        and waking for each of its replies would cost every call a thread switch."""
        heapq.heappush(self._later, (time.monotonic() + LINGER, next(self._order), server))

    def watch_if_unattended(self, server):
        if not server.stopped and not self._stepped_aside(server):
            if _decrypted(server.conn):  # a cell's thread left a message TLS has decrypted
                self._workers.run(partial(self._serve, server))
                return
            try:
                self._selector.register(server.fileno, selectors.EVENT_READ, server)
            except (KeyError, ValueError, OSError):  # already watched, or its socket is gone
                pass

    def _serve(self, server):
        """In a serving thread: one message, then the reader watches again."""
        server.thread = threading.current_thread()
        conn, waiters = server.conn, server.waiters

        def unattended():  # asked by rpyc once it holds the receive lock, before it reads
            return not waiters.count

        try:
            # while messages are there (else the cell's thread reads them): a
            # TLS record may hold two, the second decrypted already, which the
            # socket no longer shows to select.  Whether a cell's thread waits
            # is asked again under the lock: a callback read here after its
            # cell started waiting would run in this thread, and the cell
            # would wait for this thread's lock until the callback returned.
            while unattended() and conn.serve(0, wait_for_lock=False, waiting=unattended):
                pass
        except Exception as exc:  # EOFError, OSError: the link is gone
            server.lost(exc)
        finally:
            server.thread = None
        self.call_soon(partial(self.watch_if_unattended, server))

    def forget(self, server, done):
        try:
            self._selector.unregister(server.fileno)
        except (KeyError, ValueError, OSError):
            pass
        self._later = [item for item in self._later if item[2] is not server]
        heapq.heapify(self._later)
        done.set()

    def shut_down(self, timeout):
        def end():
            self._running = False

        self.call_soon(end)
        self._workers.shut_down(timeout)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)


def _decrypted(conn):
    """Whether TLS holds decrypted bytes of the connection: select no longer
    shows them (a record may carry two messages, and a cell's thread that
    read the first stopped there)."""
    sock = getattr(getattr(conn._channel, "stream", None), "sock", None)
    try:
        return sock.pending() > 0
    except (AttributeError, OSError, ValueError):  # not TLS, or closed
        return False


class ServingThreads:
    """Threads that serve one message each and wait ``IDLE`` s for the next;
    a message for which no thread is free gets a new one."""

    def __init__(self):
        self._lock = threading.Lock()
        self._idle = []  # a SimpleQueue per free thread
        self._closed = False

    def run(self, work):
        with self._lock:
            if self._idle:
                self._idle.pop()[0].put(work)
                return
        threading.Thread(target=self._loop, args=(work,), name="jupyter-rsym serving", daemon=True).start()

    def _loop(self, work):
        inbox = queue.SimpleQueue()
        while work is not None:
            work()
            with self._lock:
                if self._closed:
                    return
                self._idle.append((inbox, threading.current_thread()))
            try:
                work = inbox.get(timeout=IDLE)
            except queue.Empty:
                with self._lock:
                    mine = (inbox, threading.current_thread())
                    if mine in self._idle:  # nobody handed us work meanwhile
                        self._idle.remove(mine)
                        return
                work = inbox.get()  # handed over just now

    def shut_down(self, timeout):
        """End the free threads (busy ones end after their message)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for inbox, _ in idle:
            inbox.put(None)
        for _, thread in idle:
            if thread is not threading.current_thread():
                thread.join(timeout)


class WaiterCount:
    """How many local threads are waiting on a reply (and so serving)."""

    def __init__(self):
        self.count = 0
        self.changed = threading.Lock()
        self.on_idle = None  # set by the reader that stepped aside: called when count is 0

    def enter(self):
        with self.changed:
            self.count += 1

    def leave(self):
        with self.changed:
            self.count -= 1
            if not self.count and self.on_idle is not None:
                on_idle, self.on_idle = self.on_idle, None
                on_idle()


class LostListeners:
    """Who to tell, once, that a session was lost or closed (fan-out cells and
    jobs waiting on several hosts listen instead of blocking on one)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._callbacks = []

    def add(self, callback):
        """Call ``callback(error)`` once when told; returns a function that cancels this."""
        with self._lock:
            self._callbacks.append(callback)

        def cancel():
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return cancel

    def tell(self, error):
        with self._lock:
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(error)
