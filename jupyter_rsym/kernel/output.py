"""The notebook end of remote output: batches from the agent become cell output.

The agent (``agent/capture.py``) buffers remote writes and calls ``OutputSink.emit``
with a batch of ``(cause, stream name, text)`` chunks, where ``cause`` is the
seq of the notebook request that caused the output.  Each chunk is written
to ``sys.stdout``/``sys.stderr`` under the parent of that request, so it
lands in the cell that caused it even when the batch arrives later, from a
remote thread, while another cell runs.

Displays travel in the same batches, in order with the text around them
(``agent/publish.py``): ``(cause, "display", (data pairs, metadata JSON,
transient JSON, update))`` and ``(cause, "clear_output", wait)`` go through
the shell's display publisher under the same parent.  The kernel buffers
stdout and stderr apart and sends each on its own timer, so the sink
flushes one before writing to the other: order holds across the streams
(a ``\r`` progress line on stderr, then a ``print``).

Batches are numbered (``link/frontend.py``): a batch replayed after a
dropped link is written once.

When several sessions print into one cell, a ``[name]`` prefix marks each
change of session (as ipyparallel's ``[stdout:N]``); one session alone
prints bare.  A fan-out cell (``%%remote --on a,b``) is also line-buffered
per session and stream: whole lines only, each run of lines from one
session (and stream) under its label, and a ``\\r`` progress line reduced to what a
terminal would show, so one host's progress never overwrites another's line.
A session's unfinished last line is written when its share of the cell ends
(``CellLabels.end_session``).
"""

import json
import sys
import threading
from collections import OrderedDict

from ..link import frontend
from ..link.frontend import STREAMS
from .collapse import Collapser
from .richrepr import jsonable


def _cell_key(parent):
    return (parent.get("header") or parent).get("msg_id") if parent else None


def _collapse(line):
    """What a terminal shows of a line with carriage returns (a trailing one moves nothing)."""
    body = line.rstrip("\r")
    return body[body.rfind("\r") + 1 :]


class CellLabels:
    """Which session last printed into each cell (the most recent cells only),
    and the unfinished lines of fan-out cells."""

    def __init__(self, keep=200):
        self._last = OrderedDict()
        self._keep = keep
        self._lock = threading.Lock()
        self._fanouts = {}  # cell key -> {(session, stream): unfinished line}
        self._collapsers = {}  # cell key -> Collapser, for fan-out cells that collapse repeats

    def prefix(self, parent, session_name):
        """``"[name] "`` if another session printed into this cell last, else ``""``."""
        key = _cell_key(parent)
        if key is None:
            return ""
        with self._lock:
            return self._prefix(key, session_name)

    def _prefix(self, key, session_name, stream=None):
        last = self._last.pop(key, None)
        self._last[key] = (session_name, stream)
        if len(self._last) > self._keep:
            self._last.popitem(last=False)
        if last is None:
            return ""
        return f"[{session_name}] " if last[0] != session_name else ""

    def write(self, parent, session_name, stream, text):
        """Write remote ``text`` of ``stream`` into the calling thread's cell, labelled."""
        out = sys.stderr if stream == "stderr" else sys.stdout
        key = _cell_key(parent)
        with self._lock:  # the label and the text it labels go out together
            lines = self._fanouts.get(key)
            if lines is None:
                out.write((self._prefix(key, session_name) if key is not None else "") + text)
                return
            text = lines.pop((session_name, stream), "") + text
            done, newline, rest = text.rpartition("\n")
            if rest:
                lines[(session_name, stream)] = _collapse(rest) + ("\r" if rest.endswith("\r") else "")
            if newline:
                self._write_lines(out, key, session_name, stream, done.split("\n"))

    def _write_lines(self, out, key, session_name, stream, lines):
        collapser = self._collapsers.get(key)
        if collapser is not None:
            self._write_repeats(key, collapser.due())
            lines = collapser.keep(session_name, stream, lines)
            if not lines:
                return
        # a fan-out cell labels each change of session, and of stream: a
        # frontend starts a new output area there
        label = f"[{session_name}] " if self._last.get(key) != (session_name, stream) else ""
        self._prefix(key, session_name, stream)
        out.write(label + "\n".join(_collapse(line) for line in lines) + "\n")

    def _write_repeats(self, key, repeats):
        """Repeat counts (``collapse.py``), unlabelled; the next line is labelled again."""
        for stream, line in repeats:
            out = sys.stderr if stream == "stderr" else sys.stdout
            out.write(line + "\n")
            self._prefix(key, "", stream)

    def begin_fanout(self, parent, collapse=None):
        """Line-buffer and label every session's output in this cell from now
        on; ``collapse`` (seconds) shows lines that several hosts print alike
        once (``collapse.py``)."""
        key = _cell_key(parent)
        if key is not None:
            with self._lock:
                self._fanouts.setdefault(key, {})
                self._last.pop(key, None)  # the first host to print is labelled too
                if collapse:
                    self._collapsers[key] = Collapser(collapse)

    def flush_repeats(self, parent, everything=False):
        """Show the repeat counts whose window has passed (all, with ``everything``)."""
        key = _cell_key(parent)
        with self._lock:
            collapser = self._collapsers.get(key)
            if collapser is not None:
                self._write_repeats(key, collapser.due(everything))

    def end_session(self, parent, session_name):
        """Write the session's unfinished lines in this cell (its part has ended)."""
        key = _cell_key(parent)
        with self._lock:
            lines = self._fanouts.get(key)
            if lines is None:
                return
            for stream in ("stdout", "stderr"):
                rest = lines.pop((session_name, stream), None)
                if rest is not None and _collapse(rest):
                    out = sys.stderr if stream == "stderr" else sys.stdout
                    self._write_lines(out, key, session_name, stream, [rest])

    def end_fanout(self, parent, session_names):
        """Write what is left and stop line-buffering this cell."""
        for name in session_names:
            self.end_session(parent, name)
        self.flush_repeats(parent, everything=True)
        with self._lock:
            self._fanouts.pop(_cell_key(parent), None)
            self._collapsers.pop(_cell_key(parent), None)


class OutputSink(frontend.OutputSink):
    """Receives output batches for one session and writes each chunk in its cell.

    ``shell`` (its ``display_pub``) shows displays; without one, their text.
    """

    def __init__(self, router, session_name, labels=None, shell=None):
        super().__init__()
        self._router = router
        self._name = session_name
        self._labels = labels or CellLabels()
        self._display_pub = getattr(shell, "display_pub", None)
        self._last_stream = None  # the stream written last, flushed before the other

    def write(self, batch):
        for cause, kind, content in batch:
            parent = None if cause is None else self._router.parent_of_request(cause)
            token = self._router.enter(parent)
            try:
                if kind in STREAMS:
                    self._switch_to(kind)
                    self._labels.write(parent, self._name, kind, content)
                else:
                    self._show(kind, content)
            finally:
                self._router.leave(token)

    def _switch_to(self, name):
        """Flush the other stream before writing to this one (the kernel sends each on its own timer)."""
        stream = sys.stderr if name == "stderr" else sys.stdout
        if self._last_stream is not None and self._last_stream is not stream:
            self._last_stream.flush()
        self._last_stream = stream

    def _show(self, kind, content):
        """A display or clear_output (the publisher flushes both streams first)."""
        self._last_stream = None
        try:
            if kind == "clear_output":
                if self._display_pub is not None:
                    self._display_pub.clear_output(bool(content))
                return
            pairs, metadata, transient, update = content
            data = {mime: jsonable(mime, value) for mime, value in pairs}
            if self._display_pub is None:
                print(data.get("text/plain", ""))
                return
            self._display_pub.publish(
                data,
                json.loads(metadata) if metadata else {},
                transient=json.loads(transient) if transient else {},
                update=bool(update),
            )
        except Exception as exc:  # never fail the batch: the agent would drop the link
            print(f"jupyter_rsym: could not show remote {kind}: {type(exc).__name__}: {exc}", file=sys.stderr)
