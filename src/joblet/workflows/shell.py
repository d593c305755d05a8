"""The workflow executor's shell: feeds the pure executor the job manager's
status events and carries out its effects.

Every status change of a job passes through `changed` (the manager's
listener, beside the state client's). A final status of a workflow job is
queued and handled on the next turn of the event loop: `advance` gives the
effects, a Cancel ends a PENDING job at once (the executor cascades a
cancellation itself, in the same call; the CANCELED that comes back here as
an event is fed to `advance` like any other and changes nothing), a Start
releases the job through the manager's normal path (queue, limits,
isolation). A CANCELED a user gave a PENDING job (CancelJob) cascades
through that same event. No polling,
no timer: a dependent is released in the same loop turn its requirement's
end is handled.

A start is recorded before the launch: the start mark goes to the state
store first, then the job's own PENDING → INITIALIZING change, and the
manager launches only once the store holds both (it waits for every record
told so far). A restarted daemon rebuilds each unfinished workflow's state
from its jobs' statuses and the marks (`rebuild`), so a job never starts
twice and requirements met while it was down start their jobs now.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from joblet.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    JobletError,
    NotFound,
)
from joblet.jobs.ids import new_job_id, resolve_prefix
from joblet.jobs.manager import JobManager
from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.workflows.aggregate import workflow_status
from joblet.workflows.executor import Cancel, ExecState, Start, advance, initial, rebuild, stop
from joblet.workflows.expressions import Requirement
from joblet.workflows.model import WorkflowJob, WorkflowSpec
from joblet.workflows.record import (
    FileMeta,
    WorkflowRecord,
    record_to_json,
    start_key,
)
from joblet.workflows.waits import named_jobs, parse_requirements, verdict

log = logging.getLogger(__name__)

CANCELED_BY = "workflow"
WAITER_JOB = "job"  # the one job of a standalone record
UNRECORDED_REASON = "its workflow was not recorded before the daemon stopped"
ADDED = "added:"  # record.extra key prefix: a job added by RunJob, with its requirements
UNRECORDED_WAIT = "its requirements were not recorded before the daemon stopped"


class WorkflowStore(Protocol):
    """Where workflow records go (the state client): writes never block and
    are stored in order with the jobs' own records."""

    def put_workflow(self, key: str, record: bytes) -> None: ...

    def delete_workflow(self, key: str) -> None: ...


@dataclass
class Flow:
    """A workflow the daemon holds: its record, parsed spec and executor state."""

    record: WorkflowRecord
    spec: WorkflowSpec
    state: ExecState
    stopping: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    ended: set[str] = field(default_factory=set)  # jobs seen final: an event costs O(1)
    order: list[str] | None = None  # topological order of the jobs, once computed
    masked: str | None = None  # the YAML as served, once masked (parsing it is costly)

    def touch(self) -> None:
        """Wake the watchers; each takes a fresh event before it waits again."""
        self.changed.set()
        self.changed = asyncio.Event()


@dataclass
class Waiter:
    """A job given to RunJob with requirements: PENDING until they hold.
    Its record is a one-job workflow nobody lists (`standalone`)."""

    record: WorkflowRecord
    requirements: tuple[Requirement, ...]
    ids: dict[str, str]  # each job id as written in a requirement -> the full id

    @property
    def job_id(self) -> str:
        return self.record.jobs[WAITER_JOB]


@dataclass(frozen=True)
class StopResult:
    stopped: int
    canceled: int


class WorkflowShell:
    def __init__(
        self,
        manager: JobManager,
        store: WorkflowStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._manager = manager
        self._store = store
        self._clock = clock
        self._flows: dict[str, Flow] = {}
        self._by_job: dict[str, tuple[str, str]] = {}  # job id -> (workflow id, job name)
        self._events: deque[tuple[str, str, str]] = deque()
        self._draining = False
        self._tasks: set[asyncio.Task[None]] = set()
        # Jobs given to RunJob with requirements, and who waits on whom.
        self._waiters: dict[str, Waiter] = {}  # waiting job id -> waiter
        self._watching: dict[str, set[str]] = {}  # job id -> ids of jobs waiting on it
        self._checks: deque[str] = deque()

    # ---- the manager's listener ----------------------------------------

    def changed(self, job: Job) -> None:
        # A job stopped by a preemption and about to be requeued has not ended.
        final = job.status.is_final and not job.requeue_due
        if final and (job.id in self._watching or job.id in self._waiters):
            self._checks.extend(self._watching.pop(job.id, ()))
            self._checks.append(job.id)
            self._wake()
        ref = self._by_job.get(job.id)
        if ref is None:
            return
        flow = self._flows.get(ref[0])
        if flow is None:
            return
        flow.touch()
        if final:
            flow.ended.add(ref[1])
            self._events.append((ref[0], ref[1], str(job.status)))
            self._wake()

    def _wake(self) -> None:
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().call_soon(self._drain)

    def deleted(self, job_id: str) -> None:
        pass

    def push(self) -> None:
        pass

    async def recorded(self, timeout: float) -> bool:
        return True

    # ---- queries ---------------------------------------------------------

    def resolve(self, prefix: str) -> Flow:
        """A listed workflow by its id or a unique prefix of it."""
        visible = {wid for wid, flow in self._flows.items() if not flow.record.standalone}
        return self._flows[resolve_prefix(prefix, visible, "workflow")]

    def flows(self) -> list[Flow]:
        listed = [f for f in self._flows.values() if not f.record.standalone]
        return sorted(listed, key=lambda f: (f.record.created_at, f.record.id))

    def jobs_of(self, flow: Flow) -> dict[str, Job | None]:
        """Each job name of `flow` with its record (None once deleted), YAML order."""
        out: dict[str, Job | None] = {}
        for name, job_id in flow.record.jobs.items():
            try:
                out[name] = self._manager.get(job_id)
            except JobletError:
                out[name] = None
        return out

    def statuses(self, flow: Flow) -> dict[str, str]:
        return {
            name: str(job.status if job is not None else JobStatus.CANCELED)
            for name, job in self.jobs_of(flow).items()
        }

    def status(self, flow: Flow) -> str:
        return workflow_status(self.statuses(flow), flow.spec, flow.record.stopped_by_user)

    def holds(self, job_id: str) -> bool:
        """Whether `job_id` belongs to a workflow that is not finished."""
        ref = self._by_job.get(job_id)
        if ref is None:
            return False
        flow = self._flows.get(ref[0])
        return flow is not None and not flow.record.finished

    def group_of(self, job_id: str) -> tuple[str, bool] | None:
        """The workflow `job_id` is in and whether that workflow is finished."""
        ref = self._by_job.get(job_id)
        flow = self._flows.get(ref[0]) if ref is not None else None
        if flow is None:
            return None
        return flow.record.id, flow.record.finished

    def forget_finished(self, workflow_id: str) -> bool:
        """Drop a finished workflow whose jobs were collected (job retention):
        its records go, its jobs' histories stay in persist."""
        flow = self._flows.get(workflow_id)
        if flow is None or not flow.record.finished:
            return False
        for job_id in flow.record.jobs.values():
            self._by_job.pop(job_id, None)
        for name in flow.record.started:
            self._store.delete_workflow(start_key(flow.record.id, name))
        self._store.delete_workflow(flow.record.id)
        del self._flows[flow.record.id]
        flow.touch()
        return True

    # ---- commands --------------------------------------------------------

    async def create(
        self,
        spec: WorkflowSpec,
        job_specs: Mapping[str, JobSpec],
        yaml_text: str,
        files: Iterable[FileMeta] = (),
        *,
        standalone: bool = False,
        requirements: tuple[str, ...] = (),
    ) -> Flow:
        """Create every job record (PENDING), record the workflow, then start
        the jobs that need nothing. `job_specs`: one per job of `spec`, validated."""
        workflow_id = new_job_id()
        jobs: dict[str, str] = {}
        try:
            for job in spec.jobs:
                job_spec = replace(
                    job_specs[job.name], workflow_uuid=workflow_id, dependencies=job.dependencies
                )
                jobs[job.name] = (await self._manager.submit(job_spec, pending=True)).id
        except BaseException:
            await self._undo(jobs.values())
            raise
        record = WorkflowRecord(
            id=workflow_id,
            name=spec.name,
            yaml=yaml_text,
            jobs=jobs,
            created_at=self._clock(),
            files=tuple(files),
            standalone=standalone,
            requirements=requirements,
        )
        state, effects = initial(spec)
        flow = Flow(record, spec, state)
        self._save(flow)
        self._flows[workflow_id] = flow
        for name, job_id in jobs.items():
            self._by_job[job_id] = (workflow_id, name)
        self._apply(flow, effects)
        # Answered once stored: a daemon killed right after still knows it.
        await self._manager.confirm_recorded(f"workflow {workflow_id}")
        return flow

    async def submit_waiting(self, spec: JobSpec, texts: list[str]) -> Job:
        """A job that waits (PENDING) until its requirements hold (RunJob's
        `requirements`): each names jobs by id or unique prefix."""
        requirements = parse_requirements(texts)
        ids = {written: self._manager.get(written).id for written in named_jobs(requirements)}
        job = await self._manager.submit(spec, pending=True)
        record = WorkflowRecord(
            id=new_job_id(),
            name="",
            yaml="",
            jobs={WAITER_JOB: job.id},
            created_at=self._clock(),
            standalone=True,
            requirements=tuple(texts),
            extra=ids,
        )
        self._store.put_workflow(record.id, record_to_json(record))
        self._watch(Waiter(record, requirements, ids))
        self._check(job.id)
        await self._manager.confirm_recorded(f"job {job.id}")
        return self._manager.get(job.id)

    def _watch(self, waiter: Waiter) -> None:
        self._waiters[waiter.job_id] = waiter
        for full in waiter.ids.values():
            self._watching.setdefault(full, set()).add(waiter.job_id)

    def _check(self, job_id: str) -> None:
        """Decide a waiting job now if its requirements allow; forget it once final."""
        waiter = self._waiters.get(job_id)
        if waiter is None:
            return
        try:
            job = self._manager.get(job_id)
        except JobletError:
            job = None
        if job is None or job.status is not JobStatus.PENDING:
            if job is None or job.status.is_final:
                self._forget_waiter(waiter)
            return
        if WAITER_JOB in waiter.record.started:
            return  # released already; its launch is under way
        statuses: dict[str, str] = {}
        for written, full in waiter.ids.items():
            try:
                status = self._manager.get(full).status
            except JobletError:
                status = JobStatus.CANCELED  # deleted: it had ended
            if status.is_final:
                statuses[written] = str(status)
        decision = verdict(waiter.requirements, statuses)
        if decision is True:
            waiter.record = waiter.record.with_started({WAITER_JOB})
            self._store.put_workflow(start_key(waiter.record.id, WAITER_JOB), b"1")
            self._spawn(self._release_one(job_id))
        elif isinstance(decision, str):
            self._manager.cancel_pending(job_id, CANCELED_BY, decision)

    def _forget_waiter(self, waiter: Waiter) -> None:
        self._waiters.pop(waiter.job_id, None)
        for full in waiter.ids.values():
            watchers = self._watching.get(full)
            if watchers is not None:
                watchers.discard(waiter.job_id)
                if not watchers:
                    del self._watching[full]
        for name in waiter.record.started:
            self._store.delete_workflow(start_key(waiter.record.id, name))
        self._store.delete_workflow(waiter.record.id)

    async def add_job(self, workflow_id: str, spec: JobSpec, texts: list[str]) -> Job:
        """Add a job to an unfinished workflow (RunJob's `workflowUuid`): its
        requirements name jobs of the workflow by name."""
        flow = self._flows.get(workflow_id)
        if flow is None or flow.record.standalone:
            raise NotFound(f"workflow {workflow_id} not found")
        if flow.record.finished or flow.stopping:
            raise FailedPrecondition(f"workflow {workflow_id} is {self.status(flow)}: add no job")
        name = spec.name
        if not name:
            raise InvalidArgument("a job added to a workflow needs a name")
        if name in flow.record.jobs:
            raise AlreadyExists(f"workflow {workflow_id} has a job named {name!r} already")
        for job_name, job_id in flow.record.jobs.items():  # a jobUuid entry names it by id
            texts = [text.replace(job_id, job_name) for text in texts]
        requirements = parse_requirements(texts)
        names = named_jobs(requirements)
        unknown = [n for n in names if n not in flow.record.jobs]
        if unknown:
            raise InvalidArgument(
                f"requirements name {', '.join(map(repr, unknown))}: not jobs of workflow "
                f"{workflow_id} (name its jobs by their names)"
            )
        spec = replace(spec, workflow_uuid=workflow_id, dependencies=tuple(names))
        job = await self._manager.submit(spec, pending=True)
        added = WorkflowJob(
            name=name, command=spec.command, requires=requirements, dependencies=tuple(names)
        )
        flow.spec = replace(flow.spec, jobs=(*flow.spec.jobs, added))
        extra = {**flow.record.extra, ADDED + name: json.dumps(texts)}
        flow.record = replace(flow.record, jobs={**flow.record.jobs, name: job.id}, extra=extra)
        self._save(flow)
        self._by_job[job.id] = (workflow_id, name)
        state = flow.state
        flow.state, effects = rebuild(
            flow.spec, state.statuses, state.started, stopped=state.stopped
        )
        self._apply(flow, effects)
        flow.touch()
        await self._manager.confirm_recorded(f"job {job.id}")
        return self._manager.get(job.id)

    async def _undo(self, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            try:
                self._manager.cancel_pending(job_id, CANCELED_BY, "its workflow was not created")
                await self._manager.delete(job_id)
            except JobletError:
                log.exception("removing job %s of a workflow not created", job_id)

    async def stop(self, flow: Flow, caller: str) -> StopResult:
        """No new starts; pending jobs CANCELED; running, queued and scheduled stopped."""
        if flow.record.finished:
            raise FailedPrecondition(
                f"workflow {flow.record.id} is {self.status(flow)}: nothing left to stop"
            )
        flow.stopping = True
        if not flow.record.stopped_by_user:
            flow.record = replace(flow.record, stopped_by_user=True)
            self._save(flow)
        flow.state, effects = stop(flow.state)
        canceled = self._apply(flow, effects)
        stopped = 0
        for name, job in self.jobs_of(flow).items():
            if job is None or job.status.is_final:
                continue
            if job.status is JobStatus.PENDING:
                self._manager.cancel_pending(job.id, caller, "its workflow was stopped")
                canceled += 1
                continue
            try:
                await self._manager.stop(job.id, caller)
                stopped += 1
            except JobletError as exc:  # it ended meanwhile
                log.info("workflow %s: job %s not stopped: %s", flow.record.id, name, exc)
        self._finish_if_done(flow)
        return StopResult(stopped, canceled)

    async def delete(self, flow: Flow) -> int:
        """Delete a finished workflow and its jobs; how many jobs went."""
        if not flow.record.finished:
            raise FailedPrecondition(
                f"workflow {flow.record.id} is {self.status(flow)}: stop it before deleting it"
            )
        deleted = 0
        for job_id in flow.record.jobs.values():
            self._by_job.pop(job_id, None)
            try:
                await self._manager.delete(job_id)
                deleted += 1
            except JobletError:
                pass  # deleted on its own already
        for name in flow.record.started:
            self._store.delete_workflow(start_key(flow.record.id, name))
        self._store.delete_workflow(flow.record.id)
        del self._flows[flow.record.id]
        flow.touch()
        return deleted

    # ---- restart ---------------------------------------------------------

    def restore_waiting(self, records: Iterable[WorkflowRecord]) -> None:
        """Take up the jobs given to RunJob with requirements: those whose start
        was recorded are released, the others decided against the statuses now."""
        for record in records:
            try:
                requirements = parse_requirements(record.requirements)
            except JobletError as exc:
                log.error("job %s: its requirements no longer parse: %s", record.jobs, exc)
                requirements = ()
            waiter = Waiter(record, requirements, dict(record.extra))
            self._watch(waiter)
            job_id = waiter.job_id
            try:
                pending = self._manager.get(job_id).status is JobStatus.PENDING
            except JobletError:
                pending = False
            if pending and WAITER_JOB in record.started:
                self._spawn(self._release_one(job_id))
            elif pending and not requirements:
                self._manager.cancel_pending(job_id, CANCELED_BY, "its requirements were lost")
            else:
                self._check(job_id)
        for job in self._manager.list_jobs():
            lost = not job.spec.workflow_uuid and job.id not in self._waiters
            if job.status is JobStatus.PENDING and lost:
                self._manager.cancel_pending(job.id, CANCELED_BY, UNRECORDED_WAIT)

    def restore(self, loaded: Iterable[tuple[WorkflowRecord, WorkflowSpec]]) -> None:
        """Take up the workflows a previous daemon left: rebuild each unfinished
        one's state from its jobs' statuses and start what became due, once."""
        for record, spec in loaded:
            flow = Flow(record, spec, initial(spec)[0])
            self._flows[record.id] = flow
            for name, job_id in record.jobs.items():
                self._by_job[job_id] = (record.id, name)
            statuses = self.statuses(flow)
            flow.ended = {n for n, s in statuses.items() if JobStatus(s).is_final}
            stopped = record.stopped_by_user
            flow.state, effects = rebuild(spec, statuses, record.started, stopped=stopped)
            if record.finished:
                continue
            flow.stopping = stopped
            # Starts decided and recorded whose job was never released: the
            # launch cannot have happened (it waits for the release's record).
            due = [n for n in record.started if statuses.get(n) == JobStatus.PENDING]
            self._apply(flow, effects)
            if due:
                self._release(flow, sorted(due, key=list(record.jobs).index))
            self._finish_if_done(flow)
        for job in self._manager.list_jobs():
            orphan = job.spec.workflow_uuid and job.spec.workflow_uuid not in self._flows
            if job.status is JobStatus.PENDING and job.id not in self._by_job and orphan:
                self._manager.cancel_pending(job.id, CANCELED_BY, UNRECORDED_REASON)

    # ---- effects ---------------------------------------------------------

    def _drain(self) -> None:
        try:
            while self._checks:
                self._check(self._checks.popleft())
            while self._events:
                workflow_id, name, status = self._events.popleft()
                flow = self._flows.get(workflow_id)
                if flow is None:
                    continue
                flow.state, effects = advance(flow.state, name, status)
                self._apply(flow, effects)
                self._finish_if_done(flow)
        finally:
            self._draining = False

    def _apply(self, flow: Flow, effects: Iterable[object]) -> int:
        """Carry out the executor's effects; how many jobs it canceled."""
        starts: list[str] = []
        canceled = 0
        for effect in effects:
            if isinstance(effect, Cancel):
                canceled += self._cancel(flow, effect.job, effect.reason)
            elif isinstance(effect, Start) and effect.job not in flow.record.started:
                starts.append(effect.job)
        if starts and not flow.stopping:
            record = flow.record.with_started(set(starts))
            if not record.started_at:
                record = replace(record, started_at=self._clock())
                flow.record = record
                self._save(flow)
            flow.record = record
            for name in starts:
                self._store.put_workflow(start_key(record.id, name), b"1")
            self._release(flow, starts)
        return canceled

    def _cancel(self, flow: Flow, name: str, reason: str) -> int:
        job_id = flow.record.jobs[name]
        try:
            job = self._manager.get(job_id)
        except JobletError:
            return 0
        if job.status is not JobStatus.PENDING:
            return 0
        self._manager.cancel_pending(job_id, CANCELED_BY, reason)
        return 1

    def _release(self, flow: Flow, names: list[str]) -> None:
        """Release the jobs, in YAML order. The manager waits, before each
        launch, until the store holds every record told so far: the start
        marks were told first."""
        for name in names:
            job_id = flow.record.jobs[name]
            if flow.stopping:
                self._cancel(flow, name, "its workflow was stopped")
                continue
            self._spawn(self._release_one(job_id))

    async def _release_one(self, job_id: str) -> None:
        try:
            await self._manager.release(job_id)
        except JobletError as exc:
            log.warning("job %s could not be started: %s", job_id, exc)
            try:
                if self._manager.get(job_id).status is JobStatus.PENDING:
                    self._manager.fail_pending(job_id, f"not started: {exc}")
            except JobletError:
                pass

    def _finish_if_done(self, flow: Flow) -> None:
        if flow.record.finished or len(flow.ended) < len(flow.record.jobs):
            return
        statuses = self.statuses(flow)
        if all(JobStatus(s).is_final for s in statuses.values()):
            flow.record = replace(flow.record, ended_at=self._clock())
            self._save(flow)
            flow.touch()

    def _save(self, flow: Flow) -> None:
        self._store.put_workflow(flow.record.id, record_to_json(flow.record))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
