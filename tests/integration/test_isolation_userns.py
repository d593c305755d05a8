"""Jobs in a user namespace (`joblet.userNamespace: on`): their root is an
unprivileged host uid, the capabilities they keep reach none of the host's
objects, and per-user kernel counts are charged to that uid, not host root."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.config.model import DEFAULT_ALLOWED_MOUNTS
from joblet.isolation import libc
from joblet.isolation.userns import BASE_ID, ID_COUNT

from .conftest import ROOT_NEEDED, RunningDaemon, launch_daemon, make_daemon, wait_status
from .test_isolation_support import FINAL, logs, run, run_sh, wait_for
from .test_volumes_service import unmount_volumes

pytestmark = [pytest.mark.integration, pytest.mark.privileged]
__all__ = ["make_daemon"]  # a fixture

CAP_DAC_OVERRIDE = 1 << 1
# Takes inotify instances until the kernel refuses, says how many and why,
# then holds them until the test has tried one of its own on the host.
INOTIFY_HOG = """
import ctypes, errno, os, time
libc = ctypes.CDLL(None, use_errno=True)
taken = 0
while libc.inotify_init1(0) >= 0:
    taken += 1
print(taken, errno.errorcode.get(ctypes.get_errno()), flush=True)
open("/work/full", "w").close()
deadline = time.monotonic() + 60
while not os.path.exists("/work/done") and time.monotonic() < deadline:
    time.sleep(0.02)
"""


@pytest.fixture(scope="module")
def secret_dir() -> Iterator[Path]:
    """A host directory bound into jobs, holding a file only host root may read."""
    path = Path(f"/var/lib/joblet-userns-{uuid.uuid4().hex[:8]}")
    path.mkdir(mode=0o755)
    secret = path / "secret"
    secret.write_text("host secret\n")
    secret.chmod(0o600)
    yield path
    shutil.rmtree(path)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, secret_dir: Path) -> Iterator[RunningDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    sections = {
        "joblet": {"userNamespace": "on"},
        "filesystem": {"allowedMounts": [*DEFAULT_ALLOWED_MOUNTS, str(secret_dir)]},
    }
    running = launch_daemon(tmp_path_factory.mktemp("userns"), sections)
    yield running
    running.stop()
    unmount_volumes(running.root)


def workspace(daemon: RunningDaemon, job_id: str) -> Path:
    return daemon.workspace(job_id)


def test_job_root_is_an_unprivileged_host_uid(daemon: RunningDaemon) -> None:
    status, out = run_sh(daemon.jobs(), "cat /proc/self/uid_map; id -u; echo x > made-here")
    assert status.status == "COMPLETED", out
    assert out.split()[:4] == ["0", str(BASE_ID), str(ID_COUNT), "0"]
    made = (workspace(daemon, status.uuid) / "made-here").stat()
    assert (made.st_uid, made.st_gid) == (BASE_ID, BASE_ID)


def test_capabilities_inside_do_not_reach_host_files(
    daemon: RunningDaemon, secret_dir: Path
) -> None:
    status, out = run_sh(daemon.jobs(), f"grep CapEff /proc/self/status; cat {secret_dir}/secret")
    assert status.status == "FAILED", out  # cat's exit code
    # The job's root holds CAP_DAC_OVERRIDE, in its own namespace only.
    assert int(out.split()[1], 16) & CAP_DAC_OVERRIDE
    assert "Permission denied" in out and "host secret" not in out


def test_uploads_and_workspace_belong_to_the_jobs_root(daemon: RunningDaemon) -> None:
    upload = pb.FileUpload(path="data.txt", content=b"uploaded\n", mode=0o644)
    status, out = run_sh(
        daemon.jobs(), "cat data.txt && echo more >> data.txt && mkdir sub && echo ok",
        uploads=[upload],
    )  # fmt: skip
    assert status.status == "COMPLETED", out
    assert out == "uploaded\nok\n"
    assert (workspace(daemon, status.uuid) / "sub").stat().st_uid == BASE_ID


def test_inotify_instances_of_a_job_are_not_host_roots(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    job_id = run(stub, "python3", "-c", INOTIFY_HOG)
    work = workspace(daemon, job_id)
    try:
        wait_for((work / "full").exists, 30, "the job to run out of inotify instances")
        with libc.Inotify():  # host root's own count is untouched
            pass
    finally:
        if work.is_dir():
            (work / "done").touch()
    assert wait_status(stub, job_id, FINAL).status == "COMPLETED"
    taken, reason = logs(stub, job_id).split()
    assert reason == "EMFILE" and int(taken) > 0


@pytest.mark.parametrize("kind", ["filesystem", "memory"])
def test_volume_files_are_the_jobs_roots(daemon: RunningDaemon, kind: str) -> None:
    if kind == "filesystem" and shutil.which("mkfs.ext4") is None:
        pytest.skip("filesystem volumes need mkfs.ext4 (e2fsprogs)")
    name = f"uv-{kind[:3]}"
    volumes = pb_grpc.VolumeServiceStub(daemon.channel())
    volumes.CreateVolume(pb.CreateVolumeReq(name=name, size="16MiB", type=kind))
    script = f"echo data > /volumes/{name}/f && stat -c %u:%g /volumes/{name} /volumes/{name}/f"
    status, out = run_sh(daemon.jobs(), script, volumes=[name])
    assert status.status == "COMPLETED", out
    assert out.split() == ["0:0", "0:0"]
    # Bound idmapped: on disk the file is host root's, like one a job without
    # a user namespace writes, so the same volume serves jobs of either kind.
    assert (daemon.root / "volumes" / name / "mnt" / "f").stat().st_uid == 0


def test_a_jobs_user_maps_into_the_range_and_one_outside_is_refused(
    daemon: RunningDaemon,
) -> None:
    status, out = run_sh(daemon.jobs(), "id -u; id -g; touch mine; grep CapEff /proc/self/status",
                         user="1000:1000")  # fmt: skip
    assert status.status == "COMPLETED", out
    assert out.split()[:3] == ["1000", "1000", "CapEff:"] and int(out.split()[3], 16) == 0
    mine = (workspace(daemon, status.uuid) / "mine").stat()
    assert (mine.st_uid, mine.st_gid) == (BASE_ID + 1000, BASE_ID + 1000)
    job_id = run(daemon.jobs(), "true", user=str(ID_COUNT))
    ended = wait_status(daemon.jobs(), job_id, FINAL)
    assert ended.status == "FAILED"
    assert ended.endReason.endswith("id 65536 is outside the job's user namespace (0-65535)")


def test_auto_is_the_default_and_the_daemon_says_so(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    if os.environ.get("JOBLET_TEST_USERNS"):
        pytest.skip("JOBLET_TEST_USERNS sets joblet.userNamespace for every daemon")
    default = make_daemon()
    status, out = run_sh(default.jobs(), "cat /proc/self/uid_map")
    assert status.status == "COMPLETED" and out.split() == ["0", str(BASE_ID), str(ID_COUNT)]
    said = f"(joblet.userNamespace: auto): on: job ids 0-65535 are host ids {BASE_ID}"
    assert said in default.log_path.read_text()
