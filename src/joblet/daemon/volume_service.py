"""VolumeService: create, list and remove the node's volumes.

Viewers may only list; the auth interceptor enforces that by method name.
"""

from __future__ import annotations

from typing import Any

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.daemon.errors import unary
from joblet.volumes.manager import VolumeManager
from joblet.volumes.model import VolumeInfo

Context = Any  # grpc.aio.ServicerContext


def volume_message(info: VolumeInfo, job_count: int) -> pb.Volume:
    """An unavailable volume (a broken image) shows its reason as its path:
    v1.0.9's Volume has no status field, and the path is the one an operator reads."""
    record = info.record
    return pb.Volume(
        name=record.name,
        size=record.size,
        type=str(record.type),
        path=f"unavailable: {info.error}" if info.error else info.path,
        createdTime=record.created,
        jobCount=job_count,
    )


class VolumeService(pb_grpc.VolumeServiceServicer):
    def __init__(self, volumes: VolumeManager) -> None:
        self._volumes = volumes

    @unary
    async def CreateVolume(
        self, request: pb.CreateVolumeReq, context: Context
    ) -> pb.CreateVolumeRes:
        info = await self._volumes.create(request.name, request.size, request.type)
        record = info.record
        return pb.CreateVolumeRes(
            name=record.name, size=record.size, type=str(record.type), path=info.path
        )

    @unary
    async def ListVolumes(self, request: pb.EmptyRequest, context: Context) -> pb.Volumes:
        return pb.Volumes(volumes=[volume_message(i, n) for i, n in self._volumes.list()])

    @unary
    async def RemoveVolume(
        self, request: pb.RemoveVolumeReq, context: Context
    ) -> pb.RemoveVolumeRes:
        await self._volumes.remove(request.name)
        return pb.RemoveVolumeRes(success=True, message=f"volume {request.name} removed")
