"""Session groups: one notebook name for many sessions (``%rconnect dask://`` makes one).

``--on NAME`` runs a cell on every live member of the group NAME, ``--on
NAME/MEMBER`` on one.  Members come and go while the notebook runs: a
member announced later (a Dask worker that joined) is connected by the
group's one background thread, so no cell waits for it and the kernel has
one thread per group, not per member; a member whose link dropped (its
worker died) leaves the group.  What changed is said in one line at the
next use of the group, not when it happens (the notebook may be idle, or
another cell may be running).
"""

import queue
import re
import threading
from concurrent.futures import ThreadPoolExecutor

from ..link.errors import RSymError

CONNECTING_AT_ONCE = 8  # members connected in parallel by %rconnect (threads that end with it)


class SessionGroup:
    """Sessions under one name (see the module docstring).

    ``connect_member(announcement)`` opens a member's session (its name is
    the member's); ``key(announcement)`` tells two announcements of the same
    server apart from a new one; ``close_source()`` releases what feeds the
    group (the Dask plugin) when it is closed.  ``group["w1"]`` is a
    member, ``group.sessions`` the connected ones.
    """

    def __init__(self, name, address, connect_member, key, close_source=lambda: None, about=""):
        self.name = name
        self.address = address
        self.about = about  # how it is secured, for %rconnections
        self.state = "connected"
        self._connect, self._key, self._close_source = connect_member, key, close_source
        self._members = {}
        self._claimed = set()  # keys of servers connected or being connected
        self._said_failed = set()  # members whose failed setup %rconnect reported
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._left, self._joined, self._failed = [], [], []  # said at the next use
        self._queue = queue.SimpleQueue()
        self._thread = None
        self._ready = threading.Event()  # connect_all has claimed what it connects

    # -- members --------------------------------------------------------------

    def connect_all(self, announcements, failed=()):
        """Connect every announced member at once (a few at a time); returns
        ``{member name: error}`` for those that could not be reached.
        ``failed``: members whose setup failed, which ``%rconnect`` reports."""
        self._said_failed.update(failed)
        todo = [a for a in announcements if self._claim(a)]
        self._ready.set()  # announcements of the same servers are now skipped
        failures = {}
        if not todo:
            return failures
        with ThreadPoolExecutor(min(CONNECTING_AT_ONCE, len(todo)), "jupyter-rsym connect") as pool:
            for announcement, outcome in zip(todo, pool.map(self._try_connect, todo)):
                if isinstance(outcome, BaseException):
                    failures[str(announcement.get("name"))] = outcome
                else:
                    self._keep(outcome)
        return failures

    def announce(self, announcement):
        """A member's server announced itself (any thread): connect it in the
        group's background thread."""
        if self.state != "connected":
            return
        self._queue.put(announcement)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name=f"jupyter-rsym group {self.name}")
                self._thread.start()

    def _run(self):
        self._ready.wait()  # %rconnect connects the first ones itself
        while True:
            announcement = self._queue.get()
            if announcement is None or self.state != "connected":
                return
            if "error" in announcement:  # its plugin could not start a server there
                self._setup_failed(announcement)
                continue
            if not self._claim(announcement):
                continue
            outcome = self._try_connect(announcement)
            with self._lock:
                if isinstance(outcome, BaseException):
                    self._failed.append((str(announcement.get("name")), outcome))
                    continue
            self._keep(outcome, joined=True)

    def _setup_failed(self, announcement):
        with self._lock:
            if announcement.get("worker") in self._said_failed:
                self._said_failed.discard(announcement["worker"])  # %rconnect said it; a later one is new
                return
            self._failed.append((str(announcement.get("name")), announcement["error"]))

    def _claim(self, announcement):
        key = self._key(announcement)
        with self._lock:
            if key in self._claimed:
                return False
            self._claimed.add(key)
            return True

    def _try_connect(self, announcement):
        try:
            return self._connect(announcement)
        except (RSymError, OSError) as exc:
            return exc

    def _keep(self, session, joined=False):
        with self._lock:
            if self.state != "connected":
                old = session  # closed meanwhile: this one goes too
            else:
                old = self._members.pop(session.name, None)
                self._members[session.name] = session
                if joined:
                    self._joined.append(session.name)
                if old is not None:
                    self._left.append((old.name, "replaced by a new process"))
            self._changed.notify_all()
        if old is not None:
            old.close()

    def live(self, say=print):
        """The connected members, after dropping lost ones; says in one line
        what changed since the last use (``say``)."""
        with self._lock:
            for name, session in list(self._members.items()):
                if session.state != "connected" or session.connection is None or session.connection.closed:
                    del self._members[name]
                    self._left.append((name, session.lost_reason or session.state))
            left, joined, failed = self._left, self._joined, self._failed
            self._left, self._joined, self._failed = [], [], []
            members = [self._members[n] for n in sorted(self._members, key=_natural)]
        parts = []
        if left:
            parts.append(f"{count_of(left, 'worker')} left ({_named(left)})")
        if joined:
            parts.append(f"{count_of(joined, 'worker')} joined ({', '.join(joined)})")
        if failed:
            parts.append(f"could not connect {count_of(failed, 'new worker')} ({_named(failed)})")
        if parts:
            say(f"{self.name}: " + "; ".join(parts))
        return members

    def wait_for_members(self, count, timeout=60.0):
        """Wait until ``count`` members are connected (workers that joined get
        theirs within seconds), as ``Client.wait_for_workers`` does for workers;
        TimeoutError after ``timeout`` s."""

        def enough():
            return sum(1 for s in self._members.values() if s.state == "connected") >= count

        with self._changed:
            if not self._changed.wait_for(enough, timeout):
                raise TimeoutError(f"{self.name}: fewer than {count} connected workers after {timeout:g} s")

    def member(self, name):
        """The member ``name`` (LookupError if there is none)."""
        with self._lock:
            session = self._members.get(name)
        if session is None:
            raise LookupError(f"{self.name} has no member {name!r}; %rconnections -v lists them")
        return session

    @property
    def sessions(self):
        """The members, connected or not (as of now)."""
        with self._lock:
            return [self._members[n] for n in sorted(self._members, key=_natural)]

    def __getitem__(self, name):
        return self.member(name)

    def __iter__(self):
        return iter(self.sessions)

    def __len__(self):
        return len(self.sessions)

    def summary(self):
        """``(state line, detail)`` for %rconnections."""
        members = self.sessions
        up = sum(1 for s in members if s.state == "connected")
        states = f"{up} connected" + (f", {len(members) - up} lost" if up != len(members) else "")
        return self.state, f"group of {count_of(members, 'worker')}: {states}" + (
            f"; {self.about}" if self.about else ""
        )

    # -- lifecycle ------------------------------------------------------------

    def close(self):
        """Close every member, stop the background thread and release the
        source (idempotent)."""
        with self._lock:
            if self.state == "closed":
                return
            self.state = "closed"
            members, self._members = list(self._members.values()), {}
            thread = self._thread
        self._queue.put(None)
        self._ready.set()
        for session in members:
            session.close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        self._close_source()

    def __repr__(self):
        return f"<SessionGroup {self.name!r} {self.address}: {self.summary()[1]}>"


def _natural(name):
    """``w2`` before ``w10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def count_of(items, noun):
    """``"3 workers"``, ``"1 worker"``."""
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _named(pairs):
    return ", ".join(f"{name}: {str(why).splitlines()[0] if str(why) else type(why).__name__}" for name, why in pairs)


class Groups:
    """The notebook's groups by name."""

    def __init__(self):
        self._groups = {}

    def add(self, group):
        old = self._groups.pop(group.name, None)
        self._groups[group.name] = group
        if old is not None and old is not group:
            old.close()

    def get(self, name):
        return self._groups.get(name)

    def remove(self, name):
        group = self._groups.pop(name)
        group.close()
        return group

    def close_all(self):
        while self._groups:
            _, group = self._groups.popitem()
            group.close()

    def __iter__(self):
        return iter(list(self._groups.values()))

    def __contains__(self, name):
        return name in self._groups

    def expand(self, names, single):
        """The sessions ``--on names`` means when it names a group (``NAME``:
        its live members, ``NAME/MEMBER``: one of them), mixed with plain
        sessions (``single(name)``); None if it names no group."""
        wanted = [n.strip() for n in (names or "").split(",") if n.strip()]
        if not any(n.split("/", 1)[0] in self._groups for n in wanted):
            return None
        found = []
        for item in wanted:
            group_name, slash, member = item.partition("/")
            group = self._groups.get(group_name)
            if group is None:
                found.append(single(item))
            elif slash:
                found.append(group.member(member))
            else:
                members = group.live()
                if not members:
                    raise LookupError(f"{group_name}: no connected worker left")
                found.extend(members)
        return list({id(s): s for s in found}.values())

    def live_members(self):
        """Every connected member of every group (``--on all``)."""
        return [s for group in self for s in group.live()]
