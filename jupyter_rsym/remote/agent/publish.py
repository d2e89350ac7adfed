"""Displays: ``display()`` in remote code shows in the notebook cell it works for.

A thread working for a notebook (see ``routes``) that calls ``display(obj)``
gets the object's representations computed here (``reprs.bundle``) and
queued with its stdout/stderr text (``capture.Link.buffer_item``), so a
display keeps its place between prints and travels in the same batch: no
extra round trip.  ``display_id`` and ``update`` work as in IPython.

Both the ``display`` a ``%%remote`` cell has without an import (put into
each notebook connection's namespace by ``attach``) and IPython's own
(``IPython.display``, patched only if and when the remote imports IPython)
route this way.  Any other thread gets IPython's original, or a plain print
when the remote has no IPython.
"""

import json
import sys
import uuid

from . import imports, reprs, routes

_IPYTHON = "IPython.core.display_functions"
_REEXPORTS = ("IPython.display", "IPython.core.display")
_original = {}  # IPython's own functions, by name, once patched


def display(
    *objs,
    include=None,
    exclude=None,
    metadata=None,
    transient=None,
    display_id=None,
    raw=False,
    clear=False,
    update=False,
    **kwargs,
):
    """Show objects in the notebook cell this thread works for (IPython's signature).

    Returns a ``DisplayHandle`` when ``display_id`` is given (``True`` makes
    a new id), whose ``update(obj)`` replaces that output in place.
    """
    route = routes.current()
    if route is None or route[0].dead:
        if "display" in _original:
            return _original["display"](
                *objs,
                include=include,
                exclude=exclude,
                metadata=metadata,
                transient=transient,
                display_id=display_id,
                raw=raw,
                clear=clear,
                update=update,
                **kwargs,
            )
        print(*objs)
        return None
    transient = dict(transient or {})
    if display_id:
        if display_id is True:
            display_id = uuid.uuid4().hex
        transient["display_id"] = display_id
    if update and "display_id" not in transient:
        raise TypeError("display_id required for update_display")
    if not objs and display_id:
        objs, raw = ({},), True  # an empty output to update later
    if clear:
        clear_output(wait=True)
    for obj in objs:
        if raw:
            pairs, md = reprs.sendable_pairs(obj, include, exclude), {}
        else:
            pairs, md = reprs.bundle(obj, include, exclude)
        md.update(metadata or {})
        publish(route, pairs, md, transient, update)
    return DisplayHandle(display_id) if display_id else None


def update_display(obj, *, display_id, **kwargs):
    """Replace the output made with ``display_id`` by ``obj``."""
    kwargs["update"] = True
    display(obj, display_id=display_id, **kwargs)


def publish_display_data(data, metadata=None, *, transient=None, update=False, **kwargs):
    """Show an already formatted mime bundle (IPython's signature)."""
    route = routes.current()
    if route is None or route[0].dead:
        if "publish_display_data" in _original:
            return _original["publish_display_data"](data, metadata, transient=transient, update=update, **kwargs)
        return print(data.get("text/plain", data))
    publish(route, reprs.sendable_pairs(data, None, None), dict(metadata or {}), dict(transient or {}), update)
    return None


def clear_output(wait=False):
    """Clear the output of the notebook cell this thread works for."""
    route = routes.current()
    if route is None or route[0].dead:
        if "clear_output" in _original:
            return _original["clear_output"](wait)
        return None
    route[0].buffer_item(route[1], "clear_output", bool(wait))
    return None


def publish(route, pairs, metadata, transient, update=False):
    """Queue one display for the route's cell, in order with its text."""
    link, cause = route
    payload = (pairs, _as_json(metadata), _as_json(transient), bool(update))
    link.buffer_item(cause, "display", payload, sum(len(v) for _, v in pairs))


class DisplayHandle:
    """A handle on an output that can be updated in place (as IPython's)."""

    def __init__(self, display_id=None):
        self.display_id = display_id or uuid.uuid4().hex

    def __repr__(self):
        return "<DisplayHandle display_id=%s>" % self.display_id

    def display(self, obj, **kwargs):
        """Show ``obj`` as a new output with this id (updating the others)."""
        display(obj, display_id=self.display_id, **kwargs)

    def update(self, obj, **kwargs):
        """Replace the outputs with this id by ``obj``."""
        update_display(obj, display_id=self.display_id, **kwargs)


def install(namespace=None):
    """Give ``namespace`` a ``display`` and route IPython's once it is imported."""
    if isinstance(namespace, dict):
        namespace.setdefault("display", display)
    imports.when_imported(_IPYTHON, _patch_ipython)


_OURS = {
    "display": display,
    "update_display": update_display,
    "clear_output": clear_output,
    "publish_display_data": publish_display_data,
}


def _patch_ipython(module):
    for name, ours in _OURS.items():
        original = getattr(module, name, None)
        if original is None or original is ours:
            continue
        _original[name] = original
        setattr(module, name, ours)
        for other in _REEXPORTS:  # modules that imported it before us
            reexport = sys.modules.get(other)
            if reexport is not None and getattr(reexport, name, None) is original:
                setattr(reexport, name, ours)


def _as_json(value):
    if not value:
        return ""
    return json.dumps(value, default=repr)
