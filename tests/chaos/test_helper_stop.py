"""SIGSTOP of a helper (persist, state) for a while, under a log flood and
a submission flood: the daemon keeps answering reads quickly, its buffer of
events for the stopped helper stays within its bound, the overflow is counted
and logged, and after SIGCONT everything not counted as dropped arrives (what
a restarted daemon reads back from state matches what it showed before)."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from integration.conftest import RunningDaemon
from integration.jobs_support import logs

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .support import helper_pid, jobs_by_name, percentile, scale, wait_all_final
from .test_helper_kill import FLOOD, LINES_PER_CHUNK, SubmissionFlood

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.privileged]

STOP_S = scale(10, 30)
# Reads answered from memory must stay quick whatever a helper does. The
# bound holds on an idle 2-core machine; a busy shared one may set a larger one.
READ_P99_S = float(os.environ.get("JOBLET_CHAOS_READ_P99_MS", "50")) / 1000
FLOODERS = 2
CHUNKS = STOP_S * 10 + 20  # the flood outlasts the stop
STATE_BUFFER = 8  # events: a few jobs submitted during the stop overflow it
PERSIST_BUFFER = 64 * 1024  # bytes: a few seconds of metric samples overflow it
SLEEPERS = 16  # jobs that only exist to produce metric samples
SUBMITTERS = 2  # RunJob calls at once: enough to overflow the state buffer
STATE_DROP = re.compile(r"dropped the oldest event \(job ([0-9a-f-]+)\); (\d+) events dropped")
STATE_WAITING = re.compile(r"buffer overflow: (\d+) jobs waiting")
PERSIST_DROP = re.compile(r"persist buffer full \((\d+) bytes\)")


@dataclass
class ReadLatency:
    """ListJobs and GetJobStatus, one after the other, until stopped."""

    stub: pb_grpc.JobServiceStub
    job_id: str
    seconds: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> ReadLatency:
        self._thread = threading.Thread(target=self._measure)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _measure(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.stub.ListJobs(pb.EmptyRequest(), timeout=10)
            self.seconds.append(time.monotonic() - started)
            started = time.monotonic()
            self.stub.GetJobStatus(pb.GetJobStatusReq(uuid=self.job_id), timeout=10)
            self.seconds.append(time.monotonic() - started)


def _flood_output(name: str) -> bytes:
    lines = CHUNKS * LINES_PER_CHUNK
    return "".join(f"{name} {n}\n" for n in range(1, lines + 1)).encode()


@pytest.mark.timeout(scale(150, 300))
@pytest.mark.parametrize("helper", [pytest.param("state", marks=pytest.mark.slow), "persist"])
def test_sigstop_helper_daemon_answers_bounds_buffer_and_recovers(
    chaos_daemon: Callable[..., RunningDaemon], helper: str
) -> None:
    daemon = chaos_daemon(
        {
            "state": {"bufferSize": STATE_BUFFER},
            "persist": {"clientBuffer": f"{PERSIST_BUFFER}B"},
            "metrics": {"interval": 1},
        }
    )
    stub = daemon.jobs()
    flooders = {
        f"flood-{k}": stub.RunJob(
            pb.RunJobRequest(
                name=f"flood-{k}", command="sh", args=["-c", FLOOD, "sh", str(CHUNKS)]
            ),
            timeout=30,
        ).jobUuid
        for k in range(FLOODERS)
    }
    sleepers = [
        stub.RunJob(pb.RunJobRequest(command="sleep", args=[str(STOP_S + 5)]), timeout=30).jobUuid
        for _ in range(SLEEPERS)
    ]
    pid = helper_pid(daemon, helper)
    os.kill(pid, signal.SIGSTOP)
    try:
        with (
            ReadLatency(daemon.jobs(), sleepers[0]) as reads,
            SubmissionFlood(daemon, SUBMITTERS, pause=0.2) as flood,
        ):
            time.sleep(STOP_S)
    finally:
        os.kill(pid, signal.SIGCONT)
    p99 = percentile(reads.seconds, 0.99)
    print(
        f"{helper} stopped {STOP_S}s: {len(reads.seconds)} reads, p50 "
        f"{percentile(reads.seconds, 0.5) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms; "
        f"{len(flood.jobs)} jobs submitted"
    )
    assert not flood.errors, flood.errors[:5]
    assert p99 <= READ_P99_S, f"reads took {p99 * 1000:.0f} ms (p99) while {helper} was stopped"

    names = [*flooders, *flood.jobs]
    before = wait_all_final(stub, names, timeout=120)
    for name, job_id in flooders.items():
        assert logs(stub, job_id) == _flood_output(name), name
    daemon_log = daemon.log_path.read_text()
    if helper == "persist":
        sizes = {int(size) for size in PERSIST_DROP.findall(daemon_log)}
        assert sizes == {PERSIST_BUFFER}, (
            "the persist buffer did not overflow (or not at its bound)"
        )
        dropped_jobs: set[str] = set()
    else:
        dropped_jobs = _state_drops(daemon_log)

    daemon.stop_daemon_only()
    daemon.restart()
    stub = daemon.jobs()
    after = jobs_by_name(stub)
    for name, job in before.items():
        if job.uuid in dropped_jobs:
            continue  # its last event was dropped, as the log said
        assert name in after, f"{name} is gone after the restart"
        assert [(j.uuid, j.status, j.exitCode) for j in after[name]] == [
            (job.uuid, job.status, job.exitCode)
        ], name
    for name, job_id in flooders.items():
        assert logs(stub, job_id) == _flood_output(name), name


def _state_drops(daemon_log: str) -> set[str]:
    """The jobs whose events the daemon said it dropped; checks the count it
    gave and that the buffer never held more than its bound."""
    drops = STATE_DROP.findall(daemon_log)
    assert drops, "the state buffer did not overflow"
    assert [int(count) for _, count in drops] == list(range(1, len(drops) + 1))
    waiting = [int(n) for n in STATE_WAITING.findall(daemon_log)]
    assert max(waiting) <= STATE_BUFFER, f"the buffer held {max(waiting)} events"
    return {job_id for job_id, _ in drops}
