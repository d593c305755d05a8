"""The workflow RPCs of JobService: RunWorkflow, GetWorkflowStatus,
GetWorkflowJobs, ListWorkflows and the additions StopWorkflow,
DeleteWorkflow and WatchWorkflow.

RunWorkflow takes everything from the request (yamlContent and
workflowFiles): the server never reads a path of its own disk. The YAML is
checked by the same pure parser rnx runs, against what exists here
(networks, volumes, runtimes, the files sent); every job is then checked
like a RunJob request. Any problem refuses the whole workflow, listing all
of them, before anything is created.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence

from joblet.api import joblet_pb2 as pb
from joblet.config.model import DaemonConfig
from joblet.daemon.priority_cap import check_priority_cap
from joblet.errors import InvalidArgument, JobletError
from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.jobs.validation import validate_run_request
from joblet.network.manager import NetworkManager
from joblet.volumes.manager import VolumeManager
from joblet.workflows.masking import mask_secrets
from joblet.workflows.model import Known, WorkflowJob, WorkflowSpec
from joblet.workflows.order import topological
from joblet.workflows.record import FileMeta
from joblet.workflows.shell import Flow, WorkflowShell
from joblet.workflows.yamlspec import WorkflowInvalid, parse_workflow

WATCH_COALESCE_S = 0.02
# Network modes every node has, beside the custom networks.
BUILTIN_NETWORKS = frozenset({"bridge", "isolated", "none", "host"})


class WorkflowRpc:
    def __init__(
        self,
        shell: WorkflowShell,
        config: DaemonConfig,
        networks: NetworkManager | None = None,
        volumes: VolumeManager | None = None,
        runtimes: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        self._shell = shell
        self._config = config
        self._networks = networks
        self._volumes = volumes
        self._runtimes = runtimes  # the names of the installed runtimes
        self._host_cpus = os.cpu_count() or 1

    # ---- RunWorkflow -----------------------------------------------------

    async def run(self, request: pb.RunWorkflowRequest) -> pb.RunWorkflowResponse:
        text = request.yamlContent
        if not text.strip():
            raise InvalidArgument(
                "yamlContent is required: send the workflow's YAML (the server never "
                "reads a workflow file from its own disk)"
            )
        files = list(request.workflowFiles)
        spec = self._parse(text, files)
        job_specs = self._job_specs(spec.jobs, files)
        for name, job_spec in job_specs.items():
            check_priority_cap(self._config, job_spec.priority, f"jobs.{name}: priority")
        await self._create_volumes(spec)
        metas = [FileMeta(f.path, len(f.content), f.mode, f.isDirectory) for f in files]
        flow = await self._shell.create(spec, job_specs, text, metas)
        return pb.RunWorkflowResponse(workflowUuid=flow.record.id, status=self._shell.status(flow))

    def known(self, files: Sequence[pb.FileUpload]) -> Known:
        """What exists on this node, for the parser's checks."""
        networks: frozenset[str] | None = None
        if self._networks is not None:
            custom = {n.name for n in self._networks.list_networks()}
            networks = BUILTIN_NETWORKS | custom
        volumes: frozenset[str] | None = None
        if self._volumes is not None:
            volumes = frozenset(info.name for info, _ in self._volumes.list())
        runtimes = frozenset(self._runtimes()) if self._runtimes is not None else frozenset()
        return Known(
            runtimes=runtimes,
            networks=networks,
            volumes=volumes,
            files=frozenset(f.path.strip("/") for f in files),
            host_cpus=self._host_cpus,
        )

    def _parse(self, text: str, files: Sequence[pb.FileUpload]) -> WorkflowSpec:
        try:
            return parse_workflow(text, known=self.known(files))
        except WorkflowInvalid as exc:
            raise InvalidArgument(_problems("workflow is invalid", exc.problems)) from None

    def _job_specs(
        self, jobs: Sequence[WorkflowJob], files: Sequence[pb.FileUpload]
    ) -> dict[str, JobSpec]:
        """Each job checked as a RunJob request would be, all problems at once."""
        specs: dict[str, JobSpec] = {}
        problems: list[str] = []
        now = time.time()
        for job in jobs:
            request = _run_request(job, _uploads_of(job, files))
            try:
                spec = validate_run_request(
                    request, self._host_cpus, self._config.jobs.max_upload_bytes, now=now
                )
                if self._networks is not None:
                    self._networks.check_request(spec.network, 0, 0, admin=True)
            except JobletError as exc:
                problems.append(f"jobs.{job.name}: {exc}")
                continue
            specs[job.name] = spec
        if problems:
            raise InvalidArgument(_problems("workflow is invalid", problems))
        return specs

    async def _create_volumes(self, spec: WorkflowSpec) -> None:
        if self._volumes is None or not spec.volumes_to_create:
            return
        existing = {info.name for info, _ in self._volumes.list()}
        for decl in spec.volumes_to_create:
            if decl.name not in existing:
                await self._volumes.create(decl.name, decl.size, decl.type)

    # ---- reads -----------------------------------------------------------

    def status(self, request: pb.GetWorkflowStatusRequest) -> pb.GetWorkflowStatusResponse:
        flow = self._shell.resolve(request.workflowUuid)
        return self.status_message(flow)

    def status_message(self, flow: Flow) -> pb.GetWorkflowStatusResponse:
        jobs = self._shell.jobs_of(flow)
        return pb.GetWorkflowStatusResponse(
            workflow=self.info(flow, jobs), jobs=self._job_messages(flow, jobs)
        )

    def jobs(self, request: pb.GetWorkflowJobsRequest) -> pb.GetWorkflowJobsResponse:
        flow = self._shell.resolve(request.workflowUuid)
        return pb.GetWorkflowJobsResponse(jobs=self._job_messages(flow, self._shell.jobs_of(flow)))

    def listing(self, request: pb.ListWorkflowsRequest) -> pb.ListWorkflowsResponse:
        infos = [
            self.info(flow, self._shell.jobs_of(flow))
            for flow in self._shell.flows()
            if request.includeCompleted or not flow.record.finished
        ]
        return pb.ListWorkflowsResponse(workflows=infos)

    def info(self, flow: Flow, jobs: dict[str, Job | None]) -> pb.WorkflowInfo:
        statuses = [job.status if job is not None else JobStatus.CANCELED for job in jobs.values()]
        record = flow.record
        return pb.WorkflowInfo(
            uuid=record.id,
            name=record.name,
            status=self._shell.status(flow),
            totalJobs=len(statuses),
            completedJobs=statuses.count(JobStatus.COMPLETED),
            failedJobs=statuses.count(JobStatus.FAILED),
            canceledJobs=statuses.count(JobStatus.CANCELED),
            createdAt=_timestamp(record.created_at),
            startedAt=_timestamp(record.started_at),
            completedAt=_timestamp(record.ended_at),
            yamlContent=_masked(flow),
        )

    def _job_messages(self, flow: Flow, jobs: dict[str, Job | None]) -> list[pb.WorkflowJob]:
        dependencies = {job.name: job.dependencies for job in flow.spec.jobs}
        if flow.order is None or len(flow.order) != len(dependencies):  # the spec grew
            flow.order = topological(dependencies)
        out: list[pb.WorkflowJob] = []
        ids = flow.record.jobs
        for name in flow.order:
            job = jobs.get(name)
            if job is None:
                out.append(
                    pb.WorkflowJob(
                        jobUuid=ids.get(name, ""), jobName=name, status=str(JobStatus.CANCELED),
                        dependencies=dependencies[name], endReason="deleted",
                    )
                )  # fmt: skip
                continue
            # One constructor call per job: a 1,000-job reply is built often.
            out.append(
                pb.WorkflowJob(
                    jobUuid=job.id, jobName=name, status=job.status.value,
                    dependencies=dependencies[name], exitCode=job.exit_code,
                    endReason=job.end_reason, priority=job.spec.priority,
                    startTime=_timestamp(job.started_at) if job.started_at else None,
                    endTime=_timestamp(job.ended_at) if job.ended_at else None,
                )
            )  # fmt: skip
        return out

    async def watch(
        self, request: pb.GetWorkflowStatusRequest
    ) -> AsyncIterator[pb.GetWorkflowStatusResponse]:
        """The status now, then after every change (those within WATCH_COALESCE_S
        of each other in one message), until the workflow is finished."""
        flow = self._shell.resolve(request.workflowUuid)
        while True:
            # Read before the yield: it may finish while the message is sent,
            # and its last status must still go out.
            changed, finished = flow.changed, flow.record.finished
            began = time.perf_counter()
            message = self.status_message(flow)
            built = time.perf_counter() - began
            yield message
            if finished:
                return
            await changed.wait()
            # The changes of a short burst (a fan-out's starts) in one message:
            # each message carries every job and is built on the daemon's loop,
            # so a watcher of a large workflow waits a few times its build time.
            await asyncio.sleep(max(WATCH_COALESCE_S, 3 * built))

    # ---- stop and delete ---------------------------------------------------

    async def stop(self, request: pb.StopWorkflowRequest, caller: str) -> pb.StopWorkflowResponse:
        flow = self._shell.resolve(request.workflowUuid)
        result = await self._shell.stop(flow, caller)
        return pb.StopWorkflowResponse(
            workflowUuid=flow.record.id,
            status=self._shell.status(flow),
            stoppedJobs=result.stopped,
            canceledJobs=result.canceled,
        )

    async def delete(self, request: pb.DeleteWorkflowRequest) -> pb.DeleteWorkflowResponse:
        flow = self._shell.resolve(request.workflowUuid)
        deleted = await self._shell.delete(flow)
        return pb.DeleteWorkflowResponse(
            workflowUuid=flow.record.id,
            success=True,
            message=f"workflow {flow.record.id} deleted with {deleted} job(s)",
            deletedJobs=deleted,
        )


def _masked(flow: Flow) -> str:
    """The workflow's YAML with its secrets as ***, masked once: the text
    never changes, and masking parses it (a 1,000-job file takes ~0.1 s)."""
    if flow.masked is None:
        flow.masked = mask_secrets(flow.record.yaml)
    return flow.masked


def _problems(head: str, problems: Sequence[object]) -> str:
    lines = [str(p) for p in problems]
    return f"{head} ({len(lines)} problem{'s' if len(lines) != 1 else ''}):\n" + "\n".join(lines)


def _uploads_of(job: WorkflowJob, files: Sequence[pb.FileUpload]) -> list[pb.FileUpload]:
    """The workflow files a job asked for: each named file, each named
    directory with everything under it. No other job's files."""
    wanted = [path.strip("/") for path in job.uploads]
    out: list[pb.FileUpload] = []
    for upload in files:
        path = upload.path.strip("/")
        if any(path == w or path.startswith(w + "/") for w in wanted):
            out.append(upload)
    return out


def _run_request(job: WorkflowJob, uploads: list[pb.FileUpload]) -> pb.RunJobRequest:
    return pb.RunJobRequest(
        name=job.name,
        command=job.command,
        args=list(job.args),
        maxCpu=job.max_cpu,
        cpuCores=job.cpu_cores,
        maxMemory=job.max_memory_mb,
        maxIobps=job.max_iobps,
        uploads=uploads,
        network=job.network,
        volumes=list(job.volumes),
        runtime=job.runtime,
        workDir=job.workdir,
        environment=dict(job.environment),
        secret_environment=dict(job.secret_environment),
        gpu_count=job.gpu_count,
        gpu_memory_mb=job.gpu_memory_mb,
        priority=job.priority,
    )


def _timestamp(at: float) -> pb.Timestamp:
    if not at:
        return pb.Timestamp()
    seconds = int(at)
    return pb.Timestamp(seconds=seconds, nanos=int((at - seconds) * 1e9))
