"""A call about another node's job, forwarded by the node asked to the job's
owner: GetJobLogs of a finished job through node B (forwarded to A) against
the same call to A itself, both in the same run.

    .venv/bin/python bench/forward_logs.py [--quick]

Two real daemons of one cluster (one redis-server, one CA, node
certificates), all in the benchmark's network namespace. A job on A writes
100 short lines (a small read: what forwarding adds per call) and one writes
64 MiB (a large read: what relaying the bytes costs). Timed, alternated:
the small read 200 times each way (--quick: 40), the large 7 times (--quick:
3); medians. Figures: through B; baselines: from A.
"""

from __future__ import annotations

import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import yaml
from common import Daemon, Report, enter_private_netns, parse_args, require_root, start_daemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.setup.command import cluster_snippet, issue_cert

REDIS_PORT = 6390
BIG_MIB = 64


def wait_done(stub: pb_grpc.JobServiceStub, job_id: str) -> None:
    deadline = time.monotonic() + 120
    while stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id)).status != "COMPLETED":
        assert time.monotonic() < deadline, f"job {job_id} did not complete"
        time.sleep(0.05)


def read_all(stub: pb_grpc.JobServiceStub, job_id: str) -> tuple[float, int]:
    start = time.perf_counter()
    size = sum(len(c.payload) for c in stub.GetJobLogs(pb.GetJobLogsReq(uuid=job_id)))
    return time.perf_counter() - start, size


def start_redis(tmp: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed"
    args = ["--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp)]
    proc = subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", REDIS_PORT)) == 0:
                return proc
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)


def start_pair(tmp: Path) -> dict[str, Daemon]:
    from joblet.setup.command import run_setup

    ca_root = tmp / "ca"
    run_setup(ca_root, "127.0.0.1", 50051, [], False)
    ca = ["--ca-cert", str(ca_root / "config/ca-cert.pem")]
    ca += ["--ca-key", str(ca_root / "config/ca-key.pem")]
    daemons: dict[str, Daemon] = {}
    for n, name in enumerate(("a", "b")):
        keys = yaml.safe_load(cluster_snippet(*issue_cert(ca_root, "node", f"node-{name}")))
        sections = {
            "state": {"backend": "redis", "redis": {"port": REDIS_PORT, "keyPrefix": f"{name}:"}},
            "cluster": {"name": "bench", **keys["cluster"]},
            "network": {"bridgeCidr": f"10.21{n}.0.0/24", "isolatedPool": f"10.22{n}.0.0/24"},
        }
        daemons[name] = start_daemon(tmp / name, sections=sections, setup_args=ca)
    return daemons


def main() -> None:
    args = parse_args(__doc__ or "")
    small_runs, big_runs = (40, 3) if args.quick else (200, 7)
    report = Report("forward_logs", args.quick)
    require_root()
    enter_private_netns()
    tmp = Path(tempfile.mkdtemp(prefix="joblet-bench-"))
    redis = start_redis(tmp)
    daemons: dict[str, Daemon] = {}
    try:
        daemons = start_pair(tmp)
        a, b = daemons["a"].jobs(), daemons["b"].jobs()
        small = a.RunJob(pb.RunJobRequest(command="seq", args=["100"])).jobUuid
        big_cmd = f"head -c {BIG_MIB}M /dev/zero | tr '\\0' x | fold -w 99"
        big = a.RunJob(pb.RunJobRequest(command="sh", args=["-c", big_cmd])).jobUuid
        for job_id in (small, big):
            wait_done(a, job_id)
        # A's records reach the store as they change: B finds them at once
        assert read_all(b, small)[1] == read_all(a, small)[1] > 0
        times: dict[str, list[float]] = {k: [] for k in ("small b", "small a", "big b", "big a")}
        for _ in range(small_runs):
            times["small b"].append(read_all(b, small)[0])
            times["small a"].append(read_all(a, small)[0])
        big_size = 0
        for _ in range(big_runs):
            elapsed, big_size = read_all(b, big)
            times["big b"].append(elapsed)
            times["big a"].append(read_all(a, big)[0])
    finally:
        for daemon in daemons.values():
            daemon.stop()
        redis.terminate()
        redis.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    report.figures["GetJobLogs 100 lines through B p50 ms"] = med["small b"] * 1000
    report.baselines["GetJobLogs 100 lines from A p50 ms"] = med["small a"] * 1000
    mib = big_size / 2**20
    report.figures[f"GetJobLogs {mib:.0f} MiB through B MiB/s"] = mib / med["big b"]
    report.baselines[f"GetJobLogs {mib:.0f} MiB from A MiB/s"] = mib / med["big a"]
    report.notes.append(f"medians of {small_runs} small and {big_runs} large reads, alternated")
    report.emit()


if __name__ == "__main__":
    main()
