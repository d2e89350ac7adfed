"""The TLS certificate ``jupyter-rsym serve --tls-self-signed`` makes at start,
and the fingerprint both sides compare (``%rconnect ... --fingerprint``).

Where nobody runs a CA, a certificate made at start and pinned by its
fingerprint (trust on first use, as ssh does with host keys) still keeps the
path from reading or taking over a session: the notebook accepts exactly
that certificate and no other, whatever names it carries.

The certificate is made by the ``openssl`` command where there is one,
else by the ``cryptography`` package (the optional extra
``jupyter_rsym[tls]``), imported only here and only when asked for (a Dask
worker has neither by need: see ``link/daskplugin.py``); with neither,
``--tls-self-signed`` fails with one line.  ``fingerprint`` is standard library only.
"""

import base64
import datetime
import hashlib
import ipaddress
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile

MISSING = (
    "a self-signed certificate needs the cryptography package (pip install 'jupyter_rsym[tls]') "
    "or the openssl command; or pass --tls-cert FILE --tls-key FILE"
)
VALID_DAYS = 3650  # the pin is what is checked, not the dates; a server may run for long
SUBJECT = "jupyter-rsym serve"


def fingerprint(der):
    """``SHA256:`` and the unpadded base64 of a DER certificate's SHA-256, as ssh writes them."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


def self_signed(host):
    """``(ssl.SSLContext for the server, fingerprint)`` of a new certificate for ``host``.

    Raises ``RuntimeError`` (``MISSING``) with neither cryptography nor openssl.
    """
    name = socket.gethostname() if host in ("", "0.0.0.0", "::") else host
    # ssl loads keys from files only: this one is encrypted with a password
    # that never leaves this process, in a directory only we can read
    password = secrets.token_hex(32)
    with tempfile.TemporaryDirectory(prefix="jupyter-rsym-") as directory:
        cert_file, key_file = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
        _make(name, password, cert_file, key_file)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file, password=password)
        with open(cert_file) as pem:
            der = ssl.PEM_cert_to_DER_cert(pem.read())
    return context, fingerprint(der)


def _make(name, password, cert_file, key_file):
    """The openssl command first: 10 ms, where importing cryptography costs a
    Dask worker's setup 130 ms of CPU (32 workers share 2 cores here)."""
    failed = None
    if shutil.which("openssl"):
        try:
            return _with_openssl(name, password, cert_file, key_file)
        except RuntimeError as exc:  # an openssl too old for -addext, say
            failed = exc
    try:
        _with_cryptography(name, password.encode(), cert_file, key_file)
    except ImportError:
        raise failed or RuntimeError(MISSING) from None


def _is_ip(name):
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _with_cryptography(name, password, cert_file, key_file):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    alt = x509.IPAddress(ipaddress.ip_address(name)) if _is_ip(name) else x509.DNSName(name)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SUBJECT)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .sign(key, hashes.SHA256())
    )
    with open(cert_file, "wb") as out:
        out.write(certificate.public_bytes(serialization.Encoding.PEM))
    with open(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(password),
            )
        )


def _with_openssl(name, password, cert_file, key_file):
    alt = ("IP:" if _is_ip(name) else "DNS:") + name
    command = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    command += ["-keyout", key_file, "-out", cert_file, "-days", str(VALID_DAYS), "-subj", "/CN=" + SUBJECT]
    command += ["-addext", "subjectAltName=" + alt, "-passout", "env:RSYM_KEY_PASSWORD"]
    try:  # the password goes by environment, never on a command line others can read
        subprocess.run(command, check=True, capture_output=True, env=dict(os.environ, RSYM_KEY_PASSWORD=password))
    except FileNotFoundError:
        raise RuntimeError(MISSING) from None
    except subprocess.CalledProcessError as exc:
        reason = exc.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError("openssl could not make a certificate: " + (reason[-1] if reason else str(exc))) from None
