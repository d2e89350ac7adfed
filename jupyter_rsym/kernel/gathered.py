"""What a cell run on several sessions shows: each host's value, labelled, and
one error at the end naming each failing host with its remote traceback.

``gather`` turns a finished ``FanOut`` into the cell's value, its ``-o``
values and its error.  With one session everything is as for a plain
``%%remote`` cell: the value itself, ``-o`` names bound to values, the
remote error itself.  With several, the value is a ``HostValues`` dict and
each ``-o`` name is bound to a dict, both ``{session name: value}``; hosts
that failed are left out of both and listed by one ``FanoutError``
(ipyparallel's CompositeError, made readable).
"""

import html
import traceback

from ..link.transfer import from_remote
from .fanout import CANCELLED, OK, FanOut
from .fanprogress import FanProgress

MAX_TRACEBACK_LINES = 40  # per host, in a FanoutError; the last lines are kept
NO_REMOTE = "-o {}: the remote namespace has no variable named {!r}"


class HostValues(dict):
    """A fan-out cell's values, ``{session name: value}``; shown one per host,
    labelled ``[name]``, with each value's own representation."""

    def _repr_pretty_(self, printer, cycle):
        printer.text(self._shown()[0])

    def _repr_html_(self):
        return self._shown()[1]

    def _shown(self):
        """(labelled text, labelled HTML or None if no value has rich output);
        computed once per content (a remote value costs a request)."""
        key = tuple((name, id(value)) for name, value in self.items())
        if getattr(self, "_shown_for", None) != key:
            self._shown_for, self._shown_as = key, self._format()
        return self._shown_as

    def _format(self):
        from IPython import get_ipython

        shell = get_ipython()
        texts, parts, rich = [], [], False
        for name, value in self.items():
            data = shell.display_formatter.format(value)[0] if shell else {}
            text = data.get("text/plain", repr(value))
            texts.append(f"[{name}] " + text.replace("\n", "\n" + " " * (len(name) + 3)))
            if "text/html" in data:
                body, rich = data["text/html"], True
            elif "image/png" in data:
                body, rich = f'<img src="data:image/png;base64,{data["image/png"]}">', True
            else:
                body = f"<pre>{html.escape(text)}</pre>"
            parts.append(f"<div><b>[{html.escape(name)}]</b>{body}</div>")
        return "\n".join(texts), ("".join(parts) if rich else None)


class FanoutError(Exception):
    """Some hosts of a cell failed.  ``errors`` maps each failing session's
    name to its exception; ``values`` holds the values of the others."""

    def __init__(self, errors, total, values=None):
        super().__init__(f"{len(errors)} of {total} sessions failed: {', '.join(errors)}")
        self.errors = errors
        self.values = values or {}

    def _render_traceback_(self):
        lines = [f"FanoutError: {self}"]
        for name, error in self.errors.items():
            body = _error_lines(error)
            lines += ["", f"[{name}] {body[-1]}"]
            if len(body) > 1:
                if len(body) > MAX_TRACEBACK_LINES:
                    left_out = len(body) - MAX_TRACEBACK_LINES
                    body = [f"... {left_out} lines left out ..."] + body[-MAX_TRACEBACK_LINES:]
                lines += ["    " + line for line in body]
        return lines


class MissingName(NameError):
    """An ``-o`` name the remote namespace does not have (one line)."""

    def _render_traceback_(self):
        return [f"NameError: {self}"]


def _error_lines(error):
    if isinstance(error, KeyboardInterrupt):
        return ["KeyboardInterrupt: cancelled"]
    render = getattr(error, "_render_traceback_", None)
    lines = render() if render is not None else traceback.format_exception_only(type(error), error)
    return [line for text in lines for line in text.rstrip("\n").split("\n")]


def run_foreground(
    sessions, source, shell, labels, inputs, outputs, timeout=None, collapse=None, progress_after=0.0, debugging=None
):
    """Run ``source`` on ``sessions`` at once and wait in the calling thread
    (see ``FanOut.wait``).  Binds the ``-o`` names and returns the cell's
    value; if some hosts failed, shows the others' values, then raises one
    ``FanoutError``.  ``collapse`` (s): lines several hosts print alike are
    shown once (``collapse.py``); ``progress_after`` (s, 0: never): a
    progress line (``fanprogress.py``); ``debugging``: an interrupt leaves
    hosts parked at a breakpoint there (``debugging.Debugging``)."""
    fanout = FanOut(sessions, source, shell, labels, inputs, [remote for remote, _ in outputs], collapse=collapse)
    fanout.parked_sessions = debugging.parked_sessions if debugging is not None else None
    if len(sessions) > 1 and (collapse or progress_after):
        progress = FanProgress(fanout, progress_after)

        def tick():
            progress.tick()
            if collapse and not fanout.finished:
                labels.flush_repeats(fanout.parent)

        fanout.on_tick = tick
    try:
        fanout.start()
    except KeyboardInterrupt:
        fanout.interrupt()
    fanout.wait(timeout)
    value, assigned, error = gather(fanout, outputs)
    shell.user_ns.update(assigned)
    if error is not None:
        if value:
            from IPython.display import display

            display(value)
        raise error
    return value


def gather(fanout, outputs):
    """``(value, {local name: value}, error or None)`` of a finished fan-out.

    ``outputs`` are the ``-o`` ``(remote, local)`` pairs; their values are
    copied to the notebook now (``transfer.from_remote``).
    """
    values, assigned, errors = {}, {local: {} for _, local in outputs}, {}
    for host in fanout.hosts:
        try:
            if host.state != OK:
                errors[host.name] = KeyboardInterrupt() if host.state == CANCELLED else host.error
                continue
            copies = {}
            for remote, local in outputs:
                if remote not in host.found:
                    raise MissingName(NO_REMOTE.format(remote, remote))
                copies[local] = from_remote(host.found[remote])
        except Exception as exc:
            errors[host.name] = host.session.failure(exc)
            continue
        values[host.name] = host.value
        for local, value in copies.items():
            assigned[local][host.name] = value
    if len(fanout.hosts) == 1:  # as a plain %%remote cell
        name = fanout.hosts[0].name
        if name in errors:
            return None, {}, errors[name]
        return values[name], {local: by_host[name] for local, by_host in assigned.items()}, None
    shown = HostValues((name, value) for name, value in values.items() if value is not None)
    error = FanoutError(errors, len(fanout.hosts), shown) if errors else None
    return (shown or None), assigned, error
