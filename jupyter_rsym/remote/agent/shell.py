"""IPython's own line syntax in ``%%remote`` cells: ``!cmd``, ``x = !cmd``,
``%time``, ``%timeit``, ``%%time``, ``%%timeit``, ``obj?`` and ``obj??``.

The notebook rewrites such lines with IPython's own input transformer and
points the calls it makes (``get_ipython().system(...)``) at
``__rsym_ipython__()`` (``kernel/remotesyntax.py``).  This is that object: a
small stand-in for IPython's shell that runs them here, in the cell's
namespace, with no IPython needed remotely.  Output goes through
``sys.stdout``/``sys.stderr``, so it lands in the cell like a ``print``.
"""

import os
import re
import subprocess
import sys
import threading
import time
import timeit

from . import introspect

NAME = "__rsym_ipython__"
MAGICS = "!cmd, x = !cmd, %time, %timeit, %%time, %%timeit, obj? and obj??"
_DOLLAR = re.compile(r"\$(\w+)|\{([^{}]+)\}")


def install(namespace):
    """Give a cell namespace ``__rsym_ipython__`` (the rewritten lines call it)."""
    if NAME not in namespace:
        namespace[NAME] = lambda: Shell(namespace)


class Shell:
    """The part of ``get_ipython()`` a rewritten remote cell calls."""

    def __init__(self, namespace):
        self.namespace = namespace

    def expand(self, text):
        """``$name`` and ``{expression}`` from the cell's namespace, as IPython expands them."""

        def value(match):
            try:
                if match.group(1):
                    return str(self.namespace[match.group(1)])
                return str(eval(match.group(2), self.namespace))
            except Exception:
                return match.group(0)

        return _DOLLAR.sub(value, text)

    def system(self, command):
        """``!cmd``: run it in a shell; its output streams into the cell."""
        process = subprocess.Popen(
            self.expand(command), shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        err = threading.Thread(target=_copy, args=(process.stderr, sys.stderr))
        err.start()  # inherits the cell's route: its lines land in the cell too
        _copy(process.stdout, sys.stdout)
        err.join()
        self.namespace["_exit_code"] = process.wait()

    def getoutput(self, command, split=True, depth=0):
        """``x = !cmd``: its output lines (stderr included, as IPython's)."""
        done = subprocess.run(
            self.expand(command), shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        text = done.stdout.decode(errors="replace")
        return text.splitlines() if split else text

    def run_line_magic(self, name, line, _stack_depth=1):
        if name == "time":
            return self.time(line)
        if name == "timeit":
            return self.timeit(line, "")
        if name in ("pinfo", "pinfo2"):
            return self.pinfo(line, detail=name == "pinfo2")
        raise NotImplementedError(f"%{name} does not run in a remote cell; these do: {MAGICS}")

    def run_cell_magic(self, name, line, cell):
        if name == "time":
            return self.time(cell)
        if name == "timeit":
            return self.timeit(line, cell)
        raise NotImplementedError(f"%%{name} does not run in a remote cell; these do: {MAGICS}")

    def time(self, source):
        """``%time``: run ``source`` once; print CPU and wall time; its value if an expression."""
        try:
            code, is_expression = compile(source, "<timed>", "eval"), True
        except SyntaxError:
            code, is_expression = compile(source, "<timed>", "exec"), False
        before, start = os.times(), time.perf_counter()
        try:
            value = eval(code, self.namespace)
        finally:
            wall, after = time.perf_counter() - start, os.times()
            user, system = after.user - before.user, after.system - before.system
            print(
                f"CPU times: user {format_time(user)}, sys: {format_time(system)}, "
                f"total: {format_time(user + system)}\nWall time: {format_time(wall)}"
            )
        return value if is_expression else None

    def timeit(self, line, cell):
        """``%timeit [-n N] [-r R] [-q] [-o] STATEMENT``: as IPython's, timed here."""
        words, options = line.split(), {"-n": 0, "-r": 7}
        flags = set()
        while words and words[0] in ("-n", "-r", "-q", "-o"):
            option = words.pop(0)
            if option in options:
                options[option] = int(words.pop(0))
            else:
                flags.add(option)
        statement = " ".join(words) if not cell else cell
        setup = "pass" if not cell else (" ".join(words) or "pass")
        timer = timeit.Timer(statement, setup, globals=self.namespace)
        number = options["-n"] or _auto_number(timer)
        runs = [t / number for t in timer.repeat(options["-r"], number)]
        mean = sum(runs) / len(runs)
        spread = (sum((t - mean) ** 2 for t in runs) / len(runs)) ** 0.5
        if "-q" not in flags:
            print(
                f"{format_time(mean)} ± {format_time(spread)} per loop (mean ± std. dev. of "
                f"{len(runs)} run{'s' if len(runs) != 1 else ''}, {number} loop{'s' if number != 1 else ''} each)"
            )
        return tuple(runs) if "-o" in flags else None

    def pinfo(self, expression, detail=False):
        """``obj?`` / ``obj??``: what IPython's inspector shows, from here."""
        obj = eval(expression, self.namespace)
        info = introspect.fields(obj, 1 if detail else 0)
        rows = [
            ("Signature", expression + info["signature"] if info.get("signature") else None),
            ("Init signature", expression + info["init_definition"] if info.get("init_definition") else None),
            ("Type", info["type_name"]),
            ("String form", info.get("string_form")),
            ("File", info.get("file")),
        ]
        text = [f"{label + ':':16}{value}" for label, value in rows if value]
        if detail and info.get("source"):
            text.append("Source:\n" + info["source"])
        else:
            text.append("Docstring:\n" + (info.get("docstring") or "<no docstring>"))
        print("\n".join(text))


def _copy(stream, to):
    for line in iter(stream.readline, b""):
        to.write(line.decode(errors="replace"))
    stream.close()


def _auto_number(timer):
    """Loops per run so that a run takes at least 0.2 s (IPython's rule)."""
    number = 1
    while True:
        for factor in (1, 2, 5):
            if timer.timeit(number * factor) >= 0.2:
                return number * factor
        number *= 10


def format_time(seconds):
    """``1.23 ms`` as IPython's ``%time`` and ``%timeit`` print times."""
    if seconds >= 60:
        minutes, rest = divmod(seconds, 60)
        return f"{int(minutes)}min {rest:.0f}s"
    for unit, scale in (("s", 1), ("ms", 1e3), ("µs", 1e6), ("ns", 1e9)):
        if seconds >= 1 / scale or unit == "ns":
            return f"{seconds * scale:.3g} {unit}"
