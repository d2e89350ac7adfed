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
from ..kernel.config import log_level_number, rpyc_config
from .errors import Interrupted, NoAnswer, SessionLost, StaleObject, clean_traceback, remote_exception
from ..kernel.stdin import StdinBridge
from .requests import NonBlocking
from ..kernel.output import OutputSink
from .proxies import RemoteModules
from .routing import Router
from .reader import BackgroundServer
from .transport import transport_for

CONNECTED, CLOSED, LOST = "connected", "closed", "lost"
CANCEL_TIMEOUT = 1.0  # seconds an interrupt waits for the side connection


class RemoteSession(resume.Resuming, NonBlocking):
    """A connection to a remote Python process, bound to a notebook name.

    The classic rpyc API is here: ``modules`` (remote modules by name,
    ``r.modules.os.getcwd()``), ``builtins``, ``eval(src)``, ``execute(src)``
    and ``namespace`` (the remote globals that ``%%remote`` cells use).
    Notebook functions passed to remote code are called back in the notebook,
    and their output appears in the cell that caused the call.

    Against ``jupyter-rsym serve`` a dropped link does not end the session:
    its next use resumes it (``resume()``; see ``resume.py``).

    Create one with ``%rconnect`` or ``RemoteSession.connect``; ``close()``
    ends it (idempotent).
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
        self._conn = None
        self._control = None
        self._agent = {}
        self._server = None
        self._transport = None
        self._rconnect_args = str(address)
        self._ticket = None  # resume.Ticket where the server keeps the session
        self._not_kept = None  # else why not (a key of resume.NOT_KEPT)
        self._refs = resume.StableRefs()
        self._lock = threading.Lock()
        self._lost_listeners = []
        self.remote_functions = {}  # expression -> remote function, fetched once (fanout, autoremote)
        self._resume_lock = threading.Lock()

    @classmethod
    def connect(cls, name, address, settings, shell=None, labels=None, credentials=None, running=None,
                **transport_options):
        """Connect to a classic rpyc server at ``address`` and set up the agent.

        ``labels`` (an ``output.CellLabels``) is shared by sessions that may
        print into the same cells; ``credentials`` (``transport.Credentials``)
        holds a token and TLS files; ``running`` (an ``inputs.RunningCell``)
        lets remote ``input()`` ask the user of the running cell;
        ``transport_options`` go to the address's transport (``deploy=PYTHON``
        for ssh).
        """
        session = cls(name, address)
        session._open(settings, shell, labels, credentials, running, transport_options)
        return session

    def _open(self, settings, shell, labels, credentials=None, running=None, transport_options=None):
        self._transport = transport_for(self.address, settings, credentials, **(transport_options or {}))
        self.address = self._transport.address  # a deployed server picks its own port
        self._rconnect_args = self._transport.rconnect_args
        # kept across re-connections: which cell each request came from, the output sink
        self.settings = settings
        self._router = Router(shell)
        self._seqs = itertools.count()
        self._sink = OutputSink(self._router, self.name, labels, shell=shell)
        self._stdin = StdinBridge(self._router, running, self)
        try:
            self._open_connections(attach)
        except BaseException:
            self._transport.close()
            raise

    def _open_connections(self, set_up):
        """Open the main connection and the side one (at once, where the
        transport allows), attach them to the server with ``set_up`` (what
        ``attach.attach`` does: a new session; ``resume.resume_session``: a
        kept one), and start serving."""
        settings = self.settings
        config = rpyc_config(settings)
        config["sync_request_timeout"] = settings.connect_timeout
        service = ClientService(self._router, self._seqs, self._refs.pinned)
        control = Opening(lambda: self._transport.connect(ControlService, config),
                          self._transport.concurrent_streams)
        try:
            conn = self._transport.connect(service, config, lambda conn: self._set_up(conn, control, set_up))
        except BaseException:
            control.discard()
            raise
        conn._config["sync_request_timeout"] = settings.timeout or None
        conn.liveness_interval = settings.timeout or None
        conn.peer = str(self.address)
        conn.cancel = self._cancel
        conn.check_alive = self._check_alive
        conn.on_lost = partial(self._lost, conn)
        self._alive_timeout = settings.timeout or settings.connect_timeout
        with self._lock:
            self._conn, self.state = conn, CONNECTED
        self._server = BackgroundServer(conn, service.waiters, partial(self._on_lost, conn), self.name)

    def _set_up(self, conn, opening, set_up):
        """Attach the agent to the main connection and finish the side
        connection for interrupts and liveness pings, which must get through
        while the main connection's server thread is busy (``attach.py``:
        both in a few round trips)."""
        conn.session = self
        found = set_up(conn, opening, self._sink.emit, self._agent_options(), self.settings.connect_timeout)
        self._control, self._control_root = found.control, found.control_root
        self._interrupt, self._agent, self.version_note = found.interrupt, found.agent, found.version_note
        self._control._config["sync_request_timeout"] = CANCEL_TIMEOUT
        agent = found.agent
        self._link_id, self.description = agent["link"], agent["description"]
        self._ticket, self._not_kept = resume.kept(agent["session"])
        self._refs.stubs.clear()  # stand-ins and functions fetched over an older connection
        self.remote_functions.clear()
        self._namespace = agent["namespace"]
        conn.modules = RemoteModules(agent["getmodule"], agent["modules"])
        conn.builtins = conn.modules.builtins
        conn.eval, conn.execute, conn.namespace = agent["eval"], agent["execute"], agent["namespace"]

    def _agent_options(self):
        settings = self.settings
        return (("compress", settings.compress), ("batch_bytes", settings.batch_bytes),
                ("flush_interval", settings.flush_interval), ("ask", self._stdin.ask),
                ("log_level", log_level_number(settings.log_level)))

    def _cancel(self, seq):
        """Ask the remote, over the side connection, to stop the work for ``seq``."""
        return self._interrupt(self._link_id, seq)

    def _check_alive(self):
        """Ping over the side connection: a busy server answers, a hung one does not."""
        try:
            self._control.ping(timeout=self._alive_timeout)
        except ReplyTimeout:
            raise NoAnswer(self.address, self._alive_timeout) from None
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
        return self._sink.batches

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
            status, payload = self._call(lambda: (self._agent["run_cell"], (source, self._namespace, mode)),
                                         timeout)
        except Interrupted as stop:
            _show_where_cell_stopped(stop)
            raise
        if status == "error":
            name, module, message, text = payload
            # agent frames (remote input() refused, say) are ours, not the user's
            error = remote_exception(name, module, message, clean_traceback(text))
            error.session = self  # %debug opens its remote frames
            raise error
        return payload

    def request(self, func, args, timeout=None):
        """Call the remote ``func(*args)`` and wait up to ``timeout`` s."""
        return self._call(lambda: (func, args), timeout)

    def call(self, name, *args, timeout=None):
        """Call the agent's function ``name`` remotely (one request); see
        ``agent.attach`` for the names."""
        return self._call(lambda: (self._agent[name], args), timeout)

    def _call(self, target, timeout):
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
                if attempt == 2 or self._ticket is None:
                    raise

    def pipeline(self, name, calls, on_reply, window):
        """Call the agent's function ``name`` once per args tuple in ``calls``,
        ``window`` calls in flight, ``on_reply(args, reply)`` in order (bulk
        data: see ``client.RoutedConnection.pipeline``)."""
        conn = self._usable()
        func = self._agent[name]
        conn.pipeline(consts.HANDLE_CALL, ((func, args, ()) for args in calls),
                      lambda call, reply: on_reply(call[1], reply), window,
                      conn._config["sync_request_timeout"])

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

    def _is_connected(self):
        return self.state == CONNECTED and self._conn is not None and not self._conn.closed

    def _usable(self):
        """The connection to use now; a dropped one is resumed first (if the server kept the session)."""
        if self._is_connected():
            return self._conn
        if self.state == CONNECTED:  # closed under us
            self._on_lost(self._conn, EOFError("connection closed"))
        if self.state == CLOSED or self._ticket is None:
            raise self._usable_error()
        line = self.resume()
        if line:
            print(line)
        return self._conn

    def _usable_error(self):
        if self.state == CLOSED:
            return SessionLost(f"session {self.name!r} is closed; %rconnect {self._rconnect_args} to reconnect")
        return self._lost_error()

    def _lost_error(self):
        why = resume.NOT_KEPT.get(self._not_kept)
        return SessionLost(
            f"lost the connection to {self.address} ({self.lost_reason}); "
            f"%rconnect {self._rconnect_args} --as {self.name} to reconnect" + (f"; {why}" if why else "")
        )

    def _on_lost(self, conn, exc):
        with self._lock:
            if self.state != CONNECTED or conn is not self._conn:
                return
            self.state = LOST
            self.lost_reason = str(exc) or type(exc).__name__
            self.lost_at = time.monotonic()
        if self._server is not None:
            self._server.stop(timeout=1)
        if self._control is not None:
            self._control._config["sync_request_timeout"] = 0.5
            self._control.close()
        self._tell_lost(self._dropped_error())

    def close(self):
        """Close the connection and stop its background thread (idempotent);
        the server ends the session at once (it would keep it otherwise)."""
        with self._lock:
            if self.state == CLOSED:
                return
            ending = self.state == CONNECTED and self._ticket is not None
            self.state = CLOSED
        if self._server is not None:
            self._server.stop(timeout=2)
        if ending and not self._conn.closed:
            try:
                self._conn.async_request(consts.HANDLE_CALL, self._ticket.end, (), ())
            except Exception:
                pass
        self._ticket = None
        for conn in (self._conn, self._control):
            if conn is not None:
                conn._config["sync_request_timeout"] = 1
                conn.close()
        if self._transport is not None:
            self._transport.close()
        self._tell_lost(SessionLost(f"session {self.name!r} was closed"))

    def __repr__(self):
        where = f"{self.state} {'to' if self.state == CONNECTED else 'from'} {self.address}"
        about = f": {self.description}" if self.description else ""
        return f"<RemoteSession {self.name!r} {where}{about}>"


def _show_where_cell_stopped(stop):
    """An interrupted cell whose answer came in time shows where it stopped."""
    if stop.late_reply is None or stop.late_reply[0]:
        return
    status, payload = stop.late_reply[1]
    if status == "error" and payload[0] == "KeyboardInterrupt":
        stop.remote_traceback = payload[3]
