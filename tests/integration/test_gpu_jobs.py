"""GPU jobs through a real daemon, against a static inventory of fake GPUs:
device nodes made with mknod (no driver behind them, so an open the rules
allow fails with ENXIO and one they deny with EPERM) and a /proc/devices of
our own. One daemon for the module; the restart test goes last."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import yaml

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.testing.devices import make_char_node, probe_in
from joblet.testing.gpus import DRIVER_LIBS, FAKE_GPUS, fake_uuid, make_driver_tree, make_fake_host

from .conftest import ROOT_NEEDED, RunningDaemon, launch_daemon, wait_status
from .test_isolation_support import FINAL, job_groups, run, run_sh

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

MINOR = dict(FAKE_GPUS)  # index -> minor
GPU_NODES = {"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"}
SLOTS = 4


@dataclass
class GpuWorld:
    daemon: RunningDaemon
    host: Path  # the fake host's files: dev/ and devices
    driver: Path  # the fake driver's user-space files (gpu.driverPaths)

    def node(self, index: int) -> Path:
        return self.host / "dev" / f"nvidia{MINOR[index]}"

    def held(self) -> dict[int, list[str]]:
        res = pb_grpc.GpuServiceStub(self.daemon.channel()).ListGpus(pb.ListGpusRequest())
        return {g.index: list(g.jobUuids) for g in res.gpus}

    def wait_table_empty(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while any(self.held().values()):
            if time.monotonic() > deadline:
                raise AssertionError(f"GPUs still allocated: {self.held()}")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GpuWorld]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    tmp = tmp_path_factory.mktemp("gpu")
    section = make_fake_host(tmp / "host")
    section["driverPaths"] = [str(make_driver_tree(tmp / "driver"))]
    # Four slots: enough for every test, few enough to fill in one.
    daemon = launch_daemon(tmp / "daemon", {"gpu": section, "joblet": {"maxConcurrentJobs": SLOTS}})
    yield GpuWorld(daemon, tmp / "host", tmp / "driver")
    daemon.stop()


def cgroup_procs(daemon: RunningDaemon, job_id: str) -> list[Path]:
    groups = [g for g in job_groups(daemon.cgroup_parent()) if g.name == f"job-{job_id}"]
    assert groups, f"no cgroup for job {job_id}"
    return [g / "cgroup.procs" for g in groups]


def status(daemon: RunningDaemon, job_id: str) -> pb.GetJobStatusRes:
    return daemon.jobs().GetJobStatus(pb.GetJobStatusReq(uuid=job_id))


def stop(daemon: RunningDaemon, *job_ids: str) -> None:
    """Stop (or cancel) each job that has not ended yet."""
    for job_id in job_ids:
        if status(daemon, job_id).status not in FINAL:
            daemon.jobs().StopJob(pb.StopJobReq(uuid=job_id))


def test_a_gpu_job_gets_exactly_its_nodes_and_uuids(world: GpuWorld) -> None:
    stub = world.daemon.jobs()
    _, plain = run_sh(stub, "ls /dev")
    script = (
        "ls /dev; echo CUDA=$CUDA_VISIBLE_DEVICES; echo NV=$NVIDIA_VISIBLE_DEVICES; "
        "echo IDX=$JOBLET_GPU_INDICES; for n in /dev/nvidia*; do cat $n; done"
    )
    done, out = run_sh(stub, script, gpu_count=1)
    index = list(done.gpu_indices)
    assert len(index) == 1 and done.gpu_count == 1
    listed = {line for line in out.splitlines() if line and " " not in line and "=" not in line}
    own = {f"nvidia{MINOR[index[0]]}", *GPU_NODES}
    assert listed == set(plain.split()) | own
    assert f"CUDA={fake_uuid(index[0])}" in out and f"NV={fake_uuid(index[0])}" in out
    assert f"IDX={index[0]}" in out
    # Allowed by the rules, no driver behind: ENXIO for each of its nodes.
    assert out.count("No such device or address") == len(own), out
    world.wait_table_empty()
    # Its samples (the final one at least) carry its allocation.
    deadline = time.monotonic() + 20
    while not (samples := metrics_history(stub, done.uuid)):
        assert time.monotonic() < deadline, "no metrics sample"
        time.sleep(0.1)
    assert all(list(s.gpuAllocation) == index for s in samples)


DRIVER_SCRIPT = (
    "ls -A /usr/local/nvidia/lib64; echo --; ls -A /usr/local/nvidia/bin; echo --; "
    "echo LD=$LD_LIBRARY_PATH; echo PATH=$PATH; nvidia-smi -L; "
    "cat /usr/local/nvidia/lib64/libcuda.so.1; echo; "
    "touch /usr/local/nvidia/lib64/new 2>&1; "
    "echo x >> /usr/local/nvidia/lib64/libcuda.so.1 2>&1; "
    "rm /usr/local/nvidia/bin/nvidia-smi 2>&1; echo END"
)


def test_a_gpu_job_gets_the_drivers_files_read_only_and_a_plain_job_none(
    world: GpuWorld,
) -> None:
    stub = world.daemon.jobs()
    done, out = run_sh(stub, DRIVER_SCRIPT, gpu_count=1)
    assert done.status == "COMPLETED", out
    libs, bins, rest = out.split("--\n")
    assert sorted(libs.split()) == sorted(f"{base}.so.{major}" for base, major in DRIVER_LIBS)
    assert bins.split() == ["nvidia-smi"]
    lines = rest.splitlines()
    assert lines[0] == "LD=/usr/local/nvidia/lib64"
    assert lines[1].startswith("PATH=/") and lines[1].endswith(":/usr/local/nvidia/bin")
    assert lines[2] == "fake nvidia-smi -L"  # found through PATH, executable
    assert lines[3] == "\x7fELF fake libcuda"  # the real file behind the soname link
    assert rest.count("Read-only file system") == 2, rest  # touch, rm
    # Appending: refused (the job's root is not the owner the host's root is).
    assert "cannot create /usr/local/nvidia/lib64/libcuda.so.1" in rest, rest
    assert lines[-1] == "END"
    # The host's files are untouched.
    assert (world.driver / "libcuda.so.1").read_bytes() == b"\x7fELF fake libcuda"
    assert sorted(p.name for p in world.driver.iterdir()) == sorted(
        [f"{b}.so{s}" for b, m in DRIVER_LIBS for s in ("", f".{m}", ".550.54.15")]
        + ["libunrelated.so.1", "nvidia-smi"]
    )
    done, out = run_sh(stub, "ls /usr/local/nvidia 2>&1; echo LD=$LD_LIBRARY_PATH; echo $PATH")
    assert "No such file or directory" in out and "LD=\n" in out, out
    assert "nvidia" not in out.split("LD=")[1], out
    world.wait_table_empty()


def metrics_history(stub: pb_grpc.JobServiceStub, job_id: str) -> list[pb.JobMetricsSample]:
    try:
        res = stub.GetJobMetricsHistory(pb.JobMetricsHistoryRequest(uuid=job_id), timeout=30)
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return []
    return list(res.samples)


def test_device_rules_hold_in_gpu_and_plain_jobs(world: GpuWorld, tmp_path: Path) -> None:
    daemon = world.daemon
    stub = daemon.jobs()
    gpu_job = run(stub, "sleep", "60", gpu_count=1)
    plain_job = run(stub, "sleep", "60")
    try:
        mine = wait_status(stub, gpu_job, {"RUNNING"}).gpu_indices[0]
        other = 1 - mine
        wait_status(stub, plain_job, {"RUNNING"})
        steps: list[list[object]] = [
            ["open", str(world.node(mine)), "rw"],
            ["open", str(world.node(other)), "rw"],
            ["open", str(world.host / "dev" / "nvidiactl"), "rw"],
            ["open", str(make_char_node(tmp_path / "host-made", 195, MINOR[other])), "rw"],
        ]
        in_gpu_job = probe_in(cgroup_procs(daemon, gpu_job), steps)
        assert in_gpu_job == ["ENXIO", "EPERM", "ENXIO", "EPERM"]
        in_plain_job = probe_in(cgroup_procs(daemon, plain_job), steps)
        assert in_plain_job == ["EPERM", "EPERM", "EPERM", "EPERM"]
        # A job cannot make a node of a device it may not open; the GPU job
        # may make one of its own GPU, which opens as its /dev node does.
        for job, name in ((gpu_job, "gpu-made"), (plain_job, "plain-made")):
            made = [["mknod", str(tmp_path / f"{name}-other"), 195, MINOR[other]],
                    ["mknod", str(tmp_path / name), 195, MINOR[mine]],
                    ["open", str(tmp_path / name), "rw"]]  # fmt: skip
            expected = ["EPERM", "ok", "ENXIO"] if job == gpu_job else ["EPERM", "EPERM", "ENOENT"]
            assert probe_in(cgroup_procs(daemon, job), made) == expected
    finally:
        stop(daemon, gpu_job, plain_job)
    world.wait_table_empty()


def test_a_job_that_finds_no_free_gpu_waits_fifo_without_holding_back_others(
    world: GpuWorld,
) -> None:
    daemon = world.daemon
    stub = daemon.jobs()
    first, second = (run(stub, "sleep", "60", gpu_count=1) for _ in range(2))
    waiting = run(stub, "true", gpu_count=1)
    behind = run(stub, "true", gpu_count=1)
    try:
        for job in (first, second):
            wait_status(stub, job, {"RUNNING"})
        queued = status(daemon, waiting)
        assert queued.status == "QUEUED" and "waiting for 1 GPU" in queued.waitReason
        assert "1 GPU job(s) ahead" in status(daemon, behind).waitReason
        plain = run(stub, "true")
        assert wait_status(stub, plain, FINAL).status == "COMPLETED"  # not held back
        assert status(daemon, waiting).status == "QUEUED"
        freed = list(status(daemon, first).gpu_indices)
        stop(daemon, first)
        done = wait_status(stub, waiting, FINAL)
        assert done.status == "COMPLETED" and list(done.gpu_indices) == freed
        assert wait_status(stub, behind, FINAL).status == "COMPLETED"
    finally:
        stop(daemon, first, second)
    world.wait_table_empty()


def test_a_gpu_job_granted_its_gpus_without_a_free_slot_holds_them_until_one_frees(
    world: GpuWorld,
) -> None:
    daemon = world.daemon
    stub = daemon.jobs()
    holder = run(stub, "sleep", "60", gpu_ids=["0"])
    others = [run(stub, "sleep", "60") for _ in range(SLOTS - 2)]
    for job in (holder, *others):
        wait_status(stub, job, {"RUNNING"})
    gpu_job = run(stub, "true", gpu_ids=["0"])  # a slot, but its GPU is busy
    assert "waiting for 1 GPU" in status(daemon, gpu_job).waitReason
    filler = run(stub, "sleep", "60")  # the last slot
    wait_status(stub, filler, {"RUNNING"})
    next_in_line = run(stub, "sleep", "60")  # waits for a slot
    try:
        assert status(daemon, next_in_line).status == "QUEUED"
        stop(daemon, holder)
        # The freed slot goes to the job waiting for one; GPU 0, free once the
        # holder's cgroup is gone, is held for the GPU job until a slot frees.
        wait_status(stub, next_in_line, {"RUNNING"})
        deadline = time.monotonic() + 20
        while world.held()[0] != [gpu_job]:
            assert time.monotonic() < deadline, world.held()
            time.sleep(0.05)
        assert status(daemon, gpu_job).status == "QUEUED"
        stop(daemon, others[0])
        assert wait_status(stub, gpu_job, FINAL).status == "COMPLETED"
    finally:
        stop(daemon, holder, *others, filler, next_in_line)
    world.wait_table_empty()


def test_gpus_come_back_on_every_exit_path(world: GpuWorld) -> None:
    daemon = world.daemon
    stub = daemon.jobs()
    for script in ("true", "exit 3", "kill -9 $$"):
        job = run(stub, "sh", "-c", script, gpu_count=1)
        wait_status(stub, job, FINAL)
        world.wait_table_empty()
    # Out of memory: it allocates past its maxMemory.
    hog = "x = b'1' * (200 << 20); print('survived', len(x))"
    job = run(stub, "python3", "-c", hog, gpu_count=1, maxMemory=50)
    res = wait_status(stub, job, FINAL, timeout=30)
    assert (res.status, res.endReason) == ("FAILED", "out of memory")
    world.wait_table_empty()
    # Canceled while waiting, and a start that fails (its GPU node is gone).
    holders = [run(stub, "sleep", "60", gpu_count=1) for _ in range(2)]
    canceled = run(stub, "true", gpu_count=1)
    assert status(daemon, canceled).status == "QUEUED"
    stub.CancelJob(pb.CancelJobReq(uuid=canceled))
    assert wait_status(stub, canceled, FINAL).status == "CANCELED"
    stop(daemon, *holders)
    world.wait_table_empty()
    hidden = world.node(1).with_suffix(".away")
    world.node(1).rename(hidden)
    try:
        failed = run(stub, "true", gpu_ids=["1"])
        res = wait_status(stub, failed, FINAL)
        assert res.status == "FAILED" and "launch failed" in res.endReason
    finally:
        hidden.rename(world.node(1))
    world.wait_table_empty()


def test_requests_the_node_can_never_meet_fail_at_once(world: GpuWorld) -> None:
    stub = world.daemon.jobs()
    cases = [
        ({"gpu_count": 3}, grpc.StatusCode.RESOURCE_EXHAUSTED, "this node has: 0: Fake H100"),
        ({"gpu_count": 1, "gpu_memory_mb": 100_000}, grpc.StatusCode.RESOURCE_EXHAUSTED,
         "at least 100000 MB"),
        ({"gpu_ids": ["7"]}, grpc.StatusCode.RESOURCE_EXHAUSTED, "among 7"),
        ({"gpu_ids": ["0", "0"]}, grpc.StatusCode.INVALID_ARGUMENT, "more than once"),
        ({"gpu_count": 1, "gpu_ids": ["0", "1"]}, grpc.StatusCode.INVALID_ARGUMENT, "match"),
    ]  # fmt: skip
    for fields, code, words in cases:
        with pytest.raises(grpc.RpcError) as caught:
            stub.RunJob(pb.RunJobRequest(command="true", **fields))
        assert caught.value.code() == code, fields
        assert words in (caught.value.details() or ""), caught.value.details()


def test_rnx_runs_pinned_gpu_jobs_and_lists_gpus(world: GpuWorld) -> None:
    daemon = world.daemon
    done = daemon.rnx("run", "--gpu=1", "--gpu-memory=8GB", "--gpu-ids", "1",
                      "sh", "-c", "echo IDX=$JOBLET_GPU_INDICES")  # fmt: skip
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.decode().split()[1]
    assert daemon.rnx("job", "log", job_id).stdout.strip() == b"IDX=1"
    shown = daemon.rnx("job", "status", job_id).stdout.decode()
    assert "GPUs: 1 (indices [1])" in shown, shown
    listed = daemon.rnx("gpu", "list")
    assert listed.returncode == 0, listed.stderr
    text = listed.stdout.decode()
    assert fake_uuid(0) in text and fake_uuid(1) in text and "device filter v1" in text
    as_viewer = daemon.rnx("gpu", "list", node="viewer")  # listing is open to viewers
    assert as_viewer.returncode == 0 and fake_uuid(0).encode() in as_viewer.stdout
    refused = daemon.rnx("run", "--gpu=3", "true")
    lines = refused.stderr.decode().strip().splitlines()
    assert refused.returncode != 0 and len(lines) == 1 and "this node has" in lines[0]
    world.wait_table_empty()


def test_a_v109_client_runs_a_gpu_job(
    world: GpuWorld, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from .proto109 import compile_client, run_client

    tmp = compile_client(tmp_path_factory.mktemp("proto109"))
    script = """
    job = stub.RunJob(pb.RunJobRequest(command="true", gpu_count=1, gpu_memory_mb=1024)).jobUuid
    while (res := stub.GetJobStatus(pb.GetJobStatusReq(uuid=job))).status not in (
        "COMPLETED", "FAILED"):
        time.sleep(0.05)
    listed = [j for j in stub.ListJobs(pb.EmptyRequest()).jobs if j.uuid == job][0]
    result = [res.status, list(res.gpu_indices), res.gpu_count, list(listed.gpu_indices)]
    """
    state, indices, count, listed = run_client(tmp, world.daemon.node(), world.daemon.port, script)
    assert (state, count, len(indices), listed) == ("COMPLETED", 1, 1, indices)
    world.wait_table_empty()


def test_after_kill9_and_restart_the_table_is_rebuilt_then_emptied(world: GpuWorld) -> None:
    daemon = world.daemon
    stub = daemon.jobs()
    job = run(stub, "sleep", "60", gpu_count=1)
    index = wait_status(stub, job, {"RUNNING"}).gpu_indices[0]
    daemon.kill9()
    daemon.restart()
    assert world.held()[index] == [job]
    # Lost across a restart: the daemon and the launcher die with the job
    # running; the restarted daemon settles it as lost and frees its GPU.
    # It comes back with a job timeout, for the last exit path.
    launcher = daemon.launcher_pid()
    daemon.kill9()
    os.kill(launcher, signal.SIGKILL)
    config = yaml.safe_load(daemon.config_path.read_text())
    config["joblet"]["jobTimeout"] = "2s"
    daemon.config_path.write_text(yaml.safe_dump(config))
    daemon.restart()
    res = wait_status(daemon.jobs(), job, FINAL, timeout=20)
    assert res.status == "FAILED" and res.endReason.startswith("lost:"), res.endReason
    world.wait_table_empty()
    timed_out = run(daemon.jobs(), "sleep", "60", gpu_count=1)
    res = wait_status(daemon.jobs(), timed_out, FINAL, timeout=30)
    assert (res.status, res.endReason) == ("FAILED", "timeout")
    world.wait_table_empty()
