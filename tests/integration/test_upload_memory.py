"""The daemon keeps no uploaded bytes once a job's workspace holds them: its
resident memory after five 200 MB uploads stays within 20 MB of before."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import grpc
import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .conftest import RunningDaemon, wait_status

pytestmark = [pytest.mark.integration, pytest.mark.bench]

UPLOAD_BYTES = 200 * 1024 * 1024
UPLOADS = 5
ALLOWED_GROWTH = 20 * 1024 * 1024


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def settled_rss(pid: int, ceiling: int, timeout: float = 10.0) -> int:
    """The daemon's RSS once it is at or under `ceiling`, or its last reading:
    freed buffers may take a moment to go back to the kernel."""
    deadline = time.monotonic() + timeout
    while True:
        rss = rss_bytes(pid)
        if rss <= ceiling or time.monotonic() > deadline:
            return rss
        time.sleep(0.2)


def _big_message_stub(daemon: RunningDaemon) -> pb_grpc.JobServiceStub:
    entry = daemon.node()
    creds = grpc.ssl_channel_credentials(
        root_certificates=entry["ca"].encode(),
        private_key=entry["key"].encode(),
        certificate_chain=entry["cert"].encode(),
    )
    options = [("grpc.max_send_message_length", 512 * 1024 * 1024)]
    return pb_grpc.JobServiceStub(
        grpc.secure_channel(f"127.0.0.1:{daemon.port}", creds, options=options)
    )


def _request(index: int, content: bytes, schedule: str) -> pb.RunJobRequest:
    return pb.RunJobRequest(
        command="true",
        schedule=schedule,
        uploads=[pb.FileUpload(path=f"data{index}.bin", content=content, mode=0o644)],
    )


def test_rss_after_five_large_uploads(daemon: RunningDaemon) -> None:
    jobs = _big_message_stub(daemon)
    # A small job first: the daemon's lazily built parts (pools, caches) exist before the baseline.
    warm = jobs.RunJob(_request(0, b"x" * 1024, ""))
    wait_status(jobs, warm.jobUuid, {"COMPLETED"}, timeout=30)
    before = rss_bytes(daemon.proc.pid)
    content = b"\x5a" * UPLOAD_BYTES
    ids = []
    for index in range(1, UPLOADS + 1):
        # Started, scheduled (their workspace waits on disk) and queued paths alike.
        schedule = "1h" if index % 2 == 0 else ""
        ids.append(jobs.RunJob(_request(index, content, schedule), timeout=120).jobUuid)
    del content
    gc.collect()
    after = settled_rss(daemon.proc.pid, before + ALLOWED_GROWTH)
    print(
        f"daemon RSS before {before >> 20} MiB, after {UPLOADS} x 200 MB uploads {after >> 20} MiB"
    )
    try:
        assert after - before <= ALLOWED_GROWTH, (before, after)
        for job_id in ids:  # the bytes are on disk, where the job finds them
            size = (daemon.workspace(job_id) / f"data{ids.index(job_id) + 1}.bin").stat().st_size
            assert size == UPLOAD_BYTES
    finally:
        for job_id in ids:
            status = jobs.GetJobStatus(pb.GetJobStatusReq(uuid=job_id)).status
            if status == "SCHEDULED":
                jobs.CancelJob(pb.CancelJobReq(uuid=job_id))
            else:
                wait_status(jobs, job_id, {"COMPLETED"}, timeout=60)
            jobs.DeleteJob(pb.DeleteJobReq(uuid=job_id))
