"""The notebook end of remote output: batches from the agent become stream output.

The agent (``agent/capture.py``) buffers remote writes and calls ``OutputSink.emit``
with a batch of ``(cause, stream name, text)`` chunks, where ``cause`` is the
seq of the notebook request that caused the output.  Each chunk is written
to ``sys.stdout``/``sys.stderr`` under the parent of that request, so it
lands in the cell that caused it even when the batch arrives later, from a
remote thread, while another cell runs.

When several sessions print into one cell, a ``[name]`` prefix marks each
change of session (as ipyparallel's ``[stdout:N]``); one session alone
prints bare.
"""

import sys
import threading
from collections import OrderedDict


class CellLabels:
    """Which session last printed into each cell (the most recent cells only)."""

    def __init__(self, keep=1000):
        self._last = OrderedDict()
        self._keep = keep
        self._lock = threading.Lock()

    def prefix(self, parent, session_name):
        """``"[name] "`` if another session printed into this cell last, else ``""``."""
        if not parent:
            return ""
        key = (parent.get("header") or parent).get("msg_id")
        with self._lock:
            last = self._last.pop(key, None)
            self._last[key] = session_name
            if len(self._last) > self._keep:
                self._last.popitem(last=False)
        return f"[{session_name}] " if last not in (None, session_name) else ""


class OutputSink:
    """Receives output batches for one session."""

    def __init__(self, router, session_name, labels=None):
        self._router = router
        self._name = session_name
        self._labels = labels or CellLabels()
        self.batches = 0  # round trips spent on output, for tests and benchmarks

    def emit(self, batch):
        self.batches += 1
        for cause, name, text in batch:
            parent = None if cause is None else self._router.parent_of_request(cause)
            text = self._labels.prefix(parent, self._name) + text
            token = self._router.enter(parent)
            try:
                (sys.stderr if name == "stderr" else sys.stdout).write(text)
            finally:
                self._router.leave(token)
