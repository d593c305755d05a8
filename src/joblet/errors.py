"""The project's error tree. Each error knows the gRPC status code it maps to;
the daemon's interceptor does the translation in one place."""

from __future__ import annotations

import grpc


class JobletError(Exception):
    """Base of every error the project raises on purpose."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL


class ConfigError(JobletError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class InvalidArgument(JobletError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(JobletError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(JobletError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(JobletError):
    """A state conflict, such as stopping a job that already ended."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class PermissionDenied(JobletError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(JobletError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(JobletError):
    code = grpc.StatusCode.UNAVAILABLE


class IsolationError(JobletError):
    """The OS refused to build a job's isolation (namespaces, mounts, cgroups)."""

    code = grpc.StatusCode.INTERNAL
