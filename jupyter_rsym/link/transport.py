"""How a session reaches its server: an address becomes a connected rpyc connection.

A ``Transport`` is made once per session from its address and opens streams
to the server as often as the session asks (the main connection, the side
connection, later a re-connection).  It also runs rpyc's handshake over a
stream, so every way of reaching a server fails the same way: one clear line
(``ConnectFailed``).  One class per scheme; ``transport_for`` picks it.

Every transport proves the notebook's token, when it has one, on each new
stream before rpyc starts (``Transport.authenticate``, the client side of
``auth.py``), so a new scheme only adds a way to get a stream.  A token given
to ``%rconnect`` must be asked for; one from ``JUPYTER_RSYM_TOKEN`` or
``RSym.token_file`` is used where a server asks for it and costs a plain
server one round trip.
"""

import base64
import os
import ssl
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import rpyc
from rpyc.lib.compat import TimeoutError as ReplyTimeout
from rpyc.utils.factory import connect_channel

from ..remote import auth
from ..remote.certificate import fingerprint
from ..remote.tokens import WeakToken
from ..remote.wire import WireStream
from .errors import ConnectFailed, RSymError
from .sigint import GuardedChannel

RPYC_MAJOR = rpyc.__version__.split(".")[0]  # other majors speak another protocol
TOKEN_ENV = "JUPYTER_RSYM_TOKEN"


@dataclass(frozen=True)
class Credentials:
    """What ``%rconnect`` was given to prove itself and check the server:
    a token, and for TLS the CA file to trust and a client certificate and key
    (each falls back to its ``RSym`` setting), or instead of a CA the
    server certificate's fingerprint (``SHA256:...``, pinned as ssh does)."""

    token: str | None = None
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    fingerprint: str | None = None


class Transport:
    """Opens connections to the server at ``address`` (see the module docstring)."""

    def __init__(self, address, settings, credentials=None):
        self.address = address
        self.timeout = settings.connect_timeout
        self.keepalive = settings.keepalive
        self.token, self.token_required = _token(credentials or Credentials(), settings)
        self.compress = settings.compress

    def open_stream(self):
        """A new rpyc stream to the server, authenticated; ``ConnectFailed`` if
        it cannot be reached or the handshake fails."""
        stream = self.new_stream()
        try:
            if self.token is not None:
                self.authenticate(stream)
        except BaseException:
            stream.close()
            raise
        return stream

    def new_stream(self):
        """A new stream to the server, before authentication (one per scheme)."""
        raise NotImplementedError

    def authenticate(self, stream):
        """Prove the token on ``stream`` (``auth.authenticate``); one clear line if that fails."""
        address = self.address
        try:
            auth.authenticate(stream.sock, self.token, self.timeout, strict=self.token_required)
        except auth.Refused as exc:
            raise ConnectFailed(self._refusal(str(exc)) or f"{address} refused the token: {exc}") from None
        except WeakToken as exc:
            raise ConnectFailed(f"not proving a weak token to {address}: {exc}") from None
        except auth.WrongServerProof:
            raise ConnectFailed(f"wrong token for {address}: the server holds another one") from None
        except auth.NoChallenge:
            raise ConnectFailed(
                f"{address} asks for no token: it is a plain rpyc server (rpyc_classic, or "
                "jupyter-rsym serve --no-auth); connect without --token"
            ) from None
        except auth.ServerMismatch as exc:
            raise ConnectFailed(other_major(address, exc.version)) from None
        except TimeoutError:
            raise ConnectFailed(f"{address} did not answer the token handshake in {self.timeout:g} s") from None
        except ssl.SSLError as exc:
            raise ConnectFailed(self._tls_refused(exc)) from None
        except (auth.HandshakeError, EOFError, OSError) as exc:
            raise ConnectFailed(
                f"{address} broke off the token handshake ({exc}): is it a jupyter-rsym server on rpyc {RPYC_MAJOR}.x?"
            ) from None

    def _refusal(self, text):
        """The line for a refusal our server sent (as an rpyc exception), or None."""
        address = self.address
        if auth.TOKEN_REQUIRED in text:
            return (
                f"{address} requires a token: %rconnect {address} --token TOKEN "
                f"(or set {TOKEN_ENV}, or RSym.token_file)"
            )
        if auth.TLS_REQUIRED in text:
            return f"{address} speaks TLS: connect to tls://{address.host}:{address.port}"
        if auth.WRONG_TOKEN in text:
            return f"wrong token for {address}: the server holds another one"
        return None

    def _tls_refused(self, exc):
        reason = exc.reason or str(exc)
        if "CERTIFICATE_REQUIRED" in reason.upper():
            return f"{self.address} wants a client certificate: pass --cert FILE --key FILE"
        return f"{self.address} refused the TLS connection ({reason})"

    def connect(self, service, config, setup=None):
        """A new rpyc connection serving ``service``, handshake done.

        ``setup(conn)`` runs under the same error translation (the agent's
        set-up is part of the handshake: a server that is not classic fails
        there); on failure the connection is closed.
        """
        with self._handshake() as channel:
            conn = connect_channel(channel, service, config)
            try:
                if setup is not None:
                    setup(conn)
            except BaseException:
                conn.close()
                raise
            return conn

    def close(self):
        """Release what the transport holds besides its streams (tunnels, servers)."""

    @property
    def rconnect_args(self):
        """What ``%rconnect`` needs to reach this server again: its address, by default."""
        return str(self.address)

    def not_a_server(self, exc):
        """The ``ConnectFailed`` for a handshake that failed with ``exc``."""
        reason = str(exc).split("\n", 1)[0]  # not the remote traceback rpyc appends
        refusal = self._refusal(reason) if isinstance(exc, PermissionError) else None
        if refusal:
            return ConnectFailed(refusal)
        if "invalid message type" in reason:  # an rpyc 5 (or older) reply
            return ConnectFailed(other_major(self.address, None))
        return ConnectFailed(
            f"{self.address} is not an rpyc classic server ({type(exc).__name__}: {reason}); "
            f"it must run rpyc {RPYC_MAJOR}.x, like this notebook"
        )

    # Whether two streams may be opened at once from two threads: a session
    # opens its side connection while the main one connects (fewer round trips).
    concurrent_streams = False

    def prepare_resume(self):
        """Called before each attempt to reach the server again for a resume
        (``resume.py``): a transport whose way there can break (an SSH
        tunnel) re-opens it here.  A ``ConnectFailed`` with ``refused`` set
        means the server is gone: the resume fails at once."""

    @contextmanager
    def _handshake(self):
        """A channel to the server; turns handshake failures into one clear error."""
        stream = self.open_stream()
        try:
            yield GuardedChannel(stream, compress=self.compress)
        except ConnectFailed:  # the side connection, opened during the set-up, failed
            stream.close()
            raise
        except ReplyTimeout:
            stream.close()
            raise ConnectFailed(
                f"{self.address} accepted the connection but did not answer in "
                f"{self.timeout:g} s; is it an rpyc classic server?"
            ) from None
        except ssl.SSLError as exc:  # e.g. the server wanted a client certificate
            stream.close()
            raise ConnectFailed(self._tls_refused(exc)) from None
        except RSymError:  # the set-up already said what went wrong
            stream.close()
            raise
        except Exception as exc:  # garbage, a non-classic service, a dropped link
            stream.close()
            raise self.not_a_server(exc) from None
        except BaseException:
            stream.close()
            raise


class TcpTransport(Transport):
    """A plain TCP connection to HOST:PORT."""

    concurrent_streams = True

    def new_stream(self):
        return tcp_stream(self.address, self.address.host, self.address.port, self.timeout, self.keepalive)


class TlsStream(WireStream):
    """rpyc's socket stream over TLS (without rpyc's copies of large messages,
    ``agent/wire.py``); data TLS has already decrypted counts as readable."""

    __slots__ = ()

    def poll(self, timeout):
        return self.sock.pending() > 0 or super().poll(timeout)


class TlsTransport(Transport):
    """TLS to HOST:PORT: the server's certificate is checked against ``--ca``
    (or the system's CAs) and its name, or with ``--fingerprint`` against
    that fingerprint alone; ``--cert``/``--key`` present a client
    certificate."""

    concurrent_streams = True

    def __init__(self, address, settings, credentials=None):
        super().__init__(address, settings, credentials)
        credentials = credentials or Credentials()
        self.fingerprint = credentials.fingerprint and pinned(credentials.fingerprint)
        self.context = tls_context(credentials, settings)

    def new_stream(self):
        address = self.address
        sock = tcp_stream(address, address.host, address.port, self.timeout, self.keepalive).sock
        sock.settimeout(self.timeout)
        try:
            tls = self.context.wrap_socket(sock, server_hostname=address.host)
        except ssl.SSLCertVerificationError as exc:
            sock.close()
            raise ConnectFailed(
                f"cannot verify the TLS certificate of {address} ({exc.verify_message}); "
                "pass --ca FILE with the CA that signed it"
            ) from None
        except TimeoutError:
            sock.close()
            raise ConnectFailed(
                f"{address} did not answer the TLS handshake in {self.timeout:g} s; if it is a "
                f"plain server, connect to {address.host}:{address.port} without tls://"
            ) from None
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError):
            sock.close()
            raise ConnectFailed(
                f"{address} closed the connection in the TLS handshake; if it is a plain server, "
                f"connect to {address.host}:{address.port} without tls://"
            ) from None
        except ssl.SSLError as exc:
            sock.close()
            raise ConnectFailed(self._tls_refused(exc)) from None
        if self.fingerprint:
            seen = fingerprint(tls.getpeercert(binary_form=True))
            if seen != self.fingerprint:  # before a single byte of ours goes out
                tls.close()
                raise ConnectFailed(
                    f"the TLS certificate of {address} has fingerprint {seen}, not {self.fingerprint} "
                    "(--fingerprint): another server, or the server made a new certificate"
                )
        tls.settimeout(None)
        return TlsStream(tls)


def tcp_stream(address, host, port, timeout, keepalive):
    """An rpyc stream to host:port (``WireStream``: large messages without
    extra copies); failures name ``address``."""
    try:
        stream = WireStream.connect(
            # no TCP_NODELAY: measured slower for rpyc's request/reply pattern
            host,
            port,
            timeout=timeout,
            keepalive=keepalive or False,
            attempts=1,
        )
    except TimeoutError:
        raise ConnectFailed(f"no answer from {address} in {timeout:g} s") from None
    except ConnectionRefusedError as exc:
        raise ConnectFailed(f"cannot connect to {address}: {exc.strerror or exc}", refused=True) from None
    except OSError as exc:
        raise ConnectFailed(f"cannot connect to {address}: {exc.strerror or exc}") from None
    stream.sock.settimeout(None)
    return stream


def tls_context(credentials, settings):
    """The client's TLS context for ``credentials`` (falling back to the RSym settings)."""
    ca, cert, key = (
        os.path.expanduser(path) if path else None
        for path in (
            credentials.ca or settings.tls_ca,
            credentials.cert or settings.tls_cert,
            credentials.key or settings.tls_key,
        )
    )
    for option, path in (("--ca", ca), ("--cert", cert), ("--key", key)):
        if path and not os.path.isfile(path):  # ssl's own error names no file
            raise ConnectFailed(f"the TLS file {path} ({option}, or RSym.tls_{option[2:]}) does not exist")
    try:
        context = ssl.create_default_context(cafile=ca)
        if credentials.fingerprint:  # the pin replaces the CA and the name: checked after the handshake
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if cert:
            context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        names = " / ".join(filter(None, (ca, cert, key)))
        raise ConnectFailed(f"cannot load the TLS files {names}: {exc.strerror or exc}") from None
    return context


def pinned(text):
    """A ``--fingerprint`` as ``fingerprint`` writes it (``SHA256:`` optional;
    hex with or without colons also taken); ``ConnectFailed`` if it is none."""
    body = text.strip().removeprefix("SHA256:").removeprefix("sha256:")
    try:
        if len(body.replace(":", "")) == 64:
            digest = bytes.fromhex(body.replace(":", ""))
        else:
            digest = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except ValueError:
        digest = b""
    if len(digest) != 32:
        raise ConnectFailed(f"--fingerprint {text}: not a SHA-256 fingerprint (SHA256:... as the server printed it)")
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _token(credentials, settings):
    """``(token, required)``: ``--token`` must be asked for; the ambient ones
    (environment, then ``RSym.token_file``) are offered."""
    if credentials.token:
        return credentials.token, True
    if os.environ.get(TOKEN_ENV, "").strip():
        return os.environ[TOKEN_ENV].strip(), False
    if settings.token_file:
        path = Path(settings.token_file).expanduser()
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise ConnectFailed(f"cannot read RSym.token_file {str(path)!r}: {exc.strerror}") from None
        if lines and lines[0].strip():
            return lines[0].strip(), False
    return None, False


def other_major(address, version):
    """The line for a server that runs another rpyc major (``version`` if known)."""
    if version is None:
        return (
            f"{address} speaks another rpyc protocol (rpyc 5 or older?): "
            f"install rpyc {RPYC_MAJOR}.x there, as in this notebook (rpyc {rpyc.__version__})"
        )
    theirs = int(version.split(".")[0])
    if theirs < int(RPYC_MAJOR):
        fix = f"install rpyc {RPYC_MAJOR}.x on the server"
    else:
        fix = f"install rpyc {theirs}.x in the notebook's environment"
    return f"{address} runs rpyc {version}, this notebook rpyc {rpyc.__version__}: {fix}"
