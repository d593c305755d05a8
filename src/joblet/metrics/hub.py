"""MetricsHub: the recent samples of every job (bounded, in memory), the live
subscribers of each job, the sink that sends samples to history, the
histories read back from there (history_cache), and the owner of the shared
tick that runs every job's JobSampler (metrics.tick).

    async with MetricsHub(config, batch_sink=persist.send_metrics) as hub:
        sampler = hub.start_job(job_id, cgroup, limits, init_pid)
        ...
        await hub.finish_job(job_id)   # final sample, subscribers see the end
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, runtime_checkable

from joblet.api import joblet_pb2 as pb
from joblet.errors import JobletError, NotFound
from joblet.gpu.metrics import GpuReader
from joblet.metrics.config import MetricsConfig
from joblet.metrics.history import decode_samples, encode_history
from joblet.metrics.history_cache import HistoryCache, StoredHistory
from joblet.metrics.sampler import JobSampler
from joblet.metrics.summary import Point, in_range, point, summarize_points
from joblet.metrics.tick import SampleTick
from joblet.resources.interface import JobCgroup, Limits

# sink(job_id, timestamp_ns, serialized JobMetricsSample); may return an awaitable.
Sink = Callable[[str, int, bytes], Awaitable[object] | object]
# batch_sink([(job_id, timestamp_ns, serialized JobMetricsSample), ...]): one tick's samples.
BatchSink = Callable[[Sequence[tuple[str, int, bytes]]], None]
_log = logging.getLogger(__name__)
SUBSCRIBER_QUEUE = 64  # a slower viewer loses its oldest samples, never blocks sampling
PROBE_TIMEOUT_S = 2.0  # a status answer waits no longer on the history store
MAX_JOBS = 1024  # jobs whose recent samples are kept (oldest ended ones dropped first)
MIN_RING = 12  # samples a job keeps however many jobs share config.recent_samples
FINAL_WAIT_S = 5.0  # how long a log's end waits for its job's final sample


class HistorySource(Protocol):
    async def history(self, job_id: str, from_ns: int, to_ns: int) -> list[pb.JobMetricsSample]:
        """Samples of `job_id` with from_ns <= timestamp <= to_ns (0: unbounded)."""


@runtime_checkable
class HistoryProbe(Protocol):
    async def has_history(self, job_id: str) -> bool:
        """Whether any sample of `job_id` is stored (a cheap look)."""


@runtime_checkable
class TimedPayloadSource(Protocol):
    async def timed_payloads(self, job_id: str) -> tuple[list[int], list[bytes]]:
        """Timestamps and serialized samples of all of `job_id`, oldest first."""


class MetricsHub:
    def __init__(
        self,
        config: MetricsConfig | None = None,
        *,
        sink: Sink | None = None,
        batch_sink: BatchSink | None = None,
        finished: Callable[[str], None] | None = None,
        history_source: HistorySource | None = None,
        procfs: Path = Path("/proc"),
        max_jobs: int = MAX_JOBS,
    ) -> None:
        self.config = config or MetricsConfig()
        self._sink = sink
        self._batch_sink = batch_sink
        self._finished = finished
        self._source = history_source
        self._procfs = procfs
        self._max_jobs = max_jobs
        # Serialized samples (a tenth of a parsed one's memory, and what history
        # responses are built from) and their summary points, per job.
        self._recent: OrderedDict[str, deque[bytes]] = OrderedDict()
        self._points: dict[str, deque[Point]] = {}
        # Jobs whose ring holds every sample since they started (not re-attached
        # after a restart, never overflowed): their history needs no persist.
        self._complete: set[str] = set()
        self._stored = HistoryCache(self.config.history_cache_bytes)
        self._loading: dict[str, asyncio.Future[StoredHistory]] = {}
        self._summaries: dict[str, tuple[tuple[int, int, int], pb.JobMetricsSummaryResponse]] = {}
        self._subscribers: dict[str, set[asyncio.Queue[pb.JobMetricsSample | None]]] = {}
        self._tick = SampleTick(self.config.interval_s, self.publish_batch)
        self._tick_task: asyncio.Task[None] | None = None
        self._taken: dict[str, asyncio.Event] = {}  # set once the final sample is taken
        self._ended: set[str] = set()
        self._group: asyncio.TaskGroup | None = None

    async def __aenter__(self) -> MetricsHub:
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        self._tick_task = self._group.create_task(self._tick.run(), name="metrics-tick")
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._tick_task is not None:
            self._tick_task.cancel()
        for job_id in list(self._subscribers):
            self._close_subscribers(job_id)
        group, self._group = self._group, None
        if group is not None:
            await group.__aexit__(et, e, tb)

    def start_job(
        self,
        job_id: str,
        cgroup: JobCgroup,
        limits: Limits,
        init_pid: int | None = None,
        *,
        from_start: bool = False,
        gpu_indices: tuple[int, ...] = (),
        gpu_reader: GpuReader | None = None,
    ) -> JobSampler:
        """Start sampling a running job every `config.interval_s`. `from_start`: the
        job starts now (not re-attached), so memory will hold all of its history."""
        if self._group is None:
            raise RuntimeError("MetricsHub used outside 'async with'")
        sampler = JobSampler(
            job_id, cgroup, limits, interval_s=self.config.interval_s,
            publish=self.publish, init_pid=init_pid, procfs=self._procfs, fresh=from_start,
            gpu_indices=gpu_indices, gpu_reader=gpu_reader,
        )  # fmt: skip
        self._ended.discard(job_id)
        if from_start and job_id not in self._recent:
            self._complete.add(job_id)
        self._taken.setdefault(job_id, asyncio.Event())
        self._tick.add(sampler)
        return sampler

    async def finish_job(
        self, job_id: str, then: Callable[[], None] | None = None
    ) -> pb.JobMetricsSample | None:
        """Take the job's final sample (before its cgroup is removed) and end its
        streams. `then` (removing the cgroup) runs on the same worker thread
        right after the sample: one hop off the loop per job end, not two."""
        sampler = self._tick.remove(job_id)
        if sampler is not None:
            final = await sampler.final_sample(then)
        else:
            final = None
            if then is not None:
                await asyncio.to_thread(then)
        if final is not None and self._finished is not None:
            # After the final sample: the history it closes is complete (the
            # log's end, which seals both, may have come before it).
            self._finished(job_id)
        taken = self._taken.pop(job_id, None)
        if taken is not None:
            taken.set()
        self.end(job_id)
        return final

    async def final_taken(self, job_id: str, timeout: float = FINAL_WAIT_S) -> None:
        """Until the job's final sample is taken (at once for a job not sampled):
        its log's end, which closes its history, then comes after that sample."""
        taken = self._taken.get(job_id)
        if taken is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(taken.wait(), timeout)

    def publish_batch(self, samples: Sequence[pb.JobMetricsSample]) -> None:
        """One tick's samples: kept and streamed as `publish` does, and sent
        to the batch sink (when there is one) as one message."""
        if self._batch_sink is None:
            for sample in samples:
                self.publish(sample)
            return
        records = [(s.jobId, s.timestamp, self._keep(s)) for s in samples]
        try:
            self._batch_sink(records)
        except Exception:
            _log.exception("metrics sink failed")

    def publish(self, sample: pb.JobMetricsSample) -> None:
        payload = self._keep(sample)
        if self._sink is not None:
            try:
                self._send(sample.jobId, sample.timestamp, payload)
            except Exception:
                _log.exception("metrics sink failed")
        elif self._batch_sink is not None:
            try:
                self._batch_sink([(sample.jobId, sample.timestamp, payload)])
            except Exception:
                _log.exception("metrics sink failed")

    def _keep(self, sample: pb.JobMetricsSample) -> bytes:
        """Into the job's ring, its cached history and its live streams; the payload."""
        payload = sample.SerializeToString()
        ring = self._ring(sample.jobId)
        points = self._points[sample.jobId]
        cap = self._ring_cap()
        if len(ring) >= cap:
            self._complete.discard(sample.jobId)  # its history is persist's from now on
            while len(ring) >= cap:
                ring.popleft()
                points.popleft()
        ring.append(payload)
        points.append(point(sample))
        self._stored.add(sample.jobId, sample.timestamp, payload)
        for queue in self._subscribers.get(sample.jobId, ()):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(sample)
        return payload

    def end(self, job_id: str) -> None:
        """The job ended: its subscribers' streams finish after the samples they hold."""
        self._ended.add(job_id)
        self._close_subscribers(job_id)

    def is_live(self, job_id: str) -> bool:
        return job_id in self._tick

    def live_jobs(self) -> list[str]:
        """Ids of the jobs being sampled now."""
        return self._tick.jobs()

    def recent(self, job_id: str) -> list[pb.JobMetricsSample]:
        return decode_samples(list(self._recent.get(job_id, ())))

    def latest(self, job_id: str) -> pb.JobMetricsSample | None:
        ring = self._recent.get(job_id)
        return pb.JobMetricsSample.FromString(ring[-1]) if ring else None

    async def summary_points(self, job_id: str) -> list[Point]:
        """What a summary needs: from the in-memory points, or the stored history."""
        if self._from_memory(job_id):
            return list(self._points.get(job_id, ()))
        return (await self._stored_history(job_id)).points()

    async def summary(
        self, job_id: str, period_s: int = 0, *, archived: bool = False
    ) -> pb.JobMetricsSummaryResponse:
        """summarize_points over the job's samples (the last answer is kept
        until the job has a new sample or another period is asked).
        `archived`: a job this node never ran (see `archived_history`)."""
        if archived:
            return (await self.archived_history(job_id)).summary(period_s)
        if not self._from_memory(job_id):
            return (await self._stored_history(job_id)).summary(period_s)
        points = self._points.get(job_id, ())
        key = (period_s, len(points), points[-1][0] if points else 0)
        known = self._summaries.get(job_id)
        if known is None or known[0] != key:
            known = self._summaries[job_id] = (key, summarize_points(list(points), period_s))
        return known[1]

    async def history(
        self, job_id: str, from_ns: int = 0, to_ns: int = 0, *, archived: bool = False
    ) -> list[pb.JobMetricsSample]:
        response = await self.history_bytes(job_id, from_ns, to_ns, archived=archived)
        return list(pb.JobMetricsHistoryResponse.FromString(response).samples)

    async def history_bytes(
        self, job_id: str, from_ns: int = 0, to_ns: int = 0, *, archived: bool = False
    ) -> bytes:
        """A serialized JobMetricsHistoryResponse of the samples in the range,
        oldest first: from memory when it holds the job's whole history (or
        there is no source), else from the stored history (read once).
        `archived`: a job this node never ran (see `archived_history`)."""
        if archived:
            return (await self.archived_history(job_id)).response(from_ns, to_ns)
        if self._from_memory(job_id):
            ring, points = self._recent.get(job_id, ()), self._points.get(job_id, ())
            if not from_ns and not to_ns:
                return encode_history(list(ring))
            chosen = zip(ring, points, strict=True)
            return encode_history([b for b, p in chosen if in_range(p[0], from_ns, to_ns)])
        return (await self._stored_history(job_id)).response(from_ns, to_ns)

    async def archived_history(self, job_id: str) -> StoredHistory:
        """The stored history of a job this node never ran (persist's s3
        backend reads the archive other nodes write to); NotFound when there
        is none: unlike a job of this node's, no history means no such job."""
        entry = None if self._source is None else await self._stored_history(job_id)
        if entry is None or not len(entry):
            raise NotFound(f"job {job_id} not found (no job has that id or name)")
        return entry

    async def archived_exists(self, job_id: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
        """Whether a job this node never ran has a stored history: False when
        that cannot be told within `timeout_s` (the store is slow or away)."""
        if not isinstance(self._source, HistoryProbe):
            return False
        try:
            return await asyncio.wait_for(self._source.has_history(job_id), timeout_s)
        except (TimeoutError, JobletError):
            return False

    def _from_memory(self, job_id: str) -> bool:
        return self._source is None or job_id in self._complete

    async def _stored_history(self, job_id: str) -> StoredHistory:
        """The job's history from the source, read once and then kept current
        by `publish`; concurrent first readers share one read."""
        entry = self._stored.get(job_id)
        if entry is not None:
            return entry
        loading = self._loading.get(job_id)
        if loading is None:
            loading = self._loading[job_id] = asyncio.ensure_future(self._load(job_id))
            loading.add_done_callback(lambda _: self._loading.pop(job_id, None))
        return await asyncio.shield(loading)

    async def _load(self, job_id: str) -> StoredHistory:
        assert self._source is not None
        if isinstance(self._source, TimedPayloadSource):
            stamps, payloads = await self._source.timed_payloads(job_id)
        else:
            samples = sorted(await self._source.history(job_id, 0, 0), key=lambda s: s.timestamp)
            stamps = [s.timestamp for s in samples]
            payloads = [s.SerializeToString() for s in samples]
        entry = StoredHistory(stamps, payloads)
        # Samples published while reading, or not yet stored by persist.
        for payload, recent in zip(
            self._recent.get(job_id, ()), self._points.get(job_id, ()), strict=True
        ):
            entry.add(recent[0], payload)
        if not len(entry):  # nothing stored (yet: persist may still be starting): not kept
            return entry
        # Summaries come with histories (a viewer asks for both): their series
        # are made now, as part of this read, rather than in a later call.
        entry.summary(0)
        return self._stored.put(job_id, entry)

    def subscribe(self, job_id: str) -> Subscription:
        """Samples of `job_id` from now on, until the job ends (registered at once,
        so nothing published after this call is missed). Close it when done."""
        queue: asyncio.Queue[pb.JobMetricsSample | None] = asyncio.Queue(SUBSCRIBER_QUEUE + 1)
        if job_id in self._ended:
            queue.put_nowait(None)
        else:
            self._subscribers.setdefault(job_id, set()).add(queue)
        return Subscription(self, job_id, queue)

    def unsubscribe(self, job_id: str, queue: asyncio.Queue[pb.JobMetricsSample | None]) -> None:
        self._subscribers.get(job_id, set()).discard(queue)

    def subscriber_count(self, job_id: str) -> int:
        return len(self._subscribers.get(job_id, ()))

    def _ring_cap(self) -> int:
        """How many samples a job's ring holds: historySamples, less when
        more jobs than recentSamples allows share them (older samples are
        then read from the history source, so none is lost)."""
        if self._source is None:
            return self.config.history_samples
        share = self.config.recent_samples // max(1, len(self._recent))
        return min(self.config.history_samples, max(MIN_RING, share))

    def _ring(self, job_id: str) -> deque[bytes]:
        ring = self._recent.get(job_id)
        if ring is None:
            ring = self._recent[job_id] = deque(maxlen=self.config.history_samples)
            self._points[job_id] = deque(maxlen=self.config.history_samples)
            self._evict(keep=job_id)
        return ring

    def _evict(self, keep: str) -> None:
        # Oldest first, but never a job that is still being sampled, nor the
        # one whose sample is being kept: a job's first sample can be its
        # final one (re-attached after a restart, then stopped), taken after
        # its sampler left the tick; with every older job still sampled
        # it would evict itself.
        for job_id in list(self._recent):
            if len(self._recent) <= self._max_jobs:
                return
            if job_id not in self._tick and job_id != keep:
                del self._recent[job_id]
                self._points.pop(job_id, None)
                self._ended.discard(job_id)
                self._complete.discard(job_id)
                self._summaries.pop(job_id, None)

    def _close_subscribers(self, job_id: str) -> None:
        for queue in self._subscribers.pop(job_id, set()):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)

    def _send(self, job_id: str, timestamp: int, payload: bytes) -> None:
        assert self._sink is not None
        result = self._sink(job_id, timestamp, payload)
        if inspect.isawaitable(result) and self._group is not None:
            self._group.create_task(_await(result))


class Subscription:
    """An async iterator of one job's live samples; ends when the job ends."""

    def __init__(
        self, hub: MetricsHub, job_id: str, queue: asyncio.Queue[pb.JobMetricsSample | None]
    ) -> None:
        self._hub, self._job_id, self._queue = hub, job_id, queue

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> pb.JobMetricsSample:
        sample = await self._queue.get()
        if sample is None:
            self._queue.put_nowait(None)  # stays ended for a later call
            raise StopAsyncIteration
        return sample

    def close(self) -> None:
        self._hub.unsubscribe(self._job_id, self._queue)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _await(result: Awaitable[object]) -> None:
    # A failing sink must not take the hub's task group (every sampler) down.
    try:
        await result
    except Exception:
        _log.exception("metrics sink failed")
