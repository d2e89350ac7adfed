"""``input()`` of remote code, answered in the notebook through the kernel's stdin channel.

The agent (``agent/inputs.py``) calls ``StdinBridge.ask(cause, prompt,
password)`` from a remote thread working for a notebook request.  Jupyter
lets only the executing cell prompt: an ``input_request`` goes on the stdin
channel with the parent (and zmq identity) of an ``execute_request`` that
set ``allow_stdin``, and the frontend shows the input box while that cell
runs (ipykernel's ``Kernel._input_request`` does the same for a local
``input()``).  So the notebook prompts only when the cell that caused the
call is the one executing now (``RunningCell``, from IPython's
``pre_run_cell``/``post_run_cell`` events) and its frontend allows stdin;
otherwise the remote gets EOFError with the reason, at once.  The wait ends
when the user answers, when the cell ends (EOFError), or on an interrupt
(KeyboardInterrupt in the cell; the remote's ``input()`` raises it too).
Without a kernel (plain Python, terminal IPython) the local terminal asks.
"""

import getpass
import sys
import threading
from collections import namedtuple

REFUSED = "input() in remote code cannot ask the notebook user: "
FINISHED = "the cell that caused it has finished (only the running cell can ask)"
OTHER_CELL = "another cell is running now (only the cell that caused it can ask)"
NO_STDIN = "this frontend does not accept input (the cell ran with allow_stdin off)"
NO_CELL = "no notebook cell caused it"
NO_TRACKER = "load the extension (%load_ext jupyter_rsym) to answer input() in a kernel"
POLL = 0.05  # seconds between checks that the cell still runs, while waiting on stdin

Running = namedtuple("Running", "msg_id parent ident allow_stdin")


class RunningCell:
    """The cell the kernel executes now: its parent message, zmq identity and
    whether its frontend allows stdin (None between cells)."""

    def __init__(self, shell):
        self._shell = shell
        self.kernel = getattr(shell, "kernel", None)
        self.current = None
        self._depth = 0  # nested run_cell of the same request
        self._interrupted = None  # msg_id of the last cell that ended with KeyboardInterrupt
        self.debugging = None  # remote pdb prompts and parked breakpoints (``debugging.Debugging``)
        self.lock = threading.Lock()  # one question at a time on the stdin socket

    def install(self):
        if self.kernel is not None:
            self._shell.events.register("pre_run_cell", self._pre_run_cell)
            self._shell.events.register("post_run_cell", self._post_run_cell)

    def uninstall(self):
        for event, callback in (("pre_run_cell", self._pre_run_cell), ("post_run_cell", self._post_run_cell)):
            try:
                self._shell.events.unregister(event, callback)
            except ValueError:
                pass
        self.current = None

    def _pre_run_cell(self, info):
        parent = self._shell.get_parent() or {}
        msg_id = parent.get("header", {}).get("msg_id")
        if self.current is None or self.current.msg_id != msg_id:
            try:
                ident = self.kernel._parent_ident["shell"]
            except (AttributeError, KeyError, TypeError):
                ident = None
            self.current = Running(msg_id, parent, ident, bool(getattr(self.kernel, "_allow_stdin", False)))
            self._depth = 0
        self._depth += 1

    def _post_run_cell(self, result):
        self._depth -= 1
        if self._depth <= 0:
            if isinstance(getattr(result, "error_in_exec", None), KeyboardInterrupt) and self.current:
                self._interrupted = self.current.msg_id  # before current goes: prompts waiting see it
            self.current = None

    def refusal(self, parent):
        """Why the cell of ``parent`` cannot prompt now, or None if it can."""
        running = self.current
        if parent is None:
            return NO_CELL
        if running is None:
            return FINISHED
        if running.msg_id != (parent.get("header") or parent).get("msg_id"):  # a message, or a header
            return OTHER_CELL
        if not running.allow_stdin:
            return NO_STDIN
        return None

    def interrupted(self, parent):
        """Whether the cell of ``parent`` ended with an interrupt (the last one that did)."""
        return parent is not None and self._interrupted == (parent.get("header") or parent).get("msg_id")

    def ask(self, parent, prompt, password):
        """``("ok", answer)`` from the user, or ``("eof", why)`` if the cell of
        ``parent`` cannot ask (now, or by the time an open question is done)."""
        while not self.lock.acquire(timeout=POLL):  # another question is open
            if (why := self.refusal(parent)) is not None:
                return ("eof", REFUSED + why)
        try:
            if (why := self.refusal(parent)) is not None:
                return ("eof", REFUSED + why)
            return ("ok", self.request_input(prompt, password))
        except EOFError as exc:
            return ("eof", str(exc))
        finally:
            self.lock.release()

    def request_input(self, prompt, password):
        """Ask the frontend of the running cell; raises EOFError if it ends first."""
        import zmq

        running, kernel = self.current, self.kernel
        socket, session = kernel.stdin_socket, kernel.session
        for stream in (sys.stdout, sys.stderr):  # output before the prompt shows first
            stream.flush()
        while True:  # drop stale replies, as ipykernel does
            try:
                socket.recv_multipart(zmq.NOBLOCK)
            except zmq.ZMQError as exc:
                if exc.errno == zmq.EAGAIN:
                    break
                raise
        session.send(
            socket, "input_request", {"prompt": prompt, "password": password}, running.parent, ident=running.ident
        )
        while self.current is running:
            readable, _, failed = zmq.select([socket], [], [socket], POLL)
            if readable or failed:
                _, reply = session.recv(socket)
                if reply is not None:
                    break
        else:
            raise EOFError(REFUSED + FINISHED)
        value = reply.get("content", {}).get("value", "")
        if value == "\x04":  # the frontend's EOF
            raise EOFError("end of input")
        return value


class StdinBridge:
    """Answers one session's remote ``input()`` calls (``ask`` is handed to the agent)."""

    def __init__(self, router, running=None):
        self._router = router
        self._running = running

    def ask(self, cause, prompt, password, kind=None):
        """``("ok", answer)`` or ``("eof", why)`` for the remote caller; a
        remote pdb's questions (``kind``) go to ``debugging.Debugging.ask``."""
        running = self._running
        debugging = getattr(running, "debugging", None)
        if kind is not None and debugging is not None and running.kernel is not None:
            parent = None if cause is None else self._router.parent_of_request(cause)
            return debugging.ask(self._router, cause, parent, prompt, kind)
        if running is None or running.kernel is None:
            if self._router.enabled:  # a kernel, but nothing tracks its cells
                return ("eof", REFUSED + NO_TRACKER)
            if kind:  # a remote pdb's question: its output comes with it
                sys.stdout.write(kind[-1])
            return ("ok", "" if kind and kind[0] == "pdb-done" else (getpass.getpass if password else input)(prompt))
        parent = None if cause is None else self._router.parent_of_request(cause)
        return running.ask(parent, prompt, password)
