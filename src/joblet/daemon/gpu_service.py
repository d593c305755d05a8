"""GpuService: the node's GPUs and the jobs holding them (open to viewers)."""

from __future__ import annotations

from typing import Any

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.daemon.errors import unary
from joblet.gpu.allocator import GpuAllocator
from joblet.gpu.model import Gpu

Context = Any  # grpc.aio.ServicerContext


def gpu_info(gpu: Gpu, allocator: GpuAllocator) -> pb.GpuInfo:
    holders = allocator.table.holders(gpu.index)
    grants = allocator.table.grants()
    return pb.GpuInfo(
        index=gpu.index,
        uuid=gpu.uuid,
        name=gpu.name,
        memoryMb=gpu.memory_mb,
        minor=gpu.minor,
        busId=gpu.bus_id,
        computeCapability=gpu.compute_capability,
        numaNode=gpu.numa_node,
        mig=gpu.mig,
        jobUuids=list(holders),
        reservedMb=sum(grants[job].memory_mb for job in holders),
    )


def list_gpus(allocator: GpuAllocator) -> pb.ListGpusResponse:
    host, config = allocator.host, allocator.config
    return pb.ListGpusResponse(
        gpus=[gpu_info(gpu, allocator) for gpu in host.gpus],
        inventory=host.source,
        driverVersion=host.driver_version,
        strategy=config.strategy,
        sharing=config.sharing,
        deviceFilter=allocator.device_filter,
    )


class GpuService(pb_grpc.GpuServiceServicer):
    def __init__(self, allocator: GpuAllocator) -> None:
        self._allocator = allocator

    @unary
    async def ListGpus(self, request: pb.ListGpusRequest, context: Context) -> pb.ListGpusResponse:
        return list_gpus(self._allocator)
