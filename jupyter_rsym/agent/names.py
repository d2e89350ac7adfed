"""Names: what completes a prefix in a remote namespace, answered in one request.

Used by ``%autoremote`` cells (their code runs remotely, so their names are
the remote namespace's).  Only attribute lookups along a dotted name are
evaluated, never calls or subscripts.
"""

import builtins
import keyword
import re

_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\Z")
LIMIT = 2000


def complete(namespace, text):
    """Completions of ``text`` (``pre`` or ``obj.attr.pre``) in ``namespace``,
    as a sorted tuple of full texts; private names only when the prefix
    starts with ``_``."""
    head, dot, prefix = text.rpartition(".")
    if dot:
        if not _DOTTED.match(head):
            return ()
        first, *rest = head.split(".")
        try:
            obj = namespace[first] if first in namespace else getattr(builtins, first)
            for attribute in rest:
                obj = getattr(obj, attribute)
            names = dir(obj)
        except Exception:
            return ()
        start = head + "."
    else:
        names = set(namespace) | set(dir(builtins)) | set(keyword.kwlist)
        start = ""
    private = prefix.startswith("_")
    found = sorted(start + name for name in names
                   if name.startswith(prefix) and (private or not name.startswith("_")))
    return tuple(found[:LIMIT])
