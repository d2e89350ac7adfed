"""Identical lines from many hosts, shown once (as Ray's log deduplication).

In a cell on many hosts (a Dask group, say) every host printing ``step 1``
would give one line per host per step.  ``Collapser`` decides, line by
line: the first copy of a line is shown as it comes, labelled as usual;
the same line (same stream) from other hosts within ``window`` seconds of
that first copy is only counted; once the window has passed (or the cell
ends) the count is shown once, unlabelled: ``step 1 [repeated on 63 more
hosts: w1, w2, ...]``.  A host repeating its own line is shown each time
(a loop's output is its own), and distinct lines keep their labels.
"""

import time

NAMES_SHOWN = 6  # host names listed in a repeat line, then "..."


class _Seen:
    __slots__ = ("at", "host", "others")

    def __init__(self, at, host):
        self.at, self.host, self.others = at, host, []


class Collapser:
    """The repeat counts of one fan-out cell (see the module docstring)."""

    def __init__(self, window, clock=time.monotonic):
        self.window = window
        self.clock = clock
        self._seen = {}  # (stream, line) -> _Seen of its first copy
        self._late = []  # repeat lines of copies shown again after their window

    def keep(self, host, stream, lines):
        """The lines of ``lines`` to show now (the others are counted)."""
        now, shown = self.clock(), []
        for line in lines:
            seen = self._seen.get((stream, line))
            if seen is not None and now - seen.at <= self.window and host != seen.host and host not in seen.others:
                seen.others.append(host)
                continue
            shown.append(line)
            if seen is None or host != seen.host or now - seen.at > self.window:
                self._repeated_now(stream, line, seen)
                self._seen[(stream, line)] = _Seen(now, host)
        return shown

    def _repeated_now(self, stream, line, seen):
        if seen is not None and seen.others:
            self._late.append((stream, _repeat_line(line, seen.others)))

    def due(self, everything=False):
        """``[(stream, repeat line)]`` whose window has passed (all of them
        with ``everything``: the cell ended); forgets lines nobody repeated."""
        now, lines = self.clock(), self._late
        self._late = []
        for key, seen in list(self._seen.items()):
            if everything or now - seen.at > self.window:
                del self._seen[key]
                if seen.others:
                    lines.append((key[0], _repeat_line(key[1], seen.others)))
        return lines


def _repeat_line(line, hosts):
    names = ", ".join(hosts[:NAMES_SHOWN]) + (", ..." if len(hosts) > NAMES_SHOWN else "")
    more = f"{len(hosts)} more host{'' if len(hosts) == 1 else 's'}"
    return f"{line} [repeated on {more}: {names}]"
