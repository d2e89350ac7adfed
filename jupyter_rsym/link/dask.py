"""``%rconnect dask://SCHEDULER``, the cluster side: a server in every Dask
worker, and how the notebook reaches each one.

Dask places, restarts and secures the worker processes; we only ride on it
(the design is in the README's "On Dask"):

* ``DaskCluster.start`` registers ``daskplugin.ServerPlugin`` (pickled by
  value: workers need no jupyter_rsym) under a name made for this
  ``%rconnect``, after subscribing to the Dask event topic of the same
  name, where each worker's plugin announces its server (host, port,
  certificate fingerprint).  Workers that start later announce themselves
  the same way; the ones there at connect time are also read back with one
  ``Client.run``.
* ``worker_transport`` opens each session straight to the worker (no
  scheduler hop), over TLS: the client's own cluster TLS context
  (``get_connection_args("client")``, mutual TLS under the cluster's CA)
  when the cluster has TLS, else the worker's self-signed certificate
  pinned by the fingerprint it announced.  The token goes on top.
* ``close`` unsubscribes and unregisters the plugin (its ``teardown`` stops
  every server and deletes the unpacked files), and closes the Client if
  ``%rconnect`` made it.

``distributed`` is imported here only when a cluster is used; ``import
jupyter_rsym`` never imports it.  No IPython here either (link/ layer).
"""

import dataclasses
import secrets

from ..remote.tokens import make_token
from .address import Address, AddressError, _host_port
from .deploy import REMOTE_PACKAGE, archive
from .errors import ConnectFailed
from .schemes import TRANSPORTS
from .transport import Credentials, TlsTransport

DEFAULT_PORT = 8786  # the scheduler's
SCHEME = "dask-worker"  # the transport of one worker's session (TRANSPORTS key)
BAD_DASK = "cannot parse address {!r}: expected dask://HOST[:PORT]"
NOT_A_CLIENT = (
    "--dask {!r}: expected a distributed.Client or a cluster object with "
    "scheduler_address (LocalCluster, SLURMCluster, ...), got {}"
)
NO_DISTRIBUTED = "dask:// needs the distributed package: pip install 'jupyter_rsym[dask]'"


def parse_scheduler(text):
    """``dask://HOST[:PORT]`` -> ``(host, port)``."""
    rest = text.strip()[len("dask://") :]
    try:
        host, port = _host_port(rest, text, BAD_DASK)
    except AddressError:
        raise
    return host, DEFAULT_PORT if port is None else port


def _distributed():
    try:
        import distributed
    except ImportError:
        raise ConnectFailed(NO_DISTRIBUTED) from None
    return distributed


class DaskCluster:
    """The notebook's hold on one Dask cluster for one group: its Client, the
    plugin registered there and the event subscription (see the module docstring)."""

    def __init__(self, client, owns_client, address):
        self.client = client
        self.owns_client = owns_client
        self.address = address  # as %rconnect shows it
        self.topic = "jupyter-rsym-" + secrets.token_hex(6)
        self.token = make_token()
        self.started = False
        tls = client.security.get_connection_args("client").get("ssl_context")
        self.context = tls  # None: the workers' self-signed certificates, pinned
        self.cluster_tls = tls is not None

    @classmethod
    def from_address(cls, host, port, timeout):
        """A Client of its own to the scheduler at host:port (TLS if the Dask config says so)."""
        distributed = _distributed()
        security = distributed.Security()  # from the dask config (distributed.comm.tls.*)
        scheme = "tls" if security.get_connection_args("client").get("ssl_context") else "tcp"
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            client = distributed.Client(f"{scheme}://{where}", timeout=timeout, security=security, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(f"cannot reach the Dask scheduler at {where}: {exc}") from None
        return cls(client, True, f"dask://{where}")

    @classmethod
    def from_object(cls, variable, value, timeout):
        """A ``distributed.Client`` the notebook holds (used as it is), or a
        cluster object (a Client of ours, with the cluster's security)."""
        distributed = _distributed()
        if isinstance(value, distributed.Client):
            return cls(value, False, _shown(value.scheduler.address))
        address = getattr(value, "scheduler_address", None)
        if not isinstance(address, str):
            raise ConnectFailed(NOT_A_CLIENT.format(variable, type(value).__name__))
        security = getattr(value, "security", None) or distributed.Security()
        client = distributed.Client(address, timeout=timeout, security=security, set_as_default=False)
        return cls(client, True, _shown(address))

    def start(self, on_announce):
        """Subscribe, register the plugin, and return ``(announcements, failed)``:
        the servers of the workers there now (``{worker address: announcement}``)
        and ``{worker address: reason}`` for those whose plugin failed.
        ``on_announce(announcement)`` is called (in the Client's thread) for
        every announcement from now on, also of workers that start later."""
        import cloudpickle

        from . import daskplugin

        cloudpickle.register_pickle_by_value(daskplugin)  # workers never import jupyter_rsym
        self.client.subscribe_topic(self.topic, lambda event: on_announce(event[1]))
        plugin = daskplugin.ServerPlugin(self.topic, self.token, archive(), REMOTE_PACKAGE)
        self.started = True
        setup_error = None
        try:
            self.client.register_plugin(plugin, name=self.topic)
        except Exception as exc:  # some worker's setup failed; the others serve
            setup_error = f"{type(exc).__name__}: {exc}"
        found = self.client.run(daskplugin.announcement, self.topic, on_error="return")
        announced, failed = {}, {}
        for worker, answer in found.items():
            if isinstance(answer, dict):
                announced[worker] = answer
            else:
                failed[worker] = setup_error or (
                    f"{type(answer).__name__}: {answer}" if isinstance(answer, BaseException) else "no server"
                )
        return announced, failed

    def workers(self):
        """The scheduler's current workers: ``{address: name}``."""
        return {
            address: str(info.get("name", address)) for address, info in self.client.scheduler_info()["workers"].items()
        }

    def credentials(self):
        return Credentials(token=self.token)

    def transport_options(self, announcement):
        """What ``worker_transport`` needs for this worker's server."""
        return {
            "context": self.context,
            "fingerprint": None if self.cluster_tls else announcement["fingerprint"],
            "group": self.address,
        }

    def close(self):
        """Unsubscribe, unregister the plugin (every worker's server stops) and
        close the Client if it is ours.  Errors are swallowed: a cluster that
        is already gone has nothing left to stop."""
        client = self.client
        if self.started:
            self.started = False
            for step in (
                lambda: client.unsubscribe_topic(self.topic),
                lambda: client.unregister_worker_plugin(self.topic),
            ):
                try:
                    step()
                except Exception:
                    pass
        if self.owns_client:
            try:
                client.close(timeout=5)
            except Exception:
                pass


def _shown(scheduler):
    """``tcp://h:p`` -> ``dask://h:p``; ``tls://h:p`` -> ``dask+tls://h:p``."""
    scheme, _, rest = scheduler.partition("://")
    return f"dask://{rest}" if scheme == "tcp" else f"dask+{scheme}://{rest}"


def worker_address(announcement):
    return Address(announcement["host"], int(announcement["port"]), SCHEME)


class WorkerTransport(TlsTransport):
    """TLS to one worker's server: mutual TLS with the cluster's client context,
    or pinning the fingerprint the worker announced through Dask (as
    ``%rconnect tls://... --fingerprint`` pins one: no CA, no name check)."""

    def __init__(self, address, settings, credentials=None, context=None, fingerprint=None, group=None):
        credentials = dataclasses.replace(credentials or Credentials(), fingerprint=fingerprint)
        super().__init__(Address(address.host, address.port, "tls"), settings, credentials)
        self.group = group
        if context is not None:
            self.context = context

    @property
    def rconnect_args(self):
        return self.group or str(self.address)


TRANSPORTS.setdefault(SCHEME, WorkerTransport)
