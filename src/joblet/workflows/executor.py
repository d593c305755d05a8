"""The workflow executor as pure code: final job statuses in, Start and Cancel
effects out. No I/O, no clock, no polling.

The shell (the daemon) calls `initial` once at submission, `advance` with
every final status of a workflow job (from the job manager's status events),
`stop` when the user stops the workflow, and `rebuild` after a restart. It
performs the effects: Start through the normal job path, ready jobs in YAML
order; Cancel by marking the job CANCELED with the reason.

Cancellation cascades inside the executor: a job whose requirements became
impossible is recorded CANCELED in the state at once and its own dependents
are evaluated in the same call, so one event returns every consequence.
Feeding the CANCELED status of such a job back through `advance` is harmless
(a second final status of a job is ignored), and so is feeding any status
twice, which lets the shell replay events after a restart.

Cost: `advance` looks only at the dependents of the job (a reverse index), so
an event costs O(its dependents). For that the state is updated in place and
returned: treat a state as consumed once passed in, keep the returned one.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Literal

from joblet.workflows.expressions import FINAL_SET, Requirement, evaluate, jobs_of, render
from joblet.workflows.graph import topological_order
from joblet.workflows.model import WorkflowSpec

CANCELED = "CANCELED"


@dataclass(frozen=True)
class Start:
    job: str


@dataclass(frozen=True)
class Cancel:
    job: str
    reason: str


Effect = Start | Cancel


@dataclass(frozen=True)
class Plan:
    """What never changes during a run: order, requirements, reverse index."""

    order: tuple[str, ...]  # YAML order
    index: Mapping[str, int]
    requires: Mapping[str, tuple[Requirement, ...]]
    dependents: Mapping[str, tuple[str, ...]]  # job -> jobs whose requirements name it
    topological: tuple[str, ...]

    @classmethod
    def of(cls, spec: WorkflowSpec) -> Plan:
        order = tuple(job.name for job in spec.jobs)
        users: dict[str, list[str]] = {name: [] for name in order}
        for job in spec.jobs:
            for dep in job.dependencies:
                if dep in users and job.name not in users[dep]:
                    users[dep].append(job.name)
        needs = {job.name: job.dependencies for job in spec.jobs}
        return cls(
            order=order,
            index={name: i for i, name in enumerate(order)},
            requires={job.name: job.requires for job in spec.jobs},
            dependents={name: tuple(found) for name, found in users.items()},
            topological=tuple(topological_order(order, needs)),
        )


@dataclass(eq=False)
class ExecState:
    """Where a run stands: final statuses seen and jobs started. Jobs with
    neither are waiting. Compare states with `==` (the plan is not compared)."""

    plan: Plan
    statuses: dict[str, str] = field(default_factory=dict)  # final ones only
    started: set[str] = field(default_factory=set)
    stopped: bool = False

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExecState):
            return NotImplemented
        return (self.statuses, self.started, self.stopped) == (
            other.statuses,
            other.started,
            other.stopped,
        )

    __hash__ = None  # type: ignore[assignment]

    def waiting(self) -> list[str]:
        """Jobs neither started nor final, in YAML order."""
        return [n for n in self.plan.order if n not in self.started and n not in self.statuses]


def initial(spec: WorkflowSpec) -> tuple[ExecState, list[Effect]]:
    """A new run: jobs without requirements start at once, in YAML order."""
    return rebuild(spec, {}, frozenset())


def advance(state: ExecState, job: str, status: str) -> tuple[ExecState, list[Effect]]:
    """`job` ended with final `status`: the jobs this made startable or impossible."""
    if job not in state.plan.index:
        raise ValueError(f"{job!r} is not a job of this workflow")
    if status not in FINAL_SET:
        raise ValueError(f"{status!r} is not a final status")
    if job in state.statuses:
        return state, []
    state.statuses[job] = status
    cancels: list[Effect] = []
    starts: list[str] = []
    pending = [job]
    while pending:
        done = pending.pop()
        for user in state.plan.dependents[done]:
            verdict = _decide(state, user)
            if verdict is True:
                starts.append(user)
            elif verdict is not None:
                cancels.append(Cancel(user, verdict))
                pending.append(user)
    return state, cancels + _in_yaml_order(state, starts)


def rebuild(
    spec: WorkflowSpec,
    statuses: Mapping[str, str],
    started: AbstractSet[str],
    *,
    stopped: bool = False,
) -> tuple[ExecState, list[Effect]]:
    """The state a live run would have after these statuses and starts (a
    restarted daemon's), with the effects of requirements decided while it was
    down. A job in `started` is never started again. Non-final statuses in
    `statuses` (RUNNING, PENDING, ...) are ignored."""
    plan = Plan.of(spec)
    state = ExecState(
        plan,
        {job: s for job, s in statuses.items() if s in FINAL_SET and job in plan.index},
        {job for job in started if job in plan.index},
    )
    if stopped:
        return stop(state)
    cancels: list[Effect] = []
    starts: list[str] = []
    # In topological order every job's requirements are decided before it is.
    for job in plan.topological:
        verdict = _decide(state, job)
        if verdict is True:
            starts.append(job)
        elif verdict is not None:
            cancels.append(Cancel(job, verdict))
    return state, cancels + _in_yaml_order(state, starts)


def stop(state: ExecState) -> tuple[ExecState, list[Effect]]:
    """No new starts from now on; every waiting job is canceled."""
    state.stopped = True
    effects: list[Effect] = []
    for job in state.waiting():
        state.statuses[job] = CANCELED
        effects.append(Cancel(job, "the workflow was stopped"))
    return state, effects


def _decide(state: ExecState, job: str) -> Literal[True] | str | None:
    """For a waiting job: True (started now, recorded), a reason (canceled now,
    recorded), or None (still waiting, or not waiting at all)."""
    if job in state.started or job in state.statuses or state.stopped:
        return None
    met = True
    for number, requirement in enumerate(state.plan.requires[job]):
        value = evaluate(requirement, state.statuses)
        if value is False:
            state.statuses[job] = CANCELED
            return _reason(number, requirement, state.statuses)
        met = met and value is True
    if met:
        state.started.add(job)
        return True
    return None


def _reason(number: int, requirement: Requirement, statuses: Mapping[str, str]) -> str:
    named = dict.fromkeys(leaf.job for leaf in jobs_of(requirement) if leaf.job in statuses)
    ended = ", ".join(f"{job} is {statuses[job]}" for job in named)
    return f'requires[{number}] "{render(requirement)}" can no longer hold: {ended}'


def _in_yaml_order(state: ExecState, jobs: list[str]) -> list[Effect]:
    return [Start(job) for job in sorted(jobs, key=state.plan.index.__getitem__)]
