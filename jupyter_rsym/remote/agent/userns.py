"""The user's variables in a notebook session's remote namespace.

The classic namespace also holds ``__builtins__`` (all of it, once a cell
ran) and what the agent put there (``display``, ``__name__``,
``__rsym_ipython__``): its display (``register``), ``%rwho`` and ``%rwhos`` show
only what the user's cells, pushes and calls bound, as IPython's ``%who``
shows a notebook's.
"""

MAX_INFO = 60  # characters of a value's repr in %rwhos, as IPython's %whos


_namespaces = set()  # ids of sessions' namespaces (a dict subclass would slow every global lookup)


def register(namespace):
    """Show ``namespace`` (a session's classic namespace) with its user variables only."""
    if type(namespace) is dict and id(namespace) not in _namespaces:
        _namespaces.add(id(namespace))
        from . import reprs

        if shown not in reprs.FORMATTERS:
            reprs.FORMATTERS.append(shown)


def shown(obj):
    """A ``reprs`` formatter: a session namespace's text is its user variables."""
    if type(obj) is dict and id(obj) in _namespaces:
        return {"text/plain": repr(dict(user_items(obj)))}
    return None


def user_items(namespace):
    from .publish import display

    return [
        (name, value)
        for name, value in namespace.items()
        if not name.startswith("_") and not (name == "display" and value is display)
    ]


def variables(namespace, types=()):
    """``(name, type name, short repr)`` of each user variable, sorted by name;
    only those whose type name is in ``types``, if given (``%rwhos int``)."""
    found = []
    for name, value in sorted(user_items(namespace)):
        kind = type(value).__name__
        if types and kind not in types:
            continue
        try:
            info = repr(value).replace("\n", " ")
        except Exception as exc:
            info = "<repr failed: %s>" % type(exc).__name__
        if len(info) > MAX_INFO:
            info = info[: MAX_INFO // 2 - 3] + " <...> " + info[-(MAX_INFO // 2 - 4) :]
        found.append((name, kind, info))
    return tuple(found)
