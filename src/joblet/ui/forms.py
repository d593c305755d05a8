"""The run-a-job form to a RunJobRequest: pure, each problem named by field."""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from joblet.api import joblet_pb2 as pb
from joblet.errors import InvalidArgument


class FormError(InvalidArgument):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _int(form: Mapping[str, str], name: str, low: int = 0, high: int = 2**31 - 1) -> int:
    text = form.get(name, "").strip()
    if not text:
        return 0
    try:
        value = int(text)
    except ValueError:
        raise FormError(name, f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise FormError(name, f"{name} must be from {low} to {high}")
    return value


def _pairs(form: Mapping[str, str], name: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for line in form.get(name, "").splitlines():
        if not line.strip():
            continue
        key, eq, value = line.partition("=")
        if not eq or not key.strip():
            raise FormError(name, f"{name}: {line.strip()!r} is not KEY=VALUE")
        pairs[key.strip()] = value
    return pairs


def run_request(form: Mapping[str, str]) -> pb.RunJobRequest:
    """The request the form asks for; FormError names the field at fault."""
    try:
        words = shlex.split(form.get("command", ""))
    except ValueError as exc:
        raise FormError("command", f"command: {exc}") from None
    if not words:
        raise FormError("command", "a command is required")
    return pb.RunJobRequest(
        name=form.get("name", "").strip(),
        command=words[0],
        args=words[1:],
        maxCpu=_int(form, "maxCpu"),
        maxMemory=_int(form, "maxMemory"),
        maxIobps=_int(form, "maxIobps"),
        network=form.get("network", "").strip(),
        volumes=[v for v in form.get("volumes", "").split(",") if v.strip()],
        runtime=form.get("runtime", "").strip(),
        workDir=form.get("workDir", "").strip(),
        schedule=form.get("schedule", "").strip(),
        environment=_pairs(form, "environment"),
        secret_environment=_pairs(form, "secretEnvironment"),
        priority=_int(form, "priority", -1000, 1000),
        gpu_count=_int(form, "gpuCount"),
    )
