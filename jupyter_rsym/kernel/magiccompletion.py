"""TAB in our magics' arguments: session names and remote or notebook variables.

IPython completes a magic's arguments as Python (or offers magic names), so
``%rpull remo<TAB>`` and ``--on <TAB>`` offered nothing useful.  Here:

* after ``--on`` (and ``--on a,``): session names (``all`` too where a cell
  may run on several);
* the argument of ``%rdisconnect``, ``%rbind``, ``%rdefault``, ``%autoremote``:
  session names;
* ``%rpull NAME``: the remote namespace's variables (the session ``--on``
  names, else the default), one request (``agent/userns.py``);
* ``%rpush NAME``: the notebook's variables.
"""

import re

_MAGIC = re.compile(r"^\s*(%%?)(\w+)(\s.*)?$")
_WORD = re.compile(r"[\w,=]*$")
_ON = re.compile(r"--on[\s=]+([\w,]+)")
SESSION_ARGUMENT = ("rdisconnect", "rbind", "rdefault", "autoremote")
MANY = ("remote",)  # the magics whose --on takes several sessions, or all


def complete_magic_arguments(extension, shell, before, timeout):
    """``(fragment, [(text, kind), ...])`` for the argument the cursor is in,
    or None if ``before`` (the line up to the cursor) is not one of ours."""
    match = _MAGIC.match(before)
    if match is None or match.group(3) is None:
        return None
    magic, rest = match.group(2), match.group(3)
    word = _WORD.search(rest).group(0)
    preceding = rest[: len(rest) - len(word)].split()
    sessions = [s.name for s in extension.sessions]
    if (preceding and preceding[-1] == "--on") or before.endswith("--on=" + word):
        fragment = word.rsplit(",", 1)[-1]
        choices = sessions + (["all"] if magic in MANY else [])
        return fragment, [(name, "session") for name in choices if name.startswith(fragment)]
    if word.startswith("-") or "=" in word:
        return None
    if magic in SESSION_ARGUMENT:
        return word, [(name, "session") for name in sessions if name.startswith(word)]
    if magic == "rpull":
        on = _ON.search(rest)
        try:
            session = extension.sessions.get(on.group(1) if on else None)
            found = session.call("variables", session.namespace, (), timeout=timeout)
        except Exception:
            return word, []
        return word, [(name, "remote " + kind) for name, kind, _ in found if name.startswith(word)]
    if magic == "rpush":
        names = sorted(
            n for n in shell.user_ns if not n.startswith("_") and n.startswith(word) and n not in shell.user_ns_hidden
        )
        return word, [(name, "variable") for name in names]
    return None
