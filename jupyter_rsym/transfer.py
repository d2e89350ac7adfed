"""Moving values between the notebook and the remote: by value or by reference.

Decided in one place.  Values rpyc can encode (numbers, strings, bytes,
tuples of those, None) always travel by value.  Callables, modules, classes
and remote objects travel by reference: the other side gets a proxy, and
calling it runs the code where it lives (a notebook function handed over
runs in the notebook).  Other data is copied with pickle when it can be, so
the receiver gets an independent copy: changes to the copy do not reflect
back.  What cannot be pickled here or unpickled there (an instance of a
class defined in the notebook) goes by reference instead.
"""

import inspect

from rpyc.core import brine
from rpyc.core.netref import BaseNetref
from rpyc.utils import classic


def _by_reference(value):
    return (
        isinstance(value, BaseNetref)
        or callable(value)
        or inspect.ismodule(value)
    )


def to_remote(conn, value):
    """What to hand the remote for ``value``: the value itself or a copy there."""
    if brine.dumpable(value) or _by_reference(value):
        return value
    try:
        return classic.deliver(conn, value)
    except Exception:  # cannot pickle here, or cannot unpickle there (a notebook class)
        return value


def from_remote(value):
    """A local copy of a remote value, or the proxy if it cannot be copied."""
    if not isinstance(value, BaseNetref):
        return value
    remote = object.__getattribute__(value, "____conn__").modules
    # every proxy looks callable locally; ask the side that knows
    if remote.builtins.callable(value) or remote.inspect.ismodule(value):
        return value
    try:
        return classic.obtain(value)
    except Exception:  # the remote could not pickle it: keep the reference
        return value
