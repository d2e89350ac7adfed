"""Rich display of remote objects, and clean remote tracebacks.

IPython's formatters probe an object attribute by attribute (a dozen
``_repr_*_`` lookups) and pick a printer by ``obj.__class__``; on an rpyc
proxy every probe is a round trip, ``__class__`` is the remote class, and
the pretty printer walks remote containers item by item.  So for proxies of
our sessions we ask the remote for the whole mime bundle in one request
(``agent.mimebundle``) and hand everything else to IPython unchanged.
"""

import base64
import json

from rpyc.core.netref import BaseNetref

from .errors import RemoteError, from_rpyc_exception

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
            return self._original(obj, include=include, exclude=exclude)
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
        return lines
