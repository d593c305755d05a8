"""What a scheduling decision costs with 10,000 jobs waiting (pure code, no root).

    .venv/bin/python bench/queue_cost.py [--quick]

A decision is what the daemon does when a slot frees or a job arrives:
- start: take the best waiting job (JobRegistry.next_queued: the slot check
  and the priority queue's pop), with a new job queued in its place so the
  queue stays at 10,000;
- preempt: the whole preemption decision for an urgent job arriving at a full
  node with 2 preemptible jobs running (Preemptor.victims_for: the running
  jobs, the count of better waiting jobs, the choice);
- order only: WaitQueue push + pop.
Baseline, same run: the FIFO the queue replaced (collections.deque append +
popleft) and one `min()` scan of the 10,000 waiting jobs by effective
priority (what an unindexed priority queue would cost).
Each figure is the median over ROUNDS rounds of BATCH decisions.
Target: <= 1 ms per decision.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from common import Report, parse_args

from joblet.config.model import DaemonConfig, JobsConfig, RootLayout, SecurityConfig
from joblet.jobs.ending import JobEnding
from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.jobs.preemption import Preemptor
from joblet.jobs.priority import Waiting, WaitQueue, effective_priority
from joblet.jobs.state_machine import Queued, Started
from joblet.jobs.table import JobRuntime, JobTable
from joblet.logs.follow import LogHub
from joblet.logs.service import JobLogs

WAITING = 10_000
ROUNDS = 15
BATCH = 500
LIMIT = 2


def per_decision(run: Callable[[], None], rounds: int) -> float:
    """Median seconds per decision of `run` (a callable doing BATCH decisions)."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) / BATCH)
    return statistics.median(samples)


def build_table(rng: random.Random) -> JobTable:
    table = JobTable(aging_s=60.0)
    registry = table.registry
    for n in range(LIMIT):  # the node is full: two preemptible jobs run
        job_id = f"running-{n}"
        spec = JobSpec(command="x", priority=-10, preemptible=True)
        registry.add(Job(job_id, spec, JobStatus.INITIALIZING, created_at=float(n)))
        table.runtime[job_id] = JobRuntime()
        registry.apply(job_id, Started(pid=100 + n, at=float(n)))
    for n in range(WAITING):  # up to 900: an urgent 1000 arriving soon after goes first
        queue_job(table, f"waiting-{n:06d}", rng.randint(-1000, 900), 10.0 + n * 0.01)
    return table


def queue_job(table: JobTable, job_id: str, priority: int, at: float) -> None:
    spec = JobSpec(command="x", priority=priority)
    table.registry.add(Job(job_id, spec, JobStatus.INITIALIZING, created_at=at))
    table.registry.apply(job_id, Queued(at=at))
    table.registry.enqueue(job_id)


def measure(report: Report, rounds: int) -> None:
    rng = random.Random(7)
    table = build_table(rng)
    counter = iter(range(10**9))
    measure_daemon_decisions(report, rounds, table, rng, counter)
    measure_queue(report, rounds, rng, counter)
    worst = max(report.figures["start_decision_us"], report.figures["preempt_decision_us"])
    report.check("decision", worst <= 1000, "<= 1 ms per decision with 10,000 waiting")
    report.notes.append(f"{WAITING} jobs waiting, {LIMIT} running; median of {rounds} x {BATCH}")


def measure_daemon_decisions(
    report: Report, rounds: int, table: JobTable, rng: random.Random, counter: Iterator[int]
) -> None:
    registry = table.registry

    def start_decisions() -> None:
        for _ in range(BATCH):
            n = next(counter)
            queue_job(table, f"new-{n}", rng.randint(-1000, 1000), 1e6 + n)
            registry.starting = 0
            job_id = registry.next_queued(LIMIT + 1)  # one slot free
            assert job_id is not None
            registry.remove(job_id)

    config = DaemonConfig(
        layout=RootLayout(Path("/nonexistent")),
        security=SecurityConfig("", "", ""),
        jobs=JobsConfig(max_concurrent_jobs=LIMIT, preemption=True),
    )
    logs = JobLogs(LogHub(), lambda job_id: Path("/nonexistent") / job_id)

    async def confirm(_what: str) -> None:
        return None

    preemptor = Preemptor(config, table, JobEnding(table, logs, 5.0, lambda: None), confirm=confirm)
    urgent = Job("urgent", JobSpec(command="x", priority=1000), JobStatus.INITIALIZING, 200.0)
    registry.add(urgent)
    table.runtime["urgent"] = JobRuntime()

    def preempt_decisions() -> None:
        for _ in range(BATCH):
            assert preemptor.victims_for(urgent, 200.0) == ("running-1",)

    report.figures["start_decision_us"] = per_decision(start_decisions, rounds) * 1e6
    report.figures["preempt_decision_us"] = per_decision(preempt_decisions, rounds) * 1e6


def measure_queue(report: Report, rounds: int, rng: random.Random, counter: Iterator[int]) -> None:
    queue = WaitQueue(60.0)
    for n in range(WAITING):
        queue.push(Waiting(f"w{n}", rng.randint(-1000, 1000), n, n))

    def order_only() -> None:
        for _ in range(BATCH):
            n = next(counter)
            queue.push(Waiting(f"q{n}", rng.randint(-1000, 1000), 1e6 + n, 1e6 + n))
            queue.pop()

    fifo: deque[str] = deque(f"w{n}" for n in range(WAITING))

    def fifo_only() -> None:
        for _ in range(BATCH):
            fifo.append(f"f{next(counter)}")
            fifo.popleft()

    jobs = [Waiting(f"w{n}", rng.randint(-1000, 1000), n, n) for n in range(WAITING)]

    def scan_once() -> None:
        for _ in range(BATCH // 50):  # a scan is slow: fewer per batch, scaled below
            min(
                jobs,
                key=lambda j: (
                    -effective_priority(j.priority, 1e6 - j.queued_at, 60),
                    j.created_at,
                ),
            )

    report.figures["queue_push_pop_us"] = per_decision(order_only, rounds) * 1e6
    report.baselines["fifo_append_popleft_us"] = per_decision(fifo_only, rounds) * 1e6
    report.baselines["min_scan_us"] = per_decision(scan_once, rounds) * 1e6 * 50


def main() -> None:
    args = parse_args(__doc__ or "")
    report = Report("queue_cost", args.quick)
    measure(report, 3 if args.quick else ROUNDS)
    report.emit()


if __name__ == "__main__":
    main()
