"""Token authentication before rpyc starts: a challenge-response in rpyc's own messages.

Who says what (``cn``/``sn``: 32 random bytes from the client/the server)::

    client -> server   ping request   ("jupyter-rsym-auth/2", "hello", cn)
    server -> client   ping reply     ("jupyter-rsym-auth/2", "challenge", sn, rpyc version)
    client -> server   ping request   ("jupyter-rsym-auth/2", "proof", client_proof)
    server -> client   ping reply     ("jupyter-rsym-auth/2", "welcome", server_proof)
                       (or an exception reply: PermissionError, wrong token)

    client_proof = HMAC-SHA256(token, "client" + sn + cn)
    server_proof = HMAC-SHA256(token, "server" + cn + sn + client_proof)

The client proves first.  Until a client has proven the token, nothing the
server sends depends on it (the challenge is a fresh nonce and a version),
so whoever reaches the port learns nothing to test guesses against offline:
each guess costs a connection, and a wrong one is refused.  (In version 1
the server proved first, and one hello fetched an HMAC of the token: an
offline oracle.)  The server's proof then binds both nonces and the client's
proof, so a welcome cannot be replayed from another connection, and the
client starts rpyc only after checking it.

Someone posing as the server receives the client's proof, an HMAC of the
token over nonces it chose.  That is all it gets (the client sends nothing
else before the welcome checks out), and it is worth no more than a wrong
guess only while the token cannot be enumerated: hence ``tokens.weak_token``, which
the server applies to every token it is given and the client to every token
it would prove (at least 128 bits of randomness in form; generated tokens
have 256).  Without a password-authenticated key exchange (not in the
standard library) no shared-secret scheme does better: whoever proves first
hands the other side an HMAC.  Over TLS a pinned certificate or CA check
rules the impostor out before any of this.

The token never crosses the wire and proofs are compared with
``hmac.compare_digest``.  Every message is a complete rpyc 6 frame, so each
party understands what it gets: a stock rpyc server answers the hello as the
ping it is (the client then knows it asks for no token), and a client that
starts rpyc at once (no token; ``rpyc.classic.connect``) gets an rpyc
exception reply saying a token is needed, instead of a dropped connection.

The server side never trusts a length: frames over ``MAX_FRAME`` bytes,
compressed frames and anything that is not one of the messages above end the
connection.  ``ServerHandshake`` is input-driven (bytes in, bytes out), so one
thread can run it for many connections (``gate.py``); ``TokenAuthenticator``
runs it on one blocking socket, as a plain rpyc ``authenticator``.

Standard library and rpyc only: ``jupyter-rsym serve`` imports this on a bare
Python.
"""

import hashlib
import hmac
import os
import socket
import struct
import time

import rpyc
from rpyc.core import brine, consts
from rpyc.utils.authenticators import AuthenticationError

from .tokens import check_token

PROTOCOL = "jupyter-rsym-auth/2"
NONCE_BYTES = 32
MAX_FRAME = 512  # bytes of payload; the largest message above is ~150
HEADER = struct.Struct("!LB")  # rpyc's frame header: length, compressed
FLUSHER = b"\n"  # rpyc ends every frame with it
TLS_RECORD = b"\x16\x03"  # first bytes of a TLS ClientHello
# The messages of the refusals a client may get, each also an rpyc exception
# reply, so plain rpyc clients see the reason too.
TOKEN_REQUIRED = "jupyter-rsym serve at this address requires a token"
WRONG_TOKEN = "jupyter-rsym serve: wrong token"
TLS_REQUIRED = "jupyter-rsym serve at this address speaks TLS"
REFUSAL_REASONS = {TLS_REQUIRED: "a plain connection to the TLS port"}
HOW_TO_CONNECT = {
    TOKEN_REQUIRED: "; in a notebook: %rconnect HOST:PORT --token TOKEN",
    TLS_REQUIRED: "; connect to tls://HOST:PORT",
}


class HandshakeError(Exception):
    """The other side does not follow the handshake (or refused it)."""


class Refused(HandshakeError):
    """The server refused: ``str()`` is its one-line reason."""


class NoChallenge(HandshakeError):
    """The server answered the hello as a plain rpyc ping: it asks for no token."""


class ServerMismatch(HandshakeError):
    """The server runs another rpyc major (``version``)."""

    def __init__(self, version):
        super().__init__(version)
        self.version = version


class WrongServerProof(HandshakeError):
    """The server could not prove it knows the token."""


def _mac(token, label, *parts):
    return hmac.new(token.encode(), label + b"".join(parts), hashlib.sha256).digest()


# -- rpyc frames ---------------------------------------------------------------


def frame(msg, seq, args):
    """One rpyc 6 frame: header, message type, brine ``(seq, args)``, flusher."""
    payload = brine.I1.pack(msg) + brine.dump((seq, args))
    return HEADER.pack(len(payload), 0) + payload + FLUSHER


def ping(seq, data):
    """An rpyc ping request (``data`` must be brine-dumpable)."""
    return frame(consts.MSG_REQUEST, seq, (consts.HANDLE_PING, (consts.LABEL_VALUE, (data,))))


def reply(seq, data):
    return frame(consts.MSG_REPLY, seq, (consts.LABEL_VALUE, data))


def refusal(seq, message):
    """An rpyc exception reply: the client's rpyc raises ``PermissionError(message)``."""
    # rpyc's vinegar format, without the attributes it would add for an OSError
    return frame(consts.MSG_EXCEPTION, seq, (("builtins", "PermissionError"), (message,), (), ""))


class FrameReader:
    """Collects bytes and splits off rpyc frames, refusing anything oversized."""

    def __init__(self, limit=MAX_FRAME):
        self.limit = limit
        self.buffer = b""

    def feed(self, data):
        self.buffer += data
        if len(self.buffer) > HEADER.size + self.limit + len(FLUSHER):
            self._length()  # says what is wrong with the header, if anything
            raise HandshakeError("more data than a handshake message")

    def _length(self):
        if self.buffer.startswith(TLS_RECORD):
            raise HandshakeError("a TLS handshake on a plain port (client used tls://?)")
        length, compressed = HEADER.unpack_from(self.buffer)
        if length > self.limit or compressed:
            raise HandshakeError(f"not a handshake message (frame of {length} bytes announced)")
        return length

    def next(self):
        """``(msg, seq, args)`` of the next whole frame, or None if incomplete."""
        if len(self.buffer) < HEADER.size:
            return None
        end = HEADER.size + self._length() + len(FLUSHER)
        if len(self.buffer) < end:
            return None
        payload, self.buffer = self.buffer[HEADER.size : end - 1], self.buffer[end:]
        return decode(payload)


def decode(payload):
    """``(msg, seq, args)`` of an rpyc 6 frame's payload; HandshakeError if it is none."""
    try:
        msg = payload[0]
        seq, args = brine.load(payload[1:])
    except Exception:  # brine raises many kinds on garbage (and RecursionError)
        raise HandshakeError("not an rpyc message") from None
    if msg not in (consts.MSG_REQUEST, consts.MSG_REPLY, consts.MSG_EXCEPTION):
        raise HandshakeError("not an rpyc message")
    return msg, seq, args


def ping_data(msg, args):
    """The data of a ping request, or None if the message is something else."""
    if not (msg == consts.MSG_REQUEST and isinstance(args, tuple) and len(args) == 2 and args[0] == consts.HANDLE_PING):
        return None
    boxed = args[1]
    if (
        isinstance(boxed, tuple)
        and len(boxed) == 2
        and boxed[0] == consts.LABEL_VALUE
        and isinstance(boxed[1], tuple)
        and len(boxed[1]) == 1
    ):
        return boxed[1][0]
    return None


def _ours(data, kind, size):
    return isinstance(data, tuple) and len(data) == size and data[0] == PROTOCOL and data[1] == kind


# -- the server side -----------------------------------------------------------


class ServerHandshake:
    """The server's side for one connection, driven by the bytes that arrive.

    ``receive(data)`` returns the bytes to send back; afterwards ``admitted``
    (the client proved the token: hand the connection to rpyc) or ``closed``
    (drop it; ``reason`` says why, for the log) may be set.  With ``refuse``
    set, the first request is answered with that refusal whatever it is.
    """

    def __init__(self, token, refuse=None):
        self.token = token
        self.refuse = refuse
        self.reader = FrameReader()
        self.admitted = self.closed = False
        self.reason = ""
        self._nonces = None

    @property
    def started(self):
        """Whether the client has sent a well-formed hello (it is in the handshake)."""
        return self._nonces is not None

    def receive(self, data):
        if not data:
            return self._close("closed the connection during the handshake")
        try:
            self.reader.feed(data)
            out = b""
            while not (self.admitted or self.closed):
                message = self.reader.next()
                if message is None:
                    break
                out += self._on_message(*message)
            if self.admitted and self.reader.buffer:
                raise HandshakeError("sent data before the welcome")
            return out
        except HandshakeError as exc:
            self.admitted = False
            return self._close(str(exc))

    def _on_message(self, msg, seq, args):
        data = ping_data(msg, args)
        if msg != consts.MSG_REQUEST:
            raise HandshakeError("not an rpyc request")
        if self.refuse:
            return self._refuse(seq, self.refuse, REFUSAL_REASONS.get(self.refuse, self.refuse))
        if self._nonces is None:
            if not (_ours(data, "hello", 3) and _nonce(data[2])):
                return self._refuse(seq, TOKEN_REQUIRED, "no token (started rpyc without the handshake)")
            self._nonces = data[2], os.urandom(NONCE_BYTES)
            # nothing here depends on the token: the client has proven nothing yet
            return reply(seq, (PROTOCOL, "challenge", self._nonces[1], rpyc.__version__))
        if not (_ours(data, "proof", 3) and isinstance(data[2], bytes)):
            raise HandshakeError("not a token proof")
        client_nonce, server_nonce = self._nonces
        expected = _mac(self.token, b"client", server_nonce, client_nonce)
        if not hmac.compare_digest(expected, data[2]):
            return self._refuse(seq, WRONG_TOKEN, "wrong token")
        self.admitted = True
        return reply(seq, (PROTOCOL, "welcome", _mac(self.token, b"server", client_nonce, server_nonce, expected)))

    def _refuse(self, seq, message, reason):
        self._close(reason)
        return refusal(seq, message + HOW_TO_CONNECT.get(message, ""))

    def _close(self, reason):
        self.closed = True
        self.reason = self.reason or reason
        return b""


def _nonce(value):
    return isinstance(value, bytes) and len(value) == NONCE_BYTES


class TokenAuthenticator:
    """The handshake as a plain rpyc authenticator (one blocking socket per call):
    ``ThreadedServer(SlaveService, authenticator=TokenAuthenticator(token))``.

    ``jupyter-rsym serve`` runs the same handshake in its gate instead, so
    clients that never finish it cost no thread each.
    """

    def __init__(self, token, timeout=10.0):
        self.token = token
        self.timeout = timeout

    def __call__(self, sock):
        handshake = ServerHandshake(self.token)
        deadline = time.monotonic() + self.timeout
        try:
            while not (handshake.admitted or handshake.closed):
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                out = handshake.receive(sock.recv(4096))
                if out:
                    sock.sendall(out)
        except socket.timeout:
            raise AuthenticationError(f"no handshake in {self.timeout:g} s") from None
        except OSError as exc:
            raise AuthenticationError(str(exc)) from None
        finally:
            sock.settimeout(None)
        if not handshake.admitted:
            raise AuthenticationError(handshake.reason)
        return sock, "token"


# -- the client side -----------------------------------------------------------


def authenticate(sock, token, timeout, strict=True):
    """Run the client's side on ``sock`` (blocking, bounded by ``timeout`` s).

    Returns True once admitted.  Against a server that asks for no token it
    raises ``NoChallenge`` if ``strict``, otherwise returns False and the
    connection stays usable for plain rpyc (the hello was an ordinary ping).
    Raises ``Refused`` (the server's reason), ``WrongServerProof``,
    ``WeakToken`` (before proving anything), ``ServerMismatch``, ``HandshakeError``, ``socket.timeout`` or ``OSError``.
    """
    deadline = time.monotonic() + timeout
    reader = FrameReader(limit=4096)  # a server's refusal carries a sentence
    client_nonce = os.urandom(NONCE_BYTES)
    hello = (PROTOCOL, "hello", client_nonce)
    sock.settimeout(timeout)
    try:
        sock.sendall(ping(0, hello))
        data = _answer(sock, reader, deadline, 0)
        if data == hello:
            if strict:
                raise NoChallenge("the server answered the hello as a plain ping")
            return False
        if not (_ours(data, "challenge", 4) and _nonce(data[2])):
            raise HandshakeError("an unexpected answer to the hello")
        _, _, server_nonce, version = data
        if str(version).split(".")[0] != rpyc.__version__.split(".")[0]:
            raise ServerMismatch(str(version))
        check_token(token)  # a weak token's proof would let an impostor guess it offline
        proof = _mac(token, b"client", server_nonce, client_nonce)
        sock.sendall(ping(1, (PROTOCOL, "proof", proof)))
        welcome = _answer(sock, reader, deadline, 1)
        if not (_ours(welcome, "welcome", 3) and isinstance(welcome[2], bytes)):
            raise HandshakeError("an unexpected answer to the proof")
        if not hmac.compare_digest(_mac(token, b"server", client_nonce, server_nonce, proof), welcome[2]):
            raise WrongServerProof("the server's proof does not match the token")
        return True
    finally:
        sock.settimeout(None)


def _answer(sock, reader, deadline, seq):
    """The data of the server's reply to request ``seq``."""
    while (message := reader.next()) is None:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        data = sock.recv(4096)
        if not data:
            raise EOFError("the server closed the connection during the handshake")
        reader.feed(data)
    msg, got_seq, args = message
    if got_seq != seq:
        raise HandshakeError("an answer to another request")
    if msg == consts.MSG_EXCEPTION:
        raise Refused(_refusal_text(args))
    if msg != consts.MSG_REPLY or not (isinstance(args, tuple) and args[:1] == (consts.LABEL_VALUE,)):
        raise HandshakeError("not an rpyc reply")
    return args[1]


def _refusal_text(args):
    try:
        (_, name), exc_args, _, _ = args
        return str(exc_args[0]) if exc_args else name
    except (TypeError, ValueError, IndexError):
        return "refused"
