"""Serving the connection while no cell is waiting on it.

rpyc serves incoming requests only in a thread that reads the connection.
While a cell waits on a reply, that thread is the cell's (as in plain rpyc);
the rest of the time, when the kernel is idle or a cell runs local code, a
remote timer's callback would wait forever.  rpyc's ``BgServingThread`` fills
the gap but sleeps 0.1 s between polls and competes with the waiting thread
for every reply.  ``BackgroundServer`` instead blocks in ``select`` on the
socket (no polling, no lock held), steps aside whenever a local thread is
waiting on a reply, and serves one message at a time otherwise.  When the
connection ends under it, whoever waits on the session hears of it
(``LostListeners``).
"""

import os
import select
import threading

LINGER = 0.005  # seconds to stay out of the way after a local thread stops serving


class BackgroundServer:
    """A daemon thread that serves ``conn`` whenever nobody else does."""

    def __init__(self, conn, waiters, on_lost, name):
        self._conn = conn
        self._waiters = waiters
        self._on_lost = on_lost
        self._running = True
        self._wake_read, self._wake_write = os.pipe()
        self._thread = threading.Thread(target=self._run, name=f"jupyter-rsym {name}", daemon=True)
        self._thread.start()

    def _run(self):
        fileno = self._conn.fileno()
        try:
            while self._running:
                self._wait_until_unattended()
                if not self._running:
                    break
                readable, _, _ = select.select([fileno, self._wake_read], [], [])
                if self._wake_read in readable:
                    os.read(self._wake_read, 512)
                    continue
                if not self._waiters.count:
                    self._conn.poll(0)
        except Exception as exc:  # EOFError, OSError: the link is gone
            if self._running:
                self._running = False
                self._on_lost(exc)

    def _wait_until_unattended(self):
        """Block while a local thread serves the connection.

        After it stops, linger a moment: a cell calling the remote in a loop
        starts its next request right away, and waking for each of its
        replies would cost every call a thread switch.
        """
        waiters = self._waiters
        changed = waiters.changed
        with changed:
            lingered = True
            while self._running:
                if not lingered:
                    changed.wait(LINGER)  # nobody notifies us meanwhile
                    lingered = True
                elif waiters.count:
                    waiters.wake_when_idle = True
                    changed.wait()
                    waiters.wake_when_idle = False
                    lingered = False
                else:
                    return

    def stop(self, timeout=5):
        """Stop the thread (idempotent); safe to call from the thread itself."""
        if self._running:
            self._running = False
            with self._waiters.changed:
                self._waiters.changed.notify_all()
            os.write(self._wake_write, b"x")
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
            if not self._thread.is_alive() and self._wake_read is not None:
                os.close(self._wake_read)
                os.close(self._wake_write)
                self._wake_read = self._wake_write = None


class WaiterCount:
    """How many local threads are waiting on a reply (and so serving)."""

    def __init__(self):
        self.count = 0
        self.changed = threading.Condition(threading.Lock())
        self.wake_when_idle = False  # the background server sleeps until count is 0

    def enter(self):
        with self.changed:
            self.count += 1

    def leave(self):
        with self.changed:
            self.count -= 1
            if not self.count and self.wake_when_idle:
                self.changed.notify_all()


class LostListeners:
    """Who to tell, once, that a session was lost or closed (fan-out cells and
    jobs waiting on several hosts listen instead of blocking on one)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._callbacks = []

    def add(self, callback):
        """Call ``callback(error)`` once when told; returns a function that cancels this."""
        with self._lock:
            self._callbacks.append(callback)

        def cancel():
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return cancel

    def tell(self, error):
        with self._lock:
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(error)
