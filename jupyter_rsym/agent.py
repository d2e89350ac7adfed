"""Code that runs inside the remote Python process.

The remote side needs nothing installed: at connect time the notebook sends
this module's source over the connection, and the remote keeps it in its
``sys.modules`` under a name made from the source's hash, so every
connection to one server process shares one copy of one version (one stdout
router, one flusher thread).  It uses the standard library only and never
imports jupyter_rsym.

What it adds to the remote side of one connection (a ``Link``):

* **Cause tags.**  The server-side rpyc ``Connection`` of the link is patched
  (per instance, nothing global) so that a request the remote sends while one
  of its threads is dispatching a notebook request carries that request's
  sequence number: its seq becomes ``(n, cause_seq)`` instead of ``n``.  The
  seq is opaque to rpyc (only echoed back in the reply), so a stock rpyc peer
  is unaffected; our notebook side reads the tag to tell a *nested* callback
  (caused by the request the cell is waiting on) from a *spontaneous* one (a
  remote thread, a timer).
* **Output capture.**  ``sys.stdout``/``sys.stderr`` are replaced once by a
  ``RoutedStream`` that sends a write to the link of the thread that made it:
  a thread dispatching a notebook request, or a thread started by one.  Writes
  are buffered and shipped in batches (a size threshold, an idle flusher
  thread, and always before the reply of the request that caused them), each
  chunk tagged with its cause so the notebook puts it in the right cell.
  Threads with no route write to the original streams (the server terminal).
* **Interrupts.**  Each notebook request is dispatched by ``_serve_request``
  (rpyc's own dispatch, plus a window): ``interrupt``, called over a second
  connection, raises KeyboardInterrupt in the thread running the request's
  handler, and only there.
* **Cells.**  ``run_cell`` runs a whole cell in one request, the last
  expression evaluated separately like IPython does; failures come back as
  plain data (type name, message, formatted remote traceback) rather than as
  rpyc's wrapped exceptions.
"""

import ast
import itertools
import linecache
import sys
import threading
import time
import traceback
import weakref

# rpyc.core.consts, stable since rpyc 3
MSG_REQUEST, MSG_REPLY, MSG_EXCEPTION = 1, 2, 3
CALLS = (7, 8)  # HANDLE_CALL, HANDLE_CALLATTR: not a __del__ from the garbage collector

_routes = {}  # thread ident -> (Link, cause seq)
_links = weakref.WeakValueDictionary()  # id -> Link
_dispatching = threading.local()  # .stack: [(connection id, client seq), ...]
_install_lock = threading.Lock()


class Link:
    """The agent's state for one notebook connection."""

    def __init__(self, conn, emit, batch_bytes):
        self.conn = conn
        self.emit = emit
        self.batch_bytes = batch_bytes
        self.dead = False
        self._chunks = []  # [cause, stream name, [text, ...]]
        self._size = 0
        self._buffer_lock = threading.Lock()
        self._flush_lock = threading.Lock()  # keeps batches in order
        self._flusher_ident = None

    def buffer(self, cause, name, text):
        with self._buffer_lock:
            was_empty = not self._chunks
            last = self._chunks[-1] if self._chunks else None
            if last is not None and last[0] == cause and last[1] == name:
                last[2].append(text)
            else:
                self._chunks.append([cause, name, [text]])
            self._size += len(text)
            full = self._size >= self.batch_bytes
        if full:
            self.flush()
        elif was_empty:
            _flusher.wake(self)

    @property
    def pending(self):
        return bool(self._chunks)

    def flushing_here(self):
        """Whether the calling thread is inside this link's flush (its emit request)."""
        return self._flusher_ident == threading.get_ident()

    def flush(self):
        """Ship buffered output to the notebook; drop it if the link is gone."""
        with self._flush_lock:
            with self._buffer_lock:
                chunks, self._chunks, self._size = self._chunks, [], 0
            if not chunks or self.dead:
                return
            batch = tuple((c, n, "".join(parts)) for c, n, parts in chunks)
            self._flusher_ident = threading.get_ident()
            try:
                self.emit(batch)
            except Exception:
                self.detach()
            finally:
                self._flusher_ident = None

    def detach(self):
        self.dead = True
        for ident, route in list(_routes.items()):
            if route[0] is self:
                _routes.pop(ident, None)


class RoutedStream:
    """Stand-in for sys.stdout/stderr that routes writes by thread.

    ``flush()`` of a routed thread does not force a round trip (logging and
    progress bars flush after every line); the flusher ships the buffer
    within ``flush_interval``.
    """

    def __init__(self, name, original):
        self._rsym_name = name
        self._rsym_original = original

    def write(self, text):
        route = _routes.get(threading.get_ident())
        if route is None or route[0].dead:
            if self._rsym_original is None:
                return len(text)
            return self._rsym_original.write(text)
        route[0].buffer(route[1], self._rsym_name, str(text))
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        route = _routes.get(threading.get_ident())
        if route is None:
            if self._rsym_original is not None:
                self._rsym_original.flush()

    def isatty(self):
        return False

    def __getattr__(self, name):
        return getattr(self._rsym_original, name)


class Flusher:
    """One daemon thread per process that ships output left in buffers."""

    def __init__(self):
        self.interval = 0.05
        self._pending = set()
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        thread = threading.Thread(target=self._run, name="jupyter-rsym-flusher", daemon=True)
        thread._rsym_unrouted = True
        thread.start()

    def wake(self, link):
        with self._lock:
            self._pending.add(link)
        self._wakeup.set()

    def _run(self):
        while True:
            self._wakeup.wait()
            time.sleep(self.interval)  # gathers a batch; not a poll
            with self._lock:
                self._wakeup.clear()
                links, self._pending = self._pending, set()
            for link in links:
                link.flush()


def _route_link():
    route = _routes.get(threading.get_ident())
    return route[0] if route is not None else None


def _route_new_threads():
    """Threads started by a routed thread inherit its route."""
    start = threading.Thread.start
    if getattr(start, "_rsym_patched", False):
        return

    def routed_start(thread):
        route = _routes.get(threading.get_ident())
        if route is not None and not getattr(thread, "_rsym_unrouted", False):
            run = thread.run

            def run_routed():
                ident = threading.get_ident()
                _routes[ident] = route
                try:
                    run()
                finally:
                    _routes.pop(ident, None)

            thread.run = run_routed
        return start(thread)

    routed_start._rsym_patched = True
    threading.Thread.start = routed_start


def _install_process_hooks():
    with _install_lock:
        if not isinstance(sys.stdout, RoutedStream):
            sys.stdout = RoutedStream("stdout", sys.stdout)
        if not isinstance(sys.stderr, RoutedStream):
            sys.stderr = RoutedStream("stderr", sys.stderr)
        _route_new_threads()


def _patch_connection(conn, link):
    """Tag requests with their cause, track who serves what, flush before replies."""
    conn_id = id(conn)
    next_seq = conn._get_seq_id
    send = conn._send

    def tagged_seq():
        seq = next_seq()
        stack = getattr(_dispatching, "stack", None)
        if stack and stack[-1][0] == conn_id:
            return (seq, stack[-1][1])
        return seq

    def routed_dispatch(seq, raw_args):
        stack = _dispatching.__dict__.setdefault("stack", [])
        ident = threading.get_ident()
        key = (conn_id, seq)
        previous = _routes.get(ident)
        stack.append(key)
        _routes[ident] = (link, seq)
        try:
            _serve_request(conn, key, raw_args, flushing_send)
        finally:
            _finish(key)
            stack.pop()
            if previous is None:
                _routes.pop(ident, None)
            else:
                _routes[ident] = previous

    def flushing_send(msg, seq, args):
        # Output made for this link goes out before the reply it belongs to,
        # and before a callback its thread makes (the callback may print too).
        if link.pending and not link.flushing_here():
            if msg != MSG_REQUEST or (args[0] in CALLS and _route_link() is link):
                link.flush()
        send(msg, seq, args)

    conn._get_seq_id = tagged_seq
    conn._dispatch_request = routed_dispatch
    conn._send = flushing_send


def _serve_request(conn, key, raw_args, send):
    """rpyc's Connection._dispatch_request, with a window for interrupts.

    ``interrupt`` may raise KeyboardInterrupt asynchronously in this thread
    only while the handler runs; the pending exception is cleared before the
    reply is sent, so it can never land in rpyc's own code.
    """
    seq = key[1]
    try:
        handler, args = raw_args
        args = conn._unbox(args)
        with _active_lock:
            _active[key] = threading.get_ident()
        try:
            result = conn._HANDLERS[handler](conn, *args)
        finally:
            _finish(key)
    except BaseException:
        typ, value, tb = sys.exc_info()
        conn._last_traceback = tb
        if typ is SystemExit and conn._config["propagate_SystemExit_locally"]:
            raise
        if typ is KeyboardInterrupt and conn._config["propagate_KeyboardInterrupt_locally"] \
                and not getattr(value, "_rsym_interrupt", False):
            raise
        send(MSG_EXCEPTION, seq, conn._box_exc(typ, value, tb))
    else:
        send(MSG_REPLY, seq, conn._box(result))


# -- interrupts ----------------------------------------------------------------

_active = {}  # (connection id, seq) -> ident of the thread running its handler
_interrupted = set()
_active_lock = threading.Lock()


class _Interrupt(KeyboardInterrupt):
    """KeyboardInterrupt raised in remote code by the notebook's interrupt."""

    _rsym_interrupt = True


def _set_async_exc(ident, exc_type):
    import ctypes

    return ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(exc_type) if exc_type else None)


def _finish(key):
    with _active_lock:
        ident = _active.pop(key, None)
        if key in _interrupted:
            _interrupted.discard(key)
            if ident is not None:
                _set_async_exc(ident, None)  # not raised yet: too late now


def interrupt(link_id, seq):
    """Stop the handler serving request ``seq`` of a link; returns its state:
    "done" (nothing runs it), "stopped", or "blocked".

    Python code stops at its next bytecode.  Code blocked in C (a sleep, a
    read) cannot be cut short: then another thread serves the connection
    until it returns, so the notebook can use the connection meanwhile.
    """
    link = _links.get(link_id)
    if link is None:
        return "done"
    key = (id(link.conn), seq)
    with _active_lock:
        ident = _active.get(key)
        if ident is None:
            return "done"
        _interrupted.add(key)
        _set_async_exc(ident, _Interrupt)
    deadline = time.monotonic() + 0.1
    while key in _active and time.monotonic() < deadline:
        time.sleep(0.005)
    if key not in _active:
        return "stopped"
    thread = threading.Thread(target=_serve_while_busy, args=(link.conn, key), daemon=True)
    thread._rsym_unrouted = True
    thread.start()
    return "blocked"


def _serve_while_busy(conn, key):
    """Serve the connection while its own thread is stuck in a handler."""
    while key in _active and not conn.closed:
        try:
            conn.serve(0.1)
        except Exception:
            return


_flusher = None


def attach(service, emit, batch_bytes=65536, flush_interval=0.05):
    """Set up the agent for the connection that serves ``service``.

    ``service`` is the remote root object of the notebook's connection (a
    classic ``SlaveService``); ``emit`` is the notebook's output sink.
    Returns the link's id (``interrupt`` takes it, over another connection)
    and the remote platform description.
    """
    global _flusher
    _install_process_hooks()
    with _install_lock:
        if _flusher is None:
            _flusher = Flusher()
        _flusher.interval = min(_flusher.interval, flush_interval)
    conn = service._conn
    link = Link(conn, emit, batch_bytes)
    _links[id(link)] = link
    _patch_connection(conn, link)
    return id(link), describe()


def describe():
    import platform

    try:
        from rpyc import __version__ as rpyc_version
    except ImportError:
        rpyc_version = "?"
    return "Python %s on %s, rpyc %s" % (
        platform.python_version(), platform.platform(terse=True), rpyc_version)


# -- cells -------------------------------------------------------------------

_cell_numbers = itertools.count(1)


def run_cell(source, namespace, mode="exec"):
    """Run ``source`` in ``namespace``; return ("ok", value) or ("error", info).

    In "exec" mode the last statement, if an expression, is evaluated on its
    own and its value returned (like an IPython cell); "eval" mode evaluates
    one expression.  ``info`` is (type name, type module, message, traceback
    text) with this function's own frame left out.
    """
    filename = "<remote-cell-%d>" % next(_cell_numbers)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        if mode == "eval":
            return ("ok", eval(compile(source, filename, "eval"), namespace))
        tree = ast.parse(source, filename)
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        exec(compile(tree, filename, "exec"), namespace)
        if last is None:
            return ("ok", None)
        return ("ok", eval(compile(last, filename, "eval"), namespace))
    except BaseException as exc:  # the cell's failure is data, not our failure
        return ("error", describe_exception(exc))


def describe_exception(exc):
    tb = exc.__traceback__
    if tb is not None and tb.tb_frame.f_code is run_cell.__code__:
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return (type(exc).__name__, type(exc).__module__, str(exc), text)


# -- display -------------------------------------------------------------------

_REPR_METHODS = (
    ("text/html", "_repr_html_"),
    ("text/markdown", "_repr_markdown_"),
    ("image/svg+xml", "_repr_svg_"),
    ("image/png", "_repr_png_"),
    ("image/jpeg", "_repr_jpeg_"),
    ("text/latex", "_repr_latex_"),
)


def mimebundle(obj):
    """The object's rich representations, as a tuple of (mime, data) pairs.

    Computed here, in one request, so the notebook never probes a remote
    object attribute by attribute.  Only str/bytes data is returned.
    """
    bundle = {}
    method = getattr(type(obj), "_repr_mimebundle_", None)
    if method is not None:
        try:
            data = method(obj)
            if isinstance(data, tuple):
                data = data[0]
            bundle.update(data or {})
        except Exception:
            pass
    for mime, name in _REPR_METHODS:
        method = getattr(type(obj), name, None)
        if mime in bundle or method is None:
            continue
        try:
            data = method(obj)
        except Exception:
            continue
        if isinstance(data, tuple):
            data = data[0]
        if data is not None:
            bundle[mime] = data
    if "text/plain" not in bundle:
        try:
            bundle["text/plain"] = repr(obj)
        except Exception as exc:
            bundle["text/plain"] = "<unrepresentable %s: %s>" % (type(obj).__name__, exc)
    return tuple((k, v) for k, v in bundle.items() if isinstance(v, (str, bytes)))
