from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from joblet.security import certs


def _load(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


@pytest.fixture(scope="module")
def ca() -> certs.CertKeyPair:
    return certs.generate_ca()


def test_ca_is_a_ca_that_signs_certificates(ca: certs.CertKeyPair) -> None:
    cert = _load(ca.cert_pem)
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert basic.ca and basic.path_length == 0
    assert usage.key_cert_sign and usage.crl_sign
    assert cert.subject == cert.issuer
    cert.verify_directly_issued_by(cert)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc >= timedelta(days=3650)
    assert "BEGIN PRIVATE KEY" in ca.key_pem


def test_server_cert_sans_split_dns_and_ip_and_add_localhost(ca: certs.CertKeyPair) -> None:
    pair = certs.issue_server_cert(ca.cert_pem, ca.key_pem, ["node1.example", "10.0.0.7", "::1"])
    cert = _load(pair.cert_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["node1.example", "localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.0.0.7"),
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("127.0.0.1"),
    ]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(_load(ca.cert_pem))


def test_server_san_names_drop_blanks_and_duplicates() -> None:
    assert certs.server_san_names(["", " localhost ", "a.example", "a.example"]) == [
        "localhost",
        "a.example",
        "127.0.0.1",
    ]


@pytest.mark.parametrize("bad", ["has space", "nul\0byte", "a/b", "ünicode.example"])
def test_server_names_that_are_not_hosts_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="server name"):
        certs.server_san_names([bad])


def test_client_cert_carries_role_in_ou_and_name_in_cn(ca: certs.CertKeyPair) -> None:
    cert_pem, key_pem = certs.issue_client_cert(ca.cert_pem, ca.key_pem, "viewer", "alice")
    cert = _load(cert_pem)
    ou = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert [a.value for a in ou] == ["viewer"]
    assert [a.value for a in cn] == ["alice"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    cert.verify_directly_issued_by(_load(ca.cert_pem))
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert key.public_key().public_numbers() == public.public_numbers()


def test_leaf_validity_is_years_but_never_past_the_ca() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    ca = certs.generate_ca(now=now)
    leaf = _load(certs.issue_client_cert(ca.cert_pem, ca.key_pem, "admin", "bob", now=now)[0])
    assert leaf.not_valid_before_utc <= now
    assert timedelta(days=2 * 365) <= leaf.not_valid_after_utc - now <= timedelta(days=5 * 365)
    late = now + timedelta(days=3000)
    late_leaf = certs.issue_client_cert(ca.cert_pem, ca.key_pem, "admin", "bob", now=late)[0]
    assert _load(late_leaf).not_valid_after_utc == _load(ca.cert_pem).not_valid_after_utc


@pytest.mark.parametrize(
    ("role", "name", "message"),
    [
        ("admin", "", "name must not be empty"),
        ("", "x", "role must not be empty"),
        ("admin", "x" * 65, "longer than 64"),
        ("admin", "a\0b", "NUL"),
    ],
)
def test_bad_client_subject_is_rejected(
    ca: certs.CertKeyPair, role: str, name: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        certs.issue_client_cert(ca.cert_pem, ca.key_pem, role, name)


def test_a_non_ec_ca_key_is_refused(ca: certs.CertKeyPair) -> None:
    other = (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(ValueError, match="not an EC private key"):
        certs.issue_client_cert(ca.cert_pem, other, "admin", "x")
