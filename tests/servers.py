"""Servers on loopback for the tests: a stock ``rpyc_classic`` and ``jupyter-rsym serve``,
child processes on ports the OS picks (``jupyter_rsym.localserver`` reads them back)."""

import sys

from jupyter_rsym import localserver

from .waits import wait_until

CLASSIC_SERVER = [sys.executable, "-c", "import sys; from rpyc.cli.rpyc_classic import main; sys.exit(main())"]


class LogWaits:
    def wait_for_log(self, text, timeout=10):
        """Wait (bounded) until a log line contains ``text``; return that line."""

        def found():
            return next((line for line in list(self.log) if text in line), None)

        try:
            return wait_until(found, timeout, f"a log line with {text!r}")
        except AssertionError as error:
            raise AssertionError(f"{error}; the log: {''.join(self.log)}") from None


class ClassicServer(LogWaits, localserver.ServerProcess):
    """``rpyc_classic --host 127.0.0.1 -p 0`` in a child process."""

    def __init__(self, host="127.0.0.1", port=0, extra_args=(), env=None, cwd=None):
        super().__init__([*CLASSIC_SERVER, "--host", host, "-p", str(port), *extra_args], host, env, cwd)


class RsymServer(LogWaits, localserver.RsymServer):
    """``python -m jupyter_rsym.server`` in a child process (see ``localserver.RsymServer``)."""
