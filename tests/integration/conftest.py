"""A real daemon per test module: real TLS, a temp root, its own cgroup
parent, started as `joblet serve` in a child process inside a network
namespace of its own (netns.py), reached through a relay on the host's
loopback. Its bridges, veths and nftables table never touch the host's and go
with the namespace."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.config.model import RootLayout
from joblet.daemon.teardown import unmount_below
from joblet.jobs.workspace_mount import release_jobs_dir
from joblet.network.addressing import daemon_prefix
from joblet.network.firewall import table_name
from joblet.resources.ownership import forget_owner
from joblet.setup.command import run_setup

from .netns import Netns, Relay, in_netns

pytestmark = pytest.mark.integration

ROOT_NEEDED = "needs root (namespaces, cgroups, mounts)"


@dataclass
class RunningDaemon:
    root: Path
    port: int
    config_path: Path
    rnx_config: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    world: Netns  # the network namespace `joblet serve` runs in
    relay: Relay
    env: Mapping[str, str] | None = None
    module: str = "joblet.daemon.main"  # what `python -m` runs as the daemon
    stopped: bool = False  # ended by the test (an exit otherwise is a crash)

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
        return subprocess.run(
            [*cmd, *args], capture_output=True, timeout=timeout, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def kill9(self) -> None:
        """SIGKILL the daemon process alone (helpers follow it; the launcher stays)."""
        self.stopped = True
        self.proc.kill()
        self.proc.wait()

    def restart(self) -> None:
        """Start `joblet serve` again on the same root, config and namespace."""
        self.proc = _serve(self.world, self.config_path, self.log_path, self.env, self.module)
        self.stopped = False
        self.wait_listening()

    def wait_listening(self) -> None:
        _wait_listening(self.world, self.port, self.proc, self.log_path)

    def launcher_pid(self) -> int:
        return int((self.root / "run" / "launcher" / "launcher.pid").read_text())

    def cgroup_parent(self) -> str:
        return str(yaml.safe_load(self.config_path.read_text())["cgroup"]["parent"])

    def workspace(self, job_id: str) -> Path:
        """A job's workspace on the host: its subvolume where workspaces are
        size-capped (joblet.workspaces), else the directory in its job dir."""
        capped = self.root / "workspaces" / job_id
        return capped if capped.is_dir() else self.root / "jobs" / job_id / "work"

    def prefix(self) -> str:
        """The first characters of every interface this daemon makes."""
        return daemon_prefix((self.root / "state" / "node-id").read_text().strip())

    def table(self) -> str:
        """The daemon's nftables table."""
        return table_name((self.root / "state" / "node-id").read_text().strip(), self.prefix())

    def stop_daemon_only(self) -> None:
        """SIGTERM the daemon (a clean shutdown). With no job running (or
        `joblet.stopJobsOnShutdown`, which stops them first) its launcher,
        bridges and cgroups go; running jobs stay with the launcher for the
        next start. Files under the root stay."""
        self.stopped = True
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """Daemon, launcher, leftover job processes and cgroups, relay, then
        the namespace with whatever network the daemon made in it. Safe to
        call twice."""
        if self.proc.poll() is not None and not self.stopped:
            # A daemon that died on its own says nothing in its log: say how.
            with self.log_path.open("a") as log:
                log.write(f"\n[test harness] the daemon had exited with {self.proc.returncode}\n")
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _stop_launcher(self.root)
        release_jobs_dir(RootLayout(self.root))  # what a killed daemon left mounted
        _clear_cgroup_parent(self.cgroup_parent())
        forget_owner(self.cgroup_parent())  # what a killed daemon left on /run
        # Memory volumes stay mounted after a stop by design, and a killed
        # daemon leaves its other mounts: none may outlive the test.
        unmount_below(self.root)
        self.relay.close()
        self.world.close()


def _serve(
    world: Netns,
    config_path: Path,
    log_path: Path,
    env: Mapping[str, str] | None,
    module: str = "joblet.daemon.main",
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", module, "serve", "--config", str(config_path)]
    with log_path.open("ab") as log:
        return subprocess.Popen(
            ["nsenter", f"--net={world.netns}", *argv, "--log-level", "DEBUG"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )  # fmt: skip


def _wait_listening(world: Netns, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until the daemon accepts on its port inside `world` (one thread there)."""

    def wait() -> None:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {proc.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"daemon did not listen on {port}:\n{log.read_text()}")
            time.sleep(0.05)

    in_netns(world.netns, wait)


def _clear_cgroup_parent(parent: str) -> None:
    """Kill what a test left in the daemon's cgroup parent (jobs outlive the
    daemon on purpose), then rmdir it bottom-up in every hierarchy."""
    for top in Path("/sys/fs/cgroup").glob(f"*/{parent}"):
        for group in sorted(top.glob("**/"), key=lambda p: len(p.parts), reverse=True):
            for _ in range(50):
                try:
                    pids = (group / "cgroup.procs").read_text().split()
                except OSError:
                    break
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
                time.sleep(0.05)
            for _ in range(20):
                try:
                    group.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)  # EBUSY while the last task is still exiting


def _stop_launcher(root: Path) -> None:
    """The launcher outlives a daemon killed while jobs ran (on purpose);
    tests end it themselves."""
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


def write_test_config(
    root: Path,
    port: int,
    sections: Mapping[str, Mapping[str, Any]] | None = None,
    setup_args: Sequence[str] = (),
) -> Path:
    """`joblet setup` into `root` (with `setup_args`), then the test daemon's
    own cgroup parent and network ranges, and `sections` merged over the
    written config."""
    if setup_args:
        setup = ["setup", "--root", str(root), "--address", "127.0.0.1", "--port", str(port)]
        setup += setup_args
        subprocess.run(
            [sys.executable, "-m", "joblet.daemon.main", *setup], check=True, capture_output=True
        )
    else:
        # `joblet setup` itself, called in this process: an interpreter started for
        # each of the suite's hundreds of daemons would cost a third of a second each.
        run_setup(root, "127.0.0.1", port, [], False)
    config_path = root / "config" / "joblet-config.yml"
    config = yaml.safe_load(config_path.read_text())
    config.setdefault("cgroup", {})["parent"] = f"joblet-test-{uuid.uuid4().hex[:8]}"
    # Each daemon has a namespace of its own, so the same ranges serve all;
    # tests name addresses around them.
    config.setdefault("network", {}).update(
        bridgeCidr="10.201.0.0/24", isolatedPool="10.202.0.0/24"
    )
    # JOBLET_TEST_USERNS=on|auto|off runs the suites' daemons with that
    # joblet.userNamespace (a test's own sections still win).
    userns_mode = os.environ.get("JOBLET_TEST_USERNS")
    if userns_mode:
        config.setdefault("joblet", {})["userNamespace"] = userns_mode
    for name, values in (sections or {}).items():
        section = config.setdefault(name, {})
        for key, value in values.items():
            if isinstance(value, Mapping) and isinstance(section.get(key), dict):
                section[key].update(value)
            else:
                section[key] = value
    config_path.write_text(yaml.safe_dump(config))
    return config_path


def launch_daemon(
    tmp: Path,
    sections: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    world: Netns | None = None,
    module: str = "joblet.daemon.main",
    setup_args: Sequence[str] = (),
) -> RunningDaemon:
    """`joblet setup` in `tmp`, then `joblet serve` inside `world` (a fresh
    namespace when None), with `sections` over the config and `env` over the
    environment. The daemon owns the namespace: `stop` closes it."""
    root, log_path = tmp / "root", tmp / "daemon.log"
    with contextlib.ExitStack() as undo:
        world = world or Netns()
        undo.callback(world.close)
        relay = Relay(world.netns)
        undo.callback(relay.close)
        config_path = write_test_config(root, relay.port, sections, setup_args)
        proc = _serve(world, config_path, log_path, env, module)
        daemon = RunningDaemon(
            root, relay.port, config_path, root / "config" / "rnx-config.yml",
            proc, log_path, world, relay, env, module,
        )  # fmt: skip
        undo.callback(daemon.stop)
        daemon.wait_listening()
        undo.pop_all()
    return daemon


def start_daemon(tmp: Path, **joblet_overrides: Any) -> RunningDaemon:
    return launch_daemon(tmp, {"joblet": joblet_overrides})


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


def stored_record(daemon: RunningDaemon, job_id: str) -> dict[str, Any]:
    """The job's record in the daemon's SQLite state store (read-only; a job
    not stored yet has status None)."""
    uri = f"file:{daemon.root / 'state' / 'jobs.db'}?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=10)
    try:
        row = db.execute("SELECT record FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    finally:
        db.close()
    return dict(json.loads(row[0])) if row else {"status": None}
