"""The notebook end of a classic rpyc connection."""

from rpyc.core.service import ClassicClient, ModuleNamespace

from .routing import RoutedConnection, WaiterCount


class RemoteModules(ModuleNamespace):
    """Remote modules by name: ``r.modules.os``, ``r.modules["os.path"]``.

    ``__builtin__`` (Python 2's name, used by the rpyc tutorial) means
    ``builtins``.
    """

    __slots__ = ()
    ALIASES = {"__builtin__": "builtins"}

    def __getitem__(self, name):
        return super().__getitem__(self.ALIASES.get(name, name))


class ClientService(ClassicClient):
    """Exposes nothing by name to the remote (``ClassicClient``): the remote
    can only call back into objects the notebook handed over."""

    _protocol = RoutedConnection

    def __init__(self, router):
        super().__init__()
        self.router = router
        self.waiters = WaiterCount()

    @staticmethod
    def _install(conn, slave):
        conn.modules = RemoteModules(slave.getmodule)
        conn.builtins = conn.modules.builtins
        conn.eval = slave.eval
        conn.execute = slave.execute
        conn.namespace = slave.namespace
