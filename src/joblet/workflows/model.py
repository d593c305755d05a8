"""Workflows as plain data: the validated spec, its jobs and volumes, and
what the server knows exists. Frozen; built only by `yamlspec`."""

from __future__ import annotations

from dataclasses import dataclass, field

from joblet.workflows.expressions import Requirement


@dataclass(frozen=True)
class Known:
    """What exists on the server, for validation; None means "don't check"."""

    runtimes: frozenset[str] | None = None
    networks: frozenset[str] | None = None
    volumes: frozenset[str] | None = None
    files: frozenset[str] | None = None  # paths of RunWorkflowRequest.workflowFiles
    host_cpus: int | None = None  # bounds max_cpu and cpu_cores when given


@dataclass(frozen=True)
class VolumeDecl:
    """A volume the workflow creates before its first job if it is missing."""

    name: str
    size: str  # as written: "1GB"
    type: str  # "filesystem" or "memory"


@dataclass(frozen=True)
class WorkflowJob:
    name: str
    command: str
    args: tuple[str, ...] = ()
    runtime: str = ""
    network: str = ""
    volumes: tuple[str, ...] = ()  # "NAME" or "NAME:ro"
    uploads: tuple[str, ...] = ()  # files or directories, relative to the YAML file
    workdir: str = ""
    max_cpu: int = 0
    max_memory_mb: int = 0
    max_iobps: int = 0
    cpu_cores: str = ""
    gpu_count: int = 0
    gpu_memory_mb: int = 0
    # The workflow's defaults merged in, `${VAR}` expanded; keys named like
    # secrets (and values built from secrets) moved to secret_environment.
    environment: dict[str, str] = field(default_factory=dict)
    secret_environment: dict[str, str] = field(default_factory=dict)
    requires: tuple[Requirement, ...] = ()  # all must hold
    dependencies: tuple[str, ...] = ()  # jobs the requirements name, first mention first
    line: int = 0  # where the job's key is in the YAML
    priority: int = 0  # its own `priority`, else its workflow's


@dataclass(frozen=True)
class WorkflowSpec:
    name: str
    jobs: tuple[WorkflowJob, ...]  # YAML order
    volumes_to_create: tuple[VolumeDecl, ...] = ()
    volume_names: tuple[str, ...] = ()  # every volume the top-level `volumes` names

    def job(self, name: str) -> WorkflowJob:
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(name)
