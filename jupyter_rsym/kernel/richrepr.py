"""Rich display of remote objects, and clean remote tracebacks.

IPython's formatters probe an object attribute by attribute (a dozen
``_repr_*_`` lookups) and pick a printer by ``obj.__class__``; on an rpyc
proxy every probe is a round trip, ``__class__`` is the remote class, and
the pretty printer walks remote containers item by item.  So for proxies of
our sessions we ask the remote for the whole mime bundle in one request
(``agent.mimebundle``).  A notebook container (list, tuple, dict, set) that
holds proxies is shown with their reprs fetched in one request per session
(``agent.reprs``), laid out by IPython's own pretty printer.  Everything
else goes to IPython unchanged.
"""

import base64
import json
import sys

from rpyc.core.netref import BaseNetref

from ..link.errors import RemoteError, from_rpyc_exception

_BINARY_PREFIXES = ("image/png", "image/jpeg", "application/pdf")


class RemoteDisplay:
    """Wraps ``shell.display_formatter.format`` while the extension is loaded."""

    def __init__(self, shell):
        self._formatter = shell.display_formatter
        self._original = None

    def install(self):
        if self._original is None:
            self._original = self._formatter.format
            self._formatter.format = self.format

    def uninstall(self):
        if self._original is not None:
            del self._formatter.format  # back to the class's method
            self._original = None

    def format(self, obj, include=None, exclude=None):
        session = _session_of(obj)
        if session is None:
            return self._original(_with_remote_reprs(obj), include=include, exclude=exclude)
        try:
            bundle = session.mimebundle(obj)
        except Exception as exc:
            bundle = {"text/plain": f"<remote object; display failed: {type(exc).__name__}: {exc}>"}
        data = {
            mime: jsonable(mime, value)
            for mime, value in bundle.items()
            if (include is None or mime in include) and (exclude is None or mime not in exclude)
        }
        return data, {}


def _session_of(obj):
    if not isinstance(obj, BaseNetref):
        return None
    return getattr(object.__getattribute__(obj, "____conn__"), "session", None)


_CONTAINERS = (list, tuple, dict, set, frozenset)
MAX_ITEMS = 2000  # a container bigger than this is left to IPython (it shows 1,000 items)


class _Shown:
    """Stands in for a remote object in a container: shows its remote repr."""

    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text

    def _repr_pretty_(self, printer, cycle):
        printer.text(self.text)


def _with_remote_reprs(obj):
    """``obj``, or for a container holding proxies a copy of it in which each
    proxy is replaced by its remote repr (one request per session)."""
    if type(obj) not in _CONTAINERS:
        return obj
    proxies = []
    try:
        if not _collect(obj, proxies, [0]) or not proxies:
            return obj
        texts = {}
        for session in {id(s): s for s in map(_session_of, proxies)}.values():
            mine = [p for p in proxies if _session_of(p) is session]
            texts.update(zip(map(id, mine), session.call("reprs", tuple(mine))))
        return _mirror(obj, texts)
    except Exception:
        return obj


def _collect(obj, proxies, count):
    """Gather the proxies inside ``obj``; False if it is too big to mirror."""
    count[0] += 1
    if count[0] > MAX_ITEMS:
        return False
    if _session_of(obj) is not None:
        proxies.append(obj)
        return True
    if type(obj) not in _CONTAINERS:
        return True
    items = obj.values() if type(obj) is dict else obj
    return all(_collect(item, proxies, count) for item in items)


def _mirror(obj, texts):
    if _session_of(obj) is not None:
        return _Shown(texts[id(obj)])
    kind = type(obj)
    if kind is dict:
        return {key: _mirror(value, texts) for key, value in obj.items()}
    if kind in _CONTAINERS:
        return kind(_mirror(item, texts) for item in obj)
    return obj


def jsonable(mime, value):
    """One representation from the agent as Jupyter's message format wants it:
    binary images base64, JSON data parsed (the agent sends its text)."""
    if isinstance(value, str) and (mime == "application/json" or mime.endswith("+json")):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, bytes):
        if mime.startswith(_BINARY_PREFIXES):
            return base64.b64encode(value).decode("ascii")
        return value.decode("utf-8", "replace")
    return value


class RemoteTracebacks:
    """Shows exceptions that rpyc re-raised from the remote side as clean remote
    tracebacks (``errors.from_rpyc_exception``), through IPython's custom
    exception hook.  Leaves the hook alone if something else already uses it."""

    def __init__(self, shell):
        self._shell = shell
        self._installed = False

    def install(self):
        if self._shell.custom_exceptions:
            return
        self._shell.set_custom_exc((Exception,), self._show)
        self._installed = True

    def uninstall(self):
        if self._installed:
            self._shell.set_custom_exc((), None)
            self._installed = False

    @staticmethod
    def _show(shell, etype, value, tb, tb_offset=None):
        if not isinstance(value, RemoteError) and getattr(value, "_remote_tb", None) is not None:
            value = from_rpyc_exception(value)
        if not isinstance(value, RemoteError):
            return shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        # directly, as IPython's set_custom_exc example does: showtraceback
        # would treat a remote SyntaxError as a local one
        try:
            lines = value._render_traceback_()
        except Exception:  # IPython would unregister a failing handler for good
            lines = [f"{type(value).__name__}: {value.message}"]
        shell._showtraceback(type(value), value, lines)
        # the last error, as showtraceback records it: %debug and %pdb find it
        sys.last_type, sys.last_value, sys.last_traceback = type(value), value, tb
        sys.last_exc = value
        if shell.call_pdb:
            shell.debugger()
        return lines
