"""The node's client certificate and key, checked here: a TLS handshake that
fails says little more than "handshake failed", while the cause is often
plain to see locally.

Before connecting, the certificate's PEM and validity dates are read with a
small DER walk (no crypto library: rnx starts fast). Only when a connection
fails is the key compared with the certificate, with `cryptography`.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime

from joblet.client.config import NodeConfig
from joblet.client.errors import ClientConfigError

_TIME = "%Y-%m-%d %H:%M UTC"
_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.DOTALL)
_SEQUENCE, _INTEGER, _UTC_TIME, _GENERALIZED_TIME, _VERSION = 0x30, 0x02, 0x17, 0x18, 0xA0


class _Malformed(ValueError):
    pass


def first_certificate_der(pem: str) -> bytes:
    """The DER bytes of the first certificate in `pem`; ValueError if none reads."""
    match = _PEM_CERT.search(pem)
    if match is None:
        raise _Malformed("no BEGIN CERTIFICATE block")
    try:
        return base64.b64decode("".join(match.group(1).split()), validate=True)
    except binascii.Error as exc:
        raise _Malformed(f"bad base64: {exc}") from None


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at `pos`."""
    if pos + 2 > len(data):
        raise _Malformed("truncated")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4 or pos + count > len(data):
            raise _Malformed("bad length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise _Malformed("truncated")
    return tag, pos, pos + length


def validity(der: bytes) -> tuple[datetime, datetime]:
    """(notBefore, notAfter) of an X.509 certificate (RFC 5280, 4.1)."""
    tag, cert, _ = _tlv(der, 0)
    tag_tbs, pos, _ = _tlv(der, cert)
    if tag != _SEQUENCE or tag_tbs != _SEQUENCE:
        raise _Malformed("not a certificate")
    tag, _, end = _tlv(der, pos)
    if tag == _VERSION:
        pos = end
    for expected in (_INTEGER, _SEQUENCE, _SEQUENCE):  # serial, signature, issuer
        tag, _, end = _tlv(der, pos)
        if tag != expected:
            raise _Malformed("not a certificate")
        pos = end
    tag, pos, _ = _tlv(der, pos)
    if tag != _SEQUENCE:
        raise _Malformed("no validity")
    not_before, pos = _time(der, pos)
    not_after, _ = _time(der, pos)
    return not_before, not_after


def _time(der: bytes, pos: int) -> tuple[datetime, int]:
    tag, start, end = _tlv(der, pos)
    text = der[start:end].decode("ascii", errors="replace")
    formats = {_UTC_TIME: "%y%m%d%H%M%SZ", _GENERALIZED_TIME: "%Y%m%d%H%M%SZ"}
    if tag not in formats:
        raise _Malformed("bad time")
    try:
        return datetime.strptime(text, formats[tag]).replace(tzinfo=UTC), end
    except ValueError:
        raise _Malformed(f"bad time {text!r}") from None


def check_certificate(node: NodeConfig, now: datetime | None = None) -> None:
    """ClientConfigError when the client certificate does not read, or is
    expired or not yet valid at `now`."""
    where = f"node {node.name!r}"
    try:
        not_before, not_after = validity(first_certificate_der(node.cert))
    except _Malformed as exc:
        raise ClientConfigError(
            f"{where}: the client certificate is not a readable PEM certificate ({exc})"
        ) from None
    now = now or datetime.now(UTC)
    if now < not_before:
        raise ClientConfigError(
            f"{where}: the client certificate is not valid before {not_before.strftime(_TIME)}"
            f" (it is {now.strftime(_TIME)} here: is this machine's clock right?)"
        )
    if now > not_after:
        raise ClientConfigError(
            f"{where}: the client certificate expired on {not_after.strftime(_TIME)};"
            " ask for a new one"
        )


def check_key_pair(node: NodeConfig) -> None:
    """ClientConfigError when the private key does not read, or is not the
    key of the client certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    where = f"node {node.name!r}"
    try:
        key = serialization.load_pem_private_key(node.key.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ClientConfigError(
            f"{where}: the client private key is not a readable unencrypted PEM key ({exc})"
        ) from None
    cert = x509.load_pem_x509_certificate(node.cert.encode())
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if cert.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise ClientConfigError(
            f"{where}: the private key does not match the client certificate"
            " (a key and a certificate of different pairs?)"
        )
