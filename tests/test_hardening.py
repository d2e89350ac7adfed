"""Issue 22: each finding of the security review of ``jupyter-rsym serve`` as the
attack that showed it, against real servers on loopback addresses (127.0.0.x).
Every wait is on an event (a log line, a reply, a closed socket) and bounded."""

import argparse
import hashlib
import hmac
import os
import re
import socket
import ssl
import stat
import subprocess
import sys
import threading
from contextlib import closing, suppress
from itertools import permutations
from types import SimpleNamespace

from jupyter_rsym.kernel.config import RSym
from jupyter_rsym.link.address import parse_address as parse
from jupyter_rsym.link.session import RemoteSession
from jupyter_rsym.link.transport import Credentials
from jupyter_rsym.remote import auth, certificate
from jupyter_rsym.remote import server as rsym_server
from jupyter_rsym.remote.agent import capture, resumable
from tests.servers import RsymServer
from tests.waits import wait_until

from .test_sessions import fresh, one_line_error  # noqa: F401  (fixture)

SERVE = [sys.executable, "-m", "jupyter_rsym", "serve", "--port", "0"]
ATTACKER = "127.0.0.2"  # another address than the good client's 127.0.0.1
COUNT_LINE = re.compile(r"refused (\d+) connections from (\d+) address(es)? in the last 10 s")


def refused_to_start(*args):
    """The one line ``jupyter-rsym serve ARGS`` stops with (it must not start)."""
    done = subprocess.run(SERVE + list(args), capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    return done.stderr.strip()


def token_file(tmp_path, token, mode=0o600):
    path = tmp_path / "token"
    path.write_text(token + "\n")
    path.chmod(mode)
    return path


def receive_frame(sock):
    reader = auth.FrameReader(limit=4096)
    while (message := reader.next()) is None:
        data = sock.recv(4096)
        assert data, "the server closed the connection"
        reader.feed(data)
    return message


# -- 1. no oracle for whoever has not proven the token -------------------------------


def confirms(guess, client_nonce, fields):
    """Whether ``fields`` (what the server sent) confirm ``guess`` offline: some
    field is an HMAC under the guess of the nonces, in any order, under any label."""
    nonces = [client_nonce] + [f for f in fields if isinstance(f, bytes) and len(f) == auth.NONCE_BYTES]
    candidates = {
        hmac.new(guess.encode(), label + b"".join(order), hashlib.sha256).digest()
        for label in (b"server", b"client")
        for r in (2, 3)
        for order in permutations(nonces, r)
    }
    return any(f in candidates for f in fields if isinstance(f, bytes))


def test_an_unauthenticated_client_gets_nothing_to_test_guesses_against(tmp_path):
    token = "k9x2" + "0" * 28  # a dictionary word the attacker would try first, padded to pass
    with RsymServer(extra_args=["--token-file", str(token_file(tmp_path, token))]) as server:
        with socket.create_connection((server.host, server.port), source_address=(ATTACKER, 0)) as sock:
            client_nonce = os.urandom(auth.NONCE_BYTES)
            sock.sendall(auth.ping(0, (auth.PROTOCOL, "hello", client_nonce)))
            _, _, (_, challenge) = receive_frame(sock)
    assert challenge[:2] == (auth.PROTOCOL, "challenge")
    # even holding the right guess, nothing in the reply tells it from a wrong one
    assert not confirms(token, client_nonce, challenge)
    assert not confirms("wrong" + token, client_nonce, challenge)


def test_weak_tokens_are_refused_with_how_to_make_one(tmp_path):
    how = 'make one with: python -c "import secrets; print(secrets.token_hex(32))"'
    for token, why in [
        ("k9x2", "4 characters, fewer than 22"),
        ("a", "1 hex digits, fewer than 32"),
        ("correct-horse", "13 characters, fewer than 22"),
        ("0123456789abcdef" * 1, "16 hex"),
    ]:
        line = refused_to_start("--token", token)
        assert line.startswith(f"jupyter-rsym serve: cannot start: the token has {why}") and line.endswith(how)
    assert "the token has 1 characters, fewer than 22" in refused_to_start("--token", " ")
    assert "the token contains white space" in refused_to_start("--token", "a b c d e f g h i j k l m")


def test_a_token_file_others_can_read_is_refused(tmp_path):
    path = token_file(tmp_path, "f" * 64, mode=0o644)
    assert refused_to_start("--token-file", str(path)) == (
        f"jupyter-rsym serve: cannot start: the token file {path} is open to others (mode 644): chmod 600 {path}"
    )


# -- 2. plaintext only on loopback; TLS with a pinned self-signed certificate ---------


def test_plaintext_off_loopback_refuses_to_start():
    # 0.0.0.0 is refused before anything is bound: no traffic is ever accepted here
    for extra in ([], ["--no-auth"]):
        assert refused_to_start("--host", "0.0.0.0", *extra) == (
            "jupyter-rsym serve: --host 0.0.0.0 is not a loopback address: serve TLS there "
            "(--tls-self-signed, or --tls-cert/--tls-key), or say --allow-plaintext if nobody else is "
            "on the path"
        )


def startup_warnings(*argv):
    args = argparse.ArgumentParser(parents=[rsym_server.arguments()]).parse_args(list(argv))
    return [line for line in rsym_server.startup_lines(args, 18812, "t" * 64, None) if line.startswith("WARNING")]


def test_allow_plaintext_warns_at_every_start():
    assert startup_warnings("--host", "0.0.0.0", "--allow-plaintext") == [
        "WARNING: plain TCP on 0.0.0.0 (--allow-plaintext): anyone on the path can read the session "
        "and take over an admitted connection"
    ]
    assert startup_warnings("--host", "127.0.0.2") == []  # all of 127/8 is loopback


class Relay:
    """Between a notebook and the server: passes bytes both ways until told to
    stop (after the handshake), then keeps the server's side for itself."""

    def __init__(self, target):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.target, self.stop = target, threading.Event()
        self.upstream = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        import selectors

        client, _ = self.listener.accept()
        self.upstream = socket.create_connection(self.target)
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ, self.upstream)
            selector.register(self.upstream, selectors.EVENT_READ, client)
            while not self.stop.is_set():
                for key, _ in selector.select(0.05):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        client.close()  # the notebook is cut off

    def hijack(self, data):
        """Stop relaying, send ``data`` to the server as the notebook; what it answers."""
        self.stop.set()
        self.thread.join(10)
        self.upstream.sendall(data)
        self.upstream.settimeout(10)
        received = b""
        with suppress(ConnectionResetError):
            while chunk := self.upstream.recv(65536):
                received += chunk
        return received


def tls_records(data):
    """The content types of ``data``, which must be whole TLS records."""
    types = set()
    while data:
        assert data[1:3] == b"\x03\x03" and len(data) >= 5, data
        types.add(data[0])
        data = data[5 + int.from_bytes(data[3:5], "big") :]
    return types


def test_a_relay_cannot_take_over_a_tls_connection_after_the_handshake(start_rsym_server):
    server = start_rsym_server("--tls-self-signed")
    fingerprint = re.search(r"--fingerprint (\S+)", server.paste_line)[1]
    relay = Relay((server.host, server.port))
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # pinned below
    with closing(socket.create_connection(("127.0.0.1", relay.port))) as raw:
        notebook = context.wrap_socket(raw)
        assert certificate.fingerprint(notebook.getpeercert(binary_form=True)) == fingerprint
        assert auth.authenticate(notebook, server.token, 10) is True
        server.wait_for_log("admitted (token, TLS)")
        # the relay now speaks rpyc as the notebook would, in the clear
        received = relay.hijack(auth.ping(1, "pwned?"))
    assert tls_records(received) <= {0x15, 0x17}  # at most an alert, encrypted: never an rpyc reply
    server.wait_for_log("closed after")


def test_self_signed_without_cryptography_nor_openssl_is_one_line(tmp_path):
    code = (
        "import sys; sys.modules['cryptography'] = None  # not installed\n"
        "from jupyter_rsym.remote.server import main; sys.exit(main(['--tls-self-signed', '--port', '0']))"
    )
    no_openssl = dict(os.environ, PATH=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, env=no_openssl)
    assert done.returncode == 2 and done.stderr == f"jupyter-rsym serve: cannot start: {certificate.MISSING}\n"


PINNED = (  # a certificate made, served, and its fingerprint seen by a client
    "import socket, ssl\n"
    "from jupyter_rsym.remote import certificate\n"
    "context, fingerprint = certificate.self_signed('127.0.0.1')\n"
    "client = ssl.create_default_context(); client.check_hostname = False; client.verify_mode = ssl.CERT_NONE\n"
    "listener = socket.create_server(('127.0.0.1', 0))\n"
    "raw = socket.create_connection(listener.getsockname())\n"
    "import threading; accepted = listener.accept()[0]\n"
    "threading.Thread(target=lambda: context.wrap_socket(accepted, server_side=True)).start()\n"
    "seen = certificate.fingerprint(client.wrap_socket(raw).getpeercert(binary_form=True))\n"
    "print(seen == fingerprint, fingerprint)"
)


def test_self_signed_without_openssl_is_made_by_cryptography(tmp_path):
    no_openssl = dict(os.environ, PATH=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", PINNED], capture_output=True, text=True, timeout=30, env=no_openssl)
    assert done.stdout.startswith("True SHA256:"), done.stderr


def test_self_signed_without_cryptography_is_made_by_openssl():
    """A Dask worker needs neither: the openssl command makes the certificate, pinned alike."""
    code = "import sys; sys.modules['cryptography'] = None  # not installed\n" + PINNED
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.stdout.startswith("True SHA256:"), done.stderr


def test_self_signed_certificate_is_pinned_by_its_fingerprint(fresh, start_rsym_server):
    server = start_rsym_server("--tls-self-signed")
    assert re.fullmatch(
        r"%rconnect tls://127\.0\.0\.1:\d+ --fingerprint SHA256:[A-Za-z0-9+/]{43} "
        r"--token [0-9a-f]{64}",
        server.paste_line,
    ), server.paste_line
    cell = fresh.ok(server.paste_line + " --as pinned")
    assert cell.stdout.startswith(f"Connected pinned to {server.address}: Python 3."), cell.summary()
    assert fresh.ok("%remote --on pinned 6 * 7").result["text/plain"] == "42"
    other = "SHA256:" + "A" * 43
    shown = re.search(r"--fingerprint (\S+)", server.paste_line)[1]
    line = one_line_error(
        fresh.run(f"%rconnect {server.address} --fingerprint {other} --token {server.token} --as wrong"),
        "ConnectFailed",
    )
    assert line == (
        f"ConnectionError: the TLS certificate of {server.address} has fingerprint {shown}, "
        f"not {other} (--fingerprint): another server, or the server made a new certificate"
    )
    # the Python API carries it too
    session = RemoteSession.connect(
        "api", parse(server.address, 18812), RSym(), credentials=Credentials(server.token, fingerprint=shown)
    )
    try:
        assert session.run("6 * 7") == 42
    finally:
        session.close()


# -- 3. secrets never in logs, files private -------------------------------------------


def test_log_file_is_private_and_never_holds_the_token(tmp_path):
    log_file = tmp_path / "serve.log"
    log_file.write_text("")
    log_file.chmod(0o644)  # an older log, made with wider rights
    with RsymServer(extra_args=["--log-file", str(log_file)]) as server:
        with socket.create_connection((server.host, server.port)) as sock:
            assert auth.authenticate(sock, server.token, 10) is True
        wait_until(lambda: "admitted (token)" in log_file.read_text(), 10, what="the admission logged")
    logged = log_file.read_text()
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    assert "admitted (token)" in logged and server.token not in logged
    assert "paste into a notebook: the line printed on the terminal (it holds the token)" in logged
    assert f"--token {server.token}" in server.paste_line  # the terminal got it
    fresh_file = tmp_path / "new.log"
    with RsymServer(extra_args=["--log-file", str(fresh_file)]):
        assert stat.S_IMODE(fresh_file.stat().st_mode) == 0o600


# -- 4. fair under flood; refusals counted, not one line each ----------------------------


class Flood:
    """Bare connections from ``ATTACKER`` as fast as one thread opens them, each
    held until ``held`` newer ones are open; runs until ``stop()``."""

    def __init__(self, server, held=200):
        self.server, self.held, self.count = server, held, 0
        self.holding = threading.Event()  # set once ``held`` connections are open
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        open_ = []
        while not self._stop.is_set():
            with suppress(OSError):
                open_.append(
                    socket.create_connection(
                        (self.server.host, self.server.port), timeout=5, source_address=(ATTACKER, 0)
                    )
                )
                self.count += 1
            while len(open_) > self.held:
                self.holding.set()
                open_.pop(0).close()
        for sock in open_:
            sock.close()

    def stop(self):
        self._stop.set()
        self._thread.join(30)


def test_a_good_client_over_a_slow_link_gets_in_under_a_flood(start_rsym_server, start_proxy):
    # on the old gate 64 bare connects in the client's 100 ms round trip evicted it
    server = start_rsym_server("--max-pending", "64")
    proxy = start_proxy(("127.0.0.1", server.port), delay=0.05)  # 100 ms RTT, from 127.0.0.1
    floods = [Flood(server, held=100) for _ in range(4)]  # thousands of connects a second
    try:
        for flood in floods:
            assert flood.holding.wait(30)  # the gate is full of it (the old one then evicted the client)
        for attempt in range(5):
            start = sum(flood.count for flood in floods)
            session = RemoteSession.connect(
                f"good{attempt}", parse(proxy.address, 18812), RSym(), credentials=Credentials(server.token)
            )
            try:
                assert session.run("6 * 7") == 42
            finally:
                session.close()
            assert sum(flood.count for flood in floods) > start  # the flood went on all along
    finally:
        for flood in floods:
            flood.stop()
    server.wait_for_log(f"refused: 16 connections from {ATTACKER} were waiting at the gate")


def test_thousands_of_bare_connects_make_a_few_log_lines(start_rsym_server):
    server = start_rsym_server()
    attempts = 3000
    for _ in range(attempts):
        with (
            suppress(OSError),
            socket.create_connection((server.host, server.port), timeout=5, source_address=(ATTACKER, 0)),
        ):
            pass

    def tally():  # every connection accounted for: a line of its own, or in a count
        lines = [line for line in list(server.log) if ATTACKER in line or COUNT_LINE.search(line)]
        counts = [COUNT_LINE.search(line) for line in lines]
        counted = sum(int(m[1]) for m in counts if m)
        own = sum(1 for m in counts if not m)
        return (counts, counted, own) if counted + own >= attempts else None

    counts, counted, own = wait_until(tally, 60, what="every refused connection logged or counted", interval=0.1)
    assert counted + own == attempts, (counted, own)
    summaries = [m for m in counts if m]
    assert summaries and all(m[2] == "1" and not m[3] for m in summaries)
    # the budget per 10 s, at most: every interval but the last wrote a count line
    # (the last may end under its budget, with no count line, on a slow machine)
    assert own <= 20 * (len(summaries) + 1), own
    with socket.create_connection((server.host, server.port)) as sock:  # and it still lets clients in
        assert auth.authenticate(sock, server.token, 10) is True


# -- 5. the smaller ones ----------------------------------------------------------------


def test_nobody_authenticated_is_warned_about_even_over_tls(start_rsym_server, tls_files):
    server = start_rsym_server(
        "--no-auth", "--tls-cert", str(tls_files.server_cert), "--tls-key", str(tls_files.server_key)
    )
    server.wait_for_log(
        "WARNING: --no-auth and no client certificates: anyone on this machine can run code here as this user"
    )
    assert startup_warnings("--no-auth", "--tls-cert", "c", "--tls-key", "k", "--tls-client-ca", "ca") == []


def test_session_ids_are_random():
    registry = resumable.Registry()
    ids = [registry.new_id() for _ in range(3)]
    assert all(re.fullmatch(r"[0-9a-f]{12}", i) for i in ids) and len(set(ids)) == 3
    assert "1" not in ids


def test_clear_output_counts_toward_the_resume_buffer(monkeypatch):
    monkeypatch.setattr(capture, "_flusher", SimpleNamespace(wake=lambda link: None))  # we flush here
    keep = 10_000
    link = capture.Link(None, lambda chunks, seq: None, batch_bytes=4096, keep_bytes=keep)
    link.detach()
    for _ in range(200_000):  # a detached session that only clears its output
        link.buffer_item(None, "clear_output", False)
    link.flush()
    items = sum(len(batch[1]) for batch in link._batches) + len(link._chunks)
    assert items * capture.ITEM_BYTES <= keep + 4096 + capture.ITEM_BYTES, items
    link.end()
