"""Logs: records logged on behalf of a notebook cell land in that cell.

A server usually configures logging before the agent arrives
(``rpyc_classic`` calls ``logging.basicConfig``), so its handlers hold the
process's original stderr, not the agent's router: records of a thread
working for a notebook would reach the server's terminal.  The patched
``StreamHandler.emit`` sends such a record, formatted by that handler, to
the cell instead (and not also to the terminal) when its level is at least
the link's ``log_level`` (``RSym.log_level``); quieter records stay on the
terminal as before.  Handlers of any other stream (files, sockets) and
threads with no route are untouched; handlers created on the router (after
the agent came) route by themselves.
"""

import logging
import sys
import threading

from . import routes

_lock = threading.Lock()


def install():
    """Patch ``logging.StreamHandler.emit`` (once per process)."""
    with _lock:
        emit = logging.StreamHandler.emit
        if getattr(emit, "_rsym_patched", False):
            return

        def routed_emit(handler, record):
            route = routes.current()
            name = _process_stream(handler) if route is not None else None
            if name is None or route[0].dead or record.levelno < route[0].log_level:
                return emit(handler, record)
            try:
                route[0].buffer(route[1], name, handler.format(record) + handler.terminator)
            except Exception:
                handler.handleError(record)
            return None

        routed_emit._rsym_patched = True
        routed_emit.__doc__ = emit.__doc__
        logging.StreamHandler.emit = routed_emit


def _process_stream(handler):
    """ "stdout"/"stderr" if the handler writes to the process's own stream."""
    stream = getattr(handler, "stream", None)
    if stream is None or isinstance(handler, logging.FileHandler):
        return None
    for name in ("stderr", "stdout"):
        current = getattr(sys, name)
        original = getattr(current, "_rsym_original", None)
        if stream is original or stream is getattr(sys, "__%s__" % name):
            return name
    return None
