"""Several servers and a kernel connected to each of them by name (issue 18 tests)."""

from contextlib import contextmanager

from tests.servers import ClassicServer


@contextmanager
def servers(count):
    """``count`` stock rpyc_classic servers, stopped at the end."""
    started = []
    try:
        for _ in range(count):
            started.append(ClassicServer().start())
        yield started
    finally:
        for server in started:
            server.stop()


def connect_fresh(kernel, addresses):
    """Reload the extension in ``kernel`` and connect ``{name: address}``."""
    kernel.ok("%reload_ext jupyter_rsym\n%rdisconnect --all")
    kernel.ok("\n".join(f"%rconnect {address} --as {name}" for name, address in addresses.items()))
    return kernel
