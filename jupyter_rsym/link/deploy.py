"""``%rconnect ssh://HOST --deploy``: start our server on a host that has only Python and sshd.

Like rpyc's ``utils/zerodeploy.py`` (rpyc and the server copied into a
temporary directory, a server on the remote's loopback, reached through a
tunnel, gone with its directory at the end), with three differences:

- everything travels on the stdin of one ``ssh HOST python -c BOOTSTRAP``
  (no scp, no file on the remote before the fresh 0700 directory exists,
  one login instead of several);
- the server gets a random token on that stdin, never on a command line
  (``ps`` shows command lines to every user of the host);
- the remote side (``launcher.py``) deletes its directory itself when it
  stops, whichever way: ``stop`` from ``%rdisconnect`` or kernel shutdown,
  SIGTERM, or by itself once idle.  A dropped link does not stop it: it
  keeps the session for ``RSym.deploy_resume_grace`` seconds, the next use
  resumes it through a new login and tunnel, and when the grace period ends
  with nobody attached it exits.  Stopping it after a resume (the ssh that
  carried its stdin is gone) sends SIGTERM over the current login, only to
  a process whose command line still holds ``MARKER`` (``STOP_SCRIPT``), so
  a pid the system gave to another process meanwhile is never signalled.

The archive holds rpyc's sources (without the parts that need plumbum) and
our remote package whole (``jupyter_rsym/remote``, as ``REMOTE_PACKAGE``),
nothing else; the remote Python needs no packages.
"""

import collections
import functools
import io
import json
import subprocess
import tarfile
import threading
from pathlib import Path

import rpyc
from plumbum.commands import shquote

from ..remote import bundle
from ..remote.tokens import make_token
from .errors import ConnectFailed

# the only code on a command line: check the version (in syntax any Python
# parses), then run the launcher that follows on stdin
MIN_PYTHON = (3, 8)  # rpyc 6's
MARKER = "jupyter-rsym-launcher"  # on the launcher's command line: how STOP_SCRIPT knows it
BOOTSTRAP = (
    "import sys;sys.version_info<%r and sys.exit('jupyter_rsym needs Python %d.%d or newer"
    " on the remote, this is '+sys.version.split()[0]);"
    "exec(compile(sys.stdin.buffer.read(int(sys.stdin.buffer.readline())),"
    "'%s','exec'))" % (MIN_PYTHON, *MIN_PYTHON, MARKER)
)
# run with the deployed Python over a login: SIGTERM the launcher PID (argv[1])
# only while its command line holds MARKER, wait (bounded) until it ended; if it
# does not end, SIGKILL it and delete its DIRECTORY (argv[2]) here
STOP_SCRIPT = """
import os, shutil, signal, sys, time
pid, directory = int(sys.argv[1]), sys.argv[2]
def ours():
    try:
        with open('/proc/%%d/cmdline' %% pid, 'rb') as f:
            return %r in f.read()
    except OSError:
        return False
if ours():
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + %r
    while ours() and time.monotonic() < deadline:
        time.sleep(0.05)
    if ours():
        os.kill(pid, signal.SIGKILL)
        shutil.rmtree(directory, ignore_errors=True)
"""
RPYC_LEFT_OUT = ("cli/rpyc_", "utils/zerodeploy.py")  # they import plumbum; a server does not need them
REMOTE_PACKAGE = "jupyter_rsym_remote"  # the remote package's name in the archive
SHELL_NOT_FOUND = (126, 127)  # the remote shell's exit codes for a command it cannot run
LOG_LINES = 20
STOP_TIMEOUT = 5.0
STOP_SCRIPT = STOP_SCRIPT % (MARKER.encode(), STOP_TIMEOUT)

NO_PYTHON = "no Python at {python!r} on {target} ({line}); give one with --python PATH"
FAILED = "the server deployed on {target} with {python} failed to start: {line}"
NOT_READY = "the server deployed on {target} with {python} did not start in {seconds:g} s{line}"


@functools.cache
def archive():
    """The files the remote server needs, as tar.gz bytes (built once per process)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        root = Path(rpyc.__file__).resolve().parent
        for path in sorted(root.rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if not relative.startswith(RPYC_LEFT_OUT):
                tar.add(path, arcname=f"rpyc/{relative}")
        for path in sorted(bundle.PACKAGE_DIR.rglob("*.py")):
            tar.add(path, arcname=f"{REMOTE_PACKAGE}/{path.relative_to(bundle.PACKAGE_DIR).as_posix()}")
    return buffer.getvalue()


class DeployedServer:
    """Our server, started over ssh in a fresh temporary directory of the remote.

    ``port`` (on the remote's loopback), ``directory``, ``pid`` and ``token``
    describe it once started; ``stop()`` ends it, and it deletes the
    directory.  It keeps a session ``grace`` s after its link drops.  What it
    printed is kept in ``log`` (last lines), never shown in a cell.
    """

    def __init__(self, machine, target, python, timeout, grace=600.0):
        self.target = target
        self.python = python
        self.grace = grace
        self.token = make_token()
        self.log = collections.deque(maxlen=LOG_LINES)
        self.port = self.directory = self.pid = None
        self._answer = None
        self._answered = threading.Event()
        self.process = self._start(machine)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, machine):
        process = machine.popen(["exec", shquote(self.python), "-c", shquote(BOOTSTRAP)])
        self._readers = [
            threading.Thread(
                target=self._read,
                args=(process, stream, first),
                daemon=True,
                name="jupyter-rsym deployed server output",
            )
            for stream, first in ((process.stdout, True), (process.stderr, False))
        ]
        for reader in self._readers:
            reader.start()
        launcher = (bundle.PACKAGE_DIR / "launcher.py").read_bytes()
        data = archive()
        spec = json.dumps(
            {"token": self.token, "archive_bytes": len(data), "package": REMOTE_PACKAGE, "resume_grace": self.grace}
        ).encode()
        try:
            process.stdin.write(b"%d\n%s%s\n%s" % (len(launcher), launcher, spec, data))
            process.stdin.flush()
        except OSError:  # the remote command already ended (no such Python): said below
            pass
        return process

    def _read(self, process, stream, first):
        """Keep what the remote printed; the first stdout line is its answer.
        Reaps the ssh once its stdout ends (its link dropped, say): no zombie."""
        answer = first
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip()
            if answer:
                self._answer, answer = line, False
                self._answered.set()
            elif line:
                self.log.append(line)
        if answer:
            self._answered.set()  # ended without answering
        if first:
            process.wait()

    def _said(self, code, first=False):
        """The line of its output that says why it ended (a shell says it first,
        a Python traceback last)."""
        if not self.log:
            return f"it exited with code {code} and printed nothing"
        return self.log[0] if first else self.log[-1]

    def _wait_ready(self, timeout):
        names = {"target": self.target, "python": self.python}
        if not self._answered.wait(timeout):
            raise ConnectFailed(NOT_READY.format(seconds=timeout, line="", **names))
        answer = self._answer or ""
        kind, _, rest = answer.partition(" ")
        if kind == "ready":
            port, pid, self.directory = rest.split(" ", 2)
            self.port, self.pid = int(port), int(pid)
            return
        if kind == "failed":
            raise ConnectFailed(FAILED.format(line=rest, **names))
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        for reader in self._readers:  # what it said last explains why
            reader.join(1)
        if code in SHELL_NOT_FOUND:
            raise ConnectFailed(NO_PYTHON.format(line=self._said(code, first=True), **names))
        raise ConnectFailed(FAILED.format(line=answer or self._said(code), **names))

    def stop(self, login=None, timeout=STOP_TIMEOUT):
        """Stop the server (it deletes its directory) and wait, bounded, for it to end.

        A ``stop`` line on its stdin if the ssh that started it still runs;
        otherwise (the link dropped since) or if that does not end it,
        ``STOP_SCRIPT`` over ``login()`` (a logged-in machine)."""
        process, self.process = self.process, None
        if process is None:
            return
        try:
            process.stdin.write(b"stop\n")
            process.stdin.close()
            process.wait(timeout)
            if process.returncode == 0:  # the launcher ended
                return
        except (OSError, subprocess.TimeoutExpired):  # gone with the link, or the link is dead
            process.kill()
            process.wait(timeout)
        if login is not None and self.pid is not None:
            self.stop_by_pid(login())

    def stop_by_pid(self, machine, timeout=STOP_TIMEOUT):
        """SIGTERM the launcher over ``machine`` (see ``STOP_SCRIPT``)."""
        machine[self.python]["-c", STOP_SCRIPT, str(self.pid), self.directory].run(timeout=timeout * 2 + 5)
