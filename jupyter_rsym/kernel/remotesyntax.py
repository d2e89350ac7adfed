"""IPython's line syntax in remote cells: ``!cmd``, ``%time``, ``%timeit``, ``obj?``.

A ``%%remote`` cell is Python to the remote, which has no IPython.  The
lines IPython itself would rewrite are rewritten here by IPython's own
transformer (the same rules a local cell follows), and the ``get_ipython()``
calls it makes point at the remote's stand-in, ``__rsym_ipython__()``
(``remote/agent/shell.py``).  Lines it does not rewrite stay as typed, so a
cell without such syntax reaches the remote unchanged.
"""

from IPython.core.inputtransformer2 import TransformerManager

SHELL = "get_ipython()"
REMOTE_SHELL = "__rsym_ipython__()"
_MARKS = ("!", "%", "?")
_transformer = TransformerManager()


def remote_source(cell):
    """``cell`` with IPython's escapes rewritten into calls of the remote stand-in."""
    if not any(mark in cell for mark in _MARKS):
        return cell
    try:
        rewritten = _transformer.transform_cell(cell)
    except (SyntaxError, ValueError):
        return cell
    if rewritten.count(SHELL) <= cell.count(SHELL):  # nothing of IPython's syntax
        return cell
    typed = set(cell.splitlines())
    return "".join(
        line if line.rstrip("\n") in typed else line.replace(SHELL, REMOTE_SHELL) for line in rewritten.splitlines(True)
    )
