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
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from joblet.errors import FailedPrecondition, InvalidArgument, JobletError, NotFound
from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.jobs.uploads import write_uploads
from joblet.logs.filters import LogFilter
from joblet.runtimes.config import RuntimeConfig
from joblet.runtimes.events import ByteThrottle, InstallRun, LogTail, Outcome, progress
from joblet.runtimes.fetch import Fetched, FetchLimits, fetch_async
from joblet.runtimes.record import TREE_DIR, InstalledRuntime
from joblet.runtimes.reference import normalize
from joblet.runtimes.remote import RemoteSource, check_sha256, parse_source, require_allowed
from joblet.runtimes.remote_install import (
    check_subpath,
    is_regular_file,
    prepare_unpack,
    read_confined,
    unpack_caps,
    unpack_plan,
)
from joblet.runtimes.seams import BuildPlan
from joblet.runtimes.sources import SPEC_FILE, RuntimeFileLike, check_files, digest, spec_of
from joblet.runtimes.spec import MAX_SPEC_BYTES, RuntimeSpec, SelfTest, parse_spec
from joblet.runtimes.store import RuntimeStore, Staging
from joblet.runtimes.verify import verify_tree

log = logging.getLogger(__name__)

MAX_TEST_OUTPUT = 64 * 1024
TEST_NAME_PREFIX = "runtime-test:"  # as builds are "runtime-build:NAME"


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
    @property
    def sha256(self) -> str: ...


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


@dataclass(frozen=True)
class Prepared:
    """The sources, in place for the build."""

    src: Path  # the build's /src
    spec: RuntimeSpec
    text: str
    sha256: str
    source: str  # "local", or the URL it came from


Prepare = Callable[[InstallRun, Staging, LogTail], Awaitable[Prepared]]


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

        async def prepare(run: InstallRun, staging: Staging, tail: LogTail) -> Prepared:
            size = sum(len(u.content) for u in uploads)
            await asyncio.to_thread(write_uploads, staging.src, uploads)
            run.emit(progress("fetch", f"{len(uploads)} local file(s)", size, size))
            run.emit(progress("unpack", "nothing to unpack (local files)"))
            return Prepared(staging.src, spec, text, digest(uploads), "local")

        return self._start(spec.name, force, f"runtime.yml of {spec.name} is valid", prepare)

    def start_remote(self, request: RemoteRequest) -> InstallRun:
        """An install from a repository or URL: the daemon downloads, a job unpacks."""
        if not request.runtimeSpec:
            raise InvalidArgument("runtimeSpec is empty: name the runtime to install")
        name = normalize(request.runtimeSpec)
        source = parse_source(request.repository, request.branch, self._config.github_base_url)
        require_allowed(source.url, self._config.allowed_sources)
        expected = check_sha256(request.sha256)
        subpath = check_subpath(request.path)

        async def prepare(run: InstallRun, staging: Staging, tail: LogTail) -> Prepared:
            fetched = await self._fetch(run, staging, source, expected)
            await self._unpack(run, staging, fetched.path, tail, top=source.kind == "archive")
            src = staging.src / subpath if subpath else staging.src
            text = await asyncio.to_thread(
                read_confined, staging.src, f"{subpath}/{SPEC_FILE}", MAX_SPEC_BYTES
            )
            spec = parse_spec(text.decode("utf-8", "replace"))
            if spec.name != name:
                raise InvalidArgument(
                    f"runtime {name} was asked for but {SPEC_FILE} names {spec.name}"
                )
            self._check_network(spec)
            return Prepared(src, spec, text.decode(), fetched.sha256, fetched.url)

        return self._start(name, request.forceReinstall, f"source {source.url}", prepare)

    def _start(self, name: str, force: bool, what: str, prepare: Prepare) -> InstallRun:
        stack = contextlib.ExitStack()
        staging = stack.enter_context(self._store.begin_build(name, force))
        run = InstallRun(name)
        run.emit(progress("validate", what))
        task = asyncio.create_task(
            self._install(run, stack, staging, prepare), name=f"install-{name}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return run

    def _check_network(self, spec: RuntimeSpec) -> None:
        network = spec.build.network
        if network != "none" and network not in self._config.build.networks:
            raise FailedPrecondition(
                f"build network {network!r} is not allowed here (runtime.build.networks)"
            )

    # --- the steps --------------------------------------------------------------------

    async def _install(
        self, run: InstallRun, stack: contextlib.ExitStack, staging: Staging, prepare: Prepare
    ) -> None:
        tail = LogTail()
        with stack:
            try:
                prepared = await prepare(run, staging, tail)
                await self._build(run, staging, prepared, tail)
                verified = await asyncio.to_thread(
                    verify_tree, staging.tree, self._config.max_size_bytes
                )
                run.emit(
                    progress("verify", f"{verified.files} file(s), {verified.size_bytes:,} bytes")
                )
                spec = prepared.spec
                record = InstalledRuntime(
                    spec=spec, spec_text=prepared.text, build_id=uuid.uuid4().hex,
                    source=prepared.source, sha256=prepared.sha256,
                    size_bytes=verified.size_bytes, packages=verified.packages or spec.packages,
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

    async def _fetch(
        self, run: InstallRun, staging: Staging, source: RemoteSource, expected: str
    ) -> Fetched:
        fetch_dir = staging.path / "fetch"
        fetch_dir.mkdir(mode=0o755)
        os.chmod(fetch_dir, 0o755)
        config = self._config
        limits = FetchLimits(
            config.allowed_sources, config.max_size_bytes,
            timeout_s=config.fetch_timeout_s, total_timeout_s=config.fetch_total_timeout_s,
        )  # fmt: skip

        throttle = ByteThrottle()

        def report(done: int, total: int) -> None:
            if throttle.due(done, total, time.monotonic()):
                run.emit(progress("fetch", f"downloading {source.url}", done, total))

        fetched = await fetch_async(
            source, str(fetch_dir), limits, sha256=expected, progress=report
        )
        run.emit(progress("fetch", f"{fetched.size:,} bytes from {fetched.url}", fetched.size,
                          fetched.size))  # fmt: skip
        return fetched

    async def _unpack(
        self, run: InstallRun, staging: Staging, archive_path: str, tail: LogTail, *, top: bool
    ) -> None:
        fetch_dir = Path(archive_path).parent
        caps = unpack_caps(self._config.max_size_bytes)
        await asyncio.to_thread(prepare_unpack, fetch_dir, archive_path, "/opt/runtime", caps, top)
        plan = unpack_plan(run.name, fetch_dir, staging.src, self._config.max_size_bytes)
        await self._run_build_job(run, plan, "unpack", tail)

    async def _build(
        self, run: InstallRun, staging: Staging, prepared: Prepared, tail: LogTail
    ) -> None:
        defaults = self._config.build
        spec = prepared.spec
        if not await asyncio.to_thread(is_regular_file, prepared.src, spec.build.script):
            raise InvalidArgument(f"the build script {spec.build.script!r} is not in the source")
        plan = BuildPlan(
            runtime_name=spec.name,
            source_dir=str(prepared.src),
            staging_dir=str(staging.tree),
            script=spec.build.script,
            timeout_s=spec.build.timeout_s or defaults.timeout_s,
            max_memory_mb=spec.build.max_memory_mb or defaults.max_memory_mb,
            max_cpu=defaults.max_cpu,
            network=spec.build.network,
            scratch_bytes=defaults.scratch_bytes,
        )
        await self._run_build_job(run, plan, "build", tail)

    async def _run_build_job(
        self, run: InstallRun, plan: BuildPlan, step: str, tail: LogTail
    ) -> None:
        """Run one sandboxed job of the install, its output streamed as the log."""
        job = await self._jobs.submit_build(plan)
        run.build_job_id = job.id
        self._store.set_build_job(run.name, job.id)
        run.emit(progress(step, f"running {plan.script} as job {job.id}", job_id=job.id))
        async for chunk in self._jobs.read_logs(job.id, LogFilter()):
            tail.add(chunk)
            run.emit_log(chunk)
        final = await self._jobs.wait_final(job.id)
        if final.status is not JobStatus.COMPLETED:
            reason = final.end_reason or f"exit code {final.exit_code}"
            raise InstallFailed(f"the {step} job {job.id} ended {final.status} ({reason})")

    async def _commit(self, run: InstallRun, staging: Staging, record: InstalledRuntime) -> None:
        reference = await asyncio.to_thread(self._store.stage, staging, record)
        unusable = self._store.requirement_problem(record)
        try:
            # A runtime for another architecture or a GPU is installed untested:
            # no job here could run it, and it shows as unavailable.
            result = (
                TestResult(True, error="")
                if unusable
                else await self.run_test(reference, record.name, record.spec.test)
            )
        except BaseException:
            self._store.discard(record)
            raise
        if unusable:
            run.emit(progress("install", f"test skipped: {unusable}"))
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
        return await self.run_test(name, name, record.spec.test)

    async def run_test(self, reference: str, name: str, test: SelfTest) -> TestResult:
        """Run the spec's test in a plain job on the runtime; its output (cut at
        64 KiB) and exit code. A test over its timeout is stopped."""
        spec = JobSpec(
            command=test.command, args=test.args, name=TEST_NAME_PREFIX + name, runtime=reference
        )
        try:
            job = await self._jobs.submit(spec)
        except NotFound:
            raise
        except FailedPrecondition as exc:
            return TestResult(False, error=f"the runtime cannot run here: {exc}")
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
