"""Placement of jobs over a cluster's nodes, the pure part: where a job may
go (`--place`), which streams a node reads, the keys in the shared store,
and the Lua scripts that move a placed job between its states atomically.

A placed job is one hash `<cluster prefix>placed:<id>` (state, the RunJob
request, a fencing token, the node holding it) and its id in one stream per
class: `any`, `node:<id>`, `label:<k>=<v>`. Every move is one script, so
the check of the state and token and the change happen together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

GROUP = "nodes"  # one consumer group per stream; each node is a consumer
QUEUED, CLAIMED, RUNNING, DONE, FAILED = "QUEUED", "CLAIMED", "RUNNING", "DONE", "FAILED"
NODE_LOST = "node lost"


@dataclass(frozen=True)
class Place:
    """Where a job may run: any node, one node, nodes with one label, or
    (`gpus`) any node with that many GPUs free."""

    node: str = ""
    label: tuple[str, str] | None = None
    gpus: int = 0

    @property
    def stream(self) -> str:
        if self.node:
            return f"node:{self.node}"
        if self.label is not None:
            return f"label:{self.label[0]}={self.label[1]}"
        if self.gpus:
            return gpu_stream(self.gpus)
        return "any"

    @property
    def anywhere(self) -> bool:
        return not self.node and self.label is None


def gpu_stream(count: int) -> str:
    """The stream of jobs that need `count` GPUs, read only by nodes with
    that many free."""
    return f"gpu:{count}"


def gpu_streams(free: int, total: int) -> list[str]:
    """The GPU streams a node with `free` of its `total` GPUs reads now, the
    largest first (a node fills its GPUs with the biggest jobs it can take)."""
    return [gpu_stream(n) for n in range(min(free, total), 0, -1)]


def parse_place(text: str) -> Place:
    """'' (any node), 'node=ID' or 'label=KEY=VALUE'; ValueError says why not."""
    text = text.strip()
    if not text:
        return Place()
    kind, sep, rest = text.partition("=")
    if sep and kind == "node" and rest and "=" not in rest:
        return Place(node=rest)
    if sep and kind == "label":
        key, sep2, value = rest.partition("=")
        if sep2 and key and value:
            return Place(label=(key, value))
    raise ValueError(f"place {text!r}: give node=ID or label=KEY=VALUE")


def streams_for(node_id: str, labels: Mapping[str, str]) -> list[str]:
    """The streams a node serves: any job, its own, its labels'."""
    names = ["any", f"node:{node_id}"]
    names += [f"label:{k}={v}" for k, v in sorted(labels.items())]
    return names


def job_key(prefix: str, job_id: str) -> str:
    return f"{prefix}placed:{job_id}"


def stream_key(prefix: str, stream: str) -> str:
    return f"{prefix}stream:{stream}"


def owned_key(prefix: str, node_id: str) -> str:
    """The set of jobs a node has claimed and not finished (the janitor's index)."""
    return f"{prefix}owned:{node_id}"


def janitor_key(prefix: str) -> str:
    return f"{prefix}janitor"


def listed_key(prefix: str) -> str:
    """The set of placed jobs the cluster lists from their hash: from their
    submission until a node records their end (until then no node's own
    record may say everything about them), and canceled ones until deleted."""
    return f"{prefix}listed"


# KEYS: job, stream, listed. ARGV: job id, request, stream key, retry
# ('1'/'0'), time. The record and the stream entry are written together or
# not at all.
SUBMIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'state', 'QUEUED', 'request', ARGV[2], 'token', 0,
  'stream', ARGV[3], 'retry', ARGV[4], 'created', ARGV[5], 'node', '')
redis.call('XADD', KEYS[2], '*', 'id', ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""

# KEYS: job, stream, owned. ARGV: group, entry id, node, job id.
# Returns {token, request} for a claim, false for an entry to drop (its job
# is no longer QUEUED: claimed through another entry, canceled, gone).
CLAIM = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'QUEUED' then
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[2], ARGV[2])
  return false
end
local token = redis.call('HINCRBY', KEYS[1], 'token', 1)
redis.call('HSET', KEYS[1], 'state', 'CLAIMED', 'node', ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])  -- done with: the stream holds only waiting entries
return {token, redis.call('HGET', KEYS[1], 'request')}
"""

# KEYS: job, the node's lease, the node's owned set. ARGV: token, node, job id.
# 1: start it; 0: the token is stale (re-queued, canceled: no longer this
# node's to hold); -1: this node's lease has lapsed (the janitor may be
# re-queuing its jobs right now).
START = """
local rec = redis.call('HMGET', KEYS[1], 'state', 'token', 'node')
if rec[1] ~= 'CLAIMED' or rec[2] ~= ARGV[1] or rec[3] ~= ARGV[2] then
  if rec[3] ~= ARGV[2] or (rec[1] ~= 'CLAIMED' and rec[1] ~= 'RUNNING') then
    redis.call('SREM', KEYS[3], ARGV[3])
  end
  return 0
end
if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
redis.call('HSET', KEYS[1], 'state', 'RUNNING')
return 1
"""

# KEYS: job, owned, listed. ARGV: token, state, reason, job id.
# A write of the node that holds the job; refused (0) once the token moved on.
FINISH = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'reason', ARGV[3])
redis.call('HDEL', KEYS[1], 'request')
redis.call('SREM', KEYS[2], ARGV[4])
redis.call('SREM', KEYS[3], ARGV[4])
return 1
"""

# KEYS: job, owned. ARGV: token, job id. A job its node killed to fence
# itself goes back to its stream, unless the janitor moved it on already.
GIVE_BACK = """
local rec = redis.call('HMGET', KEYS[1], 'token', 'stream')
if rec[1] ~= ARGV[1] then return 0 end
redis.call('HINCRBY', KEYS[1], 'token', 1)
redis.call('HSET', KEYS[1], 'state', 'QUEUED', 'node', '')
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('XADD', rec[2], '*', 'id', ARGV[2])
return 1
"""

# KEYS: job, owned (of the lost node), its lease, listed. ARGV: node, job id.
# 0: nothing to do (the node is back, or the job moved on); 1: re-queued;
# 2: FAILED "node lost".
RECLAIM = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local rec = redis.call('HMGET', KEYS[1], 'state', 'node', 'retry', 'stream')
if rec[2] ~= ARGV[1] or (rec[1] ~= 'CLAIMED' and rec[1] ~= 'RUNNING') then
  redis.call('SREM', KEYS[2], ARGV[2])
  return 0
end
redis.call('HINCRBY', KEYS[1], 'token', 1)
redis.call('SREM', KEYS[2], ARGV[2])
if rec[1] == 'CLAIMED' or rec[3] == '1' then
  redis.call('HSET', KEYS[1], 'state', 'QUEUED', 'node', '')
  redis.call('XADD', rec[4], '*', 'id', ARGV[2])
  return 1
end
redis.call('HSET', KEYS[1], 'state', 'FAILED', 'reason', 'node lost')
redis.call('HDEL', KEYS[1], 'request')
redis.call('SREM', KEYS[4], ARGV[2])
return 2
"""

# KEYS: job. ARGV: reason, time. A cancel through any node of a job no node
# runs yet: QUEUED, or CLAIMED and not started (its token bumped, so the
# claimer's start is refused). {1, node} canceled; {2, node} it runs there
# (or is starting), ask that node; {3, state} it has ended; {0, ''} unknown.
CANCEL = """
local rec = redis.call('HMGET', KEYS[1], 'state', 'node')
if not rec[1] then return {0, ''} end
if rec[1] == 'QUEUED' or rec[1] == 'CLAIMED' then
  redis.call('HINCRBY', KEYS[1], 'token', 1)
  redis.call('HSET', KEYS[1], 'state', 'CANCELED', 'reason', ARGV[1], 'ended', ARGV[2])
  return {1, rec[2] or ''}
end
if rec[1] == 'RUNNING' then return {2, rec[2] or ''} end
return {3, rec[1]}
"""

# KEYS: job, listed. ARGV: job id. A placed job no node took, once it has
# ended (canceled): gone. 1 deleted; 0 not there; -1 not ended (its state
# says which).
DELETE = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then redis.call('SREM', KEYS[2], ARGV[1]) return 0 end
if state == 'QUEUED' or state == 'CLAIMED' or state == 'RUNNING' then return -1 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""

# KEYS: lock. ARGV: holder. Release only one's own lock.
UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
