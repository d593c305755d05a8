"""Defaults that keep one job from taking the host: memory, open files, pids,
memory volumes, sized by `joblet setup` from the host where they depend on it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import grpc
import pytest
import yaml
from integration.conftest import RunningDaemon, launch_daemon, wait_status

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.config.host_disk import default_workspace_bytes
from joblet.config.host_memory import (
    MIB,
    default_job_memory_mb,
    mem_total_bytes,
    memory_volume_cap,
    read_mem_total,
)
from joblet.config.units import parse_size_bytes
from joblet.jobs.open_files import open_files_cap, read_file_max
from joblet.setup.command import run_setup

FINAL = {"COMPLETED", "FAILED", "STOPPED"}


def test_meminfo_is_parsed_in_kib() -> None:
    text = "MemFree:  100 kB\nMemTotal:       16318480 kB\n"
    assert mem_total_bytes(text) == 16318480 * 1024
    assert default_job_memory_mb(16318480 * 1024) == 16318480 // 4 // 1024
    assert memory_volume_cap(16318480 * 1024) == 16318480 // 2 // 1024 * MIB
    assert default_job_memory_mb(100 * MIB) == 64  # never below a usable minimum


def test_setup_writes_limits_sized_from_the_host(tmp_path: Path) -> None:
    run_setup(tmp_path / "root", "127.0.0.1", 50051, [], False)
    raw = yaml.safe_load((tmp_path / "root" / "config" / "joblet-config.yml").read_text())
    total = read_mem_total()
    memory_mb = raw["cgroup"]["defaults"]["maxMemory"]
    assert 0 < memory_mb * MIB <= total // 2
    assert raw["cgroup"]["defaults"]["maxPids"] > 0
    assert raw["joblet"]["maxOpenFiles"] == 4096
    assert 0 < parse_size_bytes(raw["volumes"]["maxMemorySize"]) <= total // 2
    disk = os.statvfs(tmp_path)
    workspace = parse_size_bytes(raw["joblet"]["maxWorkspaceSize"])
    assert workspace == default_workspace_bytes(disk.f_blocks * disk.f_frsize)
    assert 1 << 30 <= workspace <= disk.f_blocks * disk.f_frsize


def _job_group_file(daemon: RunningDaemon, job_id: str, v1: str, v2: str) -> str:
    parent = daemon.cgroup_parent()
    top = Path("/sys/fs/cgroup")
    for path in (top / v1.split(".", maxsplit=1)[0] / parent / f"job-{job_id}" / v1,
                 top / parent / f"job-{job_id}" / v2):  # fmt: skip
        if path.exists():
            return path.read_text().strip()
    raise AssertionError(f"no {v1} or {v2} for job {job_id}")


@pytest.mark.integration
def test_a_job_without_limits_gets_the_setup_defaults(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    job_id = stub.RunJob(pb.RunJobRequest(command="sleep", args=["30"])).jobUuid
    try:
        wait_status(stub, job_id, {"RUNNING"})
        memory = _job_group_file(daemon, job_id, "memory.limit_in_bytes", "memory.max")
        pids = _job_group_file(daemon, job_id, "pids.max", "pids.max")
    finally:
        stub.StopJob(pb.StopJobReq(uuid=job_id))
    assert int(memory) == default_job_memory_mb(read_mem_total()) * MIB
    assert pids == "1024"


def _output(daemon: RunningDaemon, job_id: str) -> str:
    return daemon.rnx("log", "--no-follow", job_id).stdout.decode()


OPEN_MANY = """
import errno, resource
print("limits", *resource.getrlimit(resource.RLIMIT_NOFILE))
files = []
try:
    while True:
        files.append(open("/dev/null"))
except OSError as exc:
    print("stopped", len(files), errno.errorcode[exc.errno])
try:
    resource.setrlimit(resource.RLIMIT_NOFILE, (4097, 4097))
    print("raised")
except (OSError, ValueError) as exc:
    print("not raised", type(exc).__name__)
"""


@pytest.mark.integration
def test_a_job_opening_too_many_files_gets_emfile(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    job_id = stub.RunJob(pb.RunJobRequest(command="python3", args=["-c", OPEN_MANY])).jobUuid
    wait_status(stub, job_id, {"COMPLETED"}, timeout=60)
    out = _output(daemon, job_id)
    # 4096, or less where 1024 processes at 4096 would hold over a quarter
    # of the host's file table (joblet.jobs.open_files).
    hard = open_files_cap(4096, 1024, read_file_max())
    assert f"limits {min(1024, hard)} {hard}" in out, out
    stopped = [line.split() for line in out.splitlines() if line.startswith("stopped")]
    assert stopped and stopped[0][2] == "EMFILE" and int(stopped[0][1]) < min(1024, hard), out
    assert "not raised" in out, out


@pytest.mark.integration
def test_the_default_memory_limit_ends_a_job_out_of_memory(tmp_path: Path) -> None:
    daemon = launch_daemon(tmp_path, {"cgroup": {"defaults": {"maxMemory": 64}}})
    try:
        stub = daemon.jobs()
        script = "x = b'1' * (200 << 20); print('survived', len(x))"
        job_id = stub.RunJob(pb.RunJobRequest(command="python3", args=["-c", script])).jobUuid
        status = wait_status(stub, job_id, FINAL, timeout=60)
        assert (status.status, status.endReason) == ("FAILED", "out of memory")
        assert "survived" not in _output(daemon, job_id)
    finally:
        daemon.stop()


@pytest.mark.integration
def test_a_100gb_memory_volume_is_refused(daemon: RunningDaemon) -> None:
    if memory_volume_cap(read_mem_total()) >= 100 * 1000**3:
        pytest.skip("this host has over 200 GB of RAM")
    volumes = pb.CreateVolumeReq(name="huge", size="100GB", type="memory")
    stub = pb_grpc.VolumeServiceStub(daemon.channel())
    try:
        with pytest.raises(grpc.RpcError) as refused:
            stub.CreateVolume(volumes)
        cli = daemon.rnx("volume", "create", "huge2", "--size", "100GB", "--type", "memory")
    finally:
        for name in ("huge", "huge2"):  # whatever a failing run made
            with contextlib.suppress(grpc.RpcError):
                stub.RemoveVolume(pb.RemoveVolumeReq(name=name))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "volumes.maxMemorySize" in str(refused.value.details())
    assert cli.returncode != 0 and b"maxMemorySize" in cli.stderr, cli.stderr
    assert b"Traceback" not in cli.stderr
