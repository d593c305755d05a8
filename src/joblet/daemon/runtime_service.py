"""RuntimeService: install, list, test, validate and remove runtimes.

Viewers may list, read and validate; the auth interceptor enforces that by
method name. Each name is checked against the reference grammar before it
touches anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.daemon.errors import streaming, unary
from joblet.errors import InvalidArgument
from joblet.runtimes.events import STEPS, Event, LogData, Outcome, Progress
from joblet.runtimes.installer import Installer
from joblet.runtimes.record import InstalledRuntime
from joblet.runtimes.reference import normalize, parse_reference
from joblet.runtimes.spec import SpecError, parse_spec
from joblet.runtimes.store import RuntimeStore

Context = Any  # grpc.aio.ServicerContext


def runtime_info(record: InstalledRuntime, available: bool) -> pb.RuntimeInfo:
    spec = record.spec
    return pb.RuntimeInfo(
        name=spec.name,
        language=spec.language,
        version=spec.version,
        description=spec.description,
        sizeBytes=record.size_bytes,
        packages=list(record.packages),
        available=available,
        requirements=pb.RuntimeRequirements(architectures=list(spec.architectures), gpu=spec.gpu),
    )


def chunk(event: Event) -> pb.RuntimeInstallationChunk:
    if isinstance(event, Progress):
        return pb.RuntimeInstallationChunk(
            progress=pb.RuntimeInstallationProgress(
                message=event.message, step=event.step, total_steps=len(STEPS),
                bytes_done=event.bytes_done, bytes_total=event.bytes_total,
                build_job_uuid=event.job_id,
            )
        )  # fmt: skip
    if isinstance(event, LogData):
        return pb.RuntimeInstallationChunk(log=pb.RuntimeInstallationLog(data=event.data))
    return pb.RuntimeInstallationChunk(
        result=pb.RuntimeInstallationResult(
            success=event.success, message=event.message, runtime_spec=event.name,
            install_path=event.install_path, build_job_uuid=event.build_job_id,
            size_bytes=event.size_bytes,
        )
    )  # fmt: skip


def install_response(
    outcome: Outcome, repository: str = "", path: str = ""
) -> pb.InstallRuntimeResponse:
    return pb.InstallRuntimeResponse(
        buildJobUuid=outcome.build_job_id,
        runtimeSpec=outcome.name,
        status="installed" if outcome.success else "failed",
        message=outcome.message,
        repository=repository,
        resolvedPath=path.strip("/") or ".",
    )


def validate(text: str) -> pb.ValidateRuntimeSpecResponse:
    """A reference (no whitespace) or a whole runtime.yml."""
    if text.strip() and not any(c.isspace() for c in text.strip()):
        try:
            ref = parse_reference(text.strip())
        except InvalidArgument as exc:
            return pb.ValidateRuntimeSpecResponse(valid=False, message=str(exc))
        info = pb.RuntimeSpecInfo(
            language=ref.language, version=ref.version, variants=list(ref.variants),
            architecture=ref.architecture,
        )  # fmt: skip
        return pb.ValidateRuntimeSpecResponse(
            valid=True, message="valid reference", normalizedSpec=ref.name, specInfo=info
        )
    try:
        spec = parse_spec(text)
    except SpecError as exc:
        return pb.ValidateRuntimeSpecResponse(valid=False, message=str(exc))
    variants = parse_reference(spec.name).variants
    info = pb.RuntimeSpecInfo(
        language=spec.language, version=spec.version, variants=list(variants),
        architecture=",".join(spec.architectures),
    )  # fmt: skip
    return pb.ValidateRuntimeSpecResponse(
        valid=True, message="valid runtime.yml", normalizedSpec=spec.name, specInfo=info
    )


class RuntimeService(pb_grpc.RuntimeServiceServicer):
    def __init__(self, store: RuntimeStore, installer: Installer) -> None:
        self._store = store
        self._installer = installer

    @unary
    async def ListRuntimes(self, request: pb.EmptyRequest, context: Context) -> pb.RuntimesRes:
        store = self._store
        return pb.RuntimesRes(
            runtimes=[runtime_info(r, store.available(r)) for r in store.installed()]
        )

    @unary
    async def GetRuntimeInfo(
        self, request: pb.RuntimeInfoReq, context: Context
    ) -> pb.RuntimeInfoRes:
        record = self._store.get(normalize(request.runtime))
        if record is None:
            return pb.RuntimeInfoRes(found=False)
        return pb.RuntimeInfoRes(
            runtime=runtime_info(record, self._store.available(record)), found=True
        )

    @unary
    async def TestRuntime(self, request: pb.RuntimeTestReq, context: Context) -> pb.RuntimeTestRes:
        result = await self._installer.test_installed(normalize(request.runtime))
        return pb.RuntimeTestRes(
            success=result.success, output=result.output, error=result.error,
            exitCode=result.exit_code,
        )  # fmt: skip

    @unary
    async def InstallRuntimeFromLocal(
        self, request: pb.InstallRuntimeFromLocalRequest, context: Context
    ) -> pb.InstallRuntimeResponse:
        run = self._installer.start_local(
            request.runtimeSpec, request.files, request.forceReinstall
        )
        return install_response(await run.wait())

    @streaming
    async def StreamingInstallRuntimeFromLocal(
        self, request: pb.InstallRuntimeFromLocalRequest, context: Context
    ) -> AsyncIterator[pb.RuntimeInstallationChunk]:
        run = self._installer.start_local(
            request.runtimeSpec, request.files, request.forceReinstall
        )
        async for event in run.events():
            yield chunk(event)

    @unary
    async def InstallRuntimeFromGithub(
        self, request: pb.InstallRuntimeRequest, context: Context
    ) -> pb.InstallRuntimeResponse:
        run = self._installer.start_remote(request)
        return install_response(await run.wait(), request.repository, request.path)

    @streaming
    async def StreamingInstallRuntimeFromGithub(
        self, request: pb.InstallRuntimeRequest, context: Context
    ) -> AsyncIterator[pb.RuntimeInstallationChunk]:
        run = self._installer.start_remote(request)
        async for event in run.events():
            yield chunk(event)

    @unary
    async def ValidateRuntimeSpec(
        self, request: pb.ValidateRuntimeSpecRequest, context: Context
    ) -> pb.ValidateRuntimeSpecResponse:
        return validate(request.runtimeSpec)

    @unary
    async def RemoveRuntime(
        self, request: pb.RuntimeRemoveReq, context: Context
    ) -> pb.RuntimeRemoveRes:
        name = normalize(request.runtime)
        freed = await asyncio.to_thread(self._store.remove, name)
        return pb.RuntimeRemoveRes(
            success=True, message=f"runtime {name} removed", freedSpaceBytes=freed
        )
