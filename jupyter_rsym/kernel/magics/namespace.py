"""%rwho, %rwhos: the remote namespace's variables, as IPython's %who, %whos."""

from IPython.core import magic_arguments
from IPython.core.magic import line_magic, magics_class

from .arguments import on_session, parse
from .base import ExtensionMagics

EMPTY = "the remote namespace of {} has no variables"


def _types(func):
    return magic_arguments.argument(
        "types", nargs="*", metavar="TYPE", help="only variables of these type names (int, function, ...)"
    )(func)


@magics_class
class NamespaceMagics(ExtensionMagics):
    """List the variables of a session's remote namespace, in one request."""

    @magic_arguments.magic_arguments()
    @_types
    @on_session
    @line_magic
    def rwho(self, line):
        """The names of the remote namespace's variables (``%%remote`` cells',
        ``%rpush``'s), sorted, as IPython's ``%who`` lists the notebook's.

        Examples
        --------
        ::

            In [1]: %rwho
            cubes   g   os

            In [2]: %rwho list --on gpu
            cubes
        """
        args = parse(self.rwho, line)
        session = self.extension.session(args.on)
        found = session.call("variables", session.namespace, tuple(args.types))
        print("   ".join(name for name, _, _ in found) if found else EMPTY.format(session.name))

    @magic_arguments.magic_arguments()
    @_types
    @on_session
    @line_magic
    def rwhos(self, line):
        """The remote namespace's variables with their types and short reprs,
        as IPython's ``%whos`` shows the notebook's (one request).

        Examples
        --------
        ::

            In [1]: %rwhos
            Variable   Type       Data/Info
            -------------------------------
            cubes      list       [0, 1, 8]
            g          function   <netref function g>
        """
        args = parse(self.rwhos, line)
        session = self.extension.session(args.on)
        found = session.call("variables", session.namespace, tuple(args.types))
        if not found:
            print(EMPTY.format(session.name))
            return
        rows = [("Variable", "Type", "Data/Info")] + [tuple(row) for row in found]
        widths = [max(len(row[i]) for row in rows) + 3 for i in range(2)]
        lines = [row[0].ljust(widths[0]) + row[1].ljust(widths[1]) + row[2] for row in rows]
        lines.insert(1, "-" * max(len(line.rstrip()) for line in lines))
        print("\n".join(line.rstrip() for line in lines))
