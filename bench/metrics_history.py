"""GetJobMetricsHistory and GetJobMetricsSummary p99 through a real daemon over
mTLS, for jobs with 24 h of 5 s samples (17,280). Target <= 50 ms,
checked on the realistic series only.

    .venv/bin/python bench/metrics_history.py [--quick]

Two series of jobs, each some finished (`true`; 4, --quick 2) and one running
(`sleep`), with samples from `metrics_day`:

* realistic (the target applies): what the daemon's sampler emits on a cgroup
  v2 host for a job doing CPU, memory, disk and network work, built by the
  sampler's own code (snapshot.v2_reading, compute.build_sample) from cgroup
  texts that evolve over the day: CPU and memory counters, PSI pressure, one
  io.stat device, lo and eth0;
* worst case (printed, not checked): every double and integer of cpu and
  memory set.

Both responses' sizes are printed, and whether a client channel with gRPC's
default 4 MiB receive limit can take the realistic 24 h history.

The daemon is restarted after the jobs start (SIGKILL, so that the running
jobs survive; `joblet serve` on the same root and port), so no job is in its
memory. Each job then gets its 24 h of samples sent to persist over its IPC
socket, the path the daemon's own metrics sink takes, and the finished jobs'
histories are sealed again, as the daemon does when a job ends. A client times
each RPC on one mTLS channel, history calls twice: from the call to the whole
reply received ("received": a stub that returns the reply's bytes; the target
applies here, as to the summary), and from the call to the reply decoded by
Python protobuf ("decoded": adds the client's own decoding, which takes the
same time whatever server sent the bytes, since the contract fixes them):

* first reads: the first history (or summary) of each job, which the daemon
  reads from persist (the finished ones from sealed segments, the running one
  from its open segment), derives the summary's series from, and then keeps
  (metrics.historyCacheBytes);
* then `runs` calls each of history 24 h, history last 1 h and summary 24 h
  of one finished job and of the running job of each series (a running job
  gets a new sample every 5 s, so its history grows and its summary is
  recomputed meanwhile).

Also printed: the CPU time the daemon and persist spent per call (psutil),
and the client's own (its decode, TLS and HTTP/2 work; all its threads).
Baselines, same run and channel: a GetJobStatus round trip (the transport's
floor for one small message), and the client's own decode of each 24 h
response (`JobMetricsHistoryResponse.FromString`, which every timed history
call includes).

A running job started by this daemon is answered from memory only while the
hub's ring (`metrics.historySamples`, 720 by default) holds its whole history,
so a 24 h history always comes from persist unless that is raised to 17,280;
that path's server-side work (no gRPC) is timed in-process as a reference.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import grpc
import psutil
from common import Daemon, Report, describe_ms, p50, p99, parse_args, running_daemon
from metrics_day import realistic_day, worst_case_day
from metrics_stream_latency import start_daemon_again

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.daemon import metrics_rpc
from joblet.errors import JobletError
from joblet.metrics.config import MetricsConfig
from joblet.metrics.history import encode_history
from joblet.metrics.hub import MetricsHub
from joblet.persist.client import PersistClient, PersistQueryClient

DAY_SAMPLES = 24 * 3600 // 5
NS = 1_000_000_000
TARGET_MS = 50.0
DEFAULT_RECEIVE = 4 << 20  # gRPC's default max_receive_message_length
FINAL = ("COMPLETED", "FAILED", "STOPPED")
Day = list[tuple[int, bytes]]


SERIES = ("realistic", "worst case")  # the target applies to the first


def day_of(template: list[bytes], template_id: str, job_id: str, start_ns: int) -> Day:
    """A day of samples for `job_id` from one built for `template_id` (job ids
    are UUIDs of one length, so the bytes stay valid protobuf)."""
    old, new = template_id.encode(), job_id.encode()
    return [(start_ns + i * 5 * NS, p.replace(old, new)) for i, p in enumerate(template)]


def build_days(series_jobs: dict[str, list[str]], end_ns: int) -> dict[str, Day]:
    """24 h of 5 s samples per job, the last one 5 s before `end_ns`."""
    start = end_ns - DAY_SAMPLES * 5 * NS
    makers = {"realistic": realistic_day, "worst case": worst_case_day}
    days: dict[str, Day] = {}
    for name, jobs in series_jobs.items():
        template = makers[name](jobs[0], start, DAY_SAMPLES)
        days |= {job_id: day_of(template, jobs[0], job_id, start) for job_id in jobs}
    return days


async def fill(daemon: Daemon, histories: dict[str, Day], seal: list[str]) -> None:
    """Send the samples over persist's IPC (as the daemon's sink does, one
    sample a batch), then seal the finished jobs' histories again."""
    async with PersistClient(daemon.root / "run" / "persist-ipc.sock") as client:
        for job_id, payloads in histories.items():
            for ts, payload in payloads:
                client.send_metric(job_id, ts, payload)
                if not client.has_room():
                    await client.flush(60)
        for job_id in seal:
            client.job_finished(job_id)
        if not await client.flush(120):
            raise RuntimeError("persist did not store the samples")


def wait_status(stub: pb_grpc.JobServiceStub, job_id: str, wanted: Callable[[str], bool]) -> None:
    deadline = time.monotonic() + 30
    while not wanted(status := stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id)).status):
        if time.monotonic() > deadline:
            detail = stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id))
            raise RuntimeError(f"job {job_id} is {status}, not the wanted status: {detail}")
        time.sleep(0.05)


def restart(daemon: Daemon) -> Daemon:
    # SIGKILL, as restart_time.py does: a SIGTERM would stop the running job.
    daemon.proc.kill()
    daemon.proc.wait(60)
    return start_daemon_again(daemon)


def time_calls(call: Callable[..., object], request: object, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call(request, timeout=60)
        times.append(time.perf_counter() - t0)
    return times


def wait_history(stub: pb_grpc.JobServiceStub, job_id: str, count: int) -> list[int]:
    """Timestamps of the job's history once it holds `count` samples (30 s at most)."""
    request = pb.JobMetricsHistoryRequest(uuid=job_id)
    deadline = time.monotonic() + 30
    while len(samples := stub.GetJobMetricsHistory(request).samples) < count:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return [s.timestamp for s in samples]


def check_history(stub: pb_grpc.JobServiceStub, job_id: str, first_ts: int) -> int:
    """The whole stored day comes back, oldest first."""
    stamps = wait_history(stub, job_id, DAY_SAMPLES)
    if stamps != sorted(stamps) or not stamps or stamps[0] != first_ts:
        raise RuntimeError(
            f"history of {job_id} is not the stored day, oldest first: {len(stamps)} samples,"
            f" first {stamps[:1]} (wanted {first_ts}), sorted: {stamps == sorted(stamps)}"
        )
    return len(stamps)


def server_cpu_s(daemon: Daemon) -> float:
    """CPU seconds the daemon and persist have used so far."""
    persist = int((daemon.root / "run" / "persist.pid").read_text().strip())
    return sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in (daemon.proc.pid, persist))


def raw_history_call(channel: grpc.Channel) -> Callable[..., object]:
    """GetJobMetricsHistory returning the reply's bytes as received: the
    call ends when the whole reply is in the client, before any decoding."""
    return channel.unary_unary(
        "/joblet.JobService/GetJobMetricsHistory",
        request_serializer=pb.JobMetricsHistoryRequest.SerializeToString,
        response_deserializer=None,
    )


def measure_job(
    report: Report,
    stub: pb_grpc.JobServiceStub,
    raw_history: Callable[..., object],
    label: str,
    job_id: str,
    *,
    daemon: Daemon,
    start_s: int,
    runs: int,
    checked: bool,
) -> None:
    day = pb.JobMetricsHistoryRequest(uuid=job_id)
    last_hour = pb.JobMetricsHistoryRequest(uuid=job_id, fromTimestamp=start_s + 23 * 3600)
    # The target applies to the "received" cases (call -> whole reply in the
    # client) and to the summary; the decoded cases add the client's own
    # protobuf decoding of the reply (the same for any server: the bytes
    # are fixed by the contract), printed alongside.
    cases: dict[str, tuple[Callable[..., object], object, bool]] = {
        "history 24 h received": (raw_history, day, True),
        "history 24 h decoded": (stub.GetJobMetricsHistory, day, False),
        "history last 1 h received": (raw_history, last_hour, True),
        "history last 1 h decoded": (stub.GetJobMetricsHistory, last_hour, False),
        "summary 24 h": (stub.GetJobMetricsSummary, pb.JobMetricsSummaryRequest(uuid=job_id), True),
    }
    for name, (call, request, targeted) in cases.items():
        cpu, client = server_cpu_s(daemon), time.process_time()
        times = time_calls(call, request, runs)
        client_ms = 1000 * (time.process_time() - client) / runs
        cpu_ms = 1000 * (server_cpu_s(daemon) - cpu) / runs
        print(
            f"{label}, {name}: {describe_ms(times)};"
            f" CPU a call: server {cpu_ms:.1f} ms, client {client_ms:.1f} ms"
        )
        report.figures[f"{label} {name} server CPU ms a call"] = cpu_ms
        report.figures[f"{label} {name} client CPU ms a call"] = client_ms
        report.figures[f"{label} {name} p50 ms"] = 1000 * p50(times)
        report.figures[f"{label} {name} p99 ms"] = 1000 * p99(times)
        if checked and targeted:
            ok = 1000 * p99(times) <= TARGET_MS
            report.check(f"{label} {name} p99", ok, f"<= {TARGET_MS} ms")


async def memory_path(payloads: list[bytes], runs: int) -> tuple[list[float], list[float]]:
    """Server-side work of history and summary from a hub whose ring holds the
    whole day (in-process, no gRPC)."""
    async with MetricsHub(MetricsConfig(history_samples=DAY_SAMPLES + 100)) as hub:
        for payload in payloads:
            hub.publish(pb.JobMetricsSample.FromString(payload))
        job_id = pb.JobMetricsSample.FromString(payloads[0]).jobId
        history, summary = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            await metrics_rpc.job_metrics_history_bytes(
                hub, job_id, pb.JobMetricsHistoryRequest(uuid=job_id)
            )
            t1 = time.perf_counter()
            await metrics_rpc.get_job_metrics_summary(
                hub, job_id, pb.JobMetricsSummaryRequest(uuid=job_id)
            )
            history.append(t1 - t0)
            summary.append(time.perf_counter() - t1)
        return history, summary


async def persisted_count(daemon: Daemon, job_id: str) -> int:
    """Samples persist holds for the job, asked directly (not through the daemon)."""
    count = 0
    async with PersistQueryClient(daemon.root / "run" / "persist-grpc.sock") as client:
        with contextlib.suppress(JobletError):
            async for _ in client.query_metrics(job_id):
                count += 1
    return count


def wait_cleared(daemon: Daemon, job_id: str) -> None:
    """The re-attached job's log copy starts by clearing what persist holds of
    the job (its metrics too); its first sample stored after that says the
    clearing is done, so what is filled next stays."""
    deadline = time.monotonic() + 30
    while asyncio.run(persisted_count(daemon, job_id)) < 1:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no sample of {job_id} reached persist")
        time.sleep(0.2)


def timed(call: Callable[..., object], request: object) -> float:
    return time_calls(call, request, 1)[0]


def start_jobs(daemon: Daemon, finished_count: int) -> tuple[list[str], str]:
    stub = daemon.jobs()
    finished = [
        stub.RunJob(pb.RunJobRequest(command="true")).jobUuid for _ in range(finished_count)
    ]
    running = stub.RunJob(pb.RunJobRequest(command="sleep", args=["3600"])).jobUuid
    for job_id in finished:
        wait_status(stub, job_id, lambda s: s in FINAL)
    wait_status(stub, running, lambda s: s == "RUNNING")
    time.sleep(1.0)  # the state helper stores RUNNING asynchronously; SIGKILL comes next
    return finished, running


def first_reads(
    report: Report,
    stub: pb_grpc.JobServiceStub,
    daemon: Daemon,
    jobs: tuple[list[str], str],
    series: str,
) -> None:
    """First reads: the daemon reads the job from persist. Half the finished
    jobs are first asked for their history, half for their summary."""
    finished, running = jobs
    history_req = {j: pb.JobMetricsHistoryRequest(uuid=j) for j in [*finished, running]}
    summary_req = {j: pb.JobMetricsSummaryRequest(uuid=j) for j in finished}
    cpu = server_cpu_s(daemon)
    cold_history = [timed(stub.GetJobMetricsHistory, history_req[j]) for j in finished[::2]]
    cold_history.append(timed(stub.GetJobMetricsHistory, history_req[running]))
    cold_summary = [timed(stub.GetJobMetricsSummary, summary_req[j]) for j in finished[1::2]]
    cpu_ms = 1000 * (server_cpu_s(daemon) - cpu) / (len(cold_history) + len(cold_summary))
    print(f"{series}, first reads: server CPU {cpu_ms:.1f} ms a call")
    report.figures[f"{series} first reads server CPU ms a call"] = cpu_ms
    for name, times in (("history", cold_history), ("summary", cold_summary)):
        print(f"{series}, first {name} read of a job (from persist): {describe_ms(times)}")
        report.figures[f"{series} first {name} read p50 ms"] = 1000 * p50(times)
        report.figures[f"{series} first {name} read max ms"] = 1000 * max(times)


def default_channel_check(report: Report, daemon: Daemon, job_id: str, size: int) -> None:
    """Whether a channel with gRPC's default options (4 MiB receive limit) can
    receive the job's 24 h history, and how many hours of it fit."""
    with grpc.secure_channel(daemon.address, daemon.credentials()) as channel:
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        try:
            stub.GetJobMetricsHistory(pb.JobMetricsHistoryRequest(uuid=job_id), timeout=60)
            outcome = "received"
        except grpc.RpcError as exc:
            outcome = exc.code().name  # type: ignore[attr-defined]
    hours = 24 * DEFAULT_RECEIVE / size
    print(f"realistic 24 h history on a default channel (4 MiB limit): {outcome};"
          f" about {hours:.1f} h of it fit")  # fmt: skip
    report.notes.append(f"default client channel, realistic 24 h history: {outcome}")
    report.figures["realistic hours within 4 MiB"] = hours


def response_sizes(
    report: Report, days: dict[str, Day], series_jobs: dict[str, list[str]]
) -> dict[str, bytes]:
    """The 24 h response of each series' running job, serialized as the client gets it."""
    raws = {}
    for name, jobs in series_jobs.items():
        payloads = [p for _, p in days[jobs[-1]]]
        raws[name] = encode_history(payloads)
        mean = sum(map(len, payloads)) / len(payloads)
        print(f"{name}: 24 h response {len(raws[name]) / 1e6:.2f} MB ({mean:.0f} bytes a sample)")
        report.figures[f"{name} 24 h response MB"] = len(raws[name]) / 1e6
        report.figures[f"{name} bytes a sample"] = mean
    return raws


def main() -> None:
    args = parse_args(__doc__ or "")
    runs = 10 if args.quick else 40
    report = Report("metrics_history", args.quick)
    with running_daemon() as first:
        jobs = {name: start_jobs(first, 2 if args.quick else 4) for name in SERIES}
        daemon = restart(first)
        first.proc = daemon.proc  # `running_daemon` stops this one at the end
        # A 24 h history is ~9 MB: over gRPC's default 4 MiB receive limit.
        channel = grpc.secure_channel(
            daemon.address,
            daemon.credentials(),
            options=[("grpc.max_receive_message_length", 64 << 20)],
        )
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        for _, running in jobs.values():
            wait_status(stub, running, lambda s: s == "RUNNING")
            wait_cleared(daemon, running)
        series_jobs = {name: [*finished, running] for name, (finished, running) in jobs.items()}
        days = build_days(series_jobs, time.time_ns())
        raws = response_sizes(report, days, series_jobs)
        t0 = time.perf_counter()
        sealed = [j for finished, _ in jobs.values() for j in finished]
        asyncio.run(fill(daemon, days, seal=sealed))
        report.notes.append(
            f"{len(days)} x {DAY_SAMPLES} samples stored in {time.perf_counter() - t0:.1f} s"
        )
        for name in SERIES:
            first_reads(report, stub, daemon, jobs[name], name)
        for name, (finished, running) in jobs.items():
            for label, job_id in (("finished", finished[0]), ("running", running)):
                got = check_history(stub, job_id, days[job_id][0][0])
                report.figures[f"{name} {label} samples returned"] = got
                report.check(
                    f"{name} {label}: all samples", got >= DAY_SAMPLES, f">= {DAY_SAMPLES}"
                )
        status = time_calls(stub.GetJobStatus, pb.GetJobStatusReq(uuid=running), runs * 5)
        print(f"GetJobStatus round trip: {describe_ms(status)}")
        report.baselines["GetJobStatus p50 ms"] = 1000 * p50(status)
        report.baselines["GetJobStatus p99 ms"] = 1000 * p99(status)
        start_s = days[running][0][0] // NS
        for name, (finished, running) in jobs.items():
            for label, job_id in (("finished", finished[0]), ("running", running)):
                measure_job(
                    report, stub, raw_history_call(channel), f"{name} {label}", job_id,
                    daemon=daemon,
                    start_s=start_s, runs=runs, checked=name == SERIES[0],
                )  # fmt: skip
        for name, raw in raws.items():
            decode = time_calls(
                lambda data, timeout: pb.JobMetricsHistoryResponse.FromString(data), raw, runs
            )
            print(f"{name}: client decode of the 24 h response: {describe_ms(decode)}")
            report.baselines[f"{name} client decode 24 h p50 ms"] = 1000 * p50(decode)
        default_channel_check(report, daemon, jobs[SERIES[0]][0][0], len(raws[SERIES[0]]))
        for _, running in jobs.values():
            stub.StopJob(pb.StopJobReq(uuid=running))
        channel.close()
    realistic_running = days[jobs[SERIES[0]][1]]
    history, summary = asyncio.run(memory_path([p for _, p in realistic_running], runs))
    print(f"in-process hub from memory, history: {describe_ms(history)}")
    print(f"in-process hub from memory, summary: {describe_ms(summary)}")
    report.figures["memory path history p99 ms (in-process)"] = 1000 * p99(history)
    report.figures["memory path summary p99 ms (in-process)"] = 1000 * p99(summary)
    report.emit()


if __name__ == "__main__":
    main()
