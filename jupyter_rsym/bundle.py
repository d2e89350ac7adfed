"""The agent package as one bundle: its sources, its version, and getting it
into a remote process.

A stock ``rpyc_classic`` server has nothing of ours, so the notebook sends
the agent's sources at connect time and the remote builds the package in
its ``sys.modules`` under ``_jupyter_rsym_agent_<version>``, the version
being a hash of the sources.  A server process keeps each version it was
sent, so the next notebook of the same version finds it there: ``install``
first asks (one round trip that also returns the module when present) and
sends the bundle only when it is missing.  Our own server imports the
package directly and registers it under the same name (``register``).

Standard library only: a bare remote with just rpyc imports this module.
"""

import hashlib
import sys
from pathlib import Path

AGENT_DIR = Path(__file__).resolve().parent / "agent"
PREFIX = "_jupyter_rsym_agent_"

# Runs on the remote: build the package from (module name, source) pairs, in
# order, and register it; a failed build leaves nothing behind.  The package
# is in sys.modules while it builds (its modules import each other), so
# ``__version__``, set last, marks it complete; a lock keeps two notebooks
# that connect at once from building it twice.
LOADER = '''
def load(name, version, modules):
    import linecache, sys, threading, types
    with sys.__dict__.setdefault("_jupyter_rsym_load_lock", threading.Lock()):
        package = sys.modules.get(name)
        if getattr(package, "__version__", None) == version:
            return package
        return build(name, version, modules, linecache, sys, types)

def build(name, version, modules, linecache, sys, types):
    package = types.ModuleType(name)
    package.__path__ = []
    added = [name]
    sys.modules[name] = package
    try:
        for sub, source in modules:
            module = package if sub == "__init__" else types.ModuleType(name + "." + sub)
            module.__package__ = name
            module.__file__ = "<jupyter_rsym agent %s>/%s.py" % (version, sub)
            linecache.cache[module.__file__] = (len(source), None, source.splitlines(True), module.__file__)
            if module is not package:
                sys.modules[module.__name__] = module
                added.append(module.__name__)
            exec(compile(source, module.__file__, "exec"), module.__dict__)
            if module is not package:
                setattr(package, sub, module)
    except BaseException:
        for key in added:
            sys.modules.pop(key, None)
        raise
    package.__version__ = version
    return package
'''


def _read_sources():
    from .agent import MODULES  # cheap: the agent package is standard library only

    return tuple((name, (AGENT_DIR / f"{name}.py").read_text(encoding="utf-8"))
                 for name in (*MODULES, "__init__"))


SOURCES = _read_sources()
VERSION = hashlib.sha256(repr(SOURCES).encode()).hexdigest()[:16]
MODULE_NAME = PREFIX + VERSION


def register():
    """Make this process's own ``jupyter_rsym.agent`` the agent of this version
    (our server does this, so notebooks of this version send nothing)."""
    from . import agent

    agent.__version__ = VERSION  # marks it complete, as the loader does
    sys.modules.setdefault(MODULE_NAME, agent)
    return sys.modules[MODULE_NAME]


def probe_expression(entry=None, name=MODULE_NAME):
    """A remote expression: (the agent module, or its function ``entry``, or
    None if the process lacks this version or is still building it; the
    versions the process has; the id of its module type, which lets the
    notebook make proxies of modules without asking for their methods)."""
    found = "m" if entry is None else f"m.{entry}"
    return (f"(lambda m: {found} if getattr(m, '__version__', None) else None)"
            f"(__import__('sys').modules.get({name!r})), "
            f"tuple(sorted(k[{len(PREFIX)}:] for k in __import__('sys').modules "
            f"if k.startswith({PREFIX!r}) and '.' not in k)), id(type(__import__('sys')))")


def load_expression(entry=None):
    """A remote expression that builds the package from the bundle and
    returns it (or its function ``entry``)."""
    load = (f"(lambda ns: exec({LOADER!r}, ns) or ns['load']"
            f"({MODULE_NAME!r}, {VERSION!r}, {SOURCES!r}))({{}})")
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

    return (f"the server runs jupyter_rsym {theirs} (agent {', '.join(versions)}), this notebook "
            f"{ours} (agent {VERSION}): sent this notebook's agent; install jupyter_rsym {ours} "
            "on the server to skip that")
