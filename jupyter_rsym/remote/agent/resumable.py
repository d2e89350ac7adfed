"""Sessions that outlive their connection: resuming after a dropped link.

rpyc has no reconnection: when a connection ends, its proxies die in both
directions.  What survives is defined here, at the level of a notebook
*session*, and only where the server keeps sessions: ``jupyter-rsym serve``
puts a ``Registry`` in each connection's rpyc config (``CONFIG_KEY``); a
stock ``rpyc_classic`` has none, and there a dropped link stays dropped.

A kept ``Session`` owns what a notebook built up, apart from any
connection: the classic namespace (the first connection's, handed to every
later one), the output ``capture.Link`` (numbered batches, kept while the
link is down, see ``capture``), and the notebook functions handed over with
``-i`` / ``%rpush --ref`` under stable ids.  The remote gets a
``StableRef`` for each: calling it calls the notebook function over the
session's current connection, and fails at once with one clear line while
the link is down.  A new connection re-attaches with the session's id and
secret (``resume``): the namespace is handed over, the functions re-bound,
and the output the notebook has not acknowledged replayed, in order.

A session left detached for the registry's grace period expires: its
threads keep running, but their output is dropped and their callbacks
fail.  The server logs each step.
"""

import hmac
import secrets
import threading
import time

from . import capture, routes, tags

CONFIG_KEY = "rsym_sessions"  # rpyc config key under which a server offers its Registry
HANDLE_CLOSE = 2  # rpyc.core.consts
LINK_DOWN = (
    "the link to the notebook is down: {name} is unreachable until the notebook "
    "resumes the session (its next use of it does)"
)
ENDED = "the notebook session {how}; {name} is gone"
CLOSED = "was closed by the notebook"
EXPIRED = "expired (nobody resumed it within %g s)"
DROPPED_OBJECT = (
    "this notebook object belonged to a connection that dropped; only functions handed "
    "over with -i or %rpush --ref are re-bound when the session resumes"
)


class SessionGone(LookupError):
    """No kept session answers to that id and secret."""


class DroppedObject(ConnectionError):
    """A proxy of a notebook object from a connection that dropped was used."""


class Session:
    """A notebook session kept by the server (see the module docstring)."""

    def __init__(self, registry, conn, service, link):
        self.registry = registry
        self.id = registry.new_id()
        self.secret = secrets.token_hex(16)
        self.namespace = service.namespace
        self.link = link
        self.conn = conn
        self.peer = registry.peer_of(conn)
        self.refs = {}  # stable id -> the notebook function, a proxy on the current connection
        self.stubs = {}  # stable id -> its StableRef
        self.detached_at = None
        self.ended = None  # why the session is over, once it is
        self._lock = threading.Lock()
        link.on_failed = self._link_failed

    @property
    def ticket(self):
        """What the notebook keeps to resume: (id, secret, grace seconds, stable, end)."""
        return (self.id, self.secret, self.registry.grace, self.stable, self.end)

    def stable(self, ref_id, func, name):
        """The remote stand-in for notebook function ``func`` under ``ref_id``:
        it outlives the connection that ``func`` came over."""
        with self._lock:
            self.refs[ref_id] = func
            stub = self.stubs.get(ref_id)
            if stub is None:
                stub = self.stubs[ref_id] = StableRef(self, ref_id, name)
            return stub

    def call(self, ref_id, name, args, kwargs):
        with self._lock:
            ended, attached, func = self.ended, self.detached_at is None, self.refs.get(ref_id)
        if ended is not None:
            raise ConnectionError(ENDED.format(how=ended, name=name))
        if not attached or func is None:
            raise ConnectionError(LINK_DOWN.format(name=name))
        try:
            return func(*args, **kwargs)
        except (EOFError, DroppedObject):  # the link dropped during the call
            raise ConnectionError(LINK_DOWN.format(name=name)) from None

    def attach(self, conn, service, emit, refs, received):
        """Re-attach to ``conn`` (the one serving ``service``): hand it the
        namespace, re-bind ``refs`` ((stable id, function) pairs), forget the
        batches the notebook has (up to ``received``) and replay the rest."""
        with self._lock:
            if self.ended is not None:  # expired while the notebook came back
                raise SessionGone("it %s" % self.ended)
            old, self.conn, self.detached_at = self.conn, conn, None
            self.refs.update(refs)
        service.namespace = self.namespace
        tags.patch_connection(conn, self.link)
        if old is not None and old is not conn:  # the notebook moved on before we noticed
            _disown(old)
            _shut(old)
        self.link.acknowledge(received)
        self.link.attach(conn, emit)  # replays, as nested requests of this resume

    def detach(self, conn, why):
        """``conn`` is gone; returns True if it was this session's connection."""
        with self._lock:
            if self.conn is not conn or self.ended is not None:
                return False
            self.conn, self.detached_at = None, time.monotonic()
        self.link.detach(conn)
        _disown(conn)
        self.registry.detached(self, why)
        return True

    def end(self, how=CLOSED):
        """The session is over (the notebook closed it, or it expired)."""
        with self._lock:
            if self.ended is not None:
                return
            self.ended = how
            self.refs.clear()
            self.namespace = None
        self.link.end()
        self.registry.ended(self, how)

    def _link_failed(self, conn):
        """A batch could not be shipped: the connection is broken; drop it so
        the notebook notices and resumes."""
        if self.detach(conn, "output could not be delivered"):
            _shut(conn)


class StableRef:
    """A notebook function as the remote holds it when handed over with
    ``-i`` / ``%rpush --ref`` to a server that keeps sessions: calls go to
    the notebook over whichever connection the session has now."""

    def __init__(self, session, ref_id, name):
        self._rsym_session = session
        self._rsym_id = ref_id
        self.__name__ = self.__qualname__ = name

    def __call__(self, *args, **kwargs):
        return self._rsym_session.call(self._rsym_id, self.__name__, args, kwargs)

    def __getattr__(self, name):
        if name.startswith("_rsym"):
            raise AttributeError(name)
        with self._rsym_session._lock:
            func = self._rsym_session.refs.get(self._rsym_id)
        if func is None:
            raise AttributeError(name)
        return getattr(func, name)

    def __repr__(self):
        return "<notebook function %s>" % self.__name__


class Registry:
    """The sessions a server keeps: ``grace`` seconds after their link drops
    (0: none), with up to ``keep_bytes`` characters of output each.

    ``log(text)`` reports each step; ``on_change()`` runs after a session
    ends (the server's ``--exit-when-idle`` looks then).
    """

    def __init__(self, grace=600.0, keep_bytes=8 << 20, log=None, on_change=None):
        self.grace = grace
        self.keep_bytes = keep_bytes
        self.log = log or (lambda text: None)
        self.on_change = on_change or (lambda: None)
        self.sessions = {}  # id -> Session
        self.expired = {}  # id -> why, for the sessions that ended (the most recent only)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._timer = None

    def __len__(self):
        return len(self.sessions)

    def new_id(self):
        """A random id (sequential ones would tell a client how many others came)."""
        while (session_id := secrets.token_hex(6)) in self.sessions:
            pass
        return session_id

    @staticmethod
    def peer_of(conn):
        try:
            host, port = conn._config["endpoints"][1][:2]
            return "%s:%s" % (host, port)
        except Exception:
            return "?"

    def open(self, conn, service, link):
        """Keep a new session for the notebook connection ``conn``."""
        session = Session(self, conn, service, link)
        with self._lock:
            self.sessions[session.id] = session
        self.log("session %s opened by %s" % (session.id, session.peer))
        return session

    def take(self, session_id, secret):
        """The kept session with that id and secret; ``SessionGone`` says why not."""
        with self._lock:
            session = self.sessions.get(session_id)
            why = self.expired.get(session_id)
        if session is None or not hmac.compare_digest(str(secret), session.secret):
            if why is not None:
                raise SessionGone("it %s" % why)
            raise SessionGone("the server does not know it (was the server restarted?)")
        return session

    def resumed(self, session, conn):
        self.log("session %s resumed by %s" % (session.id, self.peer_of(conn)))

    def closed(self, conn):
        """The server's connection ``conn`` ended: its session waits for a resume."""
        with self._lock:
            sessions = [s for s in self.sessions.values() if s.conn is conn]
        for session in sessions:
            session.detach(conn, "its connection closed")

    def detached(self, session, why):
        self.log(
            "session %s detached (%s); kept %g s for the notebook to resume it "
            "(a restarted kernel starts a new session, and this one then expires)" % (session.id, why, self.grace)
        )
        with self._lock:
            if self._timer is None:
                self._timer = threading.Thread(target=self._expire_loop, daemon=True, name="jupyter-rsym sessions")
                routes.unrouted(self._timer).start()
            self._wake.notify_all()

    def ended(self, session, how):
        with self._lock:
            self.sessions.pop(session.id, None)
            self.expired[session.id] = how
            while len(self.expired) > 1000:
                del self.expired[next(iter(self.expired))]
        if how == CLOSED:
            self.log("session %s ended: it %s" % (session.id, how))
        else:
            self.log(
                "session %s %s: its threads keep running, their output is dropped and "
                "their callbacks fail" % (session.id, how)
            )
        self.on_change()

    def _expire_loop(self):
        while True:
            with self._lock:
                now = time.monotonic()
                due = [
                    s for s in self.sessions.values() if s.detached_at is not None and now - s.detached_at >= self.grace
                ]
                if not due:
                    waits = [
                        s.detached_at + self.grace - now for s in self.sessions.values() if s.detached_at is not None
                    ]
                    self._wake.wait(min(waits) if waits else None)
                    continue
            for session in due:
                session.end(EXPIRED % self.grace)


def registry_of(conn):
    """The Registry the server offers on ``conn``, or None (a stock server,
    ``--resume-grace 0``, or a server of another jupyter_rsym version)."""
    registry = conn._config.get(CONFIG_KEY)
    if isinstance(registry, Registry) and registry.grace > 0:
        return registry
    return None


def why_not_kept(conn):
    """One phrase: why this server keeps no session."""
    registry = conn._config.get(CONFIG_KEY)
    if registry is None:
        return "stock"
    if not isinstance(registry, Registry):
        return "version"
    return "off"


def _disown(conn):
    """Proxies of notebook objects from ``conn`` fail with one clear line."""

    def dropped(handler, *args):
        if handler == HANDLE_CLOSE:  # rpyc's own goodbye: the connection is gone anyway
            raise EOFError("connection dropped")
        raise DroppedObject(DROPPED_OBJECT)

    conn.sync_request = dropped


def _shut(conn):
    """Close ``conn``'s socket without a goodbye (it is broken)."""
    try:
        conn._channel.stream.close()
    except Exception:
        pass


def make_link(conn, emit, batch_bytes):
    """The output link for a new notebook connection: kept if the server keeps sessions."""
    registry = registry_of(conn)
    return capture.Link(conn, emit, batch_bytes, registry.keep_bytes if registry is not None else 0)
