"""%%remote (and %remote EXPR): run code in the remote process."""

from IPython.core import magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, magics_class, needs_local_scope, no_var_expand

from ..gathered import run_foreground
from ..remotesyntax import remote_source
from .arguments import BAD_NAME, on_sessions, parse, parse_names, split_options, strip_comment, transfer_names
from .base import ExtensionMagics

NO_LOCAL = "-i {local}: no notebook variable named {local!r}"
NO_REMOTE = "-o {remote}: the remote namespace has no variable named {remote!r} in session {session}"
BG_TIMEOUT = "--timeout does not apply to --bg cells: job.result(timeout) waits, job.cancel() stops"
NO_EXPRESSION = "%remote needs an expression, e.g. %remote sum(range(10)); use %%remote for a cell"


@magics_class
class RemoteMagics(ExtensionMagics):
    """Run notebook cells and expressions in a remote session."""

    @magic_arguments.magic_arguments()
    @on_sessions
    @transfer_names
    @magic_arguments.argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="fail the cell if it runs longer than S seconds (default: RSym.cell_timeout, 0 = no limit)",
    )
    @magic_arguments.argument(
        "--bg",
        action="store_true",
        help="run in the background: return a job handle at once (done(), result(timeout), "
        "cancel()); output, value and errors still land in this cell; %%rjobs lists jobs",
    )
    @magic_arguments.argument(
        "--no-collapse",
        dest="collapse",
        action="store_false",
        help="on several hosts, show every host's copy of a line (default: RSym.collapse_output "
        "shows a line many hosts print alike once, then how many repeated it)",
    )
    @no_var_expand
    @needs_local_scope
    @line_cell_magic
    def remote(self, line, cell=None, local_ns=None):
        """Run a cell (``%%remote``) or an expression (``%remote EXPR``) remotely.

        The cell runs in the session's remote namespace in one request.  Its
        prints stream into this cell while it runs, also from remote threads
        it starts; the value of its last expression is shown like a local
        cell's, with the object's own rich representation.  ``display()``
        (no import needed), matplotlib figures, progress bars, logging,
        ``input()``/``getpass`` and top-level ``await`` work as in a local
        cell, and so do ``!cmd``, ``x = !cmd``, ``%time``, ``%timeit``,
        ``%%time``, ``%%timeit``, ``obj?`` and ``obj??`` (run remotely);
        ``__name__`` is ``"__main__"``.  Output of child processes the cell
        starts (``subprocess``, ``os.system``) lands here too.  A remote
        exception shows the remote traceback.

        Order: hand over ``-i`` names, run, copy back ``-o`` names.  Values
        travel as in ``jupyter_rsym.link.transfer``: functions by reference (the
        remote calls back into the notebook), plain data as a copy.

        With several sessions (``--on a,b`` or ``--on all``) the cell runs on
        all of them at once, each in its own remote namespace.  Output is
        labelled ``[name]`` at each change of session, whole lines only; the
        value shows each session's value labelled (a dict ``{name: value}``,
        as is each ``-o`` name); ``-i`` hands the same values to every
        session.  If some fail, the others' output and values stay, and one
        ``FanoutError`` at the end shows each failing session's traceback.
        Interrupting stops the cell on every session.  From
        ``RSym.many_hosts`` hosts up, a line several hosts print
        alike shows once, then ``[repeated on N more hosts: ...]``
        (``--no-collapse``: every copy), and a cell still running after
        ``RSym.fanout_progress_after`` s shows ``N/M done, K failed (...)``
        in one line updated in place.  ``--on GROUP`` (``%rconnect
        dask://``) runs on every live worker of the group, ``--on
        GROUP/WORKER`` on one.

        ``--bg`` returns a job handle at once; the cell's output, value and
        errors land in this cell whenever they come, its ``-o`` names are
        bound when it ends.

        The line form evaluates one expression and returns its value (a
        proxy for remote objects): ``x = %remote os.getcwd()``.  It takes
        the same options, before the expression (``%remote -i x --on gpu
        x * 2``; ``--`` ends the options); without ``--timeout`` it waits
        ``RSym.timeout`` like any remote call.

        Examples
        --------
        ::

            In [1]: %%remote
               ...: import platform
               ...: print("running on", platform.node())
               ...: 6 * 7
            running on gpu-box
            Out[1]: 42

            In [2]: def progress(i):
               ...:     print("step", i)

            In [3]: %%remote -i progress -o total=remote_total --on gpu
               ...: total = 0
               ...: for i in range(3):
               ...:     progress(i); total += i
            step 0
            step 1
            step 2

            In [4]: %remote __import__("os").getpid()
            Out[4]: 4242

            In [5]: %%remote --on gpu,cpu -o host
               ...: import platform
               ...: host = platform.node()
               ...: print("hello")
            [gpu] hello
            [cpu] hello

            In [6]: host
            Out[6]: {'gpu': 'gpu-box', 'cpu': 'cpu-box'}

            In [7]: %%remote --bg
               ...: import time; time.sleep(60); "slept"
            Out[7]: <RemoteJob 1 on r: running, cell 7>

            In [8]: _7.result(timeout=120)
            Out[8]: 'slept'
        """
        mode = "exec"
        if cell is None:  # the line form: options, then one expression
            line, cell = split_options(self.remote.parser, strip_comment(line))
            mode = "eval"
        args = parse(self.remote, line)
        if mode == "eval" and not cell.strip():
            raise UsageError(NO_EXPRESSION)
        if mode == "exec":  # !cmd, %time, obj? run remotely (remote/agent/shell.py)
            cell = remote_source(cell)
        sessions = self.extension.sessions_for(args.on)
        inputs = parse_names(args.input, "-i")
        outputs = parse_names(args.output, "-o")
        for remote, local in outputs:
            if not local.isidentifier():
                raise UsageError(BAD_NAME.format(option="-o", item=f"{remote}={local}", form="REMOTE=LOCAL"))
        values = {remote: self._lookup(local, local_ns) for remote, local in inputs}
        settings = self.extension.settings
        timeout = args.timeout
        if timeout is None and (mode == "exec" or len(sessions) > 1):
            timeout = settings.cell_timeout  # a single expression waits RSym.timeout
        if args.bg:
            if args.timeout is not None:
                raise UsageError(BG_TIMEOUT)
            return self.extension.jobs.start(sessions, cell, self.shell, self.extension.labels, values, outputs)
        if len(sessions) > 1:
            many = len(sessions) >= settings.many_hosts  # readable output at many hosts
            collapse = settings.collapse_window if many and args.collapse and settings.collapse_output else None
            return run_foreground(
                sessions,
                cell,
                self.shell,
                self.extension.labels,
                values,
                outputs,
                timeout,
                collapse,
                settings.fanout_progress_after if many else 0,
                self.extension.debugging,
            )
        session = sessions[0]
        session.push(values, fallback=True)
        value = session.run(cell, mode, timeout=timeout)
        self._copy_back(session, outputs)
        return value

    def _lookup(self, dotted, local_ns):
        head, *rest = dotted.split(".")
        for namespace in (local_ns or {}, self.shell.user_ns):
            if head in namespace:
                value = namespace[head]
                break
        else:
            raise UsageError(NO_LOCAL.format(local=dotted))
        try:
            for attribute in rest:
                value = getattr(value, attribute)
        except AttributeError:
            raise UsageError(NO_LOCAL.format(local=dotted)) from None
        return value

    def _copy_back(self, session, outputs):
        if not outputs:
            return
        try:  # all in one request (plus the pieces of large values)
            values = session.pull([remote for remote, _ in outputs], fallback=True)
        except KeyError as missing:
            raise UsageError(NO_REMOTE.format(remote=missing.args[0], session=session.name)) from None
        for remote, local in outputs:
            self.shell.user_ns[local] = values[remote]
