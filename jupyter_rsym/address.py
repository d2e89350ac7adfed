"""Parse the ADDRESS argument of ``%rconnect``."""

from dataclasses import dataclass

BAD_ADDRESS = "cannot parse address {!r}: expected HOST or HOST:PORT (IPv6 as [::1]:PORT)"
UNSUPPORTED_SCHEME = "address {!r}: {} connections are not supported yet; use HOST:PORT"


class AddressError(ValueError):
    """An address that does not parse."""


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_address(text, default_port):
    """Parse ``host``, ``host:port`` or ``[v6]:port`` into an Address."""
    text = text.strip()
    if "://" in text:
        scheme = text.split("://", 1)[0]
        if scheme in ("tcp", "rpyc"):
            text = text.split("://", 1)[1]
        else:
            raise AddressError(UNSUPPORTED_SCHEME.format(text, scheme))
    host, port = text, None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise AddressError(BAD_ADDRESS.format(text))
        port = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host or any(c.isspace() or c in "/@[]" for c in host):
        raise AddressError(BAD_ADDRESS.format(text))
    if port is None:
        return Address(host, default_port)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise AddressError(BAD_ADDRESS.format(text))
    return Address(host, int(port))
