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
# order, and register it; a failed build leaves nothing behind.
LOADER = '''
def load(name, version, modules):
    import linecache, sys, types
    if name in sys.modules:
        return sys.modules[name]
    package = types.ModuleType(name)
    package.__path__ = []
    package.__version__ = version
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

    sys.modules.setdefault(MODULE_NAME, agent)
    return sys.modules[MODULE_NAME]


def probe_expression(name=MODULE_NAME):
    """A remote expression: (the agent module or None, versions the process has)."""
    return (f"(__import__('sys').modules.get({name!r}), "
            f"tuple(sorted(k[{len(PREFIX)}:] for k in __import__('sys').modules "
            f"if k.startswith({PREFIX!r}) and '.' not in k)))")


def load_expression():
    """A remote expression that builds the package from the bundle and returns it."""
    return (f"(lambda ns: exec({LOADER!r}, ns) or ns['load']"
            f"({MODULE_NAME!r}, {VERSION!r}, {SOURCES!r}))({{}})")


def install(conn):
    """The agent module in ``conn``'s remote process, sent only if it is missing.

    Returns ``(module, versions)``: ``versions`` are the agent versions the
    process had before (for version checks).
    """
    module, versions = conn.eval(probe_expression())
    if module is None:
        module = conn.eval(load_expression())
    return module, tuple(versions)


def remote_agent(conn):
    """The agent module already installed in ``conn``'s remote process."""
    return conn.eval(f"__import__('sys').modules[{MODULE_NAME!r}]")


def version_note(conn, versions):
    """One line when the server runs another jupyter_rsym than this notebook
    ('' otherwise), saying what to upgrade.

    ``versions`` are the agent versions the process had before ``install``:
    only a process that lacked ours is asked (one round trip) whether it is
    a jupyter-rsym server; it got our bundle as a stock server does.
    """
    if not versions or VERSION in versions:
        return ""
    theirs = conn.eval("getattr(__import__('sys').modules.get('jupyter_rsym'), '__version__', None)")
    if theirs is None:  # a stock server that other notebooks sent their agents to
        return ""
    from . import __version__ as ours

    return (f"the server runs jupyter_rsym {theirs} (agent {', '.join(versions)}), this notebook "
            f"{ours} (agent {VERSION}): sent this notebook's agent; install jupyter_rsym {ours} "
            "on the server to skip that")
