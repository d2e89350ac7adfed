"""The loaded extension: settings, sessions, display hook and magics of one shell."""

import atexit

from IPython.core.error import UsageError

from ..link.address import parse_address
from ..link.frontend import Frontend
from ..link.session import RemoteSession
from .autotransform import AutoRemote
from .background import JobList
from .completion import RemoteIntrospection
from .config import RSym
from .debugging import Debugging
from .groups import Groups
from .magics import (
    AutoRemoteMagics,
    ConnectionMagics,
    DebugMagics,
    JobMagics,
    NamespaceMagics,
    RemoteMagics,
    TransferMagics,
)
from .output import CellLabels, OutputSink
from .progress import Progress
from .registry import SessionRegistry
from .richrepr import RemoteDisplay, RemoteTracebacks
from .stdin import RunningCell, StdinBridge


class NotebookFrontend(Frontend):
    """What the kernel gives each session: its remote output, ``input()``
    and transfer progress land in the notebook cell that caused them.

    ``labels`` (an ``output.CellLabels``) is shared by every session, as they
    may print into the same cells; ``running`` (a ``stdin.RunningCell``) lets
    remote ``input()`` ask the user of the running cell.
    """

    def __init__(self, shell, labels, running):
        self.shell = shell
        self.labels = labels
        self.running = running

    def output_sink(self, router, session_name):
        return OutputSink(router, session_name, self.labels, shell=self.shell)

    def input_answerer(self, router):
        return StdinBridge(router, self.running)

    def progress(self, label, total, after):
        return Progress(label, total, after)


class Extension:
    """Everything ``%load_ext jupyter_rsym`` adds to a shell, and its removal."""

    def __init__(self, shell):
        self.shell = shell
        self.settings = RSym(parent=shell)
        self.sessions = SessionRegistry(lambda: self.settings.default_session)
        self.groups = Groups()  # %rconnect dask://: one name, a session per worker
        self.labels = CellLabels()
        self.jobs = JobList()
        self.autoremote = AutoRemote(shell, self)
        self.display = RemoteDisplay(shell)
        self.tracebacks = RemoteTracebacks(shell)
        self.running = RunningCell(shell)
        self.frontend = NotebookFrontend(shell, self.labels, self.running)
        self.debugging = Debugging(shell, self.settings, self.running, self.jobs, self.sessions)
        self.introspection = RemoteIntrospection(shell, self)
        self.failed = {}  # name -> (address, why): RSym.connections entries that did not connect
        self._magics = [
            ConnectionMagics(shell, self),
            RemoteMagics(shell, self),
            JobMagics(shell, self),
            AutoRemoteMagics(shell, self),
            TransferMagics(shell, self),
            NamespaceMagics(shell, self),
            DebugMagics(shell, self),
        ]

    def load(self):
        self.shell.configurables.append(self.settings)
        self.display.install()
        self.tracebacks.install()
        self.running.install()
        self.debugging.install()
        self.introspection.install()
        atexit.register(self.sessions.close_all)  # kernel shutdown: say goodbye to servers
        atexit.register(self.groups.close_all)  # runs first: plugins unregistered, Clients closed
        self.shell.register_magics(*self._magics)
        self.autoremote.install()
        for name, address in self.settings.connections.items():
            try:
                self.connect(name, parse_address(address, self.settings.default_port))
            except Exception as exc:  # one bad entry must not stop the kernel
                self.failed[name] = (str(address), str(exc))
                self._tell(f"jupyter_rsym: could not connect {name} to {address} (RSym.connections): {exc}")

    def _tell(self, line):
        """Show ``line`` in the running cell; at kernel start (no cell yet) in
        the kernel's log and in the first cell that runs."""
        parent = self.shell.get_parent() if hasattr(self.shell, "get_parent") else None
        if (parent or {}).get("header", {}).get("msg_type") == "execute_request":
            print(line)
            return
        self.shell.log.warning("%s", line)

        def first_cell(*args):
            self.shell.events.unregister("pre_run_cell", first_cell)
            print(line)

        self.shell.events.register("pre_run_cell", first_cell)

    def unload(self):
        atexit.unregister(self.sessions.close_all)
        atexit.unregister(self.groups.close_all)
        self.groups.close_all()
        closed = [f"{s.name} ({s.address})" for s in self.sessions if s.state != "closed"]
        self.sessions.close_all()
        if closed:  # %reload_ext, %unload_ext: never silently
            print(f"jupyter_rsym unloaded: closed {', '.join(closed)}")
        self.autoremote.uninstall()
        self.display.uninstall()
        self.tracebacks.uninstall()
        self.running.uninstall()
        self.debugging.uninstall()
        self.introspection.uninstall()
        if self.settings in self.shell.configurables:
            self.shell.configurables.remove(self.settings)
        manager = self.shell.magics_manager
        for magics in self._magics:
            manager.registry.pop(type(magics).__name__, None)
            for kind, names in magics.magics.items():
                for name in names:
                    manager.magics[kind].pop(name, None)

    def connect(self, name, address, timeout=None, credentials=None, **transport_options):
        """Open a session, bind it to ``name`` in the notebook, replacing any old one.

        A session of that name to that address is kept if connected, resumed
        if its link dropped and the server kept it (``RemoteSession.resume``);
        either way it is returned."""
        try:
            old = self.sessions.get(name)
        except LookupError:
            old = None
        same = old is not None and address in (old.address, old.requested_address)
        if same and old.state == "connected":  # keep it, and its remote namespace
            old.retime(self.settings.timeout if timeout is None else timeout)
            self.sessions.add(old)  # the most recently connected again
            self.shell.user_ns[name] = old
            return old
        if same and old.state == "lost" and old.resumable:
            line = old.resume()
            if line:
                print(line)
            self.shell.user_ns[name] = old
            return old
        settings = self.settings
        if timeout is not None:
            settings = RSym(**{**settings.trait_values(config=True), "timeout": timeout})
        session = RemoteSession.connect(name, address, settings, self.frontend, credentials, **transport_options)
        self.sessions.add(session)
        self.failed.pop(name, None)
        self.shell.user_ns[name] = session
        return session

    def sessions_for(self, names=None):
        """The sessions ``--on`` names: ``NAME``, ``A,B,...`` or ``all`` (every
        connected session); the newest one by default.  A UsageError if none.
        A group's name means its live members, ``GROUP/MEMBER`` one of them."""
        try:
            grouped = self.groups.expand(names, self.session)
        except LookupError as exc:
            raise UsageError(str(exc)) from None
        if grouped is not None:
            return grouped
        if names is None or names.strip() != "all":
            wanted = [n.strip() for n in (names or "").split(",") if n.strip()] or [None]
            return list({id(s): s for s in map(self.session, wanted)}.values())
        found = [s for s in self.sessions if s.state == "connected"] + self.groups.live_members()
        if not found:
            raise UsageError("--on all: no connected session; connect first with %rconnect HOST[:PORT]")
        return found

    def session(self, name=None):
        """The session named ``name`` (default: the newest), or ``GROUP/MEMBER``;
        a UsageError if none."""
        try:
            group, slash, member = (name or "").partition("/")
            if slash and group in self.groups:
                return self.groups.get(group).member(member)
            return self.sessions.get(name)
        except LookupError as exc:
            raise UsageError(str(exc)) from None
