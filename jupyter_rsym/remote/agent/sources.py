"""Cell sources in the remote ``linecache``: tracebacks show the cells' own
lines, and the memory they take stays bounded.

A remote cell is compiled under a ``<remote-cell-N>`` file name whose lines
``linecache`` must hold for a traceback to show them.  After the cell, its
source is needed only while code compiled from it can still run: a cell
that defines functions, classes, lambdas or generator expressions keeps its
source among the last ``KEEP_DEFINING`` such cells; any other cell among the
last ``KEEP_RECENT`` cells.  Older sources are evicted (a traceback through
their code still shows file, line and function, not the line's text).
"""

import collections
import linecache
import re
import threading

KEEP_RECENT = 50
KEEP_DEFINING = 500
_DEFINES_CODE = re.compile(r"\b(def|class|lambda|for)\b")  # a superset is fine: it only keeps more

_kept = {True: collections.deque(), False: collections.deque()}
_lock = threading.Lock()


def remember(filename, source):
    """Put a cell's source in ``linecache``, evicting the oldest ones no longer needed."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    defining = bool(_DEFINES_CODE.search(source))
    with _lock:
        kept = _kept[defining]
        kept.append(filename)
        while len(kept) > (KEEP_DEFINING if defining else KEEP_RECENT):
            linecache.cache.pop(kept.popleft(), None)
