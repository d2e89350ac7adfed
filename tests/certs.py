"""Throwaway CA and certificates for TLS tests, written as PEM files.

Servers and clients under test take file paths (as a user would pass them),
so the fixture hands out paths, not in-memory objects. ``other_ca`` signed
nothing we use: trusting it instead of ``ca`` must make verification fail.
"""

import dataclasses
import os
import ssl
from pathlib import Path

import pytest
import trustme

SERVER_NAMES = ("127.0.0.1", "localhost")
CLIENT_NAME = "rsym-test-client"


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    """Paths of PEM files: one CA, a server and a client certificate it signed, and a stranger CA."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path

    def server_context(self, require_client_cert=False):
        """An ``ssl`` server context using ``server_cert``; optionally demanding a client cert from ``ca``."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.server_cert, self.server_key)
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.ca)
        return context

    def client_context(self, trust=None, with_client_cert=False):
        """An ``ssl`` client context trusting ``trust`` (default ``ca``); optionally presenting the client cert."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(trust or self.ca))
        if with_client_cert:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context


def _write(path, data, mode):
    """Create ``path`` with ``mode`` from the start, so a key is never readable by others."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return Path(path)


def make_tls_files(directory):
    """Write a fresh CA, server and client certificates and a stranger CA into ``directory``."""
    directory = Path(directory)
    ca = trustme.CA(organization_name="jupyter_rsym test CA")
    other_ca = trustme.CA(organization_name="jupyter_rsym stranger CA")
    server = ca.issue_cert(*SERVER_NAMES)
    client = ca.issue_cert(CLIENT_NAME)

    def chain(leaf):
        return b"".join(blob.bytes() for blob in leaf.cert_chain_pems)

    return TlsFiles(
        ca=_write(directory / "ca.pem", ca.cert_pem.bytes(), 0o644),
        server_cert=_write(directory / "server.pem", chain(server), 0o644),
        server_key=_write(directory / "server.key", server.private_key_pem.bytes(), 0o600),
        client_cert=_write(directory / "client.pem", chain(client), 0o644),
        client_key=_write(directory / "client.key", client.private_key_pem.bytes(), 0o600),
        other_ca=_write(directory / "other-ca.pem", other_ca.cert_pem.bytes(), 0o644),
    )


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    """PEM files of a throwaway CA, server/client certificates it signed, and a stranger CA."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))
