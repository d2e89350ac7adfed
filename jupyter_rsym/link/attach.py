"""Attaching a session to its server: both connections set up in a few round trips.

A session has two connections: the main one, which the notebook uses and
the agent is attached to, and a side one for interrupts and liveness pings
(they must get through while the main connection's server thread is busy).
rpyc's classic client would spend a round trip on each of the root's
attributes and on the methods of every new class, modules included (the
issue measured 29 round trips); here:

* the side connection's stream opens while the main one does (``Opening``,
  where the transport allows two at once: a TCP connect, a token handshake);
* each step asks both connections at once: the side connection's request is
  sent first and collected after the main one's answer, never two requests
  back to back on it (the server would hold the second reply for a delayed
  ACK, 40 ms);
* the agent bundle is sent only if the server process lacks it, asked in the
  round trip that fetches the agent (``bundle.install``), which also tells
  the id of the remote module type, so modules need no INSPECT
  (``proxies.QuickRoot``);
* one request (``agent.attach``) returns everything the session uses.

To a stock server that has the agent: 3 round trips (root, agent, attach); 4
when the bundle must be sent; plus opening the streams, once for both.
"""

import threading
from dataclasses import dataclass

from rpyc.core import consts
from rpyc.core.async_ import AsyncResult

from ..remote import bundle
from .errors import ConnectFailed


@dataclass
class Attached:
    """What setting up the two connections found."""

    control: object  # the side connection
    control_root: object  # its server's root (``HANDLE_CALLATTR`` target for eval)
    interrupt: object  # the agent's ``interrupt`` over the side connection
    agent: dict  # name -> value, as ``agent.attach`` returns them
    version_note: str


def attach(conn, opening, emit, options, timeout):
    """Attach the agent to ``conn`` (the main connection) and finish the side
    connection being opened by ``opening``; ``emit`` is the output sink and
    ``options`` the ``agent.attach`` options.  Closes the side connection on
    failure."""
    control, control_root, root, interrupt = begin(conn, opening, timeout)
    try:
        evaluate = evaluator(conn, root)
        attach_agent, versions, conn.module_type = bundle.install(evaluate, "attach")
        interrupt = interrupt.value[0]
        if interrupt is None:  # the bundle was just sent: look again, beside attach
            interrupt = control.async_request(
                consts.HANDLE_CALLATTR,
                control_root.value,
                "eval",
                (f"__import__('sys').modules[{bundle.AGENT_NAME!r}].interrupt",),
                (),
                timeout=timeout,
            )
        agent = dict(conn.sync_request(consts.HANDLE_CALL, attach_agent, (root, emit, options), ()))
        if isinstance(interrupt, AsyncResult):
            interrupt = interrupt.value
        return Attached(control, control_root.value, interrupt, agent, bundle.version_note(evaluate, versions))
    except BaseException:
        control.close()
        raise


def begin(conn, opening, timeout):
    """The first steps of attaching (also of resuming): both roots, and the
    side connection's question for the agent's ``interrupt``, whose answer
    (an ``AsyncResult``) is collected later.  Returns ``(control, control
    root (an AsyncResult), root, interrupt)``; closes the side connection on
    failure."""
    control = opening.result(2 * timeout + 1)
    try:
        control_root = control.async_request(consts.HANDLE_GETROOT, timeout=timeout)
        root = conn.root
        interrupt = control.async_request(
            consts.HANDLE_CALLATTR,
            control_root.value,
            "eval",
            (bundle.probe_expression("interrupt"),),
            (),
            timeout=timeout,
        )
    except BaseException:
        control.close()
        raise
    return control, control_root, root, interrupt


def evaluator(conn, root):
    """Evaluate an expression on a classic server in one round trip (a call
    of the root's ``eval`` by name: no attribute fetch first)."""
    return lambda source: conn.sync_request(consts.HANDLE_CALLATTR, root, "eval", (source,), ())


class Opening:
    """A connection being opened, in a thread of its own if ``concurrently``
    (else when ``result`` asks for it)."""

    def __init__(self, open_connection, concurrently):
        self._open = open_connection
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._value = self._error = None
        self._discarded = False
        self._thread = None
        if concurrently:
            self._thread = threading.Thread(target=self._run, name="jupyter-rsym connect", daemon=True)
            self._thread.start()

    def _run(self):
        try:
            value = self._open()
        except BaseException as exc:
            self._error = exc
        else:
            with self._lock:
                self._value = value
                if self._discarded:
                    value.close()
        self._done.set()

    def result(self, timeout):
        """The connection; what opening it raised; ``ConnectFailed`` if it takes
        longer than ``timeout`` s (each step of opening has its own timeout)."""
        if self._thread is None:
            self._run()
        elif not self._done.wait(timeout):
            raise ConnectFailed(f"the side connection did not open in {timeout:g} s")
        if self._error is not None:
            raise self._error
        return self._value

    def discard(self):
        """The main connection failed: close this one, now or once it opens."""
        with self._lock:
            self._discarded = True
            value = self._value
        if value is not None:
            value.close()
