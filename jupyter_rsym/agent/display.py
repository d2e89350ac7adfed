"""Display: an object's rich representations, computed remotely in one request."""

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
