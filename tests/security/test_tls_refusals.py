"""Who a real daemon refuses, and with which code.

A certificate the TLS handshake rejects (none, another CA's, expired) never
reaches an RPC: the client sees UNAVAILABLE with the handshake's failure. A
certificate the handshake accepts but whose OU is no role gets
PERMISSION_DENIED on every call; a revoked one UNAUTHENTICATED, "certificate
revoked", once the daemon has reloaded its CRL (no restart). Each test first
shows the same channel settings with a good certificate do work, so a refusal
is the certificate's doing, not a daemon that is down.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from integration.conftest import RunningDaemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .certmint import mint_ca, mint_client

pytestmark = pytest.mark.integration

RELOAD_S = 2.0  # the most a revocation may take to reach new calls


def _ca(daemon: RunningDaemon) -> tuple[str, str]:
    config = daemon.root / "config"
    return (config / "ca-cert.pem").read_text(), (config / "ca-key.pem").read_text()


def _list_jobs(daemon: RunningDaemon, creds: grpc.ChannelCredentials) -> grpc.RpcError | None:
    """The error ListJobs ends with using `creds`, None when it succeeds."""
    with grpc.secure_channel(f"127.0.0.1:{daemon.port}", creds) as channel:
        try:
            pb_grpc.JobServiceStub(channel).ListJobs(pb.EmptyRequest(), timeout=10)
        except grpc.RpcError as exc:
            return exc
    return None


def _creds(
    daemon: RunningDaemon, cert: str | None = None, key: str | None = None
) -> grpc.ChannelCredentials:
    ca_cert, _ = _ca(daemon)
    if cert is None:
        return grpc.ssl_channel_credentials(root_certificates=ca_cert.encode())
    assert key is not None
    return grpc.ssl_channel_credentials(ca_cert.encode(), key.encode(), cert.encode())


def _assert_refused(error: grpc.RpcError | None, code: grpc.StatusCode) -> str:
    assert error is not None, "the call went through"
    assert error.code() == code, f"{error.code()}: {error.details()}"
    return str(error.details())


def test_a_good_certificate_works(daemon: RunningDaemon) -> None:
    node = daemon.node("viewer")
    assert _list_jobs(daemon, _creds(daemon, node["cert"], node["key"])) is None


def test_no_client_certificate_fails_the_handshake(daemon: RunningDaemon) -> None:
    _assert_refused(_list_jobs(daemon, _creds(daemon)), grpc.StatusCode.UNAVAILABLE)


def test_a_certificate_of_another_ca_fails_the_handshake(daemon: RunningDaemon) -> None:
    cert, key = mint_client(*mint_ca(), ou="admin", cn="admin")
    _assert_refused(_list_jobs(daemon, _creds(daemon, cert, key)), grpc.StatusCode.UNAVAILABLE)


def test_an_expired_certificate_fails_the_handshake(daemon: RunningDaemon) -> None:
    now = datetime.now(UTC)
    cert, key = mint_client(
        *_ca(daemon), ou="admin", cn="admin",
        valid_from=now - timedelta(days=10), valid_until=now - timedelta(days=1),
    )  # fmt: skip
    _assert_refused(_list_jobs(daemon, _creds(daemon, cert, key)), grpc.StatusCode.UNAVAILABLE)
    # The same CA, still valid: the expiry alone was refused.
    cert, key = mint_client(*_ca(daemon), ou="admin", cn="admin")
    assert _list_jobs(daemon, _creds(daemon, cert, key)) is None


@pytest.mark.parametrize("ou", ["operator", "Admin", "admin "])
def test_a_certificate_without_a_known_role_is_permission_denied(
    daemon: RunningDaemon, ou: str
) -> None:
    cert, key = mint_client(*_ca(daemon), ou=ou, cn="mallory")
    details = _assert_refused(
        _list_jobs(daemon, _creds(daemon, cert, key)), grpc.StatusCode.PERMISSION_DENIED
    )
    assert "no known role" in details


def _joblet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "joblet.daemon.main", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _issue(daemon: RunningDaemon, role: str, name: str) -> tuple[str, str]:
    done = _joblet("certs", "issue", "--root", str(daemon.root), "--role", role, "--name", name)
    assert done.returncode == 0, done.stderr
    import yaml

    entry = yaml.safe_load(done.stdout)[name]
    return str(entry["cert"]), str(entry["key"])


def test_a_revoked_certificate_is_refused_within_two_seconds_without_a_restart(
    daemon: RunningDaemon,
) -> None:
    cert, key = _issue(daemon, "viewer", "carol")
    carol = _creds(daemon, cert, key)
    admin = _creds(daemon, daemon.node()["cert"], daemon.node()["key"])
    assert _list_jobs(daemon, carol) is None
    pid = daemon.proc.pid

    done = _joblet("certs", "revoke", "--root", str(daemon.root), "--name", "carol")
    assert done.returncode == 0, done.stderr
    revoked_at = time.monotonic()
    while (error := _list_jobs(daemon, carol)) is None:
        assert time.monotonic() - revoked_at < RELOAD_S, "still served after 2 s"
        time.sleep(0.05)
    assert _assert_refused(error, grpc.StatusCode.UNAUTHENTICATED) == "certificate revoked"
    assert _list_jobs(daemon, admin) is None  # others are served as before
    assert daemon.proc.poll() is None and daemon.proc.pid == pid  # no restart

    listing = _joblet("certs", "list", "--root", str(daemon.root))
    (row,) = [line for line in listing.stdout.splitlines() if line.startswith("carol ")]
    assert row.split()[1] == "viewer" and row.split()[-1].endswith("Z")
