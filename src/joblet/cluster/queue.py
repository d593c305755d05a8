"""The placement queue in the cluster's Redis: submit, read, claim, start,
finish and reclaim, each one call (a Lua script where a state is checked)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from joblet.cluster import placement as p
from joblet.cluster.batching import GroupCommit
from joblet.cluster.lease import lease_key
from joblet.state.backends.base import StateBackendError
from joblet.state.backends.redis import call_dropping_dead, client_options, failed_on_closed
from joblet.state.config import RedisConfig

if TYPE_CHECKING:
    from redis.asyncio import Redis

BLOCK_MS = 500  # a read waits this long for an entry before the loop looks again
_LISTED = ("state", "node", "created", "ended", "reason")  # what a listing shows


_Script = tuple[list[str], list[str | bytes]]  # a script call's keys and args


@dataclass(frozen=True)
class Entry:
    stream: str  # the stream's key
    entry_id: str
    job_id: str


@dataclass(frozen=True)
class Claim:
    job_id: str
    token: int
    request: bytes


class PlacementQueue:
    def __init__(self, client: Redis, prefix: str, node_id: str) -> None:
        self._client = client
        self._prefix = prefix
        self._node_id = node_id
        self._scripts = {
            name: client.register_script(text)
            for name, text in (
                ("submit", p.SUBMIT), ("claim", p.CLAIM), ("start", p.START),
                ("finish", p.FINISH), ("reclaim", p.RECLAIM), ("unlock", p.UNLOCK),
                ("give_back", p.GIVE_BACK), ("cancel", p.CANCEL), ("delete", p.DELETE),
            )
        }  # fmt: skip
        # Concurrent RunJobs' submits share one pipeline (one round trip, one
        # AOF sync); each is still answered only once Redis ran its own script.
        self._submits = GroupCommit[_Script, object](self._submit_many)

    @classmethod
    def open(cls, config: RedisConfig, prefix: str, node_id: str) -> PlacementQueue:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # No client retries: a RunJob answers UNAVAILABLE rather than wait,
        # and the loops try again on their own.
        options = {**client_options(config), "socket_connect_timeout": 2.0,
                   "socket_timeout": BLOCK_MS / 1000 + 2.0}  # fmt: skip
        return cls(Redis(retry=Retry(NoBackoff(), 0), **options), prefix, node_id)

    async def _call(self, awaitable: Any) -> Any:
        return await call_dropping_dead(self._client, awaitable)

    def stream_key(self, stream: str) -> str:
        return p.stream_key(self._prefix, stream)

    async def submit(self, job_id: str, request: bytes, place: p.Place, retry: bool) -> None:
        """The job QUEUED and its id in its stream, both or neither."""
        stream = self.stream_key(place.stream)
        keys = [p.job_key(self._prefix, job_id), stream, p.listed_key(self._prefix)]
        args: list[str | bytes] = [job_id, request, stream, "1" if retry else "0",
                                   f"{time.time():.6f}"]  # fmt: skip
        if not await self._submits.call((keys, args)):
            raise StateBackendError(f"placement: job {job_id} is placed already")

    async def _submit_many(self, calls: Sequence[_Script]) -> list[object]:
        """The submit scripts of `calls` in one pipeline (not a transaction:
        each stands alone); a script's error is its own caller's."""
        from redis.exceptions import NoScriptError

        script = self._scripts["submit"]
        resent = False
        try:
            results = await self._evalsha_all(script.sha, calls)
        except StateBackendError as exc:
            if not failed_on_closed(exc):
                raise
            # A pooled connection Redis closed while it sat idle (Redis
            # restarted; _call dropped the pool's others): send once more.
            # Safe because the ids are new: a submit that finds its job
            # already placed now was placed by the first send.
            results = await self._evalsha_all(script.sha, calls)
            resent = True
        again = [n for n, result in enumerate(results) if isinstance(result, NoScriptError)]
        if again:  # a restarted Redis forgot the script: none of those ran
            await self._call(self._client.script_load(script.script))
            retried = await self._evalsha_all(script.sha, [calls[n] for n in again])
            for n, result in zip(again, retried, strict=True):
                results[n] = result
        return [
            StateBackendError(f"redis: {result}") if isinstance(result, Exception)
            else 1 if resent and result == 0 else result
            for result in results
        ]  # fmt: skip

    async def _evalsha_all(self, sha: str, calls: Sequence[_Script]) -> list[object]:
        # By sha, not through the Script objects: a pipeline of those asks
        # Redis whether it has the script before every execute.
        pipe = self._client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(sha, len(keys), *keys, *args)
        return list(await self._call(pipe.execute(raise_on_error=False)))

    async def ensure_groups(self, streams: list[str]) -> None:
        from redis.exceptions import ResponseError

        for stream in streams:
            try:
                await self._call(
                    self._client.xgroup_create(self.stream_key(stream), p.GROUP, "0",
                                               mkstream=True)
                )  # fmt: skip
            except StateBackendError as exc:
                if not isinstance(exc.__cause__, ResponseError) or "BUSYGROUP" not in str(exc):
                    raise

    async def read(
        self, streams: list[str], count: int, block_ms: int | None = BLOCK_MS
    ) -> list[Entry]:
        """New entries for this node, at most `count` per stream (None: an
        answer at once, without waiting for one)."""
        wanted: dict[str | bytes | memoryview, str | bytes | memoryview | int] = {
            self.stream_key(s): ">" for s in streams
        }
        raw = await self._call(
            self._client.xreadgroup(p.GROUP, self._node_id, wanted, count=count, block=block_ms)
        )
        return _entries(raw or [])

    async def stale(self, streams: list[str], idle_ms: int, count: int) -> list[Entry]:
        """Entries delivered to a consumer that did not ack them for `idle_ms`
        (a node that died between read and claim), now this node's."""
        out: list[Entry] = []
        for stream in streams:
            key = self.stream_key(stream)
            raw = await self._call(
                self._client.xautoclaim(key, p.GROUP, self._node_id, idle_ms, "0-0", count=count)
            )
            out += [
                Entry(key, _text(entry_id), _text(fields.get(b"id", b"")))
                for entry_id, fields in raw[1]
                if fields
            ]
        return out

    async def claim(self, entry: Entry) -> Claim | None:
        """QUEUED -> CLAIMED by this node with a new token, and the entry
        acked; None (entry acked, dropped) when the job is not QUEUED."""
        keys = [p.job_key(self._prefix, entry.job_id), entry.stream,
                p.owned_key(self._prefix, self._node_id)]  # fmt: skip
        args = [p.GROUP, entry.entry_id, self._node_id, entry.job_id]
        got = await self._call(self._scripts["claim"](keys, args))
        if not got:
            return None
        return Claim(entry.job_id, int(got[0]), bytes(got[1]))

    async def start(self, claim: Claim, registry_prefix: str) -> int:
        """CLAIMED -> RUNNING if the token is still this claim's and this
        node's lease is alive: 1 started, 0 stale token, -1 lease lapsed."""
        keys = [p.job_key(self._prefix, claim.job_id), lease_key(registry_prefix, self._node_id),
                p.owned_key(self._prefix, self._node_id)]  # fmt: skip
        args: list[str | int] = [claim.token, self._node_id, claim.job_id]
        return int(await self._call(self._scripts["start"](keys, args)))

    async def finish(self, job_id: str, token: int, state: str, reason: str) -> bool:
        """The job's end, recorded only while `token` is still current."""
        keys = [p.job_key(self._prefix, job_id), p.owned_key(self._prefix, self._node_id),
                p.listed_key(self._prefix)]  # fmt: skip
        done = await self._call(self._scripts["finish"](keys, [token, state, reason, job_id]))
        return bool(done)

    async def give_back(self, job_id: str, token: int) -> bool:
        """A job this node killed to fence itself queued again (while `token`
        is current: else the janitor already did)."""
        keys = [p.job_key(self._prefix, job_id), p.owned_key(self._prefix, self._node_id)]
        return bool(await self._call(self._scripts["give_back"](keys, [token, job_id])))

    async def note(self, job_id: str, text: str) -> None:
        """What a node that lost the job says really happened to it (an event
        beside the cluster's decision, never a change of state)."""
        await self._call(
            self._client.hset(p.job_key(self._prefix, job_id), f"late:{self._node_id}", text)
        )

    async def state(self, job_id: str) -> dict[str, str]:
        raw = await self._call(self._client.hgetall(p.job_key(self._prefix, job_id)))
        return {_text(k): _text(v) for k, v in raw.items() if k != b"request"}

    async def current(self, held: dict[str, int]) -> dict[str, tuple[int, str]]:
        """For each job this node holds (id -> its claim's token), the token
        and state the store has now: a different token means the cluster
        moved the job on (queued again, or FAILED "node lost")."""
        ids = sorted(held)
        pipe = self._client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(p.job_key(self._prefix, job_id), "token", "state")
        rows = await self._call(pipe.execute())
        return {
            job_id: (int(token or 0), _text(state or b""))
            for job_id, (token, state) in zip(ids, rows, strict=True)
        }

    async def owned(self, also: list[str]) -> dict[str, dict[str, str]]:
        """The placed jobs this node holds in the store, and those of `also`
        that were placed: id -> token, state, node, retry."""
        ids = {_text(i) for i in await self._call(
            self._client.smembers(p.owned_key(self._prefix, self._node_id)))}  # fmt: skip
        ordered = sorted(ids | set(also))
        pipe = self._client.pipeline(transaction=False)
        for job_id in ordered:
            pipe.hmget(p.job_key(self._prefix, job_id), "token", "state", "node", "retry")
        rows = await self._call(pipe.execute())
        names = ("token", "state", "node", "retry")
        return {
            job_id: {k: _text(v) for k, v in zip(names, row, strict=True) if v is not None}
            for job_id, row in zip(ordered, rows, strict=True)
            if row[1] is not None
        }

    async def listed(self, known: Callable[[str], bool]) -> dict[str, dict[str, bytes]]:
        """The placed jobs the cluster lists from their hash (see
        placement.listed_key): id -> the hash's fields, the request only of
        those `known` says the caller has not read yet (it never changes)."""
        ids = sorted(_text(i) for i in await self._call(
            self._client.smembers(p.listed_key(self._prefix))))  # fmt: skip
        pipe = self._client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(p.job_key(self._prefix, job_id), *_LISTED)
        rows = await self._call(pipe.execute())
        out = {
            job_id: {k: bytes(v) for k, v in zip(_LISTED, row, strict=True) if v is not None}
            for job_id, row in zip(ids, rows, strict=True)
            if row[0] is not None
        }
        new = [job_id for job_id in out if not known(job_id)]
        if new:
            pipe = self._client.pipeline(transaction=False)
            for job_id in new:
                pipe.hget(p.job_key(self._prefix, job_id), "request")
            for job_id, request in zip(new, await self._call(pipe.execute()), strict=True):
                if request is not None:
                    out[job_id]["request"] = bytes(request)
        return out

    async def placed(self, job_id: str) -> dict[str, bytes]:
        """One placed job's hash ({} when there is none)."""
        row = await self._call(self._client.hgetall(p.job_key(self._prefix, job_id)))
        return {_text(k): bytes(v) for k, v in row.items()}

    async def cancel(self, job_id: str, reason: str, at: float) -> tuple[int, str]:
        """See placement.CANCEL: (outcome, node or state)."""
        got = await self._call(
            self._scripts["cancel"]([p.job_key(self._prefix, job_id)], [reason, f"{at:.6f}"])
        )
        return int(got[0]), _text(got[1])

    async def delete(self, job_id: str) -> int:
        """See placement.DELETE."""
        keys = [p.job_key(self._prefix, job_id), p.listed_key(self._prefix)]
        return int(await self._call(self._scripts["delete"](keys, [job_id])))

    async def reclaim(self, lost: str, registry_prefix: str) -> tuple[list[str], list[str]]:
        """The jobs of a node whose lease lapsed: CLAIMED ones (and RUNNING
        ones that opted in) queued again, RUNNING ones FAILED "node lost".
        (requeued ids, failed ids)."""
        owned = p.owned_key(self._prefix, lost)
        ids = await self._call(self._client.smembers(owned))
        requeued: list[str] = []
        failed: list[str] = []
        for raw_id in ids:
            job_id = _text(raw_id)
            keys = [p.job_key(self._prefix, job_id), owned, lease_key(registry_prefix, lost),
                    p.listed_key(self._prefix)]  # fmt: skip
            done = int(await self._call(self._scripts["reclaim"](keys, [lost, job_id])))
            if done == 1:
                requeued.append(job_id)
            elif done == 2:
                failed.append(job_id)
        return requeued, failed

    async def owners(self) -> list[str]:
        """Nodes with claimed, unfinished jobs."""
        keys = [k async for k in self._client.scan_iter(p.owned_key(self._prefix, "*"), 1000)]
        start = len(p.owned_key(self._prefix, ""))
        return sorted({_text(k)[start:] for k in keys})

    async def lock(self, ttl_s: float) -> str:
        """The janitor's lock ('' when another node holds it)."""
        holder = f"{self._node_id}:{uuid.uuid4().hex}"
        key = p.janitor_key(self._prefix)
        got = await self._call(self._client.set(key, holder, nx=True, px=int(ttl_s * 1000)))
        return holder if got else ""

    async def unlock(self, holder: str) -> None:
        await self._call(self._scripts["unlock"]([p.janitor_key(self._prefix)], [holder]))

    async def close(self) -> None:
        await self._client.aclose()


def _text(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _entries(raw: list[Any]) -> list[Entry]:
    out = []
    for stream, items in raw:
        for entry_id, fields in items:
            out.append(Entry(_text(stream), _text(entry_id), _text(fields.get(b"id", b""))))
    return out
