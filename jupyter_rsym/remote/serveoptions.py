"""``jupyter-rsym serve``'s command line: its options, their checks, the files
it reads or writes (private ones), and what it says at start.  ``server.py``
runs the server these describe.  Standard library only (and ``certificate``
for ``--tls-self-signed``)."""

import argparse
import ipaddress
import os
import socket
import ssl
from pathlib import Path

from . import __version__, bundle, certificate
from .tokens import check_token, make_token

DEFAULT_PORT = 18812
DEFAULT_RESUME_BUFFER = 8 << 20  # characters of unacknowledged output kept per session
PASTE = "paste into a notebook: {line}"


def paste_line(host, port, token, tls, fingerprint=None):
    """The ``%rconnect`` line a notebook user pastes to reach this server."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    line = f"%rconnect {'tls://' if tls else ''}{where}"
    line += f" --fingerprint {fingerprint}" if fingerprint else ""
    return line + (f" --token {token}" if token else "")


def is_loopback(host):
    """Whether ``host`` names this machine only (every address it resolves to)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return False
    return bool(found) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in found)


def arguments():
    """The command line of ``jupyter-rsym serve`` (also used by ``cli.py``)."""
    parser = argparse.ArgumentParser(prog="jupyter-rsym serve", description=__doc__.split("\n\n")[0], add_help=False)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT}; 0: any free port)"
    )
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument("--token", help="the token clients must know (default: a new random one, printed)")
    auth.add_argument("--token-file", metavar="FILE", help="read the token from FILE (first line)")
    auth.add_argument(
        "--no-auth", action="store_true", help="no token: anyone who reaches the port controls this machine"
    )
    parser.add_argument("--tls-cert", metavar="FILE", help="serve TLS with this certificate (PEM)")
    parser.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (PEM)")
    parser.add_argument(
        "--tls-self-signed",
        action="store_true",
        help="serve TLS with a certificate made at start; the paste line carries "
        "its fingerprint for the notebook to pin (needs the cryptography package or the openssl command)",
    )
    parser.add_argument("--tls-client-ca", metavar="FILE", help="require client certificates signed by this CA")
    parser.add_argument(
        "--allow-plaintext",
        action="store_true",
        help="allow plain TCP on an address other than loopback (anyone on the path "
        "can read the session and take over an admitted connection)",
    )
    parser.add_argument(
        "--auth-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds a new connection may take to finish its handshake (default 10)",
    )
    parser.add_argument(
        "--max-pending",
        type=int,
        default=256,
        metavar="N",
        help="connections that may wait at the gate at once (default 256)",
    )
    parser.add_argument(
        "--max-pending-per-address",
        type=int,
        default=16,
        metavar="N",
        help="of those, from one client address (default 16)",
    )
    parser.add_argument(
        "--logged-refusals",
        type=int,
        default=20,
        metavar="N",
        help="refused connections logged one by one per 10 s; the rest as a count (default 20)",
    )
    parser.add_argument("--log-file", metavar="FILE", help="write the log here instead of stderr")
    parser.add_argument(
        "--resume-grace",
        type=float,
        default=600.0,
        metavar="S",
        help="keep a notebook's session (namespace, threads, output) S seconds "
        "after its link drops, for the notebook to resume (default 600; 0: never)",
    )
    parser.add_argument(
        "--resume-buffer",
        type=size,
        default=DEFAULT_RESUME_BUFFER,
        metavar="N",
        help="output kept per session while its link is down, in characters "
        "(K and M suffixes; default 8M); beyond it the oldest is dropped",
    )
    parser.add_argument(
        "--exit-when-idle", action="store_true", help="exit once no connection is open and no session is kept"
    )
    return parser


def size(text):
    """``"8M"`` -> 8388608; ``K`` and ``M`` suffixes, at least 1."""
    text = text.strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1:], 1)
    try:
        value = int(float(text.rstrip("KM")) * scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 8M, 500K, 100000)") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: the buffer needs at least 1 character")
    return value


def private_file(path):
    """``path`` opened for appending, readable by its owner only (a log may
    name clients and reasons that are nobody else's business)."""
    fd = os.open(os.path.expanduser(path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an older file may have been made with wider rights
    except OSError:
        pass
    return os.fdopen(fd, "a", encoding="utf-8", buffering=1)


def token_from(args):
    if args.no_auth:
        return None
    if args.token_file:
        path = Path(args.token_file).expanduser()
        mode = path.stat().st_mode & 0o777
        if os.name == "posix" and mode & 0o077:  # as ssh refuses such keys
            raise ValueError(f"the token file {path} is open to others (mode {mode:o}): chmod 600 {path}")
        lines = path.read_text().splitlines()
        token = lines[0].strip() if lines else ""
    else:
        token = args.token if args.token is not None else make_token()
    if not token:
        raise ValueError("the token is empty")
    check_token(token)
    return token


def tls_context(args):
    """``(the server's TLS context or None, fingerprint of a self-signed certificate or None)``;
    with ``--tls-client-ca``, clients need a certificate that CA signed."""
    if args.tls_self_signed:
        context, fingerprint = certificate.self_signed(args.host)
    elif args.tls_cert:
        context, fingerprint = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH), None
        context.load_cert_chain(args.tls_cert, args.tls_key)
    else:
        return None, None
    if args.tls_client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(args.tls_client_ca)
    return context, fingerprint


def startup_lines(args, port, token, tls, fingerprint=None, grace=600.0):
    """What ``jupyter-rsym serve`` says when it starts (``lines[1]``: the paste line)."""
    how = ", ".join(
        filter(
            None,
            [
                "token" if token else "NO TOKEN",
                "TLS" if tls else "",
                "client certificates" if args.tls_client_ca else "",
                f"sessions kept {grace:g} s after a drop" if grace else "no resume",
                "exits when idle" if args.exit_when_idle else "",
            ],
        )
    )
    paste = paste_line(args.host, port, token, tls, fingerprint)
    lines = [f"jupyter_rsym {__version__} (agent {bundle.VERSION}), {how}", PASTE.format(line=paste)]
    if tls and not fingerprint:
        lines.append(
            "(the notebook adds --ca FILE unless it trusts the certificate's CA"
            + (", and --cert/--key for its client certificate)" if args.tls_client_ca else ")")
        )
    elif args.tls_client_ca:
        lines.append("(the notebook adds --cert/--key for its client certificate)")
    where = "on this machine" if is_loopback(args.host) else f"that reaches {args.host}"
    if not token and not args.tls_client_ca:  # nobody is authenticated, TLS or not
        lines.append(f"WARNING: --no-auth and no client certificates: anyone {where} can run code here as this user")
    if not tls and not is_loopback(args.host):
        lines.append(
            f"WARNING: plain TCP on {args.host} (--allow-plaintext): anyone on the path "
            "can read the session and take over an admitted connection"
        )
    return lines
