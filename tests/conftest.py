"""Fixtures: real rpyc servers on loopback and real Jupyter kernels."""

import contextlib

import pytest

from tests.servers import ClassicServer, RsymServer

from .certs import tls_files  # noqa: F401  (a fixture)
from .harness import KernelHarness
from .netproxy import DelayProxy
from .sshd import sshd  # noqa: F401  (a fixture)


@pytest.fixture
def start_server():
    """Start stock ``rpyc_classic`` servers on free loopback ports; all stopped at the end."""
    servers = []

    def start(**kwargs):
        server = ClassicServer(**kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def classic_server():
    """One stock ``rpyc_classic`` server shared by a test module."""
    with ClassicServer() as server:
        yield server


@pytest.fixture(scope="module")
def kernel():
    """A real kernel shared by a test module (tests use their own names)."""
    harness = KernelHarness()
    yield harness
    harness.shutdown()


@pytest.fixture(scope="module")
def connected(kernel, classic_server):
    """The module's kernel with the extension loaded and ``r`` connected."""
    kernel.ok("%load_ext jupyter_rsym")
    kernel.ok(f"%rconnect {classic_server.address}")
    return kernel


# --- network test infrastructure: delay proxy (TLS files, sshd: imported above) --


@pytest.fixture
def start_proxy():
    """Start DelayProxy(target, delay) instances on free loopback ports; all closed at the end."""
    proxies = []

    def start(target, delay=0.0):
        proxy = DelayProxy(target, delay=delay)
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.close()


# --- jupyter-rsym serve ------------------------------------------------------


@pytest.fixture
def start_rsym_server():
    """Start ``jupyter-rsym serve`` child processes on free loopback ports
    (``start_rsym_server("--no-auth", ...)`` passes arguments); all stopped at the end."""
    with contextlib.ExitStack() as servers:
        yield lambda *args, env=None: servers.enter_context(RsymServer(extra_args=args, env=env))


@pytest.fixture(scope="module")
def rsym_server():
    """One ``jupyter-rsym serve`` with a random token, shared by a test module."""
    with RsymServer() as server:
        yield server


@pytest.fixture(scope="module")
def tls_rsym_server(tls_files):
    """One ``jupyter-rsym serve`` with a random token over TLS (``tls_files``), shared by a module."""
    with RsymServer(
        extra_args=["--tls-cert", str(tls_files.server_cert), "--tls-key", str(tls_files.server_key)]
    ) as server:
        yield server
