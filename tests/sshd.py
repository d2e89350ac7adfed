"""A real OpenSSH server on loopback, for tests of SSH tunnels and remote starts.

Everything is throwaway and self-contained: host key, client key, sshd_config,
and a client config (``-F``) with its own known_hosts, so tests never read or
write ~/.ssh. Key-only login as the current user (root on CI).

The client config sets ``HostKeyAlias``, so the host key also verifies when
ssh is pointed at another port (e.g. a DelayProxy in front of sshd:
``ssh -F cfg -o Port=<proxy port> rsym-test``).
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from .waits import wait_until

SSHD = "/usr/sbin/sshd"  # sshd re-executes itself, so it needs an absolute path
PRIVSEP_DIR = Path("/run/sshd")
HOST_ALIAS = "rsym-test"
START_ATTEMPTS = 5
START_TIMEOUT = 15.0
SSH_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def _free_port():
    """A port the OS just handed out; sshd may still lose it to a race, hence retries."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path, comment):
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        timeout=SSH_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    return Path(path)


def _public_key(path):
    """``type base64`` of a key pair's public half (no comment)."""
    return " ".join(Path(f"{path}.pub").read_text().split()[:2])


def _write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return Path(path)


def _children_of(pid):
    """Pids whose parent is ``pid`` (from /proc): sshd's per-connection processes."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name may contain spaces and parentheses: fields start after the last ')'
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return children


class SshServer:
    """``sshd -D -e`` on 127.0.0.1:<free port>, plus a client config that reaches it as ``rsym-test``."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.host_alias = HOST_ALIAS
        self.port = None
        self.process = None
        self.host_key = _keygen(self.directory / "host_ed25519", "rsym-test host")
        self.client_key = _keygen(self.directory / "client_ed25519", "rsym-test client")
        self.authorized_keys = _write_private(self.directory / "authorized_keys", _public_key(self.client_key) + "\n")
        self.sshd_config = self.directory / "sshd_config"
        self.log_file = self.directory / "sshd.log"
        self.pid_file = self.directory / "sshd.pid"
        self.known_hosts = self.directory / "known_hosts"
        self.config_file = self.directory / "ssh_config"

    @property
    def ssh_options(self):
        """Options for ssh (and scp) that make ``rsym-test`` reach this server and nothing else."""
        return ["-F", str(self.config_file)]

    def log(self):
        """What sshd printed so far (useful in assertion messages)."""
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    # configuration -------------------------------------------------------------

    def _write_sshd_config(self):
        _write_private(
            self.sshd_config,
            f"""\
Port {self.port}
ListenAddress 127.0.0.1
HostKey {self.host_key}
PidFile {self.pid_file}
AuthorizedKeysFile {self.authorized_keys}
AllowUsers {self.user}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
GatewayPorts no
X11Forwarding no
PrintMotd no
MaxStartups 100
MaxSessions 100
Subsystem sftp internal-sftp
LogLevel VERBOSE
""",
        )

    def write_known_hosts(self, path, public_key):
        """A known_hosts file saying that ``rsym-test`` (and 127.0.0.1:port) has ``public_key``."""
        return _write_private(path, f"{self.host_alias} {public_key}\n[127.0.0.1]:{self.port} {public_key}\n")

    def write_client_config(self, path, known_hosts):
        """An ssh client config for ``rsym-test`` that trusts only the keys in ``known_hosts``."""
        return _write_private(
            path,
            f"""\
Host {self.host_alias}
    HostName 127.0.0.1
    Port {self.port}
    User {self.user}
    HostKeyAlias {self.host_alias}
    IdentityFile {self.client_key}
    IdentitiesOnly yes
    UserKnownHostsFile {known_hosts}
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    UpdateHostKeys no
    CheckHostIP no
    BatchMode yes
    PasswordAuthentication no
    ConnectTimeout 10
    ControlMaster no
    ControlPath none
    LogLevel ERROR
""",
        )

    def config_with_wrong_host_key(self):
        """A client config whose known_hosts lists a different key for ``rsym-test``:
        ssh with it must fail with "Host key verification failed"."""
        wrong_key = self.directory / "wrong_host_ed25519"
        if not wrong_key.exists():
            _keygen(wrong_key, "not the rsym-test host")
        known_hosts = self.write_known_hosts(self.directory / "known_hosts_wrong", _public_key(wrong_key))
        return self.write_client_config(self.directory / "ssh_config_wrong_host_key", known_hosts)

    # running ---------------------------------------------------------------------

    def ssh(self, *command, options=(), timeout=SSH_TIMEOUT, **kwargs):
        """Run ``ssh -F <config> [options] rsym-test command...``; returns the CompletedProcess."""
        return subprocess.run(
            ["ssh", *self.ssh_options, *options, self.host_alias, *command],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,
        )

    def ssh_machine(self, **kwargs):
        """A plumbum ``SshMachine`` on this server (close it when done)."""
        from plumbum import SshMachine

        return SshMachine(self.host_alias, ssh_opts=self.ssh_options, scp_opts=self.ssh_options, **kwargs)

    def start(self, timeout=START_TIMEOUT):
        """Start sshd on a free port and wait until an ssh login works; retries if the port was taken."""
        if not os.path.exists(SSHD):
            raise RuntimeError(f"{SSHD} not found: install openssh-server (.ci/run does)")
        if os.getuid() == 0:
            PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        deadline = time.monotonic() + timeout
        for _ in range(START_ATTEMPTS):
            self.port = _free_port()
            self._write_sshd_config()
            self.write_known_hosts(self.known_hosts, _public_key(self.host_key))
            self.write_client_config(self.config_file, self.known_hosts)
            with open(self.log_file, "ab") as log:
                self.process = subprocess.Popen(
                    [SSHD, "-D", "-e", "-f", str(self.sshd_config)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            if self._wait_ready(deadline):
                return self
            if self.process.poll() is None:  # running but not answering in time: give up
                break
            self.process = None  # exited, most likely lost the port: try another
        self.stop()
        raise RuntimeError(f"sshd did not become ready within {timeout} s; its log:\n{self.log()}")

    def _wait_ready(self, deadline):
        """True once an ssh login works; False if sshd exited or ``deadline`` passed."""

        def ready():
            if self.process.poll() is not None:
                return "exited"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            except OSError:
                return None
            try:
                remaining = max(0.5, deadline - time.monotonic())
                if self.ssh("true", timeout=min(SSH_TIMEOUT, remaining)).returncode == 0:
                    return "ready"
            except subprocess.TimeoutExpired:
                pass
            return None

        try:
            return (
                wait_until(ready, max(0.0, deadline - time.monotonic()), "sshd to accept logins", interval=0.05)
                == "ready"
            )
        except AssertionError:
            return False

    def kill_sessions(self):
        """Kill every open ssh connection (and so its tunnels) on the server side; keep listening."""
        if self.process is None:
            return 0
        children = _children_of(self.process.pid)
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        return len(children)

    def stop(self):
        """Stop sshd and the connections it serves."""
        process, self.process = self.process, None
        if process is None:
            return
        children = _children_of(process.pid)
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A running OpenSSH server reachable as ``rsym-test`` with ``ssh -F sshd.config_file``."""
    if shutil.which("ssh") is None:
        raise RuntimeError("ssh client not found: install openssh-client")
    with SshServer(tmp_path_factory.mktemp("sshd")) as server:
        yield server
