"""The job lifecycle through a client generated from our proto, against a real daemon."""

from __future__ import annotations

import time

import grpc
import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .conftest import RunningDaemon, wait_status

FINAL = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}


def run(
    stub: pb_grpc.JobServiceStub, command: str, *args: str, **fields: object
) -> pb.RunJobResponse:
    return stub.RunJob(pb.RunJobRequest(command=command, args=list(args), **fields))


def logs(stub: pb_grpc.JobServiceStub, job_id: str) -> bytes:
    return b"".join(c.payload for c in stub.GetJobLogs(pb.GetJobLogsReq(uuid=job_id)))


def test_run_echo_completes_with_output(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    res = run(stub, "echo", "hello", "world", name="greeter")
    assert res.jobUuid and res.status in {"RUNNING", "COMPLETED"}
    assert res.command == "echo" and list(res.args) == ["hello", "world"]
    assert logs(stub, res.jobUuid) == b"hello world\n"
    status = wait_status(stub, res.jobUuid, FINAL)
    assert status.status == "COMPLETED"
    assert status.exitCode == 0
    assert status.name == "greeter"
    assert status.startTime and status.endTime and status.nodeId


def test_exit_code_and_reason_recorded(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    res = run(stub, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert logs(stub, res.jobUuid) in (b"out\nerr\n", b"err\nout\n")
    status = wait_status(stub, res.jobUuid, FINAL)
    assert (status.status, status.exitCode, status.endReason) == ("FAILED", 3, "exit code 3")


def test_many_followers_get_the_same_full_log(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    res = run(stub, "sh", "-c", "for i in $(seq 1 300); do echo line-$i; sleep 0.002; done")
    first = logs(stub, res.jobUuid)
    expected = "".join(f"line-{i}\n" for i in range(1, 301)).encode()
    assert first == expected
    assert logs(stub, res.jobUuid) == expected  # a late follower too


def test_large_binary_output_arrives_whole_and_in_order(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    block = "bytes([i % 251]) * 700_000 + bytes(range(256))"
    script = f"import sys\nfor i in range(30):\n    sys.stdout.buffer.write({block})"
    res = run(stub, "python3", "-c", script)
    expected = b"".join(bytes([i % 251]) * 700_000 + bytes(range(256)) for i in range(30))
    live = logs(stub, res.jobUuid)
    assert len(live) == len(expected)
    assert live == expected


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"uuid": "ffffffff"}, grpc.StatusCode.NOT_FOUND),
        ({"tail": -1}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"stream": "both"}, grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_bad_log_requests_fail_cleanly(
    daemon: RunningDaemon, fields: dict[str, object], code: grpc.StatusCode
) -> None:
    stub = daemon.jobs()
    job_id = run(stub, "echo", "x").jobUuid
    request = pb.GetJobLogsReq(**{"uuid": job_id, **fields})  # type: ignore[arg-type]
    with pytest.raises(grpc.RpcError) as err:
        list(stub.GetJobLogs(request))
    assert err.value.code() is code


def test_job_environment_is_exactly_base_plus_requested(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    res = run(stub, "env", environment={"GREETING": "hi"}, secret_environment={"TOKEN": "s3cr3t"})
    out = logs(stub, res.jobUuid).decode()
    env = dict(line.split("=", 1) for line in out.splitlines())
    assert env["GREETING"] == "hi" and env["TOKEN"] == "s3cr3t"
    assert env["JOB_ID"] == res.jobUuid
    assert not {"SSH_AUTH_SOCK", "PYTHONPATH", "VIRTUAL_ENV", "PWD_OF_DAEMON"} & set(env)
    status = stub.GetJobStatus(pb.GetJobStatusReq(uuid=res.jobUuid))
    assert dict(status.secret_environment) == {"TOKEN": "***"}
    listed = {j.uuid: j for j in stub.ListJobs(pb.EmptyRequest()).jobs}
    assert dict(listed[res.jobUuid].secret_environment) == {"TOKEN": "***"}


def test_stop_running_job(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    res = run(stub, "sleep", "300")
    wait_status(stub, res.jobUuid, {"RUNNING"})
    stopped = stub.StopJob(pb.StopJobReq(uuid=res.jobUuid))
    assert stopped.status == "STOPPED"
    status = stub.GetJobStatus(pb.GetJobStatusReq(uuid=res.jobUuid))
    assert status.status == "STOPPED" and status.endReason.startswith("stopped by ")
    with pytest.raises(grpc.RpcError) as err:
        stub.StopJob(pb.StopJobReq(uuid=res.jobUuid))
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION


def test_stop_escalates_to_kill_after_grace(make_daemon: object) -> None:
    daemon = make_daemon(stopGracePeriod="1s")  # type: ignore[operator]
    stub = daemon.jobs()
    res = run(stub, "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done")
    wait_status(stub, res.jobUuid, {"RUNNING"})
    start = time.monotonic()
    assert stub.StopJob(pb.StopJobReq(uuid=res.jobUuid)).status == "STOPPED"
    # At least the grace period; the upper bound only catches a stop that never kills.
    assert 0.8 < time.monotonic() - start < 30


def test_schedule_then_cancel_and_schedule_runs(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    later = run(stub, "echo", "never", schedule="1h")
    assert later.status == "SCHEDULED" and later.scheduledTime
    canceled = stub.CancelJob(pb.CancelJobReq(uuid=later.jobUuid))
    assert canceled.status == "CANCELED"
    soon = run(stub, "echo", "soon", schedule="1s")
    assert soon.status == "SCHEDULED"
    status = wait_status(stub, soon.jobUuid, FINAL, timeout=30)
    assert status.status == "COMPLETED"
    assert logs(stub, soon.jobUuid) == b"soon\n"
    with pytest.raises(grpc.RpcError) as err:
        stub.CancelJob(pb.CancelJobReq(uuid=soon.jobUuid))
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION


def test_queue_over_max_concurrent_jobs_in_fifo_order(make_daemon: object) -> None:
    daemon = make_daemon(maxConcurrentJobs=1)  # type: ignore[operator]
    stub = daemon.jobs()
    # Holds the one slot until the test lets it go, however slow the host.
    first = run(stub, "sh", "-c", "until [ -e /work/release ]; do sleep 0.05; done")
    queued = [run(stub, "echo", str(i)) for i in range(3)]
    assert first.status == "RUNNING"
    assert [q.status for q in queued] == ["QUEUED"] * 3
    (daemon.workspace(first.jobUuid) / "release").touch()
    ends = [wait_status(stub, q.jobUuid, FINAL, timeout=20) for q in queued]
    assert all(e.status == "COMPLETED" for e in ends)
    starts = [e.startTime for e in ends]
    assert starts == sorted(starts)


def test_timeout_fails_job(make_daemon: object) -> None:
    daemon = make_daemon(jobTimeout="1s", stopGracePeriod="1s")  # type: ignore[operator]
    stub = daemon.jobs()
    res = run(stub, "sleep", "60")
    status = wait_status(stub, res.jobUuid, FINAL, timeout=30)
    assert (status.status, status.endReason) == ("FAILED", "timeout")


def test_prefix_lookup_and_delete(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    res = run(stub, "true")
    wait_status(stub, res.jobUuid, FINAL)
    by_prefix = stub.GetJobStatus(pb.GetJobStatusReq(uuid=res.jobUuid[:8]))
    assert by_prefix.uuid == res.jobUuid
    deleted = stub.DeleteJob(pb.DeleteJobReq(uuid=res.jobUuid[:8]))
    assert deleted.success and deleted.uuid == res.jobUuid
    with pytest.raises(grpc.RpcError) as err:
        stub.GetJobStatus(pb.GetJobStatusReq(uuid=res.jobUuid))
    assert err.value.code() is grpc.StatusCode.NOT_FOUND
    assert not (daemon.root / "jobs" / res.jobUuid).exists()


def test_delete_running_refused_and_delete_all_skips_it(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    running = run(stub, "sleep", "30")
    done = run(stub, "true")
    wait_status(stub, done.jobUuid, FINAL)
    with pytest.raises(grpc.RpcError) as err:
        stub.DeleteJob(pb.DeleteJobReq(uuid=running.jobUuid))
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    res = stub.DeleteAllJobs(pb.DeleteAllJobsReq())
    assert res.success and res.deleted_count >= 1 and res.skipped_count >= 1
    remaining = {j.uuid for j in stub.ListJobs(pb.EmptyRequest()).jobs}
    assert running.jobUuid in remaining and done.jobUuid not in remaining
    stub.StopJob(pb.StopJobReq(uuid=running.jobUuid))


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"command": ""}, "command"),
        ({"command": "echo", "maxCpu": -1}, "maxCpu"),
        ({"command": "echo", "maxCpu": 100000}, "maxCpu"),
        ({"command": "echo", "maxMemory": -5}, "maxMemory"),
        ({"command": "echo", "maxIobps": -1}, "maxIobps"),
        ({"command": "echo", "cpuCores": "0-999"}, "cpuCores"),
        ({"command": "echo", "cpuCores": "a-b"}, "cpuCores"),
        ({"command": "echo", "environment": {"BAD-KEY": "x"}}, "BAD-KEY"),
        ({"command": "echo", "args": ["a\x00b"]}, "NUL"),
        ({"command": "echo", "name": "../etc"}, "name"),
        ({"command": "echo", "schedule": "soonish"}, "schedule"),
        ({"command": "echo", "uploads": [pb.FileUpload(path="../x", content=b"1")]}, "upload"),
        ({"command": "echo", "uploads": [pb.FileUpload(path="/etc/x", content=b"1")]}, "upload"),
    ],
)
def test_bad_input_rejected(daemon: RunningDaemon, fields: dict[str, object], needle: str) -> None:
    stub = daemon.jobs()
    before = len(stub.ListJobs(pb.EmptyRequest()).jobs)
    with pytest.raises(grpc.RpcError) as err:
        stub.RunJob(pb.RunJobRequest(**fields))  # type: ignore[arg-type]
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert needle.lower() in (err.value.details() or "").lower()
    assert len(stub.ListJobs(pb.EmptyRequest()).jobs) == before


def test_unknown_job_is_not_found(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    for call, req in (
        (stub.GetJobStatus, pb.GetJobStatusReq(uuid="ffffffff")),
        (stub.StopJob, pb.StopJobReq(uuid="ffffffff")),
        (stub.DeleteJob, pb.DeleteJobReq(uuid="ffffffff")),
    ):
        with pytest.raises(grpc.RpcError) as err:
            call(req)  # type: ignore[operator]
        assert err.value.code() is grpc.StatusCode.NOT_FOUND


def test_uploads_land_in_workspace(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    uploads = [
        pb.FileUpload(path="data", isDirectory=True, mode=0o755),
        pb.FileUpload(path="data/in.txt", content=b"payload\n", mode=0o644),
        pb.FileUpload(path="run.sh", content=b"#!/bin/sh\ncat data/in.txt\n", mode=0o755),
    ]
    res = run(stub, "./run.sh", uploads=uploads)
    assert logs(stub, res.jobUuid) == b"payload\n"
    status = stub.GetJobStatus(pb.GetJobStatusReq(uuid=res.jobUuid))
    assert set(status.uploads) >= {"data/in.txt", "run.sh"}


def test_viewer_reads_but_cannot_write(daemon: RunningDaemon) -> None:
    viewer = daemon.jobs("viewer")
    viewer.ListJobs(pb.EmptyRequest())
    with pytest.raises(grpc.RpcError) as err:
        run(viewer, "echo", "no")
    assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED


def test_client_without_certificate_cannot_connect(daemon: RunningDaemon) -> None:
    creds = grpc.ssl_channel_credentials(root_certificates=daemon.node()["ca"].encode())
    stub = pb_grpc.JobServiceStub(grpc.secure_channel(f"127.0.0.1:{daemon.port}", creds))
    with pytest.raises(grpc.RpcError) as err:
        stub.ListJobs(pb.EmptyRequest(), timeout=5)
    assert err.value.code() is grpc.StatusCode.UNAVAILABLE


def test_runtime_service_answers(daemon: RunningDaemon) -> None:
    stub = pb_grpc.RuntimeServiceStub(daemon.channel())
    assert list(stub.ListRuntimes(pb.EmptyRequest()).runtimes) == []


def test_run_as_unprivileged_user(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    uploads = [pb.FileUpload(path="mine.txt", content=b"x", mode=0o644)]
    res = run(
        stub,
        "sh",
        "-c",
        "id -u; id -g; echo ok > /work/new.txt && echo wrote",
        user="1000:1000",
        uploads=uploads,
    )
    assert logs(stub, res.jobUuid) == b"1000\n1000\nwrote\n"
    status = stub.GetJobStatus(pb.GetJobStatusReq(uuid=res.jobUuid))
    assert status.user == "1000:1000"
    root_job = run(stub, "id", "-u")
    assert logs(stub, root_job.jobUuid) == b"0\n"
    with pytest.raises(grpc.RpcError) as err:
        run(stub, "true", user="no-such-user-xyz")
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
