"""Cells: a whole notebook cell runs remotely in one request.

``run_cell`` evaluates the last expression separately like IPython does;
failures come back as plain data (type name, message, formatted remote
traceback) rather than as rpyc's wrapped exceptions.
"""

import ast
import itertools
import linecache
import traceback

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
