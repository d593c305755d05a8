"""Human-readable renderings of job responses: pure functions returning lines.

The key lines (`ID:`, `Status:`, `Job ID:`, `Exit Code:`) match the reference
CLI so that scripts written against it keep working.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from joblet.cli.job_end import launch_exit_code, launch_failed
from joblet.cli.output import format_local_time, job_duration
from joblet.cli.terminal import escape_field

if TYPE_CHECKING:
    from joblet.api import joblet_pb2 as pb

FINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "STOPPED", "CANCELED"})
EXIT_CANCELED = 1  # a job canceled before it ran has no exit code of its own


def command_line(command: str, args: Sequence[str]) -> str:
    """The command as a shell would take it, control characters made visible."""
    return escape_field(shlex.join([command, *args])) if command else ""


def limits_line(max_cpu: int, cpu_cores: str, max_memory: int, max_iobps: int) -> str:
    parts = []
    if max_cpu:
        parts.append(f"cpu {max_cpu}%")
    if cpu_cores:
        parts.append(f"cores {cpu_cores}")
    if max_memory:
        parts.append(f"memory {max_memory} MB")
    if max_iobps:
        parts.append(f"io {max_iobps} B/s")
    return ", ".join(parts) or "none"


def render_run(res: pb.RunJobResponse, tz: tzinfo | None = None) -> list[str]:
    lines = [f"ID: {escape_field(res.jobUuid)}", f"Status: {escape_field(res.status)}"]
    lines.append(f"Command: {command_line(res.command, res.args)}")
    if res.scheduledTime:
        lines.append(f"Scheduled Time: {format_local_time(res.scheduledTime, tz)}")
    if res.startTime:
        lines.append(f"Start Time: {format_local_time(res.startTime, tz)}")
    lines.append(f"Limits: {limits_line(res.maxCpu, res.cpuCores, res.maxMemory, res.maxIobps)}")
    return lines


def _env_lines(title: str, env: Mapping[str, str]) -> list[str]:
    if not env:
        return []
    return [
        f"{title}:",
        *(f"  {escape_field(key)}={escape_field(env[key])}" for key in sorted(env)),
    ]


def _optional(label: str, value: str) -> list[str]:
    return [f"{label}: {escape_field(value)}"] if value else []


def render_status(res: pb.GetJobStatusRes, now: datetime, tz: tzinfo | None = None) -> list[str]:
    lines = [f"Job ID: {escape_field(res.uuid)}", *_optional("Name", res.name)]
    lines.append(f"Status: {escape_field(res.status)}")
    if res.status in FINAL_STATUSES:
        lines.append(f"Exit Code: {res.exitCode}")
    lines += _optional("End Reason", res.endReason)
    lines.append(f"Command: {command_line(res.command, res.args)}")
    if res.scheduledTime:
        lines.append(f"Scheduled Time: {format_local_time(res.scheduledTime, tz)}")
    lines.append(f"Start Time: {format_local_time(res.startTime, tz)}")
    lines.append(f"End Time: {format_local_time(res.endTime, tz)}")
    lines.append(f"Duration: {job_duration(res.startTime, res.endTime, now)}")
    lines.append(f"Limits: {limits_line(res.maxCPU, res.cpuCores, res.maxMemory, res.maxIOBPS)}")
    lines += priority_lines(res)
    lines += _optional("Work Dir", res.workDir)
    lines += _optional("User", res.user)
    lines += _optional("Network", res.network)
    lines += _optional("Volumes", ", ".join(res.volumes))
    lines += _optional("Runtime", res.runtime)
    lines += _optional("Uploads", ", ".join(res.uploads))
    lines += _optional("Workflow", res.workflowUuid)
    lines += _optional("Requires", ", ".join(res.dependencies))
    if res.gpu_count:
        lines.append(f"GPUs: {res.gpu_count} (indices {list(res.gpu_indices)})")
    lines += _optional("Node", res.nodeId)
    lines += _env_lines("Environment", res.environment)
    # The daemon already masks secrets; never print a value, whatever it sent.
    lines += _env_lines("Secret Environment", dict.fromkeys(res.secret_environment, "***"))
    return lines


def priority_lines(res: pb.GetJobStatusRes) -> list[str]:
    """Priority, preemption and why the job last waited."""
    lines = [f"Priority: {res.priority}"]
    if res.preemptible:
        then = "requeued" if res.onPreempt in ("", "requeue") else "stopped"
        lines.append(f"Preemptible: yes (then {then}); preempted {res.preemptions} time(s)")
    elif res.preemptions:
        lines.append(f"Preemptions: {res.preemptions}")
    lines += _optional("Stop Grace Period", res.stopGracePeriod)
    lines += _optional("Waited", res.waitReason)
    return lines


def job_exit_code(status: str, exit_code: int, end_reason: str = "") -> int:
    """The exit code `rnx run --follow` ends with, like `docker run` does."""
    if launch_failed(status, end_reason):
        return launch_exit_code(end_reason)
    if status == "CANCELED":
        return EXIT_CANCELED
    if status == "FAILED" and exit_code == 0:
        return 1  # failed without an exit code of its own (e.g. could not start)
    # A process exit status is 0..255; the daemon reports 128+N for signal N.
    return min(exit_code, 255) if exit_code >= 0 else 1
