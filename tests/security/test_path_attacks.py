"""Names and paths that would leave their directory, or carry NUL or
control characters, in every name and path field of every RPC that takes
one: each is refused with INVALID_ARGUMENT, and nothing is made."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from integration.conftest import RunningDaemon, wait_status

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .exhaustion import FINAL, log_text

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

# Each leaves a directory, is one, or holds what no name may.
BAD_NAMES = ["..", "../etc", "a/../../b", "/etc/passwd", "a/b", "a\0b", "a\nb", "a\x1b[2Jb",
             "a\x7fb", "a\u009bb", "."]  # fmt: skip
BAD_WORKDIRS = ["/etc", "..", "/work/../etc", "../../etc", "/work/a\0b", "/work/a\nb",
                "/work/a\x1b]0;x\x07", "/work/\u009b"]  # fmt: skip
BAD_UPLOADS = ["../x", "/etc/cron.d/x", "a/../../x", "a\0b", "a\nb", "a\x1bb", "", ".", "a/./.."]


def _run(name: str = "", **fields: Any) -> Callable[[pb_grpc.JobServiceStub], object]:
    def call(stub: pb_grpc.JobServiceStub) -> object:
        return stub.RunJob(pb.RunJobRequest(command="true", name=name, **fields), timeout=30)

    return call


def _upload(path: str) -> Callable[[pb_grpc.JobServiceStub], object]:
    return _run(uploads=[pb.FileUpload(path=path, content=b"x", mode=0o644)])


def _requests() -> list[tuple[str, str, Callable[[Any], object]]]:
    """(service, description, call) for every field and bad value."""
    cases: list[tuple[str, str, Callable[[Any], object]]] = []
    for bad in BAD_NAMES:
        cases += [
            ("jobs", f"RunJob.name={bad!r}", _run(name=bad)),
            ("jobs", f"RunJob.network={bad!r}", _run(network=bad)),
            ("jobs", f"RunJob.runtime={bad!r}", _run(runtime=bad)),
            ("jobs", f"RunJob.volumes={bad!r}", _run(volumes=[bad])),
            ("jobs", f"RunJob.volumes={bad + ':ro'!r}", _run(volumes=[bad + ":ro"])),
            ("networks", f"CreateNetwork.name={bad!r}",
             lambda s, n=bad: s.CreateNetwork(pb.CreateNetworkReq(name=n, cidr="10.77.0.0/24"))),
            ("networks", f"RemoveNetwork.name={bad!r}",
             lambda s, n=bad: s.RemoveNetwork(pb.RemoveNetworkReq(name=n))),
            ("volumes", f"CreateVolume.name={bad!r}",
             lambda s, n=bad: s.CreateVolume(pb.CreateVolumeReq(name=n, size="10MB",
                                                                type="memory"))),
            ("volumes", f"RemoveVolume.name={bad!r}",
             lambda s, n=bad: s.RemoveVolume(pb.RemoveVolumeReq(name=n))),
        ]  # fmt: skip
    cases += [("jobs", f"RunJob.workDir={w!r}", _run(workDir=w)) for w in BAD_WORKDIRS]
    cases += [("jobs", f"RunJob.uploads.path={p!r}", _upload(p)) for p in BAD_UPLOADS]
    return cases


def _stubs(daemon: RunningDaemon) -> dict[str, Any]:
    channel = daemon.channel()
    return {
        "jobs": pb_grpc.JobServiceStub(channel),
        "networks": pb_grpc.NetworkServiceStub(channel),
        "volumes": pb_grpc.VolumeServiceStub(channel),
    }


def _inventory(stubs: dict[str, Any]) -> tuple[int, list[str], list[str]]:
    jobs = len(stubs["jobs"].ListJobs(pb.EmptyRequest()).jobs)
    networks = sorted(n.name for n in stubs["networks"].ListNetworks(pb.EmptyRequest()).networks)
    volumes = sorted(v.name for v in stubs["volumes"].ListVolumes(pb.EmptyRequest()).volumes)
    return jobs, networks, volumes


def test_every_name_and_path_field_refuses_escapes_and_controls(daemon: RunningDaemon) -> None:
    stubs = _stubs(daemon)
    before = _inventory(stubs)
    wrong: list[str] = []
    for service, what, call in _requests():
        try:
            call(stubs[service])
        except grpc.RpcError as exc:
            if exc.code() is not grpc.StatusCode.INVALID_ARGUMENT:
                wrong.append(f"{what}: {exc.code().name} {exc.details()}")
            continue
        wrong.append(f"{what}: accepted")
    assert not wrong, "\n".join(wrong)
    assert _inventory(stubs) == before
    assert "Traceback" not in daemon.log_path.read_text()


def test_rnx_refuses_to_upload_a_file_linked_from_outside_the_tree(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    tree = tmp_path / "proj"
    tree.mkdir()
    (tmp_path / "id_rsa").write_text("PRIVATE KEY")
    (tree / "run.sh").write_text("cat proj/key\n")
    (tree / "key").symlink_to(tmp_path / "id_rsa")
    jobs = len(daemon.jobs().ListJobs(pb.EmptyRequest()).jobs)
    result = daemon.rnx("run", "--upload-dir", str(tree), "sh", "proj/run.sh")
    assert result.returncode == 2, result
    assert b"links to" in result.stderr and b"outside" in result.stderr, result.stderr
    assert b"Traceback" not in result.stderr
    assert len(daemon.jobs().ListJobs(pb.EmptyRequest()).jobs) == jobs


PLANT = (
    "ln -s {canary} /volumes/links/dir; ln -s {canary}/secret /volumes/links/file;"
    " ln -s / /volumes/links/root; ln -s /work /volumes/links/work"
)
FOLLOW = (
    "(echo job > /volumes/links/file; echo job > /volumes/links/dir/secret) 2>/dev/null;"
    " echo job > /volumes/links/root/tmp/x && cat /volumes/links/root/tmp/x; true"
)


def test_links_a_job_leaves_in_a_volume_stay_inside_jobs(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "secret").write_text("host")
    before = (canary / "secret").stat()
    volumes = pb_grpc.VolumeServiceStub(daemon.channel())
    volumes.CreateVolume(pb.CreateVolumeReq(name="links", size="8MB", type="memory"))
    stub = daemon.jobs()
    try:
        for script in (PLANT.format(canary=canary), FOLLOW):
            request = pb.RunJobRequest(command="sh", args=["-c", script], volumes=["links"])
            job_id = stub.RunJob(request).jobUuid
            assert wait_status(stub, job_id, FINAL, timeout=60).status == "COMPLETED"
        # The second job's writes went to its own root (its /tmp), never the host's.
        assert log_text(stub, job_id) == b"job\n"
    finally:
        volumes.RemoveVolume(pb.RemoveVolumeReq(name="links"))
    after = (canary / "secret").stat()
    assert (canary / "secret").read_text() == "host"
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)
    assert sorted(p.name for p in canary.iterdir()) == ["secret"]
