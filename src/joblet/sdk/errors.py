"""The SDK's exceptions: one per gRPC status code, under `JobletException`.

The reference SDK's names are kept as the bases they mean (a script catching
`ValidationError` or `ConnectionError` from it catches ours), so code written
for either catches the same failures."""

from __future__ import annotations

from typing import Any

import grpc


class JobletException(Exception):
    """Every error the SDK raises. `code` is the gRPC status (None: not from the node)."""

    code: grpc.StatusCode | None = None

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.details = details or message


# The reference SDK's exception names.
class ConnectionError(JobletException):
    """The node could not be reached."""


class AuthenticationError(JobletException):
    """The node refused the client's certificate or role."""


class ValidationError(JobletException):
    """The node refused a request's content."""


class TimeoutError(JobletException):
    """A call ran past its deadline."""


class JobNotFoundError(JobletException):
    """A job the node does not know, or a job call that failed (the reference's use)."""


class WorkflowNotFoundError(JobletException):
    pass


class RuntimeNotFoundError(JobletException):
    pass


class NetworkError(JobletException):
    pass


class VolumeError(JobletException):
    pass


# One per status code.
class InvalidArgumentError(ValidationError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFoundError(JobNotFoundError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(ValidationError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPreconditionError(JobletException):
    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhaustedError(JobletException):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class PermissionDeniedError(AuthenticationError):
    code = grpc.StatusCode.PERMISSION_DENIED


class UnauthenticatedError(AuthenticationError):
    code = grpc.StatusCode.UNAUTHENTICATED


class UnavailableError(ConnectionError):
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceededError(TimeoutError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class UnimplementedError(JobletException):
    code = grpc.StatusCode.UNIMPLEMENTED


class CancelledError(JobletException):
    code = grpc.StatusCode.CANCELLED


class InternalError(JobletException):
    code = grpc.StatusCode.INTERNAL


_BY_CODE: dict[grpc.StatusCode, type[JobletException]] = {
    cls.code: cls
    for cls in (
        InvalidArgumentError, NotFoundError, AlreadyExistsError, FailedPreconditionError,
        ResourceExhaustedError, PermissionDeniedError, UnauthenticatedError, UnavailableError,
        DeadlineExceededError, UnimplementedError, CancelledError, InternalError,
    )
    if cls.code is not None
}  # fmt: skip


def from_rpc_error(exc: Any) -> JobletException:
    """The SDK exception for a grpc.RpcError (or grpc.aio.AioRpcError)."""
    code = exc.code() if callable(getattr(exc, "code", None)) else None
    details = (exc.details() if callable(getattr(exc, "details", None)) else "") or str(code)
    cls = _BY_CODE.get(code, JobletException) if code is not None else JobletException
    error = cls(f"{getattr(code, 'name', 'UNKNOWN')}: {details}", details)
    if cls is JobletException:
        error.code = code
    return error
