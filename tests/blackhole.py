"""A server behind a link that can go silent: packets vanish, nothing answers,
nothing is refused, as when a host loses power or a NAT forgets the flow.

A loopback proxy cannot do that (the kernel acknowledges its sockets), so the
server runs in a network namespace of its own joined to ours by a veth pair;
``silence()`` takes the far end down and every packet sent there is dropped.
Needs root (CI and the developers' machines run as root).
"""

import os
import subprocess

from .servers import ClassicServer


def _ip(*args, check=True):
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()} (network namespaces need root)")
    return done


class SilentLink:
    """A namespace with a veth pair: we are ``near``, the namespace ``far``."""

    def __init__(self):
        tag = os.getpid() % 16000  # one per test process: xdist workers run side by side
        self.namespace = f"rsym-far-{tag}"
        self.veth = f"rsymv{tag}"
        prefix = f"10.213.{tag // 64}"
        self.near, self.far = f"{prefix}.{tag % 64 * 4 + 1}", f"{prefix}.{tag % 64 * 4 + 2}"

    def __enter__(self):
        _ip("netns", "del", self.namespace, check=False)  # left over by a killed run
        _ip("link", "del", self.veth, check=False)
        _ip("netns", "add", self.namespace)
        try:
            _ip("link", "add", self.veth, "type", "veth", "peer", "name", self.veth + "f")
            _ip("link", "set", self.veth + "f", "netns", self.namespace)
            _ip("addr", "add", f"{self.near}/30", "dev", self.veth)
            _ip("link", "set", self.veth, "up")
            self.inside("ip", "addr", "add", f"{self.far}/30", "dev", self.veth + "f")
            self.inside("ip", "link", "set", self.veth + "f", "up")
            self.inside("ip", "link", "set", "lo", "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def inside(self, *command):
        return _ip("netns", "exec", self.namespace, *command)

    def server(self):
        """A stock ``rpyc_classic`` listening on the far side (not started)."""
        server = ClassicServer(host=self.far)
        server._args[0:0] = ["ip", "netns", "exec", self.namespace]
        return server

    def silence(self):
        """From now on every packet to the far side vanishes; nothing is refused."""
        self.inside("ip", "link", "set", self.veth + "f", "down")

    def __exit__(self, *exc):
        _ip("link", "del", self.veth, check=False)
        _ip("netns", "del", self.namespace, check=False)
