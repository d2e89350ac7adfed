"""%rjobs: the background jobs of ``%%remote --bg``."""

from IPython.core import magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class

from . import arguments
from .base import ExtensionMagics

NO_JOB = "no job {}; %rjobs lists them"


@magics_class
class JobMagics(ExtensionMagics):
    """List background jobs and get their handles back."""

    @magic_arguments.magic_arguments()
    @magic_arguments.argument(
        "number", nargs="?", type=int, default=None, help="return the handle of this job instead of listing"
    )
    @line_magic
    def rjobs(self, line):
        """List background jobs: number, sessions, state, run time, cell.

        ``%rjobs N`` returns job N's handle (``done()``, ``result(timeout)``,
        ``cancel()``).  Finished jobs are forgotten after the 200 most recent.

        Examples
        --------
        ::

            In [9]: %rjobs
            job  sessions  state    time    cell
            1    gpu, cpu  done     12.0 s  7
            2    gpu       running  3.1 s   8

            In [10]: %rjobs 2
            Out[10]: <RemoteJob 2 on gpu: running, cell 8>
        """
        args = arguments.parse(self.rjobs, line)
        jobs = self.extension.jobs
        if args.number is not None:
            try:
                return jobs.get(args.number)
            except KeyError:
                raise UsageError(NO_JOB.format(args.number)) from None
        rows = [("job", "sessions", "state", "time", "cell")]
        for job in jobs:
            rows.append(
                (str(job.number), ", ".join(job.sessions), job.state, f"{job.elapsed:.1f} s", str(job.cell or ""))
            )
        if len(rows) == 1:
            print("no background jobs; start one with %%remote --bg")
            return None
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        return None
