"""%autoremote and %%local: plain cells run remotely until turned off."""

from IPython.core import magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import cell_magic, line_magic, magics_class

from . import arguments
from .base import ExtensionMagics


@magics_class
class AutoRemoteMagics(ExtensionMagics):
    """Switch the ``%autoremote`` mode (``jupyter_rsym.kernel.autotransform``)."""

    @magic_arguments.magic_arguments()
    @magic_arguments.argument(
        "name",
        nargs="?",
        default=None,
        help="session plain cells run on (default: the most recently connected one), or off",
    )
    @line_magic
    def autoremote(self, line):
        """Run every plain cell remotely, as a ``%%remote --on NAME`` cell, until
        ``%autoremote off``.

        Cells that start with a magic (``%``, ``%%``) or ``!`` run as usual;
        ``%%local`` runs one cell in the notebook.  Completion (TAB) in the
        remote cells offers the remote namespace's names.  A line in the cell
        output says when the mode starts and ends.

        Examples
        --------
        ::

            In [1]: %autoremote gpu
            autoremote on: plain cells run on gpu (%%local runs one cell here; %autoremote off)

            In [2]: import platform; platform.node()
            Out[2]: 'gpu-box'

            In [3]: %%local
               ...: print("here")
            here

            In [4]: %autoremote off
            autoremote off: cells run here
        """
        args = arguments.parse(self.autoremote, line)
        mode = self.extension.autoremote
        if args.name == "off":
            was, mode.session_name = mode.session_name, None
            print("autoremote off: cells run here" if was else "autoremote was not on")
            return
        session = self.extension.session(args.name)
        if session.state != "connected":
            raise UsageError(f"session {session.name!r} is {session.state}; %rconnect it first")
        mode.session_name = session.name
        print(f"autoremote on: plain cells run on {session.name} (%%local runs one cell here; %autoremote off)")

    @cell_magic
    def local(self, line, cell):
        """Run this cell in the notebook, also while ``%autoremote`` is on.

        (The ``%autoremote`` input transformer drops this line before IPython
        sees it; this magic only runs if that transformer is not installed.)

        Examples
        --------
        ::

            In [1]: %autoremote gpu
            autoremote on: plain cells run on gpu (%%local runs one cell here; %autoremote off)

            In [2]: %%local
               ...: import os; os.getpid()
            Out[2]: 4242
        """
        return self.shell.run_cell(cell).result
