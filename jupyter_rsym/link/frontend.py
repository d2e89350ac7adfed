"""Where a session's local side effects go: remote output, remote ``input()``, transfer progress.

The connection layer knows no notebook.  A session hands the output
batches the agent sends to its frontend's sink, asks its frontend when
remote code calls ``input()``, and reports long transfers to it.  The
``Frontend`` here is a plain process's: the process's own stdout and
stderr, its terminal, no progress shown.  The kernel integration gives
sessions one that puts each item into the notebook cell that caused it
(``kernel/extension.py``: ``NotebookFrontend``).
"""

import getpass
import sys
import threading

STREAMS = ("stdout", "stderr")


class OutputSink:
    """Receives one session's output batches and writes each batch once.

    Batches are numbered: the agent sends a batch again after a dropped link
    when it had no reply for it, so the sink skips the numbers it has seen,
    and ``received`` tells a resumed agent where to go on.
    """

    def __init__(self):
        self.batches = 0  # round trips spent on output, for tests and benchmarks
        self.received = 0  # the number of the last batch written
        self._lock = threading.Lock()  # a replayed batch may race its first copy

    def emit(self, batch, seq=None):
        """Write a batch of ``(cause, kind, content)`` chunks, unless batch
        number ``seq`` was written already."""
        self.batches += 1
        with self._lock:
            if seq is not None:
                if seq <= self.received:
                    return
                self.received = seq
            self.write(batch)

    def write(self, batch):
        """Streams to this process's stdout/stderr, displays as their text."""
        for _cause, kind, content in batch:
            if kind in STREAMS:
                getattr(sys, kind).write(content)
            elif kind == "display":
                print(dict(content[0]).get("text/plain", ""))


class TerminalInput:
    """Remote ``input()`` answered on this process's terminal."""

    def ask(self, cause, prompt, password):
        """``("ok", answer)`` for the remote caller (see ``agent/inputs.py``)."""
        return ("ok", (getpass.getpass if password else input)(prompt))


class NoProgress:
    def advance(self, count):
        pass

    def finish(self):
        pass


class Frontend:
    """A plain process's frontend (see the module docstring).

    ``shell`` is what ``routing.Router`` asks for the current cell (None:
    no cells).
    """

    shell = None

    def output_sink(self, router, session_name):
        """The sink for the output of session ``session_name``."""
        return OutputSink()

    def input_answerer(self, router):
        """What answers remote ``input()`` for one session (``ask(cause, prompt, password)``)."""
        return TerminalInput()

    def progress(self, label, total, after):
        """A transfer of ``total`` bytes (``advance(n)``, ``finish()``), shown
        once it has run ``after`` seconds."""
        return NoProgress()
