"""A job that writes as fast as it can: its log stops at joblet.maxLogSize
with one truncation line, the daemon keeps answering, and another job's log
written at the same time is whole."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from integration.conftest import ROOT_NEEDED, RunningDaemon, launch_daemon, wait_status

from joblet.api import joblet_pb2 as pb
from joblet.config.units import parse_size_bytes

from .exhaustion import FINAL, STATUS_P99_S, StatusLatency, log_text, stop_quietly, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

MAX_LOG = "1MB"
TRUNCATED = b"output truncated"
NEIGHBOUR_LINES = 300
# 20 MB as fast as `yes` goes, then quiet: a daemon without the limit fails
# the test with a 20 MB log instead of filling the shared disk.
FLOOD = f"yes 'flood {'x' * 120}' | head -c 20000000; sleep 300"
NEIGHBOUR = f"for i in $(seq 1 {NEIGHBOUR_LINES}); do echo neighbour-$i; sleep 0.01; done"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    running = launch_daemon(tmp_path_factory.mktemp("flood"), {"joblet": {"maxLogSize": MAX_LOG}})
    yield running
    running.stop()


def test_a_log_flood_is_bounded_and_the_daemon_answers(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    flood = stub.RunJob(pb.RunJobRequest(command="sh", args=["-c", FLOOD])).jobUuid
    log_file = daemon.root / "jobs" / flood / "output.log"
    limit = parse_size_bytes(MAX_LOG)
    try:
        with StatusLatency(stub, flood) as latency:
            neighbour = stub.RunJob(pb.RunJobRequest(command="sh", args=["-c", NEIGHBOUR]))
            wait_until(lambda: TRUNCATED in log_text(stub, flood), "the truncation line")
            # The job goes on printing into the limit for a while.
            assert wait_status(stub, neighbour.jobUuid, FINAL, timeout=120).status == "COMPLETED"
            assert wait_status(stub, flood, {"RUNNING"}, timeout=1)
            size = log_file.stat().st_size
        p99 = latency.p99()
        print(f"GetJobStatus during a log flood: {len(latency.seconds)} calls,"
              f" p99 {p99 * 1e3:.1f} ms; log file {size} bytes")  # fmt: skip
        assert p99 < STATUS_P99_S
        # The limit counts the job's bytes; each record's frame and the
        # truncation line come on top.
        assert limit <= size <= limit * 1.1 + 4096
        expected = "".join(f"neighbour-{i}\n" for i in range(1, NEIGHBOUR_LINES + 1))
        assert log_text(stub, neighbour.jobUuid).decode() == expected
    finally:
        stop_quietly(stub, flood)
    assert wait_status(stub, flood, FINAL, timeout=60).status == "STOPPED"
    text = log_text(stub, flood)
    assert text.count(TRUNCATED) == 1
    before = text.partition(TRUNCATED)[0]
    assert limit - 4096 <= len(before) <= limit + 4096
