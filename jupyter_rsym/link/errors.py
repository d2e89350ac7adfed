"""Errors a notebook user sees: one clear line, or the remote traceback.

IPython shows an exception that has ``_render_traceback_`` by calling it
instead of formatting local frames (ipyparallel's ``RemoteError`` does the
same), so these never show jupyter_rsym's or rpyc's own frames:

* ``RSymError``: a failure of the link (connect, timeout, lost server), one line;
* ``RemoteError``: an exception of remote code, with its remote traceback
  (made by ``agent/tracebacks.py`` on both ends: one traceback through any
  number of callback hops), trimmed if very long;
* ``Interrupted``: the user interrupted a cell waiting on the remote,
  shown as ``KeyboardInterrupt``.
"""

import builtins
import os
import re

from ..remote.tracebacks import BASES_ATTR, HEADER, exception_type, split_last

_FRAME_LINE = re.compile(r'  File ".*", line \d+, in ')


class RSymError(Exception):
    """A failure of the link itself (connect, timeout, lost server): one line,
    named after the built-in error it also is."""

    shown_as = "Error"

    def _render_traceback_(self):
        return [f"{self.shown_as}: {self}"]


class ConnectFailed(RSymError, ConnectionError):
    """The server could not be reached or did not speak rpyc; ``refused``:
    nothing listens there (the server is gone)."""

    shown_as = "ConnectionError"

    def __init__(self, message, refused=False):
        super().__init__(message)
        self.refused = refused


class SessionLost(RSymError, ConnectionError):
    """The session was closed, or its connection dropped."""

    shown_as = "ConnectionError"


class NoAnswer(RSymError, TimeoutError):
    """The server did not answer in time."""

    shown_as = "TimeoutError"

    def __init__(self, peer, seconds):
        super().__init__(f"no answer from {peer} in {seconds:g} s")


class RanTooLong(RSymError, TimeoutError):
    """A remote call or cell ran past its timeout; the remote work was stopped
    (or, blocked in C, left to finish while another thread serves the session)."""

    shown_as = "TimeoutError"

    def __init__(self, seconds, state):
        what = "was stopped" if state == "stopped" else "is left to finish there (blocked in C)"
        super().__init__(f"the remote call ran longer than {seconds:g} s and {what}; the session goes on")


class CannotCopy(RSymError, TypeError):
    """A value could not be copied to or from the remote (it cannot be
    pickled on one side or unpickled on the other)."""

    shown_as = "TypeError"

    def __init__(self, name, where, reason):
        super().__init__(
            f"{name} cannot be copied {where} ({reason}); hand a reference instead with --ref (r.push/r.pull: ref=True)"
        )
        self.name = name


class RemoteError(Exception):
    """An exception raised by remote code.

    Shows the remote traceback (the remote cell's own lines and whatever it
    called, through any number of callback hops; a very long one trimmed,
    with a count of the frames left out), keeps the remote type's name and
    message, and, for built-in exception types, is also an instance of that
    type, so ``except ZeroDivisionError`` works in the notebook.  A remote
    ``SystemExit`` or ``KeyboardInterrupt`` is a ``RemoteError`` only: it
    must not stop the kernel.  ``remote_traceback`` has the full text.
    """

    remote_type = "Exception"
    remote_module = "builtins"
    session = None  # the RemoteSession it came from, where known (``%debug`` asks it)

    def __init__(self, message, remote_traceback):
        message = "" if message is None else str(message)
        BaseException.__init__(self, message)
        self.message = message
        self.remote_traceback = remote_traceback
        self._remote_tb = remote_traceback  # sent back to the remote, it continues there

    def __str__(self):
        return self.message

    def _render_traceback_(self):
        return render(self.remote_traceback)

    def of_session(self, session):
        """This error, marked as ``session``'s: ``%debug`` asks it for the remote frames."""
        self.session = session
        return self


class Interrupted(KeyboardInterrupt):
    """The user interrupted a cell while it waited on the remote.

    Shown as ``KeyboardInterrupt``: one line (``KeyboardInterrupt: WHERE``
    when given, e.g. the hosts a fan-out cell was stopped on), or the remote
    frames where the remote code stopped (like a local interrupt); never the
    notebook's own waiting code.
    """

    session = None  # the RemoteSession whose request was interrupted, where known
    hosts = ()  # a fan-out cell's: the sessions whose remote code the interrupt stopped

    def __init__(self, where="", remote_traceback=""):
        super().__init__(*((where,) if where else ()))
        self.remote_traceback = remote_traceback
        self.late_reply = None  # (is_exc, value) if the remote answered after the interrupt

    def stopped_on(self):
        """The sessions whose remote code this interrupt stopped: each keeps
        the frames where it stopped (``%debug`` opens them)."""
        if self.hosts:
            return list(self.hosts)
        return [self.session] if self.session is not None and self.remote_traceback else []

    def _render_traceback_(self):
        if self.remote_traceback:
            return render(self.remote_traceback)
        return [f"KeyboardInterrupt: {self}" if str(self) else "KeyboardInterrupt"]

    def show_where_cell_stopped(self):
        """A cell whose answer came in time after the interrupt shows where it stopped."""
        if self.late_reply is None or self.late_reply[0]:
            return
        status, payload = self.late_reply[1]
        if status == "error" and payload[0] == "KeyboardInterrupt":
            self.remote_traceback = payload[3]


Interrupted.__name__ = Interrupted.__qualname__ = "KeyboardInterrupt"  # what the cell shows


_classes = {}


def remote_exception(type_name, module, message, remote_traceback, bases=(), attributes=()):
    """A RemoteError instance named after the remote exception type.

    It is also an instance of the builtin exception types the remote one
    derives from (its own type if builtin, else ``bases``, the names the
    remote sent): ``except ValueError`` catches a remote ``JSONDecodeError``.
    ``attributes`` ((name, value) pairs: ``errno``, ...) are set on it.
    """
    key = (type_name, module, tuple(bases))
    cls = _classes.get(key)
    if cls is None:
        cls = _classes[key] = _make_class(type_name, module, bases)
    try:
        exc = cls(message, remote_traceback)
    except Exception:  # a built-in type whose constructor checks its arguments (ExceptionGroup)
        cls = _classes[key] = _make_class(type_name, module, local=False)
        exc = cls(message, remote_traceback)
    set_attributes(exc, attributes)
    return exc


def set_attributes(exc, attributes):
    """Set the remote exception's plain attributes on its stand-in (methods,
    which rpyc sends as their repr, and our own fields stay)."""
    for name, value in attributes:
        if name in _OWN_FIELDS or callable(getattr(type(exc), name, None)):
            continue
        try:
            setattr(exc, name, value)
        except (AttributeError, TypeError):
            pass


_OWN_FIELDS = frozenset(("message", "remote_traceback", "remote_type", "remote_module"))


def _make_class(type_name, module, bases=(), local=True):
    attrs = {"remote_type": type_name, "remote_module": module, "__module__": module}
    names = tuple(bases) or ((type_name,) if module == "builtins" else ())
    found = [getattr(builtins, name, None) for name in names] if local else []
    # only Exception subclasses: a local SystemExit/KeyboardInterrupt would
    # act on the kernel itself
    found = [cls for cls in found if isinstance(cls, type) and issubclass(cls, Exception)]
    for builtin in (found, found[:1]):
        if builtin:
            try:
                return type(type_name, (RemoteError, *builtin), attrs)
            except TypeError:  # incompatible layout
                pass
    return type(type_name, (RemoteError,), attrs)


# rpyc's frames, the agent's (sent as a bundle, or imported by our server), and
# this package's (both ends leave them out already: this is for other texts)
_INTERNAL_FILES = (
    "/rpyc/",
    "\\rpyc\\",
    "<jupyter_rsym remote",
    "/jupyter_rsym/remote/",
    "/jupyter_rsym_remote/",
    "\\jupyter_rsym\\remote\\",
    '"' + os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,
)
KEEP_FIRST, KEEP_LAST = 10, 20  # frames of a long traceback that are shown


def from_rpyc_exception(exc):
    """The RemoteError for an exception rpyc re-raised from the remote side.

    Its type name, module and message come from the remote traceback's own
    exception line (rpyc rebuilds some messages badly, and names types it
    cannot import ``module.Name``), its traceback from the remote text,
    flattened through callback hops and without rpyc's or the agent's frames.
    """
    if isinstance(exc, RemoteError):
        return exc
    raw = getattr(exc, "_remote_tb", "") or ""
    name, module, message = exception_type(exc, raw)
    prefix, frames, ending = split_last(raw)
    text = prefix + (HEADER + "\n" + frames if frames else "") + ending
    return remote_exception(name, module, message, text, getattr(exc, BASES_ATTR, ()))


def render(text):
    """The lines a cell shows for a remote traceback: internal frames dropped,
    a very long one trimmed (first and last frames kept, a count of the rest)."""
    return trim_traceback(clean_traceback(text)).rstrip("\n").split("\n")


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
    if kept == [HEADER] or len(kept) < 2:
        return text
    if len(kept) >= 2 and kept[0] == HEADER and not kept[1].startswith("  File"):
        kept = kept[1:]  # no remote frame is left: just the error line
    return "\n".join(kept) + "\n"


def trim_traceback(text, first=KEEP_FIRST, last=KEEP_LAST):
    """Keep the first and last frames of each long run of frames."""
    lines = text.split("\n")
    out, run = [], []  # run: the frames (lists of lines) seen in a row

    def end_run():
        if len(run) > first + last + 1:
            kept = run[:first] + [[f"  [... {len(run) - first - last} frames left out ...]"]] + run[-last:]
        else:
            kept = run
        for frame in kept:
            out.extend(frame)
        run.clear()

    for line in lines:
        if _FRAME_LINE.match(line):
            run.append([line])
        elif run and (line.startswith("    ") or line.startswith("  [Previous line repeated")):
            run[-1].append(line)
        else:
            end_run()
            out.append(line)
    end_run()
    return "\n".join(out)


# -- resuming after a dropped link (resume.py) ---------------------------------


class LinkDropped(SessionLost):
    """The link dropped under a request; the session resumes on its next use."""


class SessionExpired(SessionLost):
    """The server no longer keeps the session: it expired, or the server restarted."""


class StaleObject(SessionLost):
    """A remote object from a connection that dropped was used."""
