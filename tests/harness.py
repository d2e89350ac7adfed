"""Drive a real Jupyter kernel over its messaging protocol and keep every output.

nbclient stops listening to a cell once it replies, so it cannot show where
late output went.  ``KernelHarness`` keeps a collector thread on the iopub
channel for the kernel's whole life and files every message under the
``msg_id`` of its parent, so a test can ask, at any time, what each cell has
received, including output that arrived after the cell finished.
"""

import os
import queue
import threading
import time
from collections import defaultdict

from jupyter_client import KernelManager

DEFAULT_TIMEOUT = 30


class CellTimeout(AssertionError):
    pass


class Cell:
    """One execute request and everything the kernel sent for it (live)."""

    def __init__(self, harness, msg_id, code):
        self.harness = harness
        self.msg_id = msg_id
        self.code = code

    @property
    def messages(self):
        return self.harness.messages_for(self.msg_id)

    def of_type(self, msg_type):
        return [m for m in self.messages if m["msg_type"] == msg_type]

    def stream(self, name="stdout"):
        return "".join(m["content"]["text"] for m in self.of_type("stream") if m["content"]["name"] == name)

    @property
    def stdout(self):
        return self.stream("stdout")

    @property
    def stderr(self):
        return self.stream("stderr")

    @property
    def error(self):
        """The ``error`` message content (ename, evalue, traceback), or None."""
        errors = self.of_type("error")
        return errors[0]["content"] if errors else None

    @property
    def error_text(self):
        """The error as a user reads it: traceback lines with ANSI colours removed."""
        return strip_ansi("\n".join(self.error["traceback"])) if self.error else ""

    @property
    def result(self):
        """The ``execute_result`` data dict, or None."""
        results = self.of_type("execute_result")
        return results[0]["content"]["data"] if results else None

    @property
    def displays(self):
        return [m["content"]["data"] for m in self.of_type("display_data")]

    @property
    def outputs(self):
        """What the cell shows, in order, as a frontend keeps it: consecutive
        stream messages of one name merged (JupyterLab does so), as
        ``("stdout"|"stderr", text)``, ``("display", data)``, ``("result", data)``,
        ``("error", ename)``; updates of a display id replace its data."""
        shown, by_id = [], {}
        for m in self.messages:
            kind, content = m["msg_type"], m["content"]
            if kind == "stream":
                if shown and shown[-1][0] == content["name"]:
                    shown[-1] = (content["name"], shown[-1][1] + content["text"])
                else:
                    shown.append((content["name"], content["text"]))
            elif kind == "display_data":
                shown.append(("display", content["data"]))
                display_id = content.get("transient", {}).get("display_id")
                if display_id:
                    by_id.setdefault(display_id, []).append(len(shown) - 1)
            elif kind == "update_display_data":
                for i in by_id.get(content.get("transient", {}).get("display_id"), ()):
                    shown[i] = ("display", content["data"])
            elif kind == "execute_result":
                shown.append(("result", content["data"]))
            elif kind == "error":
                shown.append(("error", content["ename"]))
            elif kind == "clear_output":
                shown, by_id = [], {}
        return shown

    @property
    def rendered(self):
        """``outputs`` with carriage returns applied as JupyterLab does: each
        line keeps what follows its last ``\\r``."""
        return [
            (kind, render_text(data)) if kind in ("stdout", "stderr") else (kind, data) for kind, data in self.outputs
        ]

    @property
    def reply(self):
        return self.harness.reply_for(self.msg_id)

    @property
    def done(self):
        return any(m["msg_type"] == "status" and m["content"]["execution_state"] == "idle" for m in self.messages)

    def wait(self, timeout=DEFAULT_TIMEOUT):
        """Wait until the kernel went idle after this cell."""
        self.wait_for(lambda c: c.done, timeout, "cell to finish")
        return self

    def wait_for(self, predicate, timeout=DEFAULT_TIMEOUT, what="condition"):
        if not self.harness.wait_for(lambda: predicate(self), timeout):
            raise CellTimeout(
                f"timed out after {timeout} s waiting for {what} in cell {self.code!r}; got {self.summary()}"
            )
        return self

    def summary(self):
        return {
            "stdout": self.stdout,
            "stderr": self.stderr,
            "error": self.error and self.error["ename"],
            "result": self.result,
        }

    def assert_ok(self):
        assert self.error is None, f"cell {self.code!r} failed:\n{self.error_text}"
        # a UsageError (an unknown magic, bad arguments) sends no error message: the reply says it
        status = self.reply["content"]["status"]
        assert status == "ok", f"cell {self.code!r} ended with status {status}: {self.stderr}"
        return self


def render_text(text):
    """Stream text as a notebook frontend shows it: ``\\r`` overwrites its line."""
    import re

    text = re.sub(r"\r+\n", "\n", text)
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def strip_ansi(text):
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


class KernelHarness:
    """A real ipykernel started with jupyter_client, with an iopub collector."""

    def __init__(self, env=None, timeout=60):
        kernel_env = dict(os.environ)
        kernel_env.update(env or {})
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=kernel_env)
        self._messages = defaultdict(list)
        self._replies = {}
        self._changed = threading.Condition()
        self._shell_lock = threading.Lock()
        self._connect(timeout)

    def _connect(self, timeout):
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=timeout)
        self._running = True
        self._collector = threading.Thread(target=self._collect, daemon=True)
        self._collector.start()

    def _disconnect(self):
        self._running = False
        self._collector.join(2)
        self.kc.stop_channels()

    def restart(self, timeout=60):
        """Restart the kernel (a new process) with fresh channels."""
        self._disconnect()
        self.km.restart_kernel(now=False)
        self._connect(timeout)

    def _collect(self):
        while self._running:
            try:
                msg = self.kc.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                continue
            except ValueError:  # a message signed with an old key, around a restart
                continue
            except Exception:
                if self._running:
                    raise
                return
            parent = msg.get("parent_header", {}).get("msg_id")
            msg["received"] = time.monotonic()
            with self._changed:
                self._messages[parent].append(msg)
                self._changed.notify_all()

    def messages_for(self, msg_id):
        with self._changed:
            return list(self._messages.get(msg_id, ()))

    def all_messages(self):
        with self._changed:
            return {k: list(v) for k, v in self._messages.items()}

    def wait_for(self, predicate, timeout=DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.1))
        return True

    def submit(self, code, allow_stdin=False):
        """Send an execute request without waiting; returns its Cell.

        With ``allow_stdin`` the cell may ask for input: answer with ``answer``.
        """
        return Cell(self, self.kc.execute(code, allow_stdin=allow_stdin, store_history=True), code)

    def input_request(self, timeout=DEFAULT_TIMEOUT):
        """The next ``input_request`` on the stdin channel (content and parent msg_id)."""
        try:
            msg = self.kc.get_stdin_msg(timeout=timeout)
        except queue.Empty:
            raise CellTimeout(f"no input_request in {timeout} s") from None
        assert msg["msg_type"] == "input_request", msg
        return {**msg["content"], "parent": msg["parent_header"].get("msg_id")}

    def answer(self, value, timeout=DEFAULT_TIMEOUT):
        """Wait for the next input request, answer it with ``value``; returns the request."""
        request = self.input_request(timeout)
        self.kc.input(value)
        return request

    def run(self, code, timeout=DEFAULT_TIMEOUT):
        """Execute ``code`` and wait until the kernel is idle again."""
        return self.submit(code).wait(timeout)

    def ok(self, code, timeout=DEFAULT_TIMEOUT):
        """Execute ``code``, wait, and fail the test if the cell raised."""
        return self.run(code, timeout).assert_ok()

    def reply_for(self, msg_id, timeout=DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self._shell_lock:
            while msg_id not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CellTimeout(f"no shell reply for {msg_id}")
                try:
                    msg = self.kc.get_shell_msg(timeout=left)
                except queue.Empty:
                    continue
                self._replies[msg["parent_header"].get("msg_id")] = msg
            return self._replies[msg_id]

    def inspect(self, code, timeout=DEFAULT_TIMEOUT, detail_level=0):
        msg_id = self.kc.inspect(code, len(code), detail_level=detail_level)
        return self.reply_for(msg_id, timeout)["content"]

    def complete(self, code, cursor_pos=None, timeout=DEFAULT_TIMEOUT):
        """A ``complete_request`` for ``code`` (cursor at the end by default);
        returns the reply content (``matches``, ``cursor_start``, ``metadata``)."""
        cursor_pos = len(code) if cursor_pos is None else cursor_pos
        msg_id = self.kc.complete(code, cursor_pos)
        return self.reply_for(msg_id, timeout)["content"]

    def interrupt(self):
        self.km.interrupt_kernel()

    def is_alive(self):
        return self.km.is_alive()

    def shutdown(self):
        try:
            self._disconnect()
        finally:
            try:
                self.km.shutdown_kernel(now=False)
            except Exception:
                self.km.shutdown_kernel(now=True)
