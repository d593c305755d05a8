"""`joblet.JobletClient`: the API of the reference's Python SDK
(`joblet-sdk-python` 1.x) over this package's connection, so scripts written
for it run unchanged:

    >>> from joblet import JobletClient
    >>> with JobletClient() as client:               # doctest: +SKIP
    ...     job = client.jobs.run_job(command="echo", args=["hi"])
    ...     client.jobs.get_job_status(job["job_uuid"])["status"]
    'COMPLETED'

Results are the reference's dicts (snake_case keys). Its config discovery is
kept ($RNX_CONFIG_PATH, ~/.rnx/rnx-config.yml) after explicit arguments and
before rnx's own places. One difference on purpose: the connection is always
mutual TLS (`insecure` is accepted and ignored), as this node requires.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.sdk.client import Client
from joblet.sdk.convert import to_snake_dict
from joblet.sdk.errors import (
    ConnectionError,
    JobletException,
    JobNotFoundError,
    NetworkError,
    RuntimeNotFoundError,
    VolumeError,
    WorkflowNotFoundError,
)
from joblet.sdk.requests import run_request

T = TypeVar("T")
Dicts = list[dict[str, Any]]
REFERENCE_CONFIG_ENV = "RNX_CONFIG_PATH"


def _as(error: type[JobletException], what: str, call: Callable[[], T]) -> T:
    """The reference raises one error class per service: keep that, with the code."""
    try:
        return call()
    except JobletException as exc:
        if isinstance(exc, error):
            raise
        wrapped = error(f"{what}: {exc.details}", exc.details)
        wrapped.code = exc.code
        raise wrapped from exc


class JobService:
    def __init__(self, client: Client) -> None:
        self._client = client
        self.stub = client.stub

    def _call(self, error: type[JobletException], what: str, method: Any, req: Any) -> Any:
        return _as(error, what, lambda: self._client.call(method, req))

    def run_job(  # noqa: PLR0917  (the reference's positional signature)
        self,
        command: str,
        args: list[str] | None = None,
        name: str | None = None,
        max_cpu: int | None = None,
        cpu_cores: str | None = None,
        max_memory: int | None = None,
        max_iobps: int | None = None,
        schedule: str | None = None,
        network: str | None = None,
        volumes: list[str] | None = None,
        runtime: str | None = None,
        work_dir: str | None = None,
        environment: dict[str, str] | None = None,
        secret_environment: dict[str, str] | None = None,
        uploads: list[dict[str, Any]] | None = None,
        gpu_count: int | None = None,
        gpu_memory_mb: int | None = None,
    ) -> dict[str, Any]:
        options = {
            "name": name, "max_cpu": max_cpu, "cpu_cores": cpu_cores, "max_memory": max_memory,
            "max_iobps": max_iobps, "schedule": schedule, "network": network,
            "volumes": volumes, "runtime": runtime, "workdir": work_dir,
            "env": environment, "secret_env": secret_environment, "uploads": uploads or [],
            "gpu_count": gpu_count, "gpu_memory_mb": gpu_memory_mb,
        }  # fmt: skip
        request = _as(JobNotFoundError, "Failed to run job",
                      lambda: run_request(command, args or [], options))  # fmt: skip
        res = self._call(JobNotFoundError, "Failed to run job", self.stub.RunJob, request)
        return to_snake_dict(res, {"jobUuid": "job_uuid"})

    def get_job_status(self, job_uuid: str) -> dict[str, Any]:
        req = pb.GetJobStatusReq(uuid=job_uuid)
        res = self._call(JobNotFoundError, f"Job {job_uuid} not found", self.stub.GetJobStatus, req)
        return to_snake_dict(res)

    def stop_job(self, job_uuid: str) -> dict[str, Any]:
        req = pb.StopJobReq(uuid=job_uuid)
        what = f"Failed to stop job {job_uuid}"
        return to_snake_dict(self._call(JobNotFoundError, what, self.stub.StopJob, req))

    def cancel_job(self, job_uuid: str) -> dict[str, Any]:
        req = pb.CancelJobReq(uuid=job_uuid)
        what = f"Failed to cancel job {job_uuid}"
        return to_snake_dict(self._call(JobNotFoundError, what, self.stub.CancelJob, req))

    def delete_job(self, job_uuid: str) -> dict[str, Any]:
        req = pb.DeleteJobReq(uuid=job_uuid)
        what = f"Failed to delete job {job_uuid}"
        return to_snake_dict(self._call(JobNotFoundError, what, self.stub.DeleteJob, req))

    def delete_all_jobs(self) -> dict[str, Any]:
        req = pb.DeleteAllJobsReq()
        what = "Failed to delete all jobs"
        return to_snake_dict(self._call(JobNotFoundError, what, self.stub.DeleteAllJobs, req))

    def get_job_logs(self, job_uuid: str) -> Iterator[bytes]:
        """The job's output as raw chunks, live until it ends."""
        stream = self._client.stream(self.stub.GetJobLogs, pb.GetJobLogsReq(uuid=job_uuid))
        what = f"Failed to get logs for job {job_uuid}"
        while (chunk := _as(JobNotFoundError, what, lambda: next(stream, None))) is not None:
            yield chunk.payload

    def list_jobs(self) -> Dicts:
        res = self._call(JobNotFoundError, "Failed to list jobs", self.stub.ListJobs,
                         pb.EmptyRequest())  # fmt: skip
        return [to_snake_dict(job) for job in res.jobs]

    def run_workflow(
        self,
        workflow: str,
        yaml_content: str | None = None,
        workflow_files: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        from joblet.sdk.requests import uploads

        req = pb.RunWorkflowRequest(workflow=workflow, yamlContent=yaml_content or "")
        req.workflowFiles.extend(uploads(workflow_files or []))
        res = self._call(
            WorkflowNotFoundError, "Failed to run workflow", self.stub.RunWorkflow, req
        )
        return {"workflow_uuid": res.workflowUuid, "status": res.status}

    def get_workflow_status(self, workflow_uuid: str) -> dict[str, Any]:
        req = pb.GetWorkflowStatusRequest(workflowUuid=workflow_uuid)
        what = f"Workflow {workflow_uuid} not found"
        return to_snake_dict(
            self._call(WorkflowNotFoundError, what, self.stub.GetWorkflowStatus, req)
        )

    def list_workflows(self, include_completed: bool = False) -> Dicts:
        req = pb.ListWorkflowsRequest(includeCompleted=include_completed)
        what = "Failed to list workflows"
        res = self._call(WorkflowNotFoundError, what, self.stub.ListWorkflows, req)
        return [to_snake_dict(w) for w in res.workflows]

    def get_workflow_jobs(self, workflow_uuid: str) -> Dicts:
        req = pb.GetWorkflowJobsRequest(workflowUuid=workflow_uuid)
        what = f"Failed to get jobs for workflow {workflow_uuid}"
        res = self._call(WorkflowNotFoundError, what, self.stub.GetWorkflowJobs, req)
        return [to_snake_dict(j) for j in res.jobs]


class _Service:
    error: type[JobletException] = JobletException
    service: Any = None

    def __init__(self, client: Client) -> None:
        self._client = client
        self.stub = self.service(client.channel)

    def _call(self, what: str, method: Any, req: Any) -> Any:
        return _as(self.error, what, lambda: self._client.call(method, req))


class NetworkService(_Service):
    error = NetworkError
    service = pb_grpc.NetworkServiceStub

    def create_network(self, name: str, cidr: str) -> dict[str, Any]:
        req = pb.CreateNetworkReq(name=name, cidr=cidr)
        return to_snake_dict(self._call("Failed to create network", self.stub.CreateNetwork, req))

    def list_networks(self) -> Dicts:
        res = self._call("Failed to list networks", self.stub.ListNetworks, pb.EmptyRequest())
        return [to_snake_dict(n) for n in res.networks]

    def remove_network(self, name: str) -> dict[str, Any]:
        req = pb.RemoveNetworkReq(name=name)
        return to_snake_dict(self._call("Failed to remove network", self.stub.RemoveNetwork, req))


class VolumeService(_Service):
    error = VolumeError
    service = pb_grpc.VolumeServiceStub

    def create_volume(
        self, name: str, size: str, volume_type: str = "filesystem"
    ) -> dict[str, Any]:
        req = pb.CreateVolumeReq(name=name, size=size, type=volume_type)
        return to_snake_dict(self._call("Failed to create volume", self.stub.CreateVolume, req))

    def list_volumes(self) -> Dicts:
        res = self._call("Failed to list volumes", self.stub.ListVolumes, pb.EmptyRequest())
        return [to_snake_dict(v) for v in res.volumes]

    def remove_volume(self, name: str) -> dict[str, Any]:
        req = pb.RemoveVolumeReq(name=name)
        return to_snake_dict(self._call("Failed to remove volume", self.stub.RemoveVolume, req))


class MonitoringService(_Service):
    service = pb_grpc.MonitoringServiceStub

    def get_system_status(self) -> dict[str, Any]:
        req = pb.EmptyRequest()
        return to_snake_dict(
            self._call("Failed to get system status", self.stub.GetSystemStatus, req)
        )

    def stream_system_metrics(
        self, interval_seconds: int = 5, metric_types: list[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        req = pb.StreamMetricsReq(intervalSeconds=interval_seconds, metricTypes=metric_types or [])
        stream = self._client.stream(self.stub.StreamSystemMetrics, req)
        what = "Failed to stream metrics"
        while (sample := _as(self.error, what, lambda: next(stream, None))) is not None:
            yield to_snake_dict(sample)


class RuntimeService(_Service):
    error = RuntimeNotFoundError
    service = pb_grpc.RuntimeServiceStub

    def list_runtimes(self) -> Dicts:
        res = self._call("Failed to list runtimes", self.stub.ListRuntimes, pb.EmptyRequest())
        return [to_snake_dict(r) for r in res.runtimes]

    def get_runtime_info(self, runtime: str) -> dict[str, Any]:
        req = pb.RuntimeInfoReq(runtime=runtime)
        return to_snake_dict(
            self._call(f"Runtime {runtime} not found", self.stub.GetRuntimeInfo, req)
        )

    def test_runtime(self, runtime: str) -> dict[str, Any]:
        req = pb.RuntimeTestReq(runtime=runtime)
        return to_snake_dict(
            self._call(f"Failed to test runtime {runtime}", self.stub.TestRuntime, req)
        )


def _reference_config(config_path: str | None) -> str | None:
    """The reference's discovery, where it finds a file: its argument,
    $RNX_CONFIG_PATH, ~/.rnx/rnx-config.yml; else None (rnx's own places)."""
    for candidate in (config_path, os.environ.get(REFERENCE_CONFIG_ENV)):
        if candidate:
            return candidate
    return None


class JobletClient:
    """The reference SDK's client: `jobs`, `networks`, `volumes`, `monitoring`,
    `runtimes` and `health_check()`; a context manager."""

    def __init__(  # noqa: PLR0917  (the reference's positional signature)
        self,
        ca_cert_path: str | None = None,
        client_cert_path: str | None = None,
        client_key_path: str | None = None,
        host: str | None = None,
        port: int | None = None,
        options: dict[str, Any] | None = None,
        config_path: str | None = None,
        node_name: str = "default",
        insecure: bool = False,
    ) -> None:
        del insecure, options  # always mutual TLS; channel options are this package's
        self.host, self.port = host, port
        self.ca_cert_path, self.client_cert_path = ca_cert_path, client_cert_path
        self.client_key_path = client_key_path
        explicit = host is not None and all((ca_cert_path, client_cert_path, client_key_path))
        try:
            if explicit:
                self._client = Client(
                    address=f"{host}:{port or 50051}",
                    ca=Path(str(ca_cert_path)), cert=Path(str(client_cert_path)),
                    key=Path(str(client_key_path)),
                )  # fmt: skip
            else:
                self._client = Client(node_name, config=_reference_config(config_path))
        except JobletException as exc:
            raise ConnectionError(f"Can't connect: {exc}") from exc
        self.jobs = JobService(self._client)
        self.networks = NetworkService(self._client)
        self.volumes = VolumeService(self._client)
        self.monitoring = MonitoringService(self._client)
        self.runtimes = RuntimeService(self._client)

    def health_check(self) -> bool:
        """Whether the node answers a system status call."""
        try:
            self._client.call(self.monitoring.stub.GetSystemStatus, pb.EmptyRequest())
        except JobletException:
            return False
        return True

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> JobletClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
