"""Proxies that cost no round trip of their own: the classic root, and modules.

rpyc asks the remote for the methods of every class it has not proxied yet
(an INSPECT round trip); ``QuickRoot`` knows them for the two kinds of
proxy a session holds from the start, and ``RemoteModules`` fetches each
module once.
"""

import types

from rpyc.core import netref
from rpyc.lib import get_methods

CLASSIC_ROOT = "rpyc.core.service.SlaveService"
MODULE_METHODS = tuple(get_methods(netref.LOCAL_ATTRS, types.ModuleType("module")))


class QuickRoot:
    """A Connection whose proxies of the classic server's root object and of
    modules cost no INSPECT round trip (rpyc asks the remote for the methods
    of every class it has not proxied yet, and a module's name counts as its
    class).  The notebook only calls into the root by name
    (``HANDLE_CALLATTR``), which needs no methods; a module's methods are
    those of the module type, once ``module_type`` (the id of the remote's
    ``types.ModuleType``) is known."""

    module_type = None

    def _netref_factory(self, id_pack):
        if id_pack[0] == CLASSIC_ROOT:
            return netref.class_factory(id_pack, ())(self, id_pack)
        if id_pack[2] and id_pack[1] == self.module_type:
            cls = self._netref_classes_cache.get(("module", id_pack[0]))
            if cls is None:
                cls = self._netref_classes_cache[("module", id_pack[0])] = netref.class_factory(id_pack, MODULE_METHODS)
            return cls(self, id_pack)
        return super()._netref_factory(id_pack)


class RemoteModules:
    """Remote modules by name: ``r.modules.os``, ``r.modules["os.path"]``.

    Each module is fetched once (one round trip) and then kept.
    ``__builtin__`` (Python 2's name, used by the rpyc tutorial) means
    ``builtins``; ``"name" in r.modules`` says whether the remote can import it.
    """

    __slots__ = ("_getmodule", "_cache", "__weakref__")
    ALIASES = {"__builtin__": "builtins"}

    def __init__(self, getmodule, known=()):
        self._getmodule = getmodule
        self._cache = dict(known)  # modules the session already holds

    def __contains__(self, name):
        return self["importlib.util"]._find_spec_from_path(name) is not None

    def __getitem__(self, name):
        if type(name) is tuple:
            name = ".".join(name)
        name = self.ALIASES.get(name, name)
        if name not in self._cache:
            self._cache[name] = self._getmodule(name)
        return self._cache[name]

    def __getattr__(self, name):
        if name.startswith("__") and name not in self.ALIASES:  # probes such as __wrapped__
            raise AttributeError(name)
        try:
            return self[name]
        except ImportError:
            raise AttributeError(name) from None
