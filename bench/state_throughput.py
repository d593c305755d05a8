"""state: job event write throughput per backend (events/s).

    .venv/bin/python bench/state_throughput.py [--quick]

For each backend (memory, sqlite, redis via a local redis-server, dynamodb via
a local moto_server; the last two skipped with a note when absent), two rates:

- direct: `await backend.put(...)` one after another in this process;
- via helper: a `StateClient` in this process puts N job events (a realistic
  ~700-byte record each, 50 jobs updated in turn) into a `python -m
  joblet.state` child running that backend; the clock runs from the first put
  to the last acknowledgement (`flush`).

The memory backend is the baseline: its rate is the cost of the IPC and the
helper alone.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from common import Report, parse_args

from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.state.backends import open_backend
from joblet.state.client import StateClient
from joblet.state.config import parse_state_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(400):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


@contextmanager
def server(argv: list[str], port: int) -> Iterator[None]:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def sample_job(i: int) -> Job:
    spec = JobSpec(
        command="python3",
        args=("-c", "import time; time.sleep(1)"),
        name=f"job-{i % 50}",
        max_memory_mb=512,
        environment={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "N": str(i)},
    )
    status = JobStatus.COMPLETED if i % 2 else JobStatus.RUNNING
    return Job(
        id=f"job-{i % 50:04d}",
        spec=spec,
        status=status,
        node_id="bench",
        created_at=1.7e9 + i,
        started_at=1.7e9 + i + 0.01,
        ended_at=1.7e9 + i + 1.0,
        exit_code=i % 3,
        end_reason="exit code 0",
        pid=10_000 + i,
    )


async def direct_rate(state_section: dict[str, Any], root: Path, count: int) -> float:
    config = parse_state_config({"joblet": {"root": str(root)}, "state": state_section})
    backend = await open_backend(config)
    from joblet.jobs.serialization import job_to_json

    records = [(sample_job(i).id, job_to_json(sample_job(i))) for i in range(count)]
    started = time.perf_counter()
    for job_id, record in records:
        await backend.put(job_id, record)
    elapsed = time.perf_counter() - started
    await backend.close()
    return count / elapsed


async def helper_rate(state_section: dict[str, Any], root: Path, count: int) -> float:
    config_path = root / "config.yml"
    config_path.write_text(yaml.safe_dump({"joblet": {"root": str(root)}, "state": state_section}))
    sock = root / "run" / "state-ipc.sock"
    argv = [sys.executable, "-m", "joblet.state", "--config", str(config_path)]
    argv += ["--log-level", "WARNING"]
    proc = subprocess.Popen(argv)
    try:
        while not sock.exists():
            if proc.poll() is not None:
                raise RuntimeError("state helper exited")
            await asyncio.sleep(0.02)
        client = await StateClient.connect(sock, buffer_size=count + 1)
        jobs = [sample_job(i) for i in range(count)]
        started = time.perf_counter()
        for job in jobs:
            client.put(job)
        if not await client.flush(300):
            raise RuntimeError("helper did not acknowledge every event")
        elapsed = time.perf_counter() - started
        await client.close()
        return count / elapsed
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def backends(tmp: Path, report: Report) -> Iterator[tuple[str, dict[str, Any], int]]:
    """(name, state section, event count) for each backend this host can run."""
    yield "memory", {"backend": "memory"}, 20_000
    yield "sqlite", {"backend": "sqlite", "sqlite": {"path": str(tmp / "bench.db")}}, 20_000
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        report.notes.append("redis skipped: redis-server is not installed")
    else:
        port = free_port()
        argv = [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        with server([*argv, "--dir", str(tmp)], port):
            yield "redis", {"backend": "redis", "redis": {"port": port}}, 20_000
    moto = Path(sys.executable).parent / "moto_server"
    if not moto.exists():
        report.notes.append("dynamodb skipped: moto_server is not installed")
        return
    port = free_port()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    with server([str(moto), "-H", "127.0.0.1", "-p", str(port)], port):
        section = {"endpoint": f"http://127.0.0.1:{port}", "createTable": True}
        yield "dynamodb", {"backend": "dynamodb", "dynamodb": section}, 2_000


async def run(report: Report) -> None:
    scale = 4 if report.quick else 1
    with tempfile.TemporaryDirectory(prefix="state-bench-") as tmp_name:
        tmp = Path(tmp_name)
        for name, section, full_count in backends(tmp, report):
            count = full_count // scale
            root = tmp / name
            (root / "run").mkdir(parents=True)
            direct = await direct_rate(section, root, count)
            via_helper = await helper_rate(section, root, count)
            target = report.baselines if name == "memory" else report.figures
            target[f"{name} direct (events/s)"] = round(direct)
            target[f"{name} via helper (events/s)"] = round(via_helper)


def main() -> None:
    args = parse_args(__doc__ or "")
    report = Report(name="state event write throughput", quick=args.quick)
    asyncio.run(run(report))
    report.emit()


if __name__ == "__main__":
    main()
