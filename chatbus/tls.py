"""TLS for a hub: a private CA, and a server certificate it signed.

``chatbus server --tls`` keeps them in ``DATA_DIR/tls`` (mode 0700), made on
the first start and reused on the next ones:

- ``ca.pem``: the CA's certificate (EC P-256, about 10 years). Clients check
  the hub against it: ``rediss://HOST:PORT/0?ssl_ca_certs=.../ca.pem``.
- ``ca.key``: the CA's private key (0600); it signs a new server certificate
  when the one there no longer fits (see :func:`hub_tls_files`).
- ``server.pem``: the hub's certificate (about 2 years), for IP 127.0.0.1 and
  ::1, DNS ``localhost``, and the address the hub listens on if it is another.
- ``server.key``: its private key (0600).

Or the user brings their own three files (``--tls-cert``, ``--tls-key``,
``--tls-ca``): :func:`given_tls_files` checks them and leaves them as they are.
"""

import datetime
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import ChatbusError

CA_LIFETIME = datetime.timedelta(days=3650)
SERVER_LIFETIME = datetime.timedelta(days=730)
# A server certificate this close to its end is replaced at the next start.
RENEW_BEFORE = datetime.timedelta(days=30)
# Names every server certificate carries: the hub as this machine reaches it.
LOOPBACK_NAMES: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")
# Clocks of other machines may be a little behind.
_BACKDATE = datetime.timedelta(minutes=5)

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
CERT_FILE = "server.pem"
KEY_FILE = "server.key"


class TlsError(ChatbusError):
    """TLS files that cannot be used or made."""


@dataclass(frozen=True)
class TlsFiles:
    """The three files a TLS hub runs with."""

    ca: Path  # the CA certificate clients check the hub against
    cert: Path  # the server's certificate
    key: Path  # the server's private key


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def write_private(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` (replacing it), readable by its owner alone from the start."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data.encode() if isinstance(data, str) else data)
    tmp.replace(path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    tmp.replace(path)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _make_ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    public = key.public_key()
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return ca, key


def _sign_server(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, hosts: Iterable[str]
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    names = list(dict.fromkeys(hosts))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(min(now + SERVER_LIFETIME, ca.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        # clientAuth too: a cluster node presents it when it connects to another.
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName([_general_name(h) for h in names]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _hosts(extra: Iterable[str]) -> list[str]:
    """The loopback names, then every other address the hub listens on."""
    wanted = list(LOOPBACK_NAMES)
    for host in extra:
        if host not in wanted and host not in ("0.0.0.0", "::"):  # noqa: S104
            wanted.append(host)
    return wanted


def tls_files_in(directory: Path) -> TlsFiles:
    """Where the CA and certificate :func:`hub_tls_files` makes in ``directory`` are."""
    return TlsFiles(directory / CA_FILE, directory / CERT_FILE, directory / KEY_FILE)


def make_tls_files(
    directory: Path, hosts: Iterable[str] = (), *, common_name: str = "chatbus hub CA"
) -> TlsFiles:
    """A new CA and a server certificate it signed, in ``directory`` (see the module doc).

    The certificate names the loopback addresses and ``localhost``, and each of
    ``hosts`` (an IP address or a DNS name). Files already there are replaced.
    """
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca, ca_key = _make_ca(common_name)
    write_private(directory / CA_KEY_FILE, _pem_key(ca_key))
    _write_public(directory / CA_FILE, ca.public_bytes(serialization.Encoding.PEM))
    _write_server(directory, ca, ca_key, _hosts(hosts))
    return tls_files_in(directory)


def _write_server(
    directory: Path, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, hosts: list[str]
) -> None:
    cert, key = _sign_server(ca, ca_key, hosts)
    write_private(directory / KEY_FILE, _pem_key(key))
    _write_public(directory / CERT_FILE, cert.public_bytes(serialization.Encoding.PEM))


def certificate_hosts(cert: Path) -> set[str]:
    """The IP addresses and DNS names a certificate is valid for."""
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    try:
        names = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    found = {str(address) for address in names.get_values_for_type(x509.IPAddress)}
    return found | set(names.get_values_for_type(x509.DNSName))


def _server_fits(directory: Path, hosts: list[str]) -> bool:
    files = tls_files_in(directory)
    if not (files.cert.is_file() and files.key.is_file()):
        return False
    loaded = x509.load_pem_x509_certificate(files.cert.read_bytes())
    if loaded.not_valid_after_utc - RENEW_BEFORE < _now():
        return False
    named = certificate_hosts(files.cert)
    return all(str(_general_name(h).value) in named for h in hosts)


def hub_tls_files(directory: Path, hosts: Iterable[str] = ()) -> TlsFiles:
    """The hub's CA and certificate in ``directory``: made on the first call, reused after.

    The CA is kept for good (clients hold its certificate); with it a new
    server certificate is signed when the one there does not name every one
    of ``hosts`` (the hub now listens on another address) or ends within 30
    days. A CA that is missing its key, or cannot be read, is a TlsError:
    making a new one would lock every client out.
    """
    wanted = _hosts(hosts)
    files = tls_files_in(directory)
    ca_key_path = directory / CA_KEY_FILE
    if not files.ca.exists() and not ca_key_path.exists():
        return make_tls_files(directory, wanted)
    try:
        ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        fits = _server_fits(directory, wanted)
    except (OSError, ValueError) as error:
        raise TlsError(
            f"the hub's TLS files in {directory} cannot be used ({error}); restore them, "
            "or move the folder away to make a new CA (clients then need its new ca.pem)"
        ) from None
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TlsError(f"{ca_key_path} is not the EC key chatbus made")
    if not fits:
        _write_server(directory, ca, ca_key, wanted)
    return files


def given_tls_files(cert: Path, key: Path, ca: Path) -> TlsFiles:
    """The user's own certificate, key and CA, checked readable; TlsError if not."""
    for what, path in (("--tls-cert", cert), ("--tls-key", key), ("--tls-ca", ca)):
        try:
            with path.open("rb") as opened:
                opened.read(1)
        except OSError as error:
            raise TlsError(f"{what} {path}: {error.strerror or error}") from None
    return TlsFiles(ca=ca.absolute(), cert=cert.absolute(), key=key.absolute())
