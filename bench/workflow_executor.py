"""Workflow benchmark of the pure core (no daemon, no root): `python bench/workflow_executor.py`.

A 1,000-job DAG: 10 layers of 100 jobs, each job of a layer needing 3 jobs of
the layer before.

1. Validation: `parse_workflow` on its YAML text, median of the runs, in CPU
   time (this host is shared: wall time includes waiting for a CPU; it is
   printed too). Target <= 200 ms. Baseline, same run: PyYAML (libyaml) only
   composing the text.
2. CPU per job event: the whole workflow run with a fake runner (every
   started job completes, first started first), CPU time of all `advance`
   calls / 1,000 events, median of the runs. Target <= 50 us. Baseline, same
   run: the same run decided by scanning every waiting job on each event (a
   polling executor's cost, without its sleeps).
"""

from __future__ import annotations

import statistics
import time
from collections import deque

import yaml
from common import Report, parse_args

from joblet.workflows.executor import Start, advance, initial
from joblet.workflows.expressions import evaluate
from joblet.workflows.yamlspec import WorkflowSpec, parse_workflow

LAYERS, WIDTH, FAN_IN = 10, 100, 3
VALIDATION_TARGET_MS = 200.0
EVENT_TARGET_US = 50.0


def dag_yaml() -> str:
    lines = ["name: layers", "jobs:"]
    for layer in range(LAYERS):
        for i in range(WIDTH):
            lines.append(f"  l{layer}-{i}:")
            lines.append("    command: true")
            if layer:
                needs = [f"l{layer - 1}-{(i + k * 37) % WIDTH}" for k in range(FAN_IN)]
                lines.append("    requires:")
                lines.extend(f"      - {name}: COMPLETED" for name in needs)
    return "\n".join(lines) + "\n"


def run_executor(spec: WorkflowSpec) -> float:
    """CPU seconds spent in advance() over the whole run."""
    state, effects = initial(spec)
    ready = deque(e.job for e in effects if isinstance(e, Start))
    spent = 0.0
    events = 0
    while ready:
        job = ready.popleft()
        start = time.process_time()
        state, effects = advance(state, job, "COMPLETED")
        spent += time.process_time() - start
        events += 1
        ready.extend(e.job for e in effects if isinstance(e, Start))
    assert events == LAYERS * WIDTH, events
    return spent


def run_scanning(spec: WorkflowSpec) -> float:
    """The baseline: every event re-evaluates every waiting job."""
    statuses: dict[str, str] = {}
    waiting = {job.name: job.requires for job in spec.jobs if job.requires}
    ready = deque(job.name for job in spec.jobs if not job.requires)
    spent = 0.0
    while ready:
        job = ready.popleft()
        start = time.process_time()
        statuses[job] = "COMPLETED"
        met = [n for n, reqs in waiting.items() if all(evaluate(r, statuses) for r in reqs)]
        for name in met:
            del waiting[name]
        spent += time.process_time() - start
        ready.extend(met)
    assert not waiting
    return spent


def main() -> None:
    args = parse_args(__doc__ or "")
    runs = 5 if args.quick else 15
    report = Report("workflow_executor", args.quick)
    text = dag_yaml()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    validation, wall, compose = [], [], []
    for _ in range(runs):
        start, cpu = time.perf_counter(), time.process_time()
        spec = parse_workflow(text)
        validation.append(time.process_time() - cpu)
        wall.append(time.perf_counter() - start)
        cpu = time.process_time()
        yaml.compose(text, Loader=loader)
        compose.append(time.process_time() - cpu)
    events = LAYERS * WIDTH
    per_event = [run_executor(spec) / events for _ in range(runs)]
    scanning = [run_scanning(spec) / events for _ in range(max(3, runs // 3))]
    validation_ms = statistics.median(validation) * 1000
    event_us = statistics.median(per_event) * 1e6
    report.figures["yaml chars"] = len(text)
    report.figures["validation CPU ms (median)"] = validation_ms
    report.figures["validation wall ms (median)"] = statistics.median(wall) * 1000
    report.figures["advance us per event (median)"] = event_us
    report.baselines["yaml compose CPU ms (median)"] = statistics.median(compose) * 1000
    report.baselines["scan-all us per event"] = statistics.median(scanning) * 1e6
    report.check(
        "validation", validation_ms <= VALIDATION_TARGET_MS, f"<= {VALIDATION_TARGET_MS:.0f} ms"
    )
    report.check("advance per event", event_us <= EVENT_TARGET_US, f"<= {EVENT_TARGET_US:.0f} us")
    report.notes.append(f"{runs} runs; {events} jobs, {(LAYERS - 1) * WIDTH * FAN_IN} requirements")
    report.emit()


if __name__ == "__main__":
    main()
