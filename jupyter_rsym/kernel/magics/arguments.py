"""Argument pieces shared by several magics (defined once, same help everywhere)."""

from IPython.core import magic_arguments
from IPython.core.error import UsageError

BAD_NAME = "{option} {item!r}: expected NAME or {form} with Python identifiers"


def on_session(func):
    """``--on NAME``: the session to use (default: the most recent one)."""
    return magic_arguments.argument(
        "--on",
        metavar="NAME",
        default=None,
        help="session to use (default: the most recently connected one)",
    )(func)


def on_sessions(func):
    """``--on NAME[,NAME...]`` or ``--on all``: the sessions a cell runs on."""
    return magic_arguments.argument(
        "--on",
        metavar="NAMES",
        default=None,
        help="session(s) to run on: NAME, NAME,NAME,... (at once, each in its own remote "
        "namespace) or all (every connected session); default: the most recently connected one",
    )(func)


def transfer_names(func):
    """``-i`` / ``-o``: names handed to and copied back from the remote."""
    func = magic_arguments.argument(
        "-o",
        "--output",
        action="append",
        metavar="NAMES",
        default=[],
        help="after the cell, copy these remote names into the notebook; comma-separated, "
        "repeatable, REMOTE=LOCAL renames",
    )(func)
    return magic_arguments.argument(
        "-i",
        "--input",
        action="append",
        metavar="NAMES",
        default=[],
        help="before the cell, hand these notebook names to the remote (functions by "
        "reference, data as a copy); comma-separated, repeatable, REMOTE=LOCAL renames",
    )(func)


def strip_comment(line):
    """``line`` without a trailing ``# comment``, as in Python: a ``#`` at the
    start or after white space, outside quotes, starts one (``%rpush x  # why``
    is how users annotate magic lines; IPython's own magics accept it too)."""
    quote, escaped = None, False
    for i, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line


def parse(magic, line):
    """``magic_arguments.parse_argstring`` for a magic line that may end with a comment."""
    return magic_arguments.parse_argstring(magic, strip_comment(line))


def parse_names(values, option, form="REMOTE=LOCAL", dotted=True):
    """``["a,b", "x=y"]`` -> ``[("a", "a"), ("b", "b"), ("x", "y")]``: pairs of
    the names before and after ``=`` (for ``-i/-o``: remote, local; the local
    name may be dotted unless ``dotted`` is False)."""
    pairs = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            first, _, second = item.partition("=")
            first, second = first.strip(), (second or first).strip()
            parts = second.split(".") if dotted else [second]
            if not first.isidentifier() or not all(p.isidentifier() for p in parts):
                raise UsageError(BAD_NAME.format(option=option, item=item, form=form))
            pairs.append((first, second))
    return pairs


def split_options(parser, line):
    """``OPTIONS EXPRESSION`` -> (the options, the expression exactly as typed).

    Options of ``parser`` come first, each with its value; the expression
    starts at the first word that is neither (``--`` ends the options
    explicitly).  A word starting with ``--`` that is no option is a
    UsageError; one starting with a single ``-`` starts the expression
    (``-x`` is Python).
    """
    actions = parser._option_string_actions
    rest = line.lstrip()
    while rest.startswith("-"):
        word = rest.split(None, 1)[0]
        if word == "--":
            return line[: len(line) - len(rest)], rest[2:].strip()
        name, attached = word.split("=", 1)[0], "=" in word
        action = actions.get(name)
        if action is None and not word.startswith("--") and word[:2] in actions:
            action, attached = actions[word[:2]], True  # -ix: -i with its value attached
        if action is None:
            if word.startswith("--"):
                raise UsageError(f"unrecognized arguments: {word}")
            break
        rest = rest[len(word) :].lstrip()
        if action.nargs != 0 and not attached and rest:
            rest = rest[len(rest.split(None, 1)[0]) :].lstrip()
    return line[: len(line) - len(rest)], rest.strip()
