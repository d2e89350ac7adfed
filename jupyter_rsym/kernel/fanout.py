"""Fan-out: one cell on several sessions at once, without a notebook thread per host.

Each session gets one request, the agent's ``jobs.start_cell``, sent from
the calling thread; the cell runs in a remote thread of its own, so the
session's connection stays free.  A quick cell's outcome comes back as the
reply; a longer one's in a call of ``report`` when it ends there: a request
tagged with the start request's seq, so, like the cell's output, it is
routed to the cell that started it.  Both are read by the reader
(``link/reader.py``).  The notebook therefore waits on one condition that
the hosts' outcomes notify:

* a foreground cell (``%%remote --on a,b``) waits in the kernel's main
  thread, which never reads a connection meanwhile, so Ctrl-C is always
  safe there: it cancels the cell on every host still running it (over each
  session's side connection) and shows KeyboardInterrupt;
* a background cell (``--bg``, ``jobs.py``) does not wait at all: whichever
  thread delivers the last outcome finishes the job.

Output of the hosts streams into the cell meanwhile (``output.py``),
line-buffered and labelled per host when there are several.
"""

import itertools
import threading
import time

from ..link.client import INTERRUPT_GRACE
from ..link.errors import Interrupted, NoAnswer, RSymError, from_rpyc_exception, remote_exception
from ..link.routing import Router
from ..link.sidelink import CANCEL_TIMEOUT
from ..link.sigint import deferred
from ..link.transfer import to_remote
from ..remote import bundle

RUNNING, OK, FAILED, CANCELLED = "running", "ok", "failed", "cancelled"
FETCH_TIMEOUT = 10.0  # seconds to fetch a session's start function, the first time
TICK = 0.25  # seconds between calls of on_tick while a foreground cell waits
START_CELL = f"__import__('sys').modules[{bundle.AGENT_NAME!r}].jobs.start_cell"
CANCEL_JOB = f"__import__('sys').modules[{bundle.AGENT_NAME!r}].jobs.cancel({{!r}}, {{!r}})"

_keys = itertools.count(1)
_reporting = {}  # job key -> the HostRun waiting for it


def report(key, status, payload, found, missing):
    """Called back by a remote when a job ends that outlived ``start_cell``'s
    wait.  One function for every job, so a remote keeps one proxy of it
    (no release message per job)."""
    host = _reporting.get(key)
    if host is not None:
        host.done(status, payload, found, missing)


class HostRun:
    """One session's share of a fan-out or background cell."""

    def __init__(self, fanout, session):
        self.fanout = fanout
        self.session = session
        self.name = session.name
        self.key = ("job", next(_keys))  # names the remote job for cancel
        self.state = RUNNING
        self.value = None
        self.error = None
        self.found = {}  # -o names the remote had: raw values (proxies for objects)
        self.missing = ()
        self.cancelling = False
        self.stopped_in_code = False  # a cancel stopped its remote code (it keeps the frames: %debug)
        self.stop_listening = lambda: None

    def done(self, status, payload, found, missing):
        """The cell has ended there (the remote's reply, or its ``report``)."""
        if self.cancelling:
            self.stopped_in_code = status != "ok" and payload[0] == "KeyboardInterrupt"
            self.fanout.settle(self, CANCELLED)
        elif status == "ok":
            self.fanout.settle(self, OK, value=payload, found=dict(found), missing=tuple(missing))
        else:
            self.fanout.settle(self, FAILED, error=remote_exception(*payload).of_session(self.session))

    def replied(self, is_exc, value):
        """The reply to ``start_cell``: a failure, the outcome of a quick
        cell, or None (``report`` brings it later)."""
        if is_exc:
            self.fanout.settle(self, FAILED, error=from_rpyc_exception(value))
        elif value is not None:
            self.done(*value)


class FanOut:
    """A cell started on several sessions; ``start``, then ``wait`` or not.

    ``on_finish(fanout)`` runs once, in the thread that settles the last host,
    under the cell's parent (the cell's output goes there).
    """

    def __init__(
        self, sessions, source, shell=None, labels=None, inputs=None, outputs=(), on_finish=None, collapse=None
    ):
        self.hosts = [HostRun(self, session) for session in sessions]
        self.source = source
        self.inputs = dict(inputs or {})
        self.output_names = tuple(outputs)
        self.labels = labels if len(self.hosts) > 1 else None
        self.on_finish = on_finish
        self.collapse = collapse  # seconds: repeated lines shown once (output.py), None: all
        self.on_tick = None  # called in the waiting thread about every TICK s (progress line)
        self.parked_sessions = None  # parent -> sessions parked at a breakpoint for it (kernel/debugging)
        self.started_at = time.monotonic()
        self.ended_at = None
        self._router = Router(shell)
        self.parent = self._router.current()
        self._changed = threading.Condition()
        self._left = len(self.hosts)

    @property
    def finished(self):
        return not self._left

    def running(self):
        return [host for host in self.hosts if host.state == RUNNING]

    # -- starting -------------------------------------------------------------

    def start(self):
        """Send every host its start request from the calling thread (one
        request each, none waited for: the cell starts everywhere at once)."""
        if self.labels is not None:
            self.labels.begin_fanout(self.parent, self.collapse)
        functions = self._start_functions()
        with deferred():  # Ctrl-C must not cut a request in half
            for host in self.hosts:
                if host.state == RUNNING:
                    self._start(host, functions[host])

    def _start(self, host, start_cell):
        session = host.session
        try:
            host.stop_listening = session.when_lost(lambda error: self.settle(host, FAILED, error=error))
            conn = session.connection
            inputs = tuple((name, to_remote(conn, value)) for name, value in self.inputs.items())
            args = (host.key, self.source, session.namespace, inputs, self.output_names, report)
            _reporting[host.key] = host
            session.request_async(start_cell, args, host.replied)
        except Exception as exc:
            self.settle(host, FAILED, error=session.failure(exc))

    def _start_functions(self):
        """Each host's remote ``start_cell``: one request per session, all at
        once, the first time only (then kept per session)."""
        replies = {}
        done = threading.Condition()

        def keep(host):
            def on_reply(is_exc, value):
                with done:
                    replies[host] = from_rpyc_exception(value) if is_exc else value
                    done.notify_all()

            return on_reply

        asked = []
        for host in self.hosts:
            function = host.session.remote_functions.get(START_CELL)
            if function is not None:
                replies[host] = function
                continue
            try:
                host.session.eval_async(START_CELL, keep(host))
                asked.append(host)
            except RSymError as exc:
                self.settle(host, FAILED, error=exc)
        deadline = time.monotonic() + min(
            [FETCH_TIMEOUT] + [h.session.connection.liveness_interval or FETCH_TIMEOUT for h in asked]
        )
        with done:
            while any(host not in replies for host in asked):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                done.wait(min(left, 0.5))
        for host in asked:
            reply = replies.get(host)
            if reply is None:
                waited = host.session.connection.liveness_interval or FETCH_TIMEOUT
                self.settle(host, FAILED, error=NoAnswer(host.session.address, waited))
            elif isinstance(reply, BaseException):
                self.settle(host, FAILED, error=reply)
            else:
                host.session.remote_functions[START_CELL] = reply
        return replies

    # -- ending ---------------------------------------------------------------

    def settle(self, host, state, value=None, error=None, found=None, missing=()):
        """Record how ``host`` ended (the first outcome counts)."""
        with self._changed:
            if host.state != RUNNING:
                return
            host.state, host.value, host.error = state, value, error
            host.found, host.missing = found or {}, missing
            self._left -= 1
            last = not self._left
            if last:
                self.ended_at = time.monotonic()
            self._changed.notify_all()
        _reporting.pop(host.key, None)
        host.stop_listening()
        token = self._router.enter(self.parent)  # the cell's, whichever thread settles
        try:
            if self.labels is not None:
                self.labels.end_session(self.parent, host.name)
                if last:
                    self.labels.end_fanout(self.parent, [h.name for h in self.hosts])
            if last and self.on_finish is not None:
                self.on_finish(self)
        finally:
            self._router.leave(token)

    def wait(self, timeout=None):
        """Wait until every host has ended (the foreground cell).

        ``timeout`` (s, None or 0: no limit) fails the hosts still running
        with ``NoAnswer``; every call timeout of the sessions (``RSym.timeout``)
        a ping over each running host's side connection tells a busy server
        from a hung one.  On KeyboardInterrupt the cell is cancelled on every
        host (``interrupt``).
        """
        liveness = min((h.session.connection.liveness_interval or 0 for h in self.hosts), default=0)
        liveness = liveness or None
        now = time.monotonic()
        deadline = now + timeout if timeout else None
        check_at = now + liveness if liveness else None
        try:
            while self._left:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    self._expire(timeout)
                    break
                if check_at is not None and now >= check_at:
                    self._check_alive()
                    check_at = time.monotonic() + liveness
                step = min(t for t in (deadline, check_at, now + 3600) if t is not None) - now
                if self.on_tick is not None:
                    self.on_tick()
                    step = min(step, TICK)
                with self._changed:
                    if self._left:
                        self._changed.wait(max(step, 0.001))
        except KeyboardInterrupt:
            self.interrupt()
        if self.on_tick is not None:
            self.on_tick()

    def interrupt(self):
        """Cancel the cell on every host still running it and raise
        KeyboardInterrupt naming them."""
        hosts = self.running()
        parked = self.parked_sessions(self.parent) if self.parked_sessions else ()
        # a host parked at a breakpoint stays there: %rdebug N attaches it after the cell
        keep = [host for host in hosts if any(host.session is session for session in parked)]
        self.cancel(keep)
        stopped = [host.name for host in hosts if host not in keep]
        where = [f"stopped on {', '.join(stopped)}"] if stopped or not keep else []
        if keep:
            where.append(f"parked at a breakpoint on {', '.join(h.name for h in keep)} (%rdebug lists it)")
        stop = Interrupted("; ".join(where))
        stop.hosts = tuple(host.session for host in hosts if host.stopped_in_code)
        raise stop from None

    def _check_alive(self):
        pings = []
        with deferred():
            for host in self.running():
                try:
                    pings.append((host, host.session.usable_side().ping_async()))
                except RSymError as exc:
                    self.settle(host, FAILED, error=exc)
            for host, ping in pings:
                try:
                    ping.wait()
                except Exception as exc:
                    self.settle(host, FAILED, error=host.session.failure(exc))

    def _expire(self, timeout):
        late = self.running()
        self._ask_to_stop(late)
        for host in late:
            self.settle(host, FAILED, error=NoAnswer(host.session.address, timeout))

    def cancel(self, keep=()):
        """Stop the cell on every host still running it (like an interrupt):
        the remote code gets KeyboardInterrupt; waits up to a second.  The
        hosts in ``keep`` are left running (no longer waited for)."""
        hosts = self.running()
        for host in keep:
            host.cancelling = True  # its late report is not the cell's result
        states = self._ask_to_stop([host for host in hosts if host not in keep])
        waiting = [h for h in hosts if h not in keep and states.get(h) != "blocked"]
        deadline = time.monotonic() + INTERRUPT_GRACE
        try:
            with self._changed:
                while any(h.state == RUNNING for h in waiting):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._changed.wait(left)
        except KeyboardInterrupt:
            pass  # pressed again: stop waiting
        for host in hosts:
            self.settle(host, CANCELLED)

    def _ask_to_stop(self, hosts):
        """Cancel each host's remote job over its side connection, all at once."""
        asked, states = [], {}
        with deferred():
            for host in hosts:
                host.cancelling = True
                try:
                    expression = CANCEL_JOB.format(host.session.side.link_id, host.key)
                    asked.append((host, host.session.usable_side().eval_async(expression, CANCEL_TIMEOUT)))
                except Exception:
                    pass  # no side connection: the host is settled as cancelled anyway
            for host, result in asked:
                try:
                    result.wait()
                    states[host] = result.value
                except Exception:
                    pass
        return states
