"""Resuming a session after its link dropped: the notebook's side.

rpyc has no reconnection, and we add no protocol below it: a resumed
session is a new rpyc connection that re-attaches to the session the
server kept (``agent/resumable.py``; only ``jupyter-rsym serve`` keeps
sessions, for its ``--resume-grace``).  At connect time the agent hands the
notebook a ticket (the session's id and secret); the next use of the
session after a drop (any call, ``%%remote``, ``%rconnections``, or
``%rconnect`` to the same address under the same name) opens new
connections with the same transport and presents it, with the number of
the last output batch the notebook has and the notebook functions to
re-bind.  What the notebook keeps across the drop: the session's identity,
its ``Router`` (so the causes of replayed output still name their cells:
every connection of a session numbers its requests in one sequence), its
output sink (which skips batches it has seen), and its stable functions.

Reaching the server again takes a few tries with a short backoff, bounded
by ``RSym.resume_window`` seconds; a refused connection (nothing listens:
the server is gone) fails at once.  Every outcome is one line in the cell.
"""

import inspect
import itertools
import sys
import threading
import time
from functools import partial

from rpyc.core import consts
from rpyc.lib import get_id_pack

from ..remote.bundle import probe_expression
from .attach import Attached, begin, evaluator
from .errors import ConnectFailed, LinkDropped, RSymError, SessionExpired, SessionLost

BACKOFF = (0.1, 0.25, 0.5, 1.0)  # pauses between tries, then the last one repeats

RESUMED = "Resumed {name} on {address}: the link had dropped {ago}; remote output from meanwhile goes to its cells"
WAITING = (
    "the link to {address} dropped while this cell waited; the remote work goes on and its "
    "output will land here when {name} resumes (its next use resumes it)"
)
NOT_SENT = "the link to {address} had dropped; {name} resumes on its next use: run the cell again"
STALE = (
    "this remote object came over a connection of {name} that dropped {ago}, and it is gone with "
    "that connection; fetch it again from the session, e.g. {name}.namespace['x'] or {name}.modules.os"
)
GONE = "the session {name} on {address} is gone: {why}; %rconnect {rconnect} --as {name} starts a new one"
UNREACHABLE = (
    "lost the connection to {address} and could not resume {name} ({why}); "
    "%rconnect {rconnect} --as {name} to reconnect"
)
NOT_KEPT = {
    "stock": "a stock rpyc_classic keeps no session: resuming needs jupyter-rsym serve",
    "off": "this jupyter-rsym serve keeps no session: it runs with --resume-grace 0",
    "version": "the server runs another jupyter_rsym version: resuming needs the same on both sides",
}


def ago(since):
    """``"3 s ago"`` for a ``time.monotonic()`` stamp (None: "a moment ago")."""
    if since is None:
        return "a moment ago"
    seconds = time.monotonic() - since
    return f"{seconds:.0f} s ago" if seconds < 120 else f"{seconds / 60:.0f} min ago"


class Ticket:
    """What resuming a session takes, as the agent handed it over (see
    ``agent.resumable.Session.ticket``): the id and secret, the server's grace
    period, and the session's ``stable`` and ``end`` on the current connection."""

    def __init__(self, ticket):
        self.id, self.secret, self.grace, self.stable, self.end = ticket


def kept(answer):
    """``(Ticket or None, why not)`` from what ``agent.attach`` returned last."""
    if isinstance(answer, str):
        return None, answer
    return Ticket(answer), None


def is_function(value):
    """Whether ``value`` is handed over as a stable function (see ``StableRefs``)."""
    return inspect.isroutine(value) or isinstance(value, partial)


class StableRefs:
    """Notebook functions handed over under stable ids (``-i``, ``%rpush --ref``).

    The remote holds a stand-in for each (``agent.resumable.StableRef``);
    when the session resumes, the functions are handed over again and the
    stand-ins call them over the new connection.  A function keeps the cell
    it was handed over from for its output (``pinned``: rpyc object keys ->
    parent, read by ``routing.OriginTrackingObjects``), also when the
    resume hands it over from another cell.
    """

    def __init__(self):
        self._ids = {}  # id(function) -> stable id
        self._functions = {}  # stable id -> function
        self.pinned = {}
        self.stubs = {}  # stable id -> the remote stand-in, on the current connection

    def add(self, func, parent):
        """The stable id of ``func``, handed over (again) from ``parent``."""
        ref_id = self._ids.get(id(func))
        if ref_id is None:
            ref_id = self._ids[id(func)] = len(self._ids) + 1
            self._functions[ref_id] = func
        if parent is not None:
            self.pinned[get_id_pack(func)] = parent
        return ref_id

    def pairs(self):
        """((stable id, function), ...) to hand over when resuming."""
        return tuple(self._functions.items())


def reconnect(attempt, transport, window):
    """Call ``attempt()`` until it returns, for at most ``window`` s.

    ``transport.prepare_resume()`` runs before each try.  A ``ConnectFailed``
    that says ``refused`` ends the tries at once, as does any error that is
    not ``ConnectFailed`` (the server answered, and said no).  Returns what
    ``attempt`` returned; raises the last error.
    """
    deadline = time.monotonic() + window
    for pause in itertools.chain(BACKOFF, itertools.repeat(BACKOFF[-1])):
        transport.prepare_resume()
        try:
            return attempt()
        except ConnectFailed as exc:
            if exc.refused or time.monotonic() + pause >= deadline:
                raise
        time.sleep(pause)


def resume_session(ticket, received, refs, gone):
    """What ``attach.attach`` does for a new session, for the kept session of
    ``ticket``: a function of ``(conn, opening, emit, options, timeout)`` that
    re-attaches the main connection and finishes the side one.  The server
    gets ``received`` (the last output batch the notebook has) and ``refs``
    (its stable functions), and replays the rest of the output before it
    answers; ``gone(why)`` is the line if it no longer keeps the session.

    As few round trips as a connect (``attach.py``, on both connections at
    once): the root, the agent's ``resume`` (which tells the module type
    too), and the resume, whose reply holds all the session uses.
    """

    def set_up(conn, opening, emit, options, timeout):
        control, control_root, root, interrupt = begin(conn, opening, timeout)
        try:
            resume_there, _, conn.module_type = evaluator(conn, root)(probe_expression("resume"))
            if resume_there is None:
                raise SessionExpired(gone("the server does not know it (was it restarted?)"))
            answer = conn.sync_request(
                consts.HANDLE_CALL, resume_there, (root, ticket.id, ticket.secret, emit, received, refs, options), ()
            )
            if answer[0] != "resumed":
                raise SessionExpired(gone(answer[1]))
            return Attached(control, control_root.value, interrupt.value[0], dict(answer[1]), "")
        except BaseException:
            control.close()
            raise

    return set_up


class Keeping:
    """Whether and how the server keeps one session across a dropped link:
    its ticket (None: not kept, ``not_kept`` says why) and its stable functions.
    A ``RemoteSession`` holds one as ``keeping``."""

    def __init__(self):
        self.ticket = None
        self.not_kept = None  # a key of NOT_KEPT
        self.refs = StableRefs()
        self.lock = threading.Lock()  # one resume at a time

    def update(self, answer):
        """Take what ``agent.attach`` (or a resume) said about keeping the session."""
        self.ticket, self.not_kept = kept(answer)
        self.refs.stubs.clear()  # stand-ins fetched over an older connection

    def why_not(self):
        """One clause saying why the server does not keep the session ('' if it does or nobody knows)."""
        return NOT_KEPT.get(self.not_kept, "")


def unusable(session):
    """The one line for using ``session`` (a ``RemoteSession``) that is closed, or lost for good."""
    if session.state == "closed":
        return SessionLost(f"session {session.name!r} is closed; %rconnect {session.rconnect_args} to reconnect")
    why = session.keeping.why_not()
    return SessionLost(
        f"lost the connection to {session.address} ({session.lost_reason}); "
        f"%rconnect {session.rconnect_args} --as {session.name} to reconnect" + (f"; {why}" if why else "")
    )


def tell_idle_drop(session, router):
    """The link dropped while no request waited (the kernel idle, or running
    local code): nobody would hear of it before the next use, so one line goes
    to the last cell that used the session."""
    token = router.enter(router.last_parent())
    try:
        print(idle_drop(session), file=sys.stderr, flush=True)
    finally:
        router.leave(token)


def idle_drop(session):
    """The line a session's last cell gets when its link dropped while idle."""
    where = f"{session.name}: the link to {session.address} dropped while idle ({session.lost_reason})"
    if session.keeping.ticket is not None:
        return f"{where}; its next use resumes the session"
    why = session.keeping.why_not()
    return f"{where}; %rconnect {session.rconnect_args} --as {session.name} reconnects" + (f"; {why}" if why else "")


def dropped(session):
    """What a request the link of ``session`` dropped under fails with."""
    if session.keeping.ticket is None:
        return unusable(session)
    return LinkDropped(WAITING.format(address=session.address, name=session.name))


def resume(session):
    """Re-attach ``session`` (a ``RemoteSession`` whose server keeps it) after
    its link dropped; returns the line that says so.  Uses the session's
    public API only; see ``RemoteSession.resume``."""
    keeping = session.keeping
    lost_at = session.lost_at or time.monotonic()

    def gone(why):
        return GONE.format(name=session.name, address=session.address, why=why, rconnect=session.rconnect_args)

    try:
        reconnect(
            lambda: session.reopen(resume_session(keeping.ticket, session.output.received, keeping.refs.pairs(), gone)),
            session.transport,
            session.settings.resume_window,
        )
    except SessionExpired as exc:
        keeping.ticket, keeping.not_kept, session.lost_reason = None, None, "session gone"
        raise exc from None
    except RSymError as exc:
        raise SessionLost(
            UNREACHABLE.format(address=session.address, name=session.name, why=exc, rconnect=session.rconnect_args)
        ) from None
    return RESUMED.format(name=session.name, address=session.address, ago=ago(lost_at))


def stable_ref(session, func):
    """See ``RemoteSession.stable_ref``."""
    keeping = session.keeping
    if keeping.ticket is None:
        return func
    ref_id = keeping.refs.add(func, session.router.current())
    stub = keeping.refs.stubs.get(ref_id)
    if stub is None:
        name = getattr(func, "__name__", None) or getattr(getattr(func, "func", None), "__name__", "function")
        stub = keeping.refs.stubs[ref_id] = session.call_target(
            lambda: (keeping.ticket.stable, (ref_id, func, name)), None
        )
    return stub
