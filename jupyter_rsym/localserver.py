"""A stock ``rpyc_classic`` server on loopback, as a child process.

Used by the demo and the tests: it binds port 0, so the OS picks a free port,
and the real port is read back from the server's start-up log line.
"""

import os
import re
import signal
import subprocess
import sys
import threading

_STARTED = re.compile(r"server started on \[(?P<host>[^\]]+)\]:(?P<port>\d+)")
CLASSIC_SERVER = [sys.executable, "-c", "import sys; from rpyc.cli.rpyc_classic import main; sys.exit(main())"]


class ClassicServer:
    """``rpyc_classic --host 127.0.0.1 -p 0`` in a child process.

    ``start()`` waits (bounded) for the server to listen; ``stop()`` ends it
    and its process group.  Also a context manager.
    """

    def __init__(self, host="127.0.0.1", port=0, extra_args=(), env=None):
        self.host = host
        self.port = None
        self.process = None
        self._args = [*CLASSIC_SERVER, "--host", host, "-p", str(port), *extra_args]
        self._env = env
        self.log = []

    def start(self, timeout=20):
        self.process = subprocess.Popen(
            self._args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env=self._env, start_new_session=True,
        )
        started = threading.Event()
        threading.Thread(target=self._read_log, args=(started,), daemon=True).start()
        if not started.wait(timeout) or self.port is None:
            self.stop()
            raise RuntimeError(f"rpyc_classic did not start in {timeout} s: {''.join(self.log)}")
        return self

    def _read_log(self, started):
        for line in self.process.stderr:
            self.log.append(line)
            match = _STARTED.search(line)
            if match and self.port is None:
                self.port = int(match["port"])
                started.set()
        started.set()

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
