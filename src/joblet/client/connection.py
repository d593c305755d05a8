"""A mutual-TLS channel to a joblet daemon, a typed client over the generated
stubs, and the one place where gRPC failures become one-line messages.

The synchronous grpc API is used on purpose: a CLI makes one or two calls and
the asyncio machinery would only add start-up time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from joblet.api import joblet_pb2 as pb
from joblet.client.config import NodeConfig
from joblet.client.errors import CliError
from joblet.client.log_chunks import data_chunk_payload

ChannelFactory = Callable[[NodeConfig], grpc.Channel]
_Res = TypeVar("_Res", bound=Message)
_Chunk = TypeVar("_Chunk")

JOB_SERVICE = "/joblet.JobService/"
MONITORING_SERVICE = "/joblet.MonitoringService/"

UNARY_TIMEOUT_S = 30.0
OMITTED_KEY = "joblet-omitted-finished-jobs"  # ListJobs's trailing metadata
# Job lists and uploads can be larger than grpc's 4 MiB default.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024

_HINT = "is the daemon running? is the CA right?"
# Trailing metadata of an UNAVAILABLE the daemon answered itself (its
# daemon/errors.ANSWERED_KEY): something it depends on is away, not the daemon.
ANSWERED_KEY = "joblet-answered"

# (substring of grpc's details text, likely cause), checked in order.
_TRANSPORT_CAUSES = (
    (
        "CERTIFICATE_VERIFY_FAILED",
        "TLS handshake failed: the server certificate is not signed by the configured CA"
        " (wrong CA?)",
    ),
    (
        "Hostname Verification",
        "TLS handshake failed: the server certificate does not name this host"
        " (set serverName in the node config?)",
    ),
    (
        "Socket closed",
        "the server closed the connection during the TLS handshake: it likely rejected"
        " the client certificate (wrong certificate, or one from another CA?)",
    ),
    (
        "Connection reset",
        "the connection was reset: the server likely rejected the client certificate"
        " (wrong certificate?) or does not speak TLS",
    ),
    ("Connection refused", "connection refused (is the daemon running?)"),
    ("errors resolving", "cannot resolve the host name"),
    ("handshake", "TLS handshake failed (wrong client certificate or wrong CA?)"),
    ("SSL", "TLS handshake failed (wrong client certificate or wrong CA?)"),
)

# Codes whose details are already a message meant for the user.
_USER_FACING = frozenset(
    {
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)


def channel_options(node: NodeConfig) -> list[tuple[str, str | int]]:
    options: list[tuple[str, str | int]] = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    if node.server_name:
        options.append(("grpc.ssl_target_name_override", node.server_name))
    return options


def open_secure_channel(node: NodeConfig) -> grpc.Channel:
    """A channel that presents the node's client certificate and trusts only its CA."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=node.ca.encode(),
        private_key=node.key.encode(),
        certificate_chain=node.cert.encode(),
    )
    return grpc.secure_channel(node.address, credentials, options=channel_options(node))


def describe_transport_failure(details: str) -> str | None:
    """Name the likely cause of an UNAVAILABLE status, or None if unrecognised."""
    for needle, cause in _TRANSPORT_CAUSES:
        if needle in details:
            return cause
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def unavailable_message(address: str, details: str) -> str:
    cause = describe_transport_failure(details)
    if cause is None:
        return f"cannot reach joblet at {address}: {_one_line(details)} ({_HINT})"
    if "?" in cause:  # the cause already names what to check
        return f"cannot reach joblet at {address}: {cause}"
    return f"cannot reach joblet at {address}: {cause} ({_HINT})"


MAX_PROBLEM_LINES = 101  # a list of problems, and the line that counts the rest


def rpc_error_message(
    code: grpc.StatusCode, details: str, address: str, *, answered: bool = False
) -> str:
    """The one line shown to the user for a failed call; an invalid request
    that lists its problems (a workflow) keeps one line per problem.
    `answered`: the daemon sent this status itself (see ANSWERED_KEY)."""
    if code == grpc.StatusCode.INVALID_ARGUMENT and "\n" in details.strip():
        lines = [_one_line(line) for line in details.splitlines() if line.strip()]
        return "\n".join(lines[:MAX_PROBLEM_LINES])
    details = _one_line(details)
    if code == grpc.StatusCode.UNAVAILABLE and answered:
        return f"joblet at {address}: {details}"
    if code == grpc.StatusCode.UNAVAILABLE:
        return unavailable_message(address, details)
    if code in _USER_FACING:
        return details or code.name.lower().replace("_", " ")
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return f"permission denied: {details}" if details else "permission denied"
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return f"joblet at {address} did not accept this client: {details}"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"joblet at {address} did not answer in time"
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return f"joblet at {address} does not support this operation: {details}"
    if code == grpc.StatusCode.CANCELLED:
        return "the call was cancelled"
    return f"joblet at {address} failed ({code.name}): {details}"


def daemon_answered(exc: grpc.Call) -> bool:
    """Whether the status carries the daemon's ANSWERED_KEY."""
    try:
        metadata = exc.trailing_metadata() or ()
    except Exception:  # an exception grpc did not fill in (tests, other channels)
        return False
    return any(item[0] == ANSWERED_KEY for item in metadata)


def translate_rpc_error(exc: grpc.RpcError, address: str) -> CliError:
    if isinstance(exc, grpc.Call):
        code, details = exc.code(), exc.details() or ""
        answered = daemon_answered(exc)
    else:  # an RpcError that carries no status: should not happen, stay readable
        code, details, answered = grpc.StatusCode.UNKNOWN, str(exc), False
    message = rpc_error_message(code, details, address, answered=answered)
    return CliError(message, code=code.name)


class JobClient:
    """JobService calls with typed results; failures raise `CliError`.

    Methods are bound by their path rather than through the generated stub:
    that module defines every service of the API and costs more to import
    than the one or two calls a command makes.
    """

    def __init__(self, channel: grpc.Channel, address: str) -> None:
        self._channel = channel
        self.address = address

    def run_job(self, request: pb.RunJobRequest) -> pb.RunJobResponse:
        return self._unary("RunJob", request, pb.RunJobResponse)

    def upload_files(self, chunks: Iterator[pb.UploadChunk]) -> pb.UploadSession:
        """Stream `chunks` into an upload session (no deadline: they may be GBs).
        Raises grpc.RpcError as it is: the caller decides whether to resume."""
        method = self._channel.stream_unary(
            JOB_SERVICE + "UploadFiles",
            request_serializer=pb.UploadChunk.SerializeToString,
            response_deserializer=pb.UploadSession.FromString,
        )
        response = method(chunks)
        assert isinstance(response, pb.UploadSession)
        return response

    def write_stdin(self, uuid: str, data: Iterator[bytes]) -> pb.StdinResult:
        """Stream `data` into the job's stdin; its end closes the job's fd 0."""
        method = self._channel.stream_unary(
            JOB_SERVICE + "WriteJobStdin",
            request_serializer=pb.StdinChunk.SerializeToString,
            response_deserializer=pb.StdinResult.FromString,
        )

        def chunks() -> Iterator[pb.StdinChunk]:
            yield pb.StdinChunk(jobUuid=uuid)
            for piece in data:
                yield pb.StdinChunk(data=piece)

        try:
            response = method(chunks())
        except grpc.RpcError as exc:
            raise translate_rpc_error(exc, self.address) from exc
        assert isinstance(response, pb.StdinResult)
        return response

    def get_job_status(self, uuid: str) -> pb.GetJobStatusRes:
        return self._unary("GetJobStatus", pb.GetJobStatusReq(uuid=uuid), pb.GetJobStatusRes)

    def stop_job(
        self, uuid: str, *, signal: str = "", grace_seconds: int = 0, signal_only: bool = False
    ) -> pb.StopJobRes:
        request = pb.StopJobReq(
            uuid=uuid, signal=signal, grace_seconds=grace_seconds, signal_only=signal_only
        )
        return self._unary("StopJob", request, pb.StopJobRes)

    def cancel_job(self, uuid: str) -> pb.CancelJobRes:
        return self._unary("CancelJob", pb.CancelJobReq(uuid=uuid), pb.CancelJobRes)

    def delete_job(self, uuid: str) -> pb.DeleteJobRes:
        return self._unary("DeleteJob", pb.DeleteJobReq(uuid=uuid), pb.DeleteJobRes)

    def delete_all_jobs(self) -> pb.DeleteAllJobsRes:
        return self._unary("DeleteAllJobs", pb.DeleteAllJobsReq(), pb.DeleteAllJobsRes)

    def server_version(self) -> pb.ServerVersionInfo:
        status = self._unary(
            "GetSystemStatus", pb.EmptyRequest(), pb.SystemStatusRes, MONITORING_SERVICE
        )
        return status.server_version

    def list_jobs(self) -> pb.Jobs:
        return self._unary("ListJobs", pb.EmptyRequest(), pb.Jobs)

    def list_jobs_counted(self) -> tuple[pb.Jobs, int]:
        """ListJobs, and how many finished jobs the node left out of it (its
        reply is capped at 3 MiB; the count comes in the trailing metadata)."""
        method = self._channel.unary_unary(
            JOB_SERVICE + "ListJobs",
            request_serializer=pb.EmptyRequest.SerializeToString,
            response_deserializer=pb.Jobs.FromString,
        )
        try:
            response, call = method.with_call(pb.EmptyRequest(), timeout=UNARY_TIMEOUT_S)
        except grpc.RpcError as exc:
            raise translate_rpc_error(exc, self.address) from exc
        trailers = dict(call.trailing_metadata() or ())
        omitted = str(trailers.get(OMITTED_KEY, "0"))
        return response, int(omitted) if omitted.isdigit() else 0

    def list_job_pages(self, request: pb.ListJobPagesRequest) -> list[pb.JobPage] | None:
        """Every page ListJobPages answers; None for a node without it."""
        method = self._channel.unary_stream(
            JOB_SERVICE + "ListJobPages",
            request_serializer=pb.ListJobPagesRequest.SerializeToString,
            response_deserializer=pb.JobPage.FromString,
        )
        try:
            return list(method(request, timeout=UNARY_TIMEOUT_S))
        except grpc.RpcError as exc:
            # An older node: the method is unknown to it, or to its role table.
            if exc.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.PERMISSION_DENIED):
                return None
            raise translate_rpc_error(exc, self.address) from exc

    def get_job_logs(
        self,
        uuid: str,
        *,
        tail: int = 0,
        since: str = "",
        stream: str = "",
        no_follow: bool = False,
        timestamps: bool = False,
    ) -> Iterator[pb.DataChunk]:
        """The job's output so far, then live output until the job ends."""
        request = pb.GetJobLogsReq(
            uuid=uuid,
            tail=tail,
            since=since,
            stream=stream,
            noFollow=no_follow,
            timestamps=timestamps,
        )
        for chunk in self._log_stream(request, pb.DataChunk.FromString):
            if isinstance(chunk, pb.DataChunk):
                yield chunk

    def get_job_output(
        self,
        uuid: str,
        *,
        tail: int = 0,
        since: str = "",
        stream: str = "",
        no_follow: bool = False,
        timestamps: bool = False,
    ) -> Iterator[bytes | memoryview]:
        """`get_job_logs`, as each chunk's output only (read in place)."""
        request = pb.GetJobLogsReq(
            uuid=uuid,
            tail=tail,
            since=since,
            stream=stream,
            noFollow=no_follow,
            timestamps=timestamps,
        )
        yield from self._log_stream(request, data_chunk_payload)

    # ---- workflows ----

    def run_workflow(self, request: pb.RunWorkflowRequest) -> pb.RunWorkflowResponse:
        return self._unary("RunWorkflow", request, pb.RunWorkflowResponse)

    def get_workflow_status(self, uuid: str) -> pb.GetWorkflowStatusResponse:
        request = pb.GetWorkflowStatusRequest(workflowUuid=uuid)
        return self._unary("GetWorkflowStatus", request, pb.GetWorkflowStatusResponse)

    def list_workflows(self, include_completed: bool) -> pb.ListWorkflowsResponse:
        request = pb.ListWorkflowsRequest(includeCompleted=include_completed)
        return self._unary("ListWorkflows", request, pb.ListWorkflowsResponse)

    def stop_workflow(self, uuid: str) -> pb.StopWorkflowResponse:
        request = pb.StopWorkflowRequest(workflowUuid=uuid)
        return self._unary("StopWorkflow", request, pb.StopWorkflowResponse)

    def delete_workflow(self, uuid: str) -> pb.DeleteWorkflowResponse:
        request = pb.DeleteWorkflowRequest(workflowUuid=uuid)
        return self._unary("DeleteWorkflow", request, pb.DeleteWorkflowResponse)

    def watch_workflow(self, uuid: str) -> Iterator[pb.GetWorkflowStatusResponse]:
        """The workflow's status now, then on every change until it is finished."""
        request = pb.GetWorkflowStatusRequest(workflowUuid=uuid)
        yield from self._stream(
            "WatchWorkflow",
            request,
            pb.GetWorkflowStatusRequest.SerializeToString,
            pb.GetWorkflowStatusResponse.FromString,
        )

    def _log_stream(
        self, request: pb.GetJobLogsReq, deserializer: Callable[[bytes], _Chunk]
    ) -> Iterator[_Chunk]:
        yield from self._stream(
            "GetJobLogs", request, pb.GetJobLogsReq.SerializeToString, deserializer
        )

    def _stream(
        self,
        name: str,
        request: Message,
        serializer: Callable[..., bytes],
        deserializer: Callable[[bytes], _Chunk],
    ) -> Iterator[_Chunk]:
        method = self._channel.unary_stream(
            JOB_SERVICE + name,
            request_serializer=serializer,
            response_deserializer=deserializer,
        )
        call = method(request)
        try:
            yield from call
        except grpc.RpcError as exc:
            raise translate_rpc_error(exc, self.address) from exc
        finally:
            # A no-op once finished; ends the stream if the reader stopped early.
            call.cancel()  # type: ignore[no-untyped-call]

    def _unary(
        self, name: str, request: Message, result: type[_Res], service: str = JOB_SERVICE
    ) -> _Res:
        method = self._channel.unary_unary(
            service + name,
            request_serializer=type(request).SerializeToString,
            response_deserializer=result.FromString,
        )
        try:
            response = method(request, timeout=UNARY_TIMEOUT_S)
        except grpc.RpcError as exc:
            raise translate_rpc_error(exc, self.address) from exc
        if not isinstance(response, result):
            raise CliError(f"joblet at {self.address} sent an unexpected {type(response).__name__}")
        return response
