"""The UI's calls made from the services' descriptors."""

from __future__ import annotations

import grpc
import pytest

from joblet.api import joblet_pb2 as pb
from joblet.ui.stubs import ServiceStub


async def test_each_call_has_the_kind_and_messages_of_its_method() -> None:
    channel = grpc.aio.insecure_channel("127.0.0.1:9")  # never dialled: no call is made
    try:
        jobs = ServiceStub(channel, "JobService")
        assert isinstance(jobs.GetJobStatus, grpc.aio.UnaryUnaryMultiCallable)
        assert isinstance(jobs.GetJobLogs, grpc.aio.UnaryStreamMultiCallable)
        assert isinstance(jobs.UploadFiles, grpc.aio.StreamUnaryMultiCallable)
        assert jobs.GetJobStatus is jobs.GetJobStatus  # made once
        monitoring = ServiceStub(channel, "MonitoringService")
        assert isinstance(monitoring.StreamSystemMetrics, grpc.aio.UnaryStreamMultiCallable)
        with pytest.raises(AttributeError):
            _ = jobs.NoSuchCall
        with pytest.raises(grpc.aio.AioRpcError):  # and a call goes out on the wire
            await jobs.GetJobStatus(pb.GetJobStatusReq(uuid="x"), timeout=0.5)
    finally:
        await channel.close()
