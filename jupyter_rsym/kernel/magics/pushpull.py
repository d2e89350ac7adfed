"""%rpush and %rpull: copy values between the notebook and a remote namespace."""

from IPython.core import magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class, needs_local_scope

from .arguments import on_session, parse, parse_names
from .base import ExtensionMagics

NO_LOCAL = "%rpush {name}: no notebook variable named {name!r}"
NO_REMOTE = "%rpull {name}: the remote namespace has no variable named {name!r} in session {session}{hint}"
DEFAULT_HINT = " (the default session; --on NAME looks in another)"


def _options(func):
    """``--on`` and ``--ref``, the same for both magics."""
    func = magic_arguments.argument(
        "--ref",
        action="store_true",
        help="hand references (proxies) instead of copies",
    )(func)
    return on_session(func)


@magics_class
class TransferMagics(ExtensionMagics):
    """Copy values to and from a remote namespace."""

    @magic_arguments.magic_arguments()
    @magic_arguments.argument(
        "names", nargs="+", metavar="NAME[=REMOTE]", help="notebook variables to send; =REMOTE binds under another name"
    )
    @_options
    @needs_local_scope
    @line_magic
    def rpush(self, line, local_ns=None):
        """Copy notebook variables into the remote namespace (where ``%%remote``
        cells and ``r.eval`` see them).

        By value: the remote gets an independent copy.  Large values (NumPy
        arrays, bytes) move at close to wire speed, in pieces, with progress
        shown in the cell if it takes more than ``RSym.progress_after`` s.
        Functions, classes and modules always go by reference (a notebook
        function called remotely runs here).  A value that cannot be copied
        (a lock, an instance of a class the remote does not have) is an
        error; ``--ref`` hands a reference to it instead.  Same rules as
        ``%%remote -i`` and ``r.push()``.

        Examples
        --------
        ::

            In [1]: import numpy as np; frame = np.zeros((1000, 1000))

            In [2]: %rpush frame

            In [3]: %rpush frame=image --on gpu

            In [4]: %rpush logger --ref
        """
        args = parse(self.rpush, line)
        pairs = parse_names(args.names, "%rpush", form="NAME=REMOTE", dotted=False)
        session = self.extension.session(args.on)
        values = {}
        for local, remote in pairs:
            for namespace in (local_ns or {}, self.shell.user_ns):
                if local in namespace:
                    values[remote] = namespace[local]
                    break
            else:
                raise UsageError(NO_LOCAL.format(name=local))
        session.push(values, ref=args.ref)

    @magic_arguments.magic_arguments()
    @magic_arguments.argument(
        "names", nargs="+", metavar="NAME[=LOCAL]", help="remote variables to fetch; =LOCAL binds under another name"
    )
    @_options
    @line_magic
    def rpull(self, line):
        """Copy variables of the remote namespace into the notebook.

        By value: the notebook gets an independent copy (a NumPy array
        arrives as a writable array, bytes as bytes), at close to wire
        speed for large values, with progress shown for long transfers.
        Remote functions, classes and modules come as proxies.  A value
        that cannot be copied is an error; ``--ref`` fetches a proxy
        instead.  Same rules as ``%%remote -o`` and ``r.pull()``.

        Examples
        --------
        ::

            In [1]: %rpull result
            In [2]: result.shape, result.flags.writeable
            Out[2]: ((1000, 1000), True)

            In [3]: %rpull result=gpu_result --on gpu

            In [4]: %rpull model --ref
        """
        args = parse(self.rpull, line)
        pairs = parse_names(args.names, "%rpull", form="NAME=LOCAL", dotted=False)
        session = self.extension.session(args.on)
        try:
            values = session.pull([remote for remote, _ in pairs], ref=args.ref)
        except KeyError as missing:
            raise UsageError(
                NO_REMOTE.format(name=missing.args[0], session=session.name, hint="" if args.on else DEFAULT_HINT)
            ) from None
        for remote, local in pairs:
            self.shell.user_ns[local] = values[remote]
