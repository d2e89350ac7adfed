"""Cells: a whole notebook cell runs remotely in one request.

``run_cell`` evaluates the last expression separately like IPython does;
failures come back as plain data (type name, message, formatted remote
traceback) rather than as rpyc's wrapped exceptions.  Top-level ``await``
works as in a notebook cell: the cell runs to completion in an event loop
of its own (``run_awaiting``).  ``cell_end_hooks`` run in the cell's thread
when it ends, with its value (``plots`` shows the cell's figures).
"""

import ast
import itertools
import threading

from .. import tracebacks
from . import lasterror, shell, sources

_cell_numbers = itertools.count(1)
ASYNC = getattr(ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0)  # Python 3.8+
CO_COROUTINE = 0x80  # inspect.CO_COROUTINE: the code awaits at top level
_loops = threading.local()  # .loop: the event loop of this thread's awaiting cells
VALUE = "__rsym_cell_value__"  # the last expression's value, taken out at once
cell_end_hooks = []  # callables(value), run when a cell ends (value None on error)


def run_cell(source, namespace, mode="exec"):
    """Run ``source`` in ``namespace``; return ("ok", value) or ("error", info).

    In "exec" mode the value of the last statement, if an expression, is
    returned (like an IPython cell); "eval" mode evaluates
    one expression.  ``info`` is (type name, type module, message, traceback
    text) with this function's own frame left out.
    """
    filename = "<remote-cell-%d>" % next(_cell_numbers)
    sources.remember(filename, source)
    if "__name__" not in namespace:  # a script's: `if __name__ == "__main__":` runs
        namespace["__name__"] = "__main__"
    shell.install(namespace)
    try:
        if mode == "eval":
            return ("ok", cell_ended(run_awaiting(compile(source, filename, "eval", ASYNC), namespace)))
        tree = ast.parse(source, filename)
        has_value = bool(tree.body) and isinstance(tree.body[-1], ast.Expr)
        if has_value:  # one code object: pdb steps from the body into the last line
            last = tree.body[-1]
            tree.body[-1] = ast.copy_location(
                ast.Assign(targets=[ast.Name(VALUE, ast.Store())], value=last.value), last
            )
            ast.fix_missing_locations(tree)
        run_awaiting(compile(tree, filename, "exec", ASYNC), namespace)
        return ("ok", cell_ended(namespace.pop(VALUE, None) if has_value else None))
    except BaseException as exc:  # the cell's failure is data, not our failure
        lasterror.keep(exc)
        cell_ended(None)
        return ("error", describe_exception(exc))


def run_awaiting(code, namespace):
    """Run compiled cell code.  Code with a top-level ``await`` runs to
    completion in this thread's event loop (one per thread, kept between
    cells as IPython keeps its own); its errors show from the cell's frames."""
    value = eval(code, namespace)
    if not code.co_flags & CO_COROUTINE:
        return value
    loop = getattr(_loops, "loop", None)
    if loop is None:
        import asyncio

        loop = _loops.loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(value)
    except BaseException as exc:
        tb = exc.__traceback__  # skip asyncio's frames, down to the cell's
        while tb is not None and tb.tb_frame.f_code.co_filename != code.co_filename:
            tb = tb.tb_next
        raise exc.with_traceback(tb or exc.__traceback__)


def cell_ended(value):
    """Run ``cell_end_hooks``; returns ``value``.  A failing hook is ignored."""
    for hook in cell_end_hooks:
        try:
            hook(value)
        except Exception:
            pass
    return value


def describe_exception(exc):
    tb = exc.__traceback__
    # our own frames, and the compiler's for the cell's syntax errors
    while tb is not None and (tb.tb_frame.f_globals is globals() or tb.tb_frame.f_code.co_filename == _COMPILER):
        tb = tb.tb_next
    text = tracebacks.format_exception(exc, tb)
    name, module, message = tracebacks.exception_type(exc, text)
    # its builtin bases and plain attributes (errno, ...): the notebook's
    # stand-in is caught as, and reads as, the remote exception
    return (name, module, message, text, tracebacks.builtin_bases(exc), tracebacks.simple_attributes(exc))


_COMPILER = ast.parse.__code__.co_filename
