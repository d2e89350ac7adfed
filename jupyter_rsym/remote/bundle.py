"""The remote package as one bundle: its sources, its version, and getting it
into a remote process.

A stock ``rpyc_classic`` server has nothing of ours, so the notebook sends
the remote package's sources at connect time and the remote builds it in
its ``sys.modules`` under ``_jupyter_rsym_remote_<version>``, the version
being a hash of the sources.  A server process keeps each version it was
sent, so the next notebook of the same version finds it there: ``install``
first asks (one round trip that also returns the agent when present) and
sends the bundle only when it is missing.  Our own server imports the
package directly and registers it under the same name (``register``).

The bundle is every ``.py`` file under this folder, in an order where each
module comes after those it imports at module level (read from the sources:
no hand-kept list).  Standard library only: a bare remote imports this.
"""

import ast
import hashlib
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PREFIX = "_jupyter_rsym_remote_"

# Runs on the remote: build the package from (dotted name, is package,
# source) triples, in order, and register it; a failed build leaves nothing
# behind.  Every (sub)package exists, empty, before any module runs (modules
# import their siblings by relative imports); a package's own ``__init__``
# runs in its turn.  ``__bundle__``, set last on the top package, marks it
# complete; a lock keeps two notebooks that connect at once from building it
# twice.
LOADER = """
def load(name, version, modules):
    import linecache, sys, threading, types
    with sys.__dict__.setdefault("_jupyter_rsym_load_lock", threading.Lock()):
        package = sys.modules.get(name)
        if getattr(package, "__bundle__", None) == version:
            return package
        return build(name, version, modules, linecache, sys, types)

def build(name, version, modules, linecache, sys, types):
    made = {}
    try:
        for sub, is_package, source in [("", True, "")] + [m for m in modules if m[1]]:
            full = name + ("." + sub if sub else "")
            made[full] = module = types.ModuleType(full)
            module.__path__ = []
            module.__package__ = full
            sys.modules[full] = module
            if sub:
                parent, _, leaf = full.rpartition(".")
                setattr(made[parent], leaf, module)
        for sub, is_package, source in modules:
            full = name + ("." + sub if sub else "")
            if is_package:
                module = made[full]
            else:
                made[full] = module = types.ModuleType(full)
                module.__package__ = full.rpartition(".")[0]
                sys.modules[full] = module
            path = "/".join([*sub.split("."), "__init__"] if is_package else sub.split(".")).lstrip("/")
            module.__file__ = "<jupyter_rsym remote %s>/%s.py" % (version, path)
            linecache.cache[module.__file__] = (len(source), None, source.splitlines(True), module.__file__)
            exec(compile(source, module.__file__, "exec"), module.__dict__)
            if not is_package:
                parent, _, leaf = full.rpartition(".")
                setattr(made[parent], leaf, module)
    except BaseException:
        for key in made:
            sys.modules.pop(key, None)
        raise
    made[name].__bundle__ = version
    return made[name]
"""


def _module_name(path):
    """``agent/cells.py`` -> ``agent.cells``; ``agent/__init__.py`` -> ``agent``; ``__init__.py`` -> ``""``."""
    parts = path.relative_to(PACKAGE_DIR).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(name, is_package, source, names):
    """The modules of this package that ``name`` imports at module level."""
    found = set()
    base = name.split(".") if is_package and name else name.split(".")[:-1] if name else []
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ImportFrom) or not node.level:
            continue
        anchor = base[: len(base) - (node.level - 1)] if node.level > 1 else base
        target = ".".join(anchor + (node.module.split(".") if node.module else []))
        for alias in node.names:
            for candidate in (f"{target}.{alias.name}".lstrip("."), target):
                if candidate in names and candidate != name:
                    found.add(candidate)
                    break
    return found


def _read_sources():
    """(dotted name, is package, source) of every module, each after those it imports."""
    modules = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        modules[_module_name(path)] = (path.name == "__init__.py", path.read_text(encoding="utf-8"))
    ordered, placed = [], set()

    def place(name, chain=()):
        if name in placed:
            return
        if name in chain:
            raise ImportError(f"import cycle in the remote package: {' -> '.join((*chain, name))}")
        is_package, source = modules[name]
        for dependency in sorted(_imported(name, is_package, source, modules)):
            place(dependency, (*chain, name))
        placed.add(name)
        ordered.append((name, is_package, source))

    for name in sorted(modules):
        place(name)
    return tuple(ordered)


SOURCES = _read_sources()
VERSION = hashlib.sha256(repr(SOURCES).encode()).hexdigest()[:16]
MODULE_NAME = PREFIX + VERSION
AGENT_NAME = MODULE_NAME + ".agent"


def register():
    """Make this process's own remote package the bundle of this version
    (our server does this, so notebooks of this version send nothing).
    Returns the registered package."""
    from . import agent

    package = sys.modules[__package__]
    package.__bundle__ = VERSION  # marks it complete, as the loader does
    sys.modules.setdefault(MODULE_NAME, package)
    sys.modules.setdefault(AGENT_NAME, agent)
    return sys.modules[MODULE_NAME]


def probe_expression(entry=None, name=MODULE_NAME):
    """A remote expression: (the agent module, or its function ``entry``, or
    None if the process lacks this version or is still building it; the
    versions the process has; the id of its module type, which lets the
    notebook make proxies of modules without asking for their methods)."""
    found = "m.agent" if entry is None else f"m.agent.{entry}"
    return (
        f"(lambda m: {found} if getattr(m, '__bundle__', None) else None)"
        f"(__import__('sys').modules.get({name!r})), "
        f"tuple(sorted(k[{len(PREFIX)}:] for k in __import__('sys').modules "
        f"if k.startswith({PREFIX!r}) and '.' not in k)), id(type(__import__('sys')))"
    )


def load_expression(entry=None):
    """A remote expression that builds the package from the bundle and
    returns its agent (or the agent's function ``entry``)."""
    load = f"(lambda ns: exec({LOADER!r}, ns) or ns['load']({MODULE_NAME!r}, {VERSION!r}, {SOURCES!r}))({{}}).agent"
    return load if entry is None else f"{load}.{entry}"


def install(evaluate, entry=None):
    """The agent module (or its function ``entry``) in a remote process,
    sent only if that process lacks this version.

    ``evaluate(source)`` evaluates an expression remotely (one round trip):
    asking costs one, sending the bundle one more.  Returns ``(found,
    versions, module_type)``: ``versions`` are the agent versions the
    process had before, ``module_type`` the id of its ``types.ModuleType``.
    """
    found, versions, module_type = evaluate(probe_expression(entry))
    if found is None:
        found = evaluate(load_expression(entry))
    return found, tuple(versions), module_type


def version_note(evaluate, versions):
    """One line when the server runs another jupyter_rsym than this notebook
    ('' otherwise), saying what to upgrade.

    ``versions`` are the agent versions the process had before ``install``:
    only a process that lacked ours is asked (one round trip) whether it is
    a jupyter-rsym server; it got our bundle as a stock server does.
    ``evaluate(source)`` evaluates an expression remotely, as for ``install``.
    """
    if not versions or VERSION in versions:
        return ""
    theirs = evaluate("getattr(__import__('sys').modules.get('jupyter_rsym'), '__version__', None)")
    if theirs is None:  # a stock server that other notebooks sent their agents to
        return ""
    from . import __version__ as ours

    return (
        f"the server runs jupyter_rsym {theirs} (agent {', '.join(versions)}), this notebook "
        f"{ours} (agent {VERSION}): sent this notebook's agent; install jupyter_rsym {ours} "
        "on the server to skip that"
    )
