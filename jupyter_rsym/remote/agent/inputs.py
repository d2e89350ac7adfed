"""Inputs: ``input()`` and ``getpass.getpass()`` in remote code ask the notebook user.

A thread working for a notebook link (see ``routes``) asks through the
link's ``ask``, the notebook's ``jupyter_rsym.inputs.StdinBridge.ask``: the
frontend's input box when the cell that caused the call is the one running
now, else an EOFError saying why, at once.  Output buffered before the
question goes out first (``tags`` flushes before a thread's callback).  An
interrupt in the notebook while it waits raises KeyboardInterrupt here.
Threads with no route keep the process's own input (the server terminal).
"""

import builtins
import getpass
import threading

from . import interrupts, routes

INTERRUPTED = "interrupted in the notebook"  # the notebook's answer to an interrupted callback
_original = {}
_lock = threading.Lock()


def routed_input(prompt=""):
    """``input()``: asks the notebook user for threads working for a notebook."""
    route = routes.current()
    if route is None or route[0].dead or route[0].ask is None:
        return _original["input"](prompt)
    return ask(route, prompt, False)


def routed_getpass(prompt="Password: ", stream=None, **kwargs):
    """``getpass.getpass()``: a password box in the notebook for threads working for one."""
    route = routes.current()
    if route is None or route[0].dead or route[0].ask is None:
        return _original["getpass"](prompt, stream, **kwargs)
    return ask(route, prompt, True)


def ask(route, prompt, password):
    """Ask the notebook user of ``route``; the answer, or EOFError/KeyboardInterrupt."""
    link, cause = route
    try:
        # the notebook's interrupt waits until the answer is read: raised inside
        # rpyc's wait for it, it would leave the connection's receive lock held
        # and no other thread could read a reply again
        with interrupts.shield():
            status, value = link.ask(cause, str(prompt), bool(password))
    except KeyboardInterrupt:
        raise KeyboardInterrupt("input() " + INTERRUPTED) from None
    except Exception as exc:
        if INTERRUPTED in str(exc):
            raise KeyboardInterrupt("input() " + INTERRUPTED) from None
        raise EOFError(
            "input(): the notebook did not answer (%s: %s)" % (type(exc).__name__, str(exc).split("\n", 1)[0])
        ) from None
    if status == "ok":
        return value
    raise EOFError(value)


def install():
    """Route ``input`` and ``getpass.getpass`` (once per process)."""
    with _lock:
        if "input" in _original:
            return
        _original["input"], builtins.input = builtins.input, routed_input
        _original["getpass"], getpass.getpass = getpass.getpass, routed_getpass
