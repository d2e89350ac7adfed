"""Tracebacks that cross the link: one flat traceback, whatever the hops.

rpyc sends an exception to the other side as its formatted traceback and
shows a re-raised one as its message, then ``========= Remote Traceback (N)
=========`` and the other side's text, nested once per hop, rpyc's dispatch
frames included (a callback ping-pong 100 deep: 1,500 lines).  Both ends of
a notebook link format with ``format_exception`` instead: an exception that
came from the other side (it has ``_remote_tb``) continues that side's
traceback, so the text stays one traceback, most recent call last, through
every hop, and the frames of rpyc and of jupyter_rsym are left out.

A remote thread working for a notebook that dies of an exception reports
it the same way (``report_thread_errors``).

Standard library only (rpyc is imported lazily, on the remote): the
notebook uses this module too.
"""

import builtins
import os
import re
import sys
import traceback

HEADER = "Traceback (most recent call last):"
CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"
_RPYC_SECTION_START = "\n\n========= Remote Traceback ("
_RPYC_SECTION = re.compile(r"\n\n========= Remote Traceback \(\d+\) =========\n")
_GENERIC_MODULE = "rpyc.core.vinegar/"  # rpyc's stand-ins for types it does not import
_FRAME = re.compile(r'  File ".*", line \d+, in ')


def _own_dir():
    here = os.path.dirname(__file__)
    if here.startswith("<"):  # sent as a bundle: "<jupyter_rsym remote VERSION>"
        return here + "/"
    return os.path.dirname(here) + os.sep  # the whole jupyter_rsym package


def internal_prefixes():
    """Where rpyc's and jupyter_rsym's own frames come from, in this process."""
    prefixes = [_own_dir()]
    rpyc = sys.modules.get("rpyc")
    if rpyc is not None and getattr(rpyc, "__file__", None):
        prefixes.append(os.path.dirname(rpyc.__file__) + os.sep)
    return tuple(prefixes)


_OWN = object()
_STDLIB = os.path.dirname(os.__file__) + os.sep


def format_exception(exc, tb=_OWN, internal=None):
    """``exc`` formatted like ``traceback.format_exception``, chain included,
    without internal frames, continuing the other side's traceback when it
    came from there.  ``tb`` defaults to ``exc.__traceback__``."""
    if internal is None:
        internal = internal_prefixes()
    blocks, seen, current = [], set(), exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        blocks.append(
            _format_one(current, tb if current is exc and tb is not _OWN else current.__traceback__, internal)
        )
        if current.__cause__ is not None:
            blocks.append(CAUSE)
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            blocks.append(CONTEXT)
            current = current.__context__
        else:
            break
    return "".join(reversed(blocks))


def _format_one(exc, tb, internal):
    remote = getattr(exc, "_remote_tb", None)
    if isinstance(remote, str) and remote:
        frames = [f for f in traceback.extract_tb(tb) if not f.filename.startswith(internal)]
        prefix, inner, ending = split_last(remote)
        body = "".join(traceback.format_list(frames)) + inner
        return prefix + (HEADER + "\n" + body if body else "") + ending
    try:
        te = traceback.TracebackException(type(exc), exc, tb, compact=True)
    except TypeError:  # Python < 3.10 on the remote
        te = traceback.TracebackException(type(exc), exc, tb)
    frames = _where_stopped(te.stack, internal) if isinstance(exc, KeyboardInterrupt) else te.stack
    te.stack = traceback.StackSummary.from_list([f for f in frames if not f.filename.startswith(internal)])
    return "".join(te.format(chain=False))


def _where_stopped(frames, internal):
    """The frames of an interrupted thread up to where its own code stopped:
    a cancel that lands while rpyc waits (for a callback's reply, a lock)
    stops it in the standard library frames rpyc called, which are no part
    of where the user's code was."""
    end = len(frames)
    while end and (frames[end - 1].filename.startswith(internal) or _in_stdlib(frames[end - 1].filename)):
        end -= 1
    if any(frame.filename.startswith(internal) for frame in frames[end:]):
        return frames[:end]
    return frames


def _in_stdlib(filename):
    return filename.startswith(_STDLIB) and "-packages" + os.sep not in filename


def split_last(text):
    """A formatted traceback as (earlier chained tracebacks, the frames of the
    last one, its exception lines).  rpyc's nested sections are flattened."""
    sections = _RPYC_SECTION.split(text)
    frames = []
    for section in sections:
        prefix, section_frames, ending = _split_section(section)
        frames.append(section_frames)
    return prefix, "".join(frames), ending


def _split_section(text):
    lines = text.splitlines(True)
    start = None
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].rstrip("\n") == HEADER:
            start = i
            break
    if start is None:
        return "", "", text
    end = start + 1
    while end < len(lines):
        line = lines[end]
        if _FRAME.match(line):
            end += 1
        elif line.startswith("    ") or line.startswith("  [Previous line repeated"):
            end += 1
        else:
            break
    return "".join(lines[:start]), "".join(lines[start + 1 : end]), "".join(lines[end:])


def exception_line(text):
    """(type name as printed, message) from a traceback's exception lines."""
    _, _, ending = split_last(text)
    lines = [line for line in ending.splitlines() if line.strip()]
    # a SyntaxError's location lines come first, indented
    while lines and lines[0].startswith(" "):
        lines.pop(0)
    if not lines:
        return "", ""
    name, sep, message = lines[0].partition(": ")
    if not sep and " " in name.strip():
        return "", lines[0]
    return name.strip(), "\n".join([message, *lines[1:]]) if sep else "\n".join(lines[1:])


def exception_type(exc, text):
    """(name, module, message) of ``exc`` as its traceback ``text`` prints it.
    For an exception rpyc rebuilt from the other side, that is the
    original's, not rpyc's stand-in."""
    printed, message = exception_line(text)
    module = type(exc).__module__
    if module.startswith(_GENERIC_MODULE):
        module = module[len(_GENERIC_MODULE) :]
    if not printed:  # no exception line to read (an exception group)
        return type(exc).__name__.rpartition(".")[2], module, _safe_str(exc).split(_RPYC_SECTION_START)[0]
    head, _, name = printed.rpartition(".")
    return name, head or ("builtins" if module.startswith("rpyc") else module), message


def _safe_str(exc):
    try:
        return str(exc)
    except Exception:
        return "<exception str() failed>"


BASES_ATTR = "_rsym_bases"  # the builtin bases of an exception, among the attributes sent
_SIMPLE = (int, float, str, bool, type(None))
_BUILTIN_MODULE = Exception.__module__  # a class a cell defines may say 'builtins' too


def builtin_bases(exc):
    """Names of the most derived builtin exception types ``exc`` is an instance
    of (``('ValueError',)`` for a ``json.JSONDecodeError``), so the other side's
    stand-in can be one too; ``()`` for a builtin type itself."""
    if getattr(builtins, type(exc).__name__, None) is type(exc):
        return ()
    found = []
    for cls in type(exc).__mro__[1:]:
        if cls.__module__ == _BUILTIN_MODULE and issubclass(cls, Exception) and cls is not Exception:
            if not any(issubclass(seen, cls) for seen in found):
                found.append(cls)
    return tuple(cls.__name__ for cls in found)


def simple_attributes(exc, limit=10000):
    """Public data attributes of ``exc`` with plain values (``errno``, ``pos``,
    ...): what rpyc sends along with an exception, for exceptions we send ourselves."""
    attrs = []
    for name in dir(exc):
        if name.startswith("_") or name in ("args", "with_traceback", "add_note"):
            continue
        try:
            value = getattr(exc, name)
        except Exception:
            continue
        if type(value) in _SIMPLE and not (type(value) is str and len(value) > limit):
            attrs.append((name, value))
    return tuple(attrs)


def box_exception(conn, typ, val, tb):
    """What ``conn._box_exc`` would send, with the traceback text made here."""
    from rpyc.core import vinegar

    config = conn._config
    dumped = vinegar.dump(
        typ, val, tb, include_local_traceback=False, include_local_version=config["include_local_version"]
    )
    if not isinstance(dumped, tuple):
        return dumped
    bases = builtin_bases(val)
    if bases:  # read by the notebook's RoutedConnection; a plain rpyc peer sets it as an attribute
        dumped = dumped[:2] + (tuple(dumped[2]) + ((BASES_ATTR, bases),),) + dumped[3:]
    if not config["include_local_traceback"]:
        return dumped
    try:
        text = format_exception(val, tb)
    except Exception:  # a traceback too deep to format (RecursionError): rpyc's
        text = "".join(traceback.format_exception_only(typ, val))
    return dumped[:3] + (text,)
