"""kill -9 of the persist and state helpers, again and again, under a log
flood (jobs printing numbered lines) and a submission flood (RunJob calls
from several threads): no log byte is lost or repeated, and every job is
listed with its final status after a daemon restart (which reads the jobs
back from state), once."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
import pytest
from integration.conftest import RunningDaemon
from integration.jobs_support import logs

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .support import alive, helper_pid, jobs_by_name, kill_helpers, scale, wait_all_final

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.privileged]

KILLS = scale(5, 10)  # of each helper
FLOODERS = 4
CHUNKS = scale(80, 300)  # of LINES_PER_CHUNK lines, 0.1 s apart
LINES_PER_CHUNK = 200
SUBMITTERS = 4

# $1: chunks. Prints "<name> <n>" for n = 1 .. $1 * 200.
FLOOD = (
    'i=0; while [ "$i" -lt "$1" ]; do '
    'seq -f "$JOB_NAME %.0f" $((i * 200 + 1)) $((i * 200 + 200)); i=$((i + 1)); sleep 0.1; '
    "done"
)
SHORT = 'echo "$JOB_NAME"; exit "$1"'


def flood_output(name: str) -> bytes:
    return "".join(f"{name} {n}\n" for n in range(1, CHUNKS * LINES_PER_CHUNK + 1)).encode()


@dataclass
class SubmissionFlood:
    """RunJob from several threads until stopped: name -> (job id, exit code)."""

    daemon: RunningDaemon
    threads: int = SUBMITTERS
    pause: float = 0.0  # seconds between one thread's calls
    jobs: dict[str, tuple[str, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _count: int = 0

    def __enter__(self) -> SubmissionFlood:
        self._threads = [threading.Thread(target=self._submit) for _ in range(self.threads)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _submit(self) -> None:
        stub = self.daemon.jobs()
        while not self._stop.is_set():
            with self._lock:
                name, self._count = f"sub-{self._count}", self._count + 1
            code = self._count % 256
            request = pb.RunJobRequest(name=name, command="sh", args=["-c", SHORT, "sh", str(code)])
            try:
                job_id = stub.RunJob(request, timeout=30).jobUuid
            except grpc.RpcError as exc:  # the daemon stays up: every call must succeed
                self.errors.append(f"{name}: {exc.code()} {exc.details()}")
                continue
            with self._lock:
                self.jobs[name] = (job_id, code)
            self._stop.wait(self.pause)


@pytest.mark.timeout(scale(180, 400))
def test_kill9_helpers_under_floods_loses_nothing(
    chaos_daemon: Callable[..., RunningDaemon],
) -> None:
    rng = random.Random(2)
    daemon = chaos_daemon()
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
    with SubmissionFlood(daemon) as flood:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.2, 0.6))
            kill_helpers(daemon, rng.sample(["persist", "state"], 2))
    assert not flood.errors, flood.errors[:5]
    assert len(flood.jobs) > KILLS, "the submission flood hardly ran"
    print(f"{len(flood.jobs)} jobs submitted while the helpers were killed")
    names = [*flooders, *flood.jobs]
    ended = wait_all_final(stub, names, timeout=180)
    _check_jobs(stub, flooders, flood, ended)

    daemon.stop_daemon_only()  # a clean stop; the restart reads every job back from state
    daemon.restart()
    stub = daemon.jobs()
    listed = jobs_by_name(stub)
    assert not {n: len(j) for n, j in listed.items() if len(j) > 1}, "jobs listed twice"
    missing = sorted(set(names) - set(listed))
    assert not missing, f"{len(missing)} jobs lost from state: {missing[:10]}"
    _check_jobs(stub, flooders, flood, {name: listed[name][0] for name in names})
    assert "dropped" not in daemon.log_path.read_text(), "a buffer overflowed"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_clean_stop_flushes_to_a_helper_waiting_out_its_restart_delay(
    chaos_daemon: Callable[..., RunningDaemon],
) -> None:
    daemon = chaos_daemon()
    stub = daemon.jobs()
    # Six crashes in a row: the state helper's next start waits 10 s, longer
    # than a closing state client flushes (5 s).
    for _ in range(5):
        kill_helpers(daemon, ["state"])
    pid = helper_pid(daemon, "state")
    os.kill(pid, signal.SIGKILL)
    while alive(pid):
        time.sleep(0.01)
    # Recorded only in the client's buffer: the helper is away.
    stub.RunJob(pb.RunJobRequest(name="while-away", command="true"), timeout=30)
    assert wait_all_final(stub, ["while-away"], timeout=30)["while-away"].status == "COMPLETED"
    daemon.stop_daemon_only()
    assert "events the helper has not acknowledged" not in daemon.log_path.read_text()
    daemon.restart()
    listed = jobs_by_name(daemon.jobs())
    assert [job.status for job in listed.get("while-away", [])] == ["COMPLETED"]


def _check_jobs(
    stub: pb_grpc.JobServiceStub,
    flooders: dict[str, str],
    flood: SubmissionFlood,
    ended: dict[str, pb.Job],
) -> None:
    for name, job_id in flooders.items():
        assert (ended[name].uuid, ended[name].status) == (job_id, "COMPLETED")
        got = logs(stub, job_id)
        assert got == flood_output(name), _log_difference(name, got)
    for name, (job_id, code) in flood.jobs.items():
        job = ended[name]
        assert (job.uuid, job.exitCode) == (job_id, code), (name, job.endReason)
        assert job.status == ("COMPLETED" if code == 0 else "FAILED"), (name, job.endReason)
        assert logs(stub, job_id) == f"{name}\n".encode(), name


def _log_difference(name: str, got: bytes) -> str:
    """Which numbered lines are missing or repeated (the whole log is too long to show)."""
    seen: dict[str, int] = {}
    for line in got.decode(errors="replace").splitlines():
        seen[line] = seen.get(line, 0) + 1
    expected = flood_output(name).decode().splitlines()
    missing = [line for line in expected if line not in seen]
    repeated = [line for line, count in seen.items() if count > 1]
    return f"{name}: {len(missing)} lines missing {missing[:5]}, repeated {repeated[:5]}"
