"""The connection layer: an address becomes a ``RemoteSession`` (runs in the notebook's process).

No IPython, ipykernel or kernel integration here (``pyproject.toml``'s
import contracts): a session reports its remote output, ``input()`` and
progress to a ``frontend.Frontend`` it is given.

* ``address``    parsing ``HOST[:PORT]``, ``tls://``, ``ssh://``
* ``schemes``    which transport serves each scheme
* ``transport``  an address becomes a connected rpyc connection (tcp, tls); the token
* ``ssh``        ``ssh://``: plumbum's ``SshMachine``, the tunnel, ssh's failures in one line
* ``deploy``     ``--deploy``: start our server over ssh in a fresh remote directory
* ``session``    ``RemoteSession``: one connection's API and lifecycle
* ``attach``     a session's two connections set up in a few round trips
* ``sidelink``   the side connection: interrupts and liveness pings
* ``resume``     resuming a session after its link dropped
* ``client``     the notebook end of a classic connection
* ``proxies``    the classic root and remote modules without extra round trips
* ``routing``    which cell (parent message) caused each request and callback
* ``reader``     serving the connection while no cell waits on it
* ``sigint``     Ctrl-C while waiting on the remote, safely
* ``transfer``   values by copy or by reference; large ones in pieces
* ``frontend``   where a session's output, ``input()`` and progress go (plain process)
* ``options``    what the layer reads from settings; rpyc's config
* ``errors``     every error a user sees, one line each
"""
