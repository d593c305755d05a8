"""Per-job metrics through a real daemon on the real kernel: CPU
throttling, memory, IO, the job's own loopback traffic, the final sample of a
short job, summaries, a viewer's access, and history across a daemon restart.
The daemon samples every second (`metrics.interval: 1`)."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Iterator

import pytest

from joblet.api import joblet_pb2 as pb

from .conftest import ROOT_NEEDED, RunningDaemon, wait_status
from .test_isolation_support import favour_daemon_cpu
from .test_metrics_support import (
    FINAL,
    eventually,
    final_history,
    history,
    persisted_count,
    run_job,
    start_metrics_daemon,
    stop_metrics_daemon,
    stream_samples,
)

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

MiB = 1 << 20
BURN_3S = "import time\nt = time.monotonic()\nwhile time.monotonic() - t < 3: pass"
# Jobs that hold what a test looks for until the test saw it in a sample:
# however slow the host, the sampler gets to see it.
UNTIL_RELEASED = "import os, time\nwhile not os.path.exists('/work/release'): time.sleep(0.05)\n"
ALLOC_200M = "b = b'x' * (200 << 20)\n" + UNTIL_RELEASED
WRITE_50M = (
    "import os, mmap\n"
    "fd = os.open('/work/io.bin', os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)\n"
    "buf = mmap.mmap(-1, 1 << 20); buf.write(b'x' * (1 << 20))\n"
    "for _ in range(50): os.write(fd, buf)\n"
    "os.fsync(fd); os.close(fd); os.unlink('/work/io.bin')\n" + UNTIL_RELEASED
)
LOOPBACK_10M = (
    "import socket, threading, time\n"
    "srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)\n"
    "def sink():\n"
    "    c, _ = srv.accept()\n"
    "    while c.recv(1 << 16): pass\n"
    "t = threading.Thread(target=sink); t.start()\n"
    "cli = socket.create_connection(srv.getsockname())\n"
    "cli.sendall(b'x' * (10 << 20)); cli.close(); t.join()\n" + UNTIL_RELEASED
)
# 0.2 s of CPU time, not of wall time: on a busy host a wall-clock loop gets less.
SHORT_0_2S = "import time\nwhile time.process_time() < 0.2: pass"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    running = start_metrics_daemon(tmp_path_factory.mktemp("metrics"), {"interval": 1})
    yield running
    stop_metrics_daemon(running)


def python_job(daemon: RunningDaemon, code: str, **fields: object) -> str:
    return run_job(daemon.jobs(), "python3", "-c", code, **fields)


def samples_until(
    daemon: RunningDaemon, job_id: str, shows: Callable[[pb.JobMetricsSample], bool]
) -> list[pb.JobMetricsSample]:
    """The job's samples to its end; it is released (and so ends) after the
    first sample for which `shows` holds."""
    samples = []
    request = pb.JobMetricsRequest(uuid=job_id)
    for sample in daemon.jobs().StreamJobMetrics(request, timeout=120):
        samples.append(sample)
        if shows(sample):
            (daemon.workspace(job_id) / "release").touch()
    return samples


def test_cpu_limit_50_shows_half_a_core_and_throttling(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    wait_status(stub, python_job(daemon, "pass"), FINAL)  # the daemon's cgroup parent exists
    favour_daemon_cpu(daemon)  # the host's other work cannot hold the job under its limit
    job_id = python_job(daemon, BURN_3S, maxCpu=50)
    wait_status(stub, job_id, {"RUNNING", *FINAL})
    samples = stream_samples(stub, job_id)
    assert wait_status(stub, job_id, FINAL).status == "COMPLETED"
    busy = [s.cpu.usagePercent for s in samples if s.cpu.usagePercent > 0]
    assert len(busy) >= 2, [s.cpu.usagePercent for s in samples]
    assert 35 <= statistics.median(busy) <= 60, busy
    # The final sample's window is short (the job ended just after the previous
    # tick), and over a fraction of a 100 ms CFS period a job may run unthrottled.
    assert max(busy[:-1]) <= 70, busy
    assert samples[-1].cpu.nrThrottled > 0
    assert any(s.cpu.throttlePercent > 0 for s in samples)
    assert samples[-1].limits.cpu == 50


def test_memory_current_near_200_mb(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    job_id = python_job(daemon, ALLOC_200M)
    samples = samples_until(daemon, job_id, lambda s: s.memory.current >= 200 * MiB)
    assert wait_status(stub, job_id, FINAL).status == "COMPLETED"
    peak = max(s.memory.current for s in samples)
    assert 200 * MiB <= peak <= 260 * MiB, peak / MiB


def test_io_write_bytes_show_50_mb(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    job_id = python_job(daemon, WRITE_50M)
    samples = samples_until(daemon, job_id, lambda s: s.io.totalWriteBytes >= 50 * MiB)
    assert wait_status(stub, job_id, FINAL).status == "COMPLETED"
    written = max(s.io.totalWriteBytes for s in samples)
    assert 50 * MiB <= written <= 60 * MiB, written / MiB
    assert any(s.io.writeBPS > 0 for s in samples)
    assert max(s.io.totalWriteOps for s in samples) >= 50


def test_loopback_traffic_shows_in_network_bytes(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    job_id = python_job(daemon, LOOPBACK_10M)
    samples = samples_until(daemon, job_id, lambda s: s.network.totalTxBytes >= 10 * MiB)
    assert wait_status(stub, job_id, FINAL).status == "COMPLETED"
    last = samples[-1].network
    assert 10 * MiB <= last.totalTxBytes <= 12 * MiB, last.totalTxBytes
    assert 10 * MiB <= last.interfaces["lo"].rxBytes <= 12 * MiB
    assert any(s.network.txBPS > 0 for s in samples)


def test_short_job_has_a_final_sample_with_cpu_time(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    job_id = python_job(daemon, SHORT_0_2S)
    assert wait_status(stub, job_id, FINAL).status == "COMPLETED"
    samples = final_history(stub, job_id)
    assert samples, "no sample stored for a 0.2 s job"
    assert samples[-1].cpu.usageUsec >= 150_000  # 0.2 s of busy loop, plus start-up
    assert samples[-1].memory.pgFault > 0  # python3 faulted its pages in


def test_summary_over_the_series_matches_the_samples(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    job_id = python_job(daemon, BURN_3S, maxCpu=50)
    wait_status(stub, job_id, FINAL, timeout=30)
    samples = final_history(stub, job_id)
    res = stub.GetJobMetricsSummary(pb.JobMetricsSummaryRequest(uuid=job_id))
    cpu = [s.cpu.usagePercent for s in samples]
    mem = [float(s.memory.current) for s in samples]
    assert res.cpu.max == pytest.approx(max(cpu))
    assert res.cpu.min == pytest.approx(min(cpu))
    assert res.cpu.avg == pytest.approx(statistics.fmean(cpu))
    assert res.cpu.min <= res.cpu.p50 <= res.cpu.p95 <= res.cpu.p99 <= res.cpu.max
    assert res.memory.max == pytest.approx(max(mem))


def test_viewer_reads_metrics_but_cannot_run(daemon: RunningDaemon) -> None:
    import grpc

    job_id = python_job(daemon, SHORT_0_2S)
    viewer = daemon.jobs("viewer")
    wait_status(viewer, job_id, FINAL)
    assert final_history(viewer, job_id)
    viewer.GetJobMetricsSummary(pb.JobMetricsSummaryRequest(uuid=job_id))
    assert stream_samples(viewer, job_id)
    with pytest.raises(grpc.RpcError) as caught:
        viewer.RunJob(pb.RunJobRequest(command="true"))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_history_survives_a_daemon_restart(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    daemon = start_metrics_daemon(tmp_path_factory.mktemp("metrics-restart"), {"interval": 1})
    try:
        stub = daemon.jobs()
        job_id = python_job(daemon, "import time; time.sleep(2.2)")
        wait_status(stub, job_id, FINAL)
        before = final_history(stub, job_id)  # from the daemon's memory
        assert len(before) >= 2
        # SIGKILL loses what the daemon has not handed to persist yet.
        stored = eventually(lambda: persisted_count(daemon, job_id), lambda n: n >= len(before))
        assert stored >= len(before)
        daemon.kill9()
        daemon.restart()
        after = history(daemon.jobs(), job_id)
        assert [s.timestamp for s in after] == [s.timestamp for s in before]
        assert after[-1] == before[-1]
        streamed = stream_samples(daemon.jobs(), job_id)  # finished: its history, then the end
        assert [s.timestamp for s in streamed] == [s.timestamp for s in before]
    finally:
        stop_metrics_daemon(daemon)
