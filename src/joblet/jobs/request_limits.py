"""How big each field of a RunJob request may be: every limit in one place.

The limits sit well above normal use and below what breaks something: the
kernel refuses an argument or `KEY=VALUE` string of 128 KiB or more
(MAX_ARG_STRLEN) and arguments plus environment over a quarter of the stack
limit (ARG_MAX, 2 MiB with the usual 8 MiB stack); a name or path component
is at most 255 bytes (NAME_MAX), a path 4096 (PATH_MAX). A request over a
limit is refused as a whole with InvalidArgument naming the field, the limit
and the size it had, before any field is parsed, so no error message ever
echoes a huge value. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Sized
from typing import Protocol

from joblet.errors import InvalidArgument

KIB = 1024
MIB = 1024 * KIB

MAX_ENV_ENTRIES = 4096  # environment and secret_environment together
MAX_ENV_ENTRY_BYTES = 128 * KIB - 1  # "KEY=VALUE" plus its NUL under MAX_ARG_STRLEN
MAX_ENV_BYTES = 1 * MIB  # every "KEY=VALUE" of both maps
MAX_ARGS = 4096
MAX_ARG_BYTES = 128 * KIB - 1  # one argument plus its NUL under MAX_ARG_STRLEN
MAX_ARGS_BYTES = 256 * KIB
MAX_COMMAND_BYTES = 4096  # a path to a program: PATH_MAX
MAX_NAME_BYTES = 255  # job, network, volume, runtime names: NAME_MAX
MAX_PATH_BYTES = 4096  # upload paths, workDir: PATH_MAX
MAX_UPLOADS = 100_000  # entries; their content is capped by joblet.maxUploadSize
MAX_VOLUMES = 256
MAX_REQUIREMENTS = 4096
MAX_SHORT_TEXT_BYTES = 256  # schedule, cpuCores, user, workflowUuid, uuids


class UploadLike(Protocol):
    @property
    def path(self) -> str: ...


class RequirementLike(Protocol):
    @property
    def jobUuid(self) -> str: ...


class BoundedRequest(Protocol):
    """The fields of a RunJob request whose size is bounded."""

    @property
    def name(self) -> str: ...
    @property
    def command(self) -> str: ...
    @property
    def args(self) -> Sequence[str]: ...
    @property
    def cpuCores(self) -> str: ...
    @property
    def uploads(self) -> Sequence[UploadLike]: ...
    @property
    def schedule(self) -> str: ...
    @property
    def network(self) -> str: ...
    @property
    def volumes(self) -> Sequence[str]: ...
    @property
    def runtime(self) -> str: ...
    @property
    def workDir(self) -> str: ...
    @property
    def environment(self) -> Mapping[str, str]: ...
    @property
    def secret_environment(self) -> Mapping[str, str]: ...
    @property
    def workflowUuid(self) -> str: ...
    @property
    def requirements(self) -> Sequence[RequirementLike]: ...


def over_limit(field: str, limit: int, got: int, unit: str = "bytes") -> InvalidArgument:
    """The one wording of every refusal: `environment: 1,048,576 bytes max, got 1,088,000`."""
    return InvalidArgument(f"{field}: {limit:,} {unit} max, got {got:,}")


def _size(text: str) -> int:
    return len(text.encode("utf-8", errors="surrogatepass"))


def check_count(field: str, items: Sized, limit: int, unit: str = "entries") -> None:
    if len(items) > limit:
        raise over_limit(field, limit, len(items), unit)


def check_text(field: str, text: str, limit: int) -> None:
    # A str has at most 4 bytes per character: a cheap test first.
    if len(text) > limit // 4 and _size(text) > limit:
        raise over_limit(field, limit, _size(text))


def check_texts(field: str, texts: Iterable[str], limit: int) -> None:
    for index, text in enumerate(texts):
        check_text(f"{field}[{index}]", text, limit)


def check_environment_bounds(*maps: tuple[str, Mapping[str, str]]) -> None:
    """Entries, each `KEY=VALUE`, and all of them together, over both maps."""
    entries = sum(len(env) for _, env in maps)
    if entries > MAX_ENV_ENTRIES:
        raise over_limit("environment", MAX_ENV_ENTRIES, entries, "entries")
    total = 0
    for field, env in maps:
        for key, value in env.items():
            size = _size(key) + 1 + _size(value)
            if size > MAX_ENV_ENTRY_BYTES:
                raise over_limit(f"{field}[{_short(key)}]", MAX_ENV_ENTRY_BYTES, size)
            total += size
    if total > MAX_ENV_BYTES:
        raise over_limit("environment", MAX_ENV_BYTES, total)


def check_args_bounds(args: Sequence[str]) -> None:
    check_count("args", args, MAX_ARGS)
    check_texts("args", args, MAX_ARG_BYTES)
    total = sum(_size(arg) for arg in args)
    if total > MAX_ARGS_BYTES:
        raise over_limit("args", MAX_ARGS_BYTES, total)


def check_request_bounds(req: BoundedRequest) -> None:
    """InvalidArgument for the first field over its limit."""
    check_text("command", req.command, MAX_COMMAND_BYTES)
    check_args_bounds(req.args)
    check_environment_bounds(
        ("environment", req.environment), ("secret_environment", req.secret_environment)
    )
    for field in ("name", "network", "runtime"):
        check_text(field, getattr(req, field), MAX_NAME_BYTES)
    check_count("volumes", req.volumes, MAX_VOLUMES)
    check_texts("volumes", req.volumes, MAX_NAME_BYTES + len(":ro"))
    check_count("uploads", req.uploads, MAX_UPLOADS)
    check_texts("uploads", (u.path for u in req.uploads), MAX_PATH_BYTES)
    check_text("workDir", req.workDir, MAX_PATH_BYTES)
    check_count("requirements", req.requirements, MAX_REQUIREMENTS)
    check_texts("requirements", (r.jobUuid for r in req.requirements), MAX_SHORT_TEXT_BYTES)
    for field in ("schedule", "cpuCores", "workflowUuid", "user"):
        check_text(field, getattr(req, field, ""), MAX_SHORT_TEXT_BYTES)


def _short(key: str) -> str:
    """A variable name fit for a message (the name itself may be the big part)."""
    return key if len(key) <= 64 else f"{key[:64]}..."
