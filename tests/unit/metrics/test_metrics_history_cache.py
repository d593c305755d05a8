"""Stored histories kept as response bytes: ranges are exact slices, new samples
keep them current, the summary reads only its fields, and the cache is bounded."""

from __future__ import annotations

import asyncio

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import persist_pb2
from joblet.errors import Unavailable
from joblet.ipc.framing import encode_varint as varint
from joblet.metrics import views
from joblet.metrics.config import MetricsConfig
from joblet.metrics.history import summary_points, summary_series
from joblet.metrics.history_cache import HistoryCache, StoredHistory
from joblet.metrics.hub import MetricsHub
from joblet.metrics.summary import point, summarize, summarize_series

S = 1_000_000_000


def sample(t: int, cpu: float = 0.0, job: str = "a") -> pb.JobMetricsSample:
    s = pb.JobMetricsSample(jobId=job, timestamp=t * S, cgroupPath="/c" * t)
    s.cpu.usagePercent = cpu
    s.memory.current = 1000 * t
    s.io.readBPS, s.io.writeBPS = float(t), 0.5
    s.io.devices["8:0"].readBytes = t
    s.network.interfaces["lo"].rxBytes = t << 20
    s.network.rxBPS = 2.0 * t
    return s


def stored_of(samples: list[pb.JobMetricsSample]) -> StoredHistory:
    return StoredHistory([s.timestamp for s in samples], [s.SerializeToString() for s in samples])


def response(samples: list[pb.JobMetricsSample]) -> bytes:
    return pb.JobMetricsHistoryResponse(samples=samples).SerializeToString()


def test_varint() -> None:
    assert [varint(n) for n in (0, 1, 127, 128, 300)] == [
        b"\x00", b"\x01", b"\x7f", b"\x80\x01", b"\xac\x02",
    ]  # fmt: skip


def test_ranges_are_the_response_protobuf_would_serialize() -> None:
    samples = [sample(t) for t in range(1, 200)]  # sizes past one varint byte
    stored = stored_of(samples)
    assert stored.response() == response(samples)
    assert stored.response(50 * S) == response(samples[49:])
    assert stored.response(0, 60 * S) == response(samples[:60])
    assert stored.response(10 * S, 10 * S) == response([samples[9]])
    assert stored.response(500 * S) == b""
    assert stored_of([]).response() == b""


def test_new_samples_are_appended_duplicates_ignored_older_ones_inserted() -> None:
    stored = stored_of([sample(2), sample(4)])
    stored.add(5 * S, sample(5).SerializeToString())
    stored.add(4 * S, sample(4, cpu=99).SerializeToString())  # held already
    stored.add(3 * S, sample(3).SerializeToString())  # a clock set back
    stored.add(1 * S, sample(1).SerializeToString())
    assert stored.response() == response([sample(t) for t in (1, 2, 3, 4, 5)])
    assert len(stored) == 5


def test_summary_view_reads_the_same_points_as_a_full_parse() -> None:
    samples = [sample(t, cpu=t % 7) for t in range(1, 50)]
    assert summary_points(response(samples)) == [point(s) for s in samples]
    assert summary_points(b"") == []


def test_summary_is_kept_until_a_sample_is_added() -> None:
    samples = [sample(t, cpu=float(t)) for t in range(1, 11)]
    stored = stored_of(samples)
    first = stored.summary(0)
    assert first == summarize(samples)
    assert stored.summary(0) is first
    assert stored.summary(3) == summarize(samples, 3)
    stored.add(11 * S, sample(11, cpu=50.0).SerializeToString())
    assert stored.summary(0) == summarize([*samples, sample(11, cpu=50.0)])
    assert stored.points()[-1] == point(sample(11, cpu=50.0))
    assert stored.summary(3) == summarize([*samples, sample(11, cpu=50.0)], 3)


def test_cache_drops_the_least_recently_used_past_its_bound() -> None:
    one = stored_of([sample(t) for t in range(1, 20)])
    cache = HistoryCache(max_bytes=int(2.5 * one.nbytes))
    for job in "abc":
        cache.put(job, stored_of([sample(t) for t in range(1, 20)]))
        if job == "b":
            assert cache.get("a") is not None  # a is now more recent than b
    assert "b" not in cache and "a" in cache and "c" in cache
    huge = HistoryCache(max_bytes=10)
    assert huge.put("a", one) is one and "a" not in huge


class CountingSource:
    def __init__(self, samples: list[pb.JobMetricsSample]) -> None:
        self.samples, self.calls = samples, 0
        self.release = asyncio.Event()
        self.release.set()

    async def history(self, job_id: str, from_ns: int, to_ns: int) -> list[pb.JobMetricsSample]:
        raise AssertionError("the hub reads timed payloads")

    async def timed_payloads(self, job_id: str) -> tuple[list[int], list[bytes]]:
        self.calls += 1
        await self.release.wait()
        chosen = [s for s in self.samples if s.jobId == job_id]
        return [s.timestamp for s in chosen], [s.SerializeToString() for s in chosen]


async def test_concurrent_first_readers_share_one_read() -> None:
    source = CountingSource([sample(t) for t in range(1, 6)])
    source.release.clear()
    async with MetricsHub(history_source=source) as hub:
        reads = [asyncio.ensure_future(hub.history_bytes("a")) for _ in range(3)]
        summary = asyncio.ensure_future(hub.summary("a", 0))
        await asyncio.sleep(0.01)
        source.release.set()
        assert set(await asyncio.gather(*reads)) == {response(source.samples)}
        assert (await summary) == summarize(source.samples)
        assert source.calls == 1


async def test_a_failed_read_is_not_kept() -> None:
    class Failing(CountingSource):
        async def timed_payloads(self, job_id: str) -> tuple[list[int], list[bytes]]:
            self.calls += 1
            if self.calls == 1:
                raise Unavailable("persist: down")
            return await super().timed_payloads(job_id)

    source = Failing([sample(1)])
    async with MetricsHub(MetricsConfig(), history_source=source) as hub:
        with pytest.raises(Unavailable):
            await hub.history_bytes("a")
        assert await hub.history_bytes("a") == response([sample(1)])


def test_summary_series_counts_the_zeros_the_wire_leaves_out() -> None:
    samples = [sample(t, cpu=float(t % 3)) for t in range(1, 30)]
    for s in samples[::4]:
        s.ClearField("io")
        s.network.rxBPS = 0.0
    series = summary_series(response(samples), len(samples))
    assert summarize_series(*series) == summarize(samples)
    assert all(len(values) == len(samples) for values in series)


def test_stored_response_view_gives_two_lists() -> None:
    stored = persist_pb2.QueryMetricsResponse(
        samples=[persist_pb2.MetricSample(timestamp_ns=t, payload=b"s%d" % t) for t in (3, 1, 2)]
    )
    merged = views.StoredResponse.FromString(stored.SerializeToString()).samples
    assert list(merged.timestamp_ns) == [3, 1, 2]
    assert list(merged.payload) == [b"s3", b"s1", b"s2"]


async def test_an_empty_history_is_asked_again() -> None:
    source = CountingSource([])
    async with MetricsHub(history_source=source) as hub:
        assert await hub.history_bytes("a") == b""
        source.samples.append(sample(1))
        assert await hub.history_bytes("a") == response([sample(1)])
        assert source.calls == 2
