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

from rpyc.lib import Timeout

from ..remote.wire import FrameChannel, spin_poll

try:  # the C functions: the signal module's wrappers convert to enums (~10 us a call)
    from _signal import getsignal
    from _signal import signal as set_handler
except ImportError:  # pragma: no cover
    from signal import getsignal
    from signal import signal as set_handler


class InterruptGuard:
    """Defers SIGINT while the main thread reads a frame of one connection.

    The deferring handler is one for the process (``on_sigint``) and stays
    once installed: ipykernel puts its own back when the cell ends, and
    outside a frame it raises KeyboardInterrupt as Python's default does.
    Swapping handlers around every request cost two system calls a call.
    """

    def __init__(self):
        self.pending = False
        self._depth = 0

    @property
    def active(self):
        """Whether a request of this connection is being waited on (``enter``)."""
        return self._depth > 0

    def enter(self):
        """Take part in deferring (main thread only); returns a token for ``leave``."""
        if threading.get_ident() != _MAIN:
            return False
        if self._depth == 0:
            handler = getsignal(signal.SIGINT)
            if handler is not on_sigint:
                if handler is not signal.default_int_handler:
                    return False  # SIGINT ignored (kernel idle) or someone else's handler
                set_handler(signal.SIGINT, on_sigint)
            self.pending = False
        self._depth += 1
        return True

    def leave(self, token):
        if not token:
            return
        self._depth -= 1
        if self._depth == 0 and self.pending:  # arrived during the last frame: deliver it now
            self.pending = False
            raise KeyboardInterrupt

    def take_pending(self):
        pending, self.pending = self.pending, False
        return pending


class _Reading:
    guard = None  # the InterruptGuard whose frame the main thread reads now


_reading = _Reading()
_MAIN = threading.main_thread().ident


def on_sigint(signum, frame):
    """The process's SIGINT handler while connections are guarded: Python's
    default, except in the middle of a frame (then the guard delivers it)."""
    guard = _reading.guard
    if guard is not None:
        guard.pending = True
        return
    raise KeyboardInterrupt


class GuardedChannel(FrameChannel):
    """An rpyc Channel (the copy-free one, ``agent/wire.py``) that tells its
    guard while the main thread reads a frame."""

    def __init__(self, stream, compress=True):
        super().__init__(stream, compress)
        self.guard = InterruptGuard()

    def poll(self, timeout):
        # only threads waiting on a reply poll here with a timeout (the
        # reader's serving threads poll(0)); theirs may be unbounded
        left = timeout.timeleft() if type(timeout) is Timeout else timeout
        if left is not None and left <= 0:
            return self.stream.poll(0)
        return spin_poll(self.stream, timeout)

    def recv(self):
        if threading.get_ident() != _MAIN or not self.guard.active:
            return super().recv()
        _reading.guard = self.guard
        try:
            return super().recv()
        finally:
            _reading.guard = None


@contextmanager
def deferred():
    """Hold Ctrl-C in the main thread of a running cell until the block ends,
    then raise it: for writes to a connection that must not be cut in half."""
    if threading.current_thread() is not threading.main_thread() or getsignal(signal.SIGINT) not in (
        signal.default_int_handler,
        on_sigint,
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
