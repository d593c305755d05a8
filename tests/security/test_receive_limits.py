"""Big request bodies against a real daemon: refused by role before they are
read, held to the method's own limit after, and the daemon's memory stays put."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from integration.conftest import RunningDaemon, wait_status

from joblet.api import joblet_pb2 as pb

pytestmark = pytest.mark.integration

BIG = 200 * 1024 * 1024
MIB = 1024 * 1024


def _raw(data: bytes) -> bytes:
    return data


def _memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _reset_peak(pid: int) -> None:
    # "5" resets VmHWM to the current RSS (proc(5), clear_refs).
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def _call(daemon: RunningDaemon, node: str, method: str, body: bytes) -> grpc.RpcError:
    options = [("grpc.max_send_message_length", -1)]
    entry = daemon.node(node)
    creds = grpc.ssl_channel_credentials(
        entry["ca"].encode(), entry["key"].encode(), entry["cert"].encode()
    )
    channel = grpc.secure_channel(f"127.0.0.1:{daemon.port}", creds, options)
    with channel, pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(method, _raw, _raw)(body, timeout=120)
    assert isinstance(info.value, grpc.Call)
    return info.value


def test_viewer_sending_200_mb_is_denied_before_the_body_is_read(daemon: RunningDaemon) -> None:
    pid = daemon.proc.pid
    body = b"\x0a" + b"\xff" * (BIG - 1)
    for method in ("/joblet.JobService/RunJob", "/joblet.VolumeService/CreateVolume"):
        _reset_peak(pid)
        before = _memory_kib(pid, "VmRSS")
        error = _call(daemon, "viewer", method, body)
        grown_mib = (_memory_kib(pid, "VmHWM") - before) / 1024
        assert grown_mib < 64, f"{method}: the daemon's peak RSS grew by {grown_mib:.0f} MiB"
        assert error.code() in (
            grpc.StatusCode.PERMISSION_DENIED,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        ), error


def test_other_methods_are_held_to_4_mib(daemon: RunningDaemon) -> None:
    big_id = pb.GetJobStatusReq(uuid="x" * (5 * MIB)).SerializeToString()
    error = _call(daemon, "default", "/joblet.JobService/GetJobStatus", big_id)
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "4,194,304 max" in str(error.details())
    # RunJob still takes uploads far over 4 MiB, and jobs still run.
    upload = pb.FileUpload(path="blob", content=b"u" * (12 * MIB))
    stub = daemon.jobs()
    request = pb.RunJobRequest(command="sh", args=["-c", "test $(wc -c < blob) = 12582912"])
    request.uploads.append(upload)
    job = stub.RunJob(request, timeout=60)
    assert wait_status(stub, job.jobUuid, {"COMPLETED", "FAILED"}).exitCode == 0
