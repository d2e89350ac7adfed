"""The gate: where new connections wait, all in one thread, until they are let in.

Before a client is trusted it may send anything, or nothing.  A thread per
waiting connection (rpyc's authenticator model) would let anyone who reaches
the port pile up threads; here one thread runs every waiting connection's TLS
handshake and token handshake (``auth.ServerHandshake``) on non-blocking
sockets.  Each connection may wait ``timeout`` seconds in all (a client
trickling a byte at a time is dropped too).  Fair under a flood:

- at most ``max_per_address`` wait from one client address: more from there
  are refused as they come, so one flooding address holds a few places only;
- at most ``max_pending`` wait in all: past that the longest-waiting *bare*
  connection (nothing of a handshake sent yet) makes room; one that has
  begun its handshake (a TLS record, a well-formed hello) is never dropped
  for a newcomer, which is refused instead when only such ones wait;
- refusals and drops are logged one by one up to a budget per 10 s, the rest
  as one count line per 10 s (``RefusalLog``), so a flood cannot fill a disk.

A connection that passes is handed, as a blocking socket, to
``admit(sock, peer, how)``, which serves it in a thread of its own.

Standard library only (plus ``auth``, which needs rpyc).
"""

import collections
import selectors
import socket
import ssl
import threading
import time

from .auth import TLS_RECORD, TLS_REQUIRED, ServerHandshake

_TLS_WAIT = (ssl.SSLWantReadError, ssl.SSLWantWriteError)


class Waiting:
    """One connection at the gate."""

    __slots__ = ("sock", "peer", "address", "deadline", "step", "handshake", "events", "tls_started")

    def __init__(self, sock, peer, deadline):
        self.sock, self.peer, self.deadline = sock, peer, deadline
        self.address = address_of(peer)
        self.step = None  # what it waits for: "peek", "tls" or "token"
        self.handshake = None
        self.events = selectors.EVENT_READ
        self.tls_started = False

    @property
    def bare(self):
        """Nothing of a handshake sent yet: the first to make room under a flood."""
        return not (self.tls_started or (self.handshake is not None and self.handshake.started))


def address_of(peer):
    """The client address of a ``host:port`` / ``[host]:port`` peer string."""
    return peer.rsplit(":", 1)[0]


class RefusalLog:
    """Logs refused and dropped connections: the first ``budget`` of each
    ``interval`` one by one (``write(peer, reason)``), the rest as one count
    line (``write(None, text)``) when the interval is over."""

    def __init__(self, write, budget=20, interval=10.0):
        self.write, self.budget, self.interval = write, budget, interval
        self._end = None  # when the current interval ends (None: none running)
        self._lines, self._count, self._addresses = 0, 0, set()

    def __call__(self, peer, reason):
        now = time.monotonic()
        self.flush(now)
        if self._end is None:
            self._end = now + self.interval
        if self._lines < self.budget:
            self._lines += 1
            self.write(peer, reason)
        else:
            self._count += 1
            self._addresses.add(address_of(peer))

    @property
    def due(self):
        """When ``flush`` has a count line to write (None: nothing counted)."""
        return self._end if self._count else None

    def flush(self, now):
        if self._end is None or now < self._end:
            return
        if self._count:
            addresses = len(self._addresses)
            self.write(
                None,
                f"refused {self._count} connections from {addresses} "
                f"address{'es' if addresses != 1 else ''} in the last {self.interval:g} s",
            )
        self._end, self._lines, self._count, self._addresses = None, 0, 0, set()


class Gate:
    """Runs the handshakes of waiting connections in one thread (see the module docstring).

    ``token``: the token clients must prove (None: no token step);
    ``tls``: an ``ssl.SSLContext`` for the server side (None: plain TCP);
    ``log(peer, text)`` reports refusals (``peer`` None: a count line).
    """

    def __init__(
        self, admit, log, token=None, tls=None, timeout=10.0, max_pending=256, max_per_address=16, logged_refusals=20
    ):
        self.admit, self.log = admit, RefusalLog(log, logged_refusals)
        self.token, self.tls = token, tls
        self.timeout, self.max_pending = timeout, max_pending
        self.max_per_address = max_per_address
        self._per_address = collections.Counter()  # client address -> connections waiting
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._incoming = collections.deque()
        self._waiting = {}  # fileno -> Waiting, oldest first
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="jupyter-rsym gate", daemon=True)

    @property
    def waiting(self):
        """How many connections are at the gate now."""
        return len(self._waiting) + len(self._incoming)

    def start(self):
        self._thread.start()
        return self

    def add(self, sock, peer):
        """Queue a freshly accepted socket (called by the accept loop; never blocks)."""
        self._incoming.append((sock, peer, time.monotonic() + self.timeout))
        self._wake()

    def close(self, timeout=2.0):
        """Stop the gate and drop every connection still waiting."""
        self._stopping = True
        self._wake()
        self._thread.join(timeout)

    def _wake(self):
        try:
            self._wake_w.send(b"!")
        except OSError:  # buffer full (already woken) or closed
            pass

    # -- the loop --------------------------------------------------------------

    def _run(self):
        try:
            while not self._stopping:
                self._take_incoming()
                for key, _ in self._selector.select(self._until_next_deadline()):
                    if key.fileobj is self._wake_r:
                        self._drain_wake()
                    elif (waiting := self._waiting.get(key.fd)) is not None:
                        self._step(waiting)
                self._expire()
                self.log.flush(time.monotonic())
        finally:
            for waiting in list(self._waiting.values()):
                self._drop(waiting, None)
            while self._incoming:
                self._incoming.popleft()[0].close()
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()

    def _drain_wake(self):
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass

    def _until_next_deadline(self):
        deadlines = [due] if (due := self.log.due) is not None else []
        if self._waiting:  # the oldest has the nearest deadline
            deadlines.append(next(iter(self._waiting.values())).deadline)
        return max(min(deadlines) - time.monotonic(), 0) if deadlines else None

    def _take_incoming(self):
        while self._incoming:
            sock, peer, deadline = self._incoming.popleft()
            waiting = Waiting(sock, peer, deadline)
            if self._per_address[waiting.address] >= self.max_per_address:
                self._drop(
                    waiting,
                    f"refused: {self.max_per_address} connections from {waiting.address} were waiting at the gate",
                )
                continue
            if len(self._waiting) >= self.max_pending:
                bare = next((w for w in self._waiting.values() if w.bare), None)
                if bare is None:  # all of them are handshaking: the newcomer waits its turn elsewhere
                    self._drop(waiting, f"refused: {self.max_pending} connections were mid-handshake")
                    continue
                self._drop(bare, f"dropped: {self.max_pending} connections were waiting at the gate")
            sock.setblocking(False)
            if self.tls is not None:
                waiting.step = "peek"
            else:
                waiting.step, waiting.handshake = "token", ServerHandshake(self.token)
            self._waiting[sock.fileno()] = waiting
            self._per_address[waiting.address] += 1
            self._selector.register(sock, selectors.EVENT_READ)

    def _expire(self):
        now = time.monotonic()
        while self._waiting:
            first = next(iter(self._waiting.values()))
            if first.deadline > now:
                break
            self._drop(
                first, None if first.step == "drain" else f"dropped: no complete handshake in {self.timeout:g} s"
            )

    # -- one connection's steps -------------------------------------------------

    def _step(self, waiting):
        try:
            if waiting.step == "drain":
                return self._drain(waiting)
            if waiting.step == "peek":
                self._peek(waiting)
            if waiting.step == "tls":
                self._tls_handshake(waiting)
            if waiting.step == "token":
                self._token_handshake(waiting)
        except _TLS_WAIT as wait:
            self._wait_for(
                waiting, selectors.EVENT_WRITE if isinstance(wait, ssl.SSLWantWriteError) else selectors.EVENT_READ
            )
        except ssl.SSLError as exc:
            self._refuse_tls(waiting, f"refused: TLS handshake failed ({exc.reason or exc})")
        except BlockingIOError:
            pass  # nothing to read yet
        except OSError as exc:
            self._drop(waiting, f"dropped: {exc.strerror or exc}")

    def _peek(self, waiting):
        """TLS port: a client that speaks plain rpyc gets told to use TLS."""
        first = waiting.sock.recv(1, socket.MSG_PEEK)
        if first and TLS_RECORD.startswith(first):
            # TLS writes records back to back (session tickets, then a reply):
            # without NODELAY each waits for the peer's delayed ACK (40 ms)
            waiting.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # the wrapped socket keeps the file descriptor, so the entry keeps its place
            self._selector.unregister(waiting.sock)
            waiting.sock = self.tls.wrap_socket(waiting.sock, server_side=True, do_handshake_on_connect=False)
            waiting.tls_started = True
            self._selector.register(waiting.sock, selectors.EVENT_READ)
            waiting.step = "tls"
        else:  # plain bytes, or end of stream: the handshake object reports either
            waiting.step, waiting.handshake = "token", ServerHandshake(self.token, refuse=TLS_REQUIRED)

    def _tls_handshake(self, waiting):
        waiting.sock.do_handshake()
        if self.token is None:
            self._let_in(waiting, "TLS")
        else:
            waiting.step, waiting.handshake = "token", ServerHandshake(self.token)
            self._wait_for(waiting, selectors.EVENT_READ)

    def _token_handshake(self, waiting):
        sock, handshake = waiting.sock, waiting.handshake
        while True:  # a TLS socket may hold decrypted bytes the selector cannot see
            reply = handshake.receive(sock.recv(4096))
            if reply and sock.send(reply) != len(reply):
                handshake.closed, handshake.reason = True, "does not read its replies"
            if handshake.admitted or handshake.closed:
                break
            if not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                break
        if handshake.admitted:
            self._let_in(waiting, "token, TLS" if isinstance(sock, ssl.SSLSocket) else "token")
        elif handshake.closed:
            self._drop(waiting, f"refused: {handshake.reason}")

    def _refuse_tls(self, waiting, reason):
        """Close our side after TLS's alert, but read on until the client closes
        (or its time is up): closing with its data unread would send a reset
        that can overtake the alert, and the client would not learn why."""
        self.log(waiting.peer, reason)
        try:
            waiting.sock.shutdown(socket.SHUT_WR)  # also drops the TLS state: raw reads below
        except OSError:
            return self._drop(waiting, None)
        waiting.step = "drain"
        self._wait_for(waiting, selectors.EVENT_READ)

    def _drain(self, waiting):
        if not waiting.sock.recv(4096):
            self._drop(waiting, None)

    def _wait_for(self, waiting, events):
        if waiting.events != events:
            waiting.events = events
            self._selector.modify(waiting.sock, events)

    def _forget(self, waiting):
        if self._waiting.pop(waiting.sock.fileno(), None) is not None:
            self._per_address[waiting.address] -= 1
            if not self._per_address[waiting.address]:
                del self._per_address[waiting.address]
        try:
            self._selector.unregister(waiting.sock)
        except (KeyError, ValueError):
            pass

    def _let_in(self, waiting, how):
        self._forget(waiting)
        waiting.sock.setblocking(True)
        self.admit(waiting.sock, waiting.peer, how)

    def _drop(self, waiting, reason):
        self._forget(waiting)
        if reason:
            self.log(waiting.peer, reason)
        try:
            waiting.sock.close()
        except OSError:
            pass
