"""``jupyter-rsym serve`` on loopback as a child process, for ``jupyter-rsym demo``.

It binds port 0, so the OS picks a free port, and the real port (and the
paste line with its token) is read back from the server's start-up log
lines.  The tests build their servers on these classes (``tests/servers.py``).
"""

import os
import re
import signal
import subprocess
import sys
import threading

_STARTED = re.compile(r"server started on \[(?P<host>[^\]]+)\]:(?P<port>\d+)")
_PASTE = re.compile(r"paste into a notebook: (?P<line>%rconnect .*?)\s*$")


class ServerProcess:
    """A server in a child process that logs rpyc_classic's start-up line.

    ``start()`` waits (bounded) for the server to listen; ``stop()`` ends it
    and its process group.  Also a context manager.
    """

    def __init__(self, args, host="127.0.0.1", env=None, cwd=None):
        self.host = host
        self.port = None
        self.process = None
        self._args = list(args)
        self._env = env
        self._cwd = cwd
        self.log = []

    def start(self, timeout=20):
        self.process = subprocess.Popen(
            self._args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=self._env,
            cwd=self._cwd,
            start_new_session=True,
        )
        started = threading.Event()
        threading.Thread(target=self._read_log, args=(started,), daemon=True).start()
        if not started.wait(timeout) or self.port is None:
            self.stop()
            raise RuntimeError(f"{self._args} did not start in {timeout} s: {''.join(self.log)}")
        return self

    def _read_log(self, started):
        for line in self.process.stderr:
            self.log.append(line)
            self._parse(line)
            match = _STARTED.search(line)
            if match and self.port is None:
                self.port = int(match["port"])
                started.set()
        started.set()

    def _parse(self, line):
        """Read what a subclass needs from a log line that precedes the start-up line."""

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def signal(self, signum):
        os.killpg(self.process.pid, signum)

    def stop(self, timeout=5):
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            self.process.wait(timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                self.signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class RsymServer(ServerProcess):
    """``python -m jupyter_rsym.server --host 127.0.0.1 --port 0 ARGS`` in a child process.

    After ``start()``: ``port``, ``token`` (None with ``--no-auth``) and
    ``paste_line`` (the ``%rconnect ...`` line it printed).  ``log`` keeps its
    log lines as they come.  ``python`` is the interpreter command (with
    options), ``cwd`` its working directory.
    """

    def __init__(self, host="127.0.0.1", port=0, extra_args=(), env=None, cwd=None, python=(sys.executable,)):
        super().__init__(
            [*python, "-m", "jupyter_rsym.server", "--host", host, "--port", str(port), *extra_args],
            host,
            env=env,
            cwd=cwd,
        )
        self.token = None
        self.paste_line = None

    def _parse(self, line):
        match = _PASTE.search(line)
        if match:
            self.paste_line = match["line"]
            token = re.search(r"--token (\S+)", self.paste_line)
            self.token = token[1] if token else None

    @property
    def address(self):
        scheme = "tls://" if self.paste_line and "tls://" in self.paste_line else ""
        return f"{scheme}{self.host}:{self.port}"
