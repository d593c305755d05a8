"""Which client certificates may sign in to the UI, and as what: pure."""

from __future__ import annotations

import pytest
from cryptography import x509

from joblet.security import certs
from joblet.ui.cert_login import CertRefused, identity_of

CA = certs.generate_ca("test CA")


def der(role: str, name: str) -> bytes:
    from cryptography.hazmat.primitives import serialization

    cert_pem, _ = certs.issue_client_cert(CA.cert_pem, CA.key_pem, role, name)
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("role", ["viewer", "admin"])
def test_the_ou_gives_the_role_and_the_cn_the_name(role: str) -> None:
    who = identity_of(der(role, "alice"), frozenset())
    assert (who.role, who.cn) == (role, "alice")


def test_a_node_certificate_cannot_sign_in() -> None:
    with pytest.raises(CertRefused, match="role 'node' cannot sign in"):
        identity_of(der("node", "n1"), frozenset())


def test_a_revoked_certificate_cannot_sign_in() -> None:
    data = der("admin", "bob")
    serial = x509.load_der_x509_certificate(data).serial_number
    with pytest.raises(CertRefused, match="revoked"):
        identity_of(data, frozenset({serial}))
