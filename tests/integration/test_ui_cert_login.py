"""Sign-in to the web UI with a client certificate, over real TLS: `joblet
certs issue --p12` exports one; the UI's handshake asks for an optional
client certificate from our CA and GET /login/cert turns it into a session
whose role is the certificate's OU. Another CA's certificate fails the
handshake; node and revoked certificates are refused."""

from __future__ import annotations

import http.client
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from joblet.security import certs
from joblet.setup import command

from .conftest import ROOT_NEEDED, RunningDaemon, launch_daemon
from .ui_support import UiProcess, start_ui

pytestmark = [pytest.mark.integration, pytest.mark.privileged]


@dataclass
class TlsWorld:
    daemon: RunningDaemon
    ui: UiProcess
    tmp: Path
    ca: str


def joblet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "joblet.daemon.main", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def issue_p12(world_root: Path, tmp: Path, role: str, name: str, password: bytes) -> Path:
    secret, bundle = tmp / f"{name}.pw", tmp / f"{name}.p12"
    secret.write_bytes(password + b"\n")
    done = joblet("certs", "issue", "--root", str(world_root), "--role", role, "--name", name,
                  "--p12", str(bundle), "--p12-password-file", str(secret))  # fmt: skip
    assert done.returncode == 0, done.stderr
    return bundle


def issue_pem(root: Path, tmp: Path, role: str, name: str) -> tuple[Path, Path]:
    """A certificate of the daemon's CA, issued in this process (as the CLI does)."""
    if role == "node":
        cert, key = command.issue_cert(root, role, name)
    else:
        entry = command.issue_node_entry(root, role, name, "127.0.0.1:1")
        cert, key = entry.cert, entry.key
    return pem_files(tmp, name, cert.encode(), key.encode())


def pem_files(tmp: Path, name: str, cert_pem: bytes, key_pem: bytes) -> tuple[Path, Path]:
    cert, key = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    return cert, key


def from_p12(tmp: Path, bundle: Path, password: bytes) -> tuple[Path, Path]:
    key, cert, _ = pkcs12.load_key_and_certificates(bundle.read_bytes(), password)
    assert key is not None and cert is not None
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip
    return pem_files(tmp, bundle.stem, cert.public_bytes(serialization.Encoding.PEM), key_pem)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsWorld]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    tmp = tmp_path_factory.mktemp("ui-cert")
    daemon = launch_daemon(tmp / "d")
    try:
        # revoked before the UI starts: it reads the CRL while still root
        issue_pem(daemon.root, tmp, "viewer", "mallory")
        command.revoke_certs(daemon.root, "mallory", None)
        config = yaml.safe_load(daemon.config_path.read_text())
        config["ui"] = {"tls": True}
        path = tmp / "ui-config.yml"
        path.write_text(yaml.safe_dump(config))
        ui = start_ui(daemon, config=path)
        try:
            yield TlsWorld(daemon, ui, tmp, config["security"]["caCert"])
        finally:
            ui.stop()
    finally:
        daemon.stop()


def get(world: TlsWorld, path: str, client: tuple[Path, Path] | None,
        cookie: str = "") -> tuple[int, str, str]:  # fmt: skip
    """(status, Set-Cookie or Location, body) of a GET over TLS."""
    context = ssl.create_default_context(cadata=world.ca)
    context.check_hostname = False  # the server certificate names the node, not 127.0.0.1
    if client is not None:
        context.load_cert_chain(*client)
    conn = http.client.HTTPSConnection("127.0.0.1", world.ui.port, context=context, timeout=30)
    try:
        conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = conn.getresponse()
        body = response.read().decode()
        extra = response.getheader("Set-Cookie") or response.getheader("Location") or ""
        return response.status, extra, body
    finally:
        conn.close()


def test_a_p12_bundle_is_private_encrypted_and_signs_in_as_a_viewer(world: TlsWorld) -> None:
    bundle = issue_p12(world.daemon.root, world.tmp, "viewer", "cert-viewer", b"s3cret")
    assert bundle.stat().st_mode & 0o777 == 0o600
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(bundle.read_bytes(), b"wrong")
    status, cookie, _ = get(world, "/login/cert", from_p12(world.tmp, bundle, b"s3cret"))
    assert status == 303 and "HttpOnly" in cookie and "; Secure" in cookie
    status, _, page = get(world, "/jobs", None, cookie.split(";", 1)[0])
    assert status == 200 and "cert-viewer (viewer)" in page


def test_an_admin_certificate_signs_in_as_admin(world: TlsWorld) -> None:
    client = issue_pem(world.daemon.root, world.tmp, "admin", "cert-admin")
    status, cookie, _ = get(world, "/login/cert", client)
    assert status == 303
    status, _, page = get(world, "/jobs", None, cookie.split(";", 1)[0])
    assert status == 200 and "cert-admin (admin)" in page and 'href="/run"' in page


def test_without_a_certificate_there_is_no_session(world: TlsWorld) -> None:
    status, _, page = get(world, "/login/cert", None)
    assert status == 401 and "no client certificate was presented" in page
    assert 'id="cert-login"' in get(world, "/login", None)[2]


def test_a_node_certificate_is_refused(world: TlsWorld) -> None:
    client = issue_pem(world.daemon.root, world.tmp, "node", "node-x")
    status, extra, page = get(world, "/login/cert", client)
    assert status == 403 and "role &#39;node&#39; cannot sign in" in page
    assert "joblet_session" not in extra


def test_a_revoked_certificate_is_refused(world: TlsWorld) -> None:
    client = (world.tmp / "mallory.crt", world.tmp / "mallory.key")
    status, _, page = get(world, "/login/cert", client)
    assert status == 403 and "has been revoked" in page


def test_a_certificate_of_another_ca_fails_the_handshake(world: TlsWorld) -> None:
    other = certs.generate_ca("another CA")
    cert, key = certs.issue_client_cert(other.cert_pem, other.key_pem, "admin", "intruder")
    client = pem_files(world.tmp, "intruder", cert.encode(), key.encode())
    with pytest.raises((ssl.SSLError, ConnectionError)):
        get(world, "/login/cert", client)
