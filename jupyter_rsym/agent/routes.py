"""Which notebook link, and which of its requests, each remote thread works for.

A thread dispatching a notebook request works for that request (``tags``
sets its route); a thread started by a routed thread inherits the route, so
output of threads a cell starts lands in that cell.  Threads with no route
(the server's own, other clients') are left alone.
"""

import threading

routes = {}  # thread ident -> (Link, cause seq)


def current():
    """The (Link, cause seq) the calling thread works for, or None."""
    return routes.get(threading.get_ident())


def current_link():
    route = routes.get(threading.get_ident())
    return route[0] if route is not None else None


def forget_link(link):
    """Drop every route to ``link`` (its connection is gone)."""
    for ident, route in list(routes.items()):
        if route[0] is link:
            routes.pop(ident, None)


def unrouted(thread):
    """Mark an agent thread that must never inherit a route; returns it."""
    thread._rsym_unrouted = True
    return thread


def route_new_threads():
    """Threads started by a routed thread inherit its route (patched once per process)."""
    start = threading.Thread.start
    if getattr(start, "_rsym_patched", False):
        return

    def routed_start(thread):
        route = routes.get(threading.get_ident())
        if route is not None and not getattr(thread, "_rsym_unrouted", False):
            run = thread.run

            def run_routed():
                ident = threading.get_ident()
                routes[ident] = route
                try:
                    run()
                finally:
                    routes.pop(ident, None)

            thread.run = run_routed
        return start(thread)

    routed_start._rsym_patched = True
    threading.Thread.start = routed_start
