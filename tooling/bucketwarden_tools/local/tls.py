"""HTTPS on the local endpoint's own port, as S3 serves it: TLS-only bucket rules hold locally.

A certificate authority and a certificate for 127.0.0.1 and localhost are made at the first
start and kept in the user's cache folder (`$XDG_CACHE_HOME/bucketwarden/local-tls`, else
`~/.cache/...`); clients trust them through the CA bundle (`AWS_CA_BUNDLE`). Each connection is
judged by its first byte: a TLS handshake is answered over TLS, anything else as plain HTTP, so
one port serves both, as LocalStack's does.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
from pathlib import Path
from typing import Any, NamedTuple

# The first byte of a TLS record carrying a handshake (a ClientHello opens every connection).
TLS_HANDSHAKE = 0x16
# A client that connects and says nothing is not waited for longer than this.
FIRST_BYTE_TIMEOUT_SECONDS = 10.0
# Renewed this long before it expires, at a start.
RENEW_BEFORE = datetime.timedelta(days=30)
VALID_FOR = datetime.timedelta(days=825)  # the longest life clients accept for a server cert
NAMES = ("localhost", "127.0.0.1", "::1")


class Certificates(NamedTuple):
    """The files of the local endpoint's TLS: what clients trust, and what the server shows."""

    ca_bundle: Path
    certificate: Path
    key: Path


def cache_folder(env: dict[str, str] | None = None) -> Path:
    """Where the certificates are kept: the user's cache folder, as XDG says."""
    env = dict(os.environ) if env is None else env
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bucketwarden" / "local-tls"


def certificates(folder: Path | None = None) -> Certificates:
    """The certificates in `folder`, made (or made again, when close to expiry or unreadable)."""
    folder = folder or cache_folder()
    found = Certificates(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    if not _usable(found):
        _make(found)
    return found


def _usable(found: Certificates) -> bool:
    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificate(found.certificate.read_bytes())
        found.ca_bundle.read_bytes()
        found.key.read_bytes()
    except (OSError, ValueError):
        return False
    now = datetime.datetime.now(datetime.UTC)
    return certificate.not_valid_after_utc - RENEW_BEFORE > now


def _make(found: Certificates) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "BucketWarden local CA")])
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in NAMES[1:]]
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "BucketWarden local")])
    certificate = (
        _builder(server_name, ca_name, key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    found.key.parent.mkdir(parents=True, exist_ok=True)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(found.key, private, mode=0o600)
    _write(found.certificate, certificate.public_bytes(serialization.Encoding.PEM))
    _write(found.ca_bundle, ca.public_bytes(serialization.Encoding.PEM))


def _builder(subject: Any, issuer: Any, public_key: Any, now: datetime.datetime) -> Any:
    from cryptography import x509

    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALID_FOR)
    )


def _usage(cert_sign: bool) -> Any:
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Written whole or not at all: a start that dies midway leaves no half file behind."""
    partial = path.with_suffix(path.suffix + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    partial.replace(path)


def server_context(found: Certificates) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(found.certificate, found.key)
    return context


def answer_tls_too(server: Any, context: ssl.SSLContext) -> None:
    """Make `server` (werkzeug's threaded server) answer TLS on its port beside plain HTTP.

    Judged in the connection's own thread, so that a slow client holds up no other."""
    plain = server.finish_request

    def finish_request(request: socket.socket, client_address: Any) -> None:
        request.settimeout(FIRST_BYTE_TIMEOUT_SECONDS)
        try:
            first = request.recv(1, socket.MSG_PEEK)
        except OSError:
            return
        request.settimeout(None)
        if first and first[0] == TLS_HANDSHAKE:
            try:
                request = context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):  # a client that does not trust us, or went away
                return
        plain(request, client_address)

    server.finish_request = finish_request


def transport_of(connection: Any) -> tuple[bool, str | None]:
    """Whether the connection is TLS, and its version as S3 names it ("1.2", "1.3")."""
    if not isinstance(connection, ssl.SSLSocket):
        return False, None
    version = connection.version() or ""
    return True, version.removeprefix("TLSv") or None
