"""Generate the certificates joblet's mutual TLS needs: a CA, a server
certificate and role-carrying client certificates.

Pure functions over PEM text (no file I/O): `joblet.setup` decides where the
results live. Keys are EC P-256: small, fast to generate, and accepted by
gRPC's TLS stack. A client's role travels in its subject's OU and its name in
the CN, which is what `joblet.security.roles` reads back.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = timedelta(days=3650)
LEAF_VALIDITY = timedelta(days=3 * 365)
# Backdate a little so a client whose clock lags the CA's still accepts new certificates.
CLOCK_SKEW = timedelta(minutes=5)
DEFAULT_SERVER_NAMES: tuple[str, ...] = ("localhost", "127.0.0.1")
# RFC 5280's upper bound for commonName and organizationalUnitName.
MAX_NAME_LENGTH = 64


@dataclass(frozen=True)
class CertKeyPair:
    """A certificate and its unencrypted PKCS#8 private key, both PEM text."""

    cert_pem: str
    key_pem: str


def generate_ca(common_name: str = "joblet CA", now: datetime | None = None) -> CertKeyPair:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(common_name)
    start = _start(now)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertKeyPair(_cert_pem(cert), _key_pem(key))


def check_ca(cert_pem: str, key_pem: str, now: datetime | None = None) -> CertKeyPair:
    """An existing CA to issue from (a cluster's first node's): its
    certificate must be a CA's, valid now, able to sign certificates, and
    `key_pem` its key. ValueError says which it is not."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError as exc:
        raise ValueError(f"the CA certificate is not a PEM certificate ({exc})") from exc
    try:
        key = _load_ec_key(key_pem)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"the CA key is not usable: {exc}") from exc
    if cert.public_key() != key.public_key():
        raise ValueError("the CA key does not belong to the CA certificate")
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise ValueError("the CA certificate is not a CA's (basicConstraints CA:TRUE missing)")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.key_cert_sign:
        raise ValueError("the CA certificate may not sign certificates (no keyCertSign)")
    at = now or datetime.now(UTC)
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise ValueError(
            f"the CA certificate is not valid now (valid {cert.not_valid_before_utc:%Y-%m-%d}"
            f" to {cert.not_valid_after_utc:%Y-%m-%d})"
        )
    return CertKeyPair(cert_pem, key_pem)


def issue_server_cert(
    ca_cert_pem: str, ca_key_pem: str, server_names: list[str], now: datetime | None = None
) -> CertKeyPair:
    """A server certificate for `server_names` plus localhost and 127.0.0.1.

    Names that parse as IP addresses become IP SANs, the rest DNS SANs.
    """
    names = server_san_names(server_names)
    sans = x509.SubjectAlternativeName([_general_name(n) for n in names])
    return _issue_leaf(
        ca_cert_pem,
        ca_key_pem,
        _name(names[0]),
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        sans=sans,
        now=now,
    )


def issue_client_cert(
    ca_cert_pem: str, ca_key_pem: str, role: str, name: str, now: datetime | None = None
) -> tuple[str, str]:
    """A client certificate with OU = `role` and CN = `name`: (cert_pem, key_pem).

    `role` is taken as given (a `Role` is a str) so tests can mint unknown roles.
    """
    _check_name_part("role", role)
    _check_name_part("name", name)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "joblet"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    pair = _issue_leaf(
        ca_cert_pem, ca_key_pem, subject, usage=ExtendedKeyUsageOID.CLIENT_AUTH, sans=None, now=now
    )
    return pair.cert_pem, pair.key_pem


def server_san_names(server_names: list[str]) -> list[str]:
    """The given names (blank ones dropped), then localhost and 127.0.0.1, no duplicates."""
    result: list[str] = []
    for raw in [*server_names, *DEFAULT_SERVER_NAMES]:
        name = raw.strip()
        if not name:
            continue
        _check_host_name(name)
        if name not in result:
            result.append(name)
    return result


def _issue_leaf(
    ca_cert_pem: str,
    ca_key_pem: str,
    subject: x509.Name,
    *,
    usage: x509.ObjectIdentifier,
    sans: x509.SubjectAlternativeName | None,
    now: datetime | None,
) -> CertKeyPair:
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    ca_key = _load_ec_key(ca_key_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    start = _start(now)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(min(start + LEAF_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if sans is not None:
        builder = builder.add_extension(sans, critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return CertKeyPair(_cert_pem(cert), _key_pem(key))


def _load_ec_key(pem: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key is not an EC private key")
    return key


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
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


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _check_host_name(name: str) -> None:
    if not name.isascii() or any(c.isspace() or c in "\0/" for c in name):
        raise ValueError(f"server name {name!r} is not a valid host name or IP address")
    if len(name) > 253:
        raise ValueError(f"server name {name[:20]!r}... is longer than 253 characters")


def _check_name_part(what: str, value: str) -> None:
    if not value or not value.strip():
        raise ValueError(f"client certificate {what} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(f"client certificate {what} is longer than {MAX_NAME_LENGTH} characters")
    if "\0" in value:
        raise ValueError(f"client certificate {what} must not contain NUL bytes")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:MAX_NAME_LENGTH])])


def _start(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)) - CLOCK_SKEW


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
