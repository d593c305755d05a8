"""Rendering workflows for rnx: the status block, the listing, and the
one-line-per-change form of the live view. Pure: messages and a clock
reading in, text out; every field from the daemon is escaped (a job name or
reason cannot drive the terminal)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from joblet.cli.output import MISSING, format_duration, format_table
from joblet.cli.terminal import escape_field, escape_text

if TYPE_CHECKING:
    from joblet.api import joblet_pb2 as pb

FINAL = frozenset({"COMPLETED", "FAILED", "STOPPED", "CANCELED"})
JOB_HEADERS = ["JOB UUID", "JOB NAME", "STATUS", "EXIT CODE", "DEPENDENCIES", "DURATION"]
LIST_HEADERS = ["UUID", "NAME", "STATUS", "PROGRESS", "CREATED"]


def seconds(stamp: pb.Timestamp) -> float:
    return stamp.seconds + stamp.nanos / 1e9


def local_time(stamp: pb.Timestamp) -> str:
    if not stamp.seconds and not stamp.nanos:
        return MISSING
    return datetime.fromtimestamp(seconds(stamp), UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def progress(info: pb.WorkflowInfo) -> str:
    return f"{info.completedJobs}/{info.totalJobs}"


def render_status(res: pb.GetWorkflowStatusResponse, now: float, *, detail: bool = False) -> str:
    """`Workflow UUID:`, `Status:`, `Progress:` lines, then the job table."""
    info = res.workflow
    lines = [
        f"Workflow UUID: {escape_field(info.uuid)}",
        f"Status: {escape_field(info.status)}",
        f"Progress: {progress(info)} jobs completed",
        "",
        format_table(JOB_HEADERS, [_job_row(job, now) for job in res.jobs]),
    ]
    if detail:
        lines += [
            "",
            "Workflow YAML (secrets shown as ***):",
            escape_text(info.yamlContent.rstrip()),
        ]
    return "\n".join(lines)


def _job_row(job: pb.WorkflowJob, now: float) -> list[str]:
    return [
        job.jobUuid or MISSING,
        job.jobName,
        job.status,
        exit_code(job),
        ", ".join(job.dependencies) or MISSING,
        duration(job, now),
    ]


def exit_code(job: pb.WorkflowJob) -> str:
    """The code of a job that ran to its end; `-` before that or if it never ran."""
    ran = job.startTime.seconds or job.startTime.nanos
    return str(job.exitCode) if job.status in FINAL and ran else MISSING


def duration(job: pb.WorkflowJob, now: float) -> str:
    start = seconds(job.startTime)
    if not start:
        return MISSING
    end = seconds(job.endTime) or now
    # The daemon's workflow times carry nanoseconds; whole-second ones claim none.
    subsecond = bool(job.startTime.nanos or job.endTime.nanos)
    return format_duration(end - start, subsecond)


def render_list(workflows: Sequence[pb.WorkflowInfo]) -> str:
    if not workflows:
        return "No workflows."
    rows = [
        [w.uuid, w.name or MISSING, w.status, progress(w), local_time(w.createdAt)]
        for w in workflows
    ]
    return format_table(LIST_HEADERS, rows)


def changes(seen: dict[str, str], res: pb.GetWorkflowStatusResponse, clock: str) -> list[str]:
    """One line per job (and workflow) status that differs from `seen`,
    which is updated: the live view's form when stdout is not a terminal."""
    lines: list[str] = []
    for job in res.jobs:
        if seen.get(job.jobName) != job.status:
            seen[job.jobName] = job.status
            tail = _job_tail(job)
            lines.append(
                f"{clock} job {escape_field(job.jobName)}: {escape_field(job.status)}{tail}"
            )
    info = res.workflow
    if seen.get("") != info.status:
        seen[""] = info.status
        lines.append(
            f"{clock} workflow {escape_field(info.uuid)}: {escape_field(info.status)}"
            f" ({progress(info)} jobs completed)"
        )
    return lines


def _job_tail(job: pb.WorkflowJob) -> str:
    """Why a final job ended: its reason from the daemon, else its exit code."""
    if job.status not in FINAL:
        return ""
    if job.endReason:
        return f" ({escape_field(job.endReason)})"
    code = exit_code(job)
    return f" (exit code {code})" if code != MISSING else ""
