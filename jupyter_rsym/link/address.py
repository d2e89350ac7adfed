"""Parse the ADDRESS argument of ``%rconnect``.

``HOST[:PORT]`` (or ``tcp://HOST[:PORT]``) is a plain TCP server;
``tls://HOST[:PORT]`` the same over TLS; ``ssh://[USER@]HOST[:SSHPORT][/PORT]``
a server on PORT of the SSH host's loopback, reached through a tunnel.
Each scheme has a transport (``schemes.TRANSPORTS``); this module only
parses.
"""

from dataclasses import dataclass

BAD_ADDRESS = "cannot parse address {!r}: expected HOST or HOST:PORT (IPv6 as [::1]:PORT)"
BAD_SSH = "cannot parse address {!r}: expected ssh://[USER@]HOST[:SSHPORT][/PORT]"
UNKNOWN_SCHEME = "address {!r}: unknown scheme {!r}; use HOST:PORT, tls://HOST:PORT or ssh://HOST"
SCHEMES = ("tcp", "tls", "ssh")


class AddressError(ValueError):
    """An address that does not parse."""


@dataclass(frozen=True)
class Address:
    """Where a server is: ``host``/``port`` of the server itself, and for ssh
    the login ``user`` and ``ssh_port`` (then the server is on the SSH host's
    loopback at ``port``)."""

    host: str
    port: int
    scheme: str = "tcp"
    user: str | None = None
    ssh_port: int | None = None

    def __str__(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.scheme == "ssh":
            user = f"{self.user}@" if self.user else ""
            ssh_port = f":{self.ssh_port}" if self.ssh_port else ""
            return f"ssh://{user}{host}{ssh_port}/{self.port}"
        prefix = "" if self.scheme == "tcp" else f"{self.scheme}://"
        return f"{prefix}{host}:{self.port}"


def split_scheme(text):
    """``(scheme, rest)``: "tcp" when the address names none."""
    text = text.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        return "tcp", text
    if scheme == "rpyc":
        return "tcp", rest
    if scheme not in SCHEMES:
        raise AddressError(UNKNOWN_SCHEME.format(text, scheme))
    return scheme, rest


def parse_address(text, default_port):
    """Parse an address (see the module docstring) into an Address."""
    text = text.strip()
    scheme, rest = split_scheme(text)
    if scheme == "ssh":
        return _parse_ssh(text, rest, default_port)
    host, port = _host_port(rest, text, BAD_ADDRESS)
    return Address(host, default_port if port is None else port, scheme)


def _parse_ssh(text, rest, default_port):
    login, slash, remote_port = rest.partition("/")
    user, at, hostport = login.rpartition("@")
    if (at and not user) or (slash and not remote_port):
        raise AddressError(BAD_SSH.format(text))
    host, ssh_port = _host_port(hostport, text, BAD_SSH)
    port = _port(remote_port, text, BAD_SSH) if slash else default_port
    return Address(host, port, "ssh", user or None, ssh_port)


def _host_port(text, whole, message):
    host, port = text, None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise AddressError(message.format(whole))
        port = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host or any(c.isspace() or c in "/@[]" for c in host):
        raise AddressError(message.format(whole))
    return host, None if port is None else _port(port, whole, message)


def _port(text, whole, message):
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise AddressError(message.format(whole))
    return int(text)
