"""Cause tags: the notebook can tell which of its requests caused a callback.

The server-side rpyc ``Connection`` of a link is patched (per instance,
nothing global) so that a request the remote sends while one of its threads
is dispatching a notebook request carries that request's sequence number:
its seq becomes ``(n, cause_seq)`` instead of ``n``.  The seq is opaque to
rpyc (only echoed back in the reply), so a stock rpyc peer is unaffected;
the notebook reads the tag to tell a *nested* callback (caused by the
request the cell is waiting on) from a *spontaneous* one (a remote thread,
a timer).  A request from a thread that is not dispatching but whose route
(``routes``) works for one of this link's requests (a pool job, a thread, an
asyncio task a cell's work started) carries that cause as ``(n, cause_seq,
WORKING)``: the callback belongs to that cell, yet nobody waits on it, so the
notebook still shows its errors.  The same patch gives each dispatch its route (output capture),
sends its exceptions through ``interrupts.serve_request``, and flushes a
link's output before the replies and callbacks it belongs before.
"""

import threading

from . import interrupts, routes

MSG_REQUEST = 1  # rpyc.core.consts
WORKING = 1  # third item of a seq tag: sent by work done for the cause, not nested in it
CALLS = (7, 8)  # HANDLE_CALL, HANDLE_CALLATTR: not a __del__ from the garbage collector

_dispatching = threading.local()  # .stack: [(connection id, client seq), ...]


def patch_connection(conn, link):
    """Tag requests with their cause, track who serves what, flush before replies."""
    conn_id = id(conn)
    next_seq = conn._get_seq_id
    send = conn._send

    def tagged_seq():
        seq = next_seq()
        stack = getattr(_dispatching, "stack", None)
        if stack and stack[-1][0] == conn_id:
            return (seq, stack[-1][1])
        route = routes.current()
        if route is not None and route[0] is link and type(route[1]) is int:
            return (seq, route[1], WORKING)
        return seq

    def routed_dispatch(seq, raw_args):
        stack = _dispatching.__dict__.setdefault("stack", [])
        key = (conn_id, seq)
        stack.append(key)
        token = routes.enter((link, seq))
        try:
            interrupts.serve_request(conn, key, raw_args, flushing_send)  # it ends the interrupt window
        finally:
            stack.pop()
            routes.leave(token)

    def flushing_send(msg, seq, args):
        # Output made for this link goes out before the reply it belongs to,
        # and before a callback its thread makes (the callback may print too).
        if link.pending and not link.flushing_here():
            if msg != MSG_REQUEST or (args[0] in CALLS and routes.current_link() is link):
                link.flush()
        send(msg, seq, args)

    conn._get_seq_id = tagged_seq
    conn._dispatch_request = routed_dispatch
    conn._send = flushing_send
    interrupts.release_on_interrupt(conn)
