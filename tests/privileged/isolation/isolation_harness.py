"""A helper that runs jobs through a real launcher and reads their logs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from joblet.config.model import DEFAULT_ALLOWED_MOUNTS
from joblet.isolation.client import LauncherClient
from joblet.isolation.spec import JobExit, LaunchSpec
from joblet.logs.format import LogRecord, Stream, decode_records

ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/work", "JOB_MARK": "yes"}


@dataclass
class Result:
    exit: JobExit
    records: list[LogRecord]

    @property
    def stdout(self) -> str:
        return b"".join(r.data for r in self.records if r.stream is Stream.STDOUT).decode()

    @property
    def stderr(self) -> str:
        return b"".join(r.data for r in self.records if r.stream is Stream.STDERR).decode()


@dataclass
class Harness:
    base: Path
    socket: str
    client: LauncherClient
    exits: dict[str, asyncio.Future[JobExit]] = field(default_factory=dict)

    def spec(self, argv: list[str], **changes: Any) -> LaunchSpec:
        job_id = str(uuid.uuid4())
        job_dir = self.base / "jobs" / job_id
        (job_dir / "work").mkdir(parents=True)
        spec = LaunchSpec(
            job_id=job_id,
            argv=tuple(argv),
            env=dict(ENV),
            hostname=f"job-{job_id[:8]}",
            job_dir=str(job_dir),
            workspace=str(job_dir / "work"),
            log_path=str(job_dir / "output.log"),
            cgroup_procs=(),
            allowed_mounts=DEFAULT_ALLOWED_MOUNTS,
        )
        return replace(spec, **changes)

    def _on_exit(self, exit_: JobExit) -> None:
        future = self.exits.get(exit_.job_id)
        if future is not None and not future.done():
            future.set_result(exit_)

    async def start(self, spec: LaunchSpec) -> int:
        self.exits[spec.job_id] = asyncio.get_running_loop().create_future()
        return await self.client.launch(spec)

    async def wait(self, spec: LaunchSpec, timeout: float = 60.0) -> Result:
        # Only a bound for a hung job: a loaded host may start jobs slowly.
        exit_ = await asyncio.wait_for(self.exits[spec.job_id], timeout)
        records, _ = decode_records(Path(spec.log_path).read_bytes())
        return Result(exit_, records)

    async def run(self, argv: list[str], **changes: Any) -> Result:
        spec = self.spec(argv, **changes)
        await self.start(spec)
        return await self.wait(spec)


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


# A job that waits for the test: it runs until `release(spec)`, however slow the host.
UNTIL_RELEASED = "until [ -e /work/release ]; do sleep 0.02; done"


def release(spec: LaunchSpec) -> None:
    Path(spec.workspace, "release").touch()


async def eventually(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll `check` until it holds or `timeout` passed; its last answer."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True
