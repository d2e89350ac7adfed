"""The notebook end of remote output: batches from the agent become stream output.

The agent (``agent.py``) buffers remote writes and calls ``OutputSink.emit``
with a batch of ``(cause, stream name, text)`` chunks, where ``cause`` is the
seq of the notebook request that caused the output.  Each chunk is written
to ``sys.stdout``/``sys.stderr`` under the parent of that request, so it
lands in the cell that caused it even when the batch arrives later, from a
remote thread, while another cell runs.
"""

import sys


class OutputSink:
    """Receives output batches for one session."""

    def __init__(self, router):
        self._router = router
        self.batches = 0  # round trips spent on output, for tests and benchmarks

    def emit(self, batch):
        self.batches += 1
        for cause, name, text in batch:
            parent = None if cause is None else self._router.parent_of_request(cause)
            token = self._router.enter(parent)
            try:
                (sys.stderr if name == "stderr" else sys.stdout).write(text)
            finally:
                self._router.leave(token)
