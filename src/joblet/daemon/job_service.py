"""JobService: the public job RPCs. RPCs of later features keep the generated
base class's UNIMPLEMENTED answer."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from typing import Any

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.cluster.jobs import ClusterJobs
from joblet.config.model import DaemonConfig
from joblet.config.units import parse_duration_s
from joblet.daemon import heap, job_pages, log_rpc, mappers, metrics_rpc, upload_rpc
from joblet.daemon.cluster_reads import find_elsewhere, other_jobs, with_other_jobs
from joblet.daemon.errors import streaming, unary
from joblet.daemon.job_listing import OMITTED_KEY, list_message
from joblet.daemon.placement import Placer
from joblet.daemon.priority_cap import check_priority_cap
from joblet.daemon.workflow_service import WorkflowRpc
from joblet.errors import FailedPrecondition, InvalidArgument, NotFound, Unimplemented
from joblet.jobs.manager import JobManager
from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.jobs.schedule import parse_schedule
from joblet.jobs.signals import check_grace, parse_signal
from joblet.jobs.validation import merge_staged, validate_run_request
from joblet.logs.filters import LogFilter
from joblet.logs.format import Stream
from joblet.logs.reader import ChunkHead
from joblet.metrics.hub import MetricsHub
from joblet.network.manager import NetworkManager
from joblet.security.interceptor import current_caller
from joblet.security.roles import Role
from joblet.staging.store import UploadStaging
from joblet.volumes.manager import VolumeManager
from joblet.workflows.shell import WorkflowShell
from joblet.workflows.waits import requirement_texts

Context = Any  # grpc.aio.ServicerContext


FAILURES_SHOWN = 5  # a reply names the first few; the daemon's log has them all


def _left_behind(failures: tuple[str, ...]) -> str:
    """The reply's account of what deleting could not remove."""
    shown = "; ".join(failures[:FAILURES_SHOWN])
    more = len(failures) - FAILURES_SHOWN
    return f"; not removed: {shown}" + (f" (and {more} more)" if more > 0 else "")


def _caller_name() -> str:
    caller = current_caller.get(None)
    return caller.name if caller is not None else "unknown"


class JobService(pb_grpc.JobServiceServicer):
    def __init__(
        self,
        manager: JobManager,
        config: DaemonConfig,
        hub: MetricsHub,
        networks: NetworkManager | None = None,
        volumes: VolumeManager | None = None,
        *,
        staging: UploadStaging | None = None,
        workflows: WorkflowRpc | None = None,
        shell: WorkflowShell | None = None,
        cluster: ClusterJobs | None = None,
    ) -> None:
        if staging is None:
            staging = UploadStaging(config.layout.staging, config.jobs.max_upload_bytes)
            staging.reset()
        self._staging = staging
        self._workflows = workflows
        self._shell = shell
        self._cluster = cluster  # other nodes' jobs, in a cluster
        self._volumes = volumes
        self._manager = manager
        self._hub = hub
        self._networks = networks
        self._config = config
        self._host_cpus = os.cpu_count() or 1  # cpuset numbers are host CPU ids
        self.placer: Placer | None = None  # cluster.placement: jobs go where there is room

    @unary
    async def RunJob(self, request: pb.RunJobRequest, context: Context) -> pb.RunJobResponse:
        now = time.time()
        spec = validate_run_request(
            request, self._host_cpus, self._config.jobs.max_upload_bytes, now=now
        )
        check_priority_cap(self._config, spec.priority)
        if self._volumes is not None and spec.volumes:
            self._volumes.resolve_for_job(spec.volumes)  # unknown volume: NOT_FOUND now
        if self._networks is not None:
            caller = current_caller.get(None)
            admin = caller is not None and caller.role is Role.ADMIN
            self._networks.check_request(
                spec.network, spec.max_ingress_bps, spec.max_egress_bps, admin=admin
            )
        if request.place and self.placer is None:
            raise InvalidArgument("place: this node's cluster does not place jobs"
                                  " (cluster.placement)")  # fmt: skip
        if self.placer is not None and self.placer.takes(request):
            job_id = await self.placer.place(request)
            queued = Job(job_id, spec, JobStatus.QUEUED, created_at=now)
            return mappers.run_response(queued)
        if request.requirements or request.workflowUuid:
            return mappers.run_response(await self._submit_waiting(request, spec))
        scheduled_at = parse_schedule(spec.schedule, now) if spec.schedule else 0.0
        if not request.uploadSession:
            job = await self._manager.submit(spec, scheduled_at)
            if request.uploads:
                heap.trim_soon()
            return mappers.run_response(job)
        session, staged = self._staging.take(_caller_name(), request.uploadSession)
        try:
            limit = self._config.jobs.max_upload_bytes
            spec = replace(spec, uploads=merge_staged(spec.uploads, staged, limit))
            job = await self._manager.submit(spec, scheduled_at)
        finally:
            # Copied into the workspace, or refused: a session serves one RunJob.
            await asyncio.to_thread(self._staging.discard, session)
        return mappers.run_response(job)

    async def launch_placed(self, job_id: str, request: pb.RunJobRequest) -> Job:
        """A job the cluster placed here, under the id it was given: checked
        again against this node (its volumes, networks, runtimes)."""
        spec = validate_run_request(
            request, self._host_cpus, self._config.jobs.max_upload_bytes, now=time.time()
        )
        if self._volumes is not None and spec.volumes:
            self._volumes.resolve_for_job(spec.volumes)
        # An earlier run of it here is gone by now (the placement worker ends
        # it first: JobManager.end_earlier_run); one left is refused: never two.
        return await self._manager.submit(spec, job_id=job_id)

    async def _submit_waiting(self, request: pb.RunJobRequest, spec: JobSpec) -> Job:
        """A job that waits for its requirements (PENDING), like Slurm's --dependency."""
        if self._shell is None:
            raise Unimplemented("requirements are not served by this node")
        if spec.schedule:
            raise InvalidArgument("a job with requirements cannot have a schedule as well")
        texts = requirement_texts(request.requirements)
        if request.workflowUuid:
            return await self._shell.add_job(request.workflowUuid, spec, texts)
        return await self._shell.submit_waiting(spec, texts)

    @unary
    async def WriteJobStdin(
        self, request_iterator: AsyncIterator[pb.StdinChunk], context: Context
    ) -> pb.StdinResult:
        first = await anext(request_iterator, None)
        if first is None or not first.jobUuid:
            raise InvalidArgument("WriteJobStdin: the first message names the job (jobUuid)")

        async def data() -> AsyncIterator[bytes]:
            yield first.data
            async for chunk in request_iterator:
                yield chunk.data

        written = await self._manager.feed_stdin(first.jobUuid, data())
        return pb.StdinResult(bytesWritten=written)

    @unary
    async def UploadFiles(
        self, request_iterator: AsyncIterator[pb.UploadChunk], context: Context
    ) -> pb.UploadSession:
        return await upload_rpc.receive(self._staging, _caller_name(), request_iterator)

    @unary
    async def GetJobStatus(
        self, request: pb.GetJobStatusReq, context: Context
    ) -> pb.GetJobStatusRes:
        try:
            return mappers.status_message(self._manager.get(request.uuid))
        except NotFound as missing:
            elsewhere = await find_elsewhere(self._cluster, request.uuid)
            if elsewhere is not None:
                return mappers.status_message(elsewhere)
            job_id, archived = self._manager.history_ref(request.uuid)
            # Only the history of a job another node ran is here to read.
            if archived and await self._hub.archived_exists(job_id):
                raise NotFound(
                    f"job {job_id} is not on this node, but its history is: its logs and"
                    " metrics are read from the history store by this id"
                ) from missing
            raise

    @unary
    async def StopJob(self, request: pb.StopJobReq, context: Context) -> pb.StopJobRes:
        signum = parse_signal(request.signal)
        if request.signal_only:
            job = await self._manager.send_signal(request.uuid, signum)
        else:
            grace = check_grace(request.grace_seconds)
            job = await self._manager.stop(request.uuid, _caller_name(), signum, grace)
        return mappers.stop_response(job)

    @unary
    async def CancelJob(self, request: pb.CancelJobReq, context: Context) -> pb.CancelJobRes:
        job = await self._manager.cancel(request.uuid, _caller_name())
        return mappers.cancel_response(job)

    @unary
    async def DeleteJob(self, request: pb.DeleteJobReq, context: Context) -> pb.DeleteJobRes:
        if self._shell is not None:
            job = self._manager.get(request.uuid)
            if self._shell.holds(job.id):
                raise FailedPrecondition(
                    f"job {job.id} belongs to workflow {job.spec.workflow_uuid}, which is "
                    "not finished: stop the workflow, or delete it once finished"
                )
        job, deletion = await self._manager.delete(request.uuid)
        message = f"job {job.id} deleted"
        if deletion.failures:
            message += _left_behind(deletion.failures)
        return pb.DeleteJobRes(uuid=job.id, success=not deletion.failures, message=message)

    @unary
    async def DeleteAllJobs(
        self, request: pb.DeleteAllJobsReq, context: Context
    ) -> pb.DeleteAllJobsRes:
        keep = self._shell.holds if self._shell is not None else None
        deletion = await self._manager.delete_all(keep)
        message = f"deleted {deletion.deleted} finished job(s)"
        if deletion.skipped:
            message += (
                f", skipped {deletion.skipped} job(s) still running or waiting"
                " or in an unfinished workflow"
            )
        if deletion.failures:
            message += _left_behind(deletion.failures)
        return pb.DeleteAllJobsRes(
            success=not deletion.failures,
            message=message,
            deleted_count=deletion.deleted,
            skipped_count=deletion.skipped,
        )

    @unary
    async def ListJobs(self, request: pb.EmptyRequest, context: Context) -> pb.Jobs:
        jobs = self._manager.list_jobs() + await other_jobs(self._cluster)
        reply, omitted = list_message(jobs)
        if omitted:
            context.set_trailing_metadata(((OMITTED_KEY, str(omitted)),))
        return reply

    @streaming
    async def ListJobPages(
        self, request: pb.ListJobPagesRequest, context: Context
    ) -> AsyncIterator[pb.JobPage]:
        query = job_pages.query_from(request)
        snapshot, find = await with_other_jobs(self._manager, self._cluster)
        async for page in job_pages.pages(snapshot, find, query):
            yield page

    # ---- workflows ---------------------------------------------------------

    def _flows(self) -> WorkflowRpc:
        if self._workflows is None:
            raise Unimplemented("workflows are not served by this node")
        return self._workflows

    @unary
    async def RunWorkflow(
        self, request: pb.RunWorkflowRequest, context: Context
    ) -> pb.RunWorkflowResponse:
        return await self._flows().run(request)

    @unary
    async def GetWorkflowStatus(
        self, request: pb.GetWorkflowStatusRequest, context: Context
    ) -> pb.GetWorkflowStatusResponse:
        return self._flows().status(request)

    @unary
    async def GetWorkflowJobs(
        self, request: pb.GetWorkflowJobsRequest, context: Context
    ) -> pb.GetWorkflowJobsResponse:
        return self._flows().jobs(request)

    @unary
    async def ListWorkflows(
        self, request: pb.ListWorkflowsRequest, context: Context
    ) -> pb.ListWorkflowsResponse:
        return self._flows().listing(request)

    @unary
    async def StopWorkflow(
        self, request: pb.StopWorkflowRequest, context: Context
    ) -> pb.StopWorkflowResponse:
        return await self._flows().stop(request, _caller_name())

    @unary
    async def DeleteWorkflow(
        self, request: pb.DeleteWorkflowRequest, context: Context
    ) -> pb.DeleteWorkflowResponse:
        return await self._flows().delete(request)

    @streaming
    async def WatchWorkflow(
        self, request: pb.GetWorkflowStatusRequest, context: Context
    ) -> AsyncIterator[pb.GetWorkflowStatusResponse]:
        async for message in self._flows().watch(request):
            yield message

    @streaming
    async def GetJobLogs(
        self, request: pb.GetJobLogsReq, context: Context
    ) -> AsyncIterator[pb.DataChunk]:
        async for chunk in self._log_chunks(request, None):
            yield pb.DataChunk(payload=chunk)

    @streaming
    async def get_job_logs_serialized(
        self, request: pb.GetJobLogsReq, context: Context
    ) -> AsyncIterator[bytes]:
        """GetJobLogs yielding serialized DataChunks: what the server serves
        (`log_rpc.install_serialized_logs`)."""
        async for chunk in self._log_chunks(request, log_rpc.data_chunk_head):
            yield chunk

    def _log_chunks(
        self, request: pb.GetJobLogsReq, head: ChunkHead | None
    ) -> AsyncIterator[bytes]:
        log_filter = log_filter_from(request, time.time())
        # A job this node does not know may be in a history archive that
        # other nodes share (persist.backend s3): asked for by its full id.
        job_id, archived = self._manager.history_ref(request.uuid)
        if archived:
            return self._manager.read_archived_logs(job_id, log_filter, head)
        return self._manager.read_logs(job_id, log_filter, head)

    @streaming
    async def StreamJobMetrics(
        self, request: pb.JobMetricsRequest, context: Context
    ) -> AsyncIterator[pb.JobMetricsSample]:
        try:
            job = self._manager.get(request.uuid)
        except NotFound:
            job_id, archived = self._manager.history_ref(request.uuid)
            if not archived:
                raise
            # Another node's job, ended: its history from the history store.
            history = metrics_rpc.stream_job_metrics(self._hub, job_id, False, archived=True)
            async for sample in history:
                yield sample
            return
        running = job.status is JobStatus.RUNNING
        async for sample in metrics_rpc.stream_job_metrics(self._hub, job.id, running):
            yield sample

    @unary
    async def GetJobMetricsHistory(
        self, request: pb.JobMetricsHistoryRequest, context: Context
    ) -> pb.JobMetricsHistoryResponse:
        job_id, archived = self._manager.history_ref(request.uuid)
        return await metrics_rpc.get_job_metrics_history(
            self._hub, job_id, request, archived=archived
        )

    @unary
    async def GetJobMetricsSummary(
        self, request: pb.JobMetricsSummaryRequest, context: Context
    ) -> pb.JobMetricsSummaryResponse:
        job_id, archived = self._manager.history_ref(request.uuid)
        return await metrics_rpc.get_job_metrics_summary(
            self._hub, job_id, request, archived=archived
        )


MAX_NS = 2**63 - 1


def log_filter_from(request: pb.GetJobLogsReq, now: float) -> LogFilter:
    """GetJobLogsReq's options (our additions; all unset = the whole log, live)."""
    if request.tail < 0:
        raise InvalidArgument("tail must be >= 0 (lines)")
    streams = {"": None, "stdout": Stream.STDOUT, "stderr": Stream.STDERR}
    if request.stream not in streams:
        raise InvalidArgument(f"stream {request.stream!r}: use stdout, stderr or leave it empty")
    return LogFilter(
        stream=streams[request.stream],
        since_ns=_since_ns(request.since.strip(), now),
        tail_lines=request.tail,
        follow=not request.noFollow,
        timestamps=request.timestamps,
    )


def _since_ns(text: str, now: float) -> int:
    if not text:
        return 0
    try:
        # A duration longer than the epoch's age means the whole log.
        return max(0, int((now - parse_duration_s(text)) * 1e9))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(
            f"since {text!r}: give an RFC3339 time or a duration such as 10m"
        ) from None
    if moment.tzinfo is None:
        raise InvalidArgument(f"since {text!r}: an RFC3339 time needs a time zone")
    return max(0, min(int(moment.timestamp() * 1e9), MAX_NS))  # int64 nanoseconds end in 2262
