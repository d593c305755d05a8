"""Connection problems through the real rnx against a real daemon: each gets
a one-line message naming its cause, and one malformed node in the config
does not break the others."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from security.certmint import mint_client

from .conftest import RunningDaemon


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.fixture
def config(daemon: RunningDaemon, tmp_path: Path, silent_port: int) -> Path:
    """A config whose nodes each fail their own way, but 'default'."""
    return _config(daemon, tmp_path, silent_port)


def _config(daemon: RunningDaemon, tmp_path: Path, silent_port: int) -> Path:
    good = daemon.node("default")
    config = daemon.root / "config"
    ca_cert, ca_key = (config / "ca-cert.pem").read_text(), (config / "ca-key.pem").read_text()
    now = datetime.now(UTC)
    expired = mint_client(ca_cert, ca_key, valid_from=now - timedelta(days=9),
                          valid_until=now - timedelta(days=1))  # fmt: skip
    future = mint_client(ca_cert, ca_key, valid_from=now + timedelta(days=1),
                         valid_until=now + timedelta(days=9))  # fmt: skip
    _, other_key = mint_client(ca_cert, ca_key)
    nodes: dict[str, Any] = {
        "default": good,
        "expired": {**good, "cert": expired[0], "key": expired[1]},
        "future": {**good, "cert": future[0], "key": future[1]},
        "mismatch": {**good, "key": other_key},
        "badpem": {
            **good,
            "cert": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        },
        "dns": {**good, "address": "no-such-host.invalid:50051"},
        "silent": {**good, "address": f"127.0.0.1:{silent_port}"},
        "broken": 3,
    }
    path = tmp_path / "rnx-config.yml"
    path.write_text(yaml.safe_dump({"nodes": nodes}))
    path.chmod(0o600)
    return path


def _rnx(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "joblet.cli.main", "--config", str(config), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("node", "code", "cause"),
    [
        ("expired", 2, "node 'expired': the client certificate expired on"),
        ("future", 2, "node 'future': the client certificate is not valid before"),
        ("badpem", 2, "node 'badpem': the client certificate is not a readable PEM"),
        ("mismatch", 2, "node 'mismatch': the private key does not match the client certificate"),
        ("dns", 1, "cannot resolve the host name"),
        ("broken", 2, "node 'broken': must be a mapping"),
    ],
)
def test_each_cause_has_its_own_line(config: Path, node: str, code: int, cause: str) -> None:
    res = _rnx(config, "--node", node, "list")
    assert res.returncode == code, res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert cause in res.stderr
    # The malformed and unusable nodes do not keep the good one from working.
    assert _rnx(config, "list").returncode == 0


def test_a_server_that_never_answers_times_out(config: Path) -> None:
    started = time.monotonic()
    res = _rnx(config, "--node", "silent", "--timeout", "1s", "list")
    took = time.monotonic() - started
    assert res.returncode == 1, res.stderr
    assert "did not answer within 1s" in res.stderr and res.stderr.count("\n") == 1
    assert took < 20  # bounded by --timeout, not grpc's own minutes


def test_a_world_readable_config_with_a_key_is_warned_about(config: Path) -> None:
    config.chmod(0o644)
    res = _rnx(config, "list")
    assert res.returncode == 0
    assert "is readable by every user and holds the private key" in res.stderr
    assert f"chmod 600 {config}" in res.stderr
    config.chmod(0o600)
    assert _rnx(config, "list").stderr == ""


def test_nodes_lists_the_unusable_ones(config: Path) -> None:
    res = _rnx(config, "nodes", "--no-probe")
    assert res.returncode == 0
    broken = next(line for line in res.stdout.splitlines() if " broken " in line)
    assert "unusable: " in broken and "must be a mapping" in broken


def test_nodes_asks_each_node_and_names_each_failure(config: Path) -> None:
    started = time.monotonic()
    res = _rnx(config, "nodes", "--node-timeout", "2s")
    assert time.monotonic() - started < 20  # the silent node costs 2 s, not 10
    assert res.returncode == 1
    reachable = {line.split()[1] for line in res.stdout.splitlines() if " yes " in line}
    assert reachable == {"default"}
    failed = {line.split(":")[2].split()[-1] for line in res.stderr.splitlines()}
    assert failed == {"expired", "future", "mismatch", "badpem", "dns", "silent", "broken"}
    assert "node silent: joblet at 127.0.0.1:" in res.stderr
    assert "did not answer within 2s" in res.stderr
