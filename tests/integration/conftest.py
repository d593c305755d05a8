"""A real daemon per test module: real TLS, a temp root, a free port, its own
cgroup parent, started as `joblet serve` in a child process."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from joblet.api import joblet_pb2_grpc as pb_grpc

pytestmark = pytest.mark.integration

ROOT_NEEDED = "needs root (namespaces, cgroups, mounts)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {proc.returncode}:\n{log.read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"daemon did not listen on {port}:\n{log.read_text()}")


@dataclass
class RunningDaemon:
    root: Path
    port: int
    config_path: Path
    rnx_config: Path
    proc: subprocess.Popen[bytes]
    log_path: Path

    def node(self, name: str = "default") -> dict[str, str]:
        nodes: dict[str, dict[str, str]] = yaml.safe_load(self.rnx_config.read_text())["nodes"]
        return nodes[name]

    def channel(self, node: str = "default") -> grpc.Channel:
        entry = self.node(node)
        creds = grpc.ssl_channel_credentials(
            root_certificates=entry["ca"].encode(),
            private_key=entry["key"].encode(),
            certificate_chain=entry["cert"].encode(),
        )
        return grpc.secure_channel(f"127.0.0.1:{self.port}", creds)

    def jobs(self, node: str = "default") -> pb_grpc.JobServiceStub:
        return pb_grpc.JobServiceStub(self.channel(node))

    def rnx(
        self, *args: str, timeout: float = 60, node: str = "default"
    ) -> subprocess.CompletedProcess[bytes]:
        cmd = [sys.executable, "-m", "joblet.cli.main", "--config", str(self.rnx_config)]
        if node != "default":
            cmd += ["--node", node]
        return subprocess.run([*cmd, *args], capture_output=True, timeout=timeout, check=False)

    def kill9(self) -> None:
        """SIGKILL the daemon process alone (helpers follow it; the launcher stays)."""
        self.proc.kill()
        self.proc.wait()

    def restart(self) -> None:
        """Start `joblet serve` again on the same root and config."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "joblet.daemon.main", "serve",
                 "--config", str(self.config_path), "--log-level", "DEBUG"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        _wait_for_port(self.port, self.proc, self.log_path)

    def launcher_pid(self) -> int:
        return int((self.root / "run" / "launcher" / "launcher.pid").read_text())

    def stop_daemon_only(self) -> None:
        """SIGTERM the daemon (a clean shutdown); the launcher stays."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _stop_launcher(self.root)
        raw = yaml.safe_load(self.config_path.read_text())
        _remove_cgroup_parent(raw["cgroup"]["parent"])
        _remove_networks(self.root, raw)


def _remove_networks(root: Path, raw: dict[str, Any]) -> None:
    """Drop the test daemon's bridges and nftables table."""
    from joblet.network.config import parse_network_config
    from joblet.network.manager import NetworkManager

    try:
        node_id = (root / "state" / "node-id").read_text().strip()
    except FileNotFoundError:
        return
    config = parse_network_config(raw.get("network"))
    NetworkManager(config, str(root / "network"), node_id).remove_all()


def _remove_cgroup_parent(parent: str) -> None:
    """rmdir the test daemon's (by now empty) cgroup parent in every hierarchy."""
    for top in Path("/sys/fs/cgroup").glob(f"*/{parent}"):
        for directory in sorted(top.glob("**/"), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                directory.rmdir()


def _stop_launcher(root: Path) -> None:
    """The launcher outlives the daemon on purpose; tests end it themselves."""
    pidfile = root / "run" / "launcher" / "launcher.pid"
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def _free_octet() -> int:
    taken = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=False
    ).stdout
    free = [n for n in range(256) if f"10.201.{n}." not in taken and f"10.202.{n}." not in taken]
    return random.choice(free)


def write_test_config(
    root: Path, port: int, sections: Mapping[str, Mapping[str, Any]] | None = None
) -> Path:
    """`joblet setup` into `root`, then the test daemon's own cgroup parent and
    network ranges, and `sections` merged over the written config."""
    setup = ["setup", "--root", str(root), "--address", "127.0.0.1", "--port", str(port)]
    subprocess.run(
        [sys.executable, "-m", "joblet.daemon.main", *setup], check=True, capture_output=True
    )
    config_path = root / "config" / "joblet-config.yml"
    config = yaml.safe_load(config_path.read_text())
    config.setdefault("cgroup", {})["parent"] = f"joblet-test-{uuid.uuid4().hex[:8]}"
    # Daemons of one test run may live side by side: each gets its own ranges,
    # away from any address already on the host (a daemon refuses overlaps).
    octet = _free_octet()
    config.setdefault("network", {}).update(
        bridgeCidr=f"10.201.{octet}.0/24", isolatedPool=f"10.202.{octet}.0/24"
    )
    for name, values in (sections or {}).items():
        section = config.setdefault(name, {})
        for key, value in values.items():
            if isinstance(value, Mapping) and isinstance(section.get(key), dict):
                section[key].update(value)
            else:
                section[key] = value
    config_path.write_text(yaml.safe_dump(config))
    return config_path


def start_daemon(tmp: Path, **joblet_overrides: Any) -> RunningDaemon:
    root = tmp / "root"
    port = free_port()
    config_path = write_test_config(root, port, {"joblet": joblet_overrides})
    log_path = tmp / "daemon.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "joblet.daemon.main",
                "serve",
                "--config",
                str(config_path),
                "--log-level",
                "DEBUG",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    daemon = RunningDaemon(
        root, port, config_path, root / "config" / "rnx-config.yml", proc, log_path
    )
    try:
        _wait_for_port(port, proc, log_path)
    except BaseException:
        daemon.stop()
        raise
    return daemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    running = start_daemon(tmp_path_factory.mktemp("daemon"))
    yield running
    running.stop()


@pytest.fixture
def make_daemon(tmp_path: Path) -> Iterator[Callable[..., RunningDaemon]]:
    """A daemon with config overrides, for tests that need their own settings."""
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    started: list[RunningDaemon] = []

    def make(**overrides: Any) -> RunningDaemon:
        running = start_daemon(tmp_path / f"d{len(started)}", **overrides)
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


def wait_status(
    stub: pb_grpc.JobServiceStub, job_id: str, statuses: set[str], timeout: float = 20
) -> Any:
    from joblet.api import joblet_pb2 as pb

    deadline = time.monotonic() + timeout
    while True:
        res = stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id))
        if res.status in statuses:
            return res
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} stayed {res.status}, wanted {statuses}")
        time.sleep(0.05)
