"""Real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1 for the Dask tests.

``Cluster`` starts a scheduler (plain, or TLS with a ``trustme`` CA) and
workers on demand; ``bare=True`` starts a worker whose Python cannot import
rpyc nor jupyter_rsym (``python -S`` with a path of site-packages entries
that leaves them out): workers need nothing but Dask.  Everything is
killed at the end.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import trustme

from .waits import wait_until

# hidden from bare workers: ours, and cryptography (Dask does not need it; then openssl makes
# the worker's certificate)
HIDDEN = ("rpyc", "jupyter_rsym", "plumbum", "__editable__", "_jupyter_rsym", "cryptography")
STARTUP = 60.0


def bare_path(directory):
    """A directory of links to every site-packages entry but rpyc and ours."""
    site = next(p for p in sys.path if p.endswith("site-packages"))
    target = Path(directory) / "site"
    target.mkdir()
    for entry in os.listdir(site):
        if not entry.startswith(HIDDEN) and not entry.endswith(".pth"):
            (target / entry).symlink_to(Path(site) / entry)
    return str(target)


class Cluster:
    """A scheduler and its workers (see the module docstring)."""

    def __init__(self, tls=False):
        self.directory = tempfile.mkdtemp(prefix="rsym-dask-test-")
        self.tls = None
        self.workers = {}  # name -> Popen
        self.processes = []
        self.bare_env = None  # the environment of bare workers, once one started
        if tls:
            ca = trustme.CA()
            paths = {"ca": Path(self.directory) / "ca.pem"}
            ca.cert_pem.write_to_path(paths["ca"])
            for role in ("node", "client"):
                cert = ca.issue_cert("127.0.0.1", "localhost")
                paths[role] = Path(self.directory) / f"{role}.pem"
                cert.private_key_and_cert_chain_pem.write_to_path(paths[role])
            self.tls = paths
        file = Path(self.directory) / "scheduler.json"
        self.processes.append(
            self._spawn(
                [
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--no-dashboard",
                    "--scheduler-file",
                    str(file),
                    *self._tls_args(),
                ],
                "scheduler",
            )
        )
        wait_until(lambda: file.exists() and file.read_text().strip().endswith("}"), STARTUP, "the scheduler start")
        self.address = json.loads(file.read_text())["address"]

    def _tls_args(self):
        if not self.tls:
            return []
        return [
            "--tls-ca-file",
            str(self.tls["ca"]),
            "--tls-cert",
            str(self.tls["node"]),
            "--tls-key",
            str(self.tls["node"]),
        ]

    def _spawn(self, args, log, python=(sys.executable,), env=None):
        out = open(Path(self.directory) / f"{log}.log", "wb")
        module = "distributed.cli.dask_" + args[0]
        return subprocess.Popen(
            [*python, "-m", module, *args[1:]], stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def start_worker(self, name, bare=False, nanny=False, where=("--host", "127.0.0.1"), no_openssl=False):
        """Start a worker named ``name`` (it registers by itself; see ``wait_workers``);
        ``where``: its listen/contact address arguments; ``no_openssl``: (with
        ``bare``) no openssl command either, so no certificate can be made there."""
        python, env = (sys.executable,), None
        if bare:
            env = self.bare_env = dict(os.environ, PYTHONPATH=bare_path(tempfile.mkdtemp(dir=self.directory)))
            python = (sys.executable, "-S")
            if no_openssl:
                env["PATH"] = tempfile.mkdtemp(dir=self.directory)  # empty: no command at all
        args = [
            "worker",
            self.address,
            "--name",
            name,
            "--nthreads",
            "1",
            *where,
            "--no-dashboard",
            "--nanny" if nanny else "--no-nanny",
            *self._tls_args(),
        ]
        process = self._spawn(args, f"worker-{name}", python, env)
        self.workers[name] = process
        self.processes.append(process)
        return process

    def security(self):
        """A client ``distributed.Security`` for a TLS cluster (None otherwise)."""
        if not self.tls:
            return None
        from distributed import Security

        return Security(
            tls_ca_file=str(self.tls["ca"]),
            tls_client_cert=str(self.tls["client"]),
            tls_client_key=str(self.tls["client"]),
            require_encryption=True,
        )

    def client(self):
        from distributed import Client

        return Client(self.address, security=self.security(), set_as_default=False, timeout=STARTUP)

    def kill(self, name):
        """SIGKILL a worker: no goodbye to the scheduler nor to our sessions."""
        process = self.workers.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def close(self):
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        subprocess.run(["rm", "-rf", self.directory], check=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def wait_workers(client, names, timeout=STARTUP):
    """Wait until the scheduler knows exactly the workers ``names``."""

    def there():
        return sorted(str(w["name"]) for w in client.scheduler_info()["workers"].values()) == sorted(names)

    wait_until(there, timeout, f"workers {sorted(names)}")
