"""Errors a notebook user sees: one clear line, or the remote traceback.

IPython shows an exception that has ``_render_traceback_`` by calling it
instead of formatting local frames (ipyparallel's ``RemoteError`` does the
same), so these never show jupyter_rsym's or rpyc's own frames.
"""

import builtins


class RSymError(Exception):
    """A failure of the link itself (connect, timeout, lost server): one line,
    named after the built-in error it also is."""

    shown_as = "Error"

    def _render_traceback_(self):
        return [f"{self.shown_as}: {self}"]


class ConnectFailed(RSymError, ConnectionError):
    """The server could not be reached or did not speak rpyc."""

    shown_as = "ConnectionError"


class SessionLost(RSymError, ConnectionError):
    """The session was closed, or its connection dropped."""

    shown_as = "ConnectionError"


class NoAnswer(RSymError, TimeoutError):
    """The server did not answer in time."""

    shown_as = "TimeoutError"

    def __init__(self, peer, seconds):
        super().__init__(f"no answer from {peer} in {seconds:g} s")


class RemoteError(Exception):
    """An exception raised by remote code.

    Shows the remote traceback (the remote cell's own lines and whatever it
    called), keeps the remote type's name and message, and, for built-in
    exception types, is also an instance of that type, so
    ``except ZeroDivisionError`` works in the notebook.
    """

    remote_type = "Exception"
    remote_module = "builtins"

    def __init__(self, message, remote_traceback):
        BaseException.__init__(self, message)
        self.message = message
        self.remote_traceback = remote_traceback

    def __str__(self):
        return self.message

    def _render_traceback_(self):
        return self.remote_traceback.rstrip("\n").split("\n")


_classes = {}


def remote_exception(type_name, module, message, remote_traceback):
    """A RemoteError instance named after the remote exception type."""
    key = (type_name, module)
    cls = _classes.get(key)
    if cls is None:
        cls = _classes[key] = _make_class(type_name, module)
    return cls(message, remote_traceback)


def _make_class(type_name, module):
    attrs = {"remote_type": type_name, "remote_module": module, "__module__": module}
    local = getattr(builtins, type_name, None) if module == "builtins" else None
    # only Exception subclasses: a local SystemExit/KeyboardInterrupt would
    # act on the kernel itself
    if isinstance(local, type) and issubclass(local, Exception):
        try:
            return type(type_name, (RemoteError, local), attrs)
        except TypeError:  # incompatible layout
            pass
    return type(type_name, (RemoteError,), attrs)


_RPYC_TB_MARKER = "\n\n========= Remote Traceback"
# rpyc's frames, and the agent's (sent as a bundle, or imported by our server)
_INTERNAL_FILES = ("/rpyc/", "\\rpyc\\", "<jupyter_rsym agent", "/jupyter_rsym/agent/", "\\jupyter_rsym\\agent\\")


def from_rpyc_exception(exc):
    """The RemoteError for an exception rpyc re-raised from the remote side.

    rpyc appends the remote traceback, its own dispatch frames included, to
    the message; this keeps the message and the remote frames that are not
    rpyc's or the agent's.
    """
    name = type(exc).__name__
    text = clean_traceback(getattr(exc, "_remote_tb", "") or "")
    # the remote's own last line is exact (rpyc rebuilds OSError messages badly)
    last = text.rstrip("\n").rsplit("\n", 1)[-1]
    if last.startswith(name + ": "):
        message = last[len(name) + 2:]
    else:
        message = str(exc).split(_RPYC_TB_MARKER, 1)[0]
    return remote_exception(name, type(exc).__module__, message, text)


def clean_traceback(text):
    """Drop the frames of rpyc and of the agent from a formatted traceback."""
    lines = text.rstrip("\n").split("\n")
    kept, skipping = [], False
    for line in lines:
        if line.startswith('  File "'):
            skipping = any(marker in line for marker in _INTERNAL_FILES)
        elif not line.startswith("    "):
            skipping = False
        if not skipping:
            kept.append(line)
    if kept == ["Traceback (most recent call last):"] or len(kept) < 2:
        return text
    if len(kept) >= 2 and kept[0] == "Traceback (most recent call last):" and not kept[1].startswith("  File"):
        kept = kept[1:]  # no remote frame is left: just the error line
    return "\n".join(kept) + "\n"
