"""A loopback TCP proxy that adds one-way delay and can drop its links on demand.

Sits between a Jupyter kernel and an rpyc server in tests and benchmarks to
emulate a slow link (``delay`` seconds each way, so RTT = 2 * delay) and a
dropped one (``cut()``, ``stop_listening()`` / ``listen_again()``).
Stdlib only: one accept thread, and per connection one reader and one sender
thread per direction, so delay never throttles throughput.
"""

import collections
import socket
import struct
import threading
import time

from .waits import wait_until

CHUNK_BYTES = 256 * 1024
MAX_QUEUED_CHUNKS = 256  # per direction: at most 64 MB in flight inside the proxy
CONNECT_TIMEOUT = 5.0
POLL_SECONDS = 0.1  # how often idle threads look whether they should stop
JOIN_TIMEOUT = 5.0

_EOF = object()


def _abort(sock):
    """Make the peer see a reset, and wake any of our threads blocked on ``sock``.

    SO_LINGER 0 turns the final close into an RST; shutdown() is what wakes a
    thread blocked in recv/send (a plain close() from another thread does not).
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Pipe:
    """One direction of a link: chunks wait in a queue until due, then go out in order."""

    def __init__(self, link, src, dst, counter):
        self.link = link
        self.src = src
        self.dst = dst
        self.counter = counter  # name of the proxy attribute that counts bytes sent
        self.queue = collections.deque()
        self.cond = threading.Condition()
        self.finished = False

    def start(self, name):
        for target, role in ((self._read, "read"), (self._send, "send")):
            threading.Thread(target=target, name=f"{name}-{role}", daemon=True).start()

    def _put(self, item):
        with self.cond:
            while len(self.queue) >= MAX_QUEUED_CHUNKS and not self.link.aborted:
                self.cond.wait(POLL_SECONDS)
            self.queue.append(item)
            self.cond.notify_all()

    def _read(self):
        buf = bytearray(CHUNK_BYTES)
        view = memoryview(buf)
        try:
            while not self.link.aborted:
                n = self.src.recv_into(buf)
                if not n:
                    break
                self._put((time.monotonic() + self.link.proxy.delay, bytes(view[:n])))
        except OSError:
            self.link.abort()
        finally:
            self._put((time.monotonic() + self.link.proxy.delay, _EOF))
            self.link.thread_done()

    def _next(self):
        with self.cond:
            while not self.queue:
                if self.link.aborted:
                    return None
                self.cond.wait(POLL_SECONDS)
            item = self.queue.popleft()
            self.cond.notify_all()
            return item

    def _send(self):
        try:
            while True:
                item = self._next()
                if item is None:
                    return
                due, data = item
                wait = due - time.monotonic()
                if wait > 0 and self.link.aborted_event.wait(wait):
                    return
                if data is _EOF:
                    self.dst.shutdown(socket.SHUT_WR)  # pass the half-close on
                    self.finished = True
                    self.link.pipe_finished()
                    return
                # counted first, so a peer that has received n bytes sees a count >= n
                self.link.proxy._count(self.counter, len(data))
                self.dst.sendall(data)
        except OSError:
            self.link.abort()
        finally:
            self.link.thread_done()


class _Link:
    """A client connection and its upstream connection, forwarded both ways."""

    THREADS = 4

    def __init__(self, proxy, client, upstream):
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.aborted_event = threading.Event()
        self._lock = threading.Lock()
        self._threads_left = self.THREADS
        self.up = _Pipe(self, client, upstream, "bytes_to_target")
        self.down = _Pipe(self, upstream, client, "bytes_from_target")

    def start(self, name):
        self.up.start(f"{name}-up")
        self.down.start(f"{name}-down")

    @property
    def aborted(self):
        return self.aborted_event.is_set()

    def abort(self):
        """Drop both sides at once, as a broken network would (peers see reset/EOF)."""
        if self.aborted_event.is_set():
            return
        self.aborted_event.set()
        for sock in (self.client, self.upstream):
            _abort(sock)
        self.proxy._forget(self)

    def pipe_finished(self):
        if self.up.finished and self.down.finished:
            self.proxy._forget(self)

    def thread_done(self):
        with self._lock:
            self._threads_left -= 1
            last = self._threads_left == 0
        if last:  # only the last thread closes, so no thread ever uses a closed fd
            self.client.close()
            self.upstream.close()


class DelayProxy:
    """TCP proxy on 127.0.0.1:<free port> forwarding to ``target`` after ``delay`` seconds.

    ``delay`` is one-way and may be changed at any time (``proxy.delay = 0.01``);
    it applies to chunks received from then on.
    """

    def __init__(self, target, delay=0.0, host="127.0.0.1"):
        self.target = (target[0], int(target[1]))
        self.delay = float(delay)
        self.host = host
        self.port = 0
        self.bytes_to_target = 0
        self.bytes_from_target = 0
        self._lock = threading.Lock()
        self._links = set()
        self._serial = 0
        self._listener = None
        self._accept_thread = None
        self._stop_accepting = None
        self._closed = False
        self.listen_again()

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    @property
    def connections(self):
        """Number of client connections currently being forwarded."""
        with self._lock:
            return len(self._links)

    @property
    def listening(self):
        return self._listener is not None

    def wait_connections(self, count, timeout=5.0):
        """Wait until exactly ``count`` connections are open; False on timeout."""
        try:
            return wait_until(lambda: self.connections == count, timeout, f"{count} connections")
        except AssertionError:
            return False

    # listening ---------------------------------------------------------------

    def listen_again(self):
        """(Re)open the listener, on the same port as before if there was one."""
        if self._closed:
            raise RuntimeError("proxy is closed")
        if self._listener is not None:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
            listener.listen(64)
        except OSError:
            listener.close()
            raise
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stop_accepting = threading.Event()
        self._accept_thread = threading.Thread(
            target=self._accept_loop,
            args=(listener, self._stop_accepting),
            name=f"proxy-{self.port}-accept",
            daemon=True,
        )
        self._accept_thread.start()
        return self

    def stop_listening(self):
        """Close the listener so new connections are refused; open links stay up."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        self._stop_accepting.set()
        self._accept_thread.join(JOIN_TIMEOUT)
        listener.close()

    def _accept_loop(self, listener, stop):
        listener.settimeout(POLL_SECONDS)
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if stop.is_set():
                _abort(client)
                client.close()
                return
            threading.Thread(
                target=self._open_link, args=(client,), name=f"proxy-{self.port}-connect", daemon=True
            ).start()

    def _open_link(self, client):
        client.settimeout(None)
        try:
            upstream = socket.create_connection(self.target, timeout=CONNECT_TIMEOUT)
        except OSError:
            _abort(client)  # target down: the client sees a reset
            client.close()
            return
        upstream.settimeout(None)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            if self._closed:
                for sock in (client, upstream):
                    _abort(sock)
                    sock.close()
                return
            self._serial += 1
            link = _Link(self, client, upstream)
            self._links.add(link)
        link.start(f"proxy-{self.port}-{self._serial}")

    # dropping ----------------------------------------------------------------

    def cut(self):
        """Drop every open connection at once (both sides); keep listening."""
        with self._lock:
            links = list(self._links)
            self._links.clear()
        for link in links:
            link.abort()
        return len(links)

    def close(self):
        """Stop listening and drop all connections."""
        self._closed = True
        self.stop_listening()
        self.cut()

    def _forget(self, link):
        with self._lock:
            self._links.discard(link)

    def _count(self, attribute, n):
        with self._lock:
            setattr(self, attribute, getattr(self, attribute) + n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = "listening" if self.listening else "not listening"
        return f"<DelayProxy {self.address} -> {self.target[0]}:{self.target[1]} delay={self.delay} {state}>"


Proxy = DelayProxy
