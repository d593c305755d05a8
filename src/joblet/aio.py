"""`joblet.aio.Client`: the SDK for asyncio (see docs/sdk.md)."""

from joblet.sdk.aio import Client, Job
from joblet.sdk.models import JobInfo, LogChunk

__all__ = ["Client", "Job", "JobInfo", "LogChunk"]
