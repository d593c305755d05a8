"""What rnx says, and which exit code it ends with, when a job did not succeed.

Pure functions on the status fields; no I/O.
"""

from __future__ import annotations

EXIT_NOT_FOUND = 127  # as sh reports a command it cannot find
EXIT_NOT_EXECUTABLE = 126  # as sh reports a command it may not run

# Launch failures by the daemon's reason text (isolation/child.py writes them).
_LAUNCH_CODES = (
    ("command not found", EXIT_NOT_FOUND),
    ("not executable", EXIT_NOT_EXECUTABLE),
    ("Permission denied", EXIT_NOT_EXECUTABLE),
    ("Exec format error", EXIT_NOT_EXECUTABLE),
)


def launch_failed(status: str, end_reason: str) -> bool:
    """Whether the job failed before its command ran."""
    return status == "FAILED" and end_reason.startswith("launch failed")


def launch_exit_code(end_reason: str) -> int:
    """127 for a command not found, 126 for one that cannot run, else 1."""
    for needle, code in _LAUNCH_CODES:
        if needle in end_reason:
            return code
    return 1


def succeeded(status: str, exit_code: int) -> bool:
    return status == "COMPLETED" and exit_code == 0


def end_line(job_id: str, status: str, end_reason: str) -> str:
    """One line for stderr: `job 0e5c… FAILED: out of memory`."""
    reason = end_reason or status.lower()
    return f"job {job_id} {status}: {reason}"
