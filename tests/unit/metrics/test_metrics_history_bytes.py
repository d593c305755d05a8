"""History responses built from stored bytes: the encoding equals protobuf's own,
the hub answers from memory only when it holds a job's whole history, and the
raw GetJobMetricsHistory handler replaces the generated one on a real server."""

from __future__ import annotations

import grpc
import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.daemon import metrics_rpc
from joblet.errors import NotFound
from joblet.metrics.config import MetricsConfig
from joblet.metrics.history import decode_samples, encode_history
from joblet.metrics.hub import MetricsHub
from joblet.resources.interface import Limits
from joblet.resources.null import NullCgroupManager

S = 1_000_000_000


def sample(job: str, t: int) -> pb.JobMetricsSample:
    s = pb.JobMetricsSample(jobId=job, timestamp=t * S, cgroupPath="/x" * t)
    s.network.interfaces["lo"].rxBytes = t << 20
    return s


def test_encoding_is_the_response_protobuf_would_serialize() -> None:
    samples = [sample("a", t) for t in range(1, 300)]  # lengths past one varint byte
    payloads = [s.SerializeToString() for s in samples]
    assert (
        encode_history(payloads)
        == pb.JobMetricsHistoryResponse(samples=samples).SerializeToString()
    )
    assert decode_samples(payloads) == samples
    assert encode_history([]) == b""


class PayloadHistory:
    def __init__(self, samples: list[pb.JobMetricsSample]) -> None:
        self.samples, self.calls = samples, 0

    async def history(self, job_id: str, from_ns: int, to_ns: int) -> list[pb.JobMetricsSample]:
        return decode_samples(await self.payloads(job_id, from_ns, to_ns))

    async def payloads(self, job_id: str, from_ns: int, to_ns: int) -> list[bytes]:
        self.calls += 1
        return [s.SerializeToString() for s in self.samples if s.jobId == job_id]


async def test_memory_answers_only_for_a_job_it_sampled_from_the_start() -> None:
    stored = PayloadHistory([sample("old", 1), sample("old", 2), sample("new", 9)])
    group = NullCgroupManager("t").create("new", Limits())
    async with MetricsHub(MetricsConfig(history_samples=3), history_source=stored) as hub:
        hub.start_job("new", group, Limits(), from_start=True)
        hub.start_job(
            "old", NullCgroupManager("t").create("old", Limits()), Limits()
        )  # re-attached
        for t in (3, 4):
            hub.publish(sample("old", t))
            hub.publish(sample("new", t))
        assert [s.timestamp // S for s in await hub.history("new")] == [3, 4]
        assert [s.timestamp // S for s in await hub.history("new", 4 * S)] == [4]
        assert stored.calls == 0
        # The source's samples, then those published since (not stored yet here).
        assert [s.timestamp // S for s in await hub.history("old")] == [1, 2, 3, 4]
        assert stored.calls == 1
        hub.publish(sample("old", 5))  # kept current without reading again
        assert [s.timestamp // S for s in await hub.history("old", 2 * S, 5 * S)] == [2, 3, 4, 5]
        assert stored.calls == 1
        for t in (5, 6):  # the ring (3 samples) overflows: memory no longer has it all
            hub.publish(sample("new", t))
        assert [s.timestamp // S for s in await hub.history("new")] == [4, 5, 6, 9]
        assert len(await hub.summary_points("new")) == 4
        await hub.finish_job("new")
        await hub.finish_job("old")


async def test_raw_handler_replaces_only_the_history_method() -> None:
    class Service(pb_grpc.JobServiceServicer):
        async def GetJobStatus(
            self, request: pb.GetJobStatusReq, context: object
        ) -> pb.GetJobStatusRes:
            return pb.GetJobStatusRes(uuid="from-servicer")

    def resolve(uuid: str) -> tuple[str, bool]:
        if uuid != "a":
            raise NotFound(f"job {uuid} not found")
        return uuid, False

    async with MetricsHub() as hub:
        for t in (1, 2, 3):
            hub.publish(sample("a", t))
        server = grpc.aio.server()
        pb_grpc.add_JobServiceServicer_to_server(Service(), server)  # type: ignore[no-untyped-call]
        metrics_rpc.install_raw_history(server, resolve, hub)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
                res = await stub.GetJobMetricsHistory(
                    pb.JobMetricsHistoryRequest(uuid="a", fromTimestamp=2)
                )
                assert list(res.samples) == [sample("a", 2), sample("a", 3)]
                status = await stub.GetJobStatus(pb.GetJobStatusReq(uuid="a"))
                assert status.uuid == "from-servicer"
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.GetJobMetricsHistory(pb.JobMetricsHistoryRequest(uuid="zz"))
                assert caught.value.code() == grpc.StatusCode.NOT_FOUND
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.GetJobMetricsHistory(
                        pb.JobMetricsHistoryRequest(uuid="a", fromTimestamp=5, toTimestamp=1)
                    )
                assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        finally:
            await server.stop(None)
