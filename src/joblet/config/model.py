"""The daemon's configuration: frozen dataclasses, validated once at start-up.

Every path the daemon uses derives from `RootLayout`, so two daemons with
different roots, ports and cgroup parents can run side by side on one host.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from joblet.gpu.config import GpuConfig
from joblet.metrics.config import MetricsConfig
from joblet.network.config import NetworkConfig
from joblet.security.audit_config import AuditConfig
from joblet.ui.config import UiConfig

DEFAULT_ROOT = Path("/opt/joblet")

# Read-only host paths a job sees by default: enough for sh, coreutils,
# python3 and java, and the public half of TLS (CA certificates, OpenSSL's config;
# /usr/share/ca-certificates comes with /usr). Never all of /etc/ssl (its
# private/ holds the host's keys) nor anything under /root or /home
# (joblet.config.mounts refuses those).
DEFAULT_ALLOWED_MOUNTS: tuple[str, ...] = (
    "/bin",
    "/sbin",
    "/usr",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc/alternatives",
    "/etc/ssl/certs",
    "/etc/ssl/openssl.cnf",
    "/etc/ca-certificates",
    "/etc/ca-certificates.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/ld.so.cache",
    "/etc/localtime",
    # Debian's OpenJDK links its configuration here; the openjdk-17 runtime's
    # build copies it (a build sees what a job sees), and the host's java needs it
    "/etc/java-17-openjdk",
)


@dataclass(frozen=True)
class RootLayout:
    """The on-disk layout under one daemon's root directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    @property
    def volumes(self) -> Path:
        return self.root / "volumes"

    @property
    def network(self) -> Path:
        return self.root / "network"

    @property
    def runtimes(self) -> Path:
        return self.root / "runtimes"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def staging(self) -> Path:
        """Upload sessions (UploadFiles) until their RunJob."""
        return self.root / "uploads"

    @property
    def workspaces(self) -> Path:
        """Where the workspaces' file system is mounted (joblet.workspaces)."""
        return self.root / "workspaces"

    @property
    def workspace_image(self) -> Path:
        return self.root / "workspaces.img"

    @property
    def certs(self) -> Path:
        """The index of issued client certificates and the CRL (made on first use)."""
        return self.root / "certs"

    @property
    def crl(self) -> Path:
        return self.certs / "crl.pem"

    @property
    def audit_log(self) -> Path:
        return self.logs / "audit.log"

    @property
    def launcher_socket(self) -> Path:
        return self.run / "launcher.sock"

    def all_dirs(self) -> tuple[Path, ...]:
        return (
            self.config,
            self.run,
            self.jobs,
            self.logs,
            self.metrics,
            self.volumes,
            self.network,
            self.runtimes,
            self.state,
        )

    def job_dir(self, job_id: str) -> Path:
        return self.jobs / job_id


@dataclass(frozen=True)
class ServerConfig:
    address: str = "0.0.0.0"
    port: int = 50051
    node_id: str = ""


@dataclass(frozen=True)
class SecurityConfig:
    """PEM text of the server's certificate and key and of the CA that signs clients."""

    server_cert: str
    server_key: str
    ca_cert: str


@dataclass(frozen=True)
class JobRetention:
    """`joblet.jobRetention`: how long finished jobs stay on the node (0 = no
    limit of that kind). Their history in persist follows its own retention."""

    max_age_s: float = 7 * 86400.0
    max_jobs: int = 10_000
    # How often the collector looks: a sweep over the table costs the event
    # loop a little, so not at every job's end.
    interval_s: float = 60.0

    @property
    def enabled(self) -> bool:
        return bool(self.max_age_s or self.max_jobs)


@dataclass(frozen=True)
class JobsConfig:
    max_concurrent_jobs: int = 0  # 0 = unlimited
    job_timeout_s: float = 0.0  # 0 = none
    stop_grace_s: float = 5.0
    max_upload_bytes: int = 256 * 1024 * 1024
    max_log_bytes: int = 4 * 1024 * 1024 * 1024  # per job, on disk
    run_as_uid: int | None = None  # None = root inside the job's namespaces
    run_as_gid: int | None = None
    # (uid, gid) pairs a job may ask to run as; None = any when run_as_uid is
    # None, else only the default user (joblet.jobs.users).
    allowed_users: tuple[tuple[int, int], ...] | None = None
    # RLIMIT_NOFILE hard limit per job process (soft 1024): ten jobs cannot
    # take the host's file table; lowered at launch where maxPids processes
    # would hold over a quarter of it (joblet.jobs.open_files). 0 = the
    # launcher's own limits.
    max_open_files: int = 4096
    # A launcher with no job and no daemon connected exits after this long
    # (0 = never): a daemon that never comes back leaves no process behind.
    launcher_idle_exit_s: float = 60.0
    # Jobs in a user namespace (isolation.userns): auto (where the kernel
    # allows), on (or the launcher refuses to start), off.
    user_namespace: str = "auto"
    # Size cap of each job's workspace (joblet.workspaces); 0 = none.
    max_workspace_bytes: int = 10 * 1024 * 1024 * 1024
    # Refuse a job named like a job that is not deleted, so that a name
    # always addresses one job.
    unique_job_names: bool = False
    retention: JobRetention = JobRetention()
    # RunJob answers RESOURCE_EXHAUSTED while the host has fewer process ids
    # free (joblet.jobs.host_limits); 0 = no check.
    min_free_pids: int = 256
    # A clean stop (SIGTERM) stops the running jobs first; by default they are
    # left to the launcher and re-attached by the next start (live restore).
    stop_jobs_on_shutdown: bool = False
    # A waiting job gains one priority step per this many seconds (0 = never):
    # nothing waits for ever behind a stream of higher priorities.
    priority_aging_s: float = 60.0
    # A job that would wait may stop running preemptible jobs of lower priority.
    preemption: bool = False
    # How often a preempted job with onPreempt=requeue goes back to the queue.
    max_requeues: int = 3


@dataclass(frozen=True)
class FilesystemConfig:
    allowed_mounts: tuple[str, ...] = DEFAULT_ALLOWED_MOUNTS
    tmp_size_bytes: int = 256 * 1024 * 1024


@dataclass(frozen=True)
class LimitDefaults:
    """Limits applied when a job asks for none (0 = unlimited)."""

    max_cpu: int = 0
    max_memory_mb: int = 0
    max_iobps: int = 0
    max_pids: int = 1024


CGROUP_BACKENDS = ("auto", "none")


@dataclass(frozen=True)
class CgroupConfig:
    mount_root: Path = Path("/sys/fs/cgroup")
    parent: str = "joblet"  # one parent group per daemon, under every hierarchy
    backend: str = "auto"  # "auto": v2 or v1, refuse to start without; "none": no limits
    defaults: LimitDefaults = field(default_factory=LimitDefaults)


@dataclass(frozen=True)
class RolesConfig:
    # The highest priority a certificate of each role may give a job; a role
    # not named here may give any (-1000..1000).
    max_priority: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DaemonConfig:
    layout: RootLayout
    security: SecurityConfig
    server: ServerConfig = field(default_factory=ServerConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    filesystem: FilesystemConfig = field(default_factory=FilesystemConfig)
    cgroup: CgroupConfig = field(default_factory=CgroupConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    roles: RolesConfig = field(default_factory=RolesConfig)
    gpu: GpuConfig = field(default_factory=GpuConfig)
    ui: UiConfig = field(default_factory=UiConfig)
