"""SSH cost: calls through our tunnel, ``%rconnect ssh://`` and ``--deploy``, against a real sshd.

    python benchmarks/run.py --only ssh

Against the throwaway loopback sshd of ``tests/sshd.py`` and a stock
``rpyc_classic`` behind it:

* ``ssh_login``: ``ssh HOST true`` (one login: the floor of anything over SSH);
* ``rpyc_call_tcp`` / ``rpyc_call_ssh``: one remote call with raw rpyc, over
  plain loopback TCP and through an ``ssh://`` transport's tunnel;
* ``rsym_connect_ssh``: ``%rconnect ssh://HOST/PORT`` in a real kernel, timed
  in the cell (a login for plumbum's shell, one for the tunnel, then the
  session's two connections through it; the agent is there from a warm-up);
* ``zerodeploy_connect``: rpyc's own ``DeployedServer`` onto the system
  Python, then ``classic_connect`` (its copy goes by scp);
* ``rsym_deploy_ssh``: ``%rconnect ssh://HOST --deploy`` onto the same Python,
  timed in the cell.

Medians over repeats; disconnects are not timed.
"""

import tempfile

import rpyc
from plumbum import SshMachine
from rpyc.utils.zerodeploy import DeployedServer

from jupyter_rsym.kernel.config import RSym
from jupyter_rsym.link.address import parse_address
from jupyter_rsym.link.schemes import transport_for
from tests.servers import ClassicServer
from tests.sshd import SshServer

from .connect import in_kernel
from .run import median_time

SYSTEM_PYTHON = "/usr/bin/python3"


def per_call(conn, count):
    getpid = conn.modules.os.getpid
    getpid()
    return median_time(getpid, count)


def calls(sshd, server, count):
    direct = rpyc.classic.connect(server.host, server.port)
    transport = transport_for(
        parse_address(f"ssh://{sshd.host_alias}/{server.port}", 18812), RSym(ssh_options=sshd.ssh_options)
    )
    tunnelled = rpyc.classic.connect_stream(transport.open_stream())
    try:
        return {"rpyc_call_tcp": per_call(direct, count), "rpyc_call_ssh": per_call(tunnelled, count)}
    finally:
        direct.close()
        tunnelled.close()
        transport.close()


def zerodeploy(sshd):
    machine = SshMachine(sshd.host_alias, ssh_opts=sshd.ssh_options, scp_opts=sshd.ssh_options)
    deployed = DeployedServer(machine, python_executable=SYSTEM_PYTHON)
    deployed.classic_connect().close()
    deployed.close()


def run(quick):
    repeats, count = (1, 200) if quick else (10, 2000)
    with SshServer(tempfile.mkdtemp(prefix="rsym-bench-sshd-")) as sshd, ClassicServer() as server:
        results = {"ssh_login": median_time(lambda: sshd.ssh("true", check=True), repeats)}
        results.update(calls(sshd, server, count))
        results["zerodeploy_connect"] = median_time(lambda: zerodeploy(sshd), repeats)
        tunnel = f"ssh://{sshd.host_alias}/{server.port}"
        results.update(
            in_kernel(
                {
                    "rsym_connect_ssh": tunnel,
                    "rsym_deploy_ssh": f"ssh://{sshd.host_alias} --deploy --python {SYSTEM_PYTHON}",
                },
                repeats,
                warm_up=tunnel,
                setup=f"%config RSym.ssh_options = {[str(o) for o in sshd.ssh_options]!r}\n",
            )
        )
    ratios = {
        "rpyc_call_ssh / rpyc_call_tcp": results["rpyc_call_ssh"] / results["rpyc_call_tcp"],
        "rsym_connect_ssh / ssh_login": results["rsym_connect_ssh"] / results["ssh_login"],
        "rsym_deploy_ssh / zerodeploy_connect": results["rsym_deploy_ssh"] / results["zerodeploy_connect"],
    }
    return results, ratios
