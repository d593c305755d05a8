"""Shared plumbing for the benchmarks: a real daemon in a temp root, the
statistics, the bare baselines, and the report every script prints.

Each benchmark prints a human-readable block and, last, one line
`BENCH-RESULT {json}` that bench/run_all.py collects into its summary.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml

import joblet
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.config.model import RootLayout
from joblet.daemon.teardown import unmount_below
from joblet.jobs.workspace_mount import release_jobs_dir

RESULT_PREFIX = "BENCH-RESULT "
CGROUP_ROOT = Path("/sys/fs/cgroup")
UNSHARE_JOB_NS = ("--pid", "--fork", "--mount-proc", "--uts", "--ipc", "--mount")


# ---- arguments and statistics -------------------------------------------


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a short version of the run")
    return parser.parse_args()


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty sample."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def p50(samples: Sequence[float]) -> float:
    return percentile(samples, 50)


def p99(samples: Sequence[float]) -> float:
    return percentile(samples, 99)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def describe_ms(samples: Sequence[float]) -> str:
    return (
        f"n={len(samples)} p50={ms(p50(samples))} p99={ms(p99(samples))} "
        f"min={ms(min(samples))} max={ms(max(samples))}"
    )


# ---- the report ------------------------------------------------------------


@dataclass
class Report:
    """What one benchmark found; printed for people and as one JSON line."""

    name: str
    quick: bool
    figures: dict[str, float] = field(default_factory=dict)
    baselines: dict[str, float] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)
    passed: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # The 1-minute load average at start and end: this 2-core host is shared,
    # and a load above 2 means the figures include waiting for a CPU.
    load: list[float] = field(default_factory=lambda: [os.getloadavg()[0]])

    def check(self, label: str, ok: bool, target: str) -> None:
        self.targets[label] = target
        self.passed[label] = ok

    def emit(self) -> None:
        print(f"\n== {self.name}{' (quick)' if self.quick else ''} ==")
        for key, value in self.figures.items():
            print(f"  {key:<34} {value:>12.3f}")
        for key, value in self.baselines.items():
            print(f"  baseline {key:<25} {value:>12.3f}")
        for label, ok in self.passed.items():
            print(f"  target {label}: {self.targets[label]} -> {'PASS' if ok else 'FAIL'}")
        self.load.append(os.getloadavg()[0])
        print(f"  load average (1 min) at start/end: {self.load[0]:.2f} / {self.load[-1]:.2f}")
        for note in self.notes:
            print(f"  note: {note}")
        print(RESULT_PREFIX + json.dumps(self.__dict__), flush=True)


# ---- bare baselines ----------------------------------------------------------


def time_command(argv: Sequence[str], runs: int) -> list[float]:
    """Wall time of fork+exec+wait of `argv` from this process, `runs` times."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - start)
    return samples


def time_first_byte(argv: Sequence[str], runs: int) -> list[float]:
    """Spawn -> first stdout byte read through a pipe, `runs` times."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        proc.stdout.read(1)
        samples.append(time.perf_counter() - start)
        proc.stdout.read()
        proc.wait()
    return samples


def unshare_argv(*command: str, extra_ns: Sequence[str] = ()) -> list[str]:
    return ["unshare", *UNSHARE_JOB_NS, *extra_ns, *command]


def compile_package(report: Report) -> None:
    """Compile joblet's sources to bytecode beside them, as `pip install` does
    (this environment may set PYTHONDONTWRITEBYTECODE, and an editable install
    would then compile every module at every start); Python reads it even with
    PYTHONDONTWRITEBYTECODE set."""
    if os.environ.get("BENCH_NO_BYTECODE"):
        report.notes.append("joblet not compiled first (BENCH_NO_BYTECODE)")
        return
    package = Path(joblet.__file__).parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)
    report.notes.append(f"joblet compiled to bytecode first (compileall {package})")


# ---- a real daemon -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Daemon:
    root: Path
    port: int
    parent: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def config_path(self) -> Path:
        return self.root / "config" / "joblet-config.yml"

    @property
    def rnx_config(self) -> Path:
        return self.root / "config" / "rnx-config.yml"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def credentials(self, node: str = "default") -> grpc.ChannelCredentials:
        entry = yaml.safe_load(self.rnx_config.read_text())["nodes"][node]
        return grpc.ssl_channel_credentials(
            root_certificates=entry["ca"].encode(),
            private_key=entry["key"].encode(),
            certificate_chain=entry["cert"].encode(),
        )

    def jobs(self) -> pb_grpc.JobServiceStub:
        channel = grpc.secure_channel(self.address, self.credentials())
        return pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]

    def aio_channel(self) -> grpc.aio.Channel:
        return grpc.aio.secure_channel(self.address, self.credentials())

    def rnx_argv(self, *args: str) -> list[str]:
        rnx = Path(sys.executable).with_name("rnx")
        return [str(rnx), "--config", str(self.rnx_config), *args]

    def launcher_pid(self) -> int:
        return int((self.root / "run" / "launcher" / "launcher.pid").read_text().strip())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        stop_pid_file(self.root / "run" / "launcher" / "launcher.pid")
        release_jobs_dir(RootLayout(self.root))  # what a killed daemon left mounted
        unmount_below(self.root)  # the workspaces' file system too, before the root goes
        remove_cgroup_parent(self.parent)


def stop_pid_file(pidfile: Path) -> None:
    """SIGTERM the process named in `pidfile`, wait, SIGKILL if it lingers."""
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return
    stop_pid(pid)


def stop_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(200):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.025)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def remove_cgroup_parent(parent: str, cgroup_root: Path = CGROUP_ROOT) -> None:
    """Kill and remove any job group left under `parent` (a daemon stopped
    with jobs running leaves them), then rmdir the parent in every hierarchy."""
    from joblet.resources.detect import create_cgroup_manager
    from joblet.resources.ownership import forget_owner

    forget_owner(parent)  # what a daemon killed during the benchmark left on /run
    cgroups = create_cgroup_manager(cgroup_root, parent)
    for job_id in cgroups.leftover_job_ids():
        cgroup = cgroups.open(job_id)
        if cgroup is not None:
            with contextlib.suppress(OSError):
                cgroup.kill_all()
                cgroup.remove()
    for hierarchy in cgroup_root.iterdir():
        target = hierarchy / parent
        if target.is_dir() and not target.is_symlink():
            with contextlib.suppress(OSError):
                target.rmdir()


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {proc.returncode}:\n{log.read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"daemon did not listen on {port}:\n{log.read_text()}")


def _setup_root(
    root: Path,
    port: int,
    parent: str,
    overrides: dict[str, Any],
    sections: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    setup_args: Sequence[str] = (),
) -> None:
    joblet = [sys.executable, "-m", "joblet.daemon.main"]
    subprocess.run(
        [
            *joblet,
            "setup",
            "--root",
            str(root),
            "--address",
            "127.0.0.1",
            "--port",
            str(port),
            *setup_args,
        ],
        check=True,
        capture_output=True,
    )
    config_path = root / "config" / "joblet-config.yml"
    config = yaml.safe_load(config_path.read_text())
    config.setdefault("joblet", {}).update(overrides)
    for name, values in (sections or {}).items():
        config.setdefault(name, {}).update(values)
    config.setdefault("cgroup", {})["parent"] = parent
    config_path.write_text(yaml.safe_dump(config))


@functools.cache  # once per process
def enter_private_netns() -> None:
    """Move this process into a network namespace of its own with only
    loopback, once: the daemons it starts make their bridges, veths and
    nftables tables there, and they go when the process ends, never touching
    the host's. Client and daemon share the namespace, so a figure pays no
    relay and loopback costs what it costs on the host."""
    # setns/unshare move only the calling thread; threads started earlier
    # (grpc's) would stay outside and connect to the host's loopback.
    if len(os.listdir("/proc/self/task")) != 1:
        raise RuntimeError("start the daemon before any other thread of the benchmark")
    from joblet.isolation import libc

    libc.unshare(libc.CLONE_NEWNET)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def start_daemon(
    tmp: Path,
    log_level: str = "INFO",
    sections: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    module: str = "joblet.daemon.main",
    env: Mapping[str, str] | None = None,
    setup_args: Sequence[str] = (),
    **joblet_overrides: Any,
) -> Daemon:
    """`joblet setup` a root under `tmp`, then `joblet serve` it in a child,
    both in the process's own network namespace. `joblet_overrides` go into
    the config's `joblet:` section, `sections` into the sections they name;
    `module` is what `python -m` serves with, `env` goes over the environment,
    `setup_args` go to `joblet setup`."""
    enter_private_netns()
    root, port = tmp / "root", free_port()
    parent = f"joblet-bench-{uuid.uuid4().hex[:8]}"
    _setup_root(root, port, parent, joblet_overrides, sections, setup_args=setup_args)
    log_path = tmp / "daemon.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", module, "serve"),
                *("--config", str(root / "config" / "joblet-config.yml")),
                *("--log-level", log_level),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    daemon = Daemon(root, port, parent, proc, log_path)
    try:
        _wait_for_port(port, proc, log_path)
    except BaseException:
        daemon.stop()
        raise
    return daemon


@contextlib.contextmanager
def running_daemon(
    sections: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    module: str = "joblet.daemon.main",
    env: Mapping[str, str] | None = None,
    **joblet_overrides: Any,
) -> Iterator[Daemon]:
    """A daemon for the length of the block; everything is removed after."""
    require_root()
    tmp = Path(tempfile.mkdtemp(prefix="joblet-bench-"))
    try:
        daemon = start_daemon(tmp, sections=sections, module=module, env=env, **joblet_overrides)
        try:
            yield daemon
        finally:
            daemon.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def require_root() -> None:
    if os.geteuid() != 0:
        sys.exit("the benchmarks need root (namespaces, cgroups, mounts)")
