from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.errors import InvalidArgument
from joblet.jobs.model import JobSpec, Upload
from joblet.jobs.validation import format_cpuset, parse_cpuset, validate_run_request

NOW = 1_767_366_245.0  # 2026-01-02T15:04:05Z
CPUS = 2
CAP = 1024
JOB = "0a1b2c3d-0000-4000-8000-000000000001"


def validate(**fields: Any) -> JobSpec:
    fields.setdefault("command", "echo")
    return validate_run_request(pb.RunJobRequest(**fields), CPUS, CAP, now=NOW)


def refused(message: str, **fields: Any) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate(**fields)
    assert message in str(info.value), str(info.value)


def up(path: str, content: bytes = b"", mode: int = 0, is_dir: bool = False) -> pb.FileUpload:
    return pb.FileUpload(path=path, content=content, mode=mode, isDirectory=is_dir)


def test_minimal_request() -> None:
    assert validate(command="echo") == JobSpec(command="echo")


def test_full_request_maps_every_field() -> None:
    spec = validate(
        name="build-1.x_y",
        command="python3",
        args=["-c", "print(1)", ""],
        maxCpu=150,
        cpuCores="1,0",
        maxMemory=512,
        maxIobps=1_000_000,
        uploads=[up("src", is_dir=True, mode=0o750), up("src/./main.py", b"print(1)", 0o755)],
        schedule=" 5m ",
        network="bridge",
        volumes=["data", "cache"],
        runtime="python-3.11",
        workDir="src",
        environment={"A": "1", "_B2": "x=y"},
        secret_environment={"TOKEN": "s"},
        workflowUuid=JOB,
        requirements=[pb.JobRequirement(jobUuid=JOB)],
        gpu_count=1,
        gpu_memory_mb=2048,
    )
    assert spec == JobSpec(
        command="python3",
        args=("-c", "print(1)", ""),
        name="build-1.x_y",
        max_cpu=150,
        cpu_cores="0-1",
        max_memory_mb=512,
        max_iobps=1_000_000,
        environment={"A": "1", "_B2": "x=y"},
        secret_environment={"TOKEN": "s"},
        uploads=(Upload("src", b"", 0o750, True), Upload("src/main.py", b"print(1)", 0o755, False)),
        schedule="5m",
        network="bridge",
        volumes=("data", "cache"),
        runtime="python-3.11",
        workdir="/work/src",
        gpu_count=1,
        gpu_memory_mb=2048,
        workflow_uuid=JOB,
        dependencies=(JOB,),
    )


def test_result_does_not_alias_the_request_maps() -> None:
    req = pb.RunJobRequest(command="x", environment={"A": "1"})
    spec = validate_run_request(req, CPUS, CAP, now=NOW)
    req.environment["A"] = "2"
    assert spec.environment == {"A": "1"}
    assert isinstance(spec.environment, dict)


# --- command and args -------------------------------------------------------


@pytest.mark.parametrize("command", ["", "   "])
def test_command_required(command: str) -> None:
    refused("command is required", command=command)


def test_command_nul() -> None:
    refused("command contains a NUL byte", command="ec\0ho")


def test_args_nul_names_index() -> None:
    refused("args[1] contains a NUL byte", args=["ok", "b\0ad"])


# --- limits -----------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, 100, 200])
def test_max_cpu_accepted(value: int) -> None:
    assert validate(maxCpu=value).max_cpu == value


@pytest.mark.parametrize("value", [-1, 201, 250])
def test_max_cpu_refused(value: int) -> None:
    refused(f"maxCpu {value} is out of range 0..200", maxCpu=value)
    refused("100 = one core", maxCpu=value)
    refused("this host has 2 CPUs", maxCpu=value)


def test_max_cpu_scales_with_host() -> None:
    req = pb.RunJobRequest(command="x", maxCpu=800)
    assert validate_run_request(req, 8, CAP, now=NOW).max_cpu == 800


@pytest.mark.parametrize(
    ("field", "spec_field"),
    [
        ("maxMemory", "max_memory_mb"),
        ("maxIobps", "max_iobps"),
        ("gpu_count", "gpu_count"),
        ("gpu_memory_mb", "gpu_memory_mb"),
    ],
)
def test_non_negative_limits(field: str, spec_field: str) -> None:
    assert getattr(validate(**{field: 0}), spec_field) == 0
    assert getattr(validate(**{field: 2**31 - 1}), spec_field) == 2**31 - 1
    refused(f"{field} -1 must not be negative", **{field: -1})


def test_host_cpus_must_be_positive() -> None:
    with pytest.raises(ValueError, match="host_cpus"):
        validate_run_request(pb.RunJobRequest(command="x"), 0, CAP, now=NOW)


# --- cpuCores ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "host", "cpus"),
    [
        ("", 2, ()),
        ("  ", 2, ()),
        ("0", 2, (0,)),
        ("1", 2, (1,)),
        ("0-3", 4, (0, 1, 2, 3)),
        ("1,3", 4, (1, 3)),
        ("0-1,4", 8, (0, 1, 4)),
        ("3,1,1", 4, (1, 3)),
        ("0-2,1-3", 4, (0, 1, 2, 3)),
        (" 0 , 2-3 ", 4, (0, 2, 3)),
        ("2-2", 4, (2,)),
        ("07", 8, (7,)),
    ],
)
def test_parse_cpuset_accepted(text: str, host: int, cpus: tuple[int, ...]) -> None:
    assert parse_cpuset(text, host) == cpus


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2", "names CPU 2, but this host has CPUs 0-1"),
        ("0-3", "names CPU 3, but this host has CPUs 0-1"),
        ("0-99999999999999", "names CPU 99999999999999"),
        ("1-0", "runs backwards"),
        ("a", "is not a CPU list"),
        ("-1", "is not a CPU list"),
        ("0-1-2", "is not a CPU list"),
        ("0,,1", "is not a CPU list"),
        ("0,", "is not a CPU list"),
        ("0-", "is not a CPU list"),
        ("0x1", "is not a CPU list"),
        ("\u0661", "is not a CPU list"),  # a non-ASCII digit
        ("0;1", "is not a CPU list"),
    ],
)
def test_cpuset_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match="cpuCores") as info:
        parse_cpuset(text, CPUS)
    assert message in str(info.value)
    refused(message, cpuCores=text)


@pytest.mark.parametrize(
    ("cpus", "text"),
    [
        ((), ""),
        ((0,), "0"),
        ((0, 1, 2, 5), "0-2,5"),
        ((1, 3), "1,3"),
        ((0, 1, 4, 5, 7), "0-1,4-5,7"),
    ],
)
def test_format_cpuset(cpus: tuple[int, ...], text: str) -> None:
    assert format_cpuset(cpus) == text


def test_cpu_cores_stored_canonical() -> None:
    assert validate(cpuCores="1,0").cpu_cores == "0-1"


# --- environment ------------------------------------------------------------


@pytest.mark.parametrize("field", ["environment", "secret_environment"])
@pytest.mark.parametrize("key", ["A", "_", "a_b", "PATH", "X1", "_9"])
def test_env_keys_accepted(field: str, key: str) -> None:
    spec = validate(**{field: {key: "v"}})
    assert getattr(spec, field) == {key: "v"}


@pytest.mark.parametrize("field", ["environment", "secret_environment"])
@pytest.mark.parametrize("key", ["", "1A", "A-B", "A B", "A=B", "A\0", "Ä", "A.B", "$A"])
def test_env_keys_refused(field: str, key: str) -> None:
    refused(f"{field} key {key!r} is not a valid variable name", **{field: {key: "v"}})


@pytest.mark.parametrize("field", ["environment", "secret_environment"])
def test_env_values(field: str) -> None:
    assert getattr(validate(**{field: {"K": ""}}), field) == {"K": ""}
    assert getattr(validate(**{field: {"K": "a b=c\n"}}), field) == {"K": "a b=c\n"}
    refused(f"{field} value of K contains a NUL byte", **{field: {"K": "a\0b"}})


def test_env_key_in_both_refused() -> None:
    refused(
        "B, C given in both environment and secret_environment",
        environment={"A": "1", "B": "2", "C": "3"},
        secret_environment={"C": "x", "B": "y"},
    )


# --- names ------------------------------------------------------------------

GOOD_NAMES = ["a", "A", "0", "job-1", "my_job.v2", "x" * 64, "a.b"]
BAD_NAMES = [
    "-a",
    ".a",
    "_a",
    "a/b",
    "..",
    "a..b",
    "x" * 65,
    "a b",
    "a\0",
    "ä",
    "a:b",
    "a\n",
    "/",
]


@pytest.mark.parametrize("field", ["name", "network"])
@pytest.mark.parametrize("value", GOOD_NAMES)
def test_names_accepted(field: str, value: str) -> None:
    assert getattr(validate(**{field: value}), field) == value


@pytest.mark.parametrize("field", ["name", "network"])
@pytest.mark.parametrize("value", BAD_NAMES)
def test_names_refused(field: str, value: str) -> None:
    refused(f"{field} {value!r} is not allowed: use 1-64 letters", **{field: value})


@pytest.mark.parametrize(
    "value", [*GOOD_NAMES, "python:3.11", "python:3.11-ml@amd64", "openjdk-17", "x" * 128]
)
def test_runtime_references_accepted(value: str) -> None:
    assert validate(runtime=value).runtime == value


@pytest.mark.parametrize(
    "value", [n for n in BAD_NAMES if n not in ("a:b", "x" * 65)] + ["x" * 129]
)
def test_runtime_references_refused(value: str) -> None:
    refused(f"runtime {value!r} is not allowed: use NAME or LANG:VERSION", runtime=value)


@pytest.mark.parametrize("field", ["name", "network", "runtime"])
def test_names_optional(field: str) -> None:
    assert getattr(validate(), field) == ""


@pytest.mark.parametrize("value", BAD_NAMES)
def test_volume_names_refused(value: str) -> None:
    refused(f"volume {value!r} is not allowed", volumes=["ok", value])


def test_volumes() -> None:
    assert validate(volumes=GOOD_NAMES).volumes == tuple(GOOD_NAMES)
    refused("volume names must not be empty", volumes=[""])
    refused("volume 'a' is given more than once", volumes=["a", "b", "a"])


# --- workDir ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ""),
        ("/work", "/work"),
        ("/work/", "/work"),
        ("/work/src", "/work/src"),
        ("/work/a/../b", "/work/b"),
        ("//work/x", "/work/x"),
        ("/work/./x//y", "/work/x/y"),
        ("src", "/work/src"),
        ("./src/", "/work/src"),
        (".", "/work"),
        ("a/..", "/work"),
    ],
)
def test_workdir_accepted(value: str, expected: str) -> None:
    assert validate(workDir=value).workdir == expected


@pytest.mark.parametrize(
    "value", ["/", "/etc", "/workspace", "/work/..", "/work/../etc", "..", "../x", "a/../../x"]
)
def test_workdir_refused(value: str) -> None:
    refused(f"workDir {value!r} is outside the job's workspace", workDir=value)


def test_workdir_nul() -> None:
    refused("workDir contains a NUL byte", workDir="/work/\0")


@pytest.mark.parametrize("value", ["/work/a\nb", "sub\x1b[2J", "/work/\x7f", "/work/\u009b"])
def test_workdir_control_characters(value: str) -> None:
    refused(f"workDir {value!r} contains a control character", workDir=value)


# --- uploads ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a", "a"),
        ("a/b/c.txt", "a/b/c.txt"),
        ("./a", "a"),
        ("a//b/", "a/b"),
        (".hidden", ".hidden"),
        ("..a", "..a"),
        ("x" * 255, "x" * 255),
    ],
)
def test_upload_paths_accepted(path: str, expected: str) -> None:
    assert validate(uploads=[up(path, b"1")]).uploads == (Upload(expected, b"1", 0, False),)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "upload path is empty"),
        ("  ", "upload path is empty"),
        ("/etc/passwd", "must be relative to the workspace"),
        ("/", "must be relative to the workspace"),
        ("..", "leaves the workspace"),
        ("../x", "leaves the workspace"),
        ("a/../../x", "leaves the workspace"),
        (".", "leaves the workspace"),
        ("a/..", "leaves the workspace"),
        ("a/../b", "'..' is not allowed"),
        ("a\0b", "contains a NUL byte"),
        ("a\x1bb", "contains a control character"),
        ("a\nb", "contains a control character"),
        ("x" * 256, "longer than 255 bytes"),
    ],
)
def test_upload_paths_refused(path: str, message: str) -> None:
    refused("uploads[1]: ", uploads=[up("ok"), up(path)])
    refused(message, uploads=[up("ok"), up(path)])


@pytest.mark.parametrize("mode", [0, 0o644, 0o7777, 0o4755])
def test_upload_mode_accepted_as_given(mode: int) -> None:
    assert validate(uploads=[up("f", mode=mode)]).uploads[0].mode == mode


def test_upload_mode_out_of_range() -> None:
    refused(
        "uploads[0] 'f': mode 0o10000 is out of range 0..0o7777", uploads=[up("f", mode=0o10000)]
    )


def test_upload_size_cap_counts_the_total() -> None:
    exactly = [up("a", b"x" * 1000), up("b", b"y" * 24)]
    assert len(validate(uploads=exactly).uploads) == 2
    over = [up("a", b"x" * 1000), up("b", b"y" * 25)]
    refused(
        "uploads total 1025 bytes, over this server's limit joblet.maxUploadSize (1024 bytes)",
        uploads=over,
    )


def test_upload_duplicates_after_normalisation() -> None:
    refused("upload path 'a/b' is given more than once", uploads=[up("a/b"), up("a//b/")])
    refused("upload path 'd' is given more than once", uploads=[up("d", is_dir=True), up("d")])


def test_upload_file_used_as_directory() -> None:
    refused("upload 'f/x' is inside 'f', which is uploaded as a file", uploads=[up("f"), up("f/x")])
    refused("inside 'a/f'", uploads=[up("a/f/g/h"), up("a/f")])
    assert len(validate(uploads=[up("d", is_dir=True), up("d/x")]).uploads) == 2


def test_directory_with_content_refused() -> None:
    refused(
        "uploads[0] 'd' is a directory but carries content", uploads=[up("d", b"x", is_dir=True)]
    )


# --- schedule, workflow ------------------------------------------------------


def test_schedule_checked_and_kept_as_text() -> None:
    assert validate(schedule="2026-01-02T16:00:00Z").schedule == "2026-01-02T16:00:00Z"
    assert validate(schedule="").schedule == ""
    refused("schedule 'soon' is not understood", schedule="soon")
    refused("in the past", schedule="2020-01-01T00:00:00Z")


def test_schedule_uses_the_clock_by_default() -> None:
    with pytest.raises(InvalidArgument, match="in the past"):
        validate_run_request(pb.RunJobRequest(command="x", schedule="2000-01-01T00:00:00Z"), 1, 0)
    assert validate_run_request(pb.RunJobRequest(command="x", schedule="1m"), 1, 0).schedule == "1m"


def test_workflow_fields() -> None:
    refused("workflowUuid 'nope' is not a UUID", workflowUuid="nope")
    refused(
        "requirements[1].jobUuid 'x' is not a job UUID",
        requirements=[pb.JobRequirement(jobUuid=JOB), pb.JobRequirement(jobUuid="x")],
    )


def test_accepts_duck_typed_requests() -> None:
    class Fake:
        name = ""
        command = "echo"
        args: tuple[str, ...] = ("hi",)
        maxCpu = maxMemory = maxIobps = 0
        cpuCores = schedule = network = runtime = workDir = workflowUuid = ""
        uploads: tuple[pb.FileUpload, ...] = ()
        volumes: tuple[str, ...] = ()
        environment: Mapping[str, str] = {}
        secret_environment: Mapping[str, str] = {}
        requirements: tuple[pb.JobRequirement, ...] = ()
        gpu_count = gpu_memory_mb = 0

    assert validate_run_request(Fake(), CPUS, CAP, now=NOW) == JobSpec(command="echo", args=("hi",))
