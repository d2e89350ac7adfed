"""``jupyter-rsym serve``: a classic rpyc server that is safe by default.

::

    jupyter-rsym serve [--host 127.0.0.1] [--port 18812]
                       [--token T | --token-file F | --no-auth]
                       [--tls-cert C --tls-key K | --tls-self-signed] [--tls-client-ca CA]
                       [--allow-plaintext] [--auth-timeout 10] [--log-file F]
                       [--resume-grace 600] [--resume-buffer 8M] [--exit-when-idle]

It serves rpyc's classic service (``SlaveService``, as ``rpyc_classic``
does) with the agent already imported and registered (``bundle.register``),
so a notebook of the same version sends no code at connect time.  It binds
loopback unless told otherwise.  Without ``--token``/``--token-file`` it
makes a random token and prints the ``%rconnect`` line to paste, as Jupyter
prints its token URL.  Every new connection passes the gate (``gate.py``:
TLS handshake, then the token handshake of ``auth.py``) before any object is
reachable; ``--no-auth`` without TLS is plain classic (``rpyc.classic.connect``
works against it).  Off loopback it speaks TLS (``--tls-self-signed`` makes
a certificate and prints its fingerprint for the notebook to pin) unless
told ``--allow-plaintext``.  User-chosen tokens need 128 bits in form
(``tokens.weak_token``), a token file must be private to its owner.  One log
line per admitted and closed connection, and per refused one up to a budget
(then a count every 10 s, ``gate.RefusalLog``), goes to this process's
stderr or ``--log-file`` (created 0600; the token goes to the terminal
only), never to a notebook: the handler holds the original stream, which
the agent's output router does not touch.  Ctrl-C or SIGTERM stop it.

It keeps each notebook's session for ``--resume-grace`` s after its link
drops (``agent/resumable.py``: namespace, running threads, up to
``--resume-buffer`` of unacknowledged output), so the notebook resumes it
over a new connection.  With ``--exit-when-idle`` it exits once no
connection is open and no session is kept (a server deployed for one
notebook ends after that notebook's grace period).

Needs only the standard library and rpyc: ``python -m jupyter_rsym.server``
runs from a directory holding ``rpyc`` and ``jupyter_rsym`` with its
``__init__``, ``server`` and ``remote/`` (this package, which imports
nothing else of ours).
"""

import argparse
import itertools
import logging
import signal
import socket
import ssl
import sys
import threading
import time
from pathlib import Path

from rpyc.core import Channel, SlaveService, SocketStream
from rpyc.lib import spawn
from rpyc.utils.server import ThreadedServer

from . import bundle
from .agent import resumable
from .gate import Gate
from .serveoptions import (
    DEFAULT_PORT,
    DEFAULT_RESUME_BUFFER,
    arguments,
    is_loopback,
    private_file,
    startup_lines,
    tls_context,
    token_from,
)

CLOSE_WAIT = 2.0  # seconds a stopping server waits for its connections' threads
IDLE_AT_START = 60.0  # --exit-when-idle: seconds (at least) a server nobody reaches waits
# the start-up line, as rpyc_classic's (localserver reads the port from it)
STARTED = "server started on [{host}]:{port}"

log = logging.getLogger("jupyter_rsym.remote.server")


class Link:
    """An admitted connection: the server's record of it (``Server.links``)."""

    def __init__(self, peer, how, conn):
        self.peer, self.how, self.conn = peer, how, conn
        self.started = time.monotonic()


class Server(ThreadedServer):
    """rpyc's threaded server with classic semantics; new connections pass the
    gate first when there is a token or TLS (see the module docstring).

    ``links`` holds the admitted connections by id while they are open;
    ``sessions`` (``agent.resumable.Registry``) the notebook sessions kept
    across dropped links, ``resume_grace`` s each (0: none).
    ``exit_when_idle``: stop once neither holds anything (checked when a
    connection closes or a session ends; a server nobody reaches stops
    ``max(resume_grace, IDLE_AT_START)`` s after it starts).
    """

    def __init__(
        self,
        host="127.0.0.1",
        port=DEFAULT_PORT,
        token=None,
        tls=None,
        auth_timeout=10.0,
        max_pending=256,
        resume_grace=600.0,
        resume_buffer=DEFAULT_RESUME_BUFFER,
        exit_when_idle=False,
        max_per_address=16,
        logged_refusals=20,
    ):
        rpyc_log = logging.getLogger("jupyter_rsym.remote.server.rpyc")
        rpyc_log.setLevel(logging.WARNING)  # rpyc's per-connection chatter; ours is below
        super().__init__(SlaveService, hostname=host, port=port, ipv6=":" in host, reuse_addr=True, logger=rpyc_log)
        self.token, self.tls = token, tls
        self.gate = None
        if token is not None or tls is not None:
            self.gate = Gate(
                self._admit, self._refused, token, tls, auth_timeout, max_pending, max_per_address, logged_refusals
            )
        self.links = {}
        self._ids = itertools.count(1)
        self._serving = set()  # threads serving admitted connections
        self.sessions = resumable.Registry(
            resume_grace, resume_buffer, lambda text: log.info("%s", text), self._exit_if_idle
        )
        self.exit_when_idle = exit_when_idle

    def serve_forever(self):
        """Listen and serve until ``close()`` (or Ctrl-C / SIGTERM in the main thread)."""
        self._listen()
        if self.gate is not None:
            self.gate.start()
        if self.exit_when_idle:  # nobody came at all
            timer = threading.Timer(max(self.sessions.grace, IDLE_AT_START), self._exit_if_idle)
            timer.daemon = True
            timer.start()
        try:
            while self.active:
                self.accept()
        except (EOFError, KeyboardInterrupt):
            pass
        finally:
            self.close()

    def close(self):
        if self._closed:
            return
        if self.gate is not None:
            self.gate.close()
        super().close()  # closes every client socket: their threads end now
        deadline = time.monotonic() + CLOSE_WAIT
        for thread in list(self._serving):
            if thread is not threading.current_thread():  # --exit-when-idle stops from one
                thread.join(max(0.0, deadline - time.monotonic()))
        log.info("stopped")

    def _exit_if_idle(self):
        if self.exit_when_idle and not self.links and not len(self.sessions) and self.active:
            log.info("no connection and no session left: exiting (--exit-when-idle)")
            self.close()

    def _accept_method(self, sock):
        peer = _peer(sock)
        if self.gate is None:
            self._track(spawn(self._serve, sock, peer, "no auth"))
        else:
            self.clients.discard(sock)  # the gate owns it until it is let in
            self.gate.add(sock, peer)

    def _admit(self, sock, peer, how):
        self.clients.add(sock)
        self._track(spawn(self._serve, sock, peer, how))

    def _track(self, thread):
        self._serving = {t for t in self._serving if t.is_alive()}
        self._serving.add(thread)

    def _refused(self, peer, reason):
        log.info("%s", f"{peer} {reason}" if peer else reason)

    def _serve(self, sock, peer, how):
        """Serve one admitted connection in its own thread until it closes."""
        link_id = next(self._ids)
        started = time.monotonic()
        log.info("%s admitted (%s)", peer, how)
        try:
            config = dict(
                self.protocol_config,
                credentials=how,
                logger=self.logger,
                endpoints=(sock.getsockname(), sock.getpeername()),
            )
            config[resumable.CONFIG_KEY] = self.sessions
            conn = self.service._connect(Channel(SocketStream(sock)), config)
            self.links[link_id] = Link(peer, how, conn)
            conn.serve_all()
        except Exception as exc:  # a client vanishing mid-frame, a broken TLS record
            log.info("%s ended: %s", peer, str(exc).split("\n", 1)[0] or type(exc).__name__)
        finally:
            link = self.links.pop(link_id, None)
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
            self.clients.discard(sock)
            log.info("%s closed after %.1f s", peer, time.monotonic() - started)
            if link is not None:
                self.sessions.closed(link.conn)
            self._exit_if_idle()


def _peer(sock):
    try:
        host, port = sock.getpeername()[:2]
    except OSError:
        return "?"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _setup_logging(log_file):
    # the stream is bound now: the agent later replaces sys.stderr with its router
    handler = logging.StreamHandler(private_file(log_file) if log_file else sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s jupyter-rsym serve: %(message)s", "%Y-%m-%d %H:%M:%S"))
    for name in ("jupyter_rsym.remote.server", "jupyter_rsym.remote.server.rpyc"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
    log.setLevel(logging.INFO)


def _fail(text):
    print(f"jupyter-rsym serve: {text}", file=sys.stderr, flush=True)
    return 2


def main(argv=None):
    """Run the server (see the module docstring); returns the exit status."""
    parser = argparse.ArgumentParser(prog="jupyter-rsym serve", parents=[arguments()])
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        return _fail("--tls-cert and --tls-key go together")
    if not 0 <= args.port <= 65535:  # the OS would take it modulo 65536, silently
        return _fail(f"--port {args.port}: a port is 0 (any free one) to 65535")
    for option, path in (
        ("--tls-cert", args.tls_cert),
        ("--tls-key", args.tls_key),
        ("--tls-client-ca", args.tls_client_ca),
        ("--token-file", args.token_file),
    ):
        if path and not Path(path).expanduser().is_file():  # ssl's own error names no file
            return _fail(f"cannot start: {option} {path}: no such file")
    if args.tls_self_signed and args.tls_cert:
        return _fail("--tls-self-signed makes its own certificate: drop --tls-cert/--tls-key")
    if not (args.tls_cert or args.tls_self_signed or args.allow_plaintext or is_loopback(args.host)):
        return _fail(
            f"--host {args.host} is not a loopback address: serve TLS there (--tls-self-signed, "
            "or --tls-cert/--tls-key), or say --allow-plaintext if nobody else is on the path"
        )
    try:
        token = token_from(args)
        tls, fingerprint = tls_context(args)
    except (OSError, ValueError, RuntimeError, ssl.SSLError) as exc:
        return _fail(f"cannot start: {exc}")
    _setup_logging(args.log_file)
    try:
        server = Server(
            args.host,
            args.port,
            token,
            tls,
            args.auth_timeout,
            args.max_pending,
            max(args.resume_grace, 0.0),
            args.resume_buffer,
            args.exit_when_idle,
            args.max_pending_per_address,
            args.logged_refusals,
        )
        server._listen()
    except OSError as exc:
        return _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    bundle.register()  # notebooks of this version find the agent and send nothing
    _announce(server, args, token, tls, fingerprint)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops it like Ctrl-C
    server.serve_forever()
    return 0


def _announce(server, args, token, tls, fingerprint=None):
    lines = startup_lines(args, server.port, token, tls, fingerprint, server.sessions.grace)
    lines.append(STARTED.format(host=server.host, port=server.port))
    for line in lines:
        # the token goes to the terminal only: a log file is read by more eyes, and kept
        log.info(
            "%s",
            line
            if line is not lines[1] or not (args.log_file and token)
            else "paste into a notebook: the line printed on the terminal (it holds the token)",
        )
        if args.log_file:
            print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
