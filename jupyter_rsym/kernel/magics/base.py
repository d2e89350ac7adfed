"""What every jupyter_rsym magics class has."""

from IPython.core.magic import Magics


class ExtensionMagics(Magics):
    """Magics bound to the loaded extension (its settings and sessions)."""

    def __init__(self, shell, extension):
        super().__init__(shell)
        self.extension = extension
