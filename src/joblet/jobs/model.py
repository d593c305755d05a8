"""The job record: a frozen dataclass changed only through the state machine."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class JobStatus(StrEnum):
    # A workflow job, or a job with requirements, waiting for them to hold.
    PENDING = "PENDING"
    INITIALIZING = "INITIALIZING"
    QUEUED = "QUEUED"
    SCHEDULED = "SCHEDULED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"
    CANCELED = "CANCELED"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES

    @property
    def is_waiting(self) -> bool:
        return self in (
            JobStatus.PENDING,
            JobStatus.INITIALIZING,
            JobStatus.QUEUED,
            JobStatus.SCHEDULED,
        )


FINAL_STATUSES = frozenset(
    {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}
)


@dataclass(frozen=True)
class Upload:
    path: str  # relative to the workspace
    content: bytes
    mode: int
    is_directory: bool
    # A staged file (UploadFiles) to copy instead of `content`, and its size.
    source: str = ""
    size: int = 0

    @property
    def byte_size(self) -> int:
        return self.size if self.source else len(self.content)


@dataclass(frozen=True)
class JobSpec:
    """What the user asked for, validated."""

    command: str
    args: tuple[str, ...] = ()
    name: str = ""
    max_cpu: int = 0
    cpu_cores: str = ""
    max_memory_mb: int = 0
    max_iobps: int = 0
    environment: dict[str, str] = field(default_factory=dict)
    secret_environment: dict[str, str] = field(default_factory=dict)
    uploads: tuple[Upload, ...] = ()
    schedule: str = ""
    network: str = ""
    volumes: tuple[str, ...] = ()
    runtime: str = ""
    workdir: str = ""
    gpu_count: int = 0
    gpu_memory_mb: int = 0
    gpu_ids: tuple[str, ...] = ()  # GPUs pinned by host index or UUID
    workflow_uuid: str = ""
    dependencies: tuple[str, ...] = ()
    run_as: tuple[int, int] | None = None  # (uid, gid); None = the node's default
    max_ingress_bps: int = 0  # bits per second into the job; 0 = the node's default
    max_egress_bps: int = 0
    stdin: bool = False  # fd 0 is a pipe fed by WriteJobStdin (else /dev/null)
    # Waits are ordered by priority (-1000..1000); a preemptible job may give
    # its slot to a job of higher priority (joblet.jobs.priority).
    priority: int = 0
    preemptible: bool = False
    on_preempt: str = "requeue"  # "requeue" (run again, same id) or "stop"
    stop_grace_s: float | None = None  # SIGTERM -> SIGKILL; None = the node's


@dataclass(frozen=True)
class Job:
    id: str
    spec: JobSpec
    status: JobStatus
    node_id: str = ""
    created_at: float = 0.0  # unix seconds
    scheduled_at: float = 0.0  # 0 = not scheduled
    started_at: float = 0.0
    ended_at: float = 0.0
    exit_code: int = 0
    end_reason: str = ""  # why it ended: "exit code 3", "timeout", "out of memory", ...
    pid: int = 0  # host pid of the job's init while it runs
    upload_names: tuple[str, ...] = ()
    run_as: tuple[int, int] = (0, 0)  # the (uid, gid) it runs as, decided at submission
    # The runtime build it was given (RuntimeMount.name, .build_id): pinned
    # again after a restart, so a job never changes builds.
    runtime_name: str = ""
    runtime_build: str = ""
    # Priorities and preemption (joblet.jobs.priority, joblet.jobs.preemption).
    queued_at: float = 0.0  # when it last began to wait for a slot (aging counts from it)
    wait_reason: str = ""  # why it last waited, for `rnx job status`
    preemptions: int = 0  # how often it gave its slot to another job
    preempted_for: str = ""  # while RUNNING: the job it is being stopped for
    requeue_due: bool = False  # STOPPED by a preemption, about to be QUEUED again
    # The host indices of the GPUs it holds while it starts and runs; kept in
    # the record so a restarted daemon rebuilds its allocation table.
    gpu_indices: tuple[int, ...] = ()
