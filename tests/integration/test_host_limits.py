"""A host short of process ids: RunJob answers RESOURCE_EXHAUSTED naming the
limit, and nothing of the job is made (no record, no cgroup). The host's
pid_max is shared and never lowered by a test: the daemon is told to keep
more ids free than any host has (`joblet.minFreePids`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from integration.conftest import RunningDaemon
from joblet.api import joblet_pb2 as pb

pytestmark = pytest.mark.integration

BEYOND_ANY_HOST = 5_000_000  # pid_max is at most 4,194,304 (PID_MAX_LIMIT)


def job_groups(parent: str) -> list[Path]:
    return [
        entry
        for hierarchy in Path("/sys/fs/cgroup").iterdir()
        if (hierarchy / parent).is_dir()
        for entry in (hierarchy / parent).iterdir()
        if entry.is_dir()
    ]


def test_runjob_without_free_pids_is_resource_exhausted(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    daemon = make_daemon(minFreePids=BEYOND_ANY_HOST)
    stub = daemon.jobs()
    with pytest.raises(grpc.RpcError) as refused:
        stub.RunJob(pb.RunJobRequest(command="true"), timeout=30)
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    details = refused.value.details() or ""
    assert "process ids free" in details and "joblet.minFreePids" in details, details
    assert not stub.ListJobs(pb.EmptyRequest()).jobs
    assert job_groups(daemon.cgroup_parent()) == []

    cli = daemon.rnx("run", "true")
    assert cli.returncode != 0
    err = cli.stderr.decode().strip()
    assert len(err.splitlines()) == 1 and "process ids free" in err, err
    assert "Traceback" not in err
