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
import socket
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


# -- remote/certificate.py's self_signed where the worker has cryptography, else openssl's --
def _self_signed(host):
    """``(server ssl.SSLContext, "SHA256:..." fingerprint)`` of a new
    self-signed certificate: made by the ``cryptography`` package if the
    worker has it, else by the ``openssl`` command (Dask needs neither)."""
    import base64
    import hashlib
    import ipaddress
    import secrets
    import ssl
    import subprocess
    import tempfile

    try:
        ipaddress.ip_address(host)
        name = f"IP:{host}"
    except ValueError:
        name = f"DNS:{host or socket.gethostname()}"
    password = secrets.token_hex(16)  # ssl loads keys from files only: encrypted, in a 0700 dir
    with tempfile.TemporaryDirectory(prefix="jupyter-rsym-") as directory:
        cert_file, key_file = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
        try:
            _with_cryptography(name, password.encode(), cert_file, key_file)
        except ImportError:
            subprocess.run(
                [
                    "openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-keyout",
                    key_file,
                    "-out",
                    cert_file,
                    "-days",
                    "3650",
                    "-subj",
                    "/CN=jupyter-rsym dask worker",
                    "-addext",
                    f"subjectAltName={name}",
                    "-passout",
                    "env:RSYM_KEY_PASSWORD",
                ],
                check=True,
                capture_output=True,
                env=dict(os.environ, RSYM_KEY_PASSWORD=password),
            )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file, password=password)
        with open(cert_file) as pem:
            der = ssl.PEM_cert_to_DER_cert(pem.read())
    return context, "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


def _with_cryptography(name, password, cert_file, key_file):
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    kind, _, value = name.partition(":")
    alt = x509.IPAddress(ipaddress.ip_address(value)) if kind == "IP" else x509.DNSName(value)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jupyter-rsym dask worker")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .sign(key, hashes.SHA256())
    )
    with open(cert_file, "wb") as out:
        out.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_file, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(password),
            )
        )


# -- end of the self-signed certificate --------------------------------------------


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
        except BaseException:
            _release(self.package)
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
            try:
                from importlib import import_module

                context, fingerprint = import_module(self.package + ".certificate").self_signed(dial)
            except (ImportError, AttributeError):
                context, fingerprint = _self_signed(dial)
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
