"""`rnx --node all list` over three nodes of 10,000 jobs each: wall time of
the whole command as a user runs it (a fresh process, mTLS to each node,
the three asked at once, their newest 100 merged into one table).

    .venv/bin/python bench/nodes_list.py [--quick]

Three real daemons, each with 10,000 jobs (--quick: 1,000) scheduled an hour
ahead (real records the daemons list but none runs). Timed, median of 15
runs (--quick: 5), alternated: `rnx --node all list`, `rnx --node all list
--json`, `rnx --node all list -q --all` (every job of every node), and
baselines from the same run: `rnx --node a list` (one node, the same
listing) and `rnx --help` (rnx's start, no call).
Target: rnx --node all list <= 500 ms at p50.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml
from common import Daemon, Report, parse_args, require_root, start_daemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

NAMES = ("a", "b", "c")
CALLERS = 20


async def submit(daemon: Daemon, total: int) -> None:
    left = [total]

    async def caller(stub: pb_grpc.JobServiceStub) -> None:
        while left[0] > 0:
            left[0] -= 1
            await stub.RunJob(pb.RunJobRequest(command="true", args=["x"], schedule="1h"))

    async with daemon.aio_channel() as channel:
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        await asyncio.gather(*(caller(stub) for _ in range(CALLERS)))


async def submit_all(daemons: dict[str, Daemon], total: int) -> None:
    await asyncio.gather(*(submit(d, total) for d in daemons.values()))


@contextlib.contextmanager
def three_daemons() -> Iterator[dict[str, Daemon]]:
    """Three daemons in the benchmark's namespace, each with network ranges
    of its own; everything removed after."""
    require_root()
    tmp = Path(tempfile.mkdtemp(prefix="joblet-bench-"))
    daemons: dict[str, Daemon] = {}
    try:
        for n, name in enumerate(NAMES):
            ranges = {"bridgeCidr": f"10.21{n}.0.0/24", "isolatedPool": f"10.22{n}.0.0/24"}
            daemons[name] = start_daemon(tmp / name, sections={"network": ranges})
        yield daemons
    finally:
        for daemon in daemons.values():
            daemon.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def many_config(daemons: dict[str, Daemon], path: Path) -> Path:
    nodes = {
        name: yaml.safe_load(d.rnx_config.read_text())["nodes"]["default"]
        for name, d in daemons.items()
    }
    path.write_text(yaml.safe_dump({"nodes": nodes}))
    path.chmod(0o600)
    return path


def wall(argv: list[str]) -> float:
    import time

    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    args = parse_args(__doc__ or "")
    jobs, runs = (1_000, 5) if args.quick else (10_000, 15)
    report = Report("nodes_list", args.quick)
    with three_daemons() as daemons:
        asyncio.run(submit_all(daemons, jobs))
        config = many_config(daemons, daemons["a"].root.parent.parent / "rnx-many.yml")
        rnx = [*daemons["a"].rnx_argv()[:1], "--config", str(config)]
        commands = {
            "rnx --node all list": [*rnx, "--node", "all", "list"],
            "rnx --node all list --json": [*rnx, "--node", "all", "list", "--json"],
            "rnx --node all list -q --all": [*rnx, "--node", "all", "list", "-q", "--all"],
            "one node: rnx --node a list": [*rnx, "--node", "a", "list"],
            "rnx --help": [*rnx, "--help"],
        }
        listed = subprocess.run(
            commands["rnx --node all list -q --all"], capture_output=True, check=False
        )
        assert listed.returncode == 0, listed.stderr
        assert len(listed.stdout.splitlines()) == 3 * jobs, "every job of every node"
        table = subprocess.run(commands["rnx --node all list"], capture_output=True, check=True)
        assert len(table.stdout.splitlines()) == 101, "the newest 100 of all three, a header"
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, argv in commands.items():
                samples[name].append(wall(argv))
    for name, values in samples.items():
        value = statistics.median(values) * 1000
        if name.startswith("rnx --node all"):
            report.figures[f"{name} p50 ms"] = value
        else:
            report.baselines[f"{name} p50 ms"] = value
    report.notes.append(f"3 nodes x {jobs} jobs, median of {runs} runs each, alternated")
    figure = report.figures["rnx --node all list p50 ms"]
    report.check("rnx --node all list p50", figure <= 500, "<= 500 ms")
    report.emit()


if __name__ == "__main__":
    main()
