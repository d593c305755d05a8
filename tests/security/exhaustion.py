"""What the exhaustion tests share: a job's log, its cgroup files, and the
daemon's answer times measured while an attack runs."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from integration.conftest import RunningDaemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

FINAL = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}
# GetJobStatus under attack, on a shared 2-core machine: generous, but an
# event loop blocked by the attack (a read of a huge log, a wait on a busy
# helper) takes seconds.
STATUS_P99_S = 1.0


def log_text(stub: pb_grpc.JobServiceStub, job_id: str) -> bytes:
    request = pb.GetJobLogsReq(uuid=job_id, noFollow=True)
    return b"".join(c.payload for c in stub.GetJobLogs(request, timeout=60))


def stop_quietly(stub: pb_grpc.JobServiceStub, *job_ids: str) -> None:
    """Stop what a test started, whether it still runs or not."""
    for job_id in job_ids:
        with contextlib.suppress(grpc.RpcError):
            stub.StopJob(pb.StopJobReq(uuid=job_id), timeout=30)


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def job_cgroup_file(daemon: RunningDaemon, job_id: str, name: str) -> Path:
    """`name` (pids.max, memory.events, ...) of the job's cgroup, v2 or v1."""
    parent, group = daemon.cgroup_parent(), f"job-{job_id}"
    top = Path("/sys/fs/cgroup")
    for path in (top / parent / group / name,
                 top / name.split(".", maxsplit=1)[0] / parent / group / name):  # fmt: skip
        if path.exists():
            return path
    raise AssertionError(f"no {name} for job {job_id}")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class StatusLatency:
    """GetJobStatus of one job, again and again, until the block ends."""

    stub: pb_grpc.JobServiceStub
    job_id: str
    seconds: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> StatusLatency:
        self._thread = threading.Thread(target=self._measure, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def p99(self) -> float:
        assert len(self.seconds) >= 20, f"only {len(self.seconds)} answers"
        return percentile(self.seconds, 0.99)

    def _measure(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.stub.GetJobStatus(pb.GetJobStatusReq(uuid=self.job_id), timeout=30)
            self.seconds.append(time.monotonic() - started)
            self._stop.wait(0.01)
