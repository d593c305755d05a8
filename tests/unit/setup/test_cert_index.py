"""`joblet setup` and `joblet certs issue|revoke|list` keep the certificate index."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from joblet.daemon.main import main
from joblet.security.revocation import cert_serial, format_serial, read_crl
from joblet.setup.command import issue_cert, list_certs, render_cert_table, revoke_certs, run_setup


def _serial(pem: str) -> str:
    return format_serial(cert_serial(pem) or 0)


def test_setup_and_issue_record_every_certificate(tmp_path: Path) -> None:
    result = run_setup(tmp_path, "0.0.0.0", 50051, [], force=False)
    nodes = yaml.safe_load(result.files.rnx_config.read_text())["nodes"]
    ui = yaml.safe_load((tmp_path / "config" / "ui-clients.yml").read_text())["nodes"]
    cert, _ = issue_cert(tmp_path, "viewer", "alice")
    entries = list_certs(tmp_path)
    assert [(c.name, c.role, c.serial) for c in entries] == [
        ("admin", "admin", _serial(nodes["default"]["cert"])),
        ("viewer", "viewer", _serial(nodes["viewer"]["cert"])),
        ("ui-admin", "admin", _serial(ui["admin"]["cert"])),
        ("ui-viewer", "viewer", _serial(ui["viewer"]["cert"])),
        ("alice", "viewer", _serial(cert)),
    ]
    assert all(c.not_after.endswith("Z") and not c.revoked_at for c in entries)


def test_revoke_writes_a_crl_of_the_ca_and_list_shows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_setup(tmp_path, "0.0.0.0", 50051, [], force=False)
    cert, _ = issue_cert(tmp_path, "viewer", "alice")
    (hit,) = revoke_certs(tmp_path, "alice", None)
    assert hit.serial == _serial(cert)
    ca = result.files.ca_cert.read_text()
    assert read_crl((tmp_path / "certs" / "crl.pem").read_bytes(), ca) == {cert_serial(cert)}
    table = render_cert_table(list_certs(tmp_path)).splitlines()
    assert table[0].split() == ["NAME", "ROLE", "SERIAL", "NOT-AFTER", "REVOKED-AT"]
    assert table[5].split()[0] == "alice" and table[5].split()[-1] == hit.revoked_at
    assert table[1].split()[-1] == "-"

    assert main(["certs", "list", "--root", str(tmp_path)]) == 0
    assert "alice" in capsys.readouterr().out
    assert main(["certs", "revoke", "--root", str(tmp_path), "--name", "alice"]) == 1
    assert "no valid certificate named 'alice'" in capsys.readouterr().err
    assert main(["certs", "revoke", "--root", str(tmp_path), "--serial", "xyz"]) == 1
    assert "not a hexadecimal number" in capsys.readouterr().err


def test_setup_with_force_starts_a_new_index(tmp_path: Path) -> None:
    run_setup(tmp_path, "0.0.0.0", 50051, [], force=False)
    issue_cert(tmp_path, "viewer", "alice")
    revoke_certs(tmp_path, "alice", None)
    run_setup(tmp_path, "0.0.0.0", 50051, [], force=True)
    assert [c.name for c in list_certs(tmp_path)] == ["admin", "viewer", "ui-admin", "ui-viewer"]
    assert not (tmp_path / "certs" / "crl.pem").exists()


def test_commands_without_a_set_up_root_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["certs", "revoke", "--root", str(tmp_path), "--name", "x"]) == 1
    assert "run `joblet setup` first" in capsys.readouterr().err
    assert main(["certs", "list", "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out.split() == ["NAME", "ROLE", "SERIAL", "NOT-AFTER", "REVOKED-AT"]
