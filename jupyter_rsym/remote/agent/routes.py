"""Which notebook link, and which of its requests, remote work is done for.

A route is ``(Link, cause seq)``.  It lives in a context variable, so it
follows the work rather than the thread:

* a thread dispatching a notebook request works for that request (``tags``
  sets the route for the dispatch);
* a thread started by a routed thread inherits its route (a plain thread
  belongs to the cell whose work started it);
* a callable submitted to a ``concurrent.futures.ThreadPoolExecutor``
  (``submit``, ``map``, asyncio's ``run_in_executor``) runs under the
  submitter's route, whichever cell created the pool and its threads;
* asyncio copies the scheduling code's context into every callback and task
  (``call_soon``, ``call_soon_threadsafe``, ``create_task``,
  ``run_coroutine_threadsafe``), so work scheduled on a loop runs under the
  scheduler's route, whichever cell started the loop's thread.

Threads with no route (the server's own, other clients', the agent's) are
left alone.  The patches are made once per process.
"""

import contextvars
import threading

_route = contextvars.ContextVar("jupyter_rsym_route", default=None)


def current():
    """The (Link, cause seq) the calling code works for, or None."""
    return _route.get()


def current_link():
    route = _route.get()
    return route[0] if route is not None else None


def enter(route):
    """Work for ``route`` until ``leave(token)``; returns the token."""
    return _route.set(route)


def leave(token):
    _route.reset(token)


def unrouted(thread):
    """Mark an agent thread that must never inherit a route; returns it."""
    thread._rsym_unrouted = True
    return thread


def route_new_work():
    """New threads inherit the starter's route, pool work the submitter's."""
    _route_new_threads()
    _route_pool_work()


def stop_routing_new_work():
    """Undo ``route_new_work`` (a process our server leaves while it goes on:
    a Dask worker whose plugin is removed)."""
    from concurrent.futures import ThreadPoolExecutor

    for owner, name in ((threading.Thread, "start"), (ThreadPoolExecutor, "submit")):
        patched = getattr(owner, name)
        if getattr(patched, "_rsym_patched", False):
            setattr(owner, name, patched._rsym_original)


def _route_new_threads():
    start = threading.Thread.start
    if getattr(start, "_rsym_patched", False):
        return

    def routed_start(thread):
        route = None if getattr(thread, "_rsym_unrouted", False) else _route.get()
        if route is not None or getattr(thread, "_rsym_unrouted", False):
            run = thread.run

            def run_routed():
                _route.set(route)  # this thread's own context
                run()

            thread.run = run_routed
        return start(thread)

    routed_start._rsym_patched = True
    routed_start._rsym_original = start
    threading.Thread.start = routed_start


def _route_pool_work():
    from concurrent.futures import ThreadPoolExecutor

    submit = ThreadPoolExecutor.submit
    if getattr(submit, "_rsym_patched", False):
        return

    def routed_submit(*args, **kwargs):
        executor, fn, *rest = args
        return submit(executor, _working_for(_route.get(), fn), *rest, **kwargs)

    routed_submit._rsym_patched = True
    routed_submit._rsym_original = submit
    routed_submit.__doc__ = submit.__doc__
    ThreadPoolExecutor.submit = routed_submit


def _working_for(route, fn):
    def run(*args, **kwargs):
        token = _route.set(route)
        try:
            return fn(*args, **kwargs)
        finally:
            _route.reset(token)

    return run
