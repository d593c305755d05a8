"""The client certificate read before connecting: PEM, validity dates (a
small DER walk checked against `cryptography`), and the key pair."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from joblet.client.config import NodeConfig
from joblet.client.credentials import (
    check_certificate,
    check_key_pair,
    first_certificate_der,
    validity,
)
from joblet.client.errors import ClientConfigError

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _pair(not_before: datetime, not_after: datetime, *, rsa_key: bool = False) -> tuple[str, str]:
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if rsa_key
        else ec.generate_private_key(ec.SECP256R1())
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "c")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


def _node(cert: str, key: str) -> NodeConfig:
    return NodeConfig("prod", "h:1", cert=cert, key=key, ca=cert)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2020, 1, 1, tzinfo=UTC), datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)),
        (datetime(2020, 1, 1, tzinfo=UTC), datetime(2050, 1, 1, tzinfo=UTC)),  # GeneralizedTime
    ],
)
def test_validity_dates_read_like_cryptography_reads_them(start: datetime, end: datetime) -> None:
    for rsa_key in (False, True):
        cert_pem, _ = _pair(start, end, rsa_key=rsa_key)
        parsed = x509.load_pem_x509_certificate(cert_pem.encode())
        assert validity(first_certificate_der(cert_pem)) == (
            parsed.not_valid_before_utc,
            parsed.not_valid_after_utc,
        )


def test_expired_and_not_yet_valid_certificates_are_named() -> None:
    expired = _node(*_pair(NOW - timedelta(days=30), NOW - timedelta(days=1)))
    with pytest.raises(ClientConfigError, match="node 'prod': the client certificate expired on"):
        check_certificate(expired, NOW)
    early = _node(*_pair(NOW + timedelta(days=1), NOW + timedelta(days=30)))
    with pytest.raises(ClientConfigError, match=r"not valid before .* clock right"):
        check_certificate(early, NOW)
    check_certificate(_node(*_pair(NOW - timedelta(days=1), NOW + timedelta(days=1))), NOW)


@pytest.mark.parametrize(
    "pem",
    [
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\n!!notbase64\n-----END CERTIFICATE-----\n",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ],
)
def test_an_unreadable_certificate_is_named(pem: str) -> None:
    with pytest.raises(ClientConfigError, match="not a readable PEM certificate"):
        check_certificate(_node(pem, pem), NOW)


def test_a_key_of_another_certificate_is_named() -> None:
    cert, key = _pair(NOW - timedelta(days=1), NOW + timedelta(days=1))
    _, other_key = _pair(NOW - timedelta(days=1), NOW + timedelta(days=1))
    check_key_pair(_node(cert, key))
    with pytest.raises(ClientConfigError, match="private key does not match the client cert"):
        check_key_pair(_node(cert, other_key))
    with pytest.raises(ClientConfigError, match="not a readable unencrypted PEM key"):
        check_key_pair(_node(cert, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"))
