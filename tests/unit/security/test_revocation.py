"""Writing and reading CRLs, and the certificate index `joblet certs` keeps."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from joblet.config.model import RootLayout
from joblet.security import certs
from joblet.security.revocation import (
    RevocationError,
    Revoked,
    build_crl,
    cert_serial,
    format_serial,
    parse_serial,
    read_crl,
)
from joblet.setup import cert_registry
from joblet.setup.cert_registry import Index, IssuedCert, revoke_in
from joblet.setup.layout import SetupError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def ca() -> certs.CertKeyPair:
    return certs.generate_ca()


def test_a_crl_lists_what_it_revokes_and_is_signed_by_the_ca(ca: certs.CertKeyPair) -> None:
    pem = build_crl(ca.cert_pem, ca.key_pem, [Revoked(7, NOW), Revoked(2**150, NOW)], 3)
    assert read_crl(pem.encode(), ca.cert_pem) == {7, 2**150}
    crl = x509.load_pem_x509_crl(pem.encode())
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 3
    assert crl.get_revoked_certificate_by_serial_number(7).revocation_date_utc == NOW  # type: ignore[union-attr]


def test_an_empty_crl_revokes_nothing(ca: certs.CertKeyPair) -> None:
    assert read_crl(build_crl(ca.cert_pem, ca.key_pem, [], 1).encode(), ca.cert_pem) == frozenset()


def test_a_crl_of_another_ca_is_refused(ca: certs.CertKeyPair) -> None:
    other = certs.generate_ca()  # same subject ("joblet CA"), another key
    pem = build_crl(other.cert_pem, other.key_pem, [Revoked(7, NOW)], 1)
    with pytest.raises(RevocationError, match="signature"):
        read_crl(pem.encode(), ca.cert_pem)
    named = certs.generate_ca("someone else")
    with pytest.raises(RevocationError, match="issued by"):
        read_crl(build_crl(named.cert_pem, named.key_pem, [], 1).encode(), ca.cert_pem)


def test_a_tampered_or_garbled_crl_is_refused(ca: certs.CertKeyPair) -> None:
    pem = build_crl(ca.cert_pem, ca.key_pem, [Revoked(7, NOW)], 1)
    der = bytearray(x509.load_pem_x509_crl(pem.encode()).public_bytes(Encoding.DER))
    der[-10] ^= 0xFF  # inside the signature
    tampered = x509.load_der_x509_crl(bytes(der)).public_bytes(Encoding.PEM)
    with pytest.raises(RevocationError):
        read_crl(tampered, ca.cert_pem)
    with pytest.raises(RevocationError, match="not a PEM"):
        read_crl(b"not a crl", ca.cert_pem)


def test_serials_are_hex_both_ways(ca: certs.CertKeyPair) -> None:
    cert, _ = certs.issue_client_cert(ca.cert_pem, ca.key_pem, "viewer", "v")
    serial = x509.load_pem_x509_certificate(cert.encode()).serial_number
    assert cert_serial(cert) == cert_serial(cert.encode()) == serial
    assert parse_serial(format_serial(serial)) == serial
    assert parse_serial("0x1F") == parse_serial("1f") == parse_serial("1:F") == 31
    for bad in ("", "0x", "12g", "-1"):
        with pytest.raises(ValueError, match="hexadecimal"):
            parse_serial(bad)
    assert cert_serial("garbage") is None


def _entry(name: str, serial: str, revoked_at: str = "") -> IssuedCert:
    return IssuedCert(name, "viewer", serial, "2030-01-01T00:00:00Z", "2026-01-01T00:00:00Z",
                      revoked_at)  # fmt: skip


def test_revoking_by_name_marks_every_valid_one_of_that_name() -> None:
    index = Index((_entry("a", "1"), _entry("b", "2"), _entry("a", "3"), _entry("a", "4", "x")), 5)
    updated, hit = revoke_in(index, "a", None, NOW)
    assert [c.serial for c in hit] == ["1", "3"]
    assert [c.revoked_at for c in updated.certs] == [
        "2026-03-01T12:00:00Z",
        "",
        "2026-03-01T12:00:00Z",
        "x",
    ]
    assert updated.crl_number == 6
    again, none = revoke_in(updated, "a", None, NOW)
    assert none == [] and again.crl_number == 6


def test_revoking_an_unknown_serial_adds_it_and_a_known_one_marks_it() -> None:
    index = Index((_entry("a", "1f"),))
    updated, hit = revoke_in(index, None, 31, NOW)
    assert [c.name for c in hit] == ["a"]
    updated, hit = revoke_in(updated, None, 32, NOW)
    assert hit == [IssuedCert("", "", "20", "", "", "2026-03-01T12:00:00Z")]
    assert len(updated.certs) == 2
    _, hit = revoke_in(updated, None, 31, NOW)  # already revoked: nothing new
    assert hit == []


def test_the_index_and_crl_on_disk(tmp_path: Path, ca: certs.CertKeyPair) -> None:
    layout = RootLayout(tmp_path)
    alice, _ = certs.issue_client_cert(ca.cert_pem, ca.key_pem, "viewer", "alice")
    bob, _ = certs.issue_client_cert(ca.cert_pem, ca.key_pem, "admin", "bob")
    cert_registry.record_issued(layout, [cert_registry.entry_for(alice, "viewer", "alice")])
    cert_registry.record_issued(layout, [cert_registry.entry_for(bob, "admin", "bob")])
    assert [c.name for c in cert_registry.load_index(layout).certs] == ["alice", "bob"]
    assert stat.S_IMODE((tmp_path / "certs" / "index.json").stat().st_mode) == 0o600

    (hit,) = cert_registry.revoke(layout, ca.cert_pem, ca.key_pem, name="alice", now=NOW)
    assert hit.serial == format_serial(cert_serial(alice) or 0)
    assert read_crl(layout.crl.read_bytes(), ca.cert_pem) == {cert_serial(alice)}
    cert_registry.revoke(
        layout, ca.cert_pem, ca.key_pem, serial=format_serial(cert_serial(bob) or 0)
    )
    assert read_crl(layout.crl.read_bytes(), ca.cert_pem) == {cert_serial(alice), cert_serial(bob)}
    saved = json.loads((tmp_path / "certs" / "index.json").read_text())
    assert (
        saved["crlNumber"] == 2 and saved["certificates"][0]["revokedAt"] == "2026-03-01T12:00:00Z"
    )

    with pytest.raises(SetupError, match="no valid certificate named 'alice'"):
        cert_registry.revoke(layout, ca.cert_pem, ca.key_pem, name="alice")
    with pytest.raises(SetupError, match="exactly one"):
        cert_registry.revoke(layout, ca.cert_pem, ca.key_pem)

    cert_registry.record_issued(layout, [], fresh=True)  # a new CA: nothing of the old
    assert cert_registry.load_index(layout).certs == () and not layout.crl.exists()


def test_a_broken_index_is_a_clear_error(tmp_path: Path) -> None:
    layout = RootLayout(tmp_path)
    layout.certs.mkdir()
    (layout.certs / "index.json").write_text("{not json")
    with pytest.raises(SetupError, match="not a valid certificate index"):
        cert_registry.load_index(layout)


def test_an_old_revocation_date_is_kept(ca: certs.CertKeyPair) -> None:
    earlier = NOW - timedelta(days=3)
    pem = build_crl(ca.cert_pem, ca.key_pem, [Revoked(9, earlier)], 1, now=NOW)
    crl = x509.load_pem_x509_crl(pem.encode())
    assert crl.last_update_utc == NOW
    assert crl.get_revoked_certificate_by_serial_number(9).revocation_date_utc == earlier  # type: ignore[union-attr]
