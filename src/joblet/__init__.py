"""Joblet: isolated, resource-limited jobs on a Linux host over mutual TLS.

The SDK (docs/sdk.md): `joblet.Client` (sync), `joblet.aio.Client` (asyncio),
`joblet.JobletClient` (the API of the reference's `joblet-sdk-python` 1.x) and
the exceptions of `joblet.sdk.errors`. They are loaded on first use, so
`import joblet` itself imports neither grpc nor protobuf.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from joblet.sdk.client import Client, Job
    from joblet.sdk.compat import JobletClient
    from joblet.sdk.errors import (
        AuthenticationError,
        ConnectionError,
        JobletException,
        JobNotFoundError,
        NetworkError,
        RuntimeNotFoundError,
        TimeoutError,
        ValidationError,
        VolumeError,
        WorkflowNotFoundError,
    )
    from joblet.sdk.models import JobInfo, LogChunk

_LAZY = {
    "Client": "joblet.sdk.client",
    "Job": "joblet.sdk.client",
    "JobInfo": "joblet.sdk.models",
    "LogChunk": "joblet.sdk.models",
    "JobletClient": "joblet.sdk.compat",
    "JobService": "joblet.sdk.compat",
    "NetworkService": "joblet.sdk.compat",
    "VolumeService": "joblet.sdk.compat",
    "MonitoringService": "joblet.sdk.compat",
    "RuntimeService": "joblet.sdk.compat",
    **dict.fromkeys(
        (
            "JobletException", "ConnectionError", "AuthenticationError", "JobNotFoundError",
            "WorkflowNotFoundError", "RuntimeNotFoundError", "NetworkError", "VolumeError",
            "ValidationError", "TimeoutError",
        ),
        "joblet.sdk.errors",
    ),
}  # fmt: skip

__all__ = [
    "AuthenticationError",
    "Client",
    "ConnectionError",
    "Job",
    "JobInfo",
    "JobNotFoundError",
    "JobService",
    "JobletClient",
    "JobletException",
    "LogChunk",
    "MonitoringService",
    "NetworkError",
    "NetworkService",
    "RuntimeNotFoundError",
    "RuntimeService",
    "TimeoutError",
    "ValidationError",
    "VolumeError",
    "VolumeService",
    "WorkflowNotFoundError",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'joblet' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value
