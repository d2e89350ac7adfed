"""%rconnect, %rdisconnect, %rconnections, %rbind."""

from IPython.core import magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class

from ...link.address import AddressError, parse_address
from ...link.errors import RSymError
from ...link.session import RemoteSession
from ...link.transport import Credentials
from ..daskconnect import connect_dask
from . import arguments
from .base import ExtensionMagics

BAD_VARIABLE = "--as {!r}: a notebook variable must be a Python identifier"
TLS_ONLY = "--ca, --cert, --key and --fingerprint are for tls:// addresses; use tls://{0.host}:{0.port}"
CERT_AND_KEY = "--cert and --key go together"
DISCONNECT_WHAT = "name a session to disconnect, or use --all"
DEPLOY_NEEDS_SSH = "--deploy needs an ssh:// address: it starts the server over ssh"
PYTHON_NEEDS_DEPLOY = "--python goes with --deploy (the Python the deployed server runs on)"
NO_ADDRESS = "the following arguments are required: address (HOST[:PORT], tls://, ssh://, dask://), or --dask VAR"
UNBOUND = "{name} is open but bound to no notebook variable (%reset, del?): %rbind {name} binds it again"
KEPT = (
    "{name} is already connected to {address}: kept, with its remote namespace "
    "(%rdisconnect {name} first for a new session)"
)
REPLACED = "Closed the previous {name} ({address}, {state}): replaced by this session"
SHADOWED = "Note: the notebook variable {name} held {kind} {value}; it now holds the session"
NEW_DEFAULT = (
    "{name} is now the default session (was {was}): %%remote, %remote, %rpush and "
    "%rpull use it without --on; %rdefault {was} switches back"
)
DEFAULT_LINE = "default: {name} ({why}; %rdefault NAME changes it)"


@magics_class
class ConnectionMagics(ExtensionMagics):
    """Open, list and close remote sessions."""

    @magic_arguments.magic_arguments()
    @magic_arguments.argument(
        "address",
        nargs="?",
        default=None,
        help="HOST[:PORT] of an rpyc classic server, tls://HOST[:PORT], "
        "ssh://[USER@]HOST[:SSHPORT][/PORT] for one on PORT of an SSH host's loopback "
        "(reached through a tunnel), or dask://HOST[:PORT] for a session in every worker "
        "of that Dask scheduler (a group, named --as, default RSym.dask_name 'dask')",
    )
    @magic_arguments.argument(
        "--dask",
        metavar="VAR",
        default=None,
        help="a session in every worker of the Dask cluster of the notebook variable VAR "
        "(a distributed.Client, or a cluster object with scheduler_address and security)",
    )
    @magic_arguments.argument(
        "--as",
        dest="name",
        metavar="NAME",
        default=None,
        help="notebook variable to bind the session to (default: RSym.default_name, 'r')",
    )
    @magic_arguments.argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="seconds to wait for each remote call on this session (default: RSym.timeout)",
    )
    @magic_arguments.argument(
        "--token",
        default=None,
        metavar="T",
        help="token of a jupyter-rsym serve server (default: $JUPYTER_RSYM_TOKEN, then "
        "RSym.token_file, offered only to servers that ask)",
    )
    @magic_arguments.argument(
        "--ca",
        default=None,
        metavar="FILE",
        help="tls:// only: CA file to check the server's certificate with (default: RSym.tls_ca, "
        "else the system's CAs)",
    )
    @magic_arguments.argument(
        "--fingerprint",
        default=None,
        metavar="SHA256:...",
        help="tls:// only: accept exactly the server certificate with this fingerprint (as "
        "jupyter-rsym serve --tls-self-signed prints it) instead of checking a CA and the host name",
    )
    @magic_arguments.argument(
        "--cert", default=None, metavar="FILE", help="tls:// only: client certificate (default: RSym.tls_cert)"
    )
    @magic_arguments.argument(
        "--key", default=None, metavar="FILE", help="tls:// only: the client certificate's key (default: RSym.tls_key)"
    )
    @magic_arguments.argument(
        "--deploy",
        action="store_true",
        help="ssh:// only: copy our server into a fresh temporary directory on the host, start "
        "it there on a free loopback port with a random token, and connect; %%rdisconnect stops "
        "it and removes the directory. The host needs only Python and sshd.",
    )
    @magic_arguments.argument(
        "--python",
        metavar="PATH",
        default=None,
        help="with --deploy: the remote Python to run the server (default: RSym.ssh_python)",
    )
    @line_magic
    def rconnect(self, line):
        """Connect to a remote Python process and bind the session to a name.

        Works with the stock ``rpyc_classic`` server from the rpyc package;
        nothing needs to be installed on the remote side.  ``jupyter-rsym
        serve`` is the safe server: it prints the ``%rconnect ... --token T``
        line to paste; ``tls://HOST:PORT`` connects over TLS; ``ssh://``
        addresses go through an SSH tunnel with your own OpenSSH setup
        (``~/.ssh/config``, agent, known_hosts) plus ``RSym.ssh_options``.
        Connecting again under a used name to the same address keeps that
        session (and its remote namespace; ``--timeout`` applies to it); to
        another address, replaces it and says what was closed.  A line says when the new session becomes
        the default one (the target without ``--on``; ``%rdefault``).

        Examples
        --------
        ::

            In [1]: %rconnect 127.0.0.1:18812
            Connected r to 127.0.0.1:18812: Python 3.11.7 on Linux, rpyc 6.0.2

            In [2]: list(r.modules.builtins.map(lambda x: x * 2, r.builtins.range(3)))
            Out[2]: [0, 2, 4]

            In [3]: %rconnect gpu-box --as gpu --timeout 120

            In [4]: %rconnect tls://lab:18812 --token 8Hq...Zw --ca lab-ca.pem

            In [5]: %rconnect ssh://me@lab-pc/18812 --as lab

            In [6]: %rconnect ssh://robot --deploy --python /usr/bin/python3 --as robot

            In [7]: %rconnect dask://scheduler:8786
            Connected dask to dask://scheduler:8786: 64 workers (self-signed certificates, pinned); ...

            In [8]: %rconnect --dask client --as cluster

        With ``dask://`` or ``--dask`` the name is a group: a server starts
        inside every worker (a Dask WorkerPlugin; workers need nothing
        installed), each gets a session named after the worker, and
        ``%%remote --on dask`` runs a cell on all of them (``--on
        dask/WORKER`` on one).  Workers that join later get their session
        within seconds; workers that die leave the group with one line in
        the next cell that uses it.  With cluster TLS the sessions use the
        cluster's certificates; otherwise each worker's self-signed
        certificate, pinned, and a token made for this %rconnect.
        ``%rdisconnect NAME`` closes them all and removes the plugin.
        """
        args = arguments.parse(self.rconnect, line)
        settings = self.extension.settings
        if args.dask or (args.address or "").strip().startswith("dask://"):
            name = args.name or settings.dask_name
            if not name.isidentifier():
                raise UsageError(BAD_VARIABLE.format(name))
            connect_dask(self.extension, name, args.address, args.dask)
            return
        if args.address is None:
            raise UsageError(NO_ADDRESS)
        name = args.name or settings.default_name
        if not name.isidentifier():
            raise UsageError(BAD_VARIABLE.format(name))
        try:
            address = parse_address(args.address, settings.default_port)
        except AddressError as exc:
            raise UsageError(str(exc)) from None
        if address.scheme != "tls" and (args.ca or args.fingerprint or args.cert or args.key):
            raise UsageError(TLS_ONLY.format(address))
        if bool(args.cert) != bool(args.key):
            raise UsageError(CERT_AND_KEY)
        options = {}
        if args.deploy:
            if address.scheme != "ssh":
                raise UsageError(DEPLOY_NEEDS_SSH)
            options["deploy"] = args.python or settings.ssh_python
        elif args.python:
            raise UsageError(PYTHON_NEEDS_DEPLOY)
        credentials = Credentials(args.token, args.ca, args.cert, args.key, args.fingerprint)
        sessions = self.extension.sessions
        previous = next((s for s in sessions if s.name == name), None)
        held = self.shell.user_ns.get(name, previous)
        was_default, was_state = sessions.default_name(), previous and previous.state
        session = self.extension.connect(name, address, timeout=args.timeout, credentials=credentials, **options)
        if session is previous:  # kept, or resumed (and it said so)
            if was_state == "connected":
                print(KEPT.format(name=name, address=session.address))
        else:
            print(f"Connected {name} to {session.address}: {session.description}")
            if session.version_note:
                print(f"Note: {session.version_note}")
            if previous is not None:
                print(REPLACED.format(name=name, address=previous.address, state=was_state))
        if held is not None and not isinstance(held, RemoteSession):
            value = repr(held)
            value = value if len(value) <= 40 else value[:37] + "..."
            print(SHADOWED.format(name=name, kind=f"a {type(held).__name__}", value=value))
        now_default = sessions.default_name()
        if was_default is not None and now_default != was_default:
            print(NEW_DEFAULT.format(name=now_default, was=was_default))

    @magic_arguments.magic_arguments()
    @magic_arguments.argument("name", nargs="?", default=None, help="session to close")
    @magic_arguments.argument("--all", action="store_true", help="close every session")
    @line_magic
    def rdisconnect(self, line):
        """Close a session (or all of them) and forget its name.

        Examples
        --------
        ::

            In [4]: %rdisconnect gpu
            Disconnected gpu (127.0.0.1:18813)

            In [5]: %rdisconnect --all

        A group (``%rconnect dask://``) closes every member's session and
        removes its plugin from the cluster: no server thread or port is
        left in any worker.
        """
        args = arguments.parse(self.rdisconnect, line)
        sessions, groups = self.extension.sessions, self.extension.groups
        if args.all:
            names = [s.name for s in sessions] + [g.name for g in groups]
        elif args.name:
            names = [args.name]
        else:
            raise UsageError(DISCONNECT_WHAT)
        for name in names:
            if name in groups:
                group = groups.remove(name)  # every member, the plugin, our Client
                if self.shell.user_ns.get(name) is group:
                    del self.shell.user_ns[name]
                print(f"Disconnected {name} ({group.address}): its servers stopped")
                continue
            try:
                self.extension.debugging.release(sessions.get(name))  # parked threads go on
                session = sessions.remove(name)
            except LookupError as exc:
                raise UsageError(str(exc)) from None
            if self.shell.user_ns.get(name) is session:
                del self.shell.user_ns[name]
            print(f"Disconnected {name} ({session.address})")
            if self.extension.settings.default_session == name:  # back to the newest
                self.extension.settings.default_session = ""
                if len(sessions):
                    print(f"{sessions.default_name()} is now the default session (the most recently connected)")

    @magic_arguments.magic_arguments()
    @magic_arguments.argument(
        "-v", "--verbose", action="store_true", help="list each member of a group (%%rconnect dask://) too"
    )
    @line_magic
    def rconnections(self, line):
        """List sessions: name, address, state, round-trip time, remote Python.

        A group (``%rconnect dask://``) takes one line (its workers and
        their states); ``-v`` lists its members below it as ``GROUP/MEMBER``.

        Each open session is pinged (up to 2 s) to measure its round trip; a
        session whose link dropped is resumed first, where the server kept it.
        An open session no notebook variable holds (after ``%reset``) gets
        a note below the table; ``%rbind NAME`` binds it again.

        Examples
        --------
        ::

            In [6]: %rconnections
            name  address          state      rtt       remote
            r     127.0.0.1:18812  connected  0.12 ms   Python 3.11.7 on Linux, rpyc 6.0.2
        """
        args = arguments.parse(self.rconnections, line)
        rows = [("name", "address", "state", "rtt", "remote")]
        for session in self.extension.sessions:
            rows.append((session.name, str(session.address), *self._probe(session), session.description))
        open_names = {session.name for session in self.extension.sessions}
        for name, (address, why) in self.extension.failed.items():  # RSym.connections entries
            if name not in open_names:
                rows.append((name, address, "failed", "-", why))
        for group in self.extension.groups:
            group.live()  # says who left or joined
            state, detail = group.summary()
            rows.append((group.name, group.address, state, "-", detail))
            for member in group.sessions if args.verbose else ():
                rows.append(
                    (f"{group.name}/{member.name}", str(member.address), *self._probe(member), member.description)
                )
        if len(rows) == 1:
            print("no sessions; connect with %rconnect HOST[:PORT]")
            return
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[4])
        for session in self.extension.sessions:
            if not self._bound(session) and session.state == "connected":
                print(UNBOUND.format(name=session.name))
        preferred = self.extension.settings.default_session
        if len(self.extension.sessions):
            print(
                DEFAULT_LINE.format(
                    name=self.extension.sessions.default_name(),
                    why="RSym.default_session" if preferred else "the most recently connected",
                )
            )

    @magic_arguments.magic_arguments()
    @magic_arguments.argument(
        "name", nargs="?", default=None, help="the session to use without --on; omitted: show the default"
    )
    @magic_arguments.argument(
        "--newest", action="store_true", help="use the most recently connected session again (the initial rule)"
    )
    @line_magic
    def rdefault(self, line):
        """Show or set the default session: the one ``%%remote``, ``%remote``,
        ``%rpush``, ``%rpull`` and ``%autoremote`` use without ``--on``.

        Initially the most recently connected session; ``%rdefault NAME`` sets
        ``RSym.default_session`` (``c.RSym.default_session = "gpu"`` in a
        config file does the same at start).

        Examples
        --------
        ::

            In [1]: %rdefault
            default: gpu (the most recently connected; %rdefault NAME changes it)

            In [2]: %rdefault r
            default: r (RSym.default_session; %rdefault NAME changes it)
        """
        args = arguments.parse(self.rdefault, line)
        settings = self.extension.settings
        if args.newest:
            settings.default_session = ""
        elif args.name:
            settings.default_session = self.extension.session(args.name).name
        name = self.extension.sessions.default_name()
        if name is None:
            print("no sessions; connect with %rconnect HOST[:PORT]")
            return
        print(
            DEFAULT_LINE.format(
                name=name, why="RSym.default_session" if settings.default_session else "the most recently connected"
            )
        )

    @magic_arguments.magic_arguments()
    @magic_arguments.argument("name", help="the session, as %rconnections lists it")
    @magic_arguments.argument(
        "--as",
        dest="variable",
        metavar="VARIABLE",
        default=None,
        help="notebook variable to bind it to (default: the session's name)",
    )
    @line_magic
    def rbind(self, line):
        """Bind an open session to a notebook variable again.

        ``%reset`` (with or without ``-f``) and ``del r`` remove the
        notebook's name for a session, not the session: it stays open, with
        its remote namespace, remote threads and output routing, and
        ``%remote`` / ``%%remote`` keep using it.  ``%rconnections`` lists it
        and says it is not bound; ``%rbind NAME`` binds it again.
        (``%rdisconnect NAME`` closes it.)

        Examples
        --------
        ::

            In [7]: %reset -f

            In [8]: %rbind r
            Bound r to the session r (127.0.0.1:18812)

            In [9]: %rbind gpu --as g
        """
        args = arguments.parse(self.rbind, line)
        session = self.extension.session(args.name)
        variable = args.variable or session.name
        if not variable.isidentifier():
            raise UsageError(BAD_VARIABLE.format(variable))
        self.shell.user_ns[variable] = session
        print(f"Bound {variable} to the session {session.name} ({session.address})")

    def _bound(self, session):
        """Whether a notebook variable (not ``_``, ``Out``, ...) holds the session."""
        return any(value is session and not name.startswith("_") for name, value in self.shell.user_ns.items())

    @staticmethod
    def _probe(session):
        if session.state == "lost" and session.resumable:
            try:
                line = session.resume()
            except RSymError as exc:
                print(f"{session.name}: {exc}")
                return session.state, "-"
            if line:
                print(line)
        if session.state != "connected":
            return session.state, "-"
        try:
            rtt = session.ping()
        except RSymError:
            return session.state if session.state != "connected" else "no answer", "-"
        return session.state, f"{rtt * 1000:.2f} ms"
