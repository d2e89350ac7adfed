"""IPython magics: thin glue that parses arguments, calls a session, shows the result."""

from .connection import ConnectionMagics
from .execution import RemoteMagics

__all__ = ["ConnectionMagics", "RemoteMagics"]
