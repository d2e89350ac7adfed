"""Settings, as one traitlets Configurable.

``%config RSym`` lists them; ``%config RSym.timeout = 10`` changes one;
``c.RSym.timeout = 10`` in ``ipython_kernel_config.py`` presets it.  Every
setting that reaches rpyc goes through ``link.options.rpyc_config`` and
nowhere else.
"""

from traitlets import Bool, Dict, Float, Int, List, TraitError, Unicode, validate
from traitlets.config import Configurable

from ..link.options import log_level_number


class RSym(Configurable):
    """jupyter_rsym settings."""

    default_port = Int(18812, help="Port used when an address names no port (18812 is rpyc's classic port).").tag(
        config=True
    )

    default_name = Unicode(
        "r", help="Notebook variable that %rconnect binds the session to when --as is not given."
    ).tag(config=True)

    default_session = Unicode(
        "",
        help="Session that %%remote, %remote, %rpush, %rpull and %autoremote use without "
        "--on; empty: the most recently connected one. %rdefault NAME sets it.",
    ).tag(config=True)

    timeout = Float(
        30.0,
        help="Seconds to wait for the answer to one remote call (attribute access, "
        "function call, %remote EXPR) before the cell fails with TimeoutError.",
    ).tag(config=True)

    cell_timeout = Float(
        0.0,
        help="Seconds a %%remote cell may run before it fails with TimeoutError; "
        "0 waits as long as the cell runs (interrupt the kernel to stop it).",
    ).tag(config=True)

    connect_timeout = Float(
        5.0, help="Seconds to wait for a server to accept a connection and answer the handshake."
    ).tag(config=True)

    keepalive = Int(
        60,
        help="Seconds of silence before TCP keepalive probes start (5 unanswered probes "
        "mark a vanished server as lost while the notebook is idle); 0 turns them off.",
    ).tag(config=True)

    flush_interval = Float(0.05, help="Seconds remote output may wait in the remote buffer before it is sent.").tag(
        config=True
    )

    batch_bytes = Int(65536, help="Remote output is sent as soon as this many characters are buffered.").tag(
        config=True
    )

    connections = Dict(
        {},
        help="Sessions to open when the extension loads, as {name: address}, e.g. {'r': '127.0.0.1:18812'}.",
    ).tag(config=True)

    # -- secure servers (jupyter-rsym serve): tokens and TLS --------------------

    token_file = Unicode(
        "",
        help="File whose first line is the token for jupyter-rsym serve servers that ask "
        "for one (after %rconnect --token and the JUPYTER_RSYM_TOKEN environment variable).",
    ).tag(config=True)

    tls_ca = Unicode(
        "",
        help="CA file (PEM) that tls:// servers' certificates are checked against when "
        "%rconnect has no --ca; empty: the system's CAs.",
    ).tag(config=True)

    tls_cert = Unicode(
        "", help="Client certificate (PEM) for tls:// servers that ask for one, when %rconnect has no --cert."
    ).tag(config=True)

    tls_key = Unicode("", help="Private key (PEM) of RSym.tls_cert.").tag(config=True)

    # rich remote output
    log_level = Unicode(
        "WARNING",
        help="Remote logging records at this level or above, logged on behalf of a cell "
        "through the server's own stderr/stdout handlers, show in the cell instead of the "
        "server's terminal (quieter ones stay there). A level name or number.",
    ).tag(config=True)

    @validate("log_level")
    def _valid_log_level(self, proposal):
        try:
            log_level_number(proposal["value"])
        except ValueError as exc:
            raise TraitError(str(exc)) from None
        return proposal["value"]

    # -- SSH: ssh:// addresses and %rconnect --deploy ---------------------------

    ssh_options = List(
        Unicode(),
        [],
        help="Extra arguments for ssh (and scp) on ssh:// connections, e.g. ['-F', 'my_config'] "
        "or ['-i', 'key']; your ~/.ssh/config, ssh-agent and known_hosts apply anyway.",
    ).tag(config=True)

    ssh_python = Unicode(
        "python3",
        help="Python that %rconnect ssh://HOST --deploy runs the server with on the remote "
        "(a command on the remote PATH or an absolute path); --python overrides it.",
    ).tag(config=True)

    ssh_timeout = Float(
        15.0, help="Seconds to wait for an ssh login, for a tunnel, and for a deployed server to start."
    ).tag(config=True)

    # -- far links: compression, bulk transfers, completion and help -----------

    compress = Bool(
        False,
        help="zlib-compress messages over 3 KB in both directions (rpyc's own default is on). "
        "Off because benchmarks/farlinks.py measured it slower in every case: a 16 MB pull took "
        "29-53x as long on loopback with random data, 2x as long over a 20 ms link with "
        "compressible data. It can pay only on links slower than zlib (tens of MB/s) carrying "
        "compressible data. Applies to sessions connected afterwards.",
    ).tag(config=True)

    chunk_bytes = Int(
        1 << 20,
        help="Values larger than this move in pieces of this many bytes, several in flight "
        "at once (%rpush, %rpull, -i/-o, r.push/r.pull).",
    ).tag(config=True)

    progress_after = Float(
        1.0, help="A transfer still running after this many seconds shows its progress in the cell."
    ).tag(config=True)

    introspection_timeout = Float(
        2.0,
        help="Seconds TAB completion, obj? and help() wait for the remote; completion shows "
        "nothing if it does not answer in time.",
    ).tag(config=True)

    # -- resuming after a dropped link (servers that keep sessions) -------------

    resume_window = Float(
        4.0,
        help="Seconds the next use of a session whose link dropped keeps trying to reach "
        "the server again (a few tries with backoff); a refused connection fails at once.",
    ).tag(config=True)

    # -- SSH deploy: resuming after a dropped link ------------------------------

    deploy_resume_grace = Float(
        600.0,
        help="Seconds a server started by %rconnect ssh://HOST --deploy keeps the session after "
        "the SSH link drops (its --resume-grace); the next use resumes it through a new login. "
        "When that time ends with nobody attached, the server exits and deletes its directory. "
        "0: a dropped link ends it at once. Applies to servers deployed afterwards.",
    ).tag(config=True)

    # -- debugging remote code ------------------------------------------------

    park_breakpoints = Bool(
        True,
        help="A breakpoint() in remote code that no cell can prompt for (a background job, "
        "a thread of a finished cell, a fan-out host while another is at the prompt) waits "
        "there until %rdebug N attaches; False: it fails with EOFError at once.",
    ).tag(config=True)

    # -- Dask: %rconnect dask://SCHEDULER, and output of many hosts -------------

    dask_name = Unicode(
        "dask", help="Notebook name of the group %rconnect dask:// and --dask make when --as is not given."
    ).tag(config=True)

    dask_timeout = Float(
        30.0, help="Seconds %rconnect dask:// waits for the scheduler (and its Client to connect)."
    ).tag(config=True)

    many_hosts = Int(
        4,
        help="Cells on at least this many hosts collapse lines the hosts print alike "
        "(RSym.collapse_output) and, when long, show a progress line (RSym.fanout_progress_after).",
    ).tag(config=True)

    collapse_output = Bool(
        True,
        help="In cells on RSym.many_hosts hosts or more, a line several hosts print alike (within "
        "RSym.collapse_window s of the first) is shown once, then once more with the number of "
        "hosts that repeated it; %%remote --no-collapse turns it off for one cell.",
    ).tag(config=True)

    collapse_window = Float(
        2.0,
        help="Seconds after a line is first shown during which the same line from other "
        "hosts is counted instead of shown (RSym.collapse_output).",
    ).tag(config=True)

    fanout_progress_after = Float(
        2.0,
        help="A cell on RSym.many_hosts hosts or more still running after this many seconds shows "
        "one line updated in place: 'N/M done, K failed (names)'; 0 never shows it.",
    ).tag(config=True)
