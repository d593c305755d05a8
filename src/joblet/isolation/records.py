"""The launcher's small on-disk records: running jobs and how they ended.

A running job's record (state_dir/<job_id>.json) lets a restarted launcher
report jobs it can no longer reap; when such a job's pid disappears the
launcher writes its exit.json with `lost=true`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass

from joblet.isolation.spec import JobExit

EXIT_FILE = "exit.json"
PID_FILE = "launcher.pid"  # in the state dir, written by the daemon that started it


@dataclass(frozen=True)
class RunningRecord:
    job_id: str
    pid: int
    start_ticks: int  # field 22 of /proc/<pid>/stat: tells a reused pid apart
    job_dir: str


def parse_start_ticks(stat_text: str) -> tuple[str, int]:
    """(state, starttime) from /proc/<pid>/stat; the comm field may hold spaces
    and parentheses, so split after its last ')'."""
    fields = stat_text[stat_text.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def read_start_ticks(pid: int, procfs: str = "/proc") -> int | None:
    """The pid's start time, or None when it is gone or a zombie."""
    try:
        with open(f"{procfs}/{pid}/stat") as f:
            state, ticks = parse_start_ticks(f.read())
    except (OSError, ValueError, IndexError):
        return None
    return None if state in ("Z", "X") else ticks


def read_init(pid: int, procfs: str = "/proc") -> tuple[str, list[str] | None] | None:
    """A job's init as /proc shows it: its status and the stat of each of its
    children (see pending.init_passes_on), None for those on a kernel without
    the children file (CONFIG_PROC_CHILDREN); None when the init is gone."""
    status = _read_text(f"{procfs}/{pid}/status")
    if status is None:
        return None
    children = _read_text(f"{procfs}/{pid}/task/{pid}/children")
    if children is None:
        return status, None
    stats = [_read_text(f"{procfs}/{child}/stat") for child in children.split()]
    return status, [stat for stat in stats if stat is not None]


def _read_text(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # cut short (a full disk): no half file stays
        raise


def save_running(state_dir: str, record: RunningRecord) -> None:
    write_atomic(os.path.join(state_dir, f"{record.job_id}.json"), json.dumps(asdict(record)))


def drop_running(state_dir: str, job_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(state_dir, f"{job_id}.json"))


def load_running(state_dir: str) -> list[RunningRecord]:
    """Every readable running record; a damaged one is reported on stderr
    (the launcher's log) and moved aside as NAME.corrupt-<time>, so that it
    is neither read again nor lost to whoever looks into it."""
    records: list[RunningRecord] = []
    for name in sorted(os.listdir(state_dir)):
        if not name.endswith(".json"):
            continue
        path = os.path.join(state_dir, name)
        try:
            with open(path) as f:
                records.append(RunningRecord(**json.load(f)))
        except FileNotFoundError:
            continue
        except (OSError, ValueError, TypeError) as exc:
            _quarantine(path, exc)
    return records


def drop_pid_file(state_dir: str, pid: int) -> None:
    """Remove the launcher's pid file if it still names `pid` (an exiting
    launcher), so that no one signals a later process given the same pid."""
    path = os.path.join(state_dir, PID_FILE)
    try:
        with open(path) as f:
            named = int(f.read().strip())
    except (OSError, ValueError):
        return
    if named == pid:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _quarantine(path: str, why: Exception) -> None:
    aside = f"{path}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}"
    try:
        os.rename(path, aside)
    except OSError as exc:
        aside = f"(could not move it: {exc})"
    print(
        f"launcher: damaged running record {path} ({why}); moved to {aside}; "
        "the job it names can no longer be followed",
        file=sys.stderr,
        flush=True,
    )


def write_exit(job_dir: str, exit_: JobExit) -> None:
    write_atomic(os.path.join(job_dir, EXIT_FILE), exit_.to_json())


def clear_exit(job_dir: str) -> None:
    """Remove a previous run's exit record (a requeued job runs again in the
    same directory): read after a restart, it would end the new run."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(job_dir, EXIT_FILE))


def read_exit(job_dir: str) -> JobExit | None:
    """The exit record the launcher left for a job, if any (None if unreadable)."""
    try:
        with open(os.path.join(job_dir, EXIT_FILE)) as f:
            return JobExit.from_json(f.read())
    except (OSError, ValueError, TypeError):
        return None


def exit_from_status(job_id: str, status: int, ended_at_ns: int) -> JobExit:
    """A JobExit from a waitpid status. tini reports a command killed by a
    signal as exit code 128+signal; `signal` is set when the init itself was."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return JobExit(job_id, 128 + sig, sig, ended_at_ns)
    return JobExit(job_id, os.waitstatus_to_exitcode(status), 0, ended_at_ns)
