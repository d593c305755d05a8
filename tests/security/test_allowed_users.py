"""`joblet.runAsUser` is not only a default: the users a job may ask for are pinned."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from integration.conftest import RunningDaemon, wait_status

from joblet.api import joblet_pb2 as pb
from joblet.config.loader import parse_daemon_config
from joblet.config.model import JobsConfig
from joblet.errors import PermissionDenied
from joblet.jobs.users import allowed_run_as, check_run_as
from joblet.setup.command import run_setup


def test_run_as_user_alone_allows_only_that_user() -> None:
    jobs = JobsConfig(run_as_uid=65534)
    assert allowed_run_as(jobs) == {(65534, 65534)}
    check_run_as(jobs, (65534, 65534))
    with pytest.raises(PermissionDenied, match=r"running as 0:0 is not allowed.*65534:65534"):
        check_run_as(jobs, (0, 0))
    with pytest.raises(PermissionDenied):
        check_run_as(jobs, (65534, 0))  # not root's group either


def test_no_default_user_and_no_list_allows_any() -> None:
    assert allowed_run_as(JobsConfig()) is None
    check_run_as(JobsConfig(), (0, 0))


def _config_with(tmp_path: Path, **joblet: Any) -> dict[str, Any]:
    run_setup(tmp_path / "root", "127.0.0.1", 50051, [], False)
    raw: dict[str, Any] = yaml.safe_load(
        (tmp_path / "root" / "config" / "joblet-config.yml").read_text()
    )
    raw["joblet"].update(joblet)
    return raw


def test_the_list_takes_names_and_ids(tmp_path: Path) -> None:
    raw = _config_with(tmp_path, runAsUser=65534, allowedUsers=["nobody", 1000, "1001:1002"])
    allowed = allowed_run_as(parse_daemon_config(raw).jobs)
    assert allowed == {(65534, 65534), (1000, 1000), (1001, 1002)}


@pytest.mark.parametrize(
    ("value", "needle"),
    [("nobody", "must be a list"), (["no-such-user-xyz"], "not known"), ([""], "empty")],
)
def test_a_bad_list_is_refused_at_load(tmp_path: Path, value: Any, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        parse_daemon_config(_config_with(tmp_path, allowedUsers=value))


def _run(daemon: RunningDaemon, user: str) -> str:
    stub = daemon.jobs()
    job_id = stub.RunJob(pb.RunJobRequest(command="id", args=["-u"], user=user)).jobUuid
    wait_status(stub, job_id, {"COMPLETED"}, timeout=60)
    return str(daemon.rnx("log", "--no-follow", job_id).stdout.decode().strip())


@pytest.mark.integration
def test_root_is_refused_where_jobs_run_as_nobody(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    daemon = make_daemon(runAsUser=65534, runAsGroup=65534)
    with pytest.raises(grpc.RpcError) as refused:
        daemon.jobs().RunJob(pb.RunJobRequest(command="id", user="root"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "running as 0:0 is not allowed" in str(refused.value.details())
    cli = daemon.rnx("run", "--user", "0", "id")
    assert cli.returncode != 0
    assert b"not allowed" in cli.stderr and b"Traceback" not in cli.stderr, cli.stderr
    assert _run(daemon, "") == "65534"
    assert _run(daemon, "nobody") == "65534"
    assert not [
        j for j in daemon.jobs().ListJobs(pb.EmptyRequest()).jobs if j.status != "COMPLETED"
    ]


@pytest.mark.integration
def test_an_operator_list_admits_its_users(make_daemon: Callable[..., RunningDaemon]) -> None:
    daemon = make_daemon(runAsUser=65534, allowedUsers=["nobody", 1000])
    assert _run(daemon, "1000") == "1000"
    with pytest.raises(grpc.RpcError) as refused:
        daemon.jobs().RunJob(pb.RunJobRequest(command="id", user="1001"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
