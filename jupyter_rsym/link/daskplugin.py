"""Runs in every Dask worker: our server, started by a WorkerPlugin (``%rconnect dask://``).

``dask.py`` registers ``ServerPlugin`` with ``Client.register_plugin``;
Dask calls ``setup`` on every worker there is and on every worker that
starts later (``cluster.scale``, adaptive, ``client.restart``), and
``teardown`` when the plugin is unregistered or the worker closes.

Workers need nothing but Dask: this module is pickled by value
(``cloudpickle.register_pickle_by_value``), so the worker never imports
jupyter_rsym, and the plugin carries rpyc and our remote package as the
archive ``--deploy`` ships (``deploy.archive``).  A worker unpacks it once
into a fresh 0700 temporary directory on ``sys.path``, shared by the
plugins of every notebook connected to it and deleted when the last one is
torn down.  Only the standard library and ``distributed`` (which the
worker runs anyway) are imported here.

Trust (README "On Dask"): with cluster TLS the server listens with the
worker's own ``security.get_listen_args("worker")`` context (mutual TLS
under the cluster's CA); without it, with a self-signed certificate whose
fingerprint reaches the notebook through Dask.  Either way the notebook
also proves the token made for this ``%rconnect``.  The server binds the
host the worker's own comm listens on.
"""

import os
import shutil
import sys
import threading

from distributed.diagnostics.plugin import WorkerPlugin

SHARED = "_jupyter_rsym_dask"  # per worker process, on ``sys``: the unpacked archive and its users


def _unpack(archive):
    """The directory holding the archive's files (unpacked once per process, counted)."""
    import io
    import tarfile
    import tempfile

    with sys.__dict__.setdefault(SHARED + "_lock", threading.Lock()):
        state = sys.__dict__.setdefault(SHARED, {"directory": None, "users": 0, "old": []})
        if state["directory"] is None:
            _forget(state["old"])  # modules of a deleted earlier copy: import them afresh
            directory = tempfile.mkdtemp(prefix="jupyter-rsym-dask-")  # 0700
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
                tar.extractall(directory, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
            sys.path.insert(0, directory)
            state["directory"] = directory
        state["users"] += 1
        return state["directory"]


def _release(package):
    """One user fewer; the last one undoes what the agent did to the process
    (streams, flusher thread) and deletes the directory."""
    with sys.__dict__.setdefault(SHARED + "_lock", threading.Lock()):
        state = sys.__dict__.get(SHARED)
        if state is None or not state["users"]:
            return
        state["users"] -= 1
        if state["users"]:
            return
        capture = sys.modules.get(package + ".agent.capture")
        if capture is not None and hasattr(capture, "uninstall"):
            capture.uninstall()
        directory, state["directory"] = state["directory"], None
        state["old"].append(directory)
        if directory in sys.path:
            sys.path.remove(directory)
        shutil.rmtree(directory, ignore_errors=True)


def _forget(directories):
    for name, module in list(sys.modules.items()):
        where = getattr(module, "__file__", None) or ""
        if any(where.startswith(d + os.sep) for d in directories):
            del sys.modules[name]


def _hosts(worker):
    """(host to bind: the worker's own listening host, host the notebook dials: its contact host)."""
    from distributed.comm.addressing import get_address_host

    try:
        listen = get_address_host(worker.listener.listen_address)
    except Exception:  # no listener object: bind where it is reached
        listen = get_address_host(worker.address)
    return listen, get_address_host(worker.address)


class ServerPlugin(WorkerPlugin):
    """Starts our server in the worker (a thread of its own) and announces it.

    ``topic`` names the Dask event the announcement goes out on (the
    notebook subscribes to it); ``token`` is the one for this ``%rconnect``;
    ``archive`` the rpyc + remote package tar.gz; ``package`` the remote
    package's name in it.  ``announcement`` holds what was announced
    (``dask.py`` reads it with ``Client.run`` at connect).
    """

    idempotent = True  # registering again under the same name changes nothing

    def __init__(self, topic, token, archive, package):
        self.topic, self.token, self.archive, self.package = topic, token, archive, package
        self.announcement = None
        self._server = self._thread = None

    def setup(self, worker):
        _unpack(self.archive)
        try:
            self.announcement = self._start(worker)
        except BaseException as exc:
            _release(self.package)
            # a worker that joins later has nobody waiting on its setup: the
            # notebook hears of the failure on the topic, and says so
            reason = f"{type(exc).__name__}: {exc}"
            worker.log_event(self.topic, {"worker": worker.address, "name": str(worker.name), "error": reason})
            raise
        worker.log_event(self.topic, self.announcement)

    def _start(self, worker):
        import importlib

        server_module = importlib.import_module(self.package + ".server")
        bundle = importlib.import_module(self.package + ".bundle")
        bind, dial = _hosts(worker)
        context = worker.security.get_listen_args("worker").get("ssl_context")
        fingerprint = None
        if context is None:  # no cluster TLS: never plaintext off this host
            certificate = importlib.import_module(self.package + ".certificate")
            context, fingerprint = certificate.self_signed(dial)
        server = server_module.Server(bind, 0, token=self.token, tls=context, resume_grace=0.0)
        server._listen()
        bundle.register()  # the notebook finds the agent here and sends none
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True, name="jupyter-rsym dask server")
        self._thread.start()
        return {
            "worker": worker.address,
            "name": str(worker.name),
            "host": dial,
            "port": server.port,
            "fingerprint": fingerprint,
            "pid": os.getpid(),
        }

    def teardown(self, worker):
        server, self._server = self._server, None
        if server is None:
            return
        try:
            server.close()
            self._thread.join(5)
        finally:
            _release(self.package)


def announcement(topic, dask_worker=None):
    """Runs in each worker (``Client.run``, pickled by value too): what the
    plugin registered as ``topic`` announced there, or None."""
    plugin = dask_worker.plugins.get(topic) if dask_worker is not None else None
    return getattr(plugin, "announcement", None)
