"""Bulk values: pickle protocol 5 with out-of-band buffers, moved in pieces.

A value is packed into parts: the pickle stream, then each out-of-band
buffer as it is, never copied into the stream (a NumPy array's memory; a
large bytes, bytearray or memoryview value itself).  A small value travels
inside the one request or reply that asks for it.  A large one stays with
the sender under a handle while the notebook moves it piece by piece,
several pieces in flight (``client.RoutedConnection.pipeline``); the
receiver allocates each part once and puts every piece straight into it
(``Receiver``).  Readonly parts (bytes) arrive as bytes, writable ones
(arrays, bytearrays) as bytearrays, so what comes out is the type that
went in, and an array arrives writable without a copy.

Both ends use this module: the notebook imports it, the remote has it in
the agent bundle; ``fetch``, ``read``, ``store``, ``write`` and ``release``
are what the notebook calls remotely.  Which values go by value at all is
decided by ``mode`` here and, on the notebook side, in ``transfer.py``.
"""

import itertools
import pickle
import types

OUT_OF_BAND = 1 << 16  # a bytes-like value this big travels beside the pickle stream
_SINGLE_FORMATS = frozenset("bBhHiIlLqQnNfdecx?")

_outgoing = {}  # handle -> parts of a value the notebook is reading
_incoming = {}  # handle -> Receiver of a value the notebook is writing
_handles = itertools.count(1)


class _OutOfBand:
    """Pickles a bytes, bytearray or memoryview as one out-of-band buffer,
    rebuilt on the other side as the same type around the received buffer
    (``getattr(view, "obj")`` is the bytes or bytearray the view is of)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        value = self.value
        if type(value) is memoryview:
            return (memoryview.cast, (pickle.PickleBuffer(value), value.format, value.shape))
        return (getattr, (pickle.PickleBuffer(value), "obj"))


def _out_of_band(value):
    kind = type(value)
    if kind is bytes or kind is bytearray:
        return len(value) >= OUT_OF_BAND
    # a memoryview (any size) has no pickling of its own
    return kind is memoryview and value.c_contiguous and value.ndim >= 1 and value.format.lstrip("@") in _SINGLE_FORMATS


def pack(value):
    """``value`` as ``(parts, writable)``: part 0 is the pickle stream, then
    one flat memoryview per out-of-band buffer; ``writable[i]`` says whether
    part ``i`` must arrive writable.  Raises whatever pickling raises."""
    if _out_of_band(value):
        value = _OutOfBand(value)
    buffers = []
    stream = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    views = [buffer.raw() for buffer in buffers]
    return [stream, *views], [False, *(not view.readonly for view in views)]


def unpack(parts):
    """The value packed into ``parts`` (as ``Receiver.finish`` returns them)."""
    return pickle.loads(parts[0], buffers=[memoryview(part) for part in parts[1:]])


def size_of(part):
    return memoryview(part).nbytes


class Receiver:
    """The parts of one value, filled piece by piece: a writable part into a
    bytearray allocated once; a readonly part that comes in one piece is
    that piece, one in several pieces is copied into a bytes object built in
    place (``_Bytes``), or else joined at the end."""

    def __init__(self, sizes, writable):
        _prepare_allocator()
        self.parts = [_Bytes.bytearray(size) if w else [] for size, w in zip(sizes, writable)]
        self.sizes = sizes

    def put(self, index, offset, data):
        part = self.parts[index]
        if type(part) is bytearray:
            memoryview(part)[offset : offset + len(data)] = data
        elif type(part) is _Bytes:
            part.put(offset, data)
        elif not part and len(data) < self.sizes[index] and _Bytes.available():
            self.parts[index] = _Bytes(self.sizes[index])
            self.parts[index].put(offset, data)
        else:
            part.append(data)

    def finish(self):
        parts, self.parts = self.parts, None
        return [
            part
            if type(part) is bytearray
            else part.value
            if type(part) is _Bytes
            else (part[0] if len(part) == 1 else b"".join(part))
            for part in parts
        ]


class _Bytes:
    """A bytes object of known size filled in place, piece by piece, before
    anyone else sees it: the C API's own way of building bytes
    (``PyBytes_FromStringAndSize(NULL, n)``), so a large bytes value is
    written once instead of collected and joined (CPython only).  Also a
    bytearray that is not zero-filled first (every byte of it is written by
    the pieces): ``bytearray(n)`` would touch all its memory one extra time."""

    _make = _address = _make_bytearray = None

    @classmethod
    def bytearray(cls, size):
        if size < OUT_OF_BAND or not cls.available():
            return bytearray(size)
        return cls._make_bytearray(None, size)

    def __init__(self, size):
        self.value = self._make(None, size)
        self._base = self._address(self.value)
        self.size = size

    def put(self, offset, data):
        import ctypes

        data = bytes(data)  # no copy for bytes, which is what arrives
        if offset < 0 or offset + len(data) > self.size:
            raise ValueError("piece beyond the end of its part")
        ctypes.memmove(self._base + offset, data, len(data))

    @classmethod
    def available(cls):
        if cls._make is None:
            try:
                import ctypes

                api = ctypes.pythonapi
                cls._make = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_ssize_t)(
                    ("PyBytes_FromStringAndSize", api)
                )
                cls._address = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object)(("PyBytes_AsString", api))
                cls._make_bytearray = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_ssize_t)(
                    ("PyByteArray_FromStringAndSize", api)
                )
            except Exception:  # not CPython: collect and join
                cls._make = False
        return bool(cls._make)


_allocator_ready = []


def _prepare_allocator():
    """Once per process, free one 8 MB block.  glibc's malloc gives memory
    back to the OS whenever more than twice the largest block it ever freed
    is free at the top of its heap (that starts at 128 KB): the pieces of a
    transfer, allocated and freed one after another, would fault their pages
    in again every time (measured: three times the page faults of the value
    itself).  After one such free, as in any program that ever freed a large
    object, they reuse the same memory."""
    if not _allocator_ready:
        _allocator_ready.append(bytearray(8 << 20))
        del _allocator_ready[0]
        _allocator_ready.append(True)


def by_reference(value):
    """Callables (functions, classes), modules and proxies travel by reference."""
    if callable(value) or isinstance(value, types.ModuleType):
        return True
    try:
        from rpyc.core.netref import BaseNetref
    except ImportError:
        return False
    return isinstance(value, BaseNetref)


def plain(value, limit):
    """Whether rpyc itself carries ``value`` by value, and it is small."""
    from rpyc.core import brine

    if isinstance(value, (str, bytes)):
        return len(value) <= limit and brine.dumpable(value)
    return brine.dumpable(value)


def fallback_for(value, mode):
    """What a copy falls back to when it cannot be unpickled on the other side:
    ``(value,)`` (a reference) in "auto" mode, else ``()``.  A value rpyc
    carries by value (bytes, str, numbers, tuples of them) always unpickles,
    and as its own fallback it would travel twice: none for it."""
    from rpyc.core import brine

    return (value,) if mode == "auto" and not brine.dumpable(value) else ()


def reason(exc):
    """One line saying why a value could not be copied."""
    text = str(exc).split("\n", 1)[0]
    return "%s: %s" % (type(exc).__name__, text) if text else type(exc).__name__


# -- called by the notebook ----------------------------------------------------


def fetch(namespace, names, mode, limit):
    """The values of ``names`` in ``namespace``, one answer per name.

    ``mode``: "value" copies, "ref" hands references, "auto" copies what it
    can and adds the object itself as a fallback.  An answer is one of
    ``("missing",)``, ``("ref", obj)``, ``("plain", value)``,
    ``("inline", parts, writable, fallback)``, ``("chunked", handle, sizes,
    writable, fallback)`` (then read with ``read``) or ``("uncopyable",
    reason, fallback)``; ``fallback`` is ``(obj,)`` in "auto" mode, else ``()``.
    Parts of at most ``limit`` bytes in all come inline.
    """
    return tuple(_answer(namespace, name, mode, limit) for name in names)


def _answer(namespace, name, mode, limit):
    try:
        value = namespace[name]
    except KeyError:
        return ("missing",)
    return export(value, mode, limit)


def export(value, mode, limit):
    """The answer ``fetch`` gives for one value (the notebook copies a value
    it holds a proxy of this way)."""
    if mode == "ref" or by_reference(value):
        return ("ref", value)
    if plain(value, limit):
        return ("plain", value)
    try:
        parts, writable = pack(value)
    except Exception as exc:
        return ("uncopyable", reason(exc), (value,) if mode == "auto" else ())
    fallback = fallback_for(value, mode)
    sizes = tuple(size_of(part) for part in parts)
    if sum(sizes) <= limit:
        return ("inline", tuple(bytes(part) for part in parts), tuple(writable), fallback)
    handle = next(_handles)
    _outgoing[handle] = parts
    return ("chunked", handle, sizes, tuple(writable), fallback)


def read(handle, index, offset, size, last=False):
    """Bytes ``offset:offset+size`` of part ``index``; ``last`` releases the value."""
    part = _outgoing[handle][index]
    if last:
        _outgoing.pop(handle, None)
    if offset == 0 and type(part) is bytes and size >= len(part):
        return part
    return bytes(memoryview(part)[offset : offset + size])


def write(handle, index, offset, data, layout=None):
    """Put a piece of a value the notebook sends; ``layout`` (sizes,
    writable) comes with the first piece and allocates the parts."""
    if layout is not None:
        _incoming[handle] = Receiver(*layout)
    _incoming[handle].put(index, offset, data)


def release(handle):
    """Forget a transfer (the notebook gave up on it)."""
    _outgoing.pop(handle, None)
    _incoming.pop(handle, None)


def store(namespace, items):
    """Bind values the notebook sent in ``namespace``.

    Each item is ``(name, kind, payload, fallback)``: kind "plain" or "ref"
    (payload is the value), "inline" (payload is ``(parts, writable)``) or
    "chunked" (payload is the handle of pieces sent with ``write``).  A
    value that cannot be unpickled here is replaced by ``fallback`` (``(obj,)``)
    or, without one, reported: returns ``(name, reason)`` pairs.
    """
    failures = []
    for name, kind, payload, fallback in items:
        try:
            namespace[name] = build(kind, payload, fallback)
        except Exception as exc:
            failures.append((name, reason(exc)))
    return tuple(failures)


def build(kind, payload, fallback=()):
    """The value of one item ``store`` takes (see there); the notebook also
    calls it alone to get a proxy of a copy made here."""
    try:
        if kind == "inline":
            parts, writable = payload
            receiver = Receiver([len(part) for part in parts], writable)
            for index, part in enumerate(parts):
                receiver.put(index, 0, part)
            return unpack(receiver.finish())
        if kind == "chunked":
            return unpack(_incoming.pop(payload).finish())
        return payload
    except Exception:
        if not fallback:
            raise
        return fallback[0]
