"""Replies rpyc cannot send, caught before they break the connection (both ends).

rpyc sends an object by reference under its ``____id_pack__`` if it has one
(a proxy's own id).  Two kinds of object have one that is no id, and rpyc's
serializer then fails in the middle of the reply, which ends the connection
(the session is lost, the server logs ``cannot dump <member
'____id_pack__' ...>``):

* the *class* of a proxy (``type(lk)`` for a proxy ``lk``): the attribute
  is its slot descriptor;
* an object whose ``__getattr__`` answers every name (a mock, a "record"
  class).

``unsendable`` says why, before rpyc tries; the request then fails with one
line that names the value and the operation, and the session goes on.
"""

from rpyc.core import brine, consts, netref

_OPERATIONS = {
    consts.HANDLE_GETATTR: "getattr",
    consts.HANDLE_CALL: "call",
    consts.HANDLE_CALLATTR: "method call",
    consts.HANDLE_GETROOT: "root",
}
MAX_SHOWN = 80  # characters of the value's repr in the message


def unsendable(obj):
    """Why rpyc cannot send ``obj`` (None: it can)."""
    # type(obj), never isinstance(obj, ...): a proxy's __class__ asks its remote
    if brine.dumpable(obj) or issubclass(type(obj), netref.BaseNetref):
        return None
    if type(obj) is tuple:
        return next(filter(None, map(unsendable, obj)), None)
    if issubclass(type(obj), type) and issubclass(obj, netref.BaseNetref):
        return (
            "it is the class rpyc made for a proxy, which rpyc cannot send; "
            "type(x).__name__ or isinstance() tell the type"
        )
    try:
        id_pack = getattr(obj, "____id_pack__", None)
    except Exception as exc:
        return f"reading its attributes raised {type(exc).__name__}"
    if id_pack is None or _is_id(id_pack):
        return None
    return "its class answers every attribute name (__getattr__), so it does not look like an object to rpyc"


def _is_id(id_pack):
    return (
        type(id_pack) is tuple
        and len(id_pack) == 3
        and type(id_pack[0]) is str
        and type(id_pack[1]) is int
        and type(id_pack[2]) is int
    )


def refusal(obj, reason, handler, args, where):
    """The TypeError a request gets instead of a reply it cannot get."""
    cell = handler == consts.HANDLE_CALL and getattr(args[0], "__name__", None) == "run_cell"
    if cell and type(obj) is tuple and len(obj) == 2:  # ("ok", value): the cell's value
        obj = obj[1]
    try:
        shown = repr(obj)
    except Exception:
        shown = f"<{type(obj).__name__} object>"
    if len(shown) > MAX_SHOWN:
        shown = shown[: MAX_SHOWN - 3] + "..."
    operation = _OPERATIONS.get(handler, "request")
    name = _name_of(handler, args)
    what = f"the result of {operation} {name}" if name else f"the result of a {operation}"
    what = "the value of the cell" if cell else what
    return TypeError(f"cannot send {shown} ({what}) to {where}: {reason}; the session goes on")


def _name_of(handler, args):
    try:
        if handler == consts.HANDLE_CALL:
            name = getattr(args[0], "__name__", None)
            return name and name + "()"
        if handler in (consts.HANDLE_GETATTR, consts.HANDLE_CALLATTR):
            return repr(args[1])
    except Exception:
        pass
    return None
