"""The last exception of remote code working for each notebook link.

One per link: the next exception replaces it, ``clear`` (``%rdebug
--clear``) drops it, and it goes with the link.  ``breakpoints.post_mortem``
opens pdb on it.  Kept only where a request or a cell fails, so calls that
do not fail pay nothing.
"""

from . import remotepdb, routes


def keep(exc, tb=None):
    """Keep ``exc`` as its link's last exception, if it went through user code."""
    link = routes.current_link()
    if link is None:
        return
    tb = remotepdb.user_traceback(tb if tb is not None else exc.__traceback__)
    if tb is not None:  # a failed attribute probe has no user frame: not worth a post-mortem
        link.last_error = (exc, tb)


def of(link):
    """(exception, traceback of its user frames) kept for ``link``, or None."""
    return getattr(link, "last_error", None)


def clear():
    """Drop the kept exception of the calling request's link; True if there was one."""
    link = routes.current_link()
    had = of(link) is not None
    link.last_error = None
    return had
