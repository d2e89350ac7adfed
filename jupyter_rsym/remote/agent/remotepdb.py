"""RemotePdb: pdb for remote code, showing and stepping through the user's frames only.

Stock pdb run in the remote would list and step into rpyc's dispatch and
the agent's own frames (``s`` past a cell's last line lands in
``cells.run_awaiting``).  ``RemotePdb`` leaves every frame of rpyc and of
jupyter_rsym out of ``w``/``u``/``d`` and never stops in one, and a step
that returns from the outermost user frame (a cell, a function the notebook
called) ends the stepping, as it does for a local cell.  Commands are read
through ``read`` (``breakpoints.Prompter``: the notebook cell's input box),
never from the remote's terminal.
"""

import io
import pdb
import sys
import types

from .. import tracebacks


class RemotePdb(pdb.Pdb):
    """pdb whose commands come from ``read(prompt)``; ``finished()`` runs
    when the user lets the code go on (``c``, ``q``, end of a post-mortem)."""

    def __init__(self, read, finished=lambda: None):
        # pdb's own output waits here and goes with the next question: a
        # step costs one round trip, not an output batch and then a question
        super().__init__(stdout=io.StringIO(), nosigint=True, readrc=False)
        self._read = read
        self._finished = finished
        self._internal = tracebacks.internal_prefixes()
        self.hop_text = ""  # the notebook's frames of a callback hop, as text

    # -- which frames are the user's -----------------------------------------

    def take_output(self):
        """pdb's output since the last call."""
        text = self.stdout.getvalue()
        self.stdout.seek(0)
        self.stdout.truncate()
        return text

    def is_internal(self, frame):
        return frame.f_code.co_filename.startswith(self._internal)

    def stop_here(self, frame):
        return not self.is_internal(frame) and super().stop_here(frame)

    def get_stack(self, f, t):
        stack, index = super().get_stack(f, t)
        internal = [self.is_internal(entry[0]) for entry in stack]
        # the thread's own start-up frames (threading's bootstrap, the
        # server's loop) come before the first internal frame: left out too
        first = internal.index(True) if True in internal else 0
        keep = [i >= first and not internal[i] for i in range(len(stack))]
        if not any(keep):
            return stack, index
        before = sum(keep[: index + 1])
        return [entry for entry, k in zip(stack, keep) if k], max(0, before - 1)

    def set_trace(self, frame=None):
        """Bdb.set_trace stopping at the next line of ``frame`` (the code that
        called ``breakpoint()``), not in whatever Python code the thread runs
        first (a garbage collector's weakref callback, say)."""
        frame = frame or sys._getframe().f_back
        self.reset()
        outer = frame
        while outer:
            outer.f_trace = self.trace_dispatch
            self.botframe, outer = outer, outer.f_back
        self.set_next(frame)
        sys.settrace(self.trace_dispatch)

    def user_return(self, frame, return_value):
        caller = frame.f_back
        if caller is None or self.is_internal(caller):  # leaving the user's code: stop stepping
            self.set_continue()
            return
        super().user_return(frame, return_value)

    # -- commands come from the notebook ------------------------------------

    def cmdloop(self, intro=None):
        """cmd.Cmd.cmdloop, reading each line with ``read`` (the prompt
        shows in the notebook's input box, not on the remote's stdout)."""
        self.preloop()
        stop = None
        while not stop:
            line = self.cmdqueue.pop(0) if self.cmdqueue else self._read(self.prompt)
            line = self.precmd(line)
            stop = self.onecmd(line)
            stop = self.postcmd(stop, line)
        self.postloop()

    def set_continue(self):
        super().set_continue()
        self._finished()

    def set_quit(self):
        super().set_quit()
        self._finished()

    def do_where(self, arg):
        super().do_where(arg)
        if self.hop_text:
            self.message("  (the notebook's frames of this callback, shown as text: they ran in the kernel)")
            self.message(self.hop_text.rstrip("\n"))

    do_w = do_bt = do_where


def user_traceback(tb, internal=None):
    """A copy of the traceback chain ``tb`` without rpyc's and jupyter_rsym's
    frames (None if no frame is left)."""
    internal = internal or tracebacks.internal_prefixes()
    kept = []
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(internal):
            kept.append(tb)
        tb = tb.tb_next
    chain = None
    for entry in reversed(kept):
        chain = types.TracebackType(chain, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return chain


def hop_frames(exc):
    """The other side's frames of an exception that came from the notebook
    (a callback that raised), as traceback text; "" for a local one."""
    remote = getattr(exc, "_remote_tb", None)
    if not isinstance(remote, str) or not remote:
        return ""
    _, frames, _ = tracebacks.split_last(remote)
    return frames


def where(frame):
    """``file:line`` of a frame, file by its base name."""
    name = frame.f_code.co_filename.replace("\\", "/").rsplit("/", 1)[-1]
    return "%s:%d" % (name, frame.f_lineno)
