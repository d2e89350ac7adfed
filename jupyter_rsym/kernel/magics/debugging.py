"""%rdebug: parked remote breakpoints, and the kept remote exceptions."""

import time

from IPython.core import magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class

from .base import ExtensionMagics

NO_BREAKPOINT = "no parked breakpoint {}; %rdebug lists them"


@magics_class
class DebugMagics(ExtensionMagics):
    """Attach to remote breakpoints that no cell could prompt for."""

    @magic_arguments.magic_arguments()
    @magic_arguments.argument(
        "number",
        nargs="?",
        type=int,
        default=None,
        help="attach to this parked breakpoint: its pdb prompt comes up in this cell",
    )
    @magic_arguments.argument(
        "--clear", action="store_true", help="drop the remote exception each session keeps for %%debug"
    )
    @magic_arguments.argument(
        "--on", default="all", help="with --clear: these sessions (NAME, A,B or all; default all)"
    )
    @line_magic
    def rdebug(self, line):
        """List parked remote breakpoints, or attach to one.

        A ``breakpoint()`` (or ``pdb.set_trace()``) in remote code prompts
        ``(Pdb NAME)`` in the cell that caused it while that cell runs.  When
        no cell can take input (a ``--bg`` job, a thread of a finished cell,
        a fan-out host while another host is at the prompt) the remote
        thread is parked: it waits, the cell that caused it shows one line,
        and ``%rdebug`` lists it: number, session, cause, file:line, age.
        ``%rdebug N`` brings its prompt into this cell; ``c`` lets the
        thread go on, ``q`` raises ``BdbQuit`` in it, an interrupt parks it
        again.  In a fan-out cell one host at a time has the prompt
        (``(Pdb r2)``); the others park and prompt in turn, or, if the cell
        is interrupted, stay parked for ``%rdebug N`` after it.
        ``%rdisconnect`` lets a session's parked threads go on.
        ``RSym.park_breakpoints = False`` makes them fail with EOFError.

        After a remote exception, IPython's ``%debug`` (and ``%pdb on``)
        open pdb on the remote frames: each session keeps its last
        exception; ``%rdebug --clear`` drops it.

        Examples
        --------
        ::

            In [7]: %%remote --bg
               ...: step(); breakpoint(); finish()
            breakpoint in job 1 on r (<remote-cell-4>:1); %rdebug 1 attaches [the cell ...]

            In [8]: %rdebug
            #  session  cause  where            age
            1  r        job 1  <remote-cell-4>:1  12 s

            In [9]: %rdebug 1
            > <remote-cell-4>(1)<module>()
            (Pdb r) c
        """
        args = magic_arguments.parse_argstring(self.rdebug, line)
        debugging = self.extension.debugging
        if args.clear:
            for session in self.extension.sessions_for(args.on):
                dropped = session.call("clear_error")
                print(f"{session.name}: {'dropped the kept exception' if dropped else 'kept no exception'}")
            return
        if args.number is None:
            self._list(debugging.listing())
            return
        state = debugging.attach(args.number)
        if state == "gone":
            raise UsageError(NO_BREAKPOINT.format(args.number))
        if state == "parked":
            print(f"breakpoint {args.number} is parked again; %rdebug {args.number} attaches")

    @staticmethod
    def _list(parked):
        if not parked:
            print("no parked breakpoints")
            return
        rows = [("#", "session", "cause", "where", "age")]
        now = time.monotonic()
        for entry in parked:
            rows.append((str(entry.number), entry.session.name, entry.cause, entry.where, f"{now - entry.since:.0f} s"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
