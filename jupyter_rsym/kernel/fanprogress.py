"""One line updated in place for a long cell on many hosts: ``37/64 done, 1 failed (w17)``.

A fan-out cell's output is a stream of labelled lines; with dozens of
hosts, which ones are still running is lost in it.  Once the cell has run
``after`` seconds, ``FanProgress`` shows that one line as a display and
updates it (from the kernel's main thread, which waits for the cell
anyway) each time a host ends; its last state stays in the saved notebook.
"""

import time

NAMES_SHOWN = 5  # failed hosts named, then "..."


class FanProgress:
    """The progress line of one foreground fan-out (see the module docstring)."""

    def __init__(self, fanout, after):
        self.fanout = fanout
        self.after = after
        self._handle = None
        self._text = None

    def text(self):
        hosts = self.fanout.hosts
        done = [h for h in hosts if h.state != "running"]
        failed = [h.name for h in done if h.state in ("failed", "cancelled")]
        line = f"{len(done)}/{len(hosts)} done"
        if failed:
            names = ", ".join(failed[:NAMES_SHOWN]) + (", ..." if len(failed) > NAMES_SHOWN else "")
            line += f", {len(failed)} failed ({names})"
        return line

    def tick(self):
        """Show or update the line (main thread; cheap when nothing changed)."""
        if not self.after or time.monotonic() - self.fanout.started_at < self.after:
            return
        text = self.text()
        if text == self._text:
            return
        from IPython.display import display

        self._text = text
        data = {"text/plain": text}
        if self._handle is None:
            self._handle = display(data, raw=True, display_id=True)
        else:
            self._handle.update(data, raw=True)
