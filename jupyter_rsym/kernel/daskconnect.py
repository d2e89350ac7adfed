"""``%rconnect dask://SCHEDULER`` / ``%rconnect --dask VAR``: a group with one
session per Dask worker (the cluster side is ``link/dask.py``)."""

from IPython.core.error import UsageError

from ..link.address import AddressError
from ..link.errors import ConnectFailed
from ..link.session import RemoteSession
from .groups import SessionGroup, count_of

NO_VARIABLE = "--dask {!r}: no notebook variable of that name (a distributed.Client or a cluster)"
WORKER_NAME = (
    "dask_worker = next(w for w in __import__('distributed.worker').worker.Worker._instances if w.address == {!r})"
)
BOTH = "give either dask://HOST[:PORT] or --dask VAR, not both"


def connect_dask(extension, name, address=None, variable=None):
    """Make the group ``name`` (see the module docstring), bind it in the
    notebook, and say in a few lines what was connected and what not."""
    from ..link import dask

    shell, settings = extension.shell, extension.settings
    if address and variable:
        raise UsageError(BOTH)
    try:
        if variable:
            if variable not in shell.user_ns:
                raise UsageError(NO_VARIABLE.format(variable))
            cluster = dask.DaskCluster.from_object(variable, shell.user_ns[variable], settings.dask_timeout)
        else:
            host, port = dask.parse_scheduler(address)
            cluster = dask.DaskCluster.from_address(host, port, settings.dask_timeout)
    except AddressError as exc:
        raise UsageError(str(exc)) from None

    def connect_member(announcement):
        session = RemoteSession.connect(
            announcement["name"],
            dask.worker_address(announcement),
            settings,
            extension.frontend,
            cluster.credentials(),
            **cluster.transport_options(announcement),
        )
        try:  # cells see their worker as Client.run's functions do (get_worker() is for tasks)
            session.execute(WORKER_NAME.format(announcement["worker"]))
        except BaseException:
            session.close()
            raise
        return session

    def key(announcement):
        return announcement["worker"], announcement["port"], announcement.get("pid")

    about = "cluster TLS" if cluster.cluster_tls else "self-signed certificates, pinned"
    group = SessionGroup(name, cluster.address, connect_member, key, cluster.close, about)
    try:
        announced, failed = cluster.start(group.announce)
        unreachable = group.connect_all(list(announced.values()), failed)
    except BaseException:
        group.close()
        raise
    if name in (s.name for s in extension.sessions):
        extension.sessions.remove(name)
    extension.groups.add(group)
    shell.user_ns[name] = group
    names = {a["worker"]: a["name"] for a in announced.values()}
    connected = len(group.sessions)
    print(
        f"Connected {name} to {cluster.address}: {count_of(range(connected), 'worker')} "
        f"({about}); --on {name} runs a cell on all, --on {name}/WORKER on one"
    )
    if unreachable:
        reason = str(next(iter(unreachable.values()))).splitlines()[0]
        print(f"{name}: could not reach {count_of(unreachable, 'worker')} ({', '.join(unreachable)}): {reason}")
    if failed:
        reason = next(iter(failed.values()))
        print(
            f"{name}: no server started on {count_of(failed, 'worker')} "
            f"({', '.join(names.get(w, w) for w in failed)}): {reason}"
        )
    if not connected:
        extension.groups.remove(name)
        shell.user_ns.pop(name, None)
        raise ConnectFailed(f"{name}: no worker of {cluster.address} could be connected")
    return group
