"""Every field of a RunJob request is bounded; the refusal names the limit."""

from __future__ import annotations

from typing import Any

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.errors import InvalidArgument
from joblet.jobs import request_limits as limits
from joblet.jobs.validation import validate_run_request

KB = 1000


def validate(**fields: Any) -> None:
    fields.setdefault("command", "echo")
    validate_run_request(pb.RunJobRequest(**fields), 2, 1 << 30, now=0.0)


def refused(message: str, **fields: Any) -> str:
    with pytest.raises(InvalidArgument) as info:
        validate(**fields)
    text = str(info.value)
    assert message in text, text
    assert len(text) < 300, "a refusal must not echo the oversized value"
    return text


def test_nine_large_environment_values_are_refused_by_total() -> None:
    env = {f"V{n}": "x" * (120 * KB) for n in range(9)}
    refused("environment: 1,048,576 bytes max, got 1,080,027", environment=env)
    validate(environment=dict(list(env.items())[:8]))  # 960 KB: fine


def test_environment_total_counts_secrets_too() -> None:
    env = {f"V{n}": "x" * (120 * KB) for n in range(5)}
    secrets = {f"S{n}": "x" * (120 * KB) for n in range(5)}
    refused("environment: 1,048,576 bytes max", environment=env, secret_environment=secrets)


def test_one_environment_entry_over_the_kernel_limit() -> None:
    refused(
        "environment[BIG]: 131,071 bytes max, got 131,076",
        environment={"BIG": "x" * (128 * 1024)},
    )
    validate(environment={"BIG": "x" * (128 * 1024 - 5)})
    refused("secret_environment[S]: 131,071 bytes max", secret_environment={"S": "y" * 200_000})


def test_environment_entries() -> None:
    env = {f"V{n}": "" for n in range(limits.MAX_ENV_ENTRIES + 1)}
    refused("environment: 4,096 entries max, got 4,097", environment=env)


def test_args_count_size_and_total() -> None:
    refused("args: 4,096 entries max, got 4,097", args=["a"] * 4097)
    refused("args[1]: 131,071 bytes max, got 131,072", args=["a", "b" * 131_072])
    refused("args: 262,144 bytes max, got 300,000", args=["c" * 100_000] * 3)
    validate(args=["d" * 100_000, "e" * 100_000])


def test_command_length() -> None:
    refused("command: 4,096 bytes max, got 5,000", command="/" + "c" * 4999)


@pytest.mark.parametrize("field", ["name", "network", "runtime"])
def test_names(field: str) -> None:
    refused(f"{field}: 255 bytes max, got 10,000", **{field: "n" * 10_000})


def test_volumes() -> None:
    refused("volumes: 256 entries max, got 257", volumes=[f"v{n}" for n in range(257)])
    refused("volumes[0]: 258 bytes max, got 1,000", volumes=["v" * 1000])


def test_paths() -> None:
    deep = "a/" * 3000
    refused("uploads[0]: 4,096 bytes max, got 6,000", uploads=[pb.FileUpload(path=deep)])
    refused("workDir: 4,096 bytes max, got 6,000", workDir=deep)


def test_upload_count() -> None:
    many = [pb.FileUpload(path=f"d{n}", isDirectory=True) for n in range(100_001)]
    refused("uploads: 100,000 entries max, got 100,001", uploads=many)


def test_short_texts() -> None:
    refused("schedule: 256 bytes max, got 1,000", schedule="1" * 1000)
    refused("cpuCores: 256 bytes max, got 2,000", cpuCores="0," * 1000)
    refused("user: 256 bytes max, got 1,000", user="u" * 1000)
    refused("workflowUuid: 256 bytes max", workflowUuid="w" * 1000)
    reqs = [pb.JobRequirement(jobUuid="x" * 300)]
    refused("requirements[0]: 256 bytes max, got 300", requirements=reqs)


def test_multibyte_text_counts_bytes() -> None:
    refused("name: 255 bytes max, got 300", name="é" * 150)


@pytest.mark.parametrize(
    "path", ["../x", "a/../b", "/etc/passwd", "a\0b", "a\x1bb", "a\nb", "a\u009bb", "..", "a/.."]
)
def test_upload_paths_joined_to_the_workspace(path: str) -> None:
    refused("upload path", uploads=[pb.FileUpload(path=path, content=b"x")])


@pytest.mark.parametrize("field", ["name", "network", "runtime"])
@pytest.mark.parametrize("value", ["..", "../x", "/abs", "a/b", "a\0", "a\x1b", "a\nb", "a\u009b"])
def test_names_joined_to_host_paths(field: str, value: str) -> None:
    refused("is not allowed", **{field: value})


@pytest.mark.parametrize("value", ["..", "../x", "/abs", "a\0", "a\x1bb"])
def test_volume_names(value: str) -> None:
    with pytest.raises(InvalidArgument):
        validate(volumes=[value])
