"""Requests that do not wait: what fan-out cells and background jobs ask of a session.

A mixin of ``RemoteSession``: the kernel's main thread sends a request to
every host at once and waits on none of them; each reply is handled by the
thread that reads it (the session's background server), and a lost session
tells whoever listens (``when_lost``).
"""

from rpyc.core import consts
from rpyc.lib.compat import TimeoutError as ReplyTimeout

from .errors import NoAnswer


class NonBlocking:
    """``RemoteSession``'s requests that return at once (see the module docstring)."""

    @property
    def link_id(self):
        """The agent's id for this session's connection (what ``cancel`` names)."""
        return self._link_id

    def request_async(self, func, args, on_reply):
        """Send the remote call ``func(*args)`` without waiting; ``on_reply(is_exc,
        value)`` runs in the thread that reads the reply.  Returns the seq."""
        conn = self._usable()
        try:
            return conn.request_async(consts.HANDLE_CALL, (func, args, ()), on_reply)
        except EOFError as exc:
            raise self._lost(conn, exc, sent=False) from None

    def eval_async(self, expression, on_reply):
        """``request_async`` of the remote ``eval(expression)``."""
        return self.request_async(self._usable().eval, (expression,), on_reply)

    def side_eval_async(self, expression, timeout):
        """Evaluate ``expression`` remotely over the side connection (it gets
        through while the main one is busy); an rpyc ``AsyncResult`` expiring
        after ``timeout`` s.  Whoever waits on it serves the side connection."""
        self._usable()
        result = self._control.async_request(consts.HANDLE_CALLATTR, self._control_root, "eval",
                                             (expression,), ())
        result.set_expiry(timeout)
        return result

    def side_ping_async(self):
        """A ping over the side connection, expiring after the liveness timeout."""
        self._usable()
        result = self._control.async_request(consts.HANDLE_PING, "ping")
        result.set_expiry(self._alive_timeout)
        return result

    def failure(self, exc):
        """The error a user sees for ``exc`` raised by a request on this session:
        one line for a failed link, else ``exc`` itself."""
        if isinstance(exc, EOFError):
            return self._lost(self._conn, exc)
        if isinstance(exc, ReplyTimeout) and not isinstance(exc, NoAnswer):
            return NoAnswer(self.address, self._alive_timeout)
        return exc

    def when_lost(self, callback):
        """Call ``callback(error)`` once when the session is lost or closed;
        returns a function that cancels this."""
        with self._lock:
            self._lost_listeners.append(callback)

        def cancel():
            with self._lock:
                if callback in self._lost_listeners:
                    self._lost_listeners.remove(callback)

        return cancel

    def _tell_lost(self, error):
        with self._lock:
            listeners, self._lost_listeners = self._lost_listeners, []
        for callback in listeners:
            callback(error)
