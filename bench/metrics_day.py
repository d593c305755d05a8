"""A day of a job's metric samples for the metrics benchmarks, in two shapes:

* realistic: what the daemon's sampler emits for a job doing CPU, memory, disk
  and network work on a cgroup v2 host. The texts of the cgroup files it reads
  (cpu.stat, memory.*, io.stat with one device, the three PSI files, pids.*)
  and its network / process counters evolve over the day (a daily load curve
  with noise), and each sample is built from them by the daemon's own code
  (`snapshot.v2_reading`, then `compute.build_sample` against the previous
  reading, so rates and percentages are the sampler's). About 350 bytes each.
* worst case: every double and integer of cpu and memory set, plus io,
  network and process fields; about 500 bytes each. An upper bound, not a
  sample any host produces.

    payloads = realistic_day(job_id, start_ns, count=17_280)
"""

from __future__ import annotations

import math
import random

from joblet.api import joblet_pb2 as pb
from joblet.metrics.compute import SampleContext, build_sample
from joblet.metrics.parsers import NetCounters
from joblet.metrics.snapshot import ProcessCounts, Snapshot, v2_reading
from joblet.resources.interface import Limits

NS = 1_000_000_000
STEP_S = 5
DAY_S = 24 * 3600
MEMORY_MAX = 1 << 30
LIMITS = Limits(max_cpu_percent=50, max_memory_bytes=MEMORY_MAX, max_io_bps=0, max_pids=1024)


class _Counters:
    """Cumulative counters of one job, advanced one interval at a time."""

    def __init__(self) -> None:
        self.usage = self.user = self.system = 0
        self.periods = self.throttled = self.throttled_usec = 0
        self.pgfault = self.pgmajfault = 0
        self.rbytes = self.wbytes = self.rios = self.wios = 0
        self.eth = [0, 0, 0, 0]  # rx bytes, tx bytes, rx packets, tx packets
        self.lo = [0, 0]  # bytes, packets (rx == tx on loopback)

    def advance(self, load: float, rng: random.Random) -> None:
        used = int(load * 0.5 * STEP_S * 1e6)  # the job's cpu limit is half a core
        self.usage += used
        self.user += used * 8 // 10 // 10_000 * 10_000  # cpu.stat rounds to ticks
        self.system += used * 2 // 10 // 10_000 * 10_000
        self.periods += STEP_S * 10  # 100 ms CFS periods
        if load > 0.8:
            hit = int((load - 0.8) * 250)
            self.throttled += hit
            self.throttled_usec += hit * rng.randrange(2_000, 20_000)
        self.pgfault += int(load * rng.randrange(800, 4_000))
        self.pgmajfault += rng.random() < 0.05
        self.rbytes += int(load * rng.randrange(0, 8 << 20)) // 4096 * 4096
        self.wbytes += int(load * rng.randrange(0, 4 << 20)) // 4096 * 4096
        self.rios += int(load * rng.randrange(0, 200))
        self.wios += int(load * rng.randrange(0, 100))
        rx, tx = int(load * rng.randrange(0, 2 << 20)), int(load * rng.randrange(0, 512 << 10))
        self.eth = [
            self.eth[0] + rx,
            self.eth[1] + tx,
            self.eth[2] + rx // 1400,
            self.eth[3] + tx // 900,
        ]
        local = rng.randrange(0, 64 << 10)
        self.lo = [self.lo[0] + local, self.lo[1] + local // 600]


def _psi(some: float) -> str:
    """A PSI file's text (avg10/60/300 of the share of time stalled, then the
    total in us); "full" stalls are a part of the "some" ones. Shares under
    0.005 print as 0.00, which the sample leaves off the wire."""

    def line(kind: str, share: float) -> str:
        a10, a60, a300 = (share * f for f in (1.0, 0.8, 0.6))
        return f"{kind} avg10={a10:.2f} avg60={a60:.2f} avg300={a300:.2f} total={int(share * 1e7)}"

    return line("some", some) + "\n" + line("full", some / 2) + "\n"


def _pressure(load: float, rng: random.Random) -> dict[str, str]:
    """CPU stalls once the job runs into its CPU limit, IO stalls while it
    reads and writes, memory stalls only on rare reclaim spikes."""
    cpu = max(0.0, load - 0.7) * 60
    io = load * rng.uniform(0.0, 4.0)
    memory = rng.uniform(0.5, 5.0) if load > 0.95 else 0.0
    return {
        "cpu.pressure": _psi(cpu),
        "memory.pressure": _psi(memory),
        "io.pressure": _psi(io),
    }


def _files(c: _Counters, load: float, rng: random.Random) -> dict[str, str]:
    anon = int((200 << 20) + load * (400 << 20)) // 4096 * 4096
    file = int((80 << 20) + load * (150 << 20)) // 4096 * 4096
    dirty = rng.randrange(0, 8 << 20) // 4096 * 4096 if load > 0.5 else 0
    memory_stat = {
        "anon": anon, "file": file, "kernel_stack": 98_304, "slab": 3_276_800,
        "sock": 0, "shmem": 0, "file_mapped": 12 << 20, "file_dirty": dirty,
        "file_writeback": 0, "pgfault": c.pgfault, "pgmajfault": c.pgmajfault,
    }  # fmt: skip
    return {
        "cpu.stat": (
            f"usage_usec {c.usage}\nuser_usec {c.user}\nsystem_usec {c.system}\n"
            f"nr_periods {c.periods}\nnr_throttled {c.throttled}\n"
            f"throttled_usec {c.throttled_usec}\n"
        ),
        "memory.current": f"{anon + file + 3_375_104}\n",
        "memory.max": f"{MEMORY_MAX}\n",
        "memory.stat": "".join(f"{k} {v}\n" for k, v in memory_stat.items()),
        "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
        "io.stat": (
            f"8:0 rbytes={c.rbytes} wbytes={c.wbytes} rios={c.rios} wios={c.wios} dbytes=0 dios=0\n"
        ),
        "pids.current": f"{3 + int(load * 4)}\n",
        "pids.max": "1024\n",
        "pids.events": "max 0\n",
    } | _pressure(load, rng)


def daily_load(i: int, rng: random.Random) -> float:
    """0..1: a day's curve (busy in the afternoon) with noise."""
    t = i * STEP_S / DAY_S
    base = 0.55 + 0.35 * math.sin(2 * math.pi * (t - 0.25))
    return min(1.0, max(0.02, base + rng.gauss(0, 0.08)))


def realistic_day(job_id: str, start_ns: int, count: int) -> list[bytes]:
    """`count` serialized samples, 5 s apart from `start_ns`, built by the
    sampler's code from evolving v2 cgroup texts and network counters."""
    rng = random.Random(job_id)
    ctx = SampleContext(job_id, STEP_S, f"/sys/fs/cgroup/joblet/job-{job_id}", LIMITS)
    counters, previous, out = _Counters(), None, []
    for i in range(count + 1):  # one baseline reading, not published (as the sampler)
        load = daily_load(i, rng)
        counters.advance(load, rng)
        e, lo = counters.eth, counters.lo
        net = {
            "lo": NetCounters(lo[0], lo[0], lo[1], lo[1]),
            "eth0": NetCounters(e[0], e[1], e[2], e[3]),
        }
        procs = ProcessCounts(
            threads=4 + int(load * 8), running=1, sleeping=2 + int(load * 4),
            open_fds=24, max_fds=1_048_576,
        )  # fmt: skip
        wall = start_ns + (i - 1) * STEP_S * NS
        snap = Snapshot(wall, wall, v2_reading(_files(counters, load, rng)), net, procs)
        if previous is not None:
            out.append(build_sample(ctx, snap, previous).SerializeToString())
        previous = snap
    return out


def worst_case_sample(job_id: str, i: int, start_ns: int) -> bytes:
    """Every double and integer of cpu and memory non-zero (an upper bound)."""
    s = pb.JobMetricsSample(
        jobId=job_id, timestamp=start_ns + i * STEP_S * NS, sampleIntervalSeconds=STEP_S,
        cgroupPath=f"/sys/fs/cgroup/memory/joblet/job-{job_id}",
        limits=pb.JobResourceLimits(cpu=50, memory=MEMORY_MAX),
    )  # fmt: skip
    for msg, base in ((s.cpu, 123_456_789), (s.memory, 223_456_789)):
        for f in msg.DESCRIPTOR.fields:
            if f.type == f.TYPE_DOUBLE:
                setattr(msg, f.name, float(i % 97))
            elif f.type in (f.TYPE_INT64, f.TYPE_UINT64, f.TYPE_INT32):
                setattr(msg, f.name, base + i)
    s.io.devices["8:0"].CopyFrom(
        pb.DeviceIOMetrics(
            device="8:0", readBytes=1 << 30, writeBytes=1 << 29, readOps=i, writeOps=2 * i
        )
    )
    s.io.totalReadBytes, s.io.totalWriteBytes = 1 << 30, 1 << 29
    s.io.readBPS, s.io.writeBPS = float(i), 2.0
    s.network.interfaces["lo"].CopyFrom(
        pb.NetworkInterfaceMetrics(interface="lo", rxBytes=10 << 20, txBytes=10 << 20)
    )
    s.network.totalRxBytes, s.network.rxBPS = 10 << 20, float(i % 13)
    s.process.current, s.process.threads, s.process.openFDs, s.process.maxFDs = 3, 5, 12, 1024
    return s.SerializeToString()


def worst_case_day(job_id: str, start_ns: int, count: int) -> list[bytes]:
    return [worst_case_sample(job_id, i, start_ns) for i in range(count)]
