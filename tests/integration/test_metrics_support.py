"""Helpers of the metrics tests: a daemon starter that also writes the
config's `metrics:` section, and small gRPC helpers to collect a job's samples.

It holds no tests; it lives under a test_metrics_* name because the metrics
tests may add files there and nowhere else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import grpc

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.errors import NotFound
from joblet.persist.client import PersistQueryClient

from .conftest import RunningDaemon, launch_daemon

FINAL = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}
_T = TypeVar("_T")


def start_metrics_daemon(tmp: Path, metrics: Mapping[str, Any]) -> RunningDaemon:
    """`joblet serve` like conftest's start_daemon, with a `metrics:` section."""
    return launch_daemon(tmp, {"metrics": dict(metrics)})


def stop_metrics_daemon(daemon: RunningDaemon) -> None:
    daemon.stop()


def run_job(stub: pb_grpc.JobServiceStub, command: str, *args: str, **fields: Any) -> str:
    return str(stub.RunJob(pb.RunJobRequest(command=command, args=list(args), **fields)).jobUuid)


def stream_samples(stub: pb_grpc.JobServiceStub, job_id: str) -> list[pb.JobMetricsSample]:
    """StreamJobMetrics to its end (the job's end)."""
    return list(stub.StreamJobMetrics(pb.JobMetricsRequest(uuid=job_id), timeout=60))


def history(stub: pb_grpc.JobServiceStub, job_id: str) -> list[pb.JobMetricsSample]:
    res = stub.GetJobMetricsHistory(pb.JobMetricsHistoryRequest(uuid=job_id), timeout=30)
    return list(res.samples)


def history_or_none(stub: pb_grpc.JobServiceStub, job_id: str) -> list[pb.JobMetricsSample]:
    """History, or [] while persist has no sample of the job yet (helpers.py's
    PersistMetricsHistory answers NOT_FOUND then; metrics.history's does not)."""
    try:
        return history(stub, job_id)
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return []


def eventually(probe: Callable[[], _T], ok: Callable[[_T], bool], timeout: float = 10) -> _T:
    """Call `probe` until `ok(result)` (history reaches persist asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if ok(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def final_history(stub: pb_grpc.JobServiceStub, job_id: str) -> list[pb.JobMetricsSample]:
    """The job's history once its final sample (taken after the job ends) is stored:
    the last stored sample then shows no process left."""
    return eventually(lambda: history_or_none(stub, job_id),
                      lambda s: bool(s) and s[-1].process.current == 0)  # fmt: skip


def persisted_count(daemon: RunningDaemon, job_id: str) -> int:
    """Samples of the job that persist has stored, asked on its query socket."""

    async def count() -> int:
        async with PersistQueryClient(daemon.root / "run" / "persist-grpc.sock") as client:
            try:
                return len([s async for s in client.query_metrics(job_id)])
            except NotFound:
                return 0

    return asyncio.run(count())
