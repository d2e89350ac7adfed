"""Progress of a long transfer, shown in the cell as one display updated in place."""

import time

UPDATE_EVERY = 0.25  # seconds between updates of the display


def _megabytes(n):
    return f"{n / 1e6:.1f}"


class Progress:
    """Counts the bytes of one transfer; once it has run ``after`` seconds,
    shows ``label: 12.0 of 64.0 MB`` in the current cell and keeps that one
    line up to date, ending with the total time and rate.  Outside a
    running IPython shell it shows nothing."""

    def __init__(self, label, total, after=1.0):
        self.label = label
        self.total = total
        self.after = after
        self.done = 0
        self.start = time.monotonic()
        self._handle = None
        self._shown_at = 0.0

    def advance(self, count):
        self.done += count
        now = time.monotonic()
        if now - self.start >= self.after and now - self._shown_at >= UPDATE_EVERY:
            self._show(now)

    def finish(self):
        """The transfer ended: a shown line says how long it took."""
        if self._handle is not None:
            self._show(time.monotonic(), final=True)

    def _show(self, now, final=False):
        elapsed = max(now - self.start, 1e-9)
        rate = f"{_megabytes(self.done / elapsed)} MB/s"
        if final:
            text = f"{self.label}: {_megabytes(self.done)} MB in {elapsed:.1f} s ({rate})"
        else:
            text = f"{self.label}: {_megabytes(self.done)} of {_megabytes(self.total)} MB ({rate})"
        self._shown_at = now
        self._display({"text/plain": text})

    def _display(self, bundle):
        from IPython.core.interactiveshell import InteractiveShell

        if not InteractiveShell.initialized():
            return
        from IPython.display import display

        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)
