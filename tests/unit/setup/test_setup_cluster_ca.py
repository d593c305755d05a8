"""`joblet setup --ca-cert --ca-key`: a node whose certificates come from
another node's CA, and the CAs it refuses before writing anything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from joblet.config.loader import load_daemon_config
from joblet.security import certs
from joblet.security.roles import Role
from joblet.setup.command import read_ca, run_setup
from joblet.setup.layout import SetupError


def _cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def _write(tmp_path: Path, pair: certs.CertKeyPair, tag: str) -> tuple[Path, Path]:
    cert, key = tmp_path / f"{tag}-cert.pem", tmp_path / f"{tag}-key.pem"
    cert.write_text(pair.cert_pem)
    key.write_text(pair.key_pem)
    return cert, key


def test_a_second_node_issues_from_the_first_nodes_ca(tmp_path: Path) -> None:
    first = run_setup(tmp_path / "one", "127.0.0.1", 50051, [], force=False)
    ca = read_ca(first.files.ca_cert, first.files.ca_key)
    second = run_setup(tmp_path / "two", "127.0.0.1", 50052, [], force=False, ca=ca)
    assert second.files.ca_cert.read_text() == first.files.ca_cert.read_text()
    assert second.files.ca_key.read_text() == first.files.ca_key.read_text()
    issuer = _cert(first.files.ca_cert.read_text())
    server = load_daemon_config(second.files.daemon_config).security.server_cert
    _cert(server).verify_directly_issued_by(issuer)


def test_without_a_ca_each_node_makes_its_own(tmp_path: Path) -> None:
    one = run_setup(tmp_path / "one", "127.0.0.1", 50051, [], force=False)
    two = run_setup(tmp_path / "two", "127.0.0.1", 50052, [], force=False)
    assert one.files.ca_cert.read_text() != two.files.ca_cert.read_text()


def test_a_key_of_another_ca_is_refused(tmp_path: Path) -> None:
    a, b = certs.generate_ca(), certs.generate_ca()
    cert, _ = _write(tmp_path, a, "a")
    _, key = _write(tmp_path, b, "b")
    with pytest.raises(SetupError, match="the CA key does not belong to the CA certificate"):
        read_ca(cert, key)


def test_a_leaf_certificate_is_no_ca(tmp_path: Path) -> None:
    ca = certs.generate_ca()
    leaf = certs.CertKeyPair(*certs.issue_client_cert(ca.cert_pem, ca.key_pem, Role.ADMIN, "x"))
    cert, key = _write(tmp_path, leaf, "leaf")
    with pytest.raises(SetupError, match="is not a CA's"):
        read_ca(cert, key)


def test_an_expired_ca_is_refused() -> None:
    old = certs.generate_ca(now=datetime.now(UTC) - timedelta(days=4000))
    with pytest.raises(ValueError, match="not valid now"):
        certs.check_ca(old.cert_pem, old.key_pem)


def test_missing_and_unreadable_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="does not exist"):
        read_ca(tmp_path / "nope.pem", tmp_path / "nope-key.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"\x30\x82\xff\xfe")
    ca = certs.generate_ca()
    _, key = _write(tmp_path, ca, "ca")
    with pytest.raises(SetupError, match="--ca-cert"):
        read_ca(garbage, key)
