"""Imports: run a callback right after a module is imported in the remote process.

The agent adapts a few libraries (IPython's display functions, pyplot) for
threads working for a notebook, but must not import them itself: a server
that never uses them should not pay for them, and one that lacks them must
keep working.  ``when_imported`` patches a module now if it is loaded, or
as soon as anything imports it, before the importer sees it (so
``from IPython.display import display`` already gets the patched function).
"""

import sys
import threading

_waiting = {}  # module name -> [callback, ...]
_lock = threading.Lock()


def when_imported(name, callback):
    """Call ``callback(module)`` once ``name`` is imported (now, if it already is)."""
    with _lock:
        module = sys.modules.get(name)
        if module is None:
            _waiting.setdefault(name, []).append(callback)
            if not any(isinstance(f, _Finder) for f in sys.meta_path):
                sys.meta_path.insert(0, _Finder())
            return
    callback(module)


def _run_callbacks(name, module):
    with _lock:
        callbacks = _waiting.pop(name, ())
    for callback in callbacks:
        try:
            callback(module)
        except Exception:  # a failed adaptation must not break the user's import
            pass


class _Finder:
    """A meta path finder that only wraps the loaders of awaited modules."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _waiting:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader)
        return spec


class _Loader:
    """The module's own loader, followed by the callbacks waiting for it."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        # the module keeps its real loader (inspect, importlib.resources use it)
        module.__loader__ = self._loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        _run_callbacks(module.__name__, module)

    def __getattr__(self, name):
        return getattr(self._loader, name)
