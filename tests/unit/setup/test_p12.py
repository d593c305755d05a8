"""`joblet certs issue --p12`: the bundle, its file and its password."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from joblet.daemon.main import EXIT_USAGE, _issue_p12
from joblet.security import certs
from joblet.setup.p12 import P12Error, bundle, read_password, write_bundle

CA = certs.generate_ca("test CA")


def test_a_bundle_holds_the_certificate_its_key_and_the_ca() -> None:
    cert, key = certs.issue_client_cert(CA.cert_pem, CA.key_pem, "viewer", "alice")
    data = bundle("alice", cert, key, CA.cert_pem, b"pw")
    loaded_key, loaded, extra = pkcs12.load_key_and_certificates(data, b"pw")
    assert loaded_key is not None and loaded is not None
    assert loaded.subject.rfc4514_string() == "CN=alice,OU=viewer,O=joblet"
    assert [c.subject for c in extra] == [loaded.issuer]
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(data, b"other")
    plain = bundle("alice", cert, key, CA.cert_pem, None)
    assert pkcs12.load_key_and_certificates(plain, None)[0] is not None


def test_the_file_is_0600_and_never_written_over(tmp_path: Path) -> None:
    path = tmp_path / "a.p12"
    write_bundle(path, b"bytes")
    assert path.stat().st_mode & 0o777 == 0o600 and path.read_bytes() == b"bytes"
    with pytest.raises(P12Error, match="exists already"):
        write_bundle(path, b"other")
    assert path.read_bytes() == b"bytes"


def test_the_password_is_the_first_line_of_its_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_bytes(b"s3cret\nignored\n")
    assert read_password(secret) == b"s3cret"
    assert read_password(None) is None
    secret.write_bytes(b"\n")
    with pytest.raises(P12Error, match="first line"):
        read_password(secret)
    with pytest.raises(P12Error, match="cannot read"):
        read_password(tmp_path / "missing")


def test_a_node_certificate_is_not_exported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argparse.Namespace(role="node", name="n1", p12=tmp_path / "n.p12",
                              p12_password_file=None, root=tmp_path, address=None)  # fmt: skip
    assert _issue_p12(args) == EXIT_USAGE
    assert "--p12 is for admin and viewer certificates" in capsys.readouterr().err
    assert not (tmp_path / "n.p12").exists()
