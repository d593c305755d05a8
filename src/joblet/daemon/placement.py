"""Placement on this node (cluster.placement): RunJob queues a job in the
cluster's store for whichever node has room; this node takes jobs from the
streams it serves while it has free slots, starts each only after the store
confirmed its claim, records each end with the claim's token, and, one
node at a time, hands the jobs of lapsed nodes on.

Guarantees: an entry is delivered at least once (it stays pending until
acked; XAUTOCLAIM hands over one left idle), a job is claimed exactly once
(the claim script's state check), started at most once (the start script
checks the token and this node's lease just before the launch).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from joblet.api import joblet_pb2 as pb
from joblet.cluster import placement as p
from joblet.cluster.config import ClusterConfig
from joblet.cluster.jobs import ClusterJobs
from joblet.cluster.lease import registry_prefix
from joblet.cluster.queue import Claim, Entry, PlacementQueue
from joblet.cluster.registry import RedisLeases
from joblet.daemon.cluster_member import check_store
from joblet.errors import InvalidArgument, JobletError, Unavailable
from joblet.jobs.ending import FENCE_STOPPER
from joblet.jobs.ids import new_job_id
from joblet.jobs.model import Job, JobStatus
from joblet.jobs.serialization import SerializationError
from joblet.state.backends.base import StateBackendError
from joblet.state.config import StateConfig

log = logging.getLogger(__name__)
IDLE_CLAIM_MS = 5000  # an entry read but not claimed for this long is taken over
FENCE_SHARE = 0.6  # of the lease TTL: a node fences itself well before it lapses
FENCED_REASON = f"stopped by {FENCE_STOPPER}"  # the end of a job the fence killed
REQUEUED_STOPPER = "the cluster, which queued it again"  # an earlier run a new claim ends
SETTLE_S = 30.0  # for an earlier run of a claimed job to end here
UNLIMITED_BATCH = 64  # entries read at once by a node with no slot limit
GIVE_BACK_S = 60.0  # how long a fenced job's return to the queue is retried
FINISH_RETRY_S = 600.0  # how long a placed job's end is retried while the store is away
CLOSE_WAIT_S = 5.0  # at a stop, how long writes still being retried may finish
Launch = Callable[[str, pb.RunJobRequest], Awaitable[Job]]


def placeable(request: pb.RunJobRequest, max_bytes: int) -> str:
    """Why this request stays on the node that received it ('' = it may be
    placed): what it needs lives here (staged files, stdin, waits), or it is
    larger than cluster.maxUploadBytes."""
    if request.uploadSession:
        return "its staged upload session is on this node"
    if request.stdin:
        return "its stdin is fed through this node"
    if request.schedule or request.requirements or request.workflowUuid:
        return "a scheduled or waiting job stays on the node that received it"
    if request.gpu_ids:
        return "a job that names its GPUs stays on the node that received it"
    if request.gpu_memory_mb:  # the gpu streams are by count: memory is no node's promise
        return "a GPU job that asks for GPU memory stays on the node that received it"
    if request.ByteSize() > max_bytes:
        return f"it is larger than cluster.maxUploadBytes ({max_bytes} bytes)"
    return ""


class Placer:
    """The receiving side: a job QUEUED in the store and its id in its
    stream, acknowledged only once Redis has both."""

    def __init__(self, queue: PlacementQueue, max_bytes: int) -> None:
        self.queue = queue
        self._max_bytes = max_bytes

    def takes(self, request: pb.RunJobRequest) -> bool:
        why = placeable(request, self._max_bytes)
        if why and request.place:
            raise InvalidArgument(f"place {request.place!r}: this job cannot be placed: {why}")
        return not why

    async def place(self, request: pb.RunJobRequest) -> str:
        try:
            place = p.parse_place(request.place)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from exc
        if request.gpu_count and place.anywhere:  # read only where that many GPUs are free
            place = p.Place(gpus=request.gpu_count)
        job_id = new_job_id()
        try:
            await self.queue.submit(
                job_id, request.SerializeToString(), place, request.retryOnNodeLoss
            )
        except StateBackendError as exc:
            raise Unavailable(
                f"placement: the cluster's store is away, job not queued: {exc}"
            ) from exc
        return job_id


class Tokens:
    """The tokens of the placed jobs this node started; each end is written
    with its job's token (a stale one is refused: the cluster decided
    otherwise meanwhile, and this node's account is noted beside it).

    `lost`: what this node does with a job the cluster moved on without it
    (its lease lapsed: the job FAILED "node lost" or queued again): a copy
    still running here is killed, and its end here becomes the cluster's."""

    def __init__(
        self,
        queue: PlacementQueue,
        lost: Callable[[str], Awaitable[None]] | None = None,
        clear: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._queue = queue
        self._lost = lost
        self._clear = clear  # whatever a run of the job left here goes (see adopt)
        self._tokens: dict[str, int] = {}
        # The newest run's token of each placed job held here, kept after its
        # end: a late refusal of an earlier run's end must not overrule it.
        self._newest: dict[str, int] = {}
        self.retryable: set[str] = set()
        self.fenced: set[str] = set()  # killed by the fence: queued again, not ended
        self.moved: dict[str, str] = {}  # moved on by the cluster: its state there
        self.on_retryable: Callable[[], None] | None = None  # a retryable job is held
        self._tasks: set[asyncio.Task[None]] = set()

    def hold(self, job_id: str, token: int, retry: bool) -> None:
        self._tokens[job_id] = token
        self._newest[job_id] = max(token, self._newest.get(job_id, 0))
        # A new run: what was decided of an earlier run here (ended before
        # this one starts) is not this run's.
        self.moved.pop(job_id, None)
        self.fenced.discard(job_id)
        if retry:
            self.retryable.add(job_id)
            if self.on_retryable is not None:
                self.on_retryable()

    def changed(self, job: Job) -> None:
        if not job.status.is_final or job.id not in self._tokens:
            return
        reason = job.end_reason or f"exit code {job.exit_code}"
        self._end(job.id, job.status.value, reason, job.ended_at, job.exit_code)

    def refused(self, job_id: str, reason: str) -> None:
        """A claimed job this node could not launch: FAILED, saying why."""
        self._end(job_id, JobStatus.FAILED.value, reason, time.time(), -1)

    def _end(self, job_id: str, state: str, reason: str, at: float, code: int) -> None:
        token = self._tokens.pop(job_id)
        self.retryable.discard(job_id)
        end = End(state, reason, at, code)
        if job_id in self.fenced or reason == FENCED_REASON:
            self.fenced.discard(job_id)
            work = self._give_back(job_id, token)
        elif job_id in self.moved:  # killed here for the cluster's decision: noted
            work = self._note(job_id, end.note(self.moved.pop(job_id), killed=True))
        else:
            work = self._finish(job_id, token, end)
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def deleted(self, job_id: str) -> None:
        self._newest.pop(job_id, None)

    def push(self) -> None:
        pass

    async def recorded(self, timeout: float) -> bool:
        return True

    def give_back_later(self, job_id: str, token: int, why: str) -> None:
        """A claim this node will not start goes back to its stream."""
        task = asyncio.get_running_loop().create_task(self._give_back(job_id, token, why))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _give_back(
        self, job_id: str, token: int, why: str = "after this node fenced it"
    ) -> None:
        deadline = time.monotonic() + GIVE_BACK_S
        while True:  # the store is likely away right now: the fence fired
            try:
                if await self._queue.give_back(job_id, token):
                    log.info("placement: job %s queued again %s", job_id, why)
                return
            except StateBackendError as exc:
                if time.monotonic() > deadline:
                    log.warning("placement: job %s: not queued again: %s", job_id, exc)
                    return
            await asyncio.sleep(0.5)

    async def adopt(self, node_id: str, find: Callable[[str], Job | None], live: list[str]) -> None:
        """At start-up (the daemon restarted): the placed jobs the store says
        this node holds, and the placed ones among `live` (jobs restored
        running here), each taken up again: one still running here is held
        (its end written with its token); one that ended here has that end
        written; a claim never started is queued again; one started and
        unknown here FAILED "node lost", or queued again if it opted in to a
        retry on node loss; one the cluster moved on meanwhile is handed to
        `lost`. A job unknown here may still have a run here that its record
        missed (the crash came before the record was stored): `clear` ends it
        first, so a retry elsewhere never overlaps it."""
        for job_id, rec in (await self._queue.owned(live)).items():
            token, state = int(rec.get("token") or 0), rec.get("state", "")
            mine = rec.get("node") == node_id and state in (p.CLAIMED, p.RUNNING)
            job = find(job_id)
            running = job is not None and not job.status.is_final
            if mine and running:
                self.hold(job_id, token, rec.get("retry") == "1")
            elif mine and job is not None:
                end = End(job.status.value, job.end_reason, job.ended_at, job.exit_code)
                await self._finish(job_id, token, end)
            elif mine:
                if self._clear is not None:
                    await self._clear(job_id)
                if state == p.CLAIMED or rec.get("retry") == "1":
                    # Never started, or started and gone with the crash (nothing
                    # of it runs here now) and opted in to a retry: queued again.
                    await self._queue.give_back(job_id, token)
                else:
                    end = End(JobStatus.FAILED.value, p.NODE_LOST, time.time(), -1)
                    await self._finish(job_id, token, end)
            elif running:  # moved on while this node was down: its copy here goes
                self._tokens[job_id] = -1
                self.moved[job_id] = state
                if self._lost is not None:
                    await self._lost(job_id)
            else:
                continue
            log.info("placement: job %s taken up again after a restart (%s here, %s in the"
                     " cluster)", job_id, job.status if job else "unknown", state)  # fmt: skip

    async def verify(self) -> list[str]:
        """The jobs running here that the cluster moved on meanwhile (their
        token changed: this node's lease lapsed), each handed to `lost`."""
        held = {
            i: t for i, t in self._tokens.items() if i not in self.moved and i not in self.fenced
        }
        if not held:
            return []
        now = await self._queue.current(held)
        # A record gone from the store (lost with it) is no decision: left
        # running. Only a run still held as asked about: one that ended
        # meanwhile, or gave way to a newer run here, is not moved on.
        moved = sorted(
            i for i, (token, state) in now.items()
            if self._tokens.get(i) == held[i] and state and token != held[i]
        )  # fmt: skip
        for job_id in moved:
            self.moved[job_id] = now[job_id][1]
            log.warning(
                "placement: job %s: the cluster moved it on while this node was away (%s"
                " there): its copy here is killed", job_id, self.moved[job_id],
            )  # fmt: skip
            if self._lost is not None:
                try:
                    await self._lost(job_id)
                except JobletError as exc:
                    log.warning("placement: job %s: %s", job_id, exc)
        return moved

    async def _note(self, job_id: str, text: str) -> None:
        """What really happened here, beside the cluster's decision."""
        deadline = time.monotonic() + GIVE_BACK_S
        while True:
            try:
                await self._queue.note(job_id, text)
                return
            except StateBackendError as exc:
                if time.monotonic() > deadline:
                    log.warning("placement: job %s: its account not recorded: %s", job_id, exc)
                    return
            await asyncio.sleep(0.5)

    async def _finish(self, job_id: str, token: int, end: End) -> None:
        state, reason, at = end.state, end.reason, end.at
        # Retried: a Redis that restarted (or a pooled connection it closed)
        # must not leave the job RUNNING in the cluster for ever.
        deadline = time.monotonic() + FINISH_RETRY_S
        delay = 0.1
        while True:
            try:
                done = await self._queue.finish(job_id, token, state, reason)
                break
            except StateBackendError as exc:
                if time.monotonic() > deadline:
                    log.warning(
                        "placement: job %s: its end not recorded in the cluster: %s", job_id, exc
                    )
                    return
                if delay == 0.1:
                    log.info("placement: job %s: recording its end again (%s)", job_id, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        if not done:  # what really happened here, beside the cluster's decision
            log.warning(
                "placement: job %s: stale write refused (token %d): the cluster moved it on;"
                " here it ended %s (%s) at %.3f", job_id, token, state, reason, at,
            )  # fmt: skip
            decided = ""
            with contextlib.suppress(StateBackendError):
                decided = (await self._queue.state(job_id)).get("state", "")
            await self._note(job_id, end.note(decided or "moved on", killed=False))
            # This node's record follows the cluster's, unless the job was
            # claimed here again meanwhile: the record is then the newer run's.
            if self._lost is not None and self._newest.get(job_id, token) <= token:
                with contextlib.suppress(JobletError):
                    await self._lost(job_id)

    async def close(self) -> None:
        tasks = list(self._tasks)
        if not tasks:
            return
        # Writes still retried against a store that is away do not hold a stop.
        _, pending = await asyncio.wait(tasks, timeout=CLOSE_WAIT_S)
        for task in pending:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


@dataclass(frozen=True)
class End:
    """A placed job's end as this node saw it."""

    state: str
    reason: str
    at: float
    exit_code: int

    def note(self, decided: str, *, killed: bool) -> str:
        """The event on the job's hash (`late:NODE`): the cluster's decision
        stands, this says what really happened on the node."""
        when = datetime.fromtimestamp(self.at, UTC).isoformat(timespec="milliseconds")
        how = "killed on this node's return" if killed else "ended"
        return (
            f"{self.state} ({self.reason}), exit code {self.exit_code}, at {when}:"
            f" {how}; the cluster had decided {decided} meanwhile (this node's lease lapsed)"
        )


class Worker:
    """Takes jobs from this node's streams while it has free slots, and
    from the GPU streams (`gpus`: this node's GPUs, 0 = none, never read)
    only those it has the free GPUs for."""

    def __init__(
        self,
        queue: PlacementQueue,
        streams: list[str],
        free_slots: Callable[[], int],
        launch: Launch,
        *,
        tokens: Tokens,
        registry_prefix: str,
        gpus: int = 0,
        free_gpus: Callable[[], int] = lambda: 0,
        settle: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._settle = settle  # an earlier run of the job here ends first
        self._queue = queue
        self._streams = streams
        self._free_slots = free_slots
        self._launch = launch
        self._tokens = tokens
        self._registry_prefix = registry_prefix
        self._gpus = gpus
        self._free_gpus = free_gpus
        self._gpus_launching = 0  # GPUs of launches under way, not yet allocated
        self._next_stale = 0.0
        self._launching: set[asyncio.Task[None]] = set()
        self.started = 0

    async def run(self) -> None:
        try:
            await self._loop()
        finally:  # a launch under way finishes: its job is RUNNING in the store
            await asyncio.gather(*self._launching, return_exceptions=True)

    async def _loop(self) -> None:
        failing = False
        while True:
            try:
                if not await self.turn():
                    await asyncio.sleep(0.05)  # no slot free: look again soon
                failing = False
            except StateBackendError as exc:
                if not failing:
                    log.warning("placement: cannot read the cluster's queue: %s", exc)
                failing = True
                await asyncio.sleep(0.5)

    async def turn(self) -> bool:
        """One read (and, now and then, a take-over of idle entries); False
        when this node has no free slot."""
        free = self._free_slots()
        # Launches under way hold no slot yet: counted here, so a node never
        # takes more than it has room for.
        room = (free if free >= 0 else UNLIMITED_BATCH) - len(self._launching)
        if room <= 0:
            return False
        if not self._next_stale:  # the groups first: a stream no one read yet has none
            await self._queue.ensure_groups(self._streams + p.gpu_streams(self._gpus, self._gpus))
        count = room - await self._gpu_turn(room)
        if count <= 0:
            return True
        entries: list[Entry] = []
        now = time.monotonic()
        if now >= self._next_stale:
            self._next_stale = now + IDLE_CLAIM_MS / 1000 / 2
            entries = await self._queue.stale(self._streams, IDLE_CLAIM_MS, count)
        if not entries:
            entries = await self._queue.read(self._streams, count)
        for entry in entries:
            await self._take(entry)
        return True

    async def _gpu_turn(self, room: int) -> int:
        """GPU jobs taken (one read without waiting per stream this node
        has the GPUs for, the largest first); how many."""
        if self._gpus <= 0:
            return 0
        free = self._free_gpus() - self._gpus_launching
        taken = 0
        for stream in p.gpu_streams(free, self._gpus):
            need = int(stream.rpartition(":")[2])
            if taken >= room or need > free:
                continue
            for entry in await self._queue.read([stream], 1, block_ms=None):
                if await self._take(entry):
                    free, taken = free - need, taken + 1
        return taken

    async def _take(self, entry: Entry) -> bool:
        claim = await self._queue.claim(entry)
        if claim is None:
            return False  # its job is no longer QUEUED: dropped
        request = pb.RunJobRequest.FromString(claim.request)
        started = await self._queue.start(claim, self._registry_prefix)
        if started != 1:
            why = "its claim is stale" if started == 0 else "this node's lease has lapsed"
            log.warning("placement: job %s not started: %s", claim.job_id, why)
            if started == -1:
                # Never started: back to its stream now. Left CLAIMED, it
                # would stay so should this node renew its lease before the
                # janitor looks at it.
                self._tokens.give_back_later(claim.job_id, claim.token, "(not started here)")
            return False
        await self._run(claim, request)
        return True

    async def _run(self, claim: Claim, request: pb.RunJobRequest) -> None:
        """The launch, in the background: the next entries are claimed while
        this one starts."""
        self.started += 1
        log.info("placement: job %s started here (token %d)", claim.job_id, claim.token)
        task = asyncio.get_running_loop().create_task(self._launch_one(claim, request))
        self._launching.add(task)
        task.add_done_callback(self._launching.discard)

    async def _launch_one(self, claim: Claim, request: pb.RunJobRequest) -> None:
        self._gpus_launching += request.gpu_count
        try:
            try:
                if self._settle is not None:  # its end is written with its own token
                    await self._settle(claim.job_id)
            finally:
                self._tokens.hold(claim.job_id, claim.token, request.retryOnNodeLoss)
            await self._launch(claim.job_id, request)
        except Exception as exc:  # refused here (a volume it names, say): its end
            log.warning("placement: job %s refused on this node: %s", claim.job_id, exc)
            self._tokens.refused(claim.job_id, str(exc))
        finally:  # allocated by now (or refused): the allocator counts them
            self._gpus_launching -= request.gpu_count


class Fence:
    """A node that cannot confirm its own lease for `limit_s` (0.6 of the TTL)
    kills its jobs that asked for a retry on node loss: the janitor may soon
    queue them again elsewhere, and a retry must never overlap the original.

    `own_lease` says how long ago this node's lease was renewed (None: it
    has none); the launcher is handed the same fence (see tell_launcher),
    its deadline counted from that renewal.

    Once its lease is confirmed again after such a gap (a partition, a hang:
    the clock runs on while the process is stopped), and every `verify_every_s`
    anyway, `verify` asks which of its jobs the cluster moved on meanwhile."""

    def __init__(
        self,
        own_lease: Callable[[], Awaitable[float | None]],
        limit_s: float,
        retryable: set[str],
        kill: Callable[[str], Awaitable[None]],
        clock: Callable[[], float] = time.monotonic,
        *,
        verify: Callable[[], Awaitable[object]] | None = None,
        verify_every_s: float = 0.0,
        launcher: Callable[[float, list[str]], Awaitable[None]] | None = None,
    ) -> None:
        self._launcher = launcher
        self._told: tuple[float, frozenset[str]] | None = None  # what the launcher holds
        self._telling: asyncio.Task[None] | None = None  # a tell_launcher_soon under way
        self._own_lease = own_lease
        self._limit_s = limit_s
        self._retryable = retryable
        self._kill = kill
        self._clock = clock
        self._last_ok = clock()
        self._renewed = self._last_ok  # when the lease last confirmed was renewed
        self._verify = verify
        self._verify_every_s = verify_every_s
        self._next_verify = self._last_ok + verify_every_s

    async def check(self) -> list[str]:
        """The jobs killed by this check."""
        try:
            age = await self._own_lease()
        except StateBackendError:
            age = None
        now = self._clock()
        if age is not None:
            gap, self._last_ok = now - self._last_ok, now
            # The launcher's deadline counts from the renewal, not from this
            # look at the lease: the janitor's clock runs from there.
            self._renewed = max(self._renewed, now - age)
            await self.tell_launcher()
            if self._verify is not None and (gap >= self._limit_s or now >= self._next_verify):
                self._next_verify = now + self._verify_every_s
                try:
                    await self._verify()
                except StateBackendError as exc:  # tried again at the next check
                    self._next_verify = now
                    log.debug("placement: cannot verify this node's jobs: %s", exc)
            return []
        if now - self._last_ok < self._limit_s or not self._retryable:
            return []
        killed = sorted(self._retryable)
        log.warning("placement: this node's lease unconfirmed for %.1fs: killing %d job(s)"
                    " that may be retried elsewhere", now - self._last_ok, len(killed))  # fmt: skip
        for job_id in killed:
            self._retryable.discard(job_id)
            try:
                await self._kill(job_id)
            except JobletError as exc:
                log.warning("placement: job %s: %s", job_id, exc)
        return killed

    async def run(self, every_s: float) -> None:
        while True:
            await self.check()
            await asyncio.sleep(every_s)

    async def tell_launcher(self) -> None:
        """Hand the fence to the launcher as well: it kills the retryable
        jobs at the same deadline unless told again, which it still can
        while this daemon hangs or is gone."""
        jobs = frozenset(self._retryable)
        if self._launcher is None or (not jobs and not self._told):
            return
        until = self._renewed + self._limit_s
        if self._told == (until, jobs) or (jobs and until <= self._clock()):
            # A deadline passed already (a node back from a partition starts
            # jobs before its next check) is not handed on: the launcher
            # would kill at once what the next check may well confirm.
            return
        try:
            await self._launcher(until, sorted(jobs))
        except (JobletError, OSError) as exc:  # told again at the next check
            log.debug("placement: the launcher did not take the fence: %s", exc)
            return
        self._told = (until, jobs) if jobs else None

    def tell_launcher_soon(self) -> None:
        """A job that may be retried started: the launcher hears of it now,
        not at the next check."""
        if self._telling is None or self._telling.done():
            self._telling = asyncio.get_running_loop().create_task(self.tell_launcher())


class Janitor:
    """Hands on the jobs of nodes whose lease lapsed; one node at a time does
    it (a lock in the store)."""

    def __init__(
        self,
        queue: PlacementQueue,
        live: Callable[[], Awaitable[Mapping[str, object]]],
        registry_prefix: str,
        every_s: float,
        mark_lost: Callable[[str, str], Awaitable[None]],
    ) -> None:
        self._mark_lost = mark_lost
        self._queue = queue
        self._live = live
        self._registry_prefix = registry_prefix
        self._every_s = every_s

    async def sweep(self) -> tuple[int, int]:
        """(jobs queued again, jobs FAILED) of the nodes found lost."""
        holder = await self._queue.lock(self._every_s * 4)
        if not holder:
            return 0, 0
        requeued = failed = 0
        try:
            live = await self._live()
            for node in await self._queue.owners():
                if node in live:
                    continue
                again, lost = await self._queue.reclaim(node, self._registry_prefix)
                for job_id in lost:  # its node's own record says so too (listings read it)
                    try:
                        await self._mark_lost(node, job_id)
                    except JobletError as exc:
                        log.warning("placement: job %s: %s", job_id, exc)
                if again or lost:
                    log.warning("placement: node %s lost: %d job(s) queued again, %d FAILED"
                                " %r", node, len(again), len(lost), p.NODE_LOST)  # fmt: skip
                requeued, failed = requeued + len(again), failed + len(lost)
        finally:
            await self._queue.unlock(holder)
        return requeued, failed

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except StateBackendError as exc:
                log.debug("placement: janitor: %s", exc)
            await asyncio.sleep(self._every_s)


@contextlib.asynccontextmanager
async def placing(
    cluster: ClusterConfig,
    state: StateConfig,
    node_id: str,
    *,
    leases: RedisLeases,
    others: ClusterJobs,
    free_slots: Callable[[], int],
    launch: Launch,
    kill: Callable[[str], Awaitable[None]],
    lost: Callable[[str], Awaitable[None]] | None = None,
    fence_launcher: Callable[[float, list[str]], Awaitable[None]] | None = None,
    settle: Callable[[str], Awaitable[None]] | None = None,
    gpus: int = 0,
    free_gpus: Callable[[], int] = lambda: 0,
    local: tuple[Callable[[str], Job | None], Callable[[], list[Job]]] | None = None,
) -> AsyncIterator[tuple[Placer, Tokens]]:
    """The placer for RunJob and the tokens to listen to job ends; the worker
    and the janitor run in the background until the block ends."""
    check_store(cluster, state)
    prefix = registry_prefix(cluster.name)
    queue = PlacementQueue.open(state.redis, prefix, node_id)
    tokens = Tokens(queue, lost, clear=settle)
    if local is not None:  # this node's jobs (find, snapshot): a restart takes its own up
        find, snapshot = local
        try:
            await tokens.adopt(node_id, find, [j.id for j in snapshot() if not j.status.is_final])
        except StateBackendError as exc:  # left to the janitor, should this node lapse
            log.warning("placement: this node's placed jobs not taken up again: %s", exc)
    streams = p.streams_for(node_id, cluster.labels)
    worker = Worker(queue, streams, free_slots, launch, tokens=tokens, registry_prefix=prefix,
                    gpus=gpus, free_gpus=free_gpus, settle=settle)  # fmt: skip

    async def live() -> Mapping[str, object]:
        return {lease.node_id: lease for lease in await leases.live()}

    async def mark_lost(node: str, job_id: str) -> None:
        try:
            await others.mark_lost(node, job_id, time.time())
        except (StateBackendError, SerializationError) as exc:
            raise Unavailable(f"its node's record not updated: {exc}") from exc

    async def own_lease() -> float | None:
        lease = await leases.lease(node_id)
        return None if lease is None else max(time.time() - lease.renewed_at, 0.0)

    janitor = Janitor(queue, live, prefix, cluster.renew_every_s, mark_lost)

    async def fence_kill(job_id: str) -> None:
        tokens.fenced.add(job_id)
        await kill(job_id)

    fence = Fence(own_lease, cluster.lease_ttl_s * FENCE_SHARE, tokens.retryable, fence_kill,
                  verify=tokens.verify, verify_every_s=cluster.lease_ttl_s,
                  launcher=fence_launcher)  # fmt: skip
    tokens.on_retryable = fence.tell_launcher_soon
    tasks = [
        asyncio.create_task(worker.run(), name="placement-worker"),
        asyncio.create_task(janitor.run(), name="placement-janitor"),
        asyncio.create_task(fence.run(cluster.renew_every_s / 2), name="placement-fence"),
    ]
    log.info("placement: this node takes jobs from %s",
             ", ".join(streams + p.gpu_streams(gpus, gpus)))  # fmt: skip
    try:
        yield Placer(queue, cluster.max_upload_bytes), tokens
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await tokens.close()
        await queue.close()
