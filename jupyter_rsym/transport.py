"""How a session reaches its server: an address becomes a connected rpyc connection.

A ``Transport`` is made once per session from its address and opens streams
to the server as often as the session asks (the main connection, the side
connection, later a re-connection).  It also runs rpyc's handshake over a
stream, so every way of reaching a server fails the same way: one clear line
(``ConnectFailed``).  One class per scheme; ``transport_for`` picks it.
"""

import socket
from contextlib import contextmanager

import rpyc
from rpyc.core.stream import SocketStream
from rpyc.lib.compat import TimeoutError as ReplyTimeout
from rpyc.utils.factory import connect_channel

from .address import AddressError, parse_address, split_scheme
from .errors import ConnectFailed
from .interrupts import GuardedChannel

RPYC_MAJOR = rpyc.__version__.split(".")[0]  # other majors speak another protocol
NOT_YET = "address {!r}: {} connections are not supported yet; use HOST:PORT"


class Transport:
    """Opens connections to the server at ``address`` (see the module docstring)."""

    def __init__(self, address, settings):
        self.address = address
        self.timeout = settings.connect_timeout
        self.keepalive = settings.keepalive

    def open_stream(self):
        """A new rpyc stream to the server; ``ConnectFailed`` if it cannot be reached."""
        raise NotImplementedError

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

    @contextmanager
    def _handshake(self):
        """A channel to the server; turns handshake failures into one clear error."""
        stream = self.open_stream()
        try:
            yield GuardedChannel(stream)
        except ReplyTimeout:
            stream.close()
            raise ConnectFailed(
                f"{self.address} accepted the connection but did not answer in "
                f"{self.timeout:g} s; is it an rpyc classic server?"
            ) from None
        except Exception as exc:  # garbage, a non-classic service, a dropped link
            stream.close()
            reason = str(exc).split("\n", 1)[0]  # not the remote traceback rpyc appends
            raise ConnectFailed(
                f"{self.address} is not an rpyc classic server ({type(exc).__name__}: {reason}); "
                f"it must run rpyc {RPYC_MAJOR}.x, like this notebook"
            ) from None
        except BaseException:
            stream.close()
            raise


class TcpTransport(Transport):
    """A plain TCP connection to HOST:PORT."""

    def open_stream(self):
        return tcp_stream(self.address, self.address.host, self.address.port,
                          self.timeout, self.keepalive)


def tcp_stream(address, host, port, timeout, keepalive):
    """An rpyc ``SocketStream`` to host:port; failures name ``address``."""
    try:
        stream = SocketStream.connect(
            # no TCP_NODELAY: measured slower for rpyc's request/reply pattern
            host, port, timeout=timeout, keepalive=keepalive or False, attempts=1
        )
    except socket.timeout:
        raise ConnectFailed(f"no answer from {address} in {timeout:g} s") from None
    except OSError as exc:
        raise ConnectFailed(f"cannot connect to {address}: {exc.strerror or exc}") from None
    stream.sock.settimeout(None)
    return stream


TRANSPORTS = {"tcp": TcpTransport}


def parse(text, default_port):
    """The Address for ``text``; ``AddressError`` if it does not parse or names
    a scheme no transport serves yet."""
    scheme, _ = split_scheme(text)
    if scheme not in TRANSPORTS:
        raise AddressError(NOT_YET.format(text.strip(), scheme))
    return parse_address(text, default_port)


def transport_for(address, settings):
    """A new transport to ``address`` (parsed by ``parse``)."""
    return TRANSPORTS[address.scheme](address, settings)
