"""``ssh://[USER@]HOST[:SSHPORT][/PORT]``: a server on PORT of HOST's loopback,
reached through an OpenSSH tunnel.

plumbum's ``SshMachine`` (rpyc already depends on plumbum) runs the user's
own ``ssh``, so ``~/.ssh/config``, the agent, keys and known_hosts apply as
in a terminal; ``RSym.ssh_options`` adds arguments (``['-F', 'file']``).
We only add ``BatchMode=yes`` (a kernel has no terminal: nothing may
prompt, and an unknown or changed host key fails instead of being asked
about) and bounds on connecting.  Host keys are checked as the user's
``StrictHostKeyChecking`` says; we never accept one ourselves.

The tunnel's local end is a Unix socket in a fresh 0700 directory, so no
other local user can reach it (a loopback TCP port would be open to all).
It forwards to 127.0.0.1:PORT as seen from HOST.  Every stream of the
session (main connection, side connection for interrupts) is a new
connection through the same tunnel.  If the tunnel's ssh has died (link
dropped), the next stream opens a new one, after a new login if that died
too: that is how a session resumes over SSH, to ``jupyter-rsym serve`` or
to a deployed server.  ``--deploy`` first starts our server on HOST
(``deploy.py``); it outlives a dropped link for ``RSym.deploy_resume_grace``.
"""

import logging
import math
import os
import shutil
import socket
import tempfile
import threading
from dataclasses import replace

from plumbum import SshMachine
from plumbum.commands import CommandNotFound, ProcessExecutionError

from .errors import ConnectFailed
from .transport import Transport

LOOPBACK = "127.0.0.1"
# how plumbum reports a failed login: ssh ended (ProcessExecutionError, EOFError),
# or plumbum closed its pipes after connect_timeout (ValueError)
# BrokenPipeError: ssh ended (e.g. connection refused) before plumbum wrote to its shell
LOGIN_FAILED = (ProcessExecutionError, EOFError, ValueError, BrokenPipeError)
# ssh's own answers to a failed login, and what they mean for the user
CHANGED_KEY = "REMOTE HOST IDENTIFICATION HAS CHANGED"
KEY_CHECK_FAILED = "Host key verification failed"
DENIED = "Permission denied"
KEY_CHANGED_HINT = (
    "the host key of {target} has CHANGED since it was saved in known_hosts (someone may be "
    "intercepting the connection, or the host was reinstalled); refusing to connect. Check the "
    "new key with its administrator, then remove the old one: ssh-keygen -R {host}"
)
KEY_UNKNOWN_HINT = (
    "the host key of {target} is not in known_hosts, and it is never accepted silently; "
    "check and accept it once in a terminal (ssh {target}), then connect again"
)
DENIED_HINT = "ssh login to {target} refused ({line}); check the user name, your key or ssh-agent"
NO_ANSWER = "no answer from ssh {target} in {seconds:g} s"
SSH_FAILED = "ssh {target} failed: {line}"
PORT_CLOSED = (
    "{address}: nothing answered on port {port} of {host}'s loopback (the SSH tunnel's "
    "connection closed at once); is a server running there?"
)


log = logging.getLogger(__name__)

# plumbum logs a login timeout too; we raise it as one line instead (without a
# handler of its own, logging's last resort would print it into the cell)
logging.getLogger("plumbum.shell").addHandler(logging.NullHandler())


def ssh_arguments(settings):
    """The ``ssh`` arguments for ``settings``: the user's ``ssh_options`` first
    (ssh keeps the first value it gets for an option, so the user's win), then ours."""
    wait = max(1, math.ceil(settings.ssh_timeout))
    arguments = [
        *settings.ssh_options,
        "-o",
        "BatchMode=yes",
        "-o",
        f"ConnectTimeout={wait}",
        "-o",
        "ExitOnForwardFailure=yes",
    ]
    if settings.keepalive:  # notice a vanished host while idle, as TCP keepalive does
        arguments += ["-o", f"ServerAliveInterval={settings.keepalive}"]
    return arguments


class Machine(SshMachine):
    """plumbum's ``SshMachine``, remembering the last ssh process it started so
    that a failed login can report all of what ssh said."""

    last_process = None

    def popen(self, *args, **kwargs):
        kwargs["new_session"] = True  # a kernel interrupt (SIGINT to its group) must not kill ssh
        process = super().popen(*args, **kwargs)
        self.last_process = process
        return process


def login_failure(target, host, exc, process, seconds):
    """The ``ConnectFailed`` for a failed ssh login, from what ssh printed."""
    said = getattr(exc, "stderr", "") or ""
    if process is not None:
        try:
            process.wait(timeout=1)
            said += process.stderr.read().decode(errors="replace")
        except Exception:  # killed on timeout (pipes closed) or still running
            pass
    lines = [line.strip() for line in said.replace("\r", "").splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    if CHANGED_KEY in said:
        return ConnectFailed(KEY_CHANGED_HINT.format(target=target, host=host))
    if KEY_CHECK_FAILED in said:
        return ConnectFailed(KEY_UNKNOWN_HINT.format(target=target))
    if DENIED in said:
        return ConnectFailed(DENIED_HINT.format(target=target, line=line.rstrip(".")))
    if not lines and getattr(exc, "retcode", None) is None:
        return ConnectFailed(NO_ANSWER.format(target=target, seconds=seconds))
    return ConnectFailed(SSH_FAILED.format(target=target, line=line or exc))


class SshTransport(Transport):
    """Streams through an SSH tunnel to a server on the remote's loopback.

    A token (``credentials``) is proved on every stream, as over TCP.  With
    ``deploy`` (the remote Python to use), our server is first started on the
    remote in a temporary directory (``deploy.DeployedServer``) with a token
    of its own; ``address.port`` then becomes the port it chose, and
    ``close()`` stops it and removes the directory (over a new login if the
    link dropped since).
    """

    def __init__(self, address, settings, credentials=None, deploy=None):
        super().__init__(address, settings, credentials)
        self.target = f"{address.user}@{address.host}" if address.user else address.host
        self.login_timeout = settings.ssh_timeout
        self.deploy_grace = settings.deploy_resume_grace
        self.options = ssh_arguments(settings)
        self.server = None
        self.deployed_with = deploy  # the remote Python
        self._machine = None
        self._tunnel = None
        self._tunnels = 0
        self._lock = threading.Lock()
        self._socket_dir = tempfile.mkdtemp(prefix="jupyter-rsym-ssh-")  # 0700
        try:
            self._machine = self._login()
            if deploy is not None:
                self._deploy(deploy)
            self._open_tunnel()
        except BaseException:
            self.close()
            raise

    def _login(self):
        address = self.address
        machine = Machine.__new__(Machine)  # kept even if __init__ (the login) fails
        try:
            machine.__init__(
                address.host,
                user=address.user,
                port=address.ssh_port,
                ssh_opts=self.options,
                scp_opts=self.options,
                connect_timeout=self.login_timeout,
                new_session=True,
            )
        except LOGIN_FAILED as exc:
            raise login_failure(self.target, address.host, exc, machine.last_process, self.login_timeout) from None
        except CommandNotFound:
            raise ConnectFailed(f"no ssh client here to reach {self.target}: install OpenSSH") from None
        except BaseException:  # an interrupt while logging in: leave no ssh behind
            if machine.last_process is not None:
                machine.last_process.kill()
            raise
        return machine

    def _deploy(self, python):
        from .deploy import DeployedServer

        self.server = DeployedServer(self._machine, self.target, python, self.login_timeout, self.deploy_grace)
        self.address = replace(self.address, port=self.server.port)
        self.token, self.token_required = self.server.token, True

    @property
    def rconnect_args(self):
        if self.deployed_with is None:
            return str(self.address)
        ssh_port = f":{self.address.ssh_port}" if self.address.ssh_port else ""
        return f"ssh://{self.target}{ssh_port} --deploy --python {self.deployed_with}"

    def _open_tunnel(self):
        """A new tunnel from a fresh Unix socket here to 127.0.0.1:PORT there."""
        self._tunnels += 1
        path = os.path.join(self._socket_dir, f"tunnel-{self._tunnels}")
        machine = self._machine
        try:
            machine = self._logged_in()
            self._tunnel = machine.tunnel(
                path, self.address.port, lhost=None, dhost=LOOPBACK, connect_timeout=self.login_timeout
            )
        except LOGIN_FAILED as exc:
            raise login_failure(self.target, self.address.host, exc, machine.last_process, self.login_timeout) from None
        self._socket_path = path

    def _logged_in(self):
        """The machine, logged in again first if the link dropped (lock held)."""
        if not self._machine._session.alive():
            self._machine.close()
            self._machine = self._login()
        return self._machine

    def _login_for_stop(self):
        with self._lock:
            if self._machine is None:
                return self._login()  # closed meanwhile; a login just for the stop
            return self._logged_in()

    def new_stream(self):
        """A new connection through the tunnel; a tunnel whose ssh has died (the
        link dropped) is replaced by a new one first."""
        from rpyc.core.stream import SocketStream

        with self._lock:
            if self._machine is None:
                raise ConnectFailed(f"{self.address}: the SSH transport is closed")
            if not self._tunnel._session.alive():
                self._reopen_tunnel()
        try:
            sock = self._connect_tunnel()
        except OSError:  # its ssh is just ending: no listener any more
            with self._lock:
                self._reopen_tunnel()
            try:
                sock = self._connect_tunnel()
            except OSError as exc:
                raise ConnectFailed(f"cannot open the SSH tunnel to {self.address}: {exc.strerror or exc}") from None
        return SocketStream(sock)

    def _connect_tunnel(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        sock.settimeout(None)
        return sock

    def _reopen_tunnel(self):
        self._tunnel.close()
        self._open_tunnel()

    def not_a_server(self, exc):
        if isinstance(exc, EOFError):  # ssh closes our end when nothing listens there
            return ConnectFailed(
                PORT_CLOSED.format(  # the server is gone: a resume fails at once
                    address=self.address, port=self.address.port, host=self.address.host
                ),
                refused=True,
            )
        return super().not_a_server(exc)

    def close(self):
        """Stop a deployed server (and remove its directory), then close the tunnel and ssh."""
        with self._lock:
            server, self.server = self.server, None
        if server is not None:
            try:
                server.stop(self._login_for_stop)
            except Exception as exc:  # no login now: it exits by itself after its grace period
                log.warning("could not stop the server deployed on %s: %s", self.target, exc)
        with self._lock:
            tunnel, self._tunnel = self._tunnel, None
            machine, self._machine = self._machine, None
        for closable in (tunnel, machine):
            if closable is not None:
                try:
                    closable.close()
                except Exception:  # already gone with the link
                    pass
        shutil.rmtree(self._socket_dir, ignore_errors=True)
