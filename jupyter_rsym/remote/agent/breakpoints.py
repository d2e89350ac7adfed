"""Breakpoints: remote pdb prompts in the notebook, post-mortems, parked threads.

* ``post_mortem`` opens pdb on the frames of the link's last exception
  (kept by ``lasterror``).
* ``breakpoint()`` and ``pdb.set_trace()`` in a thread working for a
  notebook open ``RemotePdb``; each command is asked for through the link's
  ``ask`` (the notebook's ``StdinBridge``) with the kind ``("pdb", where,
  number, whether a job's own thread asks, pdb's output since the last
  question)``: one round trip a step.  The notebook answers with the line,
  or ``("park", N)`` when no cell can take input: the thread then waits
  here (``Parked``), never holding the connection, until ``attach(N)``
  (``%rdebug N``) lends it the attaching request's route (prompts and
  output go to that cell), or ``release`` lets it go on as after ``c``.  A
  parked thread of a link that ends goes on too.  A fan-out host parked
  while another host had the prompt is woken (``wake``) when that prompt
  ends and asks its own cell again; an interrupt of that cell leaves it
  parked (the notebook does not cancel its job).
"""

import pdb
import sys
import threading
import time

from . import inputs, interrupts, lasterror, remotepdb, routes, tags

PDB, DONE = "pdb", "pdb-done"  # kinds of question for the notebook's ask
CHECK = 1.0  # seconds between a parked thread's checks that its link lives
_parked = {}  # (id(link), number) -> Parked
_woken = set()  # (id(link), number) woken before its thread parked (the wake overtook it)
_lock = threading.Lock()
_original = {}


# -- post-mortem (the kept exception: see ``lasterror``) ---------------------


def post_mortem(expect=None):
    """pdb on the kept exception's frames, prompting in the calling request's
    cell; False if none is kept (or it is not of the type named ``expect``:
    an interrupt that stopped no user code leaves an older one kept)."""
    link, cause = routes.current()
    kept = lasterror.of(link)
    if kept is None or expect not in (None, type(kept[0]).__name__):
        return False
    exc, tb = kept
    prompter = Prompter((link, cause), parkable=False)
    debugger = remotepdb.RemotePdb(prompter.read, prompter.finished)
    debugger.hop_text = remotepdb.hop_frames(exc)
    prompter.debugger = debugger
    debugger.reset()
    try:
        debugger.interaction(None, tb)
    finally:
        prompter.finished()
    return True


# -- breakpoint() ------------------------------------------------------------


def _start(route, frame):
    prompter = Prompter(route, parkable=_may_park())
    debugger = prompter.debugger = remotepdb.RemotePdb(prompter.read, prompter.finished)
    debugger.set_trace(frame)


def _working_route():
    route = routes.current()
    return None if route is None or route[0].dead or route[0].ask is None else route


def _hook(*args, **kwargs):
    """``breakpoint()``: RemotePdb for threads working for a notebook."""
    route = _working_route()
    if route is None:
        return _original["hook"](*args, **kwargs)
    _start(route, sys._getframe(1))


def _pdb_set_trace(*, header=None):
    """``pdb.set_trace()``: RemotePdb for threads working for a notebook."""
    route = _working_route()
    if route is None:
        return _original["set_trace"](header=header)
    if header is not None:
        print(header)
    _start(route, sys._getframe(1))


def _in_job():
    """Whether the calling thread runs a job's cell itself (a fan-out host's
    share, a ``--bg`` cell), not a thread that cell started."""
    return threading.current_thread().name == "jupyter-rsym job"


def _may_park():
    """A thread serving a notebook request must not park: it would hold the
    connection (a job's thread runs a cell, it may)."""
    serving = getattr(tags._dispatching, "stack", None)
    return not serving or threading.current_thread().name == "jupyter-rsym job"


def install():
    """``breakpoint()`` and ``pdb.set_trace`` open RemotePdb (once per process)."""
    with _lock:
        if "hook" in _original:
            return
        _original["hook"], sys.breakpointhook = sys.breakpointhook, _hook
        _original["set_trace"], pdb.set_trace = pdb.set_trace, _pdb_set_trace


# -- prompts and parking -------------------------------------------------------


class Parked:
    """A thread waiting at a breakpoint that no cell could prompt for."""

    def __init__(self, link, number, where):
        self.link, self.number, self.where = link, number, where
        self.since = time.time()
        self.thread = threading.current_thread()
        self.route = None  # the attaching request's route, while attached
        self.released = False
        self.retry = False  # asks its own cell again (a fan-out host whose turn came)
        self.wake = threading.Event()  # attached, released or retrying
        self.detached = threading.Event()  # the attachment ended


class Prompter:
    """Reads one remote pdb's commands from the notebook, parking when told to."""

    def __init__(self, route, parkable):
        self.route = route
        self.parkable = parkable
        self.debugger = None
        self.entry = None
        self.asked = None  # the route of the last prompt answered
        self._token = None

    def read(self, prompt):
        while True:
            entry = self.entry
            route = entry.route if entry is not None and entry.route else self.route
            where = remotepdb.where(self.debugger.curframe) if self.debugger.curframe else "?"
            try:
                number = entry.number if entry else 0
                with interrupts.shield():
                    status, value = route[0].ask(
                        route[1], prompt, False, (PDB, where, number, _in_job(), self._output())
                    )
            except KeyboardInterrupt:  # its job was cancelled (the cell interrupted): end as after q
                self._forget()
                return "q"
            except Exception as exc:
                if entry is not None and entry.route:
                    self._detach()  # the attaching cell was interrupted: park again
                    continue
                if inputs.INTERRUPTED in str(exc):
                    return "q"  # an interrupt ends the prompt and the cell's work
                raise EOFError("pdb: the notebook did not answer (%s)" % type(exc).__name__) from None
            if status == "ok":
                self.asked = route
                if entry is not None and not entry.route:
                    self._forget()  # its own cell took it up: at the prompt, not parked
                return value
            if entry is not None and entry.route:
                self._detach()  # the attaching cell cannot prompt any more: park again
                continue
            if status == "park" and self.parkable:
                try:
                    if not self._park(value, where):
                        return "c"  # released
                except KeyboardInterrupt:  # its job was cancelled while parked
                    self._forget()
                    return "q"
                continue
            if inputs.INTERRUPTED in str(value):
                self._forget()
                return "q"  # the cell was interrupted at this prompt: end as after q
            raise EOFError(value)

    def _park(self, number, where):
        """Wait until attached or woken to ask its own cell again (True), or
        released (False)."""
        link = self.route[0]
        entry = self.entry
        if entry is None:
            entry = self.entry = Parked(link, number, where)
            with _lock:
                _parked[(id(link), number)] = entry
                if (id(link), number) in _woken:
                    _woken.discard((id(link), number))
                    entry.retry = True
                    entry.wake.set()
        entry.where = where
        while not entry.wake.wait(CHECK):
            if link.dead:  # its session ended: go on
                entry.released = True
                break
        entry.wake.clear()
        if entry.retry and not entry.released and entry.route is None:
            entry.retry = False  # its turn at its own cell's prompt: ask there again
        elif entry.released or entry.route is None:
            self._forget()
            return False
        else:
            self._token = routes.enter(entry.route)  # prompts and output go to the attaching cell
        debugger = self.debugger
        debugger.print_stack_entry(debugger.stack[debugger.curindex])
        return True

    def _detach(self, entry=None):
        entry = entry or self.entry
        entry.route = None
        if self._token is not None:
            routes.leave(self._token)
            self._token = None
        entry.detached.set()

    def _forget(self):
        entry, self.entry = self.entry, None
        if entry is None:
            return
        with _lock:
            _parked.pop((id(entry.link), entry.number), None)
        if entry.route is not None:
            self._detach(entry)

    def _output(self):
        return self.debugger.take_output() if self.debugger is not None else ""

    def finished(self):
        """The user let the code go on: tell the notebook this prompt is over."""
        route, self.asked = self.asked, None
        self._forget()
        if route is not None and not route[0].dead:
            try:
                route[0].ask(route[1], "", False, (DONE, self._output()))
            except Exception:
                pass  # the notebook is gone: nobody waits for the end


def attach(number):
    """Lend the calling request's route to parked breakpoint ``number`` and
    wait until its user lets it go on (``"released"``) or the prompt ends
    otherwise (``"parked"`` again); ``"gone"`` if no such breakpoint."""
    link = routes.current_link()
    with _lock:
        entry = _parked.get((id(link), number))
    if entry is None or entry.route is not None:
        return "gone" if entry is None else "attached elsewhere"
    entry.detached.clear()
    entry.route = routes.current()
    entry.wake.set()
    # short waits: an interrupt lands between them (the parked thread then
    # finds the cell gone at its next prompt and parks again)
    while not entry.detached.wait(0.2):
        if not entry.thread.is_alive():  # it died: nothing to wait for
            break
    return "released" if entry.released or (id(link), number) not in _parked else "parked"


def wake(number):
    """Parked breakpoint ``number`` of the calling request's link asks its own
    cell again (a fan-out host parked while another host had the prompt)."""
    key = (id(routes.current_link()), number)
    with _lock:
        entry = _parked.get(key)
        if entry is None:
            if len(_woken) < 1000:  # bounded: a wake for a thread that never parks
                _woken.add(key)
            return
        if entry.route is None:
            entry.retry = True
            entry.wake.set()


def release(numbers=None):
    """Let parked threads of the calling request's link go on (all, or those
    ``numbers``); returns how many."""
    link = routes.current_link()
    with _lock:
        found = [
            e
            for (lid, n), e in _parked.items()
            if lid == id(link) and (numbers is None or n in numbers) and e.route is None
        ]
    for entry in found:
        entry.released = True
        entry.wake.set()
    return len(found)


def parked():
    """The calling request's link's parked breakpoints: (number, where, thread, since) tuples."""
    link = routes.current_link()
    with _lock:
        return tuple(
            (n, e.where, e.thread.name, e.since)
            for (lid, n), e in sorted(_parked.items(), key=lambda i: i[0][1])
            if lid == id(link)
        )
