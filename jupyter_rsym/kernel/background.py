"""Background cells: ``%%remote --bg`` returns a job handle at once.

The cell runs remotely as a fan-out (``fanout.py``) that nobody waits for.
Everything it produces lands in the cell that started it, while other cells
run and while the kernel is idle: its output as it comes, then, when it
ends, its value (or its error) and a status line that updates in place.
Its ``-o`` names are bound when it ends.  No notebook thread waits for it:
the thread that delivers the last host's report finishes the job.
"""

import threading
import time
from concurrent.futures import CancelledError

from .fanout import CANCELLED, FanOut
from .gathered import gather

RUNNING, DONE, FAILED = "running", "done", "failed"


class JobCancelled(CancelledError):
    """``result()`` of a cancelled job (one line)."""

    def _render_traceback_(self):
        return [f"JobCancelled: {self}"]


class RemoteJob:
    """A background cell.  ``done()``, ``result(timeout)``, ``cancel()``;
    ``state`` is running, done, failed or cancelled.

    ``result()`` is the cell's value (``{session: value}`` with several
    sessions); it raises the cell's error (a ``FanoutError`` naming each
    failing session with several), or ``JobCancelled``.
    """

    def __init__(self, number, sessions, source, shell, labels, inputs, outputs):
        self.number = number
        self.sessions = [session.name for session in sessions]
        self.cell = getattr(getattr(shell, "displayhook", None), "prompt_count", None)  # In [n]
        self.state = RUNNING
        self._shell = shell
        self._outputs = tuple(outputs)
        self._value = self._error = None
        self._ended = threading.Event()
        self._fanout = FanOut(
            sessions, source, shell, labels, inputs, [remote for remote, _ in outputs], on_finish=self._finish
        )

    @property
    def display_id(self):
        return f"jupyter-rsym-job-{id(self)}"

    def start(self):
        self._fanout.start()
        return self

    def done(self):
        """Whether the job has ended (done, failed or cancelled)."""
        return self._ended.is_set()

    def result(self, timeout=None):
        """Wait up to ``timeout`` s (None: forever) and return the cell's value,
        or raise its error; ``TimeoutError`` if it is still running."""
        if not self._ended.wait(timeout):
            raise TimeoutError(f"job {self.number} still running after {timeout:g} s")
        if self.state == CANCELLED:
            raise JobCancelled(f"job {self.number} was cancelled")
        if self._error is not None:
            raise self._error
        return self._value

    def cancel(self):
        """Stop the job on every session still running it, like an interrupt
        (waits up to a second for them to stop); True if it was running."""
        if self.done():
            return False
        self._fanout.cancel()
        return True

    @property
    def elapsed(self):
        end = self._fanout.ended_at or time.monotonic()
        return end - self._fanout.started_at

    def _finish(self, fanout):
        """The last host has ended (runs in that thread, under the job cell's parent)."""
        if any(host.state == CANCELLED for host in fanout.hosts):
            self.state = CANCELLED
        else:
            value, assigned, error = gather(fanout, self._outputs)
            self._shell.user_ns.update(assigned)
            self._value, self._error = value, error
            self.state = FAILED if error is not None else DONE
        self._ended.set()
        self._show_end()

    def _show_end(self):
        from IPython.display import display

        display({"text/plain": repr(self)}, raw=True, display_id=self.display_id, update=True)
        if self.state == DONE and self._value is not None:
            display(self._value)
        elif self.state == FAILED:
            error = self._error
            if getattr(error, "values", None):  # a FanoutError: the others' values stay
                display(error.values)
            self._shell.showtraceback((type(error), error, None))
        elif self.state == CANCELLED:
            print(f"job {self.number} cancelled")

    def _ipython_display_(self):
        from IPython.display import display

        display({"text/plain": repr(self)}, raw=True, display_id=self.display_id)

    def __repr__(self):
        cell = f", cell {self.cell}" if self.cell else ""
        return f"<RemoteJob {self.number} on {', '.join(self.sessions)}: {self.state}{cell}>"


class JobList:
    """The notebook's background jobs, by number (the most recent ``keep``)."""

    def __init__(self, keep=200):
        self._jobs = {}
        self._numbers = iter(range(1, 1 << 62))
        self._keep = keep

    def start(self, sessions, source, shell, labels, inputs=None, outputs=()):
        """Start a background cell on ``sessions``; returns its ``RemoteJob``."""
        job = RemoteJob(next(self._numbers), sessions, source, shell, labels, inputs, outputs)
        ended = [number for number, old in self._jobs.items() if old.done()]
        for number in ended[: max(0, len(self._jobs) + 1 - self._keep)]:
            del self._jobs[number]
        self._jobs[job.number] = job
        try:
            return job.start()
        except KeyboardInterrupt:
            job.cancel()
            raise

    def get(self, number):
        return self._jobs[number]

    def cancel_all(self):
        for job in self:
            job.cancel()

    def __iter__(self):
        return iter(list(self._jobs.values()))
