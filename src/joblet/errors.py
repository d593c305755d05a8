"""The project's error tree. Each error knows the gRPC status code it maps to;
the daemon's interceptor does the translation in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    import grpc


class _LazyStatus:
    """`grpc.StatusCode[name]`, looked up when read. The launcher imports this
    module too, and importing grpc there would add its C core (~20 MB) to the
    process every job is cloned from, which makes each clone and exec slower."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, owner: type | None = None) -> grpc.StatusCode:
        import grpc

        return grpc.StatusCode[self.name]


def _status(name: str) -> grpc.StatusCode:
    return cast("grpc.StatusCode", _LazyStatus(name))  # a descriptor that reads as one


class JobletError(Exception):
    """Base of every error the project raises on purpose."""

    code: grpc.StatusCode = _status("INTERNAL")


class ConfigError(JobletError):
    code = _status("FAILED_PRECONDITION")


class InvalidArgument(JobletError):
    code = _status("INVALID_ARGUMENT")


class NotFound(JobletError):
    code = _status("NOT_FOUND")


class AlreadyExists(JobletError):
    code = _status("ALREADY_EXISTS")


class FailedPrecondition(JobletError):
    """A state conflict, such as stopping a job that already ended."""

    code = _status("FAILED_PRECONDITION")


class PermissionDenied(JobletError):
    code = _status("PERMISSION_DENIED")


class ResourceExhausted(JobletError):
    code = _status("RESOURCE_EXHAUSTED")


class Unavailable(JobletError):
    code = _status("UNAVAILABLE")


class Unimplemented(JobletError):
    code = _status("UNIMPLEMENTED")


class IsolationError(JobletError):
    """The OS refused to build a job's isolation (namespaces, mounts, cgroups)."""

    code = _status("INTERNAL")


class Aborted(JobletError):
    """A conflicting operation is in progress (a second build of one runtime)."""

    code = _status("ABORTED")
