"""Debugging remote code from the notebook: post-mortems, pdb prompts, parked breakpoints.

* ``%debug`` and ``%pdb on``: IPython calls ``shell.debugger``; while the
  extension is loaded that looks at the last error first, and for a remote
  one (a ``RemoteError`` of a session, each failing host of a
  ``FanoutError``) runs pdb in the remote on the frames the agent kept
  (``agent/breakpoints.post_mortem``), host after host, its prompts in the
  cell.  Anything else goes to IPython's own debugger.
* Remote pdb prompts (``breakpoint()``, a post-mortem, an attached parked
  breakpoint) reach ``ask``: they show as ``(Pdb NAME)`` in the cell that
  caused them while it can take input, one session at a time.  When no cell
  can (a background job, a finished cell's thread, a host of a fan-out cell
  while another host is at the prompt), the breakpoint is parked: the
  remote thread waits, the cell that caused it gets one line, ``%rdebug``
  lists it and ``%rdebug N`` attaches (``RSym.park_breakpoints``).  A
  fan-out host parked while another host had the prompt is woken when that
  prompt ends and prompts in the cell; an interrupt of the cell ends the
  prompt (the remote quits as after ``q``) and leaves the parked hosts
  parked (``parked_sessions``: the fan-out does not cancel them).
"""

import itertools
import sys
import threading
import time
from dataclasses import dataclass, field

from ..link.client import INTERRUPTED_CALLBACK as INTERRUPTED
from ..link.errors import Interrupted, RemoteError
from .stdin import REFUSED

PDB, DONE = "pdb", "pdb-done"  # kinds of remote question (``agent/breakpoints``)
NO_FRAMES = "%debug: the interrupt stopped no remote code, so there are no remote frames to debug"


@dataclass
class Parked:
    """A remote thread waiting at a breakpoint no cell could prompt for."""

    number: int
    session: object
    where: str
    cause: str  # "job 3", "a cell" or "a notebook call"
    cell: str = None  # msg_id of the cell that caused it
    queued: bool = False  # parked while another host of its cell had the prompt: it prompts there after
    seen: bool = False  # the remote has listed it as parked
    in_job: bool = False  # the thread running the cell's job itself parked (a fan-out host's share)
    since: float = field(default_factory=time.monotonic)


class Debugging:
    """The notebook's side of remote debugging, one per loaded extension."""

    def __init__(self, shell, settings, running, jobs, sessions):
        self.shell, self.settings, self.running, self.jobs = shell, settings, running, jobs
        self.sessions = sessions
        self.parked = {}  # number -> Parked
        self._numbers = itertools.count(1)
        self._owner = None  # (cell msg_id, session name) at a pdb prompt now
        self._changed = threading.Condition()
        self._original = None

    def install(self):
        if self._original is None:
            self._original = self.shell.debugger
            self.shell.debugger = self.debugger
        self.running.debugging = self

    def uninstall(self):
        if self._original is not None:
            del self.shell.debugger  # back to the class's method
            self._original = None
        self.running.debugging = None

    # -- %debug, %pdb --------------------------------------------------------

    def debugger(self, force=False):
        """``InteractiveShell.debugger``: remote errors get a remote post-mortem."""
        if not (force or self.shell.call_pdb):
            return
        error = getattr(sys, "last_value", None)
        # an interrupted remote cell: its remote frames, never our waiting code's
        interrupted = isinstance(error, Interrupted)
        hosts = error.stopped_on() if interrupted else remote_hosts(error)
        if not hosts and not interrupted:
            return self._original(force)
        if threading.current_thread() is not threading.main_thread():
            return  # a background job's error, shown while no cell waits: %debug later
        if not hosts:
            print(NO_FRAMES)
        for session in hosts:
            self.post_mortem(session, "KeyboardInterrupt" if interrupted else None)

    def post_mortem(self, session, expect=None):
        """pdb on ``session``'s last remote exception, prompting in this cell
        (``expect``: only if it is of the type so named)."""
        if getattr(session, "state", None) != "connected":
            print(f"%debug: session {session.name} is {session.state}; its remote frames are gone")
            return
        if not session.call("post_mortem", expect, timeout=0):
            print(
                f"%debug: {session.name} keeps no remote exception (%rdebug --clear dropped it, "
                "or it was not raised by remote code)"
            )

    # -- remote pdb prompts --------------------------------------------------

    def ask(self, router, cause, parent, prompt, kind):
        """Answer a remote pdb's question ``kind`` (see ``agent/breakpoints``)
        for the session of ``router``: ``("ok", line)``, ``("park", number)``
        or ``("eof", why)``."""
        session = next((s for s in self.sessions if s.router is router), None)
        if session is None:
            return ("eof", REFUSED + "its session is closed")
        name = session.name
        if kind[-1]:  # pdb's output since its last question, into the cell of ``cause``
            session.output.write(((cause, "stdout", kind[-1]),))
        if kind[0] == DONE:
            self._release_prompt(name)
            return ("ok", "")
        where, number, in_job = kind[1], kind[2], kind[3] if len(kind) > 4 else False
        prompt = prompt.replace("(Pdb)", f"(Pdb {name})", 1)
        while True:
            why = self.running.refusal(parent)
            if why is None and self._job_of(parent) is not None:
                why = "a background job's cell does not wait for it"
            owner = None if why is not None else self._take_prompt(name)
            if why is None and owner is None:
                answer = self.running.ask(parent, prompt, False)
                if answer[0] != "ok":
                    self._release_prompt(name)  # no DONE follows an unanswered prompt
                if answer[0] == "ok" or self.running.refusal(parent) is None:
                    self.parked.pop(number, None)
                    return answer
                if self.running.interrupted(parent):
                    self.parked.pop(number, None)
                    return ("eof", INTERRUPTED)  # the interrupt ends this prompt: the remote quits
                continue  # the cell ended while asking: park
            if not self.settings.park_breakpoints:  # nothing parks: it fails at once
                return ("eof", REFUSED + (why or f"{owner} has the prompt (RSym.park_breakpoints is off)"))
            # no cell can prompt, or another host of this cell is at the prompt: park
            # (then, in the remote, holding nothing; woken when that prompt ends)
            note = "" if owner is None else f" (or it prompts here after {owner})"
            number = self._park(number, session, cause, where, parent, note, queued=owner is not None)
            self.parked[number].in_job = in_job
            return ("park", number)

    def _take_prompt(self, name):
        """One session at a time at the running cell's pdb prompt: None if
        ``name`` has it now, else the session that has it."""
        msg_id = self.running.current.msg_id if self.running.current else None
        with self._changed:
            owner = self._owner
            if owner is None or owner[0] != msg_id or owner[1] == name:
                self._owner = (msg_id, name)
                return None
        return owner[1]

    def _release_prompt(self, name):
        with self._changed:
            if self._owner is None or self._owner[1] != name:
                return
            cell = self._owner[0]
            self._owner = None
            self._changed.notify_all()
        self._wake_next(cell)

    def _wake_next(self, cell):
        """The first host of the running ``cell`` that parked while another
        had the prompt asks there again (its prompt comes up in the cell)."""
        running = self.running.current
        if running is None or running.msg_id != cell:
            return  # the cell has ended: they stay parked, %rdebug N attaches
        for entry in sorted(self.parked.values(), key=lambda p: p.number):
            if entry.queued and entry.cell == cell:
                try:
                    entry.session.notify("wake_breakpoint", entry.number)
                    return
                except Exception:
                    continue  # its session is gone: the next one

    def _park(self, number, session, seq, where, parent, note, queued=False):
        """Register a parked breakpoint (once: one line in the cell that caused it)."""
        if number in self.parked:
            self.parked[number].where, self.parked[number].queued = where, queued
            return number
        number = number or next(self._numbers)
        cell = ((parent or {}).get("header") or parent or {}).get("msg_id")
        cause = self._cause(parent)
        self.parked[number] = Parked(number, session, where, cause, cell, queued)
        line = f"breakpoint in {cause} on {session.name} ({where}); %rdebug {number} attaches{note}\n"
        session.output.write(((seq, "stdout", line),))  # into the cell that caused it
        return number

    def parked_sessions(self, parent):
        """The sessions whose share of the cell of ``parent`` waits parked at a breakpoint."""
        cell = ((parent or {}).get("header") or parent or {}).get("msg_id")
        return [e.session for e in list(self.parked.values()) if cell and e.cell == cell and e.in_job]

    def _job_of(self, parent):
        """The background job (``%%remote --bg``) whose cell ``parent`` is, or None."""
        msg_id = (parent or {}).get("msg_id")
        for job in self.jobs:
            fanout_parent = getattr(getattr(job, "_fanout", None), "parent", None) or {}
            if msg_id and (fanout_parent.get("header") or fanout_parent).get("msg_id") == msg_id:
                return job
        return None

    def _cause(self, parent):
        job = self._job_of(parent)
        if job is not None:
            return f"job {job.number}"
        return "a cell" if parent else "a notebook call"

    # -- %rdebug -------------------------------------------------------------

    def listing(self):
        """The parked breakpoints the remotes hold (one request per session)."""
        for session in {id(p.session): p.session for p in self.parked.values()}.values():
            try:
                held = {entry[0] for entry in session.call("parked")}
            except Exception:
                held = None  # the session is gone: so are its threads
            for number, entry in list(self.parked.items()):
                if entry.session is not session:
                    continue
                if held is None or (entry.seen and number not in held):
                    del self.parked[number]  # it went on
                elif number in held:
                    entry.seen = True  # (one not held yet may still be on its way to park)
        return sorted((p for p in self.parked.values() if p.seen), key=lambda p: p.number)

    def attach(self, number):
        """Bring parked breakpoint ``number``'s prompt into this cell; returns
        the remote's answer ("released", "parked", "gone")."""
        entry = self.parked.get(number)
        if entry is None:
            return "gone"
        state = entry.session.call("attach_breakpoint", number, timeout=0)
        if state in ("released", "gone"):
            self.parked.pop(number, None)
        return state

    def release(self, session):
        """Let every thread parked on ``session`` go on (before it closes)."""
        numbers = [n for n, p in self.parked.items() if p.session is session]
        for number in numbers:
            del self.parked[number]
        if numbers and session.state == "connected":
            try:
                session.call("release_breakpoints")
            except Exception:
                pass  # closing anyway: the remote lets them go when the link ends


def remote_hosts(error):
    """The sessions whose remote exception ``error`` is (several for a fan-out cell)."""
    errors = getattr(error, "errors", None)
    found = list(errors.values()) if isinstance(errors, dict) else [error]
    sessions = [getattr(e, "session", None) for e in found if isinstance(e, RemoteError)]
    return [s for s in sessions if s is not None]
