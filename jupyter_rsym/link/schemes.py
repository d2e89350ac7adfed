"""Which transport serves each address scheme (``address.SCHEMES``).

Apart from ``transport.py`` so that ``ssh.py`` builds on ``transport.py``
without either importing the other's user; ``ssh.py`` is imported on first
use only, so kernels that never use ``ssh://`` do not load plumbum.
"""

from .transport import TcpTransport, TlsTransport


def ssh_transport(address, settings, credentials=None, **options):
    """An ``ssh.SshTransport`` (imported on first use: it needs plumbum)."""
    from .ssh import SshTransport

    return SshTransport(address, settings, credentials, **options)


TRANSPORTS = {"tcp": TcpTransport, "tls": TlsTransport, "ssh": ssh_transport}


def transport_for(address, settings, credentials=None, **options):
    """A new transport to ``address`` (``address.parse_address``) proving ``credentials``;
    ``options`` are the scheme's own (``deploy=PYTHON`` for ssh)."""
    return TRANSPORTS[address.scheme](address, settings, credentials, **options)
