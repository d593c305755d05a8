"""Certificate revocation lists: written by `joblet certs revoke`, read by the daemon.

Pure functions over PEM text. grpc-python's server credentials cannot check a
CRL during the handshake, so the daemon reads the revoked serial numbers from
the CRL and the interceptor refuses every call whose peer certificate carries
one of them. A CRL counts only if the CA the daemon trusts signed it: a file
anyone could write must not be able to un-revoke (or revoke) anything.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

# The daemon ignores nextUpdate (it rereads the file whenever it changes);
# other readers of the CRL get a long one so they do not drop it as stale.
CRL_VALIDITY = timedelta(days=3650)


class RevocationError(ValueError):
    """A CRL that cannot be read, or that the CA did not sign."""


@dataclass(frozen=True)
class Revoked:
    serial: int
    revoked_at: datetime


def build_crl(
    ca_cert_pem: str,
    ca_key_pem: str,
    revoked: Iterable[Revoked],
    number: int,
    now: datetime | None = None,
) -> str:
    """A CRL (PEM) signed by the CA listing `revoked`; `number` is its CRL number."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    ca_key = serialization.load_pem_private_key(ca_key_pem.encode(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise RevocationError("the CA key is not an EC private key")
    moment = now or datetime.now(UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(moment)
        .next_update(moment + CRL_VALIDITY)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    for entry in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial)
            .revocation_date(entry.revoked_at)
            .build()
        )
    crl = builder.sign(ca_key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM).decode()


def read_crl(crl_pem: bytes, ca_cert_pem: str) -> frozenset[int]:
    """The serial numbers a CRL revokes, after checking the CA signed it."""
    try:
        crl = x509.load_pem_x509_crl(crl_pem)
    except ValueError as exc:
        raise RevocationError(f"not a PEM certificate revocation list ({exc})") from exc
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    if crl.issuer != ca_cert.subject:
        raise RevocationError(f"issued by {crl.issuer.rfc4514_string()}, not by the CA")
    public_key = ca_cert.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise RevocationError("the CA key is not an EC key")
    try:
        valid = crl.is_signature_valid(public_key)
    except (InvalidSignature, TypeError, ValueError):
        valid = False
    if not valid:
        raise RevocationError("its signature is not the CA's")
    return frozenset(entry.serial_number for entry in crl)


def format_serial(serial: int) -> str:
    """A serial number as hex digits, as `joblet certs list` shows it."""
    return f"{serial:x}"


def parse_serial(text: str) -> int:
    """A serial given as hex digits (optional 0x, optional colons); ValueError otherwise."""
    digits = text.strip().lower().removeprefix("0x").replace(":", "")
    if not digits or any(c not in "0123456789abcdef" for c in digits):
        raise ValueError(f"serial {text!r} is not a hexadecimal number")
    return int(digits, 16)


def cert_serial(cert_pem: str | bytes) -> int | None:
    """The serial number of a PEM certificate, None when it does not parse."""
    return _serial_of(cert_pem.encode() if isinstance(cert_pem, str) else cert_pem)


# The same peer certificate comes with every call; parse it once.
@functools.lru_cache(maxsize=1024)
def _serial_of(data: bytes) -> int | None:
    try:
        return x509.load_pem_x509_certificate(data).serial_number
    except ValueError:
        return None
