"""Wire: rpyc's stream, channel and send without the copies that make bulk data slow.

rpyc 6 copies every large message over and over: ``SocketStream.write``
re-slices the rest of the data for every 64 KB it sends (quadratic in the
size), ``read`` joins 64 KB pieces, ``Channel.recv`` slices the trailing
newline off and ``send`` slices the data in two, ``Connection._send``
concatenates the message byte on and ``_dispatch`` slices it off again.
The classes here put the very same bytes on the wire (any rpyc peer reads
them) with none of those copies: a large frame goes out in one
``sendmsg`` of its pieces and comes in with one ``recv`` per piece.
Small frames (the common case: one round trip per call) take rpyc's own
path, one write per frame.

Both ends use them: the notebook builds its connections on them, and the
agent switches the server side of its own connection only (``install``),
never the server's other clients.  Plain TCP sockets get the zero-copy
calls; other sockets (TLS) a memoryview loop.  A ``Piece`` (a slice of a
large buffer) goes out as brine bytes straight from the buffer: the notebook
sends the pieces of a large value without copying them.
"""

import contextlib
import errno
import functools
import select
import socket
import time
import zlib

from rpyc.core import brine
from rpyc.core.channel import Channel
from rpyc.core.stream import SocketStream
from rpyc.lib import Timeout

LARGE = 1 << 16  # frames at least this big take the copy-free path
WAITALL = getattr(socket, "MSG_WAITALL", 0)
IOV_MAX = 512  # buffers per sendmsg call (the OS allows at least 1024)
SPIN = 0.00015  # seconds a thread waiting on a reply looks for it before it sleeps
_MSG_BYTE = brine.I1.pack
_POLLIN = select.POLLIN | select.POLLPRI if hasattr(select, "poll") else None


class WireStream(SocketStream):
    """rpyc's SocketStream whose large reads and writes copy nothing extra,
    and whose small ones (a call's request, reply or callback: several per
    call) skip rpyc's wrappers: the same system calls, less Python."""

    __slots__ = ()

    def poll(self, timeout):
        # rpyc's Stream.poll makes a Timeout and a PollingPoll (mode strings,
        # event masks turned into strings) for every message
        if _POLLIN is None:
            return super().poll(timeout)
        if type(timeout) is Timeout:
            timeout = timeout.timeleft()
        elif timeout is not None and timeout < 0:
            timeout = None  # as rpyc's Timeout: negative waits forever
        try:
            poller = select.poll()
            poller.register(self.fileno(), _POLLIN)
            return bool(poller.poll(None if timeout is None else timeout * 1000))
        except ValueError as exc:  # as rpyc: a bad descriptor number
            raise select.error(str(exc)) from None
        except OSError as exc:
            self.close()
            if exc.errno == errno.EBADF:
                raise EOFError() from None
            raise

    def read(self, count):
        if count >= LARGE:
            return _guarded(self, _recv_exact, count)
        try:  # usually one recv gets it all; anything else takes rpyc's loop
            data = self.sock.recv(count)
        except socket.timeout:
            return super().read(count)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                return super().read(count)
            self.close()
            raise EOFError(exc) from None
        if len(data) == count:
            return data
        if not data:
            self.close()
            raise EOFError("connection closed by peer")
        return data + super().read(count - len(data))

    def write(self, data):
        if type(data) is bytes and len(data) < LARGE:
            _guarded(self, _send_small, data)
        else:
            _guarded(self, _send_all, [data])


def _guarded(stream, operation, arg):
    """Run a socket operation the way rpyc does: a failure closes the stream
    and becomes EOFError; a socket timeout retries."""
    while True:
        try:
            return operation(stream.sock, arg)
        except socket.timeout:
            continue
        except OSError as exc:
            stream.close()
            raise EOFError(exc) from None


def _recv_exact(sock, count):
    """Exactly ``count`` bytes as one bytes object, received straight into it."""
    if WAITALL and type(sock) is socket.socket:
        data = sock.recv(count, WAITALL)
        if len(data) == count:
            return data
        pieces, got = [], 0
        while True:  # a signal or a timeout cut the call short
            if not data:
                raise EOFError("connection closed by peer")
            pieces.append(data)
            got += len(data)
            if got == count:
                return b"".join(pieces)
            data = sock.recv(count - got, WAITALL)
    buffer = bytearray(count)
    view = memoryview(buffer)
    got = 0
    while got < count:
        n = sock.recv_into(view[got:])
        if not n:
            raise EOFError("connection closed by peer")
        got += n
    return bytes(buffer)


def _send_small(sock, data):
    """Send one small frame.  A timeout before anything went out is retried
    by ``_guarded``; after a partial send (a full buffer), here."""
    sent = sock.send(data)
    if sent < len(data):
        view = memoryview(data)[sent:]
        while view:
            try:
                view = view[sock.send(view) :]
            except socket.timeout:
                continue


def _send_all(sock, parts):
    """Send the byte strings ``parts`` in order, without joining or slicing them."""
    views = [memoryview(part).cast("B") for part in parts if len(part)]
    if type(sock) is socket.socket and hasattr(sock, "sendmsg"):
        first = 0
        while first < len(views):
            sent = sock.sendmsg(views[first : first + IOV_MAX])
            while sent:
                size = views[first].nbytes
                if sent >= size:
                    sent -= size
                    first += 1
                else:
                    views[first] = views[first][sent:]
                    sent = 0
        return
    for view in views:
        while view:
            view = view[sock.send(view) :]


class Piece:
    """A slice of a buffer that travels as rpyc bytes without being copied:
    brine encodes it exactly like ``bytes`` (the receiver gets bytes).  A
    connection sends it by value once ``register_pieces`` ran and its
    ``_box`` lets it through (``client.RoutedConnection``)."""

    __slots__ = ("view",)

    def __init__(self, view):
        self.view = memoryview(view).cast("B")

    def __len__(self):
        return self.view.nbytes


def _dump_piece(piece, stream):
    # brine's own encoding of bytes of this length, the data as a separate part
    stream.append(brine.TAG_STR_L4 + brine.I4.pack(len(piece)))
    stream.append(piece.view)


def register_pieces():
    """Teach brine, in this process, to encode a ``Piece`` (a type only we make)."""
    brine._dump_registry[Piece] = _dump_piece


class Parts(list):
    """One message as the byte strings brine produced, not joined yet."""

    __slots__ = ()


class FrameChannel(Channel):
    """rpyc's Channel (same frames: length, compressed flag, data, newline)
    that sends a ``Parts`` message without joining it and hands a large
    received message to rpyc as a ``Frame``."""

    __slots__ = ()

    def poll(self, timeout):
        # a thread waiting on a reply has a deadline (rpyc's sync_request_timeout);
        # a connection's serving loop waits without one and never spins
        if type(timeout) is Timeout and timeout.finite and timeout.timeleft() > 0:
            return spin_poll(self.stream, timeout)
        return self.stream.poll(timeout)

    def send(self, data):
        parts = data if type(data) is Parts else (data,)
        size = sum(map(len, parts))
        compressed = 0
        if self.compress and size > self.COMPRESSION_THRESHOLD:
            parts = (zlib.compress(b"".join(parts), self.COMPRESSION_LEVEL),)
            size, compressed = len(parts[0]), 1
        header = self.FRAME_HEADER.pack(size, compressed)
        if size < LARGE or not isinstance(self.stream, SocketStream):
            # one write: a frame split over writes would wait on Nagle's algorithm
            self.stream.write(b"".join((header, *parts, self.FLUSHER)))
        else:
            _guarded(self.stream, _send_all, (header, *_coalesce(parts), self.FLUSHER))

    def recv(self):
        header = self.stream.read(self.FRAME_HEADER.size)
        length, compressed = self.FRAME_HEADER.unpack(header)
        if compressed or length < LARGE:
            data = self.stream.read(length + len(self.FLUSHER))[: -len(self.FLUSHER)]
            return zlib.decompress(data) if compressed else data
        head = self.stream.read(1)
        body = self.stream.read(length - 1)
        self.stream.read(len(self.FLUSHER))
        return Frame(head, body)


def spin_poll(stream, timeout):
    """``stream.poll(timeout)``, looking for data for ``SPIN`` s first: a reply
    on a fast link often comes within that, and waking from a blocking poll
    costs tens of microseconds (a callback waits for two replies)."""
    end = time.perf_counter() + SPIN
    while not stream.poll(0):
        if time.perf_counter() >= end:
            return stream.poll(timeout)
    return True


def release_receive_lock(conn):
    """Let go of rpyc's receive lock if this thread holds it, and wake the
    threads waiting for it: for an interrupt that left ``conn.serve`` while
    this thread read (rpyc releases the lock for an ``Exception`` only)."""
    if conn._recvlock._is_owned():
        conn._recvlock.release()
        with conn._recv_event:
            conn._recv_event.notify_all()


def _coalesce(parts):
    """Join runs of small pieces, so a message of many small items needs few buffers."""
    out, run = [], []
    for part in parts:
        if len(part) >= 4096:
            if run:
                out.append(b"".join(run))
                run = []
            out.append(part)
        else:
            run.append(part)
    if run:
        out.append(b"".join(run))
    return out


class Frame:
    """A large received message with its first byte (the message type) kept
    apart, so rpyc's ``data[:1]`` and ``data[1:]`` in ``Connection._dispatch``
    cost no copy.  Any other use sees the whole message."""

    __slots__ = ("head", "body")

    def __init__(self, head, body):
        self.head = head
        self.body = body

    def __getitem__(self, index):
        if index == _HEAD:
            return self.head
        if index == _BODY:
            return self.body
        return bytes(self)[index]

    def __len__(self):
        return len(self.head) + len(self.body)

    def __bytes__(self):
        return self.head + self.body


_HEAD, _BODY = slice(None, 1, None), slice(1, None, None)


def send_message(conn, msg, seq, args):
    """``Connection._send`` that hands the channel brine's pieces (``Parts``)
    instead of joining them and prepending the message byte."""
    parts = Parts((_MSG_BYTE(msg),))
    brine._dump((seq, args), parts)
    queue = conn._send_queue
    queue.append(parts)
    # rpyc's hand-off, unchanged: whoever holds the send lock also sends what
    # other threads (or a garbage-collected proxy) queued meanwhile
    lock = conn._sendlock
    while queue:
        if not lock.acquire(False):
            return
        try:
            if not queue:
                continue
            conn._channel.send(queue.pop(0))
        finally:
            lock.release()


def no_delay(stream):
    """Set TCP_NODELAY on a stream's socket, if it is a TCP socket."""
    try:
        stream.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError):
        pass


@contextlib.contextmanager
def no_delay_during(stream):
    """TCP_NODELAY while requests follow each other without waiting (Nagle's
    algorithm would hold each small request until the previous one is
    acknowledged: measured 25 % slower pulls over a 20 ms link); the plain
    request/reply traffic keeps the socket's own setting."""
    sock = getattr(stream, "sock", None)
    try:
        before = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError):
        before = None
    try:
        yield
    finally:
        if before == 0:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
            except OSError:
                pass


def install(conn, compress=False):
    """Switch this process's end of ``conn`` to the copy-free wire; returns
    whether it could (a connection with rpyc's ``bind_threads`` keeps rpyc's).

    Only ``conn`` changes: its stream and channel objects get the subclasses
    above (same slots, same bytes on the wire) and its ``_send`` is replaced.
    ``compress`` sets whether frames this end sends are zlib-compressed.
    Small frames leave at once (TCP_NODELAY): the replies to pieces of a
    large value follow each other, and Nagle's algorithm would hold each
    until the previous one is acknowledged (a delayed ACK: 40 ms).
    """
    channel = conn._channel
    channel.compress = compress
    no_delay(getattr(channel, "stream", None))
    if getattr(conn, "_bind_threads", False) or not isinstance(channel, Channel):
        return False
    if type(channel.stream) is SocketStream:
        channel.stream.__class__ = WireStream
    if type(channel) is Channel:
        channel.__class__ = FrameChannel
    if not isinstance(channel, FrameChannel):
        return False
    conn._send = functools.partial(send_message, conn)
    return True
