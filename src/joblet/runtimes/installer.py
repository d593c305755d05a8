"""Installing a runtime: validate, fetch, unpack, build, verify, install.

The build is a job of the launcher (`submit_build`), so it gets the jobs'
namespaces, limits and seccomp, and its output is its log. An install runs
as a task of its own: the caller that started it may hang up (a closed
stream) and the build goes on; stopping the build job ends it. Whatever
fails, the staging directories go and nothing is installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from joblet.errors import FailedPrecondition, InvalidArgument, JobletError, NotFound
from joblet.jobs.model import Job, JobSpec, JobStatus, Upload
from joblet.jobs.uploads import write_uploads
from joblet.logs.filters import LogFilter
from joblet.runtimes.config import RuntimeConfig
from joblet.runtimes.events import InstallRun, LogTail, Outcome, progress
from joblet.runtimes.record import TREE_DIR, InstalledRuntime
from joblet.runtimes.reference import normalize
from joblet.runtimes.seams import BuildPlan
from joblet.runtimes.sources import RuntimeFileLike, check_files, digest, spec_of
from joblet.runtimes.spec import RuntimeSpec, SelfTest
from joblet.runtimes.store import RuntimeStore, Staging
from joblet.runtimes.verify import verify_tree

log = logging.getLogger(__name__)

MAX_TEST_OUTPUT = 64 * 1024


class JobRunner(Protocol):
    """What installing and testing need of the job manager."""

    async def submit(self, spec: JobSpec, scheduled_at: float = 0.0) -> Job: ...
    async def submit_build(self, plan: BuildPlan) -> Job: ...
    async def wait_final(self, job_id: str) -> Job: ...
    async def stop(self, prefix: str, caller: str) -> Job: ...
    def read_logs(self, job_id: str, log_filter: LogFilter) -> AsyncIterator[bytes]: ...


class RemoteRequest(Protocol):
    """InstallRuntimeRequest, as far as installing reads it."""

    @property
    def runtimeSpec(self) -> str: ...
    @property
    def repository(self) -> str: ...
    @property
    def branch(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def forceReinstall(self) -> bool: ...


@dataclass(frozen=True)
class TestResult:
    ran: bool
    exit_code: int = 0
    output: str = ""
    error: str = ""  # why it did not run, or did not end by itself
    job_id: str = ""

    @property
    def success(self) -> bool:
        return self.ran and not self.error and self.exit_code == 0


class InstallFailed(Exception):
    """A step failed after the install started; the message says which and why."""


class Installer:
    def __init__(
        self, store: RuntimeStore, jobs: JobRunner, config: RuntimeConfig, max_upload_bytes: int
    ) -> None:
        self._store = store
        self._jobs = jobs
        self._config = config
        self._max_upload = max_upload_bytes
        self._tasks: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        """Daemon shutdown: running installs end (their staging is removed)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    # --- starting ---------------------------------------------------------------------

    def start_local(
        self, requested: str, files: Sequence[RuntimeFileLike], force: bool
    ) -> InstallRun:
        """Check the request and claim the name now (errors reach the caller as
        its status), then build in the background."""
        uploads = check_files(files, self._max_upload)
        spec, text = spec_of(uploads, requested)
        self._check_network(spec)
        stack = contextlib.ExitStack()
        staging = stack.enter_context(self._store.begin_build(spec.name, force))
        run = InstallRun(spec.name)
        run.emit(progress("validate", f"runtime.yml of {spec.name} is valid"))
        task = asyncio.create_task(
            self._install(run, stack, staging, spec, text=text, uploads=uploads),
            name=f"install-{spec.name}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return run

    def start_remote(self, request: RemoteRequest) -> InstallRun:
        """An install from a repository or URL: the daemon only downloads."""
        if not request.repository:
            raise InvalidArgument("repository is empty: give owner/repo or an http(s) URL")
        if request.runtimeSpec:
            normalize(request.runtimeSpec)
        raise FailedPrecondition(
            "installing from a remote source is not available on this daemon yet:"
            " install from local files"
        )

    def _check_network(self, spec: RuntimeSpec) -> None:
        network = spec.build.network
        if network != "none" and network not in self._config.build.networks:
            raise FailedPrecondition(
                f"build network {network!r} is not allowed here (runtime.build.networks)"
            )

    # --- the steps --------------------------------------------------------------------

    async def _install(
        self,
        run: InstallRun,
        stack: contextlib.ExitStack,
        staging: Staging,
        spec: RuntimeSpec,
        *,
        text: str,
        uploads: Sequence[Upload],
    ) -> None:
        tail = LogTail()
        with stack:
            try:
                size = sum(len(u.content) for u in uploads)
                await asyncio.to_thread(write_uploads, staging.src, uploads)
                run.emit(progress("fetch", f"{len(uploads)} local file(s)", size, size))
                run.emit(progress("unpack", "nothing to unpack (local files)"))
                await self._build(run, staging, spec, tail)
                verified = await asyncio.to_thread(
                    verify_tree, staging.tree, self._config.max_size_bytes
                )
                run.emit(
                    progress("verify", f"{verified.files} file(s), {verified.size_bytes:,} bytes")
                )
                record = InstalledRuntime(
                    spec=spec, spec_text=text, build_id=uuid.uuid4().hex, source="local",
                    sha256=digest(uploads), size_bytes=verified.size_bytes,
                    packages=verified.packages or spec.packages,
                    installed_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    build_job_id=run.build_job_id,
                )  # fmt: skip
                await self._commit(run, staging, record)
            except (JobletError, InstallFailed, OSError) as exc:
                run.emit(self._failure(run, exc, tail))
            except asyncio.CancelledError:
                run.emit(Outcome(False, run.name, "the daemon is shutting down", run.build_job_id))
                raise
            except Exception as exc:  # the caller gets an answer whatever broke
                log.exception("installing runtime %s failed", run.name)
                run.emit(self._failure(run, exc, tail))

    async def _build(
        self, run: InstallRun, staging: Staging, spec: RuntimeSpec, tail: LogTail
    ) -> None:
        defaults = self._config.build
        plan = BuildPlan(
            runtime_name=spec.name,
            source_dir=str(staging.src),
            staging_dir=str(staging.tree),
            script=spec.build.script,
            timeout_s=spec.build.timeout_s or defaults.timeout_s,
            max_memory_mb=spec.build.max_memory_mb or defaults.max_memory_mb,
            max_cpu=defaults.max_cpu,
            network=spec.build.network,
            scratch_bytes=defaults.scratch_bytes,
        )
        job = await self._jobs.submit_build(plan)
        run.build_job_id = job.id
        self._store.set_build_job(spec.name, job.id)
        run.emit(progress("build", f"running {spec.build.script} as job {job.id}"))
        async for chunk in self._jobs.read_logs(job.id, LogFilter()):
            tail.add(chunk)
            run.emit_log(chunk)
        final = await self._jobs.wait_final(job.id)
        if final.status is not JobStatus.COMPLETED:
            reason = final.end_reason or f"exit code {final.exit_code}"
            raise InstallFailed(f"the build job {job.id} ended {final.status} ({reason})")

    async def _commit(self, run: InstallRun, staging: Staging, record: InstalledRuntime) -> None:
        reference = await asyncio.to_thread(self._store.stage, staging, record)
        try:
            result = await self.run_test(reference, record.spec.test)
        except BaseException:
            self._store.discard(record)
            raise
        if not result.success:
            self._store.discard(record)
            why = result.error or f"exit code {result.exit_code}"
            output = "\n".join(result.output.splitlines()[-20:])
            raise InstallFailed(
                f"the runtime's test failed ({why}) in job {result.job_id}:\n{output}"
            )
        self._store.activate(record)
        path = self._store.root / record.name / record.build_id / TREE_DIR
        run.emit(progress("install", f"{record.name} is installed"))
        run.emit(
            Outcome(True, record.name, f"runtime {record.name} installed", run.build_job_id,
                    str(path), record.size_bytes)
        )  # fmt: skip

    def _failure(self, run: InstallRun, exc: BaseException, tail: LogTail) -> Outcome:
        lines = tail.lines()
        message = str(exc) or type(exc).__name__
        if lines:
            message += "\nlast lines of the build log:\n" + "\n".join(lines)
        return Outcome(False, run.name, message, run.build_job_id)

    # --- testing ----------------------------------------------------------------------

    async def test_installed(self, name: str) -> TestResult:
        record = self._store.get(name)
        if record is None:
            raise NotFound(f"runtime {name} is not installed")
        return await self.run_test(name, record.spec.test)

    async def run_test(self, reference: str, test: SelfTest) -> TestResult:
        """Run the spec's test in a plain job on the runtime; its output (cut at
        64 KiB) and exit code. A test over its timeout is stopped."""
        spec = JobSpec(command=test.command, args=test.args, name="runtime-test", runtime=reference)
        try:
            job = await self._jobs.submit(spec)
        except (NotFound, FailedPrecondition):
            raise
        except JobletError as exc:
            return TestResult(False, error=f"the test job did not start: {exc}")
        timeout = test.timeout_s or self._config.test_timeout_s
        output = bytearray()
        error = ""
        try:
            async with asyncio.timeout(timeout):
                async for chunk in self._jobs.read_logs(job.id, LogFilter()):
                    output += chunk[: MAX_TEST_OUTPUT - len(output)]
                final = await self._jobs.wait_final(job.id)
        except TimeoutError:
            error = f"the test did not end within {timeout:g}s: stopped"
            with contextlib.suppress(JobletError):
                await self._jobs.stop(job.id, "runtime test timeout")
            final = await self._jobs.wait_final(job.id)
        if final.status is JobStatus.FAILED and not error and final.exit_code == 0:
            error = f"the test job failed: {final.end_reason}"
        text = output.decode("utf-8", "replace")
        return TestResult(True, final.exit_code, text, error, job.id)
