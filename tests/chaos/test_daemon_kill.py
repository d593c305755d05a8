"""kill -9 of the daemon, again and again, while jobs are submitted, run and
end: after a last restart every job is listed once with its real exit code,
its one line is in its log once, and none ran twice or ran unlisted.

Each job appends its name to a ledger on a memory volume the test reads from
the host, so a job run twice (or run without the daemon knowing) shows there.
A few jobs run across every kill: they wait for a file the test writes at
the end. Submissions race the kills: a RunJob whose answer was lost may or
may not have made a job, but if it did, that job must be listed and complete.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from integration.conftest import RunningDaemon
from integration.jobs_support import logs

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .support import helper_pid, jobs_by_name, scale, wait_all_final

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.privileged]

KILLS = scale(5, 10)
JOBS = scale(100, 200)
ACROSS = 3  # jobs that run across every kill
SUBMITTERS = 4
VOLUME = "ledger"

# $1: exit code; $2: longest sleep in tenths of a second.
SHORT = 'echo "$JOB_NAME" >> /volumes/ledger/runs; sleep "$2"; echo "line-$JOB_NAME"; exit "$1"'
WAIT_GO = "while [ ! -e /volumes/ledger/go ]; do sleep 0.1; done"
LONG_JOB = f'echo "$JOB_NAME" >> /volumes/ledger/runs; {WAIT_GO}; echo "line-$JOB_NAME"; exit "$1"'


@dataclass
class Submissions:
    """What the test asked for: name -> exit code; acknowledged or not."""

    codes: dict[str, int] = field(default_factory=dict)
    acked: dict[str, str] = field(default_factory=dict)  # name -> job id
    unsure: set[str] = field(default_factory=set)  # RunJob failed: answer lost

    def submit(self, stub: pb_grpc.JobServiceStub, name: str, script: str, sleep: str) -> bool:
        request = pb.RunJobRequest(
            name=name,
            command="sh",
            args=["-c", script, "job", str(self.codes[name]), sleep],
            volumes=[VOLUME],
        )
        try:
            job_id = stub.RunJob(request, timeout=15).jobUuid
        except grpc.RpcError:
            self.unsure.add(name)
            return False
        self.acked[name] = job_id
        return True


def _submit_round(
    daemon: RunningDaemon, subs: Submissions, names: list[str], rng: random.Random
) -> None:
    """Submit `names` from a few threads at once (so that several RunJob
    calls are in flight when the daemon dies) until one fails; the names not
    tried stay in `names` for the next round."""
    stub = daemon.jobs()
    lock = threading.Lock()
    failed = threading.Event()

    def submitter() -> None:
        while not failed.is_set():
            with lock:
                if not names:
                    return
                name = names.pop(0)
                sleep = f"{rng.randrange(30) / 10}"
            if not subs.submit(stub, name, SHORT, sleep):
                failed.set()

    threads = [threading.Thread(target=submitter) for _ in range(SUBMITTERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.timeout(scale(150, 400))
def test_kill9_daemon_repeatedly_loses_and_repeats_nothing(
    chaos_daemon: Callable[..., RunningDaemon],
) -> None:
    rng = random.Random(1)
    daemon = chaos_daemon()
    volumes = pb_grpc.VolumeServiceStub(daemon.channel())
    volumes.CreateVolume(pb.CreateVolumeReq(name=VOLUME, size="16MB", type="memory"), timeout=30)
    ledger = daemon.root / "volumes" / VOLUME / "mnt"
    subs = Submissions()
    codes = iter(range(256))
    for k in range(ACROSS):
        name = f"across-{k}"
        subs.codes[name] = next(codes)
        assert subs.submit(daemon.jobs(), name, LONG_JOB, "0")
    pending = [f"job-{i}" for i in range(JOBS)]
    for name in pending:
        subs.codes[name] = next(codes)

    per_round = JOBS // (KILLS + 1)
    for _ in range(KILLS):
        batch = pending[:per_round]
        del pending[:per_round]
        submitter = threading.Thread(target=_submit_round, args=(daemon, subs, batch, rng))
        submitter.start()
        time.sleep(rng.uniform(0.3, 1.2))
        daemon.kill9()
        submitter.join(timeout=60)
        pending[:0] = batch  # not tried before the kill: the next round's
        daemon.restart()
    _submit_round(daemon, subs, pending, rng)
    assert not pending, "the daemon refused jobs after its last restart"
    (ledger / "go").touch()

    stub = daemon.jobs()
    ended = wait_all_final(stub, list(subs.acked), timeout=120)
    _check_every_job(stub, subs, ended, ledger)


def _check_every_job(
    stub: pb_grpc.JobServiceStub, subs: Submissions, ended: dict[str, pb.Job], ledger: Path
) -> None:
    listed = jobs_by_name(stub)
    twice = {name: len(jobs) for name, jobs in listed.items() if len(jobs) > 1}
    assert not twice, f"jobs listed more than once: {twice}"
    runs = Counter((ledger / "runs").read_text().split())
    assert not {n: c for n, c in runs.items() if c > 1}, "jobs ran more than once"
    for name in subs.unsure:
        if name not in listed:
            assert runs[name] == 0, f"{name} ran but the daemon does not list it"
            continue
        job = wait_all_final(stub, [name], timeout=60)[name]
        if runs[name] == 0:  # the daemon died between recording it and its launch
            assert (job.status, job.endReason[:5]) == ("FAILED", "lost:"), (name, job.endReason)
        else:
            ended[name] = job
    for name, job in ended.items():
        if name in subs.acked:
            assert job.uuid == subs.acked[name]
        code = subs.codes[name]
        assert (job.status, job.exitCode) == ("COMPLETED" if code == 0 else "FAILED", code), (
            name,
            job.endReason,
        )
        assert logs(stub, job.uuid) == f"line-{name}\n".encode(), name
        assert runs[name] == 1, f"{name} ran {runs[name]} times"


def test_kill9_daemon_before_the_store_has_a_new_job_runs_nothing_unlisted(
    chaos_daemon: Callable[..., RunningDaemon],
) -> None:
    """The state helper stalls, a job is submitted, the daemon and the
    helper die before the job's record is stored: after the restart the job
    must not have run behind the daemon's back (it waits for its record)."""
    daemon = chaos_daemon()
    volumes = pb_grpc.VolumeServiceStub(daemon.channel())
    volumes.CreateVolume(pb.CreateVolumeReq(name=VOLUME, size="16MB", type="memory"), timeout=30)
    ledger = daemon.root / "volumes" / VOLUME / "mnt"
    subs = Submissions(codes={"unrecorded": 7})
    state = helper_pid(daemon, "state")
    os.kill(state, signal.SIGSTOP)
    try:
        submitter = threading.Thread(
            target=subs.submit, args=(daemon.jobs(), "unrecorded", SHORT, "0")
        )
        submitter.start()
        time.sleep(1.0)  # the RunJob is in the daemon, its record in the stalled socket
        daemon.kill9()
        os.kill(state, signal.SIGKILL)
    finally:
        os.kill(state, signal.SIGCONT)
    submitter.join(timeout=30)
    daemon.restart()

    listed = jobs_by_name(daemon.jobs())
    ran = (ledger / "runs").exists() and "unrecorded" in (ledger / "runs").read_text()
    assert "unrecorded" in listed or not ran, "the job ran but the restarted daemon lost it"


def test_kill9_daemon_as_a_queued_job_starts_runs_it_once(
    chaos_daemon: Callable[..., RunningDaemon],
) -> None:
    """A queued job's turn comes while the state helper stalls, and the
    daemon and the helper die: the store still says QUEUED, so the restarted
    daemon queues it again; it must not have run already (it waits for its
    record as starting before the launch)."""
    daemon = chaos_daemon({"joblet": {"maxConcurrentJobs": 1}})
    volumes = pb_grpc.VolumeServiceStub(daemon.channel())
    volumes.CreateVolume(pb.CreateVolumeReq(name=VOLUME, size="16MB", type="memory"), timeout=30)
    ledger = daemon.root / "volumes" / VOLUME / "mnt"
    subs = Submissions(codes={"blocker": 0, "queued": 9})
    assert subs.submit(daemon.jobs(), "blocker", LONG_JOB, "0")
    assert subs.submit(daemon.jobs(), "queued", SHORT, "0")
    stub = daemon.jobs()
    assert stub.GetJobStatus(pb.GetJobStatusReq(uuid=subs.acked["queued"])).status == "QUEUED"
    time.sleep(0.5)  # the QUEUED record reaches the store
    state = helper_pid(daemon, "state")
    os.kill(state, signal.SIGSTOP)
    try:
        (ledger / "go").touch()  # the blocker ends: the queued job's turn
        deadline = time.monotonic() + 10
        while stub.GetJobStatus(pb.GetJobStatusReq(uuid=subs.acked["queued"])).status == "QUEUED":
            assert time.monotonic() < deadline, "the queued job never left the queue"
            time.sleep(0.02)
        time.sleep(0.5)
        daemon.kill9()
        os.kill(state, signal.SIGKILL)
    finally:
        os.kill(state, signal.SIGCONT)
    daemon.restart()

    stub = daemon.jobs()
    ended = wait_all_final(stub, ["blocker", "queued"], timeout=60)
    runs = Counter((ledger / "runs").read_text().split())
    assert runs["queued"] == 1, f"the queued job ran {runs['queued']} times"
    queued = ended["queued"]
    assert (queued.status, queued.exitCode) == ("FAILED", 9), queued.endReason
    assert logs(stub, queued.uuid) == b"line-queued\n"
