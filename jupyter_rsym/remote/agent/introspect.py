"""Introspection: completion, ``obj?`` and ``help()`` answered in one request.

IPython's completer and inspector probe an object attribute by attribute;
on a proxy every probe is a round trip (hundreds for TAB on
``r.builtins.``).  Here the notebook names what to look at, a *target*
and the *steps* from it, and gets the whole answer back at once:

* target ``("object", obj)``: an object the notebook holds a proxy of;
  ``("module", "os.path")``: a module by name; ``("modules",)``: the module
  names the remote can import; ``("name", namespace, "x")``: a name in a
  ``%%remote`` cell (the namespace, then builtins);
* steps: ``("attr", name)`` or ``("item", key)``, walked here.

Completion never runs a property's getter (a slow or failing one would
hold up the connection); ``describe`` shows the property itself when it is
the last step, as IPython does.
"""

import builtins
import importlib
import inspect
import keyword
import pkgutil
import sys
import types

MAX_NAMES = 2000
MAX_SOURCE = 200000  # characters of source sent for obj??
STRING_MAX = 200


def _resolve(target, steps, static_last=False):
    kind = target[0]
    if kind == "object":
        obj = target[1]
    elif kind == "module":
        obj = importlib.import_module(target[1])
    elif kind == "name":
        namespace, name = target[1], target[2]
        obj = namespace[name] if name in namespace else getattr(builtins, name)
    else:
        raise LookupError("nothing to resolve for %r" % (kind,))
    for index, (step, key) in enumerate(steps):
        last = index == len(steps) - 1
        obj = obj[key] if step == "item" else _attribute(obj, key, static_last and last)
    return obj


def _attribute(obj, name, static):
    """``getattr``, except that a property is not run (``static``: the
    property object is the answer), and a module's submodule is imported."""
    try:
        raw = inspect.getattr_static(obj, name)
    except AttributeError:
        raw = None
    if isinstance(raw, property):
        if static:
            return raw
        raise LookupError("%s is a property: not evaluated" % name)
    try:
        return getattr(obj, name)
    except AttributeError:
        if isinstance(obj, types.ModuleType) and hasattr(obj, "__path__"):
            return importlib.import_module(obj.__name__ + "." + name)
        raise


def kind_of(raw):
    """The completion type Jupyter shows for an attribute or value."""
    if isinstance(raw, types.ModuleType):
        return "module"
    if isinstance(raw, type):
        return "class"
    if isinstance(raw, property):
        return "property"
    if isinstance(raw, (staticmethod, classmethod)) or inspect.isroutine(raw) or callable(raw):
        return "function"
    return "instance"


def _hidden(name, prefix, hide):
    """IPython's ``omit__names``: 2 hides _names, 1 hides __names, 0 none,
    unless the typed prefix starts with an underscore."""
    if prefix.startswith("_") or not hide:
        return False
    return name.startswith("__") if hide == 1 else name.startswith("_")


def complete(target, steps, prefix, what="attr", hide=2):
    """Completions as ``(text, kind)`` pairs, in one request.

    ``what``: "attr" (attributes of the object the target and steps lead
    to, plus submodules of a package), "key" (keys of that mapping: plain
    values, the notebook quotes them), or "name" (names a ``%%remote`` cell
    sees: its namespace, builtins, keywords; ``target`` is the namespace).
    """
    if what == "name":
        return _names_in(target[1], prefix, hide)
    if target[0] == "modules" and not steps:
        names = _module_names()
        return tuple((n, "module") for n in sorted(names) if n.startswith(prefix))[:MAX_NAMES]
    obj = _resolve(target, steps)
    if what == "key":
        keys = [k for k in obj.keys() if type(k) in (str, bytes, int, float, bool)]
        return tuple((k, "dict key") for k in keys[:MAX_NAMES])
    found = []
    submodules = _submodules(obj)
    for name in sorted(_attribute_names(obj) | submodules):
        if not name.startswith(prefix) or _hidden(name, prefix, hide):
            continue
        try:
            kind = kind_of(inspect.getattr_static(obj, name))
        except AttributeError:
            kind = "module" if name in submodules else "instance"
        found.append((name, kind))
        if len(found) >= MAX_NAMES:
            break
    return tuple(found)


def _attribute_names(obj):
    try:
        return set(dir(obj))
    except Exception:
        return set()


def _submodules(obj):
    """A package's submodules, imported or not."""
    if isinstance(obj, types.ModuleType) and hasattr(obj, "__path__"):
        try:
            return {m.name for m in pkgutil.iter_modules(obj.__path__)}
        except Exception:
            pass
    return set()


def _module_names():
    names = {name.split(".")[0] for name in sys.modules}
    names.update(sys.builtin_module_names)
    try:
        names.update(m.name for m in pkgutil.iter_modules())
    except Exception:
        pass
    return names


def _names_in(namespace, prefix, hide):
    found = {}
    for name in keyword.kwlist:
        if name.startswith(prefix):
            found[name] = "keyword"
    for source in (vars(builtins), namespace):
        for name in list(source):
            if isinstance(name, str) and name.startswith(prefix) and not _hidden(name, prefix, hide):
                found[name] = kind_of(source[name])
    return tuple(sorted(found.items()))[:MAX_NAMES]


def describe(target, steps, detail=1):
    """What ``obj?`` / ``obj??`` shows, in one request: ``(found, obj, fields)``.

    ``fields`` are ``(name, value)`` pairs named as IPython's
    ``Inspector.info`` names them (``type_name``, ``string_form``,
    ``docstring``, ``source``, ...), plus ``signature`` (the text after the
    name) and ``simple_callable``; ``obj`` is the object itself (a proxy on
    the notebook side).
    """
    try:
        obj = _resolve(target, steps, static_last=True)
    except Exception:
        return (False, None, ())
    return (True, obj, tuple(fields(obj, detail).items()))


def _signature(obj):
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return None


def _doc(obj):
    try:
        return inspect.getdoc(obj)
    except Exception:
        return None


def fields(obj, detail=1):
    """IPython's ``Inspector.info`` fields for ``obj``, computed here."""
    out = {
        "type_name": type(obj).__name__,
        "base_class": str(type(obj)),
        "simple_callable": inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isbuiltin(obj),
    }
    try:
        text = str(obj)
        if not detail and len(text) > STRING_MAX:
            half = (STRING_MAX - 5) // 2
            text = text[:half] + " <...> " + text[-half:]
        out["string_form"] = text
    except Exception:
        pass
    if not inspect.isclass(obj):
        try:
            out["length"] = str(len(obj))
        except Exception:
            pass
    try:
        out["file"] = inspect.getsourcefile(obj) or inspect.getfile(obj)
    except (TypeError, OSError):
        pass
    try:
        out["source"] = inspect.getsource(obj)[:MAX_SOURCE].rstrip()
    except Exception:
        pass
    out["docstring"] = _doc(obj)
    if inspect.isclass(obj):
        out["isclass"] = True
        out["init_definition"] = _signature(obj)
        init_doc = _doc(getattr(obj, "__init__", None))
        if init_doc and init_doc != _doc(object.__init__):
            out["init_docstring"] = init_doc
        try:
            names = [sub.__name__ for sub in type.__subclasses__(obj)]
        except TypeError:
            names = []
        out["subclasses"] = ", ".join(names if len(names) < 10 else names[:10] + ["..."])
        return out
    if callable(obj):
        out["signature"] = _signature(obj)
    class_doc = _doc(type(obj))
    builtin_docs = {_doc(t) for t in (types.ModuleType, types.MethodType, types.FunctionType, property)}
    if class_doc and class_doc not in builtin_docs and class_doc != out["docstring"]:
        out["class_docstring"] = class_doc
    init_doc = _doc(getattr(obj, "__init__", None))
    if init_doc and init_doc != _doc(object.__init__) and not out["simple_callable"]:
        out["init_docstring"] = init_doc
    if callable(obj) and not out["simple_callable"] and not isinstance(obj, types.ModuleType):
        call = getattr(obj, "__call__", None)  # noqa: B004  (its docstring and signature)
        out["call_signature"] = _signature(call)
        call_doc = _doc(call)
        if call_doc and call_doc != _doc(types.FunctionType.__call__):
            out["call_docstring"] = call_doc
    return out


def help_text(obj, title="Help on %s:"):
    """What ``help(obj)`` prints, rendered here by ``pydoc`` (one request)."""
    import pydoc

    return pydoc.render_doc(obj, title, renderer=pydoc.plaintext)
