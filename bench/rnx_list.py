"""`rnx list` with 10,000 jobs: wall time of the whole command, as a user
runs it (a fresh process, mTLS, ListJobs, the filters and the 80-column
table), against a real daemon.

    .venv/bin/python bench/rnx_list.py [--quick]

10,000 jobs (--quick: 2,000) are scheduled an hour ahead, so they are real
records the daemon lists but none runs. Timed, median of 15 runs (--quick: 5),
alternated: `rnx list` (the table of the newest 100, through ListJobPages),
`rnx list -q`, `rnx list --json`, `rnx list --all` and `rnx list -q --all`
(every job, in pages), `rnx list --status RUNNING --limit 5` (filters leaving
nothing to draw), and baselines from the same run: `python -c pass` (the
interpreter's start, the floor of any Python CLI), `rnx --help` (rnx's
own start, no call) and a bare script making one ListJobs call through the
generated stub and printing the count (the transport's share).
Target: rnx list <= 300 ms at p50.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time

from common import Daemon, Report, parse_args, running_daemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

CALLERS = 20
BARE_LIST = """
import sys, grpc, yaml
from joblet.api import joblet_pb2 as pb, joblet_pb2_grpc as pb_grpc
node = yaml.safe_load(open(sys.argv[1]))["nodes"]["default"]
pems = [node[k].encode() for k in ("ca", "key", "cert")]
creds = grpc.ssl_channel_credentials(*pems)
options = [("grpc.max_receive_message_length", 1 << 28)]
with grpc.secure_channel(sys.argv[2], creds, options=options) as ch:
    print(len(pb_grpc.JobServiceStub(ch).ListJobs(pb.EmptyRequest()).jobs))
"""


async def submit(daemon: Daemon, total: int) -> None:
    left = [total]

    async def caller(stub: pb_grpc.JobServiceStub) -> None:
        while left[0] > 0:
            left[0] -= 1
            await stub.RunJob(pb.RunJobRequest(command="true", args=["x"], schedule="1h"))

    async with daemon.aio_channel() as channel:
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        await asyncio.gather(*(caller(stub) for _ in range(CALLERS)))


def wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    args = parse_args(__doc__ or "")
    jobs, runs = (2_000, 5) if args.quick else (10_000, 15)
    report = Report("rnx_list", args.quick)
    with running_daemon() as daemon:
        asyncio.run(submit(daemon, jobs))
        commands = {
            "rnx list": daemon.rnx_argv("list"),
            "rnx list -q": daemon.rnx_argv("list", "-q"),
            "rnx list --json": daemon.rnx_argv("list", "--json"),
            "rnx list --all": daemon.rnx_argv("list", "--all"),
            "rnx list -q --all": daemon.rnx_argv("list", "-q", "--all"),
            "rnx list --status RUNNING --limit 5": daemon.rnx_argv(
                "list", "--status", "RUNNING", "--limit", "5"
            ),
            "python -c pass": [sys.executable, "-c", "pass"],
            "rnx --help": daemon.rnx_argv("--help"),
            "bare ListJobs script": [
                sys.executable,
                "-c",
                BARE_LIST,
                str(daemon.rnx_config),
                daemon.address,
            ],
        }
        argv = daemon.rnx_argv("list", "-q", "--all")
        listed = subprocess.run(argv, capture_output=True, check=True)
        assert len(listed.stdout.splitlines()) == jobs, "every job listed"
        newest = subprocess.run(daemon.rnx_argv("list", "-q"), capture_output=True, check=True)
        assert len(newest.stdout.splitlines()) == 100, "the newest 100 by default"
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, argv in commands.items():
                samples[name].append(wall(argv))
    for name, values in samples.items():
        value = statistics.median(values) * 1000
        if name.startswith("rnx"):
            report.figures[f"{name} p50 ms"] = value
        else:
            report.baselines[f"{name} p50 ms"] = value
    report.notes.append(f"{jobs} jobs, median of {runs} runs each, alternated")
    report.check("rnx list p50", report.figures["rnx list p50 ms"] <= 300, "<= 300 ms")
    report.emit()


if __name__ == "__main__":
    main()
