"""The synchronous SDK: `Client` and the `Job`s it runs.

>>> from joblet import Client
>>> with Client() as client:                     # doctest: +SKIP
...     job = client.run("echo", ["hello"])
...     job.wait().exit_code
0
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.json_format import MessageToDict

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.sdk.config import Endpoint, resolve
from joblet.sdk.errors import DeadlineExceededError, JobletException, from_rpc_error
from joblet.sdk.logs import STREAMS, tagged
from joblet.sdk.models import JobInfo, LogChunk, job_info
from joblet.sdk.requests import large_files, run_request

# Local files over this many bytes together stream through UploadFiles.
STREAM_THRESHOLD = 16 << 20

T = TypeVar("T")
# Resource listings (a method named `list` hides the builtin in class bodies).
Dicts = list[dict[str, Any]]
DEFAULT_TIMEOUT_S = 30.0
WAIT_POLL_S = 0.1


def to_dict(message: Any) -> dict[str, Any]:
    """A protobuf message as a dict with the proto's field names."""
    return MessageToDict(message, preserving_proto_field_name=True)


class Client:
    """A connection to one node over mTLS.

    `Client()` reads the node "default" from the config rnx would use
    ($RNX_CONFIG, ./rnx-config.yml, ~/.rnx/rnx-config.yml,
    /opt/joblet/config/rnx-config.yml); `Client("viewer", config=PATH)` picks
    another node or file; `Client(address="host:50051", ca=..., cert=...,
    key=...)` takes PEM text, bytes or file paths instead.
    """

    def __init__(
        self,
        node: str | None = None,
        *,
        config: str | os.PathLike[str] | None = None,
        address: str | None = None,
        ca: str | bytes | Path | None = None,
        cert: str | bytes | Path | None = None,
        key: str | bytes | Path | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.endpoint: Endpoint = resolve(
            node, config=config, address=address, ca=ca, cert=cert, key=key
        )
        self.timeout = timeout
        credentials = grpc.ssl_channel_credentials(
            self.endpoint.ca, self.endpoint.key, self.endpoint.cert
        )
        self._channel = grpc.secure_channel(
            self.endpoint.address, credentials, self.endpoint.channel_options()
        )
        self.stub = pb_grpc.JobServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self.networks = Networks(self)
        self.volumes = Volumes(self)
        self.runtimes = Runtimes(self)
        self.workflows = Workflows(self)
        self.monitoring = Monitoring(self)

    # ---- plumbing ------------------------------------------------------

    @property
    def channel(self) -> grpc.Channel:
        return self._channel

    def call(self, method: Callable[..., T], request: Any, timeout: float | None = None) -> T:
        """One unary call; a failure as the SDK exception for its code."""
        try:
            return method(request, timeout=timeout or self.timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    def stream(self, method: Callable[..., Any], request: Any) -> Iterator[Any]:
        call = method(request)
        try:
            yield from call
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        finally:
            call.cancel()

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- jobs ----------------------------------------------------------

    def run(self, command: str, args: Sequence[str] = (), **options: Any) -> Job:
        """Start `command` with `args`; options are RunJob's fields in snake
        case: name, max_cpu, cpu_cores, max_memory (MB), max_iobps, env,
        secret_env, uploads ({workspace path: bytes or local path}),
        schedule, network, volumes, runtime, workdir, user, gpu_count,
        gpu_memory_mb, gpu_ids (indices or UUIDs), max_ingress_bps,
        max_egress_bps, priority, preemptible, on_preempt ("requeue" or
        "stop"), stop_grace_period ("10s")."""
        streamed = large_files(options.get("uploads"), STREAM_THRESHOLD)
        if streamed:
            rest = {k: v for k, v in options["uploads"].items() if k not in streamed}
            options = {**options, "uploads": rest}
        request = run_request(command, args, options)
        if streamed:
            request.uploadSession = self._stream_uploads(streamed)
        response = self.call(self.stub.RunJob, request)
        return Job(self, response.jobUuid)

    def _stream_uploads(self, files: dict[str, Path]) -> str:
        """Send large local files through an upload session (1 MiB at a time)."""
        from joblet.client.connection import JobClient
        from joblet.client.errors import CliError
        from joblet.client.upload_stream import upload
        from joblet.client.uploads import file_entry

        try:
            entries = [file_entry(path, name) for name, path in files.items()]
            return upload(JobClient(self._channel, self.endpoint.address), entries, None)
        except CliError as exc:
            raise JobletException(str(exc)) from exc

    def job(self, job_id: str) -> Job:
        """The job with this id (or unique prefix); NotFoundError if none."""
        info = job_info(self.call(self.stub.GetJobStatus, pb.GetJobStatusReq(uuid=job_id)))
        return Job(self, info.id)

    def list_jobs(self) -> list[JobInfo]:
        return [job_info(j) for j in self.call(self.stub.ListJobs, pb.EmptyRequest()).jobs]

    def delete_all_jobs(self) -> int:
        """Delete every finished job; how many went."""
        return int(self.call(self.stub.DeleteAllJobs, pb.DeleteAllJobsReq()).deleted_count)


class Job:
    """A job on the node. Its state is read from the node on each access."""

    def __init__(self, client: Client, job_id: str) -> None:
        self.client = client
        self.id = job_id

    def __repr__(self) -> str:
        return f"Job({self.id!r})"

    def info(self) -> JobInfo:
        stub = self.client.stub
        return job_info(self.client.call(stub.GetJobStatus, pb.GetJobStatusReq(uuid=self.id)))

    @property
    def status(self) -> str:
        return self.info().status

    def wait(self, timeout: float | None = None) -> JobInfo:
        """Until the job has ended; its final state (`.exit_code`, `.end_reason`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (info := self.info()).done:
            if deadline is not None and time.monotonic() >= deadline:
                raise DeadlineExceededError(f"job {self.id} is still {info.status}")
            time.sleep(WAIT_POLL_S)
        return info

    def logs(
        self, follow: bool = True, *, text: bool = True, stream: str | None = None
    ) -> Iterator[LogChunk]:
        """The job's output as LogChunks tagged "stdout"/"stderr" (str, or
        bytes with text=False); with follow, until the job ends."""
        streams = (stream,) if stream else STREAMS
        if len(streams) == 1:
            yield from tagged(streams[0], self._payloads(streams[0], follow), text)
            return
        yield from _merge([tagged(s, self._payloads(s, follow), text) for s in streams])

    def output(self) -> str:
        """Everything the job printed so far, both streams, as text."""
        return "".join(str(chunk.data) for chunk in self.logs(follow=False))

    def _payloads(self, stream: str, follow: bool) -> Iterator[bytes]:
        request = pb.GetJobLogsReq(uuid=self.id, stream=stream, noFollow=not follow)
        for chunk in self.client.stream(self.client.stub.GetJobLogs, request):
            yield chunk.payload

    def stop(self) -> JobInfo:
        self.client.call(self.client.stub.StopJob, pb.StopJobReq(uuid=self.id))
        return self.info()

    def cancel(self) -> JobInfo:
        self.client.call(self.client.stub.CancelJob, pb.CancelJobReq(uuid=self.id))
        return self.info()

    def delete(self) -> None:
        self.client.call(self.client.stub.DeleteJob, pb.DeleteJobReq(uuid=self.id))

    def metrics(self) -> list[dict[str, Any]]:
        """The job's metric samples so far (CPU, memory, IO, network, pids)."""
        request = pb.JobMetricsHistoryRequest(uuid=self.id)
        response = self.client.call(self.client.stub.GetJobMetricsHistory, request)
        return [to_dict(sample) for sample in response.samples]

    def stream_metrics(self) -> Iterator[dict[str, Any]]:
        """Live samples while the job runs."""
        request = pb.JobMetricsRequest(uuid=self.id)
        for sample in self.client.stream(self.client.stub.StreamJobMetrics, request):
            yield to_dict(sample)


_DONE = object()


def _merge(iterators: list[Iterator[LogChunk]]) -> Iterator[LogChunk]:
    """Items of all `iterators` as they come, each read by a thread of its own."""
    items: queue.Queue[Any] = queue.Queue(maxsize=64)
    stop = threading.Event()

    def pump(source: Iterator[LogChunk]) -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except JobletException as exc:
            items.put(exc)
        finally:
            items.put(_DONE)

    threads = [threading.Thread(target=pump, args=(it,), daemon=True) for it in iterators]
    for thread in threads:
        thread.start()
    left = len(threads)
    try:
        while left:
            item = items.get()
            if item is _DONE:
                left -= 1
            elif isinstance(item, JobletException):
                raise item
            else:
                yield item
    finally:
        stop.set()


class _Service:
    service: Any

    def __init__(self, client: Client) -> None:
        self.client = client
        self._stub: Any = None

    @property
    def stub(self) -> Any:
        if self._stub is None:
            self._stub = self.service(self.client.channel)
        return self._stub


class Networks(_Service):
    service = pb_grpc.NetworkServiceStub

    def create(self, name: str, cidr: str) -> dict[str, Any]:
        return to_dict(
            self.client.call(self.stub.CreateNetwork, pb.CreateNetworkReq(name=name, cidr=cidr))
        )

    def list(self) -> Dicts:
        return [
            to_dict(n) for n in self.client.call(self.stub.ListNetworks, pb.EmptyRequest()).networks
        ]

    def remove(self, name: str) -> dict[str, Any]:
        return to_dict(self.client.call(self.stub.RemoveNetwork, pb.RemoveNetworkReq(name=name)))


class Volumes(_Service):
    service = pb_grpc.VolumeServiceStub

    def create(self, name: str, size: str, type: str = "filesystem") -> dict[str, Any]:
        request = pb.CreateVolumeReq(name=name, size=size, type=type)
        return to_dict(self.client.call(self.stub.CreateVolume, request))

    def list(self) -> Dicts:
        return [
            to_dict(v) for v in self.client.call(self.stub.ListVolumes, pb.EmptyRequest()).volumes
        ]

    def remove(self, name: str) -> dict[str, Any]:
        return to_dict(self.client.call(self.stub.RemoveVolume, pb.RemoveVolumeReq(name=name)))


class Runtimes(_Service):
    service = pb_grpc.RuntimeServiceStub

    def list(self) -> Dicts:
        return [
            to_dict(r) for r in self.client.call(self.stub.ListRuntimes, pb.EmptyRequest()).runtimes
        ]

    def info(self, name: str) -> dict[str, Any]:
        return to_dict(self.client.call(self.stub.GetRuntimeInfo, pb.RuntimeInfoReq(runtime=name)))


class Workflows(_Service):
    @property
    def stub(self) -> Any:
        return self.client.stub  # workflows are JobService calls

    def run(self, workflow: str, yaml_content: str = "") -> dict[str, Any]:
        request = pb.RunWorkflowRequest(workflow=workflow, yamlContent=yaml_content)
        return to_dict(self.client.call(self.stub.RunWorkflow, request))

    def status(self, workflow_id: str) -> dict[str, Any]:
        request = pb.GetWorkflowStatusRequest(workflowUuid=workflow_id)
        return to_dict(self.client.call(self.stub.GetWorkflowStatus, request))

    def list(self, include_completed: bool = False) -> Dicts:
        request = pb.ListWorkflowsRequest(includeCompleted=include_completed)
        return [to_dict(w) for w in self.client.call(self.stub.ListWorkflows, request).workflows]

    def jobs(self, workflow_id: str) -> Dicts:
        request = pb.GetWorkflowJobsRequest(workflowUuid=workflow_id)
        return [to_dict(j) for j in self.client.call(self.stub.GetWorkflowJobs, request).jobs]


class Monitoring(_Service):
    service = pb_grpc.MonitoringServiceStub

    def status(self) -> dict[str, Any]:
        """The host: CPU, memory, disks, network, processes."""
        return to_dict(self.client.call(self.stub.GetSystemStatus, pb.EmptyRequest()))

    def stream(self, interval_seconds: int = 5) -> Iterator[dict[str, Any]]:
        request = pb.StreamMetricsReq(intervalSeconds=interval_seconds)
        for sample in self.client.stream(self.stub.StreamSystemMetrics, request):
            yield to_dict(sample)
