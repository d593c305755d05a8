"""What each MCP tool does, over a `joblet.Client` (no MCP types here)."""

from __future__ import annotations

import time
from typing import Any

from joblet.sdk.client import Client, to_dict
from joblet.sdk.models import JobInfo

MAX_OUTPUT_CHARS = 64 * 1024  # what a tool answer carries of a job's output
MAX_WAIT_S = 600.0
MAX_LISTED = 200


def _info(info: JobInfo) -> dict[str, Any]:
    return {
        "job_id": info.id,
        "name": info.name,
        "status": info.status,
        "command": " ".join((info.command, *info.args)),
        "exit_code": info.exit_code,
        "end_reason": info.end_reason,
        "start_time": info.start_time,
        "end_time": info.end_time,
    }


def clip(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """The last `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"[... {len(text) - limit} characters left out ...]\n{text[-limit:]}"


def run_job(
    client: Client,
    command: str,
    args: list[str] | None = None,
    *,
    name: str = "",
    max_cpu: int = 0,
    max_memory_mb: int = 0,
    network: str = "",
    wait_seconds: float = 0.0,
) -> dict[str, Any]:
    """Start a job; with wait_seconds, wait up to that long and include its output."""
    options: dict[str, Any] = {"name": name, "max_cpu": max_cpu, "max_memory": max_memory_mb}
    if network:
        options["network"] = network
    job = client.run(command, args or [], **options)
    if wait_seconds <= 0:
        return _info(job.info())
    deadline = time.monotonic() + min(wait_seconds, MAX_WAIT_S)
    while not (info := job.info()).done and time.monotonic() < deadline:
        time.sleep(0.1)
    return {**_info(info), "output": clip(job.output())}


def job_status(client: Client, job_id: str) -> dict[str, Any]:
    return _info(client.job(job_id).info())


def job_logs(client: Client, job_id: str) -> str:
    """Both streams' output so far, as text (the end of it when long)."""
    return clip(client.job(job_id).output())


def stop_job(client: Client, job_id: str) -> dict[str, Any]:
    return _info(client.job(job_id).stop())


def list_jobs(client: Client, limit: int = 50) -> list[dict[str, Any]]:
    jobs = client.list_jobs()
    return [_info(j) for j in jobs[-max(1, min(limit, MAX_LISTED)) :]]


def job_metrics(client: Client, job_id: str, last: int = 10) -> list[dict[str, Any]]:
    samples = client.job(job_id).metrics()
    return samples[-max(1, last) :]


def node_status(client: Client) -> dict[str, Any]:
    status = client.monitoring.status()
    return {key: status[key] for key in ("available", "host", "cpu", "memory") if key in status}


__all__ = ["job_logs", "job_metrics", "job_status", "list_jobs", "node_status", "run_job",
           "stop_job", "to_dict"]  # fmt: skip
