"""Waiting on events instead of sleeping: the one deadline loop of the suite.

``wait_until(predicate)`` polls until ``predicate()`` is true and returns its
value; after ``timeout`` seconds it fails the test naming what it waited for.
The timeout is a bound a hang breaks, never a speed requirement.

``Marker`` is a point in remote code the test can wait for: the remote runs
``marker.touch`` (a line of Python) when it gets there and the test waits with
``marker.wait()``; the other way round, remote code waits at ``marker.awaited``
until the test calls ``marker.set()``.  Every remote process of the suite runs
on this machine, so a file is the simplest signal both sides see.
"""

import atexit
import itertools
import os
import shutil
import tempfile
import time
from pathlib import Path

TIMEOUT = 10.0  # seconds: far above any wait of a working system, far below pytest's timeout

_markers = itertools.count()
_directory = Path(tempfile.gettempdir()) / f"rsym-markers-{os.getpid()}"  # one per test process
atexit.register(shutil.rmtree, _directory, ignore_errors=True)


def wait_until(predicate, timeout=TIMEOUT, what=None, interval=0.02):
    """Poll ``predicate()`` until it is true; return its value, or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)
    return value


class Marker:
    """A file the remote code creates when it reaches a point (``marker.touch``)."""

    def __init__(self, name="reached"):
        _directory.mkdir(exist_ok=True)
        self.path = _directory / f"{name.replace(' ', '-')}-{next(_markers)}"
        self.name = name

    @property
    def touch(self):
        """Python that creates the marker (one expression, usable inside other code)."""
        return f"open({str(self.path)!r}, 'w').close()"

    @property
    def awaited(self):
        """A Python statement that waits (bounded) until the marker exists: the test
        lets remote code go on with ``marker.set()``."""
        return (
            f"any(__import__('os').path.exists({str(self.path)!r}) or __import__('time').sleep(0.01)"
            f" for _ in range({int(TIMEOUT * 100)}))"
        )

    def set(self):
        self.path.touch()

    @property
    def reached(self):
        return self.path.exists()

    def wait(self, timeout=TIMEOUT):
        wait_until(lambda: self.reached, timeout, f"the remote code to reach {self.name!r} ({self.path})")
        return self
