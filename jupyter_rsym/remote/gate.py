"""The gate: where new connections wait, all in one thread, until they are let in.

Before a client is trusted it may send anything, or nothing.  A thread per
waiting connection (rpyc's authenticator model) would let anyone who reaches
the port pile up threads; here one thread runs every waiting connection's TLS
handshake and token handshake (``auth.ServerHandshake``) on non-blocking
sockets.  Each connection may wait ``timeout`` seconds in all (a client
trickling a byte at a time is dropped too), and at most ``max_pending`` wait
at once: past that the longest-waiting one is dropped, so a flood of silent
connections cannot lock out a client that completes its handshake in
milliseconds.  A connection that passes is handed, as a blocking socket, to
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

    __slots__ = ("sock", "peer", "deadline", "step", "handshake", "events")

    def __init__(self, sock, peer, deadline):
        self.sock, self.peer, self.deadline = sock, peer, deadline
        self.step = None  # what it waits for: "peek", "tls" or "token"
        self.handshake = None
        self.events = selectors.EVENT_READ


class Gate:
    """Runs the handshakes of waiting connections in one thread (see the module docstring).

    ``token``: the token clients must prove (None: no token step);
    ``tls``: an ``ssl.SSLContext`` for the server side (None: plain TCP);
    ``log(peer, text)`` reports each refusal.
    """

    def __init__(self, admit, log, token=None, tls=None, timeout=10.0, max_pending=256):
        self.admit, self.log = admit, log
        self.token, self.tls = token, tls
        self.timeout, self.max_pending = timeout, max_pending
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
        if not self._waiting:
            return None
        first = next(iter(self._waiting.values()))  # the oldest has the nearest deadline
        return max(first.deadline - time.monotonic(), 0)

    def _take_incoming(self):
        while self._incoming:
            sock, peer, deadline = self._incoming.popleft()
            while len(self._waiting) >= self.max_pending:
                oldest = next(iter(self._waiting.values()))
                self._drop(oldest, f"dropped: {self.max_pending} connections were waiting at the gate")
            sock.setblocking(False)
            waiting = Waiting(sock, peer, deadline)
            if self.tls is not None:
                waiting.step = "peek"
            else:
                waiting.step, waiting.handshake = "token", ServerHandshake(self.token)
            self._waiting[sock.fileno()] = waiting
            self._selector.register(sock, selectors.EVENT_READ)

    def _expire(self):
        now = time.monotonic()
        while self._waiting:
            first = next(iter(self._waiting.values()))
            if first.deadline > now:
                break
            self._drop(first, None if first.step == "drain" else
                       f"dropped: no complete handshake in {self.timeout:g} s")

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
            self._wait_for(waiting, selectors.EVENT_WRITE if isinstance(wait, ssl.SSLWantWriteError)
                           else selectors.EVENT_READ)
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
            waiting.sock = self.tls.wrap_socket(
                waiting.sock, server_side=True, do_handshake_on_connect=False)
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
        self._waiting.pop(waiting.sock.fileno(), None)
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
