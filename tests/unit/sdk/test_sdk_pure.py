"""The SDK's pure parts: request building, error mapping, dict shapes, lazy import."""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest

from joblet.api import joblet_pb2 as pb
from joblet.sdk import errors
from joblet.sdk.convert import snake, to_snake_dict
from joblet.sdk.logs import TextDecoder
from joblet.sdk.requests import run_request


def test_options_become_request_fields() -> None:
    req = run_request(
        "python3", ["-c", "pass"],
        {"name": "n", "max_cpu": 50, "max_memory": 64, "env": {"A": "1"}, "work_dir": "/work/x",
         "uploads": {"a.txt": b"x"}, "volumes": ["v"], "gpu": 1},
    )  # fmt: skip
    assert (req.name, req.maxCpu, req.maxMemory, req.workDir, req.gpu_count) == (
        "n", 50, 64, "/work/x", 1,
    )  # fmt: skip
    assert dict(req.environment) == {"A": "1"} and list(req.volumes) == ["v"]
    assert [(u.path, u.content) for u in req.uploads] == [("a.txt", b"x")]


def test_priority_options_become_request_fields() -> None:
    req = run_request(
        "true", (),
        {"priority": -5, "preemptible": True, "on_preempt": "stop", "stop_grace_period": "2s"},
    )  # fmt: skip
    assert (req.priority, req.preemptible, req.onPreempt, req.stopGracePeriod) == (
        -5, True, "stop", "2s",
    )  # fmt: skip


def test_gpu_options_become_request_fields() -> None:
    req = run_request("true", (), {"gpu": 2, "gpu_memory": 8192, "gpu_ids": [0, "GPU-x"]})
    assert (req.gpu_count, req.gpu_memory_mb, list(req.gpu_ids)) == (2, 8192, ["0", "GPU-x"])


def test_unknown_options_and_a_string_for_args_are_refused() -> None:
    with pytest.raises(errors.InvalidArgumentError, match="max_cpus"):
        run_request("true", (), {"max_cpus": 1})
    with pytest.raises(errors.InvalidArgumentError, match="sequence"):
        run_request("echo", "hello", {})  # type: ignore[arg-type]


class _Rpc(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(
    ("code", "cls", "reference_base"),
    [
        (grpc.StatusCode.NOT_FOUND, errors.NotFoundError, errors.JobNotFoundError),
        (grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidArgumentError, errors.ValidationError),
        (grpc.StatusCode.PERMISSION_DENIED, errors.PermissionDeniedError,
         errors.AuthenticationError),
        (grpc.StatusCode.UNAVAILABLE, errors.UnavailableError, errors.ConnectionError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, errors.DeadlineExceededError, errors.TimeoutError),
        (grpc.StatusCode.DATA_LOSS, errors.JobletException, errors.JobletException),
    ],
)  # fmt: skip
def test_an_exception_per_code(
    code: grpc.StatusCode, cls: type[Exception], reference_base: type[Exception]
) -> None:
    error = errors.from_rpc_error(_Rpc(code, "why"))
    assert type(error) is cls and isinstance(error, reference_base)
    assert error.code is code and error.details == "why"


def test_dicts_use_the_reference_keys() -> None:
    assert [snake(n) for n in ("maxCPU", "topByCPU", "instanceID", "diskIO", "gpu_count")] == [
        "max_cpu", "top_by_cpu", "instance_id", "disk_io", "gpu_count",
    ]  # fmt: skip
    res = to_snake_dict(pb.RunJobResponse(jobUuid="u", args=["a"]), {"jobUuid": "job_uuid"})
    assert res["job_uuid"] == "u" and res["args"] == ["a"] and res["exit_code"] == 0


def test_text_decoding_keeps_characters_split_across_chunks() -> None:
    decoder = TextDecoder()
    euro = "€".encode()
    assert decoder.feed(euro[:1]) == "" and decoder.feed(euro[1:] + b"\xff") == "€\ufffd"


def test_import_joblet_loads_no_grpc() -> None:
    code = "import sys, joblet; print('grpc' in sys.modules, 'google.protobuf' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    assert out.split() == [b"False", b"False"]
