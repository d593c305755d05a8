"""`joblet serve` with a small runtime resolver over a directory, for tests.

Run as `python -m integration.runtime_daemon serve --config FILE` with
JOBLET_TEST_RUNTIMES=DIR (and tests/ on PYTHONPATH). DIR/NAME/runtime.json
describes a runtime: {"build_id", "tree", "mounts": [[src, dst]],
"environment": [[key, value]], "refuse": "why"}. Every acquire, reacquire
and release is appended to DIR/events.log. A build plan written as
DIR/builds/X.plan.json is handed to JobManager.submit_build; the build's job
id is written to X.job (or the error to X.error), and its final status to
X.final once it ends (through wait_final).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from joblet.errors import FailedPrecondition, JobletError, NotFound
from joblet.runtimes.seams import BuildPlan, RuntimeMount

ENV_DIR = "JOBLET_TEST_RUNTIMES"


class DirResolver:
    def __init__(self, top: Path) -> None:
        self.top = top

    def _log(self, line: str) -> None:
        with (self.top / "events.log").open("a") as f:
            f.write(line + "\n")

    def _load(self, name: str) -> dict[str, Any]:
        path = self.top / name / "runtime.json"
        if "/" in name or not path.is_file():
            raise NotFound(f"runtime {name!r} is not installed")
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def _mount(self, name: str, data: dict[str, Any]) -> RuntimeMount:
        return RuntimeMount(
            name=name,
            build_id=data["build_id"],
            tree=data["tree"],
            extra_mounts=tuple(tuple(m) for m in data.get("mounts", ())),  # type: ignore[misc]
            environment=tuple(tuple(e) for e in data.get("environment", ())),  # type: ignore[misc]
        )

    def acquire(self, reference: str, job_id: str) -> RuntimeMount:
        data = self._load(reference)
        if data.get("refuse"):
            raise FailedPrecondition(data["refuse"])
        self._log(f"acquire {job_id} {reference} {data['build_id']}")
        return self._mount(reference, data)

    def reacquire(self, name: str, build_id: str, job_id: str) -> RuntimeMount:
        data = self._load(name)
        if data["build_id"] != build_id:
            raise NotFound(f"build {build_id} of {name} is gone")
        self._log(f"reacquire {job_id} {name} {build_id}")
        return self._mount(name, data)

    def release(self, job_id: str) -> None:
        self._log(f"release {job_id}")


async def _watch_builds(manager: Any, top: Path) -> None:
    builds = top / "builds"
    builds.mkdir(exist_ok=True)
    seen: set[str] = set()
    while True:
        for plan_file in sorted(builds.glob("*.plan.json")):
            if plan_file.name in seen:
                continue
            seen.add(plan_file.name)
            stem = plan_file.name.removesuffix(".plan.json")
            if (builds / f"{stem}.job").exists():
                continue  # submitted by this daemon before a restart
            try:
                job = await manager.submit_build(BuildPlan(**json.loads(plan_file.read_text())))
            except JobletError as exc:
                (builds / f"{stem}.error").write_text(f"{exc.code.name}: {exc}")
                continue
            except Exception as exc:  # said to the test, never the end of this watch
                (builds / f"{stem}.error").write_text(f"{type(exc).__name__}: {exc}")
                continue
            (builds / f"{stem}.job").write_text(job.id)
            asyncio.get_running_loop().create_task(_record_final(manager, job.id, builds / stem))
        await asyncio.sleep(0.05)


async def _record_final(manager: Any, job_id: str, stem: Path) -> None:
    job = await manager.wait_final(job_id)
    Path(f"{stem}.final").write_text(f"{job.status} {job.end_reason}")


def main() -> int:
    top = Path(os.environ[ENV_DIR])
    resolver = DirResolver(top)
    from joblet.daemon import server

    base = server.JobManager
    tasks: list[asyncio.Task[None]] = []

    class TestManager(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["runtimes"] = resolver
            super().__init__(*args, **kwargs)
            tasks.append(asyncio.get_running_loop().create_task(_watch_builds(self, top)))

    server.JobManager = TestManager  # type: ignore[misc]
    from joblet.daemon.main import main as daemon_main

    return daemon_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
