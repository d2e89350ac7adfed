"""RemoteSession: one named connection to a remote Python process, and its lifecycle."""

import itertools
import threading
import time
from functools import partial

from rpyc.core import consts
from rpyc.lib.compat import TimeoutError as ReplyTimeout

from . import resume, transfer
from .attach import Opening, attach
from .client import ClientService, ControlService
from .errors import Interrupted, NoAnswer, SessionLost, StaleObject, clean_traceback, remote_exception
from .frontend import Frontend
from .options import agent_options, rpyc_config
from .proxies import RemoteModules
from .reader import BackgroundServer, LostListeners
from .routing import Router
from .schemes import transport_for
from .sidelink import SideLink

CONNECTED, CLOSED, LOST = "connected", "closed", "lost"


class RemoteSession:
    """A connection to a remote Python process, bound to a notebook name.

    The classic rpyc API: ``modules`` (``r.modules.os.getcwd()``),
    ``builtins``, ``eval(src)``, ``execute(src)`` and ``namespace`` (the
    remote globals of ``%%remote`` cells).  Notebook functions passed to
    remote code are called back in the notebook, their output in the cell
    that caused the call.  Against ``jupyter-rsym serve`` a dropped link does
    not end the session: its next use resumes it (``resume.py``).  Create one
    with ``%rconnect`` or ``connect``; ``close()`` ends it (idempotent).
    Fan-out cells and background jobs use the requests that do not wait
    (``request_async``, ``side``, ``when_lost``).
    """

    def __init__(self, name, address):
        self.name = name
        self.address = address
        self.requested_address = address  # as given to %rconnect (a deployed server has its own port)
        self.state = CONNECTED
        self.description = ""
        self.version_note = ""
        self.last_rtt = None
        self.lost_reason = None
        self.lost_at = None
        self.rconnect_args = str(address)  # what %rconnect needs to open it again
        self.keeping = resume.Keeping()
        self.side = None  # the side connection (sidelink.SideLink) once attached
        self.transport = None
        self._conn = None
        self._agent = {}
        self._server = None
        self._lock = threading.Lock()
        self._lost_listeners = LostListeners()
        self.remote_functions = {}  # expression -> remote function, fetched once (fanout, autoremote)

    @classmethod
    def connect(cls, name, address, settings, frontend=None, credentials=None, **transport_options):
        """Connect to a classic rpyc server at ``address`` and set up the agent.

        ``settings`` are read as ``kernel.config.RSym``'s; ``frontend``
        (``frontend.Frontend``, default: this process's stdout) gets remote
        output, ``input()`` and transfer progress; ``credentials``
        (``transport.Credentials``): a token and TLS files; ``transport_options``
        go to the address's transport (``deploy=PYTHON`` for ssh)."""
        session = cls(name, address)
        session._open(settings, frontend or Frontend(), credentials, transport_options)
        return session

    def _open(self, settings, frontend, credentials=None, transport_options=None):
        self.transport = transport_for(self.address, settings, credentials, **(transport_options or {}))
        self.address = self.transport.address  # a deployed server picks its own port
        self.rconnect_args = self.transport.rconnect_args
        # kept across re-connections: which cell each request came from, the output sink
        self.settings = settings
        self.frontend = frontend
        self.router = Router(frontend.shell)
        self._seqs = itertools.count()
        self.output = frontend.output_sink(self.router, self.name)
        self._stdin = frontend.input_answerer(self.router)
        try:
            self.reopen(attach)
        except BaseException:
            self.transport.close()
            raise

    def reopen(self, set_up):
        """Open the main connection and the side one (at once, where the
        transport allows), attach them to the server with ``set_up`` (what
        ``attach.attach`` does: a new session; ``resume.resume_session``: a
        kept one), and start serving."""
        settings = self.settings
        config = rpyc_config(settings)
        config["sync_request_timeout"] = settings.connect_timeout
        service = ClientService(self.router, self._seqs, self.keeping.refs.pinned)
        control = Opening(lambda: self.transport.connect(ControlService, config), self.transport.concurrent_streams)
        try:
            conn = self.transport.connect(service, config, lambda conn: self._set_up(conn, control, set_up))
        except BaseException:
            control.discard()
            raise
        conn.peer = str(self.address)
        conn.cancel = self.side.cancel
        conn.check_alive = self._check_alive
        conn.on_lost = partial(self._lost, conn)
        with self._lock:
            self._conn, self.state = conn, CONNECTED
        self.retime(settings.timeout)
        self._server = BackgroundServer(conn, service.waiters, partial(self._on_lost, conn), self.name)

    def retime(self, seconds):
        """From now on wait up to ``seconds`` (0: forever) for each call's answer."""
        self._conn._config["sync_request_timeout"] = self._conn.liveness_interval = seconds or None
        self.side.alive_timeout = seconds or self.settings.connect_timeout

    def _set_up(self, conn, opening, set_up):
        """Attach the agent to the main connection and finish the side
        connection for interrupts and liveness pings, which must get through
        while the main connection's server thread is busy (``attach.py``:
        both in a few round trips)."""
        conn.session = self
        found = set_up(
            conn,
            opening,
            self.output.emit,
            agent_options(self.settings, self._stdin.ask),
            self.settings.connect_timeout,
        )
        agent = self._agent = found.agent
        self.version_note = found.version_note
        self.side = SideLink(found, agent["link"], self.address, self.settings.timeout or self.settings.connect_timeout)
        self.description = agent["description"]
        self.keeping.update(agent["session"])
        self.remote_functions.clear()
        self._namespace = agent["namespace"]
        conn.modules = RemoteModules(agent["getmodule"], agent["modules"])
        conn.builtins = conn.modules.builtins
        conn.eval, conn.execute, conn.namespace = agent["eval"], agent["execute"], agent["namespace"]

    def _check_alive(self):
        """Ping over the side connection: a busy server answers, a hung one does not."""
        try:
            self.side.check_alive()
        except EOFError as exc:
            raise self._lost(self._conn, exc) from None

    # -- the classic API ------------------------------------------------------

    @property
    def modules(self):
        """Remote modules by name: ``r.modules.os``, ``r.modules["os.path"]``."""
        return self._usable().modules

    @property
    def builtins(self):
        """The remote ``builtins`` module."""
        return self._usable().builtins

    @property
    def namespace(self):
        """The remote globals dict that ``%%remote`` cells and ``execute`` use."""
        self._usable()
        return self._namespace

    @property
    def output_batches(self):
        """How many batches (round trips) remote output has taken so far."""
        return self.output.batches

    def usable_side(self):
        """The side connection (``sidelink.SideLink``), the link resumed first if it dropped."""
        self._usable()
        return self.side

    @property
    def resumable(self):
        """Whether the server keeps this session across a dropped link."""
        return self.keeping.ticket is not None

    @property
    def connection(self):
        """The underlying rpyc Connection."""
        return self._conn

    def eval(self, source):
        """Evaluate an expression in the remote namespace and return its value."""
        return self.run(source, mode="eval")

    def execute(self, source):
        """Execute statements in the remote namespace."""
        self.run(source, mode="exec")

    def run(self, source, mode="exec", timeout=None):
        """Run a cell remotely in one request; return its last expression's value.

        Remote exceptions are raised as ``RemoteError`` showing the remote
        traceback.  ``timeout`` (s) defaults to the connection's call timeout;
        0 waits forever.
        """
        try:
            status, payload = self.call_target(
                lambda: (self._agent["run_cell"], (source, self._namespace, mode)), timeout
            )
        except Interrupted as stop:
            stop.show_where_cell_stopped()
            raise
        if status == "error":
            name, module, message, text, *extra = payload
            # agent frames (remote input() refused, say) are ours, not the user's
            raise remote_exception(name, module, message, clean_traceback(text), *extra).of_session(self)
        return payload

    def request(self, func, args, timeout=None):
        """Call the remote ``func(*args)`` and wait up to ``timeout`` s."""
        return self.call_target(lambda: (func, args), timeout)

    def call(self, name, *args, timeout=None):
        """Call the agent's function ``name`` remotely (one request); see
        ``agent.attach`` for the names."""
        return self.call_target(lambda: (self._agent[name], args), timeout)

    def call_target(self, target, timeout=None):
        """Call what ``target()`` names, ``(remote function, args)``, once the
        session is usable; if the link had dropped before the request went
        out, resume and go again (``target`` then names the new connection's)."""
        for attempt in (1, 2):
            conn = self._usable()
            func, args = target()
            wait = conn._config["sync_request_timeout"] if timeout is None else timeout
            try:
                return conn.request(consts.HANDLE_CALL, (func, args, ()), wait or None)
            except StaleObject:
                if attempt == 2 or self.keeping.ticket is None:
                    raise

    def request_async(self, func, args, on_reply):
        """Send the remote call ``func(*args)`` without waiting; ``on_reply(is_exc,
        value)`` runs in the thread that reads the reply.  Returns the seq."""
        conn = self._usable()
        try:
            return conn.request_async(consts.HANDLE_CALL, (func, args, ()), on_reply)
        except EOFError as exc:
            raise self._lost(conn, exc, sent=False) from None

    def eval_async(self, expression, on_reply):
        """``request_async`` of the remote ``eval(expression)``."""
        return self.request_async(self._usable().eval, (expression,), on_reply)

    def pipeline(self, name, calls, on_reply, window):
        """Call the agent's function ``name`` once per args tuple in ``calls``,
        ``window`` calls in flight, ``on_reply(args, reply)`` in order (bulk
        data: see ``client.RoutedConnection.pipeline``)."""
        conn = self._usable()
        func = self._agent[name]
        conn.pipeline(
            consts.HANDLE_CALL,
            ((func, args, ()) for args in calls),
            lambda call, reply: on_reply(call[1], reply),
            window,
            conn._config["sync_request_timeout"],
        )

    def notify(self, name, *args):
        """Call the agent's function ``name`` without waiting for its answer."""
        self._usable().async_request(consts.HANDLE_CALL, self._agent[name], args, ())

    def push(self, values=None, ref=False, fallback=False, **named):
        """Bind ``{name: value}`` (or ``name=value``) in the remote namespace.

        By value (a copy; large values move in pieces, see ``transfer``)
        unless ``ref=True`` hands references.  Functions, classes and
        modules always go by reference.  A value that cannot be copied
        raises ``CannotCopy``, or goes by reference with ``fallback=True``
        (what ``%%remote -i`` does).  Example: ``r.push(x=x, y=y)``.
        """
        values = {**(values or {}), **named}
        transfer.push(self, values, transfer.mode(ref, fallback))

    def pull(self, names, ref=False, fallback=False):
        """Copy values out of the remote namespace: ``r.pull("x")`` returns the
        value, ``r.pull(["x", "y"])`` a ``{name: value}`` dict.

        By value unless ``ref=True`` (then proxies); ``fallback`` as in
        ``push``.  A missing name raises ``KeyError``.
        """
        if isinstance(names, str):
            return transfer.pull(self, [names], transfer.mode(ref, fallback))[names]
        return transfer.pull(self, list(names), transfer.mode(ref, fallback))

    def mimebundle(self, remote_object):
        """The rich representations of a remote object, computed remotely."""
        owner = object.__getattribute__(remote_object, "____conn__")
        if owner.closed:  # a proxy from a connection that dropped
            raise owner.on_lost(EOFError("connection closed"), sent=False)
        return dict(self.call("mimebundle", remote_object))

    def ping(self, timeout=2.0):
        """Round-trip time in seconds (also kept as ``last_rtt``)."""
        conn = self._usable()
        start = time.perf_counter()
        conn.request(consts.HANDLE_PING, ("ping",), timeout)
        self.last_rtt = time.perf_counter() - start
        return self.last_rtt

    # -- lifecycle ------------------------------------------------------------

    def is_connected(self):
        """Whether the session's link is up now (no round trip)."""
        return self.state == CONNECTED and self._conn is not None and not self._conn.closed

    def _usable(self):
        """The connection to use now; a dropped one is resumed first (if the server kept the session)."""
        if self.is_connected():
            return self._conn
        if self.state == CONNECTED:  # closed under us
            self._on_lost(self._conn, EOFError("connection closed"))
        line = self.resume()
        if line:
            print(line)
        return self._conn

    def resume(self):
        """Re-attach to the session the server kept after the link dropped.

        Returns the line that says so (None if the session is connected);
        remote output missed meanwhile has been replayed into its cells.
        Raises one line if the server no longer keeps the session
        (``SessionExpired``) or cannot be reached (``SessionLost``; at once if
        it refuses the connection).  Any use of a dropped session calls this.
        """
        with self.keeping.lock:
            if self.is_connected():
                return None
            if self.state == CLOSED or self.keeping.ticket is None:  # a stock server, expired, closed
                raise resume.unusable(self)
            return resume.resume(self)

    def stable_ref(self, func):
        """What to hand the remote for notebook function ``func`` so that it
        outlives a dropped link: on a server that keeps sessions, a remote
        stand-in that calls ``func`` over whichever connection the session
        has (while the link is down, a call fails at once on the remote side
        with one line); elsewhere ``func`` itself.  Output of a call the
        remote makes on its own lands in the cell that handed ``func`` over
        last.  One round trip the first time per connection."""
        self._usable()
        return resume.stable_ref(self, func)

    def _lost(self, conn, exc, sent=True):
        """The error for a request on ``conn`` that the link dropped under."""
        if conn is not self._conn or (not sent and self.keeping.ticket is not None):
            # a proxy from before a resume, or a request that never went out
            return StaleObject(resume.STALE.format(name=self.name, ago=resume.ago(self.lost_at)))
        self._on_lost(conn, exc)
        return resume.dropped(self)

    def failure(self, exc):
        """The error a user sees for ``exc`` raised by a request on this session:
        one line for a failed link, else ``exc`` itself."""
        if isinstance(exc, EOFError):
            return self._lost(self._conn, exc)
        if isinstance(exc, ReplyTimeout) and not isinstance(exc, NoAnswer):
            return NoAnswer(self.address, self.side.alive_timeout)
        return exc

    def when_lost(self, callback):
        """Call ``callback(error)`` once when the session is lost or closed;
        returns a function that cancels this."""
        return self._lost_listeners.add(callback)

    def _on_lost(self, conn, exc):
        with self._lock:
            if self.state != CONNECTED or conn is not self._conn:
                return
            self.state = LOST
            self.lost_reason = str(exc) or type(exc).__name__
            self.lost_at = time.monotonic()
        if self._server is not None:
            if self._server.serving_here():  # noticed while idle: no cell waits to be told
                resume.tell_idle_drop(self, conn.router)
            self._server.stop(timeout=1)
        if self.side is not None:
            self.side.close(0.5)
        self._lost_listeners.tell(resume.dropped(self))

    def close(self):
        """Close the connection and stop serving it (idempotent);
        the server ends the session at once (it would keep it otherwise)."""
        with self._lock:
            if self.state == CLOSED:
                return
            ticket = self.keeping.ticket if self.state == CONNECTED else None
            self.state = CLOSED
        if self._server is not None:
            self._server.stop(timeout=2)
        if ticket is not None and not self._conn.closed:
            try:
                self._conn.async_request(consts.HANDLE_CALL, ticket.end, (), ())
            except Exception:
                pass
        self.keeping.ticket = None
        if self._conn is not None:
            self._conn._config["sync_request_timeout"] = 1
            self._conn.close()
        if self.side is not None:
            self.side.close(1)
        if self.transport is not None:
            self.transport.close()
        self._lost_listeners.tell(SessionLost(f"session {self.name!r} was closed"))

    def __repr__(self):
        where = f"{self.state} {'to' if self.state == CONNECTED else 'from'} {self.address}"
        about = f": {self.description}" if self.description else ""
        return f"<RemoteSession {self.name!r} {where}{about}>"
