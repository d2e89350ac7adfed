"""The test infrastructure itself: delay proxy, TLS files, sshd. No kernel needed; fast."""

import os
import queue
import socket
import ssl
import stat
import subprocess
import threading
import time

import pytest

from .netproxy import DelayProxy
from .waits import wait_until

TIMEOUT = 5.0


class EchoServer:
    """Threaded TCP echo server on a free loopback port; reports how each connection ended."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.address = self.listener.getsockname()
        self.port = self.address[1]
        self.endings = queue.Queue()  # "eof" or the exception name, one per connection
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn):
        conn.settimeout(30)
        with conn:
            try:
                while data := conn.recv(1 << 16):
                    conn.sendall(data)
                self.endings.put("eof")
            except OSError as error:
                self.endings.put(type(error).__name__)

    def close(self):
        self._stop.set()
        self._thread.join(TIMEOUT)
        self.listener.close()


@pytest.fixture
def echo_server():
    server = EchoServer()
    yield server
    server.close()


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock, n):
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        assert chunk, "connection closed early"
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def round_trip(sock, message=b"ping"):
    start = time.monotonic()
    sock.sendall(message)
    assert recv_exactly(sock, len(message)) == message
    return time.monotonic() - start


DROPPED = ("eof", "ConnectionResetError", "BrokenPipeError")


def ending(sock):
    """How the peer ended the connection: "eof" or the exception name (fails on timeout)."""
    try:
        while sock.recv(1 << 16):
            pass
        return "eof"
    except (ConnectionResetError, BrokenPipeError) as error:
        return type(error).__name__


# --- DelayProxy -------------------------------------------------------------------


def test_proxy_forwards_megabytes_both_ways_intact(echo_server):
    payload = os.urandom(4 << 20)
    with DelayProxy(echo_server.address) as proxy, connect(proxy.port) as sock:
        assert proxy.address == f"127.0.0.1:{proxy.port}"
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        echoed = recv_exactly(sock, len(payload))
        sender.join(TIMEOUT)
        assert echoed == payload
        assert proxy.connections == 1
        assert (proxy.bytes_to_target, proxy.bytes_from_target) == (len(payload), len(payload))
        sock.shutdown(socket.SHUT_WR)  # a half-close is passed on, and the answer comes back
        assert ending(sock) == "eof"
        assert echo_server.endings.get(timeout=TIMEOUT) == "eof"
        assert proxy.wait_connections(0)


def test_proxy_delay_is_one_way_and_adjustable(echo_server):
    """A delay too long to be noise: the lower bounds are the claim; the upper
    ones are generous bounds that only a delay left in place breaks."""
    with DelayProxy(echo_server.address, delay=0.5) as proxy, connect(proxy.port) as sock:
        round_trip(sock)  # connection set up
        rtt = round_trip(sock)
        assert 1.0 <= rtt < 3.0  # each way delayed once, not twice
        proxy.delay = 0.0
        round_trip(sock)  # the chunk in flight may still carry the old delay
        assert round_trip(sock) < 0.5  # the 1 s round trip is gone


def test_proxy_delay_does_not_serialise_chunks(echo_server):
    """Chunks in flight overlap: 10 pings 10 ms apart with RTT 1 s take ~1.1 s; one
    after another they would take ~5.5 s (the upper bound is that, generously)."""
    with DelayProxy(echo_server.address, delay=0.5) as proxy, connect(proxy.port) as sock:
        round_trip(sock)
        start = time.monotonic()
        for _ in range(10):
            sock.sendall(b"ping")
            time.sleep(0.01)  # pacing, not waiting: separate chunks
        recv_exactly(sock, 40)
        assert 1.0 <= time.monotonic() - start < 4.0


def test_proxy_cut_drops_both_sides_and_keeps_listening(echo_server):
    with DelayProxy(echo_server.address) as proxy:
        with connect(proxy.port) as sock:
            round_trip(sock)
            assert proxy.connections == 1
            assert proxy.cut() == 1
            assert proxy.connections == 0
            assert ending(sock) in DROPPED
            assert echo_server.endings.get(timeout=TIMEOUT) in DROPPED
        with connect(proxy.port) as sock:
            round_trip(sock)
            assert proxy.connections == 1


def test_proxy_stop_listening_refuses_then_listen_again_on_same_port(echo_server):
    with DelayProxy(echo_server.address) as proxy, connect(proxy.port) as kept:
        round_trip(kept)
        port = proxy.port
        proxy.stop_listening()
        with pytest.raises(ConnectionRefusedError):
            connect(port)
        round_trip(kept)  # open links survive
        proxy.listen_again()
        assert proxy.port == port
        with connect(port) as sock:
            round_trip(sock)
        assert proxy.wait_connections(1)


def test_proxy_to_a_dead_target_drops_the_client():
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        dead = placeholder.getsockname()  # bound, not listening: connecting is refused
        with DelayProxy(dead) as proxy:
            try:
                with connect(proxy.port) as sock:
                    outcome = ending(sock)
            except (ConnectionResetError, BrokenPipeError) as error:  # the reset can beat connect()
                outcome = type(error).__name__
            assert outcome in DROPPED
            assert proxy.connections == 0


# --- TLS files --------------------------------------------------------------------


def tls_handshake(server_context, client_context, server_hostname="127.0.0.1"):
    """TLS over a socket pair, one byte each way; returns None if it worked, else what went wrong."""
    server_sock, client_sock = socket.socketpair()
    server_errors = []

    def serve():
        try:
            with server_context.wrap_socket(server_sock, server_side=True) as tls:
                tls.sendall(tls.recv(1))
        except (ssl.SSLError, OSError) as error:
            server_errors.append(error)

    for sock in (server_sock, client_sock):
        sock.settimeout(TIMEOUT)
    server = threading.Thread(target=serve)
    server.start()
    try:
        with client_context.wrap_socket(client_sock, server_hostname=server_hostname) as tls:
            tls.sendall(b"x")
            if tls.recv(1) != b"x":
                return "server closed without answering"
        return None
    except OSError as error:  # ssl.SSLError included
        return error
    finally:
        client_sock.close()
        server.join(TIMEOUT)
        server_sock.close()


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_tls_server_cert_verifies_against_ca(tls_files, name):
    assert tls_handshake(tls_files.server_context(), tls_files.client_context(), name) is None


def test_tls_client_trusting_another_ca_rejects_the_server(tls_files):
    error = tls_handshake(tls_files.server_context(), tls_files.client_context(trust=tls_files.other_ca))
    assert isinstance(error, ssl.SSLCertVerificationError)


def test_tls_client_cert_is_accepted_by_a_server_demanding_one(tls_files):
    server = tls_files.server_context(require_client_cert=True)
    assert tls_handshake(server, tls_files.client_context(with_client_cert=True)) is None
    assert tls_handshake(server, tls_files.client_context()) is not None


def test_tls_keys_are_private(tls_files):
    for key in (tls_files.server_key, tls_files.client_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


# --- sshd -------------------------------------------------------------------------


def test_ssh_runs_a_command(sshd):
    result = subprocess.run(
        ["ssh", "-F", str(sshd.config_file), "rsym-test", "echo", "hi"],
        capture_output=True,
        text=True,
        timeout=10,
        stdin=subprocess.DEVNULL,
    )
    assert (result.returncode, result.stdout) == (0, "hi\n"), result.stderr + sshd.log()[-2000:]


def test_ssh_refuses_a_changed_host_key(sshd):
    result = sshd.ssh("true", options=["-F", str(sshd.config_with_wrong_host_key())])
    assert result.returncode == 255
    assert "Host key verification failed" in result.stderr


def test_plumbum_ssh_machine_tunnels_to_the_remote_loopback(sshd, echo_server):
    from plumbum import SshMachine

    options = ["-F", str(sshd.config_file)]
    with SshMachine("rsym-test", ssh_opts=options, scp_opts=options) as machine:
        assert machine["echo"]("hi") == "hi\n"
        with machine.tunnel(0, echo_server.port, lhost="127.0.0.1", dhost="127.0.0.1") as tunnel:
            with connect(tunnel.lport) as sock:
                round_trip(sock, b"through the tunnel")


def test_sshd_kill_sessions_ends_open_connections(sshd):
    with subprocess.Popen(
        ["ssh", *sshd.ssh_options, sshd.host_alias, "sleep", "30"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as client:
        try:
            # the session may not exist yet at the first try
            wait_until(
                lambda: sshd.kill_sessions() >= 0 and client.poll() is not None,
                TIMEOUT,
                "the ssh session to end by kill_sessions()",
                interval=0.1,
            )
            assert client.returncode != 0
        finally:
            client.kill()
