"""`Client.run`'s keyword options as a RunJobRequest (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from joblet.api import joblet_pb2 as pb
from joblet.sdk.errors import InvalidArgumentError

# Option name -> (RunJobRequest field, converter).
_SCALARS: dict[str, str] = {
    "name": "name",
    "max_cpu": "maxCpu",
    "cpu_cores": "cpuCores",
    "max_memory": "maxMemory",
    "max_iobps": "maxIobps",
    "schedule": "schedule",
    "network": "network",
    "runtime": "runtime",
    "workdir": "workDir",
    "gpu_count": "gpu_count",
    "gpu_memory_mb": "gpu_memory_mb",
    "user": "user",
    "max_ingress_bps": "maxIngressBitsPerSec",
    "max_egress_bps": "maxEgressBitsPerSec",
    "stdin": "stdin",
    "priority": "priority",
    "preemptible": "preemptible",
    "on_preempt": "onPreempt",
    "stop_grace_period": "stopGracePeriod",
}
_ALIASES = {"work_dir": "workdir", "gpu": "gpu_count", "gpu_memory": "gpu_memory_mb"}
OPTIONS = frozenset({*_SCALARS, *_ALIASES, "env", "environment", "secret_env",
                     "secret_environment", "volumes", "uploads", "gpu_ids"})  # fmt: skip


def run_request(command: str, args: Sequence[str], options: Mapping[str, Any]) -> pb.RunJobRequest:
    """Unknown options are refused by name, not ignored."""
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise InvalidArgumentError(
            f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(OPTIONS))}"
        )
    if isinstance(args, str):
        raise InvalidArgumentError("args is a sequence of strings, not one string")
    request = pb.RunJobRequest(command=command, args=list(args))
    for given, value in options.items():
        option = _ALIASES.get(given, given)
        if option in _SCALARS and value is not None:
            setattr(request, _SCALARS[option], value)
    request.environment.update(options.get("env") or options.get("environment") or {})
    request.secret_environment.update(
        options.get("secret_env") or options.get("secret_environment") or {}
    )
    request.volumes.extend(options.get("volumes") or ())
    request.gpu_ids.extend(str(i) for i in options.get("gpu_ids") or ())
    request.uploads.extend(uploads(options.get("uploads") or {}))
    return request


def large_files(given: Any, threshold: int) -> dict[str, Path]:
    """The uploads given as local paths, when together they are over
    `threshold` bytes (then they stream through UploadFiles); else {}."""
    if not isinstance(given, Mapping):
        return {}
    paths = {k: Path(v) for k, v in given.items() if isinstance(v, str | Path)}
    try:
        total = sum(path.stat().st_size for path in paths.values())
    except OSError:
        return {}  # the inline path reports which file
    return paths if total > threshold else {}


def uploads(
    given: Mapping[str, bytes | str | Path] | Iterable[Mapping[str, Any]],
) -> list[pb.FileUpload]:
    """{workspace path: bytes, or a local file's path} as FileUploads; a list of
    the reference SDK's dicts ({"path", "content", "mode", "is_directory"}) too."""
    if isinstance(given, Mapping):
        return [_upload(path, source) for path, source in given.items()]
    return [
        pb.FileUpload(
            path=item.get("path", ""),
            content=item.get("content", b""),
            mode=item.get("mode", 0o644),
            isDirectory=item.get("is_directory", False),
        )
        for item in given
    ]


def _upload(path: str, source: bytes | str | Path) -> pb.FileUpload:
    if isinstance(source, bytes):
        return pb.FileUpload(path=path, content=source, mode=0o644)
    local = Path(source)
    try:
        content = local.read_bytes()
        mode = local.stat().st_mode & 0o7777
    except OSError as exc:
        raise InvalidArgumentError(f"cannot upload {local}: {exc.strerror}") from exc
    return pb.FileUpload(path=path, content=content, mode=mode)
