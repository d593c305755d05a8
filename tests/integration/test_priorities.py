"""Priorities and preemption through a real daemon: the queue's order, aging,
a preemptible job stopped, requeued and run again (its log showing both
runs), `onPreempt: stop`, a non-preemptible job left alone, a daemon killed
in the middle of a preemption, the role cap, and a v1.0.9 client."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .conftest import ROOT_NEEDED, RunningDaemon, launch_daemon, stored_record, wait_status
from .jobs_support import FINAL, logs, run

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

# Prints its run's own id with each of N ticks (so two runs never read as
# one), says so when it gets SIGTERM and then ends, or keeps going when
# IGNORE is set.
BATCH = (
    'run=$(cat /proc/sys/kernel/random/uuid); trap \'echo "got-term $run"; [ -n "$IGNORE" ] '
    "|| exit 143' TERM; "
    'for i in $(seq 1 {n}); do echo "tick $i $run $(date +%s%N)"; sleep {pause} & wait $!; done'
)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    running = launch_daemon(
        tmp_path_factory.mktemp("prio"),
        {
            "joblet": {"maxConcurrentJobs": 1, "preemption": True, "maxRequeues": 3},
            "roles": {"maxPriority": {"admin": 500}},
        },
    )
    yield running
    running.stop()


def status(stub: pb_grpc.JobServiceStub, job_id: str) -> pb.GetJobStatusRes:
    return stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id))


def wait_log(stub: pb_grpc.JobServiceStub, job_id: str, text: bytes, timeout: float = 20) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        out = logs_now(stub, job_id)
        if text in out:
            return out
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id}: {text!r} never came; log: {out!r}")
        time.sleep(0.1)


def logs_now(stub: pb_grpc.JobServiceStub, job_id: str) -> bytes:
    req = pb.GetJobLogsReq(uuid=job_id, noFollow=True)
    return b"".join(c.payload for c in stub.GetJobLogs(req))


def batch(stub: pb_grpc.JobServiceStub, n: int, pause: float = 0.3, **fields: object) -> str:
    return run(stub, "bash", "-c", BATCH.format(n=n, pause=pause), **fields)


def runs_in(log: bytes) -> list[str]:
    """The run ids of the tick lines, in order, consecutive duplicates merged."""
    ids: list[str] = []
    for line in log.splitlines():
        if line.startswith(b"tick "):
            run_id = line.split()[2].decode()
            if not ids or ids[-1] != run_id:
                ids.append(run_id)
    return ids


def test_waiting_jobs_start_by_priority_then_submission_time(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    blocker = run(stub, "sleep", "2")
    wait_status(stub, blocker, {"RUNNING"})
    order = []
    for name, priority in (("p0", 0), ("p5a", 5), ("m5", -5), ("p5b", 5)):
        job_id = run(stub, "sh", "-c", "date +%s%N", name=name, priority=priority)
        assert status(stub, job_id).status == "QUEUED"
        order.append((name, job_id))
    started = {}
    for name, job_id in order:
        wait_status(stub, job_id, FINAL, timeout=30)
        started[name] = int(logs(stub, job_id).split()[0])
    assert sorted(started, key=started.__getitem__) == ["p5a", "p5b", "p0", "m5"]
    res = status(stub, order[1][1])
    assert (res.priority, res.preemptible, res.preemptions) == (5, False, 0)
    assert "maxConcurrentJobs" in res.waitReason


@pytest.mark.parametrize("submitted", [(1, 2, 3, 9), (9, 3, 2, 1)], ids=["up", "down"])
def test_scheduled_jobs_falling_due_together_start_by_priority(
    daemon: RunningDaemon, submitted: tuple[int, ...]
) -> None:
    stub = daemon.jobs()
    due = datetime.fromtimestamp(time.time() + 3, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    jobs = {p: run(stub, "date", "+%s%N", schedule=due, priority=p) for p in submitted}
    started = {}
    for priority, job_id in jobs.items():
        wait_status(stub, job_id, {"COMPLETED"}, timeout=30)
        started[priority] = int(logs(stub, job_id))
    # The slot was free when they fell due: the best took it, the rest queued
    # in order, whichever order they were submitted (and their timers fired) in.
    assert sorted(started, key=started.__getitem__) == [9, 3, 2, 1]


def test_a_preemptible_job_is_stopped_requeued_and_runs_again_to_completion(
    daemon: RunningDaemon,
) -> None:
    stub = daemon.jobs()
    victim = batch(stub, 4, preemptible=True, stopGracePeriod="2s", name="batch")
    wait_log(stub, victim, b"tick 1")
    urgent = run(stub, "echo", "urgent", priority=10)
    final = wait_status(stub, victim, {"COMPLETED", "FAILED"}, timeout=40)
    assert final.status == "COMPLETED", final.endReason
    assert status(stub, urgent).status == "COMPLETED"
    assert final.preemptions == 1
    assert final.waitReason == f"preempted by {urgent}, requeued"
    log = logs(stub, victim)
    first, second = runs_in(log)  # two runs, one after the other
    assert f"got-term {first}".encode() in log  # its trap saw the SIGTERM
    assert b"[joblet] preempted, requeued" in log
    marker = log.index(b"preempted, requeued")
    assert log.index(f"tick 1 {second}".encode()) > marker
    assert log.index(f"tick 4 {second}".encode()) > marker
    assert f"tick 4 {first}".encode() not in log  # the first run was cut short


def test_after_max_requeues_a_preempted_job_stays_stopped(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()  # the daemon's joblet.maxRequeues is 3
    victim = batch(stub, 200, pause=0.1, preemptible=True, stopGracePeriod="0s")
    for round_ in range(1, 5):
        deadline = time.monotonic() + 30
        while len(runs_in(logs_now(stub, victim))) < round_:  # its next run is under way
            assert time.monotonic() < deadline, f"run {round_} never started"
            time.sleep(0.05)
        urgent = run(stub, "true", priority=1)
        wait_status(stub, urgent, {"COMPLETED"})
    res = wait_status(stub, victim, FINAL)
    assert (res.status, res.endReason) == ("STOPPED", f"preempted by {urgent}")
    assert res.preemptions == 4
    time.sleep(0.5)
    assert status(stub, victim).status == "STOPPED"  # not taken up again
    assert len(runs_in(logs(stub, victim))) == 4


def test_a_job_still_starting_when_a_better_one_comes_is_preempted_once_it_runs(
    daemon: RunningDaemon,
) -> None:
    """The victim is INITIALIZING (its start waits for its record while the
    state helper is stopped) when the urgent job is queued: no victim then.
    Once it runs, the urgent job takes its slot instead of waiting ~30 s."""
    stub = daemon.jobs()
    state = int((daemon.root / "run" / "state.pid").read_text().strip())
    with ThreadPoolExecutor(2) as pool:
        os.kill(state, signal.SIGSTOP)
        try:
            victim_call = pool.submit(
                batch, stub, 300, pause=0.1, preemptible=True, stopGracePeriod="0s"
            )
            time.sleep(0.5)  # its start now waits for the stopped helper
            urgent_call = pool.submit(run, stub, "echo", "urgent", priority=1)
            time.sleep(0.5)
        finally:
            os.kill(state, signal.SIGCONT)
        victim, urgent = victim_call.result(timeout=20), urgent_call.result(timeout=20)
    res = wait_status(stub, urgent, {"COMPLETED"}, timeout=15)
    assert res.status == "COMPLETED"
    assert status(stub, victim).preemptions == 1
    stub.StopJob(pb.StopJobReq(uuid=victim))
    wait_status(stub, victim, FINAL)


def test_a_stop_of_a_job_being_launched_waits_for_its_start(daemon: RunningDaemon) -> None:
    """StopJob while the job is INITIALIZING (its start waits for its record):
    the stop applies once it runs, instead of FAILED_PRECONDITION."""
    stub = daemon.jobs()
    state = int((daemon.root / "run" / "state.pid").read_text().strip())
    with ThreadPoolExecutor(2) as pool:
        os.kill(state, signal.SIGSTOP)
        try:
            started = pool.submit(batch, stub, 300, pause=0.1)
            deadline = time.monotonic() + 10
            while not (listed := [j for j in stub.ListJobs(pb.EmptyRequest()).jobs
                                  if j.status == "INITIALIZING"]):  # fmt: skip
                assert time.monotonic() < deadline, "the job never began its start"
                time.sleep(0.05)
            stopping = pool.submit(stub.StopJob, pb.StopJobReq(uuid=listed[0].uuid))
            time.sleep(0.3)
        finally:
            os.kill(state, signal.SIGCONT)
        job_id = started.result(timeout=20)
        stopping.result(timeout=20)
    assert wait_status(stub, job_id, FINAL).status == "STOPPED"


def test_a_job_waiting_on_a_preempted_job_waits_for_its_rerun(daemon: RunningDaemon) -> None:
    """A preemption that requeues is no end: a job requiring the preempted
    one to complete still waits, and runs once the rerun completes."""
    stub = daemon.jobs()
    first = batch(stub, 4, pause=0.2, preemptible=True, stopGracePeriod="1s")
    wait_log(stub, first, b"tick 1")
    requirement = pb.JobRequirement(jobUuid=first, status="COMPLETED")
    then = run(stub, "echo", "after", requirements=[requirement])
    run(stub, "true", priority=2)
    res = wait_status(stub, first, {"COMPLETED", "FAILED"}, timeout=30)
    assert (res.status, res.preemptions) == ("COMPLETED", 1)
    after = wait_status(stub, then, FINAL, timeout=30)
    assert after.status == "COMPLETED", after.endReason


def test_on_preempt_stop_leaves_the_job_stopped(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    victim = batch(stub, 50, preemptible=True, onPreempt="stop", stopGracePeriod="1s")
    wait_log(stub, victim, b"tick 1")
    urgent = run(stub, "echo", "urgent", priority=1)
    res = wait_status(stub, victim, FINAL, timeout=20)
    assert (res.status, res.endReason) == ("STOPPED", f"preempted by {urgent}")
    assert res.preemptions == 1 and res.onPreempt == "stop"
    wait_status(stub, urgent, {"COMPLETED"})
    time.sleep(0.5)  # it is not taken up again
    assert status(stub, victim).status == "STOPPED"


def test_a_non_preemptible_job_is_never_touched(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    steady = batch(stub, 5, pause=0.2, priority=-1000)
    wait_log(stub, steady, b"tick 1")
    urgent = run(stub, "echo", "urgent", priority=500)
    assert status(stub, urgent).status == "QUEUED"
    res = wait_status(stub, steady, FINAL, timeout=20)
    assert (res.status, res.preemptions) == ("COMPLETED", 0)
    assert b"got-term" not in logs(stub, steady)
    wait_status(stub, urgent, {"COMPLETED"})


def test_an_equal_priority_does_not_preempt(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    running = batch(stub, 4, pause=0.2, priority=3, preemptible=True)
    wait_log(stub, running, b"tick 1")
    same = run(stub, "echo", "same", priority=3)
    res = wait_status(stub, running, FINAL, timeout=20)
    assert (res.status, res.preemptions) == ("COMPLETED", 0)
    wait_status(stub, same, {"COMPLETED"})


def test_a_job_that_cannot_start_preempts_nothing(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    running = batch(stub, 4, pause=0.2, preemptible=True)
    wait_log(stub, running, b"tick 1")
    with pytest.raises(grpc.RpcError) as info:  # a runtime that is not there
        run(stub, "true", priority=100, runtime="no-such-runtime")
    assert info.value.code() is grpc.StatusCode.NOT_FOUND
    res = wait_status(stub, running, FINAL, timeout=20)
    assert (res.status, res.preemptions) == ("COMPLETED", 0)


def test_a_daemon_killed_during_a_preemption_settles_it_once(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    # It ignores SIGTERM, so the preemption is still under way when the daemon dies.
    victim = batch(
        stub, 6, pause=0.3, preemptible=True, stopGracePeriod="3s", priority=-3,
        environment={"IGNORE": "1"},
    )  # fmt: skip
    wait_log(stub, victim, b"tick 1")
    urgent = run(stub, "date", "+%s%N", priority=7)
    wait_log(stub, victim, b"got-term")
    daemon.kill9()
    daemon.restart()
    stub = daemon.jobs()
    res = wait_status(stub, victim, {"COMPLETED", "FAILED"}, timeout=60)
    assert res.status == "COMPLETED", res.endReason
    wait_status(stub, urgent, {"COMPLETED"})
    log = logs(stub, victim)
    _first, second = runs_in(log)  # it ran exactly once more, never beside itself
    # The urgent job went first once the daemon was back.
    urgent_ran = int(logs(stub, urgent).split()[0])
    assert urgent_ran < int(log.split(f"tick 1 {second} ".encode())[1].split()[0])
    assert log.count(b"preempted, requeued") == 1
    assert res.preemptions == 1 and res.priority == -3
    # Priorities and counts survive another restart.
    daemon.kill9()
    daemon.restart()
    again = status(daemon.jobs(), victim)
    assert (again.priority, again.preemptible, again.preemptions) == (-3, True, 1)
    assert again.waitReason == res.waitReason


def test_a_daemon_killed_while_a_requeued_job_runs_again_reattaches_it(
    daemon: RunningDaemon,
) -> None:
    """The first run's exit record is not the second run's: after a restart
    the second run is followed to its own end."""
    stub = daemon.jobs()
    victim = batch(stub, 40, pause=0.25, preemptible=True, stopGracePeriod="1s")
    wait_log(stub, victim, b"tick 1")
    run(stub, "true", priority=4)
    deadline = time.monotonic() + 30
    while len(runs := runs_in(logs_now(stub, victim))) < 2:
        assert time.monotonic() < deadline, "the job never ran again"
        time.sleep(0.05)
    wait_log(stub, victim, f"tick 2 {runs[1]}".encode())
    daemon.kill9()
    daemon.restart()
    assert status(daemon.jobs(), victim).status == "RUNNING"  # re-attached, not ended
    res = wait_status(daemon.jobs(), victim, {"COMPLETED", "FAILED", "STOPPED"}, timeout=40)
    assert (res.status, res.preemptions) == ("COMPLETED", 1), res.endReason
    log = logs(daemon.jobs(), victim)
    assert f"tick 40 {runs[1]}".encode() in log and len(runs_in(log)) == 2


def test_a_job_stopped_for_a_preemption_but_not_yet_requeued_is_requeued_at_start(
    daemon: RunningDaemon,
) -> None:
    """The daemon died between a preempted job's end and its requeue: the
    store holds it STOPPED with its requeue due (made so here: the job ends
    while the daemon is down, and its record is edited to say so)."""
    stub = daemon.jobs()
    job_id = batch(stub, 4, pause=0.2, preemptible=True)
    wait_log(stub, job_id, b"tick 1")
    daemon.kill9()
    exit_record = daemon.root / "jobs" / job_id / "exit.json"
    deadline = time.monotonic() + 20
    while not exit_record.exists():  # the launcher saw it end
        assert time.monotonic() < deadline, "the job never ended"
        time.sleep(0.05)
    record = stored_record(daemon, job_id)
    record.update(status="STOPPED", requeue_due=True, end_reason="preempted by someone",
                  preemptions=1)  # fmt: skip
    db = sqlite3.connect(daemon.root / "state" / "jobs.db")
    with db:
        db.execute("UPDATE jobs SET record = ? WHERE job_id = ?", (json.dumps(record), job_id))
    db.close()
    daemon.restart()
    res = wait_status(daemon.jobs(), job_id, {"COMPLETED", "FAILED"}, timeout=30)
    assert res.status == "COMPLETED" and res.preemptions == 1
    assert res.waitReason == "preempted by someone, requeued"
    log = logs(daemon.jobs(), job_id)
    assert len(runs_in(log)) == 2 and log.count(b"preempted, requeued") == 1


def test_a_role_may_not_set_a_priority_over_its_cap(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    with pytest.raises(grpc.RpcError) as info:
        run(stub, "true", priority=501)
    assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "roles.maxPriority" in (info.value.details() or "")
    with pytest.raises(grpc.RpcError) as info:
        run(stub, "true", priority=1001)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as info:
        run(daemon.jobs("viewer"), "true", priority=1)
    assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
    job = run(stub, "true", priority=500)
    wait_status(stub, job, {"COMPLETED"})


WORKFLOW = """
priority: 2
jobs:
  root:
    command: sleep
    args: ["0.5"]
  low:
    command: date
    args: ["+%s%N"]
    requires: [{root: COMPLETED}]
  high:
    command: date
    args: ["+%s%N"]
    priority: 9
    requires: [{root: COMPLETED}]
  mid:
    command: date
    args: ["+%s%N"]
    priority: 5
    requires: [{root: COMPLETED}]
"""


def test_dependents_ready_together_start_by_priority(daemon: RunningDaemon) -> None:
    from .workflow_support import jobs_by_name, run_workflow, wait_workflow

    stub = daemon.jobs()
    flow = run_workflow(stub, WORKFLOW)
    assert wait_workflow(stub, flow).workflow.status == "COMPLETED"
    jobs = jobs_by_name(stub, flow)
    assert {name: job.priority for name, job in jobs.items()} == {
        "root": 2, "low": 2, "high": 9, "mid": 5,
    }  # fmt: skip
    started = {name: int(logs(stub, jobs[name].jobUuid)) for name in ("low", "high", "mid")}
    assert sorted(started, key=started.__getitem__) == ["high", "mid", "low"]
    assert status(stub, jobs["high"].jobUuid).priority == 9


def test_a_workflow_job_over_the_role_cap_is_refused(daemon: RunningDaemon) -> None:
    from .workflow_support import run_workflow

    with pytest.raises(grpc.RpcError) as info:
        run_workflow(daemon.jobs(), 'priority: 600\njobs:\n  a:\n    command: "true"\n')
    assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "jobs.a: priority 600" in (info.value.details() or "")


V109_SCRIPT = """
job = stub.RunJob(pb.RunJobRequest(command="echo", args=["old"])).jobUuid
for _ in range(200):
    res = stub.GetJobStatus(pb.GetJobStatusReq(uuid=job))
    if res.status == "COMPLETED":
        break
    time.sleep(0.05)
listed = [j.status for j in stub.ListJobs(pb.EmptyRequest()).jobs if j.uuid == job]
result = {"id": job, "status": res.status, "listed": listed}
"""


def test_a_v109_client_runs_jobs_at_the_default_priority(
    daemon: RunningDaemon, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from .proto109 import compile_client, run_client

    tmp = compile_client(tmp_path_factory.mktemp("proto109"))
    result = run_client(tmp, daemon.node(), daemon.port, V109_SCRIPT)
    assert (result["status"], result["listed"]) == ("COMPLETED", ["COMPLETED"])
    res = status(daemon.jobs(), result["id"])
    assert (res.priority, res.preemptible, res.preemptions) == (0, False, 0)
    assert res.onPreempt == "requeue"


@pytest.fixture
def aging_daemon(tmp_path: Path) -> Iterator[RunningDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    running = launch_daemon(
        tmp_path, {"joblet": {"maxConcurrentJobs": 1, "priorityAging": "200ms"}}
    )
    yield running
    running.stop()


def test_aging_lifts_a_waiting_low_job_past_a_stream_of_higher_ones(
    aging_daemon: RunningDaemon,
) -> None:
    stub = aging_daemon.jobs()
    first = run(stub, "sleep", "0.3")
    wait_status(stub, first, {"RUNNING"})
    low = run(stub, "date", "+%s%N", priority=-5)
    stop = threading.Event()
    submitted: dict[str, int] = {}

    def feed() -> None:  # a 0 job more every 0.15 s: always one waiting above it
        client = aging_daemon.jobs()
        while not stop.is_set() and len(submitted) < 300:
            before = time.time_ns()
            submitted[run(client, "sh", "-c", "date +%s%N; sleep 0.15")] = before
            time.sleep(0.15)

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        wait_status(stub, low, {"COMPLETED"}, timeout=60)
    finally:
        stop.set()
        feeder.join()
    low_start = int(logs(stub, low).split()[0])
    passed = []
    for job_id, before in submitted.items():
        wait_status(stub, job_id, FINAL, timeout=120)
        started = int(logs(stub, job_id).split()[0])
        if before < low_start < started:
            passed.append(job_id)
    assert passed, "the low job never went ahead of a higher one that waited before it"


def test_rnx_sets_and_shows_priorities(daemon: RunningDaemon) -> None:
    out = daemon.rnx("job", "run", "--priority", "5", "--preemptible", "--on-preempt", "stop",
                     "--name", "prio-cli", "true")  # fmt: skip
    assert out.returncode == 0, out.stderr
    wait_status(daemon.jobs(), "prio-cli", {"COMPLETED"})
    listing = daemon.rnx("job", "list").stdout.decode()
    header = listing.splitlines()[0].split()
    assert header[:4] == ["ID", "NAME", "STATUS", "PRIO"]
    row = next(line.split() for line in listing.splitlines() if "prio-cli" in line)
    assert row[3] == "5"
    shown = daemon.rnx("job", "status", "prio-cli").stdout.decode()
    assert "Priority: 5" in shown and "Preemptible: yes (then stopped)" in shown
    bad = daemon.rnx("job", "run", "--priority", "600", "true")
    assert bad.returncode != 0
    assert b"roles.maxPriority" in bad.stderr and b"Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
