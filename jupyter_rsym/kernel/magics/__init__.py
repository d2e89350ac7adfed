"""IPython magics: thin glue that parses arguments, calls a session, shows the result."""

from .autoremote import AutoRemoteMagics
from .connection import ConnectionMagics
from .debugging import DebugMagics
from .execution import RemoteMagics
from .jobs import JobMagics
from .namespace import NamespaceMagics
from .pushpull import TransferMagics

__all__ = [
    "AutoRemoteMagics",
    "ConnectionMagics",
    "DebugMagics",
    "JobMagics",
    "NamespaceMagics",
    "RemoteMagics",
    "TransferMagics",
]
