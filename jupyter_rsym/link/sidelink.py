"""A session's side connection: interrupts and liveness pings that get
through while the main connection's server thread is busy (``attach.py``
opens it beside the main one).

Fan-out cells and background jobs wait on no single host: they ask every
host's side connection at once (``eval_async``, ``ping_async``) and whoever
waits on the results serves it.
"""

from rpyc.core import consts
from rpyc.lib.compat import TimeoutError as ReplyTimeout

from .errors import NoAnswer

CANCEL_TIMEOUT = 1.0  # seconds an interrupt waits for the side connection


class SideLink:
    """The side connection of one attached session.

    ``attached`` is what ``attach.attach`` found; ``link_id`` the agent's id
    for the main connection (what ``cancel`` names); ``alive_timeout`` how
    long a ping may take before the remote counts as hung.
    """

    def __init__(self, attached, link_id, address, alive_timeout):
        self.conn = attached.control
        self.root = attached.control_root
        self.link_id = link_id
        self.address = address
        self.alive_timeout = alive_timeout
        self._interrupt = attached.interrupt
        self.conn._config["sync_request_timeout"] = CANCEL_TIMEOUT

    def cancel(self, seq):
        """Ask the remote to stop the work for request ``seq`` of the main connection."""
        return self._interrupt(self.link_id, seq)

    def check_alive(self):
        """Ping: a busy server answers, a hung one does not (``NoAnswer``).
        ``EOFError`` if the side connection is gone."""
        try:
            self.conn.ping(timeout=self.alive_timeout)
        except ReplyTimeout:
            raise NoAnswer(self.address, self.alive_timeout) from None

    def eval_async(self, expression, timeout):
        """Evaluate ``expression`` remotely; an rpyc ``AsyncResult`` expiring
        after ``timeout`` s."""
        result = self.conn.async_request(consts.HANDLE_CALLATTR, self.root, "eval", (expression,), ())
        result.set_expiry(timeout)
        return result

    def ping_async(self):
        """A ping, expiring after the liveness timeout."""
        result = self.conn.async_request(consts.HANDLE_PING, "ping")
        result.set_expiry(self.alive_timeout)
        return result

    def close(self, timeout):
        self.conn._config["sync_request_timeout"] = timeout
        self.conn.close()
