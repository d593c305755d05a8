"""Job records to protobuf messages. Proto messages stop here: nothing below
the servicers sees them. Secret values never leave: they go out as '***'."""

from __future__ import annotations

from typing import Any

from joblet.api import joblet_pb2 as pb
from joblet.jobs.environment import mask_secrets
from joblet.jobs.model import Job
from joblet.jobs.schedule import format_rfc3339


def _user(job: Job) -> str:
    uid, gid = job.run_as
    return f"{uid}:{gid}"


def _ts(value: float) -> str:
    return format_rfc3339(value) if value else ""


def _shared_fields(job: Job) -> dict[str, Any]:
    """The fields `Job` and `GetJobStatusRes` have in common (same names)."""
    spec = job.spec
    return {
        "uuid": job.id,
        "name": spec.name,
        "command": spec.command,
        "args": list(spec.args),
        "maxCPU": spec.max_cpu,
        "cpuCores": spec.cpu_cores,
        "maxMemory": spec.max_memory_mb,
        "maxIOBPS": spec.max_iobps,
        "status": job.status.value,
        "startTime": _ts(job.started_at),
        "endTime": _ts(job.ended_at),
        "exitCode": job.exit_code,
        "scheduledTime": _ts(job.scheduled_at),
        "runtime": spec.runtime,
        "environment": dict(spec.environment),
        "secret_environment": mask_secrets(spec.secret_environment),
        "gpu_count": spec.gpu_count,
        "gpu_memory_mb": spec.gpu_memory_mb,
        "gpu_indices": list(job.gpu_indices),
        "gpu_ids": list(spec.gpu_ids),
        "nodeId": job.node_id,
        "endReason": job.end_reason,
        "user": _user(job),
        "maxIngressBitsPerSec": spec.max_ingress_bps,
        "maxEgressBitsPerSec": spec.max_egress_bps,
        "priority": spec.priority,
        "preemptible": spec.preemptible,
        "onPreempt": spec.on_preempt,
        "preemptions": job.preemptions,
        "waitReason": job.wait_reason,
        "stopGracePeriod": format_grace(spec.stop_grace_s),
    }


def format_grace(seconds: float | None) -> str:
    """A job's own grace period as a duration ("" = the node's)."""
    if seconds is None:
        return ""
    return f"{seconds:g}s"


def job_message(job: Job, *, details: bool = True) -> pb.Job:
    """A job's list entry; without `details`, no environment and arguments."""
    fields = _shared_fields(job)
    if not details:
        del fields["environment"], fields["secret_environment"], fields["args"]
    return pb.Job(**fields)


def status_message(job: Job) -> pb.GetJobStatusRes:
    spec = job.spec
    return pb.GetJobStatusRes(
        **_shared_fields(job),
        network=spec.network,
        volumes=list(spec.volumes),
        workDir=spec.workdir or "/work",
        uploads=list(job.upload_names),
        dependencies=list(spec.dependencies),
        workflowUuid=spec.workflow_uuid,
    )


def run_response(job: Job) -> pb.RunJobResponse:
    spec = job.spec
    return pb.RunJobResponse(
        jobUuid=job.id,
        status=job.status.value,
        command=spec.command,
        args=list(spec.args),
        maxCpu=spec.max_cpu,
        cpuCores=spec.cpu_cores,
        maxMemory=spec.max_memory_mb,
        maxIobps=spec.max_iobps,
        startTime=_ts(job.started_at),
        endTime=_ts(job.ended_at),
        exitCode=job.exit_code,
        scheduledTime=_ts(job.scheduled_at),
        endReason=job.end_reason,
    )


def stop_response(job: Job) -> pb.StopJobRes:
    return pb.StopJobRes(
        uuid=job.id, status=job.status.value, endTime=_ts(job.ended_at), exitCode=job.exit_code
    )


def cancel_response(job: Job) -> pb.CancelJobRes:
    return pb.CancelJobRes(uuid=job.id, status=job.status.value)
