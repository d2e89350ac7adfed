"""Plots: matplotlib figures made for a notebook show in its cell as PNG.

What the inline backend does in a notebook, for threads working for a
notebook link only (see ``routes``), once the remote imports pyplot:

* ``plt.figure()`` (and everything that makes one) gives such a thread a
  figure on an Agg canvas, whatever the process's own backend is, so a
  server with a display opens no window;
* pyplot's "current figure" (``gcf``, so ``plt.plot`` and friends, and
  ``plt.close()``) is the link's newest open figure for its threads, and
  the process's own newest for the others: neither draws into the other's;
* ``plt.show()`` shows the link's open figures in the cell and closes them;
* when a ``%%remote`` cell ends, its link's figures still open show and
  close (``cell_ended``), so they do not pile up;
* a figure as a cell's value, or passed to ``display()``, shows as an image
  (a formatter in ``reprs.FORMATTERS``).

No matplotlib on the remote: nothing is imported and nothing changes.
"""

import io
import sys
import threading
import weakref

from . import cells, imports, publish, reprs, routes

_owners = weakref.WeakKeyDictionary()  # Figure -> Link it was made for
_lock = threading.Lock()
_original = {}  # pyplot's own functions, once patched
_patched = False  # pyplot is patched once per process, whatever the sessions


def install():
    """Adapt pyplot as soon as the remote imports it (now, if it has)."""
    with _lock:
        if figure_png not in reprs.FORMATTERS:
            reprs.FORMATTERS.append(figure_png)
            cells.cell_end_hooks.append(cell_ended)
    imports.when_imported("matplotlib.pyplot", _patch_pyplot)


def figure_png(obj):
    """The PNG of a matplotlib Figure (None for anything else)."""
    figure_module = sys.modules.get("matplotlib.figure")
    if figure_module is None or not isinstance(obj, figure_module.Figure):
        return None
    buffer = io.BytesIO()
    obj.savefig(buffer, format="png", bbox_inches="tight")
    return {"image/png": buffer.getvalue(), "text/plain": repr(obj)}


def show_figures(route, skip=None):
    """Show the route's link's open figures in its cell, then close them
    (``skip``, a cell's value, closes without showing: the value shows it)."""
    helpers = sys.modules.get("matplotlib._pylab_helpers")
    if helpers is None:
        return
    link = route[0]
    with _lock:
        managers = sorted(helpers.Gcf.get_all_fig_managers(), key=lambda m: m.num)
        figures = [m.canvas.figure for m in managers if _owners.get(m.canvas.figure) is link]
    for figure in figures:
        try:
            if figure is not skip:
                pairs, metadata = reprs.bundle(figure)
                publish.publish(route, pairs, metadata, {})
        finally:
            _original["close"](figure)


def cell_ended(value):
    """A cell of this thread's link ended: show and close its open figures."""
    route = routes.current()
    if route is not None and _owners:
        show_figures(route, skip=value)


def _current_figure():
    """The calling thread's side's most recently active open figure, or None."""
    owner = routes.current_link()
    managers = sys.modules["matplotlib._pylab_helpers"].Gcf.figs.values()
    for manager in reversed(list(managers)):  # the most recently active last
        if _owners.get(manager.canvas.figure) is owner:
            return manager.canvas.figure
    return None


def _patch_pyplot(pyplot):
    global _patched
    with _lock:
        if _patched:  # for an earlier session: ours as "the original" would recurse
            return
        _patched = True
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    def new_figure_manager(num, *args, **kwargs):
        route = routes.current()
        if route is None:
            return _original["new_figure_manager"](num, *args, **kwargs)
        figure_class = kwargs.pop("FigureClass", None) or sys.modules["matplotlib.figure"].Figure
        figure = figure_class(*args, **kwargs)
        with _lock:
            _owners[figure] = route[0]
        return FigureCanvasAgg.new_manager(figure, num)

    def draw_if_interactive(*args, **kwargs):
        if routes.current() is None:
            return _original["draw_if_interactive"](*args, **kwargs)
        return None  # figures show at plt.show() or the cell's end

    def gcf():
        current = _current_figure()
        return pyplot.figure() if current is None else current

    def close(fig=None):
        if fig is None:
            fig = _current_figure()
            if fig is None:
                return None
        return _original["close"](fig)

    def show(*args, **kwargs):
        route = routes.current()
        if route is None:
            return _original["show"](*args, **kwargs)
        show_figures(route)
        return None

    for name, ours in (
        ("new_figure_manager", new_figure_manager),
        ("gcf", gcf),
        ("close", close),
        ("draw_if_interactive", draw_if_interactive),
        ("show", show),
    ):
        _original[name] = getattr(pyplot, name)
        ours.__doc__ = _original[name].__doc__
        setattr(pyplot, name, ours)
