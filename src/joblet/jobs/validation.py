"""Checking a RunJob request field by field, before anything is created.

`validate_run_request` turns the wire message into a `JobSpec` or raises
InvalidArgument naming the field and what a user can do about it. It is pure:
the host's CPU count, the upload cap and the clock come in as arguments.
"""

from __future__ import annotations

import posixpath
import pwd
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from joblet.config.units import parse_duration_s
from joblet.errors import InvalidArgument
from joblet.jobs.ids import is_job_id
from joblet.jobs.model import JobSpec, Upload
from joblet.jobs.priority import PRIORITY_MAX, PRIORITY_MIN
from joblet.jobs.request_limits import BoundedRequest, RequirementLike, check_request_bounds
from joblet.jobs.schedule import parse_schedule
from joblet.jobs.uploads import normalize_upload_path

WORKSPACE = "/work"
MAX_MODE = 0o7777

# Names become hostnames and path components: no "/", no leading ".", no "..".
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # C0, DEL, C1
_NAME_RULE = "1-64 letters, digits, '_', '.', '-', starting with a letter or digit, no '..'"


class FileUploadLike(Protocol):
    @property
    def path(self) -> str: ...
    @property
    def content(self) -> bytes: ...
    @property
    def mode(self) -> int: ...
    @property
    def isDirectory(self) -> bool: ...


class RunJobRequestLike(BoundedRequest, Protocol):
    """The fields of `joblet_pb2.RunJobRequest` that validation reads, beyond
    those whose size `check_request_bounds` bounds."""

    @property
    def maxCpu(self) -> int: ...
    @property
    def maxMemory(self) -> int: ...
    @property
    def maxIobps(self) -> int: ...
    @property
    def uploads(self) -> Sequence[FileUploadLike]: ...
    @property
    def gpu_count(self) -> int: ...
    @property
    def gpu_memory_mb(self) -> int: ...


def validate_run_request(
    req: RunJobRequestLike, host_cpus: int, max_upload_bytes: int, *, now: float | None = None
) -> JobSpec:
    """The request as a validated JobSpec, or InvalidArgument for the first bad
    field. `now` (default: the clock) is what a relative schedule counts from;
    pass the same value to `parse_schedule(spec.schedule, now)` afterwards."""
    if host_cpus < 1:
        raise ValueError(f"host_cpus must be at least 1, got {host_cpus}")
    check_request_bounds(req)
    command = check_command(req.command)
    if req.schedule:
        parse_schedule(req.schedule, time.time() if now is None else now)
    environment = check_environment("environment", req.environment)
    secrets = check_environment("secret_environment", req.secret_environment)
    if environment and secrets:
        check_disjoint(environment, secrets)
    cpu_cores = req.cpuCores
    return JobSpec(
        command=command,
        args=check_args(req.args),
        name=check_name("name", req.name),
        max_cpu=check_max_cpu(req.maxCpu, host_cpus),
        cpu_cores=format_cpuset(parse_cpuset(cpu_cores, host_cpus)) if cpu_cores else "",
        max_memory_mb=check_not_negative("maxMemory", req.maxMemory, "MB"),
        max_iobps=check_not_negative("maxIobps", req.maxIobps, "bytes per second"),
        environment=environment,
        secret_environment=secrets,
        uploads=check_uploads(req.uploads, max_upload_bytes) if req.uploads else (),
        schedule=req.schedule.strip(),
        network=check_name("network", req.network),
        volumes=check_volumes(req.volumes) if req.volumes else (),
        runtime=check_runtime_reference(req.runtime),
        workdir=check_workdir(req.workDir),
        gpu_count=check_not_negative("gpu_count", req.gpu_count, "GPUs"),
        gpu_memory_mb=check_not_negative("gpu_memory_mb", req.gpu_memory_mb, "MB"),
        gpu_ids=check_gpu_ids(getattr(req, "gpu_ids", ()), req.gpu_count),
        workflow_uuid=check_workflow_uuid(req.workflowUuid),
        dependencies=check_dependencies(req.requirements) if req.requirements else (),
        run_as=check_user(getattr(req, "user", "")),
        stdin=bool(getattr(req, "stdin", False)),
        max_ingress_bps=check_not_negative(
            "maxIngressBitsPerSec", getattr(req, "maxIngressBitsPerSec", 0), "bit/s"
        ),
        max_egress_bps=check_not_negative(
            "maxEgressBitsPerSec", getattr(req, "maxEgressBitsPerSec", 0), "bit/s"
        ),
        priority=check_priority(getattr(req, "priority", 0)),
        preemptible=bool(getattr(req, "preemptible", False)),
        on_preempt=check_on_preempt(getattr(req, "onPreempt", "")),
        stop_grace_s=check_stop_grace(getattr(req, "stopGracePeriod", "")),
    )


ON_PREEMPT = ("requeue", "stop")
MAX_STOP_GRACE_S = 3600.0


def check_priority(priority: int, field: str = "priority") -> int:
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise InvalidArgument(
            f"{field} {priority} is out of range: give {PRIORITY_MIN}..{PRIORITY_MAX}"
        )
    return priority


def check_on_preempt(value: str) -> str:
    """onPreempt: "requeue" (the default, also for "") or "stop"."""
    if not value:
        return "requeue"
    if value not in ON_PREEMPT:
        raise InvalidArgument(f"onPreempt {value!r}: give requeue or stop")
    return value


def check_stop_grace(value: str) -> float | None:
    """stopGracePeriod: a duration up to an hour; "" = the node's."""
    if not value:
        return None
    try:
        seconds = parse_duration_s(value)
    except ValueError:
        raise InvalidArgument(
            f"stopGracePeriod {value!r}: give a duration such as 10s or 1m"
        ) from None
    if not 0 <= seconds <= MAX_STOP_GRACE_S:
        raise InvalidArgument(f"stopGracePeriod {value!r}: give 0s..1h")
    return seconds


def check_command(command: str) -> str:
    if not command.strip():
        raise InvalidArgument("command is required: give the program to run")
    if "\0" in command:
        raise InvalidArgument("command contains a NUL byte")
    return command


def check_args(args: Iterable[str]) -> tuple[str, ...]:
    checked = tuple(args)
    if not checked:
        return checked
    for index, arg in enumerate(checked):
        if "\0" in arg:
            raise InvalidArgument(f"args[{index}] contains a NUL byte")
    return checked


def check_name(field: str, value: str) -> str:
    """An optional name (job, network, runtime, volume): "" or allowlisted."""
    if value and (_NAME.fullmatch(value) is None or ".." in value):
        raise InvalidArgument(f"{field} {value!r} is not allowed: use {_NAME_RULE}")
    return value


# A runtime reference (`NAME` or `LANG:VERSION[-VARIANT...][@ARCH]`): only
# its characters are checked here; the runtime store parses and resolves it.
_RUNTIME_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,127}")


def check_runtime_reference(value: str) -> str:
    if value and (_RUNTIME_REFERENCE.fullmatch(value) is None or ".." in value):
        raise InvalidArgument(
            f"runtime {value!r} is not allowed: use NAME or LANG:VERSION[-VARIANT][@ARCH]"
        )
    return value


def check_max_cpu(value: int, host_cpus: int) -> int:
    top = 100 * host_cpus
    if not 0 <= value <= top:
        raise InvalidArgument(
            f"maxCpu {value} is out of range 0..{top}"
            f" (100 = one core, 0 = unlimited; this host has {host_cpus} CPUs)"
        )
    return value


def check_not_negative(field: str, value: int, unit: str) -> int:
    if value < 0:
        raise InvalidArgument(f"{field} {value} must not be negative ({unit}, 0 = none)")
    return value


def parse_cpuset(text: str, host_cpus: int) -> tuple[int, ...]:
    """A cpuset list ("0-3", "1,3", "0-1,4") as sorted unique CPU numbers, all
    below `host_cpus`. Empty text means no pinning: ()."""
    if not text.strip():
        return ()
    cpus: set[int] = set()
    for item in text.split(","):
        low, high = _cpuset_item(text, item.strip())
        if high >= host_cpus:
            raise InvalidArgument(
                f"cpuCores {text!r} names CPU {high}, but this host has CPUs 0-{host_cpus - 1}"
            )
        cpus.update(range(low, high + 1))
    return tuple(sorted(cpus))


def _cpuset_item(text: str, item: str) -> tuple[int, int]:
    bounds = item.split("-")
    if len(bounds) > 2 or not all(b.isascii() and b.isdigit() for b in bounds):
        raise InvalidArgument(
            f"cpuCores {text!r} is not a CPU list: use numbers and ranges like 0-3 or 1,3 or 0-1,4"
        )
    low, high = int(bounds[0]), int(bounds[-1])
    if low > high:
        raise InvalidArgument(f"cpuCores {text!r} has a range {item!r} that runs backwards")
    return low, high


def format_cpuset(cpus: Sequence[int]) -> str:
    """Sorted CPU numbers in the kernel's cpuset list form: (0, 1, 2, 5) -> "0-2,5"."""
    ranges: list[list[int]] = []
    for cpu in cpus:
        if ranges and cpu == ranges[-1][1] + 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges)


def check_environment(field: str, env: Mapping[str, str]) -> dict[str, str]:
    if not env:
        return {}
    for key, value in env.items():
        if _ENV_KEY.fullmatch(key) is None:
            raise InvalidArgument(
                f"{field} key {key!r} is not a valid variable name:"
                " use letters, digits and '_', not starting with a digit"
            )
        if "\0" in value:
            raise InvalidArgument(f"{field} value of {key} contains a NUL byte")
    return dict(env)


def check_disjoint(environment: Mapping[str, str], secrets: Mapping[str, str]) -> None:
    both = sorted(environment.keys() & secrets.keys())
    if both:
        raise InvalidArgument(
            f"{', '.join(both)} given in both environment and secret_environment: keep one"
        )


def check_workdir(workdir: str) -> str:
    """An empty string (the default, /work) or a normalised absolute path inside /work."""
    if not workdir:
        return ""
    if "\0" in workdir:
        raise InvalidArgument("workDir contains a NUL byte")
    if _CONTROL.search(workdir):
        # As for upload paths: a directory name no terminal may print raw.
        raise InvalidArgument(f"workDir {workdir!r} contains a control character")
    # "//work" is kept as is by normpath (POSIX leaves a leading "//" alone).
    joined = posixpath.join(WORKSPACE, workdir).lstrip("/")
    normal = posixpath.normpath("/" + joined)
    if normal != WORKSPACE and not normal.startswith(WORKSPACE + "/"):
        raise InvalidArgument(
            f"workDir {workdir!r} is outside the job's workspace: use a path under /work"
            " or one relative to it"
        )
    return normal


def check_uploads(uploads: Iterable[FileUploadLike], max_bytes: int) -> tuple[Upload, ...]:
    checked = tuple(_check_upload(index, u) for index, u in enumerate(uploads))
    total = sum(len(u.content) for u in checked)
    if total > max_bytes:
        raise InvalidArgument(
            f"uploads total {total} bytes, over this server's limit joblet.maxUploadSize"
            f" ({max_bytes} bytes):"
            " upload less, or use a volume for large data"
        )
    _check_upload_paths(checked)
    return checked


def _check_upload(index: int, upload: FileUploadLike) -> Upload:
    try:
        path = normalize_upload_path(upload.path)
    except InvalidArgument as exc:
        raise InvalidArgument(f"uploads[{index}]: {exc}") from exc
    if not 0 <= upload.mode <= MAX_MODE:
        raise InvalidArgument(
            f"uploads[{index}] {path!r}: mode {upload.mode:#o} is out of range 0..0o7777"
        )
    if upload.isDirectory and upload.content:
        raise InvalidArgument(f"uploads[{index}] {path!r} is a directory but carries content")
    return Upload(path, bytes(upload.content), upload.mode, upload.isDirectory)


def merge_staged(
    inline: tuple[Upload, ...], staged: tuple[Upload, ...], max_bytes: int
) -> tuple[Upload, ...]:
    """The request's own uploads and a session's, checked as one set."""
    merged = inline + staged
    total = sum(u.byte_size for u in merged)
    if total > max_bytes:
        raise InvalidArgument(
            f"uploads total {total} bytes, over this server's limit "
            f"joblet.maxUploadSize ({max_bytes} bytes)"
        )
    _check_upload_paths(merged)
    return merged


def _check_upload_paths(uploads: Sequence[Upload]) -> None:
    """No path twice, and no file used as another upload's parent directory."""
    seen: set[str] = set()
    files: set[str] = set()
    for upload in uploads:
        if upload.path in seen:
            raise InvalidArgument(f"upload path {upload.path!r} is given more than once")
        seen.add(upload.path)
        if not upload.is_directory:
            files.add(upload.path)
    for upload in uploads:
        parts = upload.path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent in files:
                raise InvalidArgument(
                    f"upload {upload.path!r} is inside {parent!r}, which is uploaded as a file"
                )


def check_volumes(volumes: Iterable[str]) -> tuple[str, ...]:
    """`NAME` or `NAME:ro` entries; the names must differ."""
    checked = tuple(volumes)
    names = []
    for entry in checked:
        name = entry.removesuffix(":ro")
        if not name:
            raise InvalidArgument("volume names must not be empty")
        names.append(check_name("volume", name))
    duplicates = sorted({v for v in names if names.count(v) > 1})
    if duplicates:
        raise InvalidArgument(f"volume {duplicates[0]!r} is given more than once")
    return checked


MAX_GPU_IDS = 64


def check_gpu_ids(ids: Iterable[str], count: int) -> tuple[str, ...]:
    """Pinned GPUs: host indices ("0") or UUIDs ("GPU-..."), each once; with
    gpu_count set, as many as it says."""
    checked = tuple(i.strip() for i in ids)
    if len(checked) > MAX_GPU_IDS:
        raise InvalidArgument(f"gpu_ids: at most {MAX_GPU_IDS} GPUs may be pinned")
    for item in checked:
        if not item or len(item) > 128 or not item.replace("-", "").replace(":", "").isalnum():
            raise InvalidArgument(f"gpu_ids: {item!r} is no GPU index or UUID")
    if len(set(checked)) != len(checked):
        raise InvalidArgument("gpu_ids: a GPU is pinned more than once")
    if checked and count and count != len(checked):
        raise InvalidArgument(
            f"gpu_count {count} does not match the {len(checked)} GPU(s) pinned by gpu_ids"
        )
    return checked


def check_workflow_uuid(value: str) -> str:
    if value and not is_job_id(value):
        raise InvalidArgument(f"workflowUuid {value!r} is not a UUID")
    return value


def check_dependencies(requirements: Iterable[RequirementLike]) -> tuple[str, ...]:
    """The job ids the entries name by `jobUuid` (an entry may instead carry
    an expression, checked where it is parsed)."""
    deps: list[str] = []
    for index, requirement in enumerate(requirements):
        dep = requirement.jobUuid
        expression = str(getattr(requirement, "expression", ""))
        if not dep and expression:
            continue
        if not is_job_id(dep):
            raise InvalidArgument(f"requirements[{index}].jobUuid {dep!r} is not a job UUID")
        deps.append(dep)
    return tuple(deps)


MAX_ID = 2**32 - 2  # (uid_t)-1 means "unchanged" to setuid(2)


def check_user(text: str) -> tuple[int, int] | None:
    """ "" -> None (node default); "root" -> (0, 0); "NAME", "UID" or "UID:GID"."""
    text = text.strip()
    if not text:
        return None
    if "\0" in text:
        raise InvalidArgument("user contains a NUL byte")
    name, _, group = text.partition(":")
    if name.isdigit():
        uid = int(name)
        gid = uid
    else:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise InvalidArgument(
                f"user {name!r} is not known on this host (give a name, UID or UID:GID)"
            ) from None
        uid, gid = entry.pw_uid, entry.pw_gid
    if group:
        if not group.isdigit():
            raise InvalidArgument(f"user group {group!r} must be a numeric GID")
        gid = int(group)
    if uid > MAX_ID or gid > MAX_ID:
        raise InvalidArgument(f"user {text!r}: ids must be at most {MAX_ID}")
    return uid, gid
