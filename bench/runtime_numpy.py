"""`import numpy` in a job on the python-3.11 runtime, against the host's own run.

    .venv/bin/python bench/runtime_numpy.py [--quick]

One daemon with python-3.11 installed by `rnx runtime install` (wheels from
rnx's cache). Timed: RunJob of `python3 -c 'import numpy; print(1)'` with
`runtime: python-3.11` (network none) -> first output byte. Baseline in the
same run: an `echo 1` job without runtime (what starting any job costs), and
the host's own python3.11 (Debian's, the interpreter the runtime
copies) importing the same numpy files, from the installed tree through
PYTHONPATH, fork+exec -> first output byte.
Warm: the runtime used since the daemon started, caches warm; alternating.
Cold: the daemon restarted (SIGTERM, `joblet serve` again on the same root) and
`echo 3 > /proc/sys/vm/drop_caches` before the job's first use; the host's run
after its own drop_caches.
Targets: warm p50 <= host p50 + 15 ms; cold <= 500 ms.
"""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import time
from pathlib import Path

from common import Daemon, Report, describe_ms, p50, parse_args, running_daemon, time_first_byte

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.cli.runtime_prepare import prepare

REPO = Path(__file__).resolve().parents[1]
CODE = "import numpy; print(1)"
WARMUP = 3


def job_first_byte(stub: pb_grpc.JobServiceStub, *, runtime: bool = True) -> float:
    """RunJob -> first output byte of the numpy job, or of `echo 1` without runtime."""
    request = (
        pb.RunJobRequest(
            command="python3", args=["-c", CODE], network="none", runtime="python-3.11"
        )
        if runtime
        else pb.RunJobRequest(command="echo", args=["1"], network="none")
    )
    start = time.perf_counter()
    job = stub.RunJob(request)
    chunks = stub.GetJobLogs(pb.GetJobLogsReq(uuid=job.jobUuid))
    first = next(chunks).payload
    elapsed = time.perf_counter() - start
    output = first + b"".join(c.payload for c in chunks)
    if output != b"1\n":
        raise AssertionError(f"job printed {output!r}")
    stub.DeleteJob(pb.DeleteJobReq(uuid=job.jobUuid))
    return elapsed


def host_argv(daemon: Daemon) -> list[str]:
    tree = (daemon.root / "runtimes" / "python-3.11" / "current").resolve() / "tree"
    site = tree / "venv" / "lib" / "python3.11" / "site-packages"
    return ["env", f"PYTHONPATH={site}", "/usr/bin/python3.11", "-c", CODE]


def drop_caches() -> None:
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def restart(daemon: Daemon) -> None:
    """A clean stop (the launcher goes too), then `joblet serve` on the same root."""
    daemon.proc.terminate()
    daemon.proc.wait(timeout=60)
    argv = [sys.executable, "-m", "joblet.daemon.main", "serve", "--config"]
    with daemon.log_path.open("ab") as log:
        daemon.proc = subprocess.Popen(
            [*argv, str(daemon.config_path)], stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", daemon.port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("the daemon did not listen again within 60 s")


def main() -> None:
    args = parse_args(__doc__ or "")
    runs, cold_runs = (10, 1) if args.quick else (40, 3)
    report = Report("runtime_numpy", args.quick)
    prepare(REPO / "runtimes" / "python-3.11", io.StringIO())  # the wheel cache
    warm_job: list[float] = []
    warm_host: list[float] = []
    warm_echo: list[float] = []
    cold_job: list[float] = []
    cold_host: list[float] = []
    with running_daemon() as daemon:
        argv = daemon.rnx_argv("runtime", "install", "python-3.11", "--quiet")
        subprocess.run(argv, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        host = host_argv(daemon)
        stub = daemon.jobs()
        for _ in range(WARMUP):
            job_first_byte(stub)
            time_first_byte(host, 1)
        for _ in range(runs):
            warm_job.append(job_first_byte(stub))
            warm_host += time_first_byte(host, 1)
            warm_echo.append(job_first_byte(stub, runtime=False))
        for _ in range(cold_runs):
            restart(daemon)
            stub = daemon.jobs()
            drop_caches()
            cold_job.append(job_first_byte(stub))
            drop_caches()
            cold_host += time_first_byte(host, 1)
    for label, values in (
        ("warm job  ", warm_job), ("warm host ", warm_host), ("echo job  ", warm_echo),
        ("cold job  ", cold_job), ("cold host ", cold_host),
    ):  # fmt: skip
        print(label, describe_ms(values))
    report.figures["warm_job_p50_ms"] = p50(warm_job) * 1e3
    report.figures["cold_job_p50_ms"] = p50(cold_job) * 1e3
    report.baselines["warm_host_p50_ms"] = p50(warm_host) * 1e3
    report.baselines["cold_host_p50_ms"] = p50(cold_host) * 1e3
    report.baselines["echo_job_p50_ms"] = p50(warm_echo) * 1e3  # a job's own start
    report.check("warm", p50(warm_job) <= p50(warm_host) + 0.015, "job p50 <= host p50 + 15 ms")
    report.check("cold", p50(cold_job) <= 0.5, "first job after restart + drop_caches <= 500 ms")
    report.emit()


if __name__ == "__main__":
    main()
