"""Nothing leaks: mixed jobs (joblet.testing.soak) through one daemon with
job retention on; between jobs, every tenth of the way, the counts of what
the daemon holds (joblet.testing.leaks) stay flat, and once no job runs and
the finished ones are deleted they are back to their idle values. A short
run in the default suite, 10,000 jobs with `make test-all`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml

from integration.conftest import RunningDaemon, launch_daemon
from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.testing import leaks, soak

pytestmark = pytest.mark.integration

CALLERS = 8
SETTLE_S = 60.0
# What each kind of the mix must end as (a command that does not exist may
# also be refused by RunJob).
EXPECTED = {
    "none": "COMPLETED", "bridge": "COMPLETED", "isolated": "COMPLETED",
    "custom": "COMPLETED", "memory volume": "COMPLETED", "disk volume": "COMPLETED",
    "upload": "COMPLETED", "limits": "COMPLETED", "oom": "FAILED", "stopped": "STOPPED",
    "timeout": "FAILED", "no such command": "FAILED",
}  # fmt: skip


def start(tmp: Path) -> RunningDaemon:
    retention = {"maxAge": "0s", "maxJobs": 20, "interval": "1s"}
    return launch_daemon(
        tmp, {"joblet": {"jobTimeout": soak.JOB_TIMEOUT, "jobRetention": retention}}
    )


def channel(daemon: RunningDaemon) -> grpc.aio.Channel:
    entry = daemon.node()
    creds = grpc.ssl_channel_credentials(
        root_certificates=entry["ca"].encode(),
        private_key=entry["key"].encode(),
        certificate_chain=entry["cert"].encode(),
    )
    return grpc.aio.secure_channel(f"127.0.0.1:{daemon.port}", creds)


async def settle(
    stub: pb_grpc.JobServiceStub, idle: dict[str, int], watched: leaks.Watched
) -> list[str]:
    await stub.DeleteAllJobs(pb.DeleteAllJobsReq(), timeout=120)
    deadline = asyncio.get_running_loop().time() + SETTLE_S
    while True:
        left = leaks.back_to_idle(idle, leaks.counts(watched))
        if not left or asyncio.get_running_loop().time() > deadline:
            return left
        await asyncio.sleep(0.5)


async def run_soak(daemon: RunningDaemon, total: int) -> None:
    parent = str(yaml.safe_load(daemon.config_path.read_text())["cgroup"]["parent"])
    watched = leaks.Watched(daemon.proc.pid, daemon.root, parent, daemon.world.run)
    async with channel(daemon) as ch:
        stub = pb_grpc.JobServiceStub(ch)  # type: ignore[no-untyped-call]
        await soak.prepare(ch)
        await stub.ListJobs(pb.EmptyRequest(), timeout=60)
        idle = leaks.counts(watched)
        series: list[dict[str, int]] = []
        tally = await soak.soak(
            [stub], total, callers=CALLERS, every=max(1, total // 10),
            record=lambda _: series.append(leaks.quiet_counts(watched)), deadline_s=3600,
        )  # fmt: skip
        left = await settle(stub, idle, watched)
    assert tally.done == total
    wrong = {
        outcome: count
        for outcome, count in tally.outcomes.items()
        if outcome.split(": ")[1] != EXPECTED[outcome.split(": ")[0]]
    }
    assert not wrong, wrong
    assert set(tally.refused) <= {"no such command: INVALID_ARGUMENT"}, tally.refused
    for counts in series:  # read between jobs: nothing of a job is left
        assert not any(counts[name] for name in leaks.PER_JOB), counts
    assert not leaks.flat(series, 2), leaks.flat(series, 2)
    assert not left, left


@pytest.fixture
def soak_daemon(tmp_path: Path) -> Iterator[RunningDaemon]:
    daemon = start(tmp_path)
    yield daemon
    daemon.stop()


def test_soak_short_leaves_nothing(soak_daemon: RunningDaemon) -> None:
    asyncio.run(run_soak(soak_daemon, 200))


@pytest.mark.slow
@pytest.mark.timeout(1800)  # bounded: 10,000 jobs take 4-5 minutes on 2 cores
def test_soak_10000_jobs_leaves_nothing(soak_daemon: RunningDaemon) -> None:
    asyncio.run(run_soak(soak_daemon, 10_000))
