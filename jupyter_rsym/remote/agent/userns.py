"""The user's variables in a notebook session's remote namespace.

The classic namespace also holds ``__builtins__`` (all of it, once a cell
ran) and what the agent put there (``display``, ``__name__``,
``__rsym_ipython__``): ``Namespace``'s repr, ``%rwho`` and ``%rwhos`` show
only what the user's cells, pushes and calls bound, as IPython's ``%who``
shows a notebook's.
"""

MAX_INFO = 60  # characters of a value's repr in %rwhos, as IPython's %whos


class Namespace(dict):
    """The remote globals of ``%%remote`` cells; its repr shows user variables only."""

    def __repr__(self):
        return repr(dict(user_items(self)))


def user_items(namespace):
    from .publish import display

    return [(name, value) for name, value in namespace.items()
            if not name.startswith("_") and not (name == "display" and value is display)]


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
            info = info[:MAX_INFO // 2 - 3] + " <...> " + info[-(MAX_INFO // 2 - 4):]
        found.append((name, kind, info))
    return tuple(found)
