"""Moving values between the notebook and the remote: by value or by reference.

Decided here, in one place, for ``%rpush``/``%rpull``, ``%%remote -i/-o``
and ``r.push()``/``r.pull()``:

* callables (functions, classes), modules and proxies travel by reference:
  the other side gets a proxy, and calling it runs the code where it lives
  (a notebook function handed over runs in the notebook; on a server that
  keeps sessions it gets a stand-in that outlives a dropped link:
  ``RemoteSession.stable_ref``);
* everything else travels by value, as an independent copy: values rpyc
  carries itself (numbers, short strings, tuples of those) as they are,
  others pickled (protocol 5; NumPy arrays and large bytes-like values
  beside the pickle stream, not copied into it: ``agent/bulk.py``);
* the mode says what happens to a value that cannot be copied (pickled
  here, unpickled there: a lock, an instance of a class defined only in
  the notebook): ``VALUE`` (``%rpush``, ``r.push``) fails with one line
  naming it and suggesting a reference; ``AUTO`` (``-i``/``-o``) hands a
  reference instead; ``REF`` hands references to everything.

Values larger than ``RSym.chunk_bytes`` move in pieces, ``IN_FLIGHT``
bytes of them on their way at a time, straight into buffers allocated once
(``client.RoutedConnection.pipeline``); one that takes longer than
``RSym.progress_after`` shows its progress in the cell.  Small values of
one call travel in its one request.
"""

import secrets

from rpyc.core.netref import BaseNetref

from ..remote import bulk
from ..remote.wire import Piece
from .errors import CannotCopy
from .resume import is_function

VALUE, REF, AUTO = "value", "ref", "auto"
IN_FLIGHT = 16 << 20  # bytes of pieces on their way: a 20 ms link moved 64 MB
# 2.5x faster with 16 MB in flight than with 4 MB (benchmarks/farlinks.py); on
# loopback it made no difference.  The pieces wait in socket buffers, not in
# either process.


def _window(session):
    return max(2, min(64, IN_FLIGHT // max(session.settings.chunk_bytes, 1)))


def mode(ref=False, fallback=False):
    """The transfer mode for a ``ref`` flag and a ``fallback`` flag."""
    return REF if ref else AUTO if fallback else VALUE


def push(session, values, how=VALUE):
    """Bind ``{name: value}`` in the session's remote namespace (one request,
    plus the pieces of large values)."""
    items = [_item(session, name, value, how) for name, value in values.items()]
    if not items:
        return
    failures = session.call("store", session.namespace, tuple(items))
    for name, reason in failures:
        raise CannotCopy(name, f"to {session.name}", reason)


def _item(session, name, value, how):
    limit = session.settings.chunk_bytes
    if how == REF or bulk.by_reference(value):
        # a notebook function goes as a stand-in that outlives a dropped link
        return (name, "ref", session.stable_ref(value) if is_function(value) else value, ())
    if bulk.plain(value, limit):
        return (name, "plain", value, ())
    try:
        parts, writable = bulk.pack(value)
    except Exception as exc:
        if how == AUTO:
            return (name, "ref", value, ())
        raise CannotCopy(name, f"to {session.name}", bulk.reason(exc)) from None
    fallback = bulk.fallback_for(value, how)
    sizes = [bulk.size_of(part) for part in parts]
    if sum(sizes) <= limit:
        return (name, "inline", (tuple(bytes(part) for part in parts), tuple(writable)), fallback)
    return (name, "chunked", _upload(session, name, parts, sizes, writable), fallback)


def _upload(session, name, parts, sizes, writable):
    """Send a large value's parts in pieces; returns the handle ``store`` takes."""
    handle = secrets.randbits(62)
    chunk = session.settings.chunk_bytes
    progress = session.frontend.progress(
        f"pushing {name} to {session.name}", sum(sizes), session.settings.progress_after
    )

    def calls():
        layout = (tuple(sizes), tuple(writable))  # sent with the first piece only
        for index, part in enumerate(parts):
            view = memoryview(part).cast("B")
            for offset in range(0, len(view), chunk):
                yield (handle, index, offset, Piece(view[offset : offset + chunk]), layout)
                layout = None

    def sent(args, reply):
        progress.advance(len(args[3]))

    try:
        session.pipeline("write", calls(), sent, _window(session))
    except BaseException:
        _forget(session, handle)
        raise
    progress.finish()
    return handle


def to_remote(conn, value, name="value"):
    """What to hand the remote for one ``value`` (``AUTO``): the value itself
    (references, and values rpyc carries), or a proxy of a copy made there
    (one request, plus the pieces of a large value)."""
    session = conn.session
    _, kind, payload, fallback = _item(session, name, value, AUTO)
    if kind in ("ref", "plain"):
        return payload
    return session.call("build", kind, payload, fallback)


def from_remote(value, name="value"):
    """A copy of a remote ``value`` (``AUTO``: the proxy itself if it cannot
    be copied); anything else as it is.  One request, plus pieces."""
    if not isinstance(value, BaseNetref):
        return value
    session = object.__getattribute__(value, "____conn__").session
    answer = session.call("export", value, AUTO, session.settings.chunk_bytes)
    return _value(session, name, answer)


def pull(session, names, how=VALUE):
    """``{name: value}`` from the session's remote namespace (one request,
    plus the pieces of large values).  A missing name raises ``KeyError``."""
    answers = session.call("fetch", session.namespace, tuple(names), how, session.settings.chunk_bytes)
    values, waiting = {}, [a[1] for a in answers if a[0] == "chunked"]
    try:
        for name, answer in zip(names, answers):
            if answer[0] == "chunked":
                waiting.remove(answer[1])
            values[name] = _value(session, name, answer)
    except BaseException:
        for handle in waiting:  # the remote still holds them
            _forget(session, handle)
        raise
    return values


def _value(session, name, answer):
    kind = answer[0]
    if kind == "missing":
        raise KeyError(name)
    if kind in ("ref", "plain"):
        return answer[1]
    where = f"from {session.name}"
    if kind == "uncopyable":
        _, reason, fallback = answer
        if fallback:
            return fallback[0]
        raise CannotCopy(name, where, reason)
    if kind == "inline":
        _, parts, writable, fallback = answer
        receiver = bulk.Receiver([len(part) for part in parts], writable)
        for index, part in enumerate(parts):
            receiver.put(index, 0, part)
    else:
        _, handle, sizes, writable, fallback = answer
        receiver = _download(session, name, handle, sizes, writable)
    try:
        return bulk.unpack(receiver.finish())
    except Exception as exc:  # cannot unpickle here: a class only the remote has
        if fallback:
            return fallback[0]
        raise CannotCopy(name, where, bulk.reason(exc)) from None


def _download(session, name, handle, sizes, writable):
    """Read a large value's parts in pieces into one buffer per part."""
    chunk = session.settings.chunk_bytes
    receiver = bulk.Receiver(sizes, writable)
    pieces = [
        (index, offset, min(chunk, size - offset))
        for index, size in enumerate(sizes)
        for offset in range(0, size, chunk)
    ]
    progress = session.frontend.progress(
        f"pulling {name} from {session.name}", sum(sizes), session.settings.progress_after
    )

    def received(args, data):
        _, index, offset, _, _ = args
        receiver.put(index, offset, data)
        progress.advance(len(data))

    calls = ((handle, *piece, piece is pieces[-1]) for piece in pieces)
    try:
        session.pipeline("read", calls, received, _window(session))
    except BaseException:
        _forget(session, handle)
        raise
    progress.finish()
    return receiver


def _forget(session, handle):
    """Tell the remote to drop a transfer we gave up on (without waiting)."""
    try:
        session.notify("release", handle)
    except Exception:
        pass
