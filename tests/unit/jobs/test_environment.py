from __future__ import annotations

import pytest

from joblet.jobs.environment import BASE_ENVIRONMENT, job_environment, mask_secrets, redact
from joblet.jobs.model import JobSpec

JOB_ID = "0a1b2c3d-0000-4000-8000-000000000001"


def test_base_environment_only() -> None:
    env = job_environment(JobSpec(command="true"), JOB_ID, "")
    assert env == {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/work",
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        "JOB_ID": JOB_ID,
    }


def test_job_name_when_given() -> None:
    env = job_environment(JobSpec(command="true"), JOB_ID, "build-1")
    assert env["JOB_NAME"] == "build-1"


def test_daemon_environment_never_leaks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAEMON_ONLY_SECRET", "leak")
    env = job_environment(JobSpec(command="true"), JOB_ID, "")
    assert "DAEMON_ONLY_SECRET" not in env
    assert set(env) <= set(BASE_ENVIRONMENT) | {"JOB_ID"}


def test_user_values_override_base_then_secrets_override_user() -> None:
    spec = JobSpec(
        command="true",
        environment={"PATH": "/opt/bin", "A": "1", "JOB_NAME": "mine"},
        secret_environment={"TOKEN": "s3cret", "HOME": "/secret-home"},
    )
    env = job_environment(spec, JOB_ID, "named")
    assert env["PATH"] == "/opt/bin"
    assert env["A"] == "1"
    assert env["JOB_NAME"] == "mine"
    assert env["TOKEN"] == "s3cret"
    assert env["HOME"] == "/secret-home"


def test_job_id_cannot_be_overridden() -> None:
    spec = JobSpec(
        command="true", environment={"JOB_ID": "fake"}, secret_environment={"JOB_ID": "x"}
    )
    assert job_environment(spec, JOB_ID, "")["JOB_ID"] == JOB_ID


def test_spec_is_not_mutated() -> None:
    spec = JobSpec(command="true", environment={"A": "1"})
    job_environment(spec, JOB_ID, "n")
    assert spec.environment == {"A": "1"}


def test_mask_secrets() -> None:
    assert mask_secrets({"TOKEN": "abc", "EMPTY": ""}) == {"TOKEN": "***", "EMPTY": "***"}
    assert mask_secrets({}) == {}


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        ("token=abc123 ok", ["abc123"], "token=*** ok"),
        ("abc abc", ["abc"], "*** ***"),
        ("nothing here", ["abc"], "nothing here"),
        ("x", [], "x"),
        ("keep", [""], "keep"),
        ("pass=hunter22", ["hunter2", "hunter22"], "pass=***"),
        ("a=one b=two", ["one", "two"], "a=*** b=***"),
    ],
)
def test_redact(text: str, secrets: list[str], expected: str) -> None:
    assert redact(text, secrets) == expected


RUNTIME_ENV = (
    ("PATH", "/opt/runtime/bin:${PATH}"),
    ("PYTHONHOME", "/opt/runtime/python"),
    ("BOTH", "runtime"),
    ("PEEK", "<${SECRET}><${BOTH}><${JOB_ID}><${UNSET}>"),
)


def test_runtime_environment_lies_between_base_and_user() -> None:
    spec = JobSpec(
        command="true",
        environment={"BOTH": "user", "PATH": "/mine"},
        secret_environment={"SECRET": "s3"},
    )
    env = job_environment(spec, JOB_ID, "", RUNTIME_ENV)
    assert env["PATH"] == "/mine"  # the user's wins
    assert env["BOTH"] == "user"
    assert env["PYTHONHOME"] == "/opt/runtime/python"
    # ${VAR} comes from the base only: never the user's (or secret) values,
    # nor JOB_ID, which is set last.
    assert env["PEEK"] == "<><><><>"


def test_runtime_path_extends_the_base_one() -> None:
    env = job_environment(JobSpec(command="true"), JOB_ID, "n", RUNTIME_ENV)
    assert env["PATH"] == "/opt/runtime/bin:" + BASE_ENVIRONMENT["PATH"]
    assert env["JOB_NAME"] == "n" and env["JOB_ID"] == JOB_ID


def test_a_runtime_cannot_fake_the_job_id() -> None:
    env = job_environment(JobSpec(command="true"), JOB_ID, "", (("JOB_ID", "other"),))
    assert env["JOB_ID"] == JOB_ID
