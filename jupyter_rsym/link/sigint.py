"""Kernel interrupts while the notebook waits on the remote.

ipykernel delivers an interrupt as SIGINT, which Python turns into
KeyboardInterrupt in the main thread, wherever it is.  Two places are unsafe
for rpyc: in the middle of reading a frame (the rest of the frame would be
read as the next one, corrupting the stream) and inside ``Connection.serve``
(rpyc releases its receive lock only for ``Exception``, so background serving
would stop for good).  ``InterruptGuard`` defers Ctrl-C while a frame is
being read; ``RoutedConnection.request`` releases the lock and asks the
remote to stop the work (see ``agent/interrupts.py``).
"""

import signal
import threading
from contextlib import contextmanager

from ..remote.wire import FrameChannel

try:  # the C functions: the signal module's wrappers convert to enums (~10 us a call)
    from _signal import getsignal
    from _signal import signal as set_handler
except ImportError:  # pragma: no cover
    from signal import getsignal
    from signal import signal as set_handler


class InterruptGuard:
    """Defers SIGINT while the main thread reads a frame of one connection."""

    def __init__(self):
        self.reading = False
        self.pending = False
        self._depth = 0
        self._previous = None

    def enter(self):
        """Install the deferring handler (main thread only); returns a token for ``leave``."""
        if threading.current_thread() is not threading.main_thread():
            return False
        if self._depth == 0:
            previous = getsignal(signal.SIGINT)
            if previous is not signal.default_int_handler:
                return False  # SIGINT ignored (kernel idle) or someone else's handler
            self._previous = previous
            self.pending = False
            set_handler(signal.SIGINT, self._on_sigint)
        self._depth += 1
        return True

    def leave(self, token):
        if not token:
            return
        self._depth -= 1
        if self._depth == 0:
            set_handler(signal.SIGINT, self._previous)
            if self.pending:  # arrived during the last frame: deliver it now
                self.pending = False
                raise KeyboardInterrupt

    def _on_sigint(self, signum, frame):
        if self.reading:
            self.pending = True
            return
        raise KeyboardInterrupt

    def take_pending(self):
        pending, self.pending = self.pending, False
        return pending


class GuardedChannel(FrameChannel):
    """An rpyc Channel (the copy-free one, ``agent/wire.py``) that tells its
    guard while the main thread reads a frame."""

    def __init__(self, stream, compress=True):
        super().__init__(stream, compress)
        self.guard = InterruptGuard()
        self._main = threading.main_thread().ident

    def recv(self):
        if threading.get_ident() != self._main:
            return super().recv()
        self.guard.reading = True
        try:
            return super().recv()
        finally:
            self.guard.reading = False


@contextmanager
def deferred():
    """Hold Ctrl-C in the main thread of a running cell until the block ends,
    then raise it: for writes to a connection that must not be cut in half."""
    if (
        threading.current_thread() is not threading.main_thread()
        or getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    pressed = []
    previous = set_handler(signal.SIGINT, lambda signum, frame: pressed.append(signum))
    try:
        yield
    finally:
        set_handler(signal.SIGINT, previous)
        if pressed:
            raise KeyboardInterrupt
