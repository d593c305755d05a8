"""The asyncio SDK: the same calls as `joblet.Client`, awaited, with async
iterators for logs and metrics.

    >>> import joblet.aio
    >>> async def main() -> None:                    # doctest: +SKIP
    ...     async with joblet.aio.Client() as client:
    ...         job = await client.run("echo", ["hello"])
    ...         async for chunk in job.logs():
    ...             print(chunk.stream, chunk.data, end="")
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
import grpc.aio

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.sdk.client import DEFAULT_TIMEOUT_S, WAIT_POLL_S, to_dict
from joblet.sdk.config import Endpoint, resolve
from joblet.sdk.errors import DeadlineExceededError, from_rpc_error
from joblet.sdk.logs import STREAMS, TextDecoder
from joblet.sdk.models import JobInfo, LogChunk, job_info
from joblet.sdk.requests import run_request

T = TypeVar("T")
Dicts = list[dict[str, Any]]


class Client:
    """`joblet.Client` for asyncio; use `async with` (or `await close()`)."""

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
        self.channel = grpc.aio.secure_channel(
            self.endpoint.address, credentials, self.endpoint.channel_options()
        )
        self.stub = pb_grpc.JobServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.networks = _Calls(self, pb_grpc.NetworkServiceStub)
        self.volumes = _Calls(self, pb_grpc.VolumeServiceStub)
        self.runtimes = _Calls(self, pb_grpc.RuntimeServiceStub)
        self.monitoring = Monitoring(self)
        self.workflows = Workflows(self)

    async def call(self, method: Callable[..., Awaitable[T]], request: Any) -> T:
        try:
            return await method(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None

    async def stream(self, method: Callable[..., Any], request: Any) -> AsyncIterator[Any]:
        call = method(request)
        try:
            async for item in call:
                yield item
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        finally:
            call.cancel()

    async def close(self) -> None:
        await self.channel.close(None)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def run(self, command: str, args: Sequence[str] = (), **options: Any) -> Job:
        """As `joblet.Client.run`."""
        response = await self.call(self.stub.RunJob, run_request(command, args, options))
        return Job(self, response.jobUuid)

    async def job(self, job_id: str) -> Job:
        res = await self.call(self.stub.GetJobStatus, pb.GetJobStatusReq(uuid=job_id))
        return Job(self, res.uuid)

    async def list_jobs(self) -> list[JobInfo]:
        return [job_info(j) for j in (await self.call(self.stub.ListJobs, pb.EmptyRequest())).jobs]


class Job:
    def __init__(self, client: Client, job_id: str) -> None:
        self.client = client
        self.id = job_id

    def __repr__(self) -> str:
        return f"Job({self.id!r})"

    async def info(self) -> JobInfo:
        stub = self.client.stub
        return job_info(await self.client.call(stub.GetJobStatus, pb.GetJobStatusReq(uuid=self.id)))

    @property
    async def status(self) -> str:
        return (await self.info()).status

    async def wait(self, timeout: float | None = None) -> JobInfo:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (info := await self.info()).done:
            if deadline is not None and time.monotonic() >= deadline:
                raise DeadlineExceededError(f"job {self.id} is still {info.status}")
            await asyncio.sleep(WAIT_POLL_S)
        return info

    async def logs(
        self, follow: bool = True, *, text: bool = True, stream: str | None = None
    ) -> AsyncIterator[LogChunk]:
        """As `joblet.Job.logs`, an async iterator; both streams read side by side."""
        streams = (stream,) if stream else STREAMS
        queue: asyncio.Queue[LogChunk | BaseException | None] = asyncio.Queue(maxsize=64)

        async def pump(name: str) -> None:
            decoder = TextDecoder() if text else None
            request = pb.GetJobLogsReq(uuid=self.id, stream=name, noFollow=not follow)
            try:
                async for chunk in self.client.stream(self.client.stub.GetJobLogs, request):
                    data: bytes | str = chunk.payload
                    if decoder is not None:
                        data = decoder.feed(chunk.payload)
                    if data:
                        await queue.put(LogChunk(name, data))
                if decoder is not None and (rest := decoder.feed(b"", final=True)):
                    await queue.put(LogChunk(name, rest))
            except Exception as exc:
                await queue.put(exc)
            finally:
                await queue.put(None)

        tasks = [asyncio.ensure_future(pump(name)) for name in streams]
        left = len(tasks)
        try:
            while left:
                item = await queue.get()
                if item is None:
                    left -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def stop(self) -> JobInfo:
        await self.client.call(self.client.stub.StopJob, pb.StopJobReq(uuid=self.id))
        return await self.info()

    async def cancel(self) -> JobInfo:
        await self.client.call(self.client.stub.CancelJob, pb.CancelJobReq(uuid=self.id))
        return await self.info()

    async def delete(self) -> None:
        await self.client.call(self.client.stub.DeleteJob, pb.DeleteJobReq(uuid=self.id))

    async def metrics(self) -> Dicts:
        request = pb.JobMetricsHistoryRequest(uuid=self.id)
        response = await self.client.call(self.client.stub.GetJobMetricsHistory, request)
        return [to_dict(sample) for sample in response.samples]

    async def stream_metrics(self) -> AsyncIterator[dict[str, Any]]:
        request = pb.JobMetricsRequest(uuid=self.id)
        async for sample in self.client.stream(self.client.stub.StreamJobMetrics, request):
            yield to_dict(sample)


class _Calls:
    """Networks, volumes and runtimes: `create`, `list`, `remove`, `info` as in the sync client."""

    def __init__(self, client: Client, service: Any) -> None:
        self.client = client
        self.stub = service(client.channel)

    async def create(self, name: str, *args: str) -> dict[str, Any]:
        if hasattr(self.stub, "CreateNetwork"):
            request: Any = pb.CreateNetworkReq(name=name, cidr=args[0] if args else "")
            return to_dict(await self.client.call(self.stub.CreateNetwork, request))
        size, kind = (*args, "", "filesystem")[:2] if args else ("", "filesystem")
        request = pb.CreateVolumeReq(name=name, size=size, type=kind or "filesystem")
        return to_dict(await self.client.call(self.stub.CreateVolume, request))

    async def list(self) -> Dicts:
        for method, field in (("ListNetworks", "networks"), ("ListVolumes", "volumes"),
                              ("ListRuntimes", "runtimes")):  # fmt: skip
            if hasattr(self.stub, method):
                res = await self.client.call(getattr(self.stub, method), pb.EmptyRequest())
                return [to_dict(item) for item in getattr(res, field)]
        raise AssertionError("unreachable")

    async def remove(self, name: str) -> dict[str, Any]:
        if hasattr(self.stub, "RemoveNetwork"):
            res: Any = await self.client.call(
                self.stub.RemoveNetwork, pb.RemoveNetworkReq(name=name)
            )
        else:
            res = await self.client.call(self.stub.RemoveVolume, pb.RemoveVolumeReq(name=name))
        return to_dict(res)

    async def info(self, name: str) -> dict[str, Any]:
        return to_dict(
            await self.client.call(self.stub.GetRuntimeInfo, pb.RuntimeInfoReq(runtime=name))
        )


class Monitoring:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.stub = pb_grpc.MonitoringServiceStub(client.channel)  # type: ignore[no-untyped-call]

    async def status(self) -> dict[str, Any]:
        return to_dict(await self.client.call(self.stub.GetSystemStatus, pb.EmptyRequest()))

    async def stream(self, interval_seconds: int = 5) -> AsyncIterator[dict[str, Any]]:
        request = pb.StreamMetricsReq(intervalSeconds=interval_seconds)
        async for sample in self.client.stream(self.stub.StreamSystemMetrics, request):
            yield to_dict(sample)


class Workflows:
    def __init__(self, client: Client) -> None:
        self.client = client

    async def run(self, workflow: str, yaml_content: str = "") -> dict[str, Any]:
        request = pb.RunWorkflowRequest(workflow=workflow, yamlContent=yaml_content)
        return to_dict(await self.client.call(self.client.stub.RunWorkflow, request))

    async def status(self, workflow_id: str) -> dict[str, Any]:
        request = pb.GetWorkflowStatusRequest(workflowUuid=workflow_id)
        return to_dict(await self.client.call(self.client.stub.GetWorkflowStatus, request))

    async def list(self, include_completed: bool = False) -> Dicts:
        request = pb.ListWorkflowsRequest(includeCompleted=include_completed)
        res = await self.client.call(self.client.stub.ListWorkflows, request)
        return [to_dict(w) for w in res.workflows]
