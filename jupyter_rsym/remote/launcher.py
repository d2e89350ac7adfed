"""Runs on the remote host for ``%rconnect ssh://HOST --deploy``: unpack, serve, clean up.

``deploy.py`` starts ``python -c BOOTSTRAP`` over ssh and sends this file's
source on its stdin, so nothing is written on the remote before the fresh
directory exists and only the short bootstrap is on a command line.  Then,
still on stdin: one JSON line (the token, the archive's size), the archive
(tar.gz of rpyc and our server modules), and control lines.  The token
arrives only this way: another user of the host can read command lines
(``ps``), not our stdin.

On stdout it answers one line, ``ready PORT PID DIRECTORY`` or ``failed
REASON``, and nothing else.  The server listens on 127.0.0.1 only, and
keeps the notebook's session across a dropped link for the spec's
``resume_grace`` seconds, as ``jupyter-rsym serve --exit-when-idle`` does.
It stops on a ``stop`` line (``%rdisconnect``, kernel shutdown), on SIGTERM
(``deploy.STOP_SCRIPT``, how the notebook stops it after a resume, when the
ssh that carried this stdin is gone), or by itself once no connection is
open and no session is kept (after a disconnect, or when a grace period
ends with nobody attached); it then deletes its directory and exits even if
remote threads are still running.  End of input (the ssh link dropped, the
notebook's kernel died) and SIGHUP do not stop it: the session waits for its
notebook to resume it.

Standard library only until the archive is unpacked (then rpyc and the
remote package, under the name the spec gives); never imported by the
notebook side.
"""

import importlib
import io
import json
import os
import shutil
import signal
import sys
import tarfile
import tempfile
import threading

PREFIX = "jupyter-rsym-"
DEFAULT_GRACE = 600.0  # jupyter-rsym serve's --resume-grace


def report(line):
    """One line to the notebook (fd 1 itself: remote code may replace sys.stdout)."""
    os.write(1, (line.replace("\n", " ") + "\n").encode())


def unpack(archive):
    """A fresh directory (mode 0700) holding the archive's files; on sys.path."""
    directory = tempfile.mkdtemp(prefix=PREFIX)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(directory, filter="data")
        else:  # Pythons before the extraction filters: the archive is our own
            tar.extractall(directory)
    sys.path.insert(0, directory)
    return directory


def serve(spec, stopping):
    """Start our server on a free loopback port, in a background thread that
    sets ``stopping`` when the server ends (by itself, once idle)."""
    # the remote package, unpacked under the name the notebook gave it
    bundle = importlib.import_module(spec["package"] + ".bundle")
    rsym_server = importlib.import_module(spec["package"] + ".server")

    rsym_server._setup_logging(None)  # its log goes to stderr, kept by the notebook, never shown
    server = rsym_server.Server(
        "127.0.0.1", 0, token=spec["token"], exit_when_idle=True, resume_grace=spec.get("resume_grace", DEFAULT_GRACE)
    )
    server._listen()
    bundle.register()  # the notebook finds the agent here and sends nothing

    def run():
        try:
            server.serve_forever()
        finally:
            stopping.set()

    threading.Thread(target=run, name="jupyter-rsym server", daemon=True).start()
    return server


def read_stop(stdin, stopping):
    """Set ``stopping`` on a ``stop`` line.  At the end of input (the link
    dropped) just stop reading: the server goes on until it is idle."""
    while True:
        line = stdin.readline()
        if not line:
            # nobody reads our output any more: the server's log goes nowhere
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            return
        if line.strip() == b"stop":
            stopping.set()
            return


def wait_for_stop(stdin, stopping):
    """Block until a ``stop`` line, or the server ended by itself."""
    threading.Thread(target=read_stop, args=(stdin, stopping), daemon=True, name="jupyter-rsym stdin").start()
    while not stopping.wait(0.5):  # in slices: SIGTERM's handler runs between them
        pass


def _stop(signum, frame):
    raise SystemExit(0)


def main():
    sys.dont_write_bytecode = True  # leave nothing but what we unpacked, and delete that
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a dropped link: the session waits for a resume
    stdin = sys.stdin.buffer
    directory = server = None
    stopping = threading.Event()
    try:
        spec = json.loads(stdin.readline())
        archive = stdin.read(spec["archive_bytes"])
        directory = unpack(archive)
        server = serve(spec, stopping)
        report(f"ready {server.port} {os.getpid()} {directory}")
        wait_for_stop(stdin, stopping)
    except BaseException as exc:
        if server is None and not isinstance(exc, (SystemExit, KeyboardInterrupt)):
            report(f"failed {type(exc).__name__}: {exc}")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not skip the clean-up
        if server is not None:
            server.close()
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
        os._exit(0)  # remote threads of the session must not keep the process alive


if __name__ == "__main__":  # as sent by deploy.py; importing this module does nothing
    main()
