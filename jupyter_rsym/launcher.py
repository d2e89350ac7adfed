"""Runs on the remote host for ``%rconnect ssh://HOST --deploy``: unpack, serve, clean up.

``deploy.py`` starts ``python -c BOOTSTRAP`` over ssh and sends this file's
source on its stdin, so nothing is written on the remote before the fresh
directory exists and only the short bootstrap is on a command line.  Then,
still on stdin: one JSON line (the token, the archive's size), the archive
(tar.gz of rpyc and our server modules), and control lines.  The token
arrives only this way: another user of the host can read command lines
(``ps``), not our stdin.

On stdout it answers one line, ``ready PORT PID DIRECTORY`` or ``failed
REASON``, and nothing else.  The server listens on 127.0.0.1 only.  It stops
on a ``stop`` line, on end of input (the ssh link dropped or the notebook's
kernel died: nobody can reach it any more), or on SIGTERM/SIGHUP; it then
deletes its directory and exits even if remote threads are still running.

Standard library only until the archive is unpacked (then rpyc and our
``server``); never imported by the notebook side.
"""

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


def serve(spec):
    """Start our server on a free loopback port, in a background thread."""
    from jupyter_rsym import bundle, server as rsym_server

    rsym_server._setup_logging(None)  # its log goes to stderr, kept by the notebook, never shown
    server = rsym_server.Server("127.0.0.1", 0, token=spec["token"])
    server._listen()
    bundle.register()  # the notebook finds the agent here and sends nothing
    threading.Thread(target=server.serve_forever, name="jupyter-rsym server", daemon=True).start()
    return server


def wait_for_stop(stdin):
    """Block until a ``stop`` line or the end of input."""
    while True:
        line = stdin.readline()
        if not line or line.strip() == b"stop":
            return


def _stop(signum, frame):
    raise SystemExit(0)


def main():
    sys.dont_write_bytecode = True  # leave nothing but what we unpacked, and delete that
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop)
    stdin = sys.stdin.buffer
    directory = server = None
    try:
        spec = json.loads(stdin.readline())
        archive = stdin.read(spec["archive_bytes"])
        directory = unpack(archive)
        server = serve(spec)
        report(f"ready {server.port} {os.getpid()} {directory}")
        wait_for_stop(stdin)
    except BaseException as exc:
        if server is None and not isinstance(exc, (SystemExit, KeyboardInterrupt)):
            report(f"failed {type(exc).__name__}: {exc}")
    finally:
        if server is not None:
            server.close()
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
        os._exit(0)  # remote threads of the session must not keep the process alive


if __name__ == "__main__":  # as sent by deploy.py; importing this module does nothing
    main()
