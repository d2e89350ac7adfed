"""Remote threads working for a notebook that die of an exception report it in their cell."""

import sys
import threading

from ..tracebacks import format_exception
from . import routes


def report_thread_errors():
    """``threading.excepthook`` for threads working for a notebook: the
    report lands in their cell (as ``sys.stderr`` does), formatted here;
    other threads keep the original hook (patched once per process)."""
    hook = threading.excepthook
    if getattr(hook, "_rsym_patched", False):
        return

    def excepthook(args):
        if routes.current() is None or args.exc_type is SystemExit:
            return hook(args)
        name = args.thread.name if args.thread is not None else threading.get_ident()
        sys.stderr.write("Exception in thread %s:\n%s" % (name, format_exception(args.exc_value, args.exc_traceback)))

    excepthook._rsym_patched = True
    threading.excepthook = excepthook
