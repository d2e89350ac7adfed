"""Display: an object's rich representations, computed remotely in one request."""

import json

_REPR_METHODS = (
    ("text/html", "_repr_html_"),
    ("text/markdown", "_repr_markdown_"),
    ("image/svg+xml", "_repr_svg_"),
    ("image/png", "_repr_png_"),
    ("image/jpeg", "_repr_jpeg_"),
    ("text/latex", "_repr_latex_"),
    ("application/json", "_repr_json_"),
    ("application/javascript", "_repr_javascript_"),
    ("application/pdf", "_repr_pdf_"),
)

# Callables ``obj -> {mime: data} or None`` for types that have no _repr_*_
# of their own (``plots`` adds matplotlib figures), asked first.
FORMATTERS = []


def mimebundle(obj):
    """The object's rich representations, as a tuple of (mime, data) pairs.

    Computed here, in one request, so the notebook never probes a remote
    object attribute by attribute.  Data is str or bytes (JSON as its text).
    """
    return bundle(obj)[0]


def bundle(obj, include=None, exclude=None):
    """``(pairs, metadata)``: what ``mimebundle`` returns, plus the metadata
    dict the representations gave (``_repr_png_`` returning ``(data, md)``).

    Never raises: a failing representation is left out, and text/plain falls
    back to a description of the failure.
    """
    data, metadata = {}, {}
    for formatter in FORMATTERS:
        try:
            data.update(formatter(obj) or {})
        except Exception:
            pass
    method = getattr(type(obj), "_repr_mimebundle_", None)
    if method is not None:
        try:
            _add(data, metadata, None, _call(method, obj, include, exclude))
        except Exception:
            pass
    for mime, name in _REPR_METHODS:
        method = getattr(type(obj), name, None)
        if mime in data or method is None or not wanted(mime, include, exclude):
            continue
        try:
            _add(data, metadata, mime, method(obj))
        except Exception:
            continue
    if "text/plain" not in data:
        try:
            data["text/plain"] = repr(obj)
        except Exception as exc:
            data["text/plain"] = "<unrepresentable %s: %s>" % (type(obj).__name__, exc)
    return sendable_pairs(data, include, exclude), metadata


def sendable_pairs(data, include=None, exclude=None):
    """A mime dict as (mime, str or bytes) pairs, by value over rpyc (JSON as
    its text); what cannot be sent, or is not wanted, is left out."""
    pairs = ((k, _sendable(k, v)) for k, v in data.items() if wanted(k, include, exclude))
    return tuple((k, v) for k, v in pairs if v is not None)


def _call(method, obj, include, exclude):
    try:
        return method(obj, include=include, exclude=exclude)
    except TypeError:  # an older signature without include/exclude
        return method(obj)


def _add(data, metadata, mime, value):
    """Add one representation (or, with mime None, a whole bundle)."""
    md = None
    if isinstance(value, tuple) and len(value) == 2:
        value, md = value
    if value is None:
        return
    if mime is None:
        data.update(value)
        metadata.update(md or {})
    else:
        data[mime] = value
        if md:
            metadata[mime] = md


def wanted(mime, include, exclude):
    return (not include or mime in include) and (not exclude or mime not in exclude)


def _sendable(mime, value):
    if isinstance(value, (str, bytes)):
        return value
    if mime == "application/json" or mime.endswith("+json"):
        try:
            return json.dumps(value)
        except (TypeError, ValueError):
            return None
    return None


def reprs(objects):
    """``repr()`` of each object, in one request (a notebook container of
    remote objects is shown with these, not with one request per item)."""
    shown = []
    for obj in objects:
        try:
            shown.append(repr(obj))
        except Exception as exc:
            shown.append("<unrepresentable %s: %s>" % (type(obj).__name__, exc))
    return tuple(shown)
