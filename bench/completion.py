"""What one TAB costs: `rnx __complete jobs` (a fresh process, mTLS,
ListJobs, ids and names) against a real daemon holding 500 jobs, alternated
with same-run baselines: `python -c pass` (the floor of any Python CLI) and
`rnx list -q` (the command a user would otherwise type). Also the offline case
(the node's port closed: bounded by the 1 s connect limit) and printing the
bash script (`rnx completion bash`, done once per shell).

    .venv/bin/python bench/completion.py [--quick]

Median of 15 runs (--quick: 5). Target: a TAB <= 300 ms p50, like `rnx list`.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys

from common import Daemon, Report, free_port, parse_args, running_daemon, time_command

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

JOBS = 500


async def submit(daemon: Daemon, total: int) -> None:
    async with daemon.aio_channel() as channel:
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        for i in range(total):
            await stub.RunJob(pb.RunJobRequest(command="true", name=f"j{i}", schedule="1h"))


def main() -> None:
    args = parse_args(__doc__ or "")
    runs = 5 if args.quick else 15
    report = Report("completion", args.quick)
    with running_daemon() as daemon:
        asyncio.run(submit(daemon, JOBS))
        offline = daemon.rnx_config.parent / "offline.yml"
        text = daemon.rnx_config.read_text()
        offline.write_text(text.replace(daemon.address, f"127.0.0.1:{free_port()}"))
        commands = {
            "rnx __complete jobs": daemon.rnx_argv("__complete", "jobs"),
            "rnx __complete jobs, offline": [
                daemon.rnx_argv()[0],
                "--config",
                str(offline),
                "__complete",
                "jobs",
            ],
            "rnx completion bash": [sys.executable, "-m", "joblet.cli.main", "completion", "bash"],
            "python -c pass": [sys.executable, "-c", "pass"],
            "rnx list -q": daemon.rnx_argv("list", "-q"),
        }
        words = subprocess.run(commands["rnx __complete jobs"], capture_output=True, check=True)
        assert len(words.stdout.split()) == 2 * JOBS, "every id and name offered"
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, argv in commands.items():
                samples[name] += time_command(argv, 1)
    for name, values in samples.items():
        value = statistics.median(values) * 1000
        target = report.figures if "complet" in name else report.baselines
        target[f"{name} p50 ms"] = value
    report.notes.append(f"{JOBS} jobs, median of {runs} runs each, alternated")
    tab = report.figures["rnx __complete jobs p50 ms"]
    report.check("TAB p50", tab <= 300, "<= 300 ms")
    report.emit()


if __name__ == "__main__":
    main()
