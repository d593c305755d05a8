"""MonitoringService: host status and a stream of host metrics.

collector = HostCollector(node_id, detect_cloud(ask_metadata=cfg.cloud_metadata))
pb_grpc.add_MonitoringServiceServicer_to_server(MonitoringService(collector), server)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.daemon.errors import streaming, unary
from joblet.errors import InvalidArgument
from joblet.metrics.host import METRIC_TYPES, HostCollector

Context = Any  # grpc.aio.ServicerContext
DEFAULT_INTERVAL_S = 5
MIN_INTERVAL_S = 1
MAX_INTERVAL_S = 3600


def stream_parameters(request: pb.StreamMetricsReq) -> tuple[int, frozenset[str]]:
    """Interval (0: the default) and metric types (none: all); raises InvalidArgument."""
    interval = request.intervalSeconds or DEFAULT_INTERVAL_S
    if not MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S:
        raise InvalidArgument(
            f"intervalSeconds must be {MIN_INTERVAL_S}..{MAX_INTERVAL_S}, not {interval}"
        )
    types = frozenset(t.strip().lower() for t in request.metricTypes if t.strip())
    unknown = types - METRIC_TYPES
    if unknown:
        raise InvalidArgument(
            f"unknown metric types {sorted(unknown)} (known: {', '.join(sorted(METRIC_TYPES))})"
        )
    return interval, types or METRIC_TYPES


class MonitoringService(pb_grpc.MonitoringServiceServicer):
    def __init__(self, collector: HostCollector) -> None:
        self._collector = collector

    @unary
    async def GetSystemStatus(
        self, request: pb.EmptyRequest, context: Context
    ) -> pb.SystemStatusRes:
        return await asyncio.to_thread(self._collector.status)

    @streaming
    async def StreamSystemMetrics(
        self, request: pb.StreamMetricsReq, context: Context
    ) -> AsyncIterator[pb.SystemMetricsRes]:
        interval, types = stream_parameters(request)
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            yield await asyncio.to_thread(self._collector.metrics, types)
            next_tick += interval
            await asyncio.sleep(max(0.0, next_tick - loop.time()))
