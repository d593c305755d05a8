"""JobSampler against real job cgroups on this host's kernel (v1 or v2)."""

from __future__ import annotations

import asyncio
import resource
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.metrics.reader import SLOW_EVERY, cgroup_files
from joblet.metrics.sampler import JobSampler
from joblet.resources.devices import block_devices_for
from joblet.resources.interface import CgroupManager, JobCgroup, Limits
from joblet.testing.cgroups import favour_cpu

pytestmark = pytest.mark.privileged
MB = 1_000_000

# CPU time, not wall time: on a busy host a wall-clock loop gets less of it.
BURN_CPU = "import time\nwhile time.process_time() < {s}: pass\n"
ALLOC = (
    "import time\nb = bytearray({n})\nb[::4096] = b'x' * len(b[::4096])\n"
    "print('ok', flush=True)\ntime.sleep(30)\n"
)
WRITE = """
import mmap, os, sys
path, total = sys.argv[1], int(sys.argv[2])
buf = mmap.mmap(-1, 1 << 20)  # page aligned, as O_DIRECT wants
buf.write(b"x" * (1 << 20))
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o600)
for _ in range(total >> 20):
    os.write(fd, buf)
os.fsync(fd)
os.close(fd)
"""


def spawn_in(group: JobCgroup, *argv: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start `argv` already inside the job's cgroup (a shell joins, then execs)."""
    files = " ".join(shlex.quote(str(p)) for p in group.procs_files())
    script = f'for f in {files}; do echo $$ > "$f"; done; exec "$@"'
    return subprocess.Popen(["sh", "-c", script, "sh", *argv], **kwargs)


@contextmanager
def job(cgroups: CgroupManager, limits: Limits) -> Iterator[JobCgroup]:
    group = cgroups.create(str(uuid.uuid4()), limits)
    try:
        yield group
    finally:
        group.kill_all()
        group.remove()


def sampler_for(group: JobCgroup, limits: Limits, pid: int | None = None) -> JobSampler:
    return JobSampler(
        group.job_id, group, limits, interval_s=1, publish=lambda s: None, init_pid=pid
    )


def test_cpu_at_half_a_core_shows_50_percent_and_throttling(cgroups: CgroupManager) -> None:
    limits = Limits(max_cpu_percent=50)
    with job(cgroups, limits) as group:
        for procs in group.procs_files():  # the host's other work cannot hold it under 50%
            favour_cpu(procs.parent)
        proc = spawn_in(group, sys.executable, "-c", "while True: pass")
        try:
            sampler = sampler_for(group, limits, proc.pid)
            time.sleep(0.3)  # past the first period, which may start with a full quota
            sampler.baseline()
            time.sleep(2.0)  # the window sampled: it burns all along, however long
            sample = sampler.sample()
        finally:
            proc.kill()
            proc.wait()
    assert 40 <= sample.cpu.usagePercent <= 60, sample.cpu
    assert sample.cpu.nrThrottled > 0 and sample.cpu.throttledUsec > 0
    assert sample.cpu.throttlePercent > 50
    assert sample.cpu.userUsec + sample.cpu.systemUsec > 0
    assert sample.limits.cpu == 50
    assert group.job_id in sample.cgroupPath
    assert sample.process.current >= 1 and sample.process.threads >= 1
    assert sample.process.running + sample.process.sleeping >= 1
    assert sample.process.openFDs >= 3 and sample.process.maxFDs > 0


def test_memory_current_near_200_mb(cgroups: CgroupManager) -> None:
    limits = Limits(max_memory_bytes=512 * 1024 * 1024)
    with job(cgroups, limits) as group:
        proc = spawn_in(
            group, sys.executable, "-c", ALLOC.format(n=200 * MB), stdout=subprocess.PIPE
        )
        assert proc.stdout is not None and proc.stdout.readline() == b"ok\n"
        sample = sampler_for(group, limits, proc.pid).sample()
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert 195 * MB <= sample.memory.current <= 260 * MB, sample.memory
    assert sample.memory.anon >= 195 * MB
    assert sample.memory.max == 512 * 1024 * 1024
    assert 35 < sample.memory.usagePercent < 50
    assert sample.memory.pgFault > 40_000  # 200 MB / 4 KiB pages touched


def test_direct_writes_of_50_mb_show_in_io_bytes(cgroups: CgroupManager, tmp_path: Path) -> None:
    # As the daemon makes a job's group: with the disk under it named (no
    # limit), which a recent kernel needs to count a v1 group's IO at all.
    limits = Limits(io_devices=block_devices_for(Path("/var/tmp")))
    target = Path("/var/tmp") / f"joblet-metrics-{uuid.uuid4().hex}"
    try:
        with job(cgroups, limits) as group:
            sampler = sampler_for(group, limits)
            proc = spawn_in(group, sys.executable, "-c", WRITE, str(target), str(50 << 20))
            assert proc.wait(30) == 0
            sample = sampler.sample()
    finally:
        target.unlink(missing_ok=True)
    assert 50 << 20 <= sample.io.totalWriteBytes <= 60 << 20, sample.io
    assert sample.io.totalWriteOps >= 50
    assert sum(d.writeBytes for d in sample.io.devices.values()) == sample.io.totalWriteBytes


def test_short_job_has_cpu_time_in_final_sample(cgroups: CgroupManager) -> None:
    limits = Limits()
    with job(cgroups, limits) as group:
        proc = spawn_in(group, sys.executable, "-c", BURN_CPU.format(s=0.2))
        proc.wait(30)
        published: list[pb.JobMetricsSample] = []
        sampler = JobSampler(group.job_id, group, limits, interval_s=1, publish=published.append)
        final = asyncio.run(sampler.final_sample())
    assert published == [final]
    assert final.cpu.usageUsec >= 200_000  # the loop's 0.2 s of CPU time
    assert final.timestamp > 0 and final.jobId == group.job_id


def test_fresh_group_rates_count_from_its_creation(cgroups: CgroupManager) -> None:
    """A job sampled from its start needs no baseline reading: its group's
    counters were zero when it was made, so the first sample already has rates."""
    limits = Limits()
    with job(cgroups, limits) as group:
        sampler = JobSampler(
            group.job_id, group, limits, interval_s=1, publish=lambda s: None, fresh=True
        )
        proc = spawn_in(group, sys.executable, "-c", BURN_CPU.format(s=0.3))
        proc.wait(30)
        sample = sampler.sample()
    assert sample.cpu.usageUsec >= 300_000
    assert sample.cpu.usagePercent > 5  # 0.3 s of CPU over well under 6 s


def test_limits_are_read_again_only_when_due(cgroups: CgroupManager) -> None:
    """The limit files and the open-files limit are kept between samples
    (a fresh reading every SLOW_EVERY samples and at the final one); what
    changes is read at every sample."""
    limits = Limits(max_memory_bytes=256 * 1024 * 1024)
    with job(cgroups, limits) as group:
        proc = spawn_in(group, sys.executable, "-c", "import time; time.sleep(60)")
        try:
            deadline = time.monotonic() + 10
            while not group.pids() and time.monotonic() < deadline:
                time.sleep(0.01)  # the shell joins the group, then execs
            sampler = sampler_for(group, limits, proc.pid)
            first = sampler.sample()
            # Behind the sampler's back: a lower limit, another open-files limit.
            memory_dir = Path(group.procs_files()[0]).parent
            limit_file = "memory.limit_in_bytes" if cgroups.version == "v1" else "memory.max"
            for procs in group.procs_files():
                if (procs.parent / limit_file).exists():
                    memory_dir = procs.parent
            (memory_dir / limit_file).write_text(str(128 * 1024 * 1024))
            resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, (77, 77))
            kept = [sampler.sample() for _ in range(SLOW_EVERY - 1)]
            again = sampler.sample()
        finally:
            proc.kill()
            proc.wait()
    assert first.memory.max == 256 * 1024 * 1024 and first.process.maxFDs != 77
    assert {s.memory.max for s in kept} == {first.memory.max}
    assert {s.process.maxFDs for s in kept} == {first.process.maxFDs}
    assert kept[-1].process.running + kept[-1].process.sleeping >= 1  # read every time
    assert (again.memory.max, again.process.maxFDs) == (128 * 1024 * 1024, 77)


def test_processes_in_a_group_below_the_jobs_are_counted(cgroups: CgroupManager) -> None:
    """The sampler lists only the job's own group while it has none below
    it (checked at every slow reading); with one, every group's processes."""
    limits = Limits()
    with job(cgroups, limits) as group:
        pids_dir = Path(cgroup_files(group).pids_dir)
        below = pids_dir / "below"
        below.mkdir()
        proc = subprocess.Popen(["sh", "-c", f'echo $$ > "{below}/cgroup.procs"; exec sleep 60'])
        try:
            deadline = time.monotonic() + 10
            while not (below / "cgroup.procs").read_text().split():
                assert time.monotonic() < deadline, "the process did not join"
                time.sleep(0.01)
            sample = sampler_for(group, limits, proc.pid).sample()
        finally:
            proc.kill()
            proc.wait()
            time.sleep(0.1)
            below.rmdir()
    assert sample.process.sleeping + sample.process.running >= 1
