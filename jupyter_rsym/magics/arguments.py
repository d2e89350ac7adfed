"""Argument pieces shared by several magics (defined once, same help everywhere)."""

from IPython.core import magic_arguments
from IPython.core.error import UsageError

BAD_NAME = "{option} {item!r}: expected NAME or REMOTE=LOCAL with Python identifiers"


def on_session(func):
    """``--on NAME``: the session to use (default: the most recent one)."""
    return magic_arguments.argument(
        "--on", metavar="NAME", default=None,
        help="session to use (default: the most recently connected one)",
    )(func)


def on_sessions(func):
    """``--on NAME[,NAME...]`` or ``--on all``: the sessions a cell runs on."""
    return magic_arguments.argument(
        "--on", metavar="NAMES", default=None,
        help="session(s) to run on: NAME, NAME,NAME,... (at once, each in its own remote "
        "namespace) or all (every connected session); default: the most recently connected one",
    )(func)


def transfer_names(func):
    """``-i`` / ``-o``: names handed to and copied back from the remote."""
    func = magic_arguments.argument(
        "-o", "--output", action="append", metavar="NAMES", default=[],
        help="after the cell, copy these remote names into the notebook; comma-separated, "
        "repeatable, REMOTE=LOCAL renames",
    )(func)
    return magic_arguments.argument(
        "-i", "--input", action="append", metavar="NAMES", default=[],
        help="before the cell, hand these notebook names to the remote (functions by "
        "reference, data as a copy); comma-separated, repeatable, REMOTE=LOCAL renames",
    )(func)


def parse_names(values, option):
    """``["a,b", "x=y"]`` -> ``[("a", "a"), ("b", "b"), ("x", "y")]`` as (remote, local)."""
    pairs = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            remote, _, local = item.partition("=")
            remote, local = remote.strip(), (local or remote).strip()
            if not remote.isidentifier() or not all(p.isidentifier() for p in local.split(".")):
                raise UsageError(BAD_NAME.format(option=option, item=item))
            pairs.append((remote, local))
    return pairs
