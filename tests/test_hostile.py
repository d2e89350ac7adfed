"""Issue 12, part 4: hostile input before auth, against a running ``jupyter-rsym serve``
while a well-behaved client keeps working.  Bounds are read from outside
(``/proc/PID/status``); every wait is bounded."""

import os
import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_rsym.kernel.config import RSym
from jupyter_rsym.link.address import parse_address as parse
from jupyter_rsym.link.errors import ConnectFailed
from jupyter_rsym.link.session import RemoteSession
from jupyter_rsym.link.transport import Credentials
from jupyter_rsym.remote import auth
from tests.servers import RsymServer
from tests.waits import wait_until

AUTH_TIMEOUT = 2.0
MAX_PENDING = 64


@pytest.fixture(scope="module")
def server():
    with RsymServer(
        extra_args=[
            "--auth-timeout",
            str(AUTH_TIMEOUT),
            "--max-pending",
            str(MAX_PENDING),
            "--logged-refusals",
            "100000",
        ]
    ) as server:  # tests look for their lines
        yield server


@pytest.fixture(scope="module")
def good(server):
    """A well-behaved client, connected before the attacks and used after each."""
    session = good_session(server)
    yield session
    session.close()


def good_session(server):
    return RemoteSession.connect("good", parse(server.address, 18812), RSym(), credentials=Credentials(server.token))


def still_serves(server, good):
    assert good.run("6 * 7") == 42
    fresh = good_session(server)  # and it lets new clients in
    try:
        assert fresh.run("import os\nos.getpid()") == server.process.pid
    finally:
        fresh.close()


def status(pid):
    """Threads and resident memory (kB) of a process, as the kernel reports them."""
    fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
    return int(fields["Threads"]), int(fields["VmRSS"].split()[0])


def attacker(server, source="127.0.0.1"):
    return socket.create_connection((server.host, server.port), timeout=10, source_address=(source, 0))


def until_closed(sock, timeout):
    """Read until the server closes ``sock``; returns (seconds it took, bytes it sent)."""
    start, received = time.monotonic(), b""
    sock.settimeout(timeout)
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for {timeout} s")
    return time.monotonic() - start, received


def test_random_bytes(server, good):
    for size in (1, 5, 6, 100, 513, 5000, 70000):
        with attacker(server) as sock:
            try:
                sock.sendall(os.urandom(size))
            except (BrokenPipeError, ConnectionResetError):
                pass  # it already closed on the first bytes
            elapsed, _ = until_closed(sock, AUTH_TIMEOUT + 5)
            assert elapsed < AUTH_TIMEOUT + 3
    still_serves(server, good)


def test_truncated_handshakes_are_dropped_after_auth_timeout(server, good):
    hello = auth.ping(0, (auth.PROTOCOL, "hello", os.urandom(auth.NONCE_BYTES)))
    with attacker(server) as half_hello, attacker(server) as no_proof:
        start = time.monotonic()
        half_hello.sendall(hello[: len(hello) // 2])
        no_proof.sendall(hello)
        reader = auth.FrameReader(limit=4096)
        reader.feed(no_proof.recv(4096))
        assert reader.next()[2][1][1] == "challenge"  # then it never proves anything
        for sock in (half_hello, no_proof):
            until_closed(sock, AUTH_TIMEOUT + 5)
        assert AUTH_TIMEOUT - 0.2 < time.monotonic() - start < AUTH_TIMEOUT + 3
    server.wait_for_log(f"dropped: no complete handshake in {AUTH_TIMEOUT:g} s")
    still_serves(server, good)


def test_huge_announced_length_is_refused_at_once(server, good):
    pid = server.process.pid
    _, rss_before = status(pid)
    with attacker(server) as sock:
        sock.sendall(auth.HEADER.pack(0x7FFFFFFF, 0) + b"x" * 1000)
        elapsed, _ = until_closed(sock, 5)
        assert elapsed < 1.5
        with pytest.raises(OSError):  # the rest of the "frame" has nowhere to go
            for _ in range(100):
                sock.sendall(b"x" * 100_000)
    _, rss_after = status(pid)
    assert rss_after - rss_before < 5_000, (rss_before, rss_after)
    server.wait_for_log("refused: not a handshake message (frame of 2147483647 bytes announced)")
    still_serves(server, good)


def test_silent_client_is_dropped_after_auth_timeout(server, good):
    with attacker(server) as sock:
        elapsed, received = until_closed(sock, AUTH_TIMEOUT + 5)
    assert received == b"" and AUTH_TIMEOUT - 0.2 < elapsed < AUTH_TIMEOUT + 3
    still_serves(server, good)


def test_many_idle_connections_cost_no_threads(server, good):
    """More silent and trickling connections than may wait at once, from 8
    other addresses: threads stay as they were, memory stays bounded, a good
    client still gets in."""
    pid = server.process.pid
    threads_before, rss_before = status(pid)
    crowd = []

    def dropped_at_gate():
        return "".join(server.log).count(f"dropped: {MAX_PENDING} connections were waiting at the gate")

    dropped_before = dropped_at_gate()
    try:
        # twice the per-address cap from one address, then more than fit from 8 others
        sources = ["127.0.0.2"] * 32 + [f"127.0.0.{3 + i % 8}" for i in range(4 * MAX_PENDING)]
        for i, source in enumerate(sources):
            sock = attacker(server, source)
            if i % 2:
                sock.sendall(b"\x00\x00")  # half a frame header, then nothing
            crowd.append(sock)
        # the gate has taken more than it lets wait (it says so) when we look
        wait_until(lambda: dropped_at_gate() > dropped_before, what="the gate to drop the oldest waiting")
        threads_during, rss_during = status(pid)
        assert threads_during <= threads_before, (threads_before, threads_during)
        assert rss_during - rss_before < 10_000, (rss_before, rss_during)
        still_serves(server, good)  # while the crowd waits
        server.wait_for_log(f"dropped: {MAX_PENDING} connections were waiting at the gate")
        server.wait_for_log("refused: 16 connections from 127.0.0.2 were waiting at the gate")
        for sock in crowd:  # every one of them is dropped in time
            until_closed(sock, AUTH_TIMEOUT + 5)
    finally:
        for sock in crowd:
            sock.close()
    # the good client's threads end as its connections close
    wait_until(lambda: status(pid)[0] <= threads_before, what="the server's threads back to before")


def test_a_wrong_token_of_the_right_shape_is_refused(server, good):
    """Random bytes never forging a proof shows robustness; this shows refusal: a client
    that follows the handshake with a strong token of the right length, differing from
    the server's in one character, gets the error users see, and nothing runs."""
    token = server.token
    wrong = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert len(wrong) == len(token) and wrong != token
    refused_before = sum("refused: wrong token" in line for line in list(server.log))
    with pytest.raises(ConnectFailed) as refused:
        session = RemoteSession.connect(
            "intruder", parse(server.address, 18812), RSym(), credentials=Credentials(wrong)
        )
        session.close()  # only reached if the server let it in: the test fails above
    assert str(refused.value) == f"wrong token for {server.address}: the server holds another one"
    wait_until(
        lambda: sum("refused: wrong token" in line for line in list(server.log)) > refused_before,
        what="the server to log this refusal",
    )
    still_serves(server, good)  # the right token still gets in, old and new connections


# -- fuzzing the handshake --------------------------------------------------------


def handshake_like():
    """Bytes that look more or less like our handshake: raw bytes, frames of random
    rpyc messages, and our own messages with random fields."""
    fields = st.one_of(st.binary(max_size=40), st.text(max_size=20), st.integers(), st.none())
    data = st.recursive(fields, lambda inner: st.tuples(inner, inner) | st.tuples(inner), max_leaves=8)
    ours = st.builds(
        lambda kind, rest: (auth.PROTOCOL, kind, *rest),
        st.sampled_from(["hello", "proof", "challenge", "welcome", "mismatch"]),
        st.lists(fields, max_size=3),
    )
    frames = st.one_of(
        st.builds(auth.ping, st.integers(0, 3), st.one_of(data, ours)),
        st.builds(auth.frame, st.integers(0, 255), st.integers(-2, 2**40), data),
        st.builds(
            lambda length, flag, body: auth.HEADER.pack(length, flag) + body,
            st.integers(0, 2**32 - 1),
            st.integers(0, 255),
            st.binary(max_size=60),
        ),
    )
    return st.lists(st.one_of(frames, st.binary(max_size=300)), min_size=1, max_size=4).map(b"".join)


@settings(max_examples=500, deadline=None)
@given(st.lists(handshake_like(), min_size=1, max_size=3))
def test_fuzz_server_handshake_never_admits_without_the_token(chunks):
    handshake = auth.ServerHandshake("the-token")
    out = b""
    for chunk in chunks:
        out += handshake.receive(chunk)
        if handshake.closed:
            break
    assert not handshake.admitted
    assert len(out) < 1024


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=handshake_like())
def test_fuzz_the_running_server(server, good, payload):
    with attacker(server) as sock:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)  # no more is coming: the server need not wait
        except (BrokenPipeError, ConnectionResetError):
            pass
        _, received = until_closed(sock, AUTH_TIMEOUT + 5)
    reader = auth.FrameReader(limit=4096)
    reader.feed(received)
    answers = []
    while (message := reader.next()) is not None:
        answers.append(message)
    assert not reader.buffer  # whole rpyc frames only
    for _msg, _, args in answers:  # a challenge or a refusal; never a welcome
        assert "welcome" not in repr(args)
    assert good.run("6 * 7") == 42
