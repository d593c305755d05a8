"""The executor: examples of the format, then properties over random DAGs,
random outcomes and random orders of events."""

from __future__ import annotations

import os
from collections.abc import Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from joblet.workflows.executor import (
    Cancel,
    Effect,
    ExecState,
    Start,
    advance,
    initial,
    rebuild,
    stop,
)
from joblet.workflows.expressions import (
    FINAL,
    Expr,
    evaluate,
    jobs_of,
)
from joblet.workflows.model import WorkflowJob, WorkflowSpec
from joblet.workflows.yamlspec import parse_workflow

from .strategies import expressions
from .test_yamlspec import ETL


def starts(effects: list[Effect]) -> list[str]:
    return [e.job for e in effects if isinstance(e, Start)]


def cancels(effects: list[Effect]) -> list[str]:
    return [e.job for e in effects if isinstance(e, Cancel)]


def test_etl_good_night() -> None:
    spec = parse_workflow(ETL)
    state, effects = initial(spec)
    assert effects == [Start("extract")]
    state, effects = advance(state, "extract", "COMPLETED")
    assert effects == [Start("t-a"), Start("t-b")]
    state, effects = advance(state, "t-b", "COMPLETED")
    assert effects == []
    state, effects = advance(state, "t-a", "COMPLETED")
    assert effects == [Start("load")]
    state, effects = advance(state, "load", "COMPLETED")
    assert effects == [
        Cancel("notify", 'requires[0] "NOT load=COMPLETED" can no longer hold: load is COMPLETED'),
        Start("cleanup"),
    ]
    state, effects = advance(state, "cleanup", "COMPLETED")
    assert effects == [] and state.waiting() == []


def test_a_failure_cascades_and_finished_runs_anyway() -> None:
    state, _ = initial(parse_workflow(ETL))
    state, effects = advance(state, "extract", "FAILED")
    assert cancels(effects) == ["t-a", "t-b", "load"]
    assert effects[0] == Cancel(
        "t-a", 'requires[0] "extract=COMPLETED" can no longer hold: extract is FAILED'
    )
    assert starts(effects) == ["notify", "cleanup"]  # YAML order
    assert state.statuses["load"] == "CANCELED"


def test_or_starts_on_the_first_true_operand() -> None:
    spec = parse_workflow(
        "jobs:\n  a: {command: x}\n  b: {command: x}\n"
        "  c: {command: x, requires: ['a=COMPLETED OR b=COMPLETED']}\n"
    )
    state, effects = initial(spec)
    assert starts(effects) == ["a", "b"]
    state, effects = advance(state, "b", "COMPLETED")
    assert effects == [Start("c")]
    state, effects = advance(state, "a", "COMPLETED")
    assert effects == []


def test_duplicate_and_late_reports_are_ignored() -> None:
    state, _ = initial(parse_workflow(ETL))
    state, _ = advance(state, "extract", "FAILED")
    assert advance(state, "extract", "COMPLETED")[1] == []
    assert advance(state, "t-a", "CANCELED")[1] == []  # the shell echoing a cascade
    assert state.statuses["extract"] == "FAILED"


def test_bad_events_are_refused() -> None:
    state, _ = initial(parse_workflow(ETL))
    with pytest.raises(ValueError, match="not a job"):
        advance(state, "nope", "COMPLETED")
    with pytest.raises(ValueError, match="not a final status"):
        advance(state, "extract", "RUNNING")


def test_stop_cancels_waiting_jobs_and_nothing_starts_later() -> None:
    state, _ = initial(parse_workflow(ETL))
    state, effects = stop(state)
    assert effects == [
        Cancel(name, "the workflow was stopped")
        for name in ("t-a", "t-b", "load", "notify", "cleanup")
    ]
    state, effects = advance(state, "extract", "STOPPED")
    assert effects == []


def test_rebuild_starts_what_was_met_while_down_never_twice() -> None:
    spec = parse_workflow(ETL)
    _, effects = rebuild(spec, {"extract": "COMPLETED", "t-a": "RUNNING"}, {"extract", "t-a"})
    assert effects == [Start("t-b")]
    _, effects = rebuild(spec, {"extract": "COMPLETED"}, {"extract"}, stopped=True)
    assert starts(effects) == []


# Properties --------------------------------------------------------------


@st.composite
def specs(draw: st.DrawFn) -> WorkflowSpec:
    """A DAG: job i may require only jobs before it."""
    count = draw(st.integers(1, 9))
    names = [f"j{i}" for i in range(count)]
    jobs = []
    for i, name in enumerate(names):
        requires: tuple[Expr, ...] = ()
        if i:
            requires = tuple(draw(st.lists(expressions(names[:i]), max_size=2)))
        deps = tuple(dict.fromkeys(a.job for r in requires for a in jobs_of(r)))
        jobs.append(WorkflowJob(name=name, command="true", requires=requires, dependencies=deps))
    order = draw(st.permutations(jobs))  # YAML order need not be topological
    return WorkflowSpec("random", tuple(order))


def requirement(spec: WorkflowSpec, job: str, statuses: Mapping[str, str]) -> bool | None:
    """The oracle: all items, three-valued, straight from `evaluate`."""
    values = [evaluate(r, statuses) for r in spec.job(job).requires]
    if False in values:
        return False
    return None if None in values else True


class Run:
    """Drives the executor like the shell does, checking every event."""

    def __init__(self, spec: WorkflowSpec) -> None:
        self.spec = spec
        self.names = [job.name for job in spec.jobs]
        self.recorded: dict[str, str] = {}  # what the shell stores: final statuses
        self.started: set[str] = set()
        self.running: set[str] = set()
        self.state, effects = initial(spec)
        self.apply(None, effects)

    def apply(self, before: Mapping[str, str] | None, effects: list[Effect]) -> None:
        """`before`: the statuses before the event; None for the submission."""
        for effect in effects:
            if isinstance(effect, Start):
                assert effect.job not in self.started, "started twice"
                assert effect.job not in self.recorded, "started after being final"
                # Started exactly in the event that made its requirements true.
                if before is not None:
                    assert requirement(self.spec, effect.job, before) is not True
                self.started.add(effect.job)
                self.running.add(effect.job)
            else:
                assert effect.job not in self.started and effect.job not in self.recorded
                self.recorded[effect.job] = "CANCELED"
        for effect in effects:
            if isinstance(effect, Start):
                assert requirement(self.spec, effect.job, self.recorded) is True
            elif not self.state.stopped:
                assert requirement(self.spec, effect.job, self.recorded) is False
        self.check_settled()

    def check_settled(self) -> None:
        """No waiting job is startable or impossible: each was acted on at once."""
        if self.state.stopped:
            return
        for name in self.names:
            if name not in self.started and name not in self.recorded:
                assert requirement(self.spec, name, self.recorded) is None, name

    def event(self, job: str, status: str) -> None:
        before = dict(self.recorded)
        self.running.discard(job)
        self.recorded[job] = status
        self.state, effects = advance(self.state, job, status)
        self.apply(before, effects)

    def check_rebuild(self) -> None:
        rebuilt, effects = rebuild(
            self.spec, self.recorded, self.started, stopped=self.state.stopped
        )
        assert rebuilt == self.state
        assert effects == [] or (self.state.stopped and not starts(effects))


@settings(
    max_examples=int(os.environ.get("JOBLET_PROPERTY_EXAMPLES", "100")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(spec=specs(), data=st.data())
def test_random_runs_start_each_job_once_and_only_when_met(
    spec: WorkflowSpec, data: st.DataObject
) -> None:
    run = Run(spec)
    run.check_rebuild()
    while run.running or run.state.waiting():
        waiting = run.state.waiting()
        if not run.state.stopped and data.draw(st.integers(0, 19)) == 0:
            run.state, effects = stop(run.state)
            assert not starts(effects)
            run.apply(dict(run.recorded), effects)
        elif run.running and (not waiting or data.draw(st.booleans())):
            job = data.draw(st.sampled_from(sorted(run.running)))
            run.event(job, data.draw(st.sampled_from(FINAL)))
        else:  # the user cancels a PENDING job
            run.event(data.draw(st.sampled_from(waiting)), "CANCELED")
        run.check_rebuild()
    # Every job ended started or canceled, and each started one is final.
    for name in run.names:
        assert name in run.started or run.recorded[name] == "CANCELED"
        assert name in run.recorded


@settings(
    max_examples=int(os.environ.get("JOBLET_PROPERTY_EXAMPLES", "100")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(spec=specs(), data=st.data())
def test_rebuild_after_events_missed_while_down_equals_the_live_run(
    spec: WorkflowSpec, data: st.DataObject
) -> None:
    """Run to a random cut, let some running jobs end while the daemon is
    down, and rebuild: the same state and the same effects as feeding them."""
    run = Run(spec)
    for _ in range(data.draw(st.integers(0, len(run.names)))):
        if not run.running:
            break
        job = data.draw(st.sampled_from(sorted(run.running)))
        run.event(job, data.draw(st.sampled_from(FINAL)))
    ended = data.draw(st.lists(st.sampled_from(sorted(run.running) or ["-"]), unique=True))
    missed = [(job, data.draw(st.sampled_from(FINAL))) for job in ended if job != "-"]
    statuses = {**run.recorded, **dict(missed)}
    started = set(run.started)
    rebuilt, effects = rebuild(spec, statuses, started)
    live_effects: list[Effect] = []
    for job, status in missed:
        run.state, found = advance(run.state, job, status)
        live_effects += found
    assert rebuilt == run.state
    # The same jobs started and canceled; a reason may name more statuses
    # when rebuild sees several missed events at once.
    assert set(starts(effects)) == set(starts(live_effects))
    assert set(cancels(effects)) == set(cancels(live_effects))
    assert not started & set(starts(effects))


def test_state_equality_ignores_the_plan_but_not_the_facts() -> None:
    spec = parse_workflow(ETL)
    one, _ = initial(spec)
    two, _ = rebuild(spec, {}, set())
    assert one == two
    advance(two, "extract", "COMPLETED")
    assert one != two
    assert isinstance(one, ExecState)
