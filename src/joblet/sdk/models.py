"""What the SDK hands back: plain frozen dataclasses, not protobuf messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "STOPPED", "CANCELED"})


@dataclass(frozen=True)
class JobInfo:
    """A job as the node reports it (GetJobStatus / ListJobs)."""

    id: str
    name: str
    status: str
    command: str
    args: tuple[str, ...]
    exit_code: int
    start_time: str
    end_time: str
    scheduled_time: str = ""
    end_reason: str = ""
    raw: Any = field(default=None, repr=False, compare=False)  # the protobuf message

    @property
    def done(self) -> bool:
        return self.status in FINAL_STATUSES


def job_info(message: Any) -> JobInfo:
    """From a GetJobStatusRes or a Job message of ListJobs."""
    return JobInfo(
        id=message.uuid,
        name=message.name,
        status=message.status,
        command=message.command,
        args=tuple(message.args),
        exit_code=message.exitCode,
        start_time=message.startTime,
        end_time=message.endTime,
        scheduled_time=message.scheduledTime,
        end_reason=getattr(message, "endReason", "") or "",
        raw=message,
    )


@dataclass(frozen=True)
class LogChunk:
    """Output of a job: `stream` is "stdout" or "stderr"; `data` is bytes, or
    str when the logs were asked for as text."""

    stream: str
    data: bytes | str
