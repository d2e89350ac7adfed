"""jupyter_rsym: drive a remote Python process from a Jupyter notebook.

In a notebook::

    %load_ext jupyter_rsym
    %rconnect 127.0.0.1:18812          # any rpyc classic server
    def g(x):
        print("runs here, in this cell", x)
        return x ** 3
    list(r.modules.builtins.map(g, r.builtins.range(10)))

    %%remote
    print("runs over there, prints here")

Magics: ``%rconnect``, ``%rdisconnect``, ``%rconnections``, ``%%remote`` /
``%remote`` (``--on a,b`` runs on several sessions at once, ``--bg`` in the
background), ``%rjobs``, ``%autoremote`` / ``%%local``, ``%rpush`` /
``%rpull`` (values by copy, large ones at wire speed; ``%magic?`` shows each
one's help).  TAB, ``obj?`` and ``help()`` work on remote objects.
Settings: ``%config RSym``.
To load it in every kernel, add to ``ipython_kernel_config.py``::

    c.InteractiveShellApp.extensions = ["jupyter_rsym"]
    c.RSym.connections = {"r": "127.0.0.1:18812"}
"""

from .remote import __version__  # noqa: F401  (one version, kept by the remote package)

__all__ = ["RemoteError", "RemoteSession", "load_ipython_extension", "unload_ipython_extension"]

_EXTENSIONS = {}  # id(shell) -> Extension


def __getattr__(name):
    # Imported on first use: a bare remote (only rpyc) imports jupyter_rsym.remote.agent
    # and jupyter_rsym.remote.server, which must not pull in IPython or traitlets.
    if name == "RemoteSession":
        from .link.session import RemoteSession

        return RemoteSession
    if name == "RemoteError":
        from .link.errors import RemoteError

        return RemoteError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_ipython_extension(shell):
    """Add jupyter_rsym's magics, settings and display hook to ``shell``."""
    from .kernel.extension import Extension

    if id(shell) in _EXTENSIONS:
        return
    extension = _EXTENSIONS[id(shell)] = Extension(shell)
    extension.load()


def unload_ipython_extension(shell):
    """Close every session and remove everything ``load_ipython_extension`` added."""
    extension = _EXTENSIONS.pop(id(shell), None)
    if extension is not None:
        extension.unload()
